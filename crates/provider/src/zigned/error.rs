//! What can go wrong talking to Zigned. No variant ever carries a token or a secret: messages are
//! Zigned's own error text, an HTTP status, or what countersign expected.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZignedError {
    /// A 4xx other than 429 (and a 401 that one token refresh did not cure): retrying cannot fix
    /// it. `message` is Zigned's `error.message` (or the status text when it sent none).
    #[error("Zigned refused {operation} ({status}): {message}")]
    Rejected {
        operation: String,
        status: u16,
        message: String,
        /// Zigned's `error.request_id`, for their support.
        request_id: Option<String>,
    },
    /// 429, 5xx, timeouts or connection failures on every attempt.
    #[error("Zigned did not answer {operation} after {attempts} attempts: {last}")]
    Unavailable {
        operation: String,
        attempts: u32,
        last: String,
    },
    /// The token endpoint refused the client credentials or answered something unusable.
    #[error("Zigned's token endpoint: {0}")]
    Token(String),
    /// A 2xx whose body is not what Zigned's API documents.
    #[error("Zigned answered {operation} with an unexpected body: {detail}")]
    UnexpectedResponse { operation: String, detail: String },
    /// The agreement cannot be sent as it is (e.g. no main document, no bytes for a document).
    #[error("the agreement cannot be sent to Zigned: {0}")]
    NotSendable(String),
    /// A URL countersign was configured with, or was given, is unusable.
    #[error("invalid Zigned configuration: {0}")]
    Configuration(String),
}

impl ZignedError {
    /// True when a later retry of the whole operation (a redelivered dispatch) may succeed; false
    /// when the agreement should fail with this error's message in its history.
    pub fn is_transient(&self) -> bool {
        match self {
            ZignedError::Unavailable { .. } => true,
            ZignedError::Rejected { .. }
            | ZignedError::Token(_)
            | ZignedError::UnexpectedResponse { .. }
            | ZignedError::NotSendable(_)
            | ZignedError::Configuration(_) => false,
        }
    }
}
