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
    #[error("the signed webhook payload is malformed: {0}")]
    MalformedPayload(String),
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
        let payload = WebhookError::MalformedPayload("missing field `id`".to_owned());
        assert!(!payload.is_authentication_failure());
        assert_eq!(payload.status_code(), StatusCode::BAD_REQUEST);
        assert!(payload.to_string().contains("missing field `id`"));
    }
}
