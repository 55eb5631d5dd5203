//! Why a webhook was refused.

use http::StatusCode;
use thiserror::Error;

/// Why a webhook was refused. Every variant but [`WebhookError::MalformedPayload`] means the
/// request could not be authenticated; a malformed payload is only reported after a valid signature.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookError {
    #[error("the webhook signature header is missing")]
    MissingSignature,
    #[error("the webhook signature header is malformed")]
    MalformedSignature,
    #[error("the webhook timestamp is outside the accepted tolerance")]
    TimestampOutOfTolerance,
    #[error("no webhook signature matches")]
    SignatureMismatch,
    #[error("the signed webhook payload is malformed: {}", summary(.0))]
    MalformedPayload(Vec<PayloadProblem>),
}

/// One way a signed payload is not an event of its provider, in words a client may read: the
/// field's JSON pointer and dotted path, and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadProblem {
    /// RFC 6901, `/data/agreement_id`; the empty string for the whole body.
    pub pointer: String,
    /// `data.agreement_id`, as the API's other field paths.
    pub field: String,
    pub message: String,
}

impl PayloadProblem {
    /// A problem of the field at `pointer` and `field`; `says` follows its quoted name.
    pub fn at(pointer: &str, field: &str, says: &str) -> Self {
        PayloadProblem {
            pointer: pointer.to_owned(),
            field: field.to_owned(),
            message: format!("`{field}` {says}"),
        }
    }

    /// A problem of the whole body.
    pub fn of_body(message: impl Into<String>) -> Self {
        PayloadProblem {
            pointer: String::new(),
            field: String::new(),
            message: message.into(),
        }
    }
}

fn summary(problems: &[PayloadProblem]) -> String {
    problems
        .iter()
        .map(|problem| problem.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl WebhookError {
    /// True when the sender could not be authenticated (HTTP 401, nothing stored).
    pub fn is_authentication_failure(&self) -> bool {
        !matches!(self, WebhookError::MalformedPayload(_))
    }

    /// The status the callback route answers with: 401 for authentication failures, 400 for a
    /// correctly signed payload that is not a valid event.
    pub fn status_code(&self) -> StatusCode {
        if self.is_authentication_failure() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_malformed_payload_is_not_an_authentication_failure() {
        let authentication_failures = [
            WebhookError::MissingSignature,
            WebhookError::MalformedSignature,
            WebhookError::TimestampOutOfTolerance,
            WebhookError::SignatureMismatch,
        ];
        for error in authentication_failures {
            assert!(error.is_authentication_failure(), "{error:?}");
            assert_eq!(error.status_code(), StatusCode::UNAUTHORIZED, "{error:?}");
        }
        let payload =
            WebhookError::MalformedPayload(vec![PayloadProblem::at("/id", "id", "is required")]);
        assert!(!payload.is_authentication_failure());
        assert_eq!(payload.status_code(), StatusCode::BAD_REQUEST);
        assert!(payload.to_string().contains("`id` is required"));
    }
}
