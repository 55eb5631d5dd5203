//! Provider callbacks (SPEC section 5): verified events are queued, then applied here exactly once
//! per provider event id, retried on conflicts.

use std::sync::Arc;

use async_trait::async_trait;
use countersign_domain::{
    Agreement, Decision, FileRef, IgnoreReason, ProviderEvent, ProviderEventKind, Rules, Status,
};
use countersign_provider::{AgreementRef, EventKind, Providers, VerifiedEvent};
use countersign_store::{AgreementCommit, AgreementGet, ProviderEventMark, ProviderProgressStore};
use thiserror::Error;

use crate::clock::Clock;
use crate::commit::{read_decide_commit, Applied, Start, Step, Write};
use crate::dispatcher::StoreProgressLog;
use crate::documents::{sha256_hex, SignedDocumentStore};
use crate::error::ServiceError;
use crate::retry::RetryPolicy;

/// What stands between a verified event and the domain event it is.
enum Mapping {
    Event(ProviderEvent),
    /// The event may be early rather than wrong (it names a participant of a round whose delivery
    /// is not recorded yet, or a signed document the provider does not have yet): retried later.
    NotYet(String),
}

/// Maps a verified event to the events of SPEC section 2 against the agreement it names: the
/// adapter already decided what it means ([`EventKind`]); this finds the participant by
/// countersign's id, by the provider's reference, or failing those by email. What cannot be
/// mapped becomes `Unusable`, which the domain records as ignored rather than failing the
/// delivery forever.
fn map_event(event: &VerifiedEvent, agreement: &Agreement, signed: Option<FileRef>) -> Mapping {
    let unusable = |problem: String| ProviderEventKind::Unusable {
        event_type: event.event_type.clone(),
        problem,
    };
    let kind = if event.kind.is_participant_event() {
        match participant_of(event, agreement) {
            Ok(participant_id) => match event.kind {
                EventKind::ParticipantSigned => {
                    ProviderEventKind::ParticipantSigned { participant_id }
                }
                EventKind::ParticipantRefused => {
                    ProviderEventKind::ParticipantRefused { participant_id }
                }
                EventKind::ParticipantDeliveryFailed => {
                    ProviderEventKind::ParticipantDeliveryFailed { participant_id }
                }
                EventKind::ParticipantIdentityCheckFailed => {
                    ProviderEventKind::ParticipantIdentityCheckFailed { participant_id }
                }
                EventKind::SignedDocument
                | EventKind::SignedDocumentReady
                | EventKind::AgreementFailed
                | EventKind::AgreementCancelled
                | EventKind::AgreementExpired
                | EventKind::Ignored { .. } => unusable("not a participant event".to_owned()),
            },
            Err(ParticipantProblem::NotYet(why)) => return Mapping::NotYet(why),
            Err(ParticipantProblem::Unusable(problem)) => unusable(problem),
        }
    } else {
        match &event.kind {
            EventKind::SignedDocument => match event
                .signed_document
                .clone()
                .map(serde_json::from_value::<FileRef>)
            {
                Some(Ok(document)) => ProviderEventKind::SignedDocument { document },
                Some(Err(error)) => unusable(format!(
                    "signed_document is not a file reference: {}",
                    plain_serde_error(&error)
                )),
                None => unusable("signed_document is missing".to_owned()),
            },
            EventKind::SignedDocumentReady => match signed {
                Some(document) => ProviderEventKind::SignedDocument { document },
                None => unusable(format!(
                    "the agreement is {}: no signed document to fetch",
                    agreement.status
                )),
            },
            EventKind::AgreementFailed => ProviderEventKind::AgreementFailed,
            EventKind::AgreementCancelled => ProviderEventKind::AgreementCancelled,
            EventKind::AgreementExpired => ProviderEventKind::AgreementExpired,
            EventKind::Ignored { reason } => unusable(reason.clone()),
            EventKind::ParticipantSigned
            | EventKind::ParticipantRefused
            | EventKind::ParticipantDeliveryFailed
            | EventKind::ParticipantIdentityCheckFailed => {
                unusable("names no participant".to_owned())
            }
        }
    };
    Mapping::Event(ProviderEvent {
        provider: event.provider.clone(),
        event_id: event.event_id.clone(),
        occurred_at: event.occurred_at,
        kind,
    })
}

enum ParticipantProblem {
    NotYet(String),
    Unusable(String),
}

fn participant_of(
    event: &VerifiedEvent,
    agreement: &Agreement,
) -> Result<String, ParticipantProblem> {
    let named = &event.participant;
    if let Some(id) = named.id.as_deref().filter(|id| !id.is_empty()) {
        return Ok(id.to_owned());
    }
    if let Some(reference) = named
        .reference
        .as_deref()
        .filter(|reference| !reference.is_empty())
    {
        if let Some(participant) = agreement
            .participants
            .iter()
            .find(|participant| participant.provider_reference.as_deref() == Some(reference))
        {
            return Ok(participant.id.clone());
        }
        if agreement.awaits_delivery() {
            return Err(ParticipantProblem::NotYet(format!(
                "participant reference `{reference}` before the round's delivery is recorded"
            )));
        }
        return Err(ParticipantProblem::Unusable(format!(
            "participant reference `{reference}` is not of the agreement's current signing round"
        )));
    }
    if let Some(email) = named.email.as_deref().filter(|email| !email.is_empty()) {
        return agreement
            .participants
            .iter()
            .find(|participant| {
                participant
                    .email
                    .as_deref()
                    .is_some_and(|own| own.eq_ignore_ascii_case(email))
            })
            .map(|participant| participant.id.clone())
            .ok_or_else(|| {
                ParticipantProblem::Unusable("no participant has the event's email".to_owned())
            });
    }
    Err(ParticipantProblem::Unusable(
        "participant is missing".to_owned(),
    ))
}

/// serde's message without its Rust vocabulary: only the part before " at line".
fn plain_serde_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    text.split(" at line").next().unwrap_or_default().to_owned()
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
    /// Fetch and keep signed documents (SPEC section 9); without them such an event is retried.
    signed_documents: Option<(Providers, Arc<dyn SignedDocumentStore>)>,
}

impl<S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static>
    CallbackProcessor<S>
{
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, rules: Rules, retry: RetryPolicy) -> Self {
        CallbackProcessor {
            store,
            clock,
            rules,
            retry,
            signed_documents: None,
        }
    }

    /// Signed documents the provider announces are fetched with its client from `providers`
    /// and kept in `store`.
    pub fn with_signed_documents(
        mut self,
        providers: Providers,
        store: Arc<dyn SignedDocumentStore>,
    ) -> Self {
        self.signed_documents = Some((providers, store));
        self
    }

    /// The agreement the event names: by id, or by the provider's reference through its key.
    async fn agreement_id(&self, event: &VerifiedEvent) -> Result<Option<String>, ServiceError> {
        match &event.agreement {
            None => Ok(None),
            Some(AgreementRef::Id(id)) => Ok(Some(id.clone())),
            Some(AgreementRef::Reference(reference)) => Ok(self
                .store
                .find_by_provider_reference(&event.provider, reference)
                .await?),
        }
    }

    /// Applies one event: one read and one guarded write on the happy path.
    pub async fn process(&self, event: &VerifiedEvent) -> Result<CallbackOutcome, ServiceError> {
        let Some(agreement_id) = self.agreement_id(event).await? else {
            tracing::warn!(
                provider = %event.provider,
                event_id = %event.event_id,
                agreement = ?event.agreement,
                "provider event for an unknown agreement: acknowledged, not applied"
            );
            return Ok(CallbackOutcome::UnknownAgreement);
        };
        let unknown = || {
            tracing::warn!(
                provider = %event.provider,
                event_id = %event.event_id,
                %agreement_id,
                "provider event for an unknown agreement: acknowledged, not applied"
            );
            Ok(CallbackOutcome::UnknownAgreement)
        };
        let Some(first) = self.store.get_agreement(&agreement_id).await? else {
            return unknown();
        };
        // Fetched once, before the loop: a retry after a conflict maps the same document.
        let signed = if event.kind == EventKind::SignedDocumentReady {
            self.signed_document(event, &first).await?
        } else {
            None
        };
        let applied = read_decide_commit(
            self.store.as_ref(),
            &self.retry,
            Start::Read(first),
            |agreement| {
                let domain_event = match map_event(event, agreement, signed.clone()) {
                    Mapping::Event(domain_event) => domain_event,
                    Mapping::NotYet(why) => return Err(ServiceError::NotYet(why)),
                };
                let now = self.clock.now();
                let (transition, outcome) =
                    match agreement.decide_provider_event(&domain_event, &self.rules, now) {
                        Decision::Changed(transition) => {
                            let version = transition.agreement.version;
                            (transition, CallbackOutcome::Applied { version })
                        }
                        Decision::Ignored { transition, reason } => {
                            warn_if_misdirected(event, &agreement_id, &reason);
                            let reason = reason.to_string();
                            (transition, CallbackOutcome::Ignored { reason })
                        }
                        Decision::Unchanged => {
                            return Ok(Step::Stop(CallbackOutcome::Ignored {
                                reason: "no change".to_owned(),
                            }))
                        }
                    };
                let mark = ProviderEventMark {
                    provider: event.provider.clone(),
                    event_id: event.event_id.clone(),
                    agreement_id: agreement.id.clone(),
                    recorded_at: now,
                };
                let write = Write {
                    transition,
                    idempotency: None,
                    provider_event: Some(mark),
                };
                Ok(Step::Write(write, outcome))
            },
        )
        .await;
        match applied {
            Ok(Applied::Committed(_, outcome) | Applied::Stopped(_, outcome)) => Ok(outcome),
            Ok(Applied::Missing) => unknown(),
            Err(ServiceError::DuplicateProviderEvent) => {
                self.record_duplicate(&agreement_id, &event.event_id)
                    .await?;
                Ok(CallbackOutcome::Duplicate)
            }
            Err(other) => Err(other),
        }
    }

    /// The signed document the provider announced, fetched and kept, as the file reference to
    /// record; `None` when the agreement takes none (not pending or fulfilled) and the event is
    /// to be ignored. The one already recorded is returned as it is, so a redelivery fetches
    /// nothing.
    async fn signed_document(
        &self,
        event: &VerifiedEvent,
        agreement: &Agreement,
    ) -> Result<Option<FileRef>, ServiceError> {
        if !matches!(agreement.status, Status::Pending | Status::Fulfilled)
            || agreement.provider.name != event.provider
        {
            return Ok(None);
        }
        if let Some(recorded) = &agreement.documents.signed_document {
            return Ok(Some(recorded.clone()));
        }
        let Some((providers, store)) = &self.signed_documents else {
            return Err(ServiceError::NotYet(
                "no signed-document store is configured here".to_owned(),
            ));
        };
        let Some(client) = providers.client(&event.provider) else {
            return Err(ServiceError::NotYet(format!(
                "provider `{}` is not configured here",
                event.provider
            )));
        };
        let log = StoreProgressLog::new(
            self.store.clone(),
            self.clock.clone(),
            &agreement.id,
            client.name(),
        );
        let file = match client.signed_document(agreement, &log).await {
            Ok(Some(file)) => file,
            Ok(None) => {
                return Err(ServiceError::NotYet(
                    "the provider has no signed document yet".to_owned(),
                ))
            }
            Err(error) => {
                return Err(ServiceError::NotYet(format!(
                    "fetching the signed document: {error}"
                )))
            }
        };
        let sha256 = sha256_hex(&file.bytes);
        let uri = store
            .store(&agreement.id, &file, &sha256)
            .await
            .map_err(|error| {
                ServiceError::NotYet(format!("storing the signed document: {error}"))
            })?;
        Ok(Some(FileRef {
            id: format!("signed-{}", &sha256[..16]),
            filename: file.filename,
            mime_type: file.mime_type,
            size: u64::try_from(file.bytes.len()).unwrap_or(u64::MAX),
            sha256,
            uri,
        }))
    }

    /// A redelivered event id: recorded in the history, nothing else.
    async fn record_duplicate(
        &self,
        agreement_id: &str,
        event_id: &str,
    ) -> Result<(), ServiceError> {
        read_decide_commit(
            self.store.as_ref(),
            &self.retry,
            Start::Id(agreement_id),
            |agreement| {
                let transition = Agreement::record_ignored(
                    agreement,
                    event_id,
                    &IgnoreReason::Duplicate,
                    self.clock.now(),
                );
                Ok(Step::Write(transition.into(), ()))
            },
        )
        .await?;
        Ok(())
    }
}

/// A verified webhook aimed at an agreement its provider does not carry is what a leaked or
/// misused secret looks like: worth an operator's attention, unlike an ordinary late event.
fn warn_if_misdirected(event: &VerifiedEvent, agreement_id: &str, reason: &IgnoreReason) {
    match reason {
        IgnoreReason::NotItsProvider { .. } | IgnoreReason::SandboxOnLiveAgreement => {
            tracing::warn!(
                provider = %event.provider,
                event_id = %event.event_id,
                %agreement_id,
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
