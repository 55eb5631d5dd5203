//! The `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` webhook signature scheme,
//! shared by the providers that sign this way (the sandbox, Zigned): one header parser, one
//! constant-time comparison.

pub(crate) mod header;

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

use crate::WebhookError;
use header::{SignatureHeader, V1_LEN};

type HmacSha256 = Hmac<Sha256>;

/// Checks one provider's signature header against its secrets (several during rotation).
#[derive(Clone)]
pub(crate) struct SignatureCheck {
    /// Lower-cased, as `http` stores header names.
    pub(crate) header_name: &'static str,
    pub(crate) secrets: Vec<Vec<u8>>,
    pub(crate) tolerance: Duration,
}

impl SignatureCheck {
    /// Empty secrets are dropped: anyone could sign with one. With no secret left, every request
    /// is refused.
    pub(crate) fn new(
        header_name: &'static str,
        secrets: Vec<Vec<u8>>,
        tolerance: Duration,
    ) -> Self {
        SignatureCheck {
            header_name,
            secrets: secrets
                .into_iter()
                .filter(|secret| !secret.is_empty())
                .collect(),
            tolerance,
        }
    }

    /// Header, then timestamp, then signature: the body is only hashed, never read, here. Returns
    /// the signed timestamp.
    pub(crate) fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, WebhookError> {
        let header = header::parse(self.header_value(headers)?)?;
        if now.timestamp().abs_diff(header.timestamp) > self.tolerance.as_secs() {
            return Err(WebhookError::TimestampOutOfTolerance);
        }
        if !self.any_signature_matches(&header, body) {
            return Err(WebhookError::SignatureMismatch);
        }
        Ok(header.timestamp)
    }

    /// Exactly one header, in visible ASCII: two could disagree on what was signed.
    fn header_value<'h>(&self, headers: &'h HeaderMap) -> Result<&'h str, WebhookError> {
        let mut values = headers.get_all(self.header_name).iter();
        let value = values.next().ok_or(WebhookError::MissingSignature)?;
        if values.next().is_some() {
            return Err(WebhookError::MalformedSignature);
        }
        value.to_str().map_err(|_| WebhookError::MalformedSignature)
    }

    /// Compares every `v1` with the tag of every secret, without stopping at a match, so the
    /// time taken says nothing about which one (if any) was right.
    fn any_signature_matches(&self, header: &SignatureHeader, body: &[u8]) -> bool {
        let mut matched = Choice::from(0);
        for secret in &self.secrets {
            let Some(expected) = v1_tag(secret, header.timestamp, body) else {
                continue;
            };
            for candidate in &header.v1 {
                matched |= expected.as_slice().ct_eq(candidate.as_slice());
            }
        }
        matched.into()
    }
}

/// HMAC-SHA256(secret, "<t>.<raw body>"). HMAC takes keys of any length, so `None` never
/// happens in practice; it is handled rather than unwrapped.
pub(crate) fn v1_tag(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<[u8; V1_LEN]> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac.finalize().into_bytes().into())
}

/// The full header value `t=<timestamp>,v1=<hex>` for `body` sent at `timestamp` (unix seconds).
pub(crate) fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // An empty v1 (the unreachable `None`) makes a header every verifier refuses.
    let v1 = v1_tag(secret, timestamp, body)
        .map(hex::encode)
        .unwrap_or_default();
    format!("t={timestamp},v1={v1}")
}
