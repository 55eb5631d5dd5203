//! The provider dispatcher (SPEC section 9): published events that ask something of the
//! agreement's provider become calls of its [`ProviderClient`], picked by `provider.name`.
//! Every call may be repeated (a redelivered message, a function that died halfway): adapters
//! resume from their progress in the store, and what the dispatcher commits is decided again
//! from the agreement as it is then.

use std::sync::{Arc, Mutex};

use chrono::DateTime;
use chrono::Utc;
use countersign_domain::{Agreement, EntryType, PublishedEvent, Status};
use countersign_provider::{
    DocumentBytes, OutboundError, ProgressLog, ProviderClient, Providers, StoredProgress,
};
use countersign_store::{
    AgreementCommit, AgreementGet, CommitError, ProviderProgress, ProviderProgressStore, StoreError,
};
use serde::Deserialize;
use thiserror::Error;

use crate::clock::Clock;
use crate::commit::{read_decide_commit, step, Applied, Start};
use crate::documents::{read_checked, DocumentError, DocumentSource};
use crate::error::ServiceError;
use crate::retry::RetryPolicy;

#[derive(Debug, Error)]
pub enum DispatchError {
    /// Worth another delivery: the provider or the store was unavailable, another dispatch moved
    /// the progress, or this deployment cannot reach the provider (yet).
    #[error("{0}")]
    Retryable(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for DispatchError {
    fn from(error: StoreError) -> Self {
        DispatchError::Service(error.into())
    }
}

/// The part of a published event the dispatcher reads (EventBridge `detail-type` and `detail`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DispatchEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: DispatchEventDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DispatchEventDetail {
    pub agreement_id: String,
    pub tenant: String,
    pub sequence: u64,
    #[serde(default)]
    pub signing_group: Option<u32>,
}

impl From<&PublishedEvent> for DispatchEvent {
    /// The event as the dispatcher's queue would carry it, without going through its JSON (the
    /// in-process dispatch of countersign-local).
    fn from(event: &PublishedEvent) -> Self {
        DispatchEvent {
            detail_type: event.detail_type.to_owned(),
            detail: DispatchEventDetail {
                agreement_id: event.detail.agreement_id.clone(),
                tenant: event.detail.tenant.clone(),
                sequence: event.detail.sequence,
                signing_group: event.detail.signing_group,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    /// The provider did what was asked (`send`, `invite`, `reopen`, `cancel`).
    Dispatched {
        provider: String,
        action: &'static str,
    },
    /// The round is at the provider and its delivery is recorded (`AgreementDeliveredToProvider`).
    Delivered { provider: String, version: u64 },
    /// The round could not be delivered and retrying would not help: the agreement failed.
    Failed { reason: String },
    /// The provider refused a reopen or a cancel of an agreement countersign already moved on:
    /// logged for an operator, nothing to retry.
    Refused { provider: String, message: String },
    /// Nothing to ask of the provider (an event it does not act on, a round overtaken by a
    /// reopen, a cancellation of an envelope never sent).
    NothingToDo(&'static str),
    /// The agreement is gone or belongs to another tenant: acknowledged, never retried.
    UnknownAgreement,
}

/// The detail-types the dispatcher acts on; its queue's rule on the bus lists the same.
pub const DISPATCHED_EVENT_TYPES: [EntryType; 4] = [
    EntryType::AgreementSentForSignature,
    EntryType::SigningGroupInvited,
    EntryType::AgreementReopened,
    EntryType::AgreementCancelled,
];

/// What a dispatched event asks.
enum Ask {
    Send,
    Invite,
    Reopen,
    Cancel,
}

fn ask_of(detail_type: &str) -> Option<Ask> {
    let entry_type = DISPATCHED_EVENT_TYPES
        .into_iter()
        .find(|entry_type| entry_type.as_str() == detail_type)?;
    match entry_type {
        EntryType::AgreementSentForSignature => Some(Ask::Send),
        EntryType::SigningGroupInvited => Some(Ask::Invite),
        EntryType::AgreementReopened => Some(Ask::Reopen),
        EntryType::AgreementCancelled => Some(Ask::Cancel),
        EntryType::AgreementCreated
        | EntryType::AgreementUpdated
        | EntryType::ParticipantSigned
        | EntryType::ParticipantRefused
        | EntryType::ParticipantDeliveryFailed
        | EntryType::ParticipantIdentityCheckFailed
        | EntryType::CustomerJourneyStopped
        | EntryType::AgreementFulfilled
        | EntryType::AgreementRefused
        | EntryType::AgreementExpired
        | EntryType::AgreementFailed
        | EntryType::AgreementDeliveredToProvider
        | EntryType::SignedDocumentStored
        | EntryType::ProviderEventIgnored => None,
    }
}

pub struct Dispatcher<S: ?Sized> {
    store: Arc<S>,
    providers: Providers,
    documents: Arc<dyn DocumentSource>,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    lease_wait: std::time::Duration,
}

/// How long a dispatch holds its agreement's lease: longer than any one provider call with its
/// own retries (the lease is renewed as progress is recorded), short enough that the lease of a
/// dispatch that died is free again before its message is redelivered.
const LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// How long a dispatch waits for another dispatch of the same agreement before it gives up and
/// is redelivered, and how often it looks meanwhile.
const LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const LEASE_POLL: std::time::Duration = std::time::Duration::from_millis(250);

impl<S> Dispatcher<S>
where
    S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
{
    pub fn new(
        store: Arc<S>,
        providers: Providers,
        documents: Arc<dyn DocumentSource>,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
    ) -> Self {
        Dispatcher {
            store,
            providers,
            documents,
            clock,
            retry,
            lease_wait: LEASE_WAIT,
        }
    }

    /// How long a dispatch waits for another dispatch of its agreement to end (10 s by default).
    pub fn with_lease_wait(mut self, wait: std::time::Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// Acts on one published event. Dispatches of one agreement take turns (its
    /// [`DispatchLease`]): two sends side by side would each create the agreement at the
    /// provider. The agreement is read once the lease is held, so a dispatch that waited sees
    /// what the one before it did.
    pub async fn dispatch(&self, event: &DispatchEvent) -> Result<DispatchOutcome, DispatchError> {
        let Some(ask) = ask_of(&event.detail_type) else {
            return Ok(DispatchOutcome::NothingToDo(
                "not an event the provider acts on",
            ));
        };
        let lease = DispatchLease::take(
            self.store.clone(),
            self.clock.clone(),
            &event.detail.agreement_id,
            self.lease_wait,
        )
        .await?;
        let outcome = self.dispatch_holding(event, ask, &lease).await;
        lease.release().await;
        outcome
    }

    async fn dispatch_holding(
        &self,
        event: &DispatchEvent,
        ask: Ask,
        lease: &DispatchLease<S>,
    ) -> Result<DispatchOutcome, DispatchError> {
        let detail = &event.detail;
        let Some(agreement) = self
            .store
            .get_agreement(&detail.agreement_id)
            .await?
            .filter(|agreement| agreement.tenant == detail.tenant)
        else {
            tracing::warn!(agreement_id = %detail.agreement_id, "dispatch for an unknown agreement: acknowledged");
            return Ok(DispatchOutcome::UnknownAgreement);
        };
        let Some(client) = self.providers.client(&agreement.provider.name) else {
            return Err(DispatchError::Retryable(format!(
                "provider `{}` is not configured here",
                agreement.provider.name
            )));
        };
        let log = StoreProgressLog::new(
            self.store.clone(),
            self.clock.clone(),
            &agreement.id,
            client.name(),
        )
        .renewing(lease);
        match ask {
            Ask::Send => self.send(&agreement, client.as_ref(), &log).await,
            Ask::Invite => {
                let Some(step) = detail.signing_group else {
                    return Err(DispatchError::Retryable(
                        "SigningGroupInvited without signing_group".to_owned(),
                    ));
                };
                // Reopened since: the invitation was withdrawn with the round.
                if agreement.status != Status::Pending {
                    return Ok(DispatchOutcome::NothingToDo(
                        "the agreement is no longer pending",
                    ));
                }
                client.invite(&agreement, step).await.map_err(retryable)?;
                Ok(dispatched(client.as_ref(), "invite"))
            }
            Ask::Reopen => {
                if agreement.status != Status::Open {
                    // Sent again since (the send brings the provider in line itself), or ended.
                    return Ok(DispatchOutcome::NothingToDo(
                        "the agreement is no longer open",
                    ));
                }
                match client.reopen(&agreement, &log).await {
                    Ok(()) => Ok(dispatched(client.as_ref(), "reopen")),
                    Err(error) => refused(client.as_ref(), &agreement, "reopen", error),
                }
            }
            Ask::Cancel => {
                if agreement.status != Status::Cancelled {
                    return Ok(DispatchOutcome::NothingToDo(
                        "the agreement is not cancelled",
                    ));
                }
                match client.cancel(&agreement, &log).await {
                    Ok(true) => Ok(dispatched(client.as_ref(), "cancel")),
                    Ok(false) => Ok(DispatchOutcome::NothingToDo(
                        "nothing was sent to the provider",
                    )),
                    Err(error) => refused(client.as_ref(), &agreement, "cancel", error),
                }
            }
        }
    }

    /// The current round to the provider, its documents read and checked first; then its
    /// delivery recorded, or the agreement failed when retrying cannot help.
    async fn send(
        &self,
        agreement: &Agreement,
        client: &dyn ProviderClient,
        log: &StoreProgressLog<'_, S>,
    ) -> Result<DispatchOutcome, DispatchError> {
        let (Status::Pending, Some(round)) = (agreement.status, agreement.sent_at) else {
            return Ok(DispatchOutcome::NothingToDo(
                "the agreement is no longer pending",
            ));
        };
        if agreement.delivered_round == Some(round) {
            return Ok(DispatchOutcome::NothingToDo(
                "this round is already delivered",
            ));
        }
        let documents = if client.reads_documents() {
            match read_checked(self.documents.as_ref(), agreement).await {
                Ok(documents) => documents,
                Err(DocumentError::Unreadable(reason)) => {
                    return self.fail_round(agreement, round, reason).await
                }
                Err(DocumentError::Unavailable(reason)) => {
                    return Err(DispatchError::Retryable(reason))
                }
            }
        } else {
            DocumentBytes::new()
        };
        let delivery = match client.send(agreement, &documents, log).await {
            Ok(delivery) => delivery,
            Err(OutboundError::Permanent(message)) => {
                let reason = format!("the provider refused the agreement: {message}");
                return self.fail_round(agreement, round, reason).await;
            }
            Err(OutboundError::Retryable(message)) => {
                return Err(DispatchError::Retryable(message))
            }
        };
        let Some(delivery) = delivery else {
            return Ok(dispatched(client, "send"));
        };
        let now = self.clock.now();
        match read_decide_commit(
            self.store.as_ref(),
            &self.retry,
            Start::Id(&agreement.id),
            |current| Ok(step(current.decide_delivered(round, &delivery, now))),
        )
        .await?
        {
            Applied::Committed(written, ()) => Ok(DispatchOutcome::Delivered {
                provider: client.name().to_owned(),
                version: written.version,
            }),
            Applied::Stopped(current, ()) if current.status == Status::Cancelled => {
                // Cancelled while the send ran: its own dispatch may have found nothing to
                // cancel yet, so the round is cancelled at the provider here.
                match client.cancel(&current, log).await {
                    Ok(_) => Ok(dispatched(client, "cancel")),
                    Err(error) => refused(client, &current, "cancel", error),
                }
            }
            Applied::Stopped(..) => Ok(DispatchOutcome::NothingToDo(
                "the round ended while it was sent",
            )),
            Applied::Missing => Ok(DispatchOutcome::UnknownAgreement),
        }
    }

    async fn fail_round(
        &self,
        agreement: &Agreement,
        round: DateTime<Utc>,
        reason: String,
    ) -> Result<DispatchOutcome, DispatchError> {
        tracing::warn!(agreement_id = %agreement.id, %reason, "the round cannot be delivered: the agreement fails");
        let now = self.clock.now();
        read_decide_commit(
            self.store.as_ref(),
            &self.retry,
            Start::Id(&agreement.id),
            |current| Ok(step(current.decide_delivery_failed(round, &reason, now))),
        )
        .await?;
        Ok(DispatchOutcome::Failed { reason })
    }
}

fn dispatched(client: &dyn ProviderClient, action: &'static str) -> DispatchOutcome {
    DispatchOutcome::Dispatched {
        provider: client.name().to_owned(),
        action,
    }
}

fn retryable(error: OutboundError) -> DispatchError {
    DispatchError::Retryable(error.to_string())
}

/// A reopen or cancel the provider refused for good: countersign has moved on already, so it is
/// logged for an operator rather than retried forever.
fn refused(
    client: &dyn ProviderClient,
    agreement: &Agreement,
    action: &str,
    error: OutboundError,
) -> Result<DispatchOutcome, DispatchError> {
    match error {
        OutboundError::Retryable(message) => Err(DispatchError::Retryable(message)),
        OutboundError::Permanent(message) => {
            tracing::error!(agreement_id = %agreement.id, provider = client.name(), action, %message, "the provider refused");
            Ok(DispatchOutcome::Refused {
                provider: client.name().to_owned(),
                message,
            })
        }
    }
}

/// One dispatch's turn with an agreement: taken with one conditional write, renewed while the
/// dispatch records progress, given back when it ends. A dispatch that died lets it go when it
/// runs out ([`LEASE`]).
pub struct DispatchLease<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    agreement_id: String,
    holder: String,
    renew_after: Mutex<DateTime<Utc>>,
}

impl<S: ProviderProgressStore + ?Sized> DispatchLease<S> {
    /// Takes the lease, waiting up to `wait` for the dispatch that holds it.
    async fn take(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        agreement_id: &str,
        wait: std::time::Duration,
    ) -> Result<Self, DispatchError> {
        let holder = format!("{:032x}", rand::random::<u128>());
        let started = tokio::time::Instant::now();
        loop {
            let now = clock.now();
            if store
                .take_dispatch_lease(agreement_id, &holder, now, now + LEASE)
                .await?
            {
                return Ok(DispatchLease {
                    store,
                    clock,
                    agreement_id: agreement_id.to_owned(),
                    holder,
                    renew_after: Mutex::new(now + LEASE / 2),
                });
            }
            if started.elapsed() >= wait {
                return Err(DispatchError::Retryable(
                    "another dispatch of this agreement is under way".to_owned(),
                ));
            }
            tokio::time::sleep(LEASE_POLL).await;
        }
    }

    /// Extends the lease once half of it has run: a long send keeps its turn.
    async fn renew(&self) -> Result<(), OutboundError> {
        let now = self.clock.now();
        if now < *lock(&self.renew_after) {
            return Ok(());
        }
        match self
            .store
            .take_dispatch_lease(&self.agreement_id, &self.holder, now, now + LEASE)
            .await
        {
            Ok(true) => {
                *lock(&self.renew_after) = now + LEASE / 2;
                Ok(())
            }
            Ok(false) => Err(OutboundError::Retryable(
                "this dispatch's lease ran out and another dispatch holds it".to_owned(),
            )),
            Err(error) => Err(OutboundError::Retryable(error.to_string())),
        }
    }

    /// Gives the lease back; if that fails, it runs out by itself.
    async fn release(&self) {
        if let Err(error) = self
            .store
            .release_dispatch_lease(&self.agreement_id, &self.holder)
            .await
        {
            tracing::warn!(agreement_id = %self.agreement_id, %error, "the dispatch lease was not given back: it runs out by itself");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An adapter's [`ProgressLog`] over the store: each save is guarded by the revision last read
/// or written, and renews the dispatch's lease when it has one.
pub struct StoreProgressLog<'a, S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    agreement_id: String,
    provider: String,
    revision: Mutex<u64>,
    lease: Option<&'a DispatchLease<S>>,
}

impl<'a, S: ProviderProgressStore + ?Sized> StoreProgressLog<'a, S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, agreement_id: &str, provider: &str) -> Self {
        StoreProgressLog {
            store,
            clock,
            agreement_id: agreement_id.to_owned(),
            provider: provider.to_owned(),
            revision: Mutex::new(0),
            lease: None,
        }
    }

    fn renewing(mut self, lease: &'a DispatchLease<S>) -> Self {
        self.lease = Some(lease);
        self
    }

    fn revision(&self) -> std::sync::MutexGuard<'_, u64> {
        lock(&self.revision)
    }
}

#[async_trait::async_trait]
impl<S: ProviderProgressStore + ?Sized> ProgressLog for StoreProgressLog<'_, S> {
    async fn load(&self) -> Result<Option<StoredProgress>, OutboundError> {
        let stored = self
            .store
            .get_provider_progress(&self.agreement_id)
            .await
            .map_err(|error| OutboundError::Retryable(error.to_string()))?;
        *self.revision() = stored.as_ref().map_or(0, |stored| stored.revision);
        Ok(stored.map(|stored| StoredProgress {
            state: stored.state,
            reference: stored.reference,
        }))
    }

    async fn save(&self, progress: StoredProgress) -> Result<(), OutboundError> {
        let revision = *self.revision() + 1;
        let record = ProviderProgress {
            agreement_id: self.agreement_id.clone(),
            provider: self.provider.clone(),
            state: progress.state,
            reference: progress.reference,
            revision,
            updated_at: self.clock.now(),
        };
        if let Some(lease) = self.lease {
            lease.renew().await?;
        }
        match self.store.put_provider_progress(&record).await {
            Ok(()) => {
                *self.revision() = revision;
                Ok(())
            }
            Err(CommitError::Conflict) => Err(OutboundError::Retryable(
                "the provider progress was moved by another dispatch of this agreement, or names a \
                 reference another agreement holds"
                    .to_owned(),
            )),
            Err(error) => Err(OutboundError::Retryable(error.to_string())),
        }
    }
}
