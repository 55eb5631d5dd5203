//! What the domain refuses, in terms the API maps to SPEC section 3 error types.

use serde::Serialize;
use thiserror::Error;

use crate::status::Status;

/// The type of one validation failure; the API shows it as `details[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueCode {
    SignatoriesUndefined,
    BankInformationUndefined,
    DocumentUndefined,
    InvalidEmail,
    InvalidParticipant,
    ValidationFailed,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::SignatoriesUndefined => "SIGNATORIES_UNDEFINED",
            IssueCode::BankInformationUndefined => "BANK_INFORMATION_UNDEFINED",
            IssueCode::DocumentUndefined => "DOCUMENT_UNDEFINED",
            IssueCode::InvalidEmail => "INVALID_EMAIL",
            IssueCode::InvalidParticipant => "INVALID_PARTICIPANT",
            IssueCode::ValidationFailed => "VALIDATION_FAILED",
        }
    }
}

/// One validation failure, with the field it is about (a JSON path such as `participants[1].email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    #[serde(rename = "type")]
    pub code: IssueCode,
    pub field: String,
    pub message: String,
}

impl Issue {
    pub fn new(code: IssueCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            code,
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("an agreement in status `{from}` cannot go to `{requested}`")]
    InvalidTransition { from: Status, requested: String },
    #[error("an agreement in status `{status}` cannot be edited; only draft and open ones can")]
    NotEditable { status: Status },
    /// Input that can never be right (bad IBAN, out-of-range expiry, ...): 422 VALIDATION_FAILED.
    #[error("the agreement is invalid")]
    Invalid(Vec<Issue>),
    /// The agreement is not complete enough to be sent for signature: every failure at once.
    #[error("the agreement cannot be sent for signature")]
    NotReady(Vec<Issue>),
    #[error("invalid cancellation reason: {0}")]
    InvalidCancellationReason(String),
    #[error("the agreement is not in test mode")]
    NotInTestMode,
}
