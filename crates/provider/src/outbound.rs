//! The outbound half of the provider port (SPEC section 9): what countersign asks of the
//! provider that carries an agreement. The dispatcher calls it; each adapter implements it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use countersign_domain::{Agreement, Delivery};
use thiserror::Error;

/// Document bytes by countersign file id (`documents.main.id`, `documents.attachments[].id`),
/// read and checked against `size` and `sha256` before the send.
pub type DocumentBytes = BTreeMap<String, Vec<u8>>;

/// How far an adapter got with an agreement, as it last recorded it: `state` is the adapter's
/// own (opaque to everyone else), `reference` its id for the agreement once it has one (the
/// store keys it, so that webhooks naming it find the agreement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProgress {
    pub state: String,
    pub reference: Option<String>,
}

/// Where an adapter records its progress with one agreement. Every `save` is a conditional
/// write over what was last loaded or saved: two dispatches of the same agreement cannot both
/// move it, and the loser is told to retry.
#[async_trait]
pub trait ProgressLog: Send + Sync {
    async fn load(&self) -> Result<Option<StoredProgress>, OutboundError>;
    async fn save(&self, progress: StoredProgress) -> Result<(), OutboundError>;
}

/// Why a call to the provider did not succeed. Messages are the provider's own words or
/// countersign's; never a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OutboundError {
    /// Retrying later may help (429, 5xx or timeouts after the adapter's own bounded retries, a
    /// progress record moved by another dispatch, a store outage): the dispatch is redelivered.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot fix it (a 4xx other than 429, an agreement the provider cannot take):
    /// the agreement fails with this message in its history.
    #[error("{0}")]
    Permanent(String),
}

/// A signed document as the provider delivered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFile {
    pub bytes: Vec<u8>,
    pub filename: String,
    pub mime_type: String,
}

/// One provider's outbound calls. Every call may be repeated (a redelivered dispatch, a function
/// that died halfway): an adapter resumes from its [`ProgressLog`] and never repeats a call
/// that creates something it has recorded.
#[async_trait]
pub trait ProviderClient: Send + Sync {
    /// The provider's name: the `provider.name` of the agreements it carries.
    fn name(&self) -> &str;

    /// Whether `send` needs the documents' bytes (the sandbox does not: nothing leaves).
    fn reads_documents(&self) -> bool;

    /// Sends the agreement's current round (`pending`, `sent_at`) with its invitations, or
    /// brings a round already at the provider in line with the edited agreement first (after a
    /// reopen). Returns what the provider calls things, for `AgreementDeliveredToProvider`, or
    /// `None` when there is nothing to record (the sandbox knows countersign's own ids).
    async fn send(
        &self,
        agreement: &Agreement,
        documents: &DocumentBytes,
        log: &dyn ProgressLog,
    ) -> Result<Option<Delivery>, OutboundError>;

    /// Releases the invitations of one signing step (providers that release signing groups
    /// themselves do nothing).
    async fn invite(&self, agreement: &Agreement, step: u32) -> Result<(), OutboundError>;

    /// Pauses and resets the sent round (the agreement was reopened). Nothing if it was not sent.
    async fn reopen(
        &self,
        agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<(), OutboundError>;

    /// Cancels the round at the provider with the agreement's `cancellation_reason`; `false`
    /// when there was nothing to cancel there (never sent, or cancelled by the provider itself).
    async fn cancel(
        &self,
        agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<bool, OutboundError>;

    /// The signed document, once the provider has it (`None` while it has not).
    async fn signed_document(
        &self,
        agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<Option<SignedFile>, OutboundError>;
}
