//! The one read → decide → commit → retry loop of the workers: read the agreement, let the
//! domain decide, commit guarded by the revision read, and on a conflict all over again.

use countersign_domain::{Agreement, Decision};
use countersign_store::{AgreementCommit, AgreementGet, Commit, CommitError, Revision};

use crate::error::ServiceError;
use crate::retry::RetryPolicy;

/// What [`read_decide_commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The decision's write committed; the agreement as written.
    Committed(Agreement),
    /// The domain decided nothing changes; the agreement as read.
    Unchanged(Agreement),
    /// No such agreement.
    Missing,
}

pub async fn read_decide_commit<S: AgreementGet + AgreementCommit + ?Sized>(
    store: &S,
    retry: &RetryPolicy,
    agreement_id: &str,
    mut decide: impl FnMut(&Agreement) -> Decision,
) -> Result<Applied, ServiceError> {
    for attempt in 0..retry.max_attempts {
        let Some(agreement) = store.get_agreement(agreement_id).await? else {
            return Ok(Applied::Missing);
        };
        let transition = match decide(&agreement) {
            Decision::Unchanged => return Ok(Applied::Unchanged(agreement)),
            Decision::Changed(transition) | Decision::Ignored { transition, .. } => transition,
        };
        let written = transition.agreement.clone();
        match store
            .commit(Commit {
                transition,
                expected: Some(Revision::of(&agreement)),
                idempotency: None,
                provider_event: None,
            })
            .await
        {
            Ok(()) => return Ok(Applied::Committed(written)),
            Err(CommitError::Conflict) => retry.pause(attempt).await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::Contention)
}
