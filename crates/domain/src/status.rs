//! The agreement's lifecycle status and what SPEC section 1 derives from it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Lifecycle state of an agreement (SPEC section 1, first column of the status table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    Open,
    Pending,
    Fulfilled,
    Cancelled,
    Expired,
    Refused,
    Failed,
}

/// Envelope status of the contract-signature page, derived from [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignatureStatus {
    SignatureOngoing,
    SignatureComplete,
    SignatureExpired,
    SignatureCancelled,
    SignatureRefused,
    OtherFailure,
}

/// Whether the customer journey can go on ("Consequences" column of the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Journey {
    Waiting,
    Proceed,
    Stopped,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Draft,
        Status::Open,
        Status::Pending,
        Status::Fulfilled,
        Status::Cancelled,
        Status::Expired,
        Status::Refused,
        Status::Failed,
    ];

    /// The status table of SPEC section 1, one row per status.
    pub fn signature_status(self) -> Option<SignatureStatus> {
        match self {
            Status::Draft | Status::Open => None,
            Status::Pending => Some(SignatureStatus::SignatureOngoing),
            Status::Fulfilled => Some(SignatureStatus::SignatureComplete),
            Status::Expired => Some(SignatureStatus::SignatureExpired),
            Status::Cancelled => Some(SignatureStatus::SignatureCancelled),
            Status::Refused => Some(SignatureStatus::SignatureRefused),
            Status::Failed => Some(SignatureStatus::OtherFailure),
        }
    }

    pub fn is_editable(self) -> bool {
        matches!(self, Status::Draft | Status::Open)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Fulfilled
                | Status::Cancelled
                | Status::Expired
                | Status::Refused
                | Status::Failed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Open => "open",
            Status::Pending => "pending",
            Status::Fulfilled => "fulfilled",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Refused => "refused",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl SignatureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureStatus::SignatureOngoing => "SIGNATURE_ONGOING",
            SignatureStatus::SignatureComplete => "SIGNATURE_COMPLETE",
            SignatureStatus::SignatureExpired => "SIGNATURE_EXPIRED",
            SignatureStatus::SignatureCancelled => "SIGNATURE_CANCELLED",
            SignatureStatus::SignatureRefused => "SIGNATURE_REFUSED",
            SignatureStatus::OtherFailure => "OTHER_FAILURE",
        }
    }
}
