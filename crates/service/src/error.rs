use countersign_domain::DomainError;
use countersign_store::{CommitError, StoreError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ServiceError {
    /// No such agreement for this tenant (another tenant's agreement is not found either).
    #[error("agreement not found")]
    NotFound,
    /// `If-Match` names another version than the current one.
    #[error("version mismatch: the agreement is at version {current}")]
    VersionMismatch { current: u64 },
    /// The request cannot be read as what it claims to be (e.g. a patch that does not merge into
    /// an agreement input): the caller's mistake in form, not a rule of the domain.
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Another request holds this idempotency key.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    /// A request with the same key committed first, and its response is no longer kept.
    #[error("the request raced another with the same idempotency key")]
    IdempotencyRace,
    /// A live agreement is sent where no provider is configured to carry it (SPEC section 3,
    /// `PROVIDER_NOT_CONFIGURED`).
    #[error("provider `{provider}` is not configured to send agreements")]
    ProviderNotConfigured { provider: String },
    /// Not possible yet, possibly later (a provider event ahead of what it depends on): retry.
    #[error("not yet: {0}")]
    NotYet(String),
    /// The provider event's id is marked already: a redelivery.
    #[error("provider event already applied")]
    DuplicateProviderEvent,
    /// Conflicting writers kept winning until the retry budget ran out.
    #[error("too much contention on the agreement; retry later")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CommitError> for ServiceError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Conflict => ServiceError::Contention,
            CommitError::DuplicateProviderEvent => ServiceError::DuplicateProviderEvent,
            CommitError::IdempotencyKeyTaken => ServiceError::IdempotencyKeyTaken,
            CommitError::Store(store) => ServiceError::Store(store),
        }
    }
}
