//! The expiry sweeper (SPEC section 2): pending agreements past `expires_at` become `expired`.
//! It reads only the index of due agreements and stops before its deadline, leaving the rest to
//! the next run.

use std::sync::Arc;
use std::time::Instant;

use countersign_domain::Agreement;
use countersign_store::{AgreementCommit, AgreementGet, ExpiryIndex};

use crate::clock::Clock;
use crate::commit::{read_decide_commit, step, Applied, Start};
use crate::error::ServiceError;
use crate::retry::RetryPolicy;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
    /// Due when listed, but changed by another writer before the sweep got to it.
    pub skipped: usize,
    pub pages: usize,
    /// The deadline came first: the rest waits for the next run.
    pub stopped_at_deadline: bool,
}

pub struct Sweeper<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    page_size: usize,
}

impl<S: ExpiryIndex + AgreementGet + AgreementCommit + ?Sized> Sweeper<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, retry: RetryPolicy, page_size: usize) -> Self {
        Sweeper {
            store,
            clock,
            retry,
            page_size: page_size.max(1),
        }
    }

    pub async fn sweep(&self, deadline: Option<Instant>) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        let now = self.clock.now();
        let mut cursor = None;
        loop {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                report.stopped_at_deadline = true;
                return Ok(report);
            }
            let page = self
                .store
                .due_for_expiry(now, self.page_size, cursor)
                .await?;
            report.pages += 1;
            for agreement in page.agreements {
                if self.expire(agreement).await? {
                    report.expired += 1;
                } else {
                    report.skipped += 1;
                }
            }
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// Expires one agreement as listed; on conflict reads it again and decides again.
    async fn expire(&self, agreement: Agreement) -> Result<bool, ServiceError> {
        let applied = read_decide_commit(
            self.store.as_ref(),
            &self.retry,
            Start::Read(Arc::new(agreement)),
            |agreement| Ok(step(agreement.decide_expiry(self.clock.now()))),
        )
        .await?;
        Ok(matches!(applied, Applied::Committed(..)))
    }
}
