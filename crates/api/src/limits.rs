//! The request head the API accepts: at most [`MAX_HEADER_FIELDS`] header fields and
//! [`MAX_HEADER_BYTES`] of them. Beyond either the answer is 431 in the SPEC's error shape, with
//! `X-Request-Id` like every other answer.
//!
//! The type is `INVALID_REQUEST`: SPEC section 3 lists the error types clients switch on, and
//! "this request is malformed, do not resend it as it is" is what they need to know; the status,
//! 431 (RFC 6585 section 5), says which part to shrink.
//!
//! On AWS, API Gateway refuses oversized heads itself (HTTP API: 10 KiB of request line and
//! headers) before a function runs; locally the HTTP server lets heads well beyond these limits
//! through so that this check, not a bare 431 of the server's, answers.

use http::{HeaderMap, StatusCode};

use crate::response::ApiError;

/// Header fields per request; each repeated field counts once per line.
pub const MAX_HEADER_FIELDS: usize = 100;
/// Bytes of header fields per request, each counted as it travels in HTTP/1.1:
/// `name: value\r\n`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// `Err` (431) when `headers` exceed either limit.
pub fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let fields = headers.len();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    if fields > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "INVALID_REQUEST",
            format!(
                "request headers are limited to {MAX_HEADER_FIELDS} fields and {} KiB; this \
                 request has {fields} fields, {bytes} bytes",
                MAX_HEADER_BYTES / 1024
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    #[test]
    fn repeated_fields_count_once_per_line() {
        let mut headers = HeaderMap::new();
        for _ in 0..MAX_HEADER_FIELDS {
            headers.append("x-same", HeaderValue::from_static("v"));
        }
        assert!(check_headers(&headers).is_ok());
        headers.append(
            HeaderName::from_static("x-same"),
            HeaderValue::from_static("v"),
        );
        let error = check_headers(&headers).unwrap_err();
        assert_eq!(error.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(error.error_type, "INVALID_REQUEST");
    }
}
