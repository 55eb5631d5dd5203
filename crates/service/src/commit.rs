//! The one read → decide → commit → retry loop of every transition: read the agreement, let
//! `decide` say what to write, commit it guarded by the revision read, and on a conflict all over
//! again from a fresh read.

use std::sync::Arc;

use countersign_domain::{Agreement, Decision, Transition};
use countersign_store::{
    AgreementCommit, AgreementGet, Commit, CommitError, IdempotencyRecord, ProviderEventMark,
    Revision,
};

use crate::error::ServiceError;
use crate::retry::RetryPolicy;

/// Where the loop starts.
// Passed once and taken apart at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Start<'a> {
    /// Reading the agreement with this id.
    Id(&'a str),
    /// From the agreement as just read elsewhere (a listing page): one read fewer.
    Read(Arc<Agreement>),
}

/// What one decision writes, all together: the transition, and the request's idempotency record
/// or the provider event's mark when there is one.
pub struct Write {
    pub transition: Transition,
    pub idempotency: Option<IdempotencyRecord>,
    pub provider_event: Option<ProviderEventMark>,
}

impl From<Transition> for Write {
    fn from(transition: Transition) -> Self {
        Write {
            transition,
            idempotency: None,
            provider_event: None,
        }
    }
}

/// What `decide` says about the agreement as read, each with what to answer once done.
// Passed once and taken apart at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Step<T> {
    Write(Write, T),
    /// Nothing to write.
    Stop(T),
}

/// A domain decision as a step: its transition written (ignored events are recorded too), or
/// nothing.
pub fn step(decision: Decision) -> Step<()> {
    match decision {
        Decision::Changed(transition) | Decision::Ignored { transition, .. } => {
            Step::Write(transition.into(), ())
        }
        Decision::Unchanged => Step::Stop(()),
    }
}

/// What [`read_decide_commit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// The write committed: the agreement as written.
    Committed(Agreement, T),
    /// `decide` wrote nothing: the agreement as read.
    Stopped(Agreement, T),
    /// No such agreement.
    Missing,
}

pub async fn read_decide_commit<S, T>(
    store: &S,
    retry: &RetryPolicy,
    start: Start<'_>,
    mut decide: impl FnMut(&Agreement) -> Result<Step<T>, ServiceError>,
) -> Result<Applied<T>, ServiceError>
where
    S: AgreementGet + AgreementCommit + ?Sized,
{
    let (id, mut read) = match start {
        Start::Id(id) => (id.to_owned(), None),
        Start::Read(agreement) => (agreement.id.clone(), Some(agreement)),
    };
    for attempt in 0..retry.max_attempts {
        let agreement = match read.take() {
            Some(agreement) => agreement,
            None => match store.get_agreement(&id).await? {
                Some(agreement) => agreement,
                None => return Ok(Applied::Missing),
            },
        };
        let (write, then) = match decide(&agreement)? {
            Step::Write(write, then) => (write, then),
            Step::Stop(then) => return Ok(Applied::Stopped(Arc::unwrap_or_clone(agreement), then)),
        };
        let written = write.transition.agreement.clone();
        match store
            .commit(Commit {
                transition: write.transition,
                expected: Some(Revision::of(&agreement)),
                idempotency: write.idempotency,
                provider_event: write.provider_event,
            })
            .await
        {
            Ok(()) => return Ok(Applied::Committed(written, then)),
            Err(CommitError::Conflict) => retry.pause(attempt).await,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ServiceError::Contention)
}
