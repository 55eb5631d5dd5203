//! Reading what a request carries: body, JSON, `If-Match`, `Idempotency-Key`, list cursors.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use countersign_store::ListPosition;

use crate::response::ApiError;
use crate::shape::{self, json_object, Shape};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// What a consumer route (every route but the callbacks) works from: the request, admitted (body
/// within its limit, inside service hours, the caller's tenant known; in that order).
pub struct Consumer {
    pub tenant: String,
    pub headers: HeaderMap,
    /// The path as the client sent it (no stage on `$default`), for idempotency hashes.
    pub path: String,
    /// The raw query string, for the routes that take parameters.
    pub query: Option<String>,
    pub body: Bytes,
}

/// The whole of `body`. The router's limit layer cuts bodies over [`crate::MAX_BODY_BYTES`]; such
/// a body is 413, one that ends early or is badly framed 400.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    Bytes::from_request(Request::new(body), &())
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            _ => ApiError::invalid_request("the request body could not be read to its end"),
        })
}

/// Reads a JSON body as a `T`. Anything but a JSON object is refused first (serde would also
/// read a struct from an array, field by position); what does not fit `shape` is 400 with one
/// detail per problem, in the API's words (see [`crate::shape`]).
pub fn parse_json<T: DeserializeOwned>(body: &[u8], shape: &Shape) -> Result<T, ApiError> {
    let value = json_object(body)?;
    shape::read(&value, shape, &[])
}

/// `If-Match: "3"` (also `W/"3"`, `3`, or `*` for any version).
pub fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_request("If-Match is not text"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let unquoted = text.trim_start_matches("W/").trim_matches('"');
    unquoted
        .parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::invalid_request("If-Match must be an ETag such as \"3\""))
}

pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid_request("Idempotency-Key is not text"))?
        .trim();
    if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(ApiError::invalid_request(format!(
            "Idempotency-Key has 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// What makes two requests "the same" for an idempotency key: method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// Cursors are opaque to clients: base64url of the keyset position.
pub fn encode_cursor(position: &ListPosition) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// The position of a cursor this API returned; `None` for anything else.
pub fn decode_cursor(cursor: &str) -> Option<ListPosition> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn if_match_accepts_strong_weak_bare_and_star() {
        let mut headers = HeaderMap::new();
        assert_eq!(if_match(&headers).unwrap(), None);
        for (value, expected) in [
            ("\"3\"", Some(3)),
            ("W/\"4\"", Some(4)),
            ("5", Some(5)),
            ("*", None),
        ] {
            headers.insert(http::header::IF_MATCH, HeaderValue::from_static(value));
            assert_eq!(if_match(&headers).unwrap(), expected, "{value}");
        }
        headers.insert(http::header::IF_MATCH, HeaderValue::from_static("\"abc\""));
        assert_eq!(
            if_match(&headers).unwrap_err().error_type,
            "INVALID_REQUEST"
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let position = ListPosition {
            created_at: chrono::Utc::now(),
            id: "abc".into(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&position)).unwrap(), position);
        assert!(decode_cursor("not-a-cursor").is_none());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(b"{\"x\":1}")).is_none());
    }

    #[test]
    fn request_hash_depends_on_every_part() {
        let base = request_hash("POST", "/v1/agreements", b"{}");
        assert_ne!(base, request_hash("PATCH", "/v1/agreements", b"{}"));
        assert_ne!(base, request_hash("POST", "/v1/agreements/x", b"{}"));
        assert_ne!(base, request_hash("POST", "/v1/agreements", b"{ }"));
        assert_eq!(base, request_hash("POST", "/v1/agreements", b"{}"));
    }
}
