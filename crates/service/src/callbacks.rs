//! Provider callbacks (SPEC section 5): verified events are queued, then applied here exactly once
//! per provider event id, retried on conflicts.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use countersign_domain::{
    Agreement, Decision, FileRef, IgnoreReason, ProviderEvent, ProviderEventKind, Rules,
};
use countersign_provider::VerifiedEvent;
use countersign_store::{
    AgreementCommit, AgreementGet, Commit, CommitError, ProviderEventMark, Revision,
};
use thiserror::Error;

use crate::clock::Clock;
use crate::error::ServiceError;
use crate::retry::RetryPolicy;

/// Maps a verified provider event to the events of SPEC section 2. What cannot be mapped becomes
/// `Unusable`, which the domain records as ignored rather than failing the delivery forever.
pub fn to_domain_event(event: &VerifiedEvent) -> ProviderEvent {
    let participant = |make: fn(String) -> ProviderEventKind| match &event.participant_id {
        Some(participant_id) if !participant_id.is_empty() => make(participant_id.clone()),
        _ => ProviderEventKind::Unusable {
            event_type: event.event_type.clone(),
            problem: "participant_id is missing".to_owned(),
        },
    };
    let kind = match event.event_type.as_str() {
        "participant.signed" => {
            participant(|participant_id| ProviderEventKind::ParticipantSigned { participant_id })
        }
        "participant.refused" => {
            participant(|participant_id| ProviderEventKind::ParticipantRefused { participant_id })
        }
        "participant.delivery_failed" => {
            participant(
                |participant_id| ProviderEventKind::ParticipantDeliveryFailed { participant_id },
            )
        }
        "participant.identity_check_failed" => {
            participant(
                |participant_id| ProviderEventKind::ParticipantIdentityCheckFailed {
                    participant_id,
                },
            )
        }
        "agreement.failed" => ProviderEventKind::AgreementFailed,
        "agreement.signed_document" => match event
            .signed_document
            .clone()
            .map(serde_json::from_value::<FileRef>)
        {
            Some(Ok(document)) => ProviderEventKind::SignedDocument { document },
            Some(Err(error)) => ProviderEventKind::Unusable {
                event_type: event.event_type.clone(),
                problem: format!("signed_document is not a file reference: {error}"),
            },
            None => ProviderEventKind::Unusable {
                event_type: event.event_type.clone(),
                problem: "signed_document is missing".to_owned(),
            },
        },
        other => ProviderEventKind::Unusable {
            event_type: other.to_owned(),
            problem: "unknown event type".to_owned(),
        },
    };
    ProviderEvent {
        provider: event.provider.clone(),
        event_id: event.event_id.clone(),
        occurred_at: event.occurred_at,
        kind,
    }
}

/// What applying one provider event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    Applied {
        version: u64,
    },
    Ignored {
        reason: String,
    },
    Duplicate,
    /// Verified, but for no agreement we know: acknowledged and logged, never retried.
    UnknownAgreement,
}

pub struct CallbackProcessor<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    rules: Rules,
    retry: RetryPolicy,
}

impl<S: AgreementGet + AgreementCommit + ?Sized> CallbackProcessor<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, rules: Rules, retry: RetryPolicy) -> Self {
        CallbackProcessor {
            store,
            clock,
            rules,
            retry,
        }
    }

    /// Applies one event: one read and one guarded write on the happy path.
    pub async fn process(&self, event: &VerifiedEvent) -> Result<CallbackOutcome, ServiceError> {
        let domain_event = to_domain_event(event);
        for attempt in 0..self.retry.max_attempts {
            let Some(agreement) = self.store.get_agreement(&event.agreement_id).await? else {
                tracing::warn!(
                    provider = %event.provider,
                    event_id = %event.event_id,
                    agreement_id = %event.agreement_id,
                    "provider event for an unknown agreement: acknowledged, not applied"
                );
                return Ok(CallbackOutcome::UnknownAgreement);
            };
            let now = self.clock.now();
            let (transition, outcome) =
                match agreement.decide_provider_event(&domain_event, &self.rules, now) {
                    Decision::Changed(transition) => {
                        let version = transition.agreement.version;
                        (transition, CallbackOutcome::Applied { version })
                    }
                    Decision::Ignored { transition, reason } => {
                        warn_if_misdirected(event, &reason);
                        (
                            transition,
                            CallbackOutcome::Ignored {
                                reason: reason.to_string(),
                            },
                        )
                    }
                    Decision::Unchanged => {
                        return Ok(CallbackOutcome::Ignored {
                            reason: "no change".to_owned(),
                        })
                    }
                };
            let mark = ProviderEventMark {
                provider: event.provider.clone(),
                event_id: event.event_id.clone(),
                agreement_id: agreement.id.clone(),
                recorded_at: now,
            };
            match self
                .store
                .commit(Commit {
                    transition,
                    expected: Some(Revision::of(&agreement)),
                    idempotency: None,
                    provider_event: Some(mark),
                })
                .await
            {
                Ok(()) => return Ok(outcome),
                Err(CommitError::Conflict) => self.retry.pause(attempt).await,
                Err(CommitError::DuplicateProviderEvent) => {
                    self.record_duplicate(&event.agreement_id, &event.event_id)
                        .await?;
                    return Ok(CallbackOutcome::Duplicate);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contention)
    }

    /// A redelivered event id: recorded in the history, nothing else.
    async fn record_duplicate(
        &self,
        agreement_id: &str,
        event_id: &str,
    ) -> Result<(), ServiceError> {
        for attempt in 0..self.retry.max_attempts {
            let Some(agreement) = self.store.get_agreement(agreement_id).await? else {
                return Ok(());
            };
            let transition: countersign_domain::Transition = Agreement::record_ignored(
                &agreement,
                event_id,
                &IgnoreReason::Duplicate,
                self.clock.now(),
            );
            match self
                .store
                .commit(Commit {
                    transition,
                    expected: Some(Revision::of(&agreement)),
                    idempotency: None,
                    provider_event: None,
                })
                .await
            {
                Ok(()) => return Ok(()),
                Err(CommitError::Conflict) => self.retry.pause(attempt).await,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contention)
    }
}

/// A verified webhook aimed at an agreement its provider does not carry is what a leaked or
/// misused secret looks like: worth an operator's attention, unlike an ordinary late event.
fn warn_if_misdirected(event: &VerifiedEvent, reason: &IgnoreReason) {
    match reason {
        IgnoreReason::NotItsProvider { .. } | IgnoreReason::SandboxOnLiveAgreement => {
            tracing::warn!(
                provider = %event.provider,
                event_id = %event.event_id,
                agreement_id = %event.agreement_id,
                %reason,
                "provider event ignored: not from the agreement's provider"
            );
        }
        IgnoreReason::Duplicate
        | IgnoreReason::Unusable { .. }
        | IgnoreReason::AgreementNotPending(_)
        | IgnoreReason::UnknownParticipant(_)
        | IgnoreReason::ParticipantFinal { .. }
        | IgnoreReason::ParticipantNotInvited(_)
        | IgnoreReason::SignedDocumentAlreadyRecorded => {}
    }
}

#[derive(Debug, Error)]
#[error("callback queue unavailable: {0}")]
pub struct QueueError(pub String);

/// Where a verified callback goes before it is applied (SQS on AWS, a channel locally).
#[async_trait]
pub trait CallbackQueue: Send + Sync {
    async fn enqueue(&self, event: &VerifiedEvent) -> Result<(), QueueError>;
}

/// A queue that only records: for handler tests, which then apply what was queued themselves.
#[derive(Default)]
pub struct RecordingQueue(Mutex<Vec<VerifiedEvent>>);

impl RecordingQueue {
    pub fn take(&self) -> Vec<VerifiedEvent> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

#[async_trait]
impl CallbackQueue for RecordingQueue {
    async fn enqueue(&self, event: &VerifiedEvent) -> Result<(), QueueError> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event.clone());
        Ok(())
    }
}
