//! The provider dispatcher: published events that ask something of the e-signature provider
//! (send the envelope, invite the next signing group, withdraw it on reopening, cancel it) become
//! calls of a [`ProviderClient`]. Test-mode agreements go to the sandbox client, whose calls
//! never leave the system.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use countersign_domain::{Agreement, EntryType};
use countersign_store::{AgreementGet, StoreError};
use serde::Deserialize;
use thiserror::Error;

/// What the provider is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAction {
    /// Create and send the envelope (documents, participants, signing order).
    SendEnvelope,
    /// Release the invitations of one signing step to these participants.
    Invite {
        step: u32,
        participant_ids: Vec<String>,
    },
    /// Withdraw the sent envelope: the agreement was reopened.
    Withdraw,
    /// Cancel the sent envelope: the agreement was cancelled after it was sent.
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRequest {
    pub agreement_id: String,
    pub tenant: String,
    pub action: ProviderAction,
    /// The same for every redelivery of the event: the provider can drop repeats.
    pub idempotency_key: String,
}

#[derive(Debug, Error)]
pub enum DispatchError {
    #[error("no e-signature provider is configured for live agreements")]
    NoLiveProvider,
    #[error("the provider refused or failed: {0}")]
    Provider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait ProviderClient: Send + Sync {
    fn name(&self) -> &str;
    async fn dispatch(
        &self,
        agreement: &Agreement,
        request: &ProviderRequest,
    ) -> Result<(), DispatchError>;
}

/// The sandbox provider's outbound side: nothing leaves the system. It logs each call; a
/// recording one also keeps them, so tests can see what a real provider would have been asked.
pub struct SandboxClient {
    recorded: Option<Mutex<Vec<ProviderRequest>>>,
}

impl SandboxClient {
    /// Logs only: what a long-running function uses.
    pub fn logging() -> Self {
        SandboxClient { recorded: None }
    }

    pub fn recording() -> Self {
        SandboxClient {
            recorded: Some(Mutex::new(Vec::new())),
        }
    }

    /// What a recording client was asked, in order.
    pub fn calls(&self) -> Vec<ProviderRequest> {
        self.recorded.as_ref().map_or_else(Vec::new, |calls| {
            calls
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        })
    }
}

#[async_trait]
impl ProviderClient for SandboxClient {
    fn name(&self) -> &str {
        "sandbox"
    }

    async fn dispatch(
        &self,
        _agreement: &Agreement,
        request: &ProviderRequest,
    ) -> Result<(), DispatchError> {
        tracing::info!(
            agreement_id = %request.agreement_id,
            action = ?request.action,
            key = %request.idempotency_key,
            "sandbox provider: call recorded, nothing sent"
        );
        if let Some(calls) = &self.recorded {
            calls
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(request.clone());
        }
        Ok(())
    }
}

/// The part of a published event the dispatcher reads (EventBridge `detail-type` and `detail`).
#[derive(Debug, Clone, Deserialize)]
pub struct DispatchEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub detail: DispatchEventDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DispatchEventDetail {
    pub agreement_id: String,
    pub tenant: String,
    pub sequence: u64,
    #[serde(default)]
    pub signing_group: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchOutcome {
    Dispatched {
        provider: String,
        action: ProviderAction,
    },
    /// Nothing to ask of the provider (an event type it does not act on, a cancellation of an
    /// envelope never sent, an invitation overtaken by a reopening).
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

pub struct Dispatcher<S: ?Sized> {
    store: Arc<S>,
    sandbox: Arc<dyn ProviderClient>,
    live: Option<Arc<dyn ProviderClient>>,
}

impl<S: AgreementGet + ?Sized> Dispatcher<S> {
    pub fn new(
        store: Arc<S>,
        sandbox: Arc<dyn ProviderClient>,
        live: Option<Arc<dyn ProviderClient>>,
    ) -> Self {
        Dispatcher {
            store,
            sandbox,
            live,
        }
    }

    pub async fn dispatch(&self, event: &DispatchEvent) -> Result<DispatchOutcome, DispatchError> {
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
        let action = match event.detail_type.as_str() {
            "AgreementSentForSignature" => ProviderAction::SendEnvelope,
            "SigningGroupInvited" => {
                let Some(step) = detail.signing_group else {
                    return Err(DispatchError::Provider(
                        "SigningGroupInvited without signing_group".to_owned(),
                    ));
                };
                // Reopened since: the invitation was withdrawn with the envelope.
                if agreement.sent_at.is_none() {
                    return Ok(DispatchOutcome::NothingToDo(
                        "the agreement was reopened since",
                    ));
                }
                ProviderAction::Invite {
                    step,
                    participant_ids: agreement
                        .participants_of_step(step)
                        .map(|p| p.id.clone())
                        .collect(),
                }
            }
            "AgreementReopened" => ProviderAction::Withdraw,
            "AgreementCancelled" if agreement.sent_at.is_some() => ProviderAction::Cancel,
            "AgreementCancelled" => {
                return Ok(DispatchOutcome::NothingToDo("the envelope was never sent"))
            }
            _ => {
                return Ok(DispatchOutcome::NothingToDo(
                    "not an event the provider acts on",
                ))
            }
        };
        let client = if agreement.test_mode {
            &self.sandbox
        } else {
            self.live.as_ref().ok_or(DispatchError::NoLiveProvider)?
        };
        let request = ProviderRequest {
            agreement_id: agreement.id.clone(),
            tenant: agreement.tenant.clone(),
            action: action.clone(),
            idempotency_key: format!("{}:{}", agreement.id, detail.sequence),
        };
        client.dispatch(&agreement, &request).await?;
        Ok(DispatchOutcome::Dispatched {
            provider: client.name().to_owned(),
            action,
        })
    }
}
