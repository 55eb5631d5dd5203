//! E-signature provider adapters (SPEC section 5): each one verifies a provider's webhook and
//! turns it into a [`VerifiedEvent`], the provider-neutral shape the service maps to domain events.
//!
//! The callback route `POST /v1/callbacks/{provider}` looks the provider up in a
//! [`ProviderRegistry`]; nothing is stored unless [`WebhookVerifier::verify`] succeeds.
//!
//! [`zigned`] is the live provider: its outbound client (SPEC section 9) and its webhook
//! verifier, which yields a [`zigned::ZignedEvent`] naming Zigned's own references (the caller
//! resolves them to the agreement and participant).

mod error;
mod registry;
pub mod sandbox;
mod signature;
pub mod zigned;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use error::{PayloadProblem, WebhookError};
pub use registry::{ProviderRegistry, WebhookVerifier};

/// A provider event after verification, in the provider-neutral shape the service maps to domain events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedEvent {
    /// The adapter that verified it, e.g. "sandbox".
    pub provider: String,
    /// The provider's event id: applied exactly once.
    pub event_id: String,
    /// E.g. "participant.signed"; unknown types are passed through, not rejected.
    pub event_type: String,
    pub agreement_id: String,
    pub participant_id: Option<String>,
    /// File reference object for `agreement.signed_document`.
    pub signed_document: Option<serde_json::Value>,
    pub occurred_at: DateTime<Utc>,
}
