//! E-signature provider adapters (SPEC sections 5 and 9), behind one port built for several
//! providers. Each adapter owns both directions:
//!
//! - inbound, a [`WebhookVerifier`]: it authenticates a webhook and maps it to a
//!   [`VerifiedEvent`], whose [`EventKind`] is already countersign's meaning (the service never
//!   reads a provider's event names);
//! - outbound, a [`ProviderClient`]: send a round (resumably, recording progress through a
//!   [`ProgressLog`]), reopen it, cancel it, fetch the signed document.
//!
//! [`sandbox`] and [`zigned`] are the built-in adapters. [`Providers`] holds the configured ones
//! by name: the callback route picks a verifier by the name in its path, the dispatcher a client
//! by the agreement's `provider.name`. A new provider is one new folder here and one line in
//! [`Providers::from_setup`].

mod error;
mod outbound;
mod registry;
pub mod sandbox;
mod signature;
pub mod zigned;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use error::{PayloadProblem, WebhookError};
pub use outbound::{
    DocumentBytes, OutboundError, ProgressLog, ProviderClient, SignedFile, StoredProgress,
};
pub use registry::{Providers, ProvidersSetup, WebhookSecrets, WebhookVerifier, ZignedSetup};

/// A provider event after verification, in provider-neutral terms: what it means ([`EventKind`],
/// decided by the adapter) and how the provider names the agreement and the participant (the
/// service resolves those against the agreement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedEvent {
    /// The adapter that verified it, e.g. "sandbox".
    pub provider: String,
    /// The provider's event id (or one derived from the body): applied exactly once.
    pub event_id: String,
    /// The provider's own name for the event, kept for logs and the history.
    pub event_type: String,
    pub kind: EventKind,
    /// `None` for an event that names no agreement (only ever an ignored kind): acknowledged
    /// and logged.
    pub agreement: Option<AgreementRef>,
    /// Empty for agreement events.
    #[serde(default)]
    pub participant: ParticipantRef,
    /// File reference object, for [`EventKind::SignedDocument`].
    #[serde(default)]
    pub signed_document: Option<serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}

/// What a provider event means to countersign (SPEC section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventKind {
    ParticipantSigned,
    ParticipantRefused,
    ParticipantDeliveryFailed,
    ParticipantIdentityCheckFailed,
    /// The signed document is in the event (`signed_document`): record it.
    SignedDocument,
    /// The provider has the signed document: fetch it and store it (SPEC section 9).
    SignedDocumentReady,
    AgreementFailed,
    /// Cancelled on the provider's side, not asked by countersign.
    AgreementCancelled,
    AgreementExpired,
    /// Nothing countersign acts on: recorded as ignored, with why.
    Ignored {
        reason: String,
    },
}

impl EventKind {
    /// True for the kinds that name a participant.
    pub fn is_participant_event(&self) -> bool {
        match self {
            EventKind::ParticipantSigned
            | EventKind::ParticipantRefused
            | EventKind::ParticipantDeliveryFailed
            | EventKind::ParticipantIdentityCheckFailed => true,
            EventKind::SignedDocument
            | EventKind::SignedDocumentReady
            | EventKind::AgreementFailed
            | EventKind::AgreementCancelled
            | EventKind::AgreementExpired
            | EventKind::Ignored { .. } => false,
        }
    }
}

/// How a provider names the agreement: by countersign's id (the sandbox echoes it) or by its own
/// reference (`provider.reference`, found through a key item, never a scan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementRef {
    Id(String),
    Reference(String),
}

impl std::fmt::Display for AgreementRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgreementRef::Id(id) => write!(f, "{id}"),
            AgreementRef::Reference(reference) => write!(f, "provider reference {reference}"),
        }
    }
}

/// How a provider names the participant: countersign's id, its own reference
/// (`provider_reference`), or the email; whichever it gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}
