//! The built-in `sandbox` provider (SPEC sections 5 and 6): it signs the callbacks the sandbox
//! routes produce and verifies them on the real callback path.
//!
//! `Countersign-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.

mod client;
mod event;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;

#[cfg(test)]
use crate::signature::v1_tag;
use crate::signature::SignatureCheck;
use crate::{VerifiedEvent, WebhookError, WebhookVerifier};

pub use client::{SandboxCall, SandboxClient};
pub use event::{event_type, signed_event_body, SandboxEvent, SandboxEventData};

/// The provider's name in `POST /v1/callbacks/{provider}`, and the provider of record of the
/// test-mode agreements it carries.
pub const PROVIDER_NAME: &str = countersign_domain::SANDBOX_PROVIDER;
/// The secret `countersign-local` signs with when none is configured. It is published (README),
/// so it is only ever accepted on a development machine: see [`check_deployment_secrets`].
pub const DEVELOPMENT_SECRET: &str = "sandbox-dev-secret";
/// The shortest webhook secret accepted outside development.
pub const MIN_SECRET_BYTES: usize = 16;
/// `Countersign-Signature`, lower-cased as `http` stores header names.
pub const SIGNATURE_HEADER: &str = "countersign-signature";
/// The same header as the SPEC and clients spell it.
pub const SIGNATURE_HEADER_DISPLAY: &str = "Countersign-Signature";
/// How far the signed timestamp may be from now, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Secrets fit to sign and verify anything but a developer's own traffic: none is the published
/// [`DEVELOPMENT_SECRET`] and none is shorter than [`MIN_SECRET_BYTES`]. The message never
/// contains a secret.
pub fn check_deployment_secrets(secrets: &[Vec<u8>]) -> Result<(), String> {
    if secrets.is_empty() {
        return Err("no webhook secret is configured".to_owned());
    }
    for (position, secret) in secrets.iter().enumerate() {
        let which = position + 1;
        if secret.as_slice() == DEVELOPMENT_SECRET.as_bytes() {
            return Err(format!(
                "secret {which} is the published development secret; set a secret of your own"
            ));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "secret {which} has {} bytes; at least {MIN_SECRET_BYTES} are needed",
                secret.len()
            ));
        }
    }
    Ok(())
}

/// Verifies sandbox callbacks against one or more secrets (several during rotation).
#[derive(Clone)]
pub struct SandboxProvider {
    check: SignatureCheck,
}

impl SandboxProvider {
    /// Empty secrets are dropped: anyone could sign with one. With no secret left, every
    /// callback is refused.
    pub fn new(secrets: Vec<Vec<u8>>) -> Self {
        SandboxProvider {
            check: SignatureCheck::new(SIGNATURE_HEADER, secrets, DEFAULT_TOLERANCE),
        }
    }

    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.check.tolerance = tolerance;
        self
    }
}

// Never show the secrets.
impl fmt::Debug for SandboxProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxProvider")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.check.secrets.len()),
            )
            .field("tolerance", &self.check.tolerance)
            .finish()
    }
}

impl WebhookVerifier for SandboxProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn signature_header(&self) -> &str {
        SIGNATURE_HEADER_DISPLAY
    }

    /// Header, then timestamp, then signature; the body is read only once it is authenticated.
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedEvent, WebhookError> {
        self.check.verify(headers, body, now)?;
        Ok(SandboxEvent::from_verified_body(body)?.into_verified(PROVIDER_NAME))
    }
}

/// The full `Countersign-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    crate::signature::sign(secret, timestamp, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use http::HeaderValue;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"sandbox-test-secret";
    const OLD_SECRET: &[u8] = b"sandbox-old-secret";
    const BODY: &str = r#"{"id":"evt_42","type":"participant.signed","created_at":"2026-11-22T09:59:58Z","data":{"agreement_id":"agr_7","participant_id":"par_3"}}"#;

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn provider() -> SandboxProvider {
        SandboxProvider::new(vec![SECRET.to_vec()])
    }

    fn headers(signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        headers
    }

    fn signed(secret: &[u8], at: DateTime<Utc>, body: &str) -> HeaderMap {
        headers(&sign(secret, at.timestamp(), body.as_bytes()))
    }

    #[test]
    fn deployments_refuse_the_development_secret_and_short_secrets_without_showing_them() {
        assert_eq!(check_deployment_secrets(&[SECRET.to_vec()]), Ok(()));
        assert_eq!(
            check_deployment_secrets(&[]),
            Err("no webhook secret is configured".to_owned())
        );
        let published =
            check_deployment_secrets(&[SECRET.to_vec(), DEVELOPMENT_SECRET.as_bytes().to_vec()])
                .unwrap_err();
        assert!(published.contains("secret 2 is the published development secret"));
        let short = check_deployment_secrets(&[b"fifteen-bytes!!".to_vec()]).unwrap_err();
        assert!(short.contains("15 bytes; at least 16"), "{short}");
        for message in [published, short] {
            assert!(!message.contains(DEVELOPMENT_SECRET) && !message.contains("fifteen"));
        }
    }

    fn v1_hex(secret: &[u8], at: DateTime<Utc>, body: &str) -> String {
        hex::encode(v1_tag(secret, at.timestamp(), body.as_bytes()).unwrap())
    }

    fn verify(
        provider: &SandboxProvider,
        headers: &HeaderMap,
        body: &str,
    ) -> Result<VerifiedEvent, WebhookError> {
        provider.verify(headers, body.as_bytes(), now())
    }

    #[test]
    fn the_challenge_names_the_header_the_verifier_reads() {
        assert_eq!(provider().signature_header(), "Countersign-Signature");
        assert_eq!(
            provider().signature_header().to_ascii_lowercase(),
            SIGNATURE_HEADER
        );
    }

    #[test]
    fn sign_matches_an_independent_hmac_of_timestamp_dot_body() {
        // Computed outside Rust: HMAC-SHA256("sandbox-test-secret", "1795341600.{\"hello\":\"world\"}").
        assert_eq!(
            sign(SECRET, 1_795_341_600, br#"{"hello":"world"}"#),
            "t=1795341600,v1=8d4b8fc2bf9811c09fd1a8407f133b46138b5494706d62954a59ee7b74c059a4"
        );
    }

    #[test]
    fn accepts_a_valid_signature_and_maps_the_event() {
        let event = verify(&provider(), &signed(SECRET, now(), BODY), BODY).unwrap();
        assert_eq!(
            event,
            VerifiedEvent {
                provider: "sandbox".to_owned(),
                event_id: "evt_42".to_owned(),
                event_type: "participant.signed".to_owned(),
                kind: crate::EventKind::ParticipantSigned,
                agreement: Some(crate::AgreementRef::Id("agr_7".to_owned())),
                participant: crate::ParticipantRef {
                    id: Some("par_3".to_owned()),
                    ..Default::default()
                },
                signed_document: None,
                occurred_at: "2026-11-22T09:59:58Z".parse().unwrap(),
            }
        );
        assert_eq!(provider().name(), "sandbox");
    }

    #[test]
    fn header_name_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::HeaderName::from_bytes(b"Countersign-Signature").unwrap(),
            HeaderValue::from_str(&sign(SECRET, now().timestamp(), BODY.as_bytes())).unwrap(),
        );
        assert!(verify(&provider(), &headers, BODY).is_ok());
    }

    #[test]
    fn refuses_a_signature_made_with_another_secret() {
        let result = verify(&provider(), &signed(b"someone-else", now(), BODY), BODY);
        assert_eq!(result, Err(WebhookError::SignatureMismatch));
    }

    #[test]
    fn refuses_a_tampered_body() {
        let tampered = BODY.replace("agr_7", "agr_8");
        let result = verify(&provider(), &signed(SECRET, now(), BODY), &tampered);
        assert_eq!(result, Err(WebhookError::SignatureMismatch));
        let extended = format!("{BODY} ");
        let result = verify(&provider(), &signed(SECRET, now(), BODY), &extended);
        assert_eq!(result, Err(WebhookError::SignatureMismatch));
    }

    #[test]
    fn refuses_a_tampered_timestamp() {
        let v1 = v1_hex(SECRET, now(), BODY);
        let moved = now().timestamp() - 1;
        let result = verify(&provider(), &headers(&format!("t={moved},v1={v1}")), BODY);
        assert_eq!(result, Err(WebhookError::SignatureMismatch));
    }

    #[test]
    fn refuses_timestamps_beyond_the_tolerance_either_way() {
        for offset in [-301, 301, -86_400, 86_400] {
            let sent_at = now() + TimeDelta::seconds(offset);
            let result = verify(&provider(), &signed(SECRET, sent_at, BODY), BODY);
            assert_eq!(
                result,
                Err(WebhookError::TimestampOutOfTolerance),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn accepts_timestamps_exactly_at_the_tolerance() {
        for offset in [-300, 300] {
            let sent_at = now() + TimeDelta::seconds(offset);
            assert!(
                verify(&provider(), &signed(SECRET, sent_at, BODY), BODY).is_ok(),
                "offset {offset}"
            );
        }
        // `now` is compared in whole seconds: 300.9 s after t is still within 300 s.
        let later = now() + TimeDelta::milliseconds(300_900);
        let result = provider().verify(&signed(SECRET, now(), BODY), BODY.as_bytes(), later);
        assert!(result.is_ok());
    }

    #[test]
    fn tolerance_is_configurable() {
        let strict = provider().with_tolerance(Duration::from_secs(60));
        let sent_at = now() - TimeDelta::seconds(61);
        assert_eq!(
            verify(&strict, &signed(SECRET, sent_at, BODY), BODY),
            Err(WebhookError::TimestampOutOfTolerance)
        );
        let sent_at = now() - TimeDelta::seconds(60);
        assert!(verify(&strict, &signed(SECRET, sent_at, BODY), BODY).is_ok());
    }

    #[test]
    fn refuses_a_request_without_the_header() {
        assert_eq!(
            verify(&provider(), &HeaderMap::new(), BODY),
            Err(WebhookError::MissingSignature)
        );
        let mut elsewhere = HeaderMap::new();
        elsewhere.insert(
            "x-signature",
            HeaderValue::from_str(&sign(SECRET, now().timestamp(), BODY.as_bytes())).unwrap(),
        );
        assert_eq!(
            verify(&provider(), &elsewhere, BODY),
            Err(WebhookError::MissingSignature)
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        let v1 = v1_hex(SECRET, now(), BODY);
        let t = now().timestamp();
        let malformed = [
            String::new(),
            format!("v1={v1}"),
            format!("t=soon,v1={v1}"),
            format!("t={t},v1={}", &v1[1..]),
            format!("t={t}"),
            format!("t={t},v0={v1}"),
        ];
        for value in malformed {
            assert_eq!(
                verify(&provider(), &headers(&value), BODY),
                Err(WebhookError::MalformedSignature),
                "header {value:?}"
            );
        }
    }

    #[test]
    fn refuses_two_signature_headers_and_non_ascii_values() {
        let good = sign(SECRET, now().timestamp(), BODY.as_bytes());
        let mut twice = headers(&good);
        twice.append(SIGNATURE_HEADER, HeaderValue::from_str(&good).unwrap());
        assert_eq!(
            verify(&provider(), &twice, BODY),
            Err(WebhookError::MalformedSignature)
        );

        let mut opaque = HeaderMap::new();
        let mut bytes = good.into_bytes();
        bytes.push(0xff);
        opaque.insert(SIGNATURE_HEADER, HeaderValue::from_bytes(&bytes).unwrap());
        assert_eq!(
            verify(&provider(), &opaque, BODY),
            Err(WebhookError::MalformedSignature)
        );
    }

    #[test]
    fn accepts_any_matching_v1_among_several() {
        let right = v1_hex(SECRET, now(), BODY);
        let wrong = v1_hex(OLD_SECRET, now(), BODY);
        let t = now().timestamp();
        for value in [
            format!("t={t},v1={wrong},v1={right}"),
            format!("v1={right},t={t},v1={wrong}"),
            format!("v0=legacy,v1={wrong},t={t},v1={right}"),
        ] {
            assert!(
                verify(&provider(), &headers(&value), BODY).is_ok(),
                "header {value:?}"
            );
        }
        let none_right = format!("t={t},v1={wrong},v1={}", v1_hex(b"third", now(), BODY));
        assert_eq!(
            verify(&provider(), &headers(&none_right), BODY),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn a_verifier_with_two_secrets_accepts_either() {
        let rotating = SandboxProvider::new(vec![SECRET.to_vec(), OLD_SECRET.to_vec()]);
        for secret in [SECRET, OLD_SECRET] {
            assert!(verify(&rotating, &signed(secret, now(), BODY), BODY).is_ok());
        }
        assert_eq!(
            verify(&rotating, &signed(b"retired-secret", now(), BODY), BODY),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn empty_secrets_verify_nothing() {
        let careless = SandboxProvider::new(vec![Vec::new()]);
        assert_eq!(
            verify(&careless, &signed(b"", now(), BODY), BODY),
            Err(WebhookError::SignatureMismatch)
        );
        let none = SandboxProvider::new(Vec::new());
        assert_eq!(
            verify(&none, &signed(SECRET, now(), BODY), BODY),
            Err(WebhookError::SignatureMismatch)
        );
    }

    #[test]
    fn passes_unknown_event_types_through() {
        let body = r#"{"id":"evt_9","type":"participant.viewed","created_at":"2026-11-22T10:00:00Z","data":{"agreement_id":"agr_7"}}"#;
        let event = verify(&provider(), &signed(SECRET, now(), body), body).unwrap();
        assert_eq!(event.event_type, "participant.viewed");
        assert_eq!(
            event.kind,
            crate::EventKind::Ignored {
                reason: "unknown event type `participant.viewed`".to_owned()
            }
        );
        assert_eq!(event.participant, crate::ParticipantRef::default());
    }

    #[test]
    fn maps_the_signed_document_reference() {
        let event = SandboxEvent {
            id: "evt_10".to_owned(),
            event_type: event_type::AGREEMENT_SIGNED_DOCUMENT.to_owned(),
            created_at: now(),
            data: SandboxEventData {
                agreement_id: "agr_7".to_owned(),
                participant_id: None,
                signed_document: Some(
                    serde_json::json!({"file_id": "fil_1", "content_type": "application/pdf"}),
                ),
            },
        };
        let body = String::from_utf8(signed_event_body(&event)).unwrap();
        let verified = verify(&provider(), &signed(SECRET, now(), &body), &body).unwrap();
        assert_eq!(verified.event_type, "agreement.signed_document");
        assert_eq!(verified.kind, crate::EventKind::SignedDocument);
        assert_eq!(
            verified.signed_document,
            Some(serde_json::json!({"file_id": "fil_1", "content_type": "application/pdf"}))
        );
    }

    #[test]
    fn a_correctly_signed_body_that_is_not_an_event_is_a_malformed_payload() {
        for body in ["{not json", r#"{"id":"evt_1"}"#, "[]"] {
            let result = verify(&provider(), &signed(SECRET, now(), body), body);
            let error = result.unwrap_err();
            assert!(
                matches!(error, WebhookError::MalformedPayload(_)),
                "{body}: {error:?}"
            );
            assert!(!error.is_authentication_failure());
        }
    }

    #[test]
    fn authentication_is_checked_before_the_body_is_read() {
        let body = "{not json";
        let result = verify(&provider(), &signed(b"someone-else", now(), body), body);
        assert_eq!(result, Err(WebhookError::SignatureMismatch));
        let stale = now() - TimeDelta::seconds(3600);
        let result = verify(&provider(), &signed(SECRET, stale, body), body);
        assert_eq!(result, Err(WebhookError::TimestampOutOfTolerance));
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let shown = format!(
            "{:?}",
            SandboxProvider::new(vec![SECRET.to_vec(), OLD_SECRET.to_vec()])
        );
        assert!(!shown.contains("sandbox-test-secret"), "{shown}");
        assert!(!shown.contains(&format!("{:?}", SECRET)), "{shown}");
        assert!(shown.contains("2 redacted"), "{shown}");
    }

    proptest! {
        /// Whatever the body bytes, secret and moment, what `sign` makes verifies; body bytes
        /// that are not an event can only fail as a payload, never as authentication.
        #[test]
        fn sign_then_verify_authenticates(
            secret in proptest::collection::vec(any::<u8>(), 1..80),
            body in proptest::collection::vec(any::<u8>(), 0..512),
            sent_at in 0i64..4_102_444_800,
            delay in -300i64..=300,
        ) {
            let provider = SandboxProvider::new(vec![secret.clone()]);
            let headers = headers(&sign(&secret, sent_at, &body));
            let now = DateTime::from_timestamp(sent_at + delay, 0).unwrap();
            match provider.verify(&headers, &body, now) {
                Ok(_) => {}
                Err(error) => prop_assert!(!error.is_authentication_failure(), "{error:?}"),
            }
        }

        /// Changing any one byte of a signed body breaks the signature.
        #[test]
        fn any_changed_byte_is_detected(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let headers = headers(&sign(SECRET, now().timestamp(), &body));
            let mut tampered = body.clone();
            tampered[index.index(body.len())] ^= flip;
            prop_assert_eq!(
                provider().verify(&headers, &tampered, now()),
                Err(WebhookError::SignatureMismatch)
            );
        }

        /// A sandbox event survives body, signature and verification unchanged.
        #[test]
        fn events_round_trip(
            id in "evt_[a-zA-Z0-9]{1,24}",
            kind in proptest::sample::select(event_type::EMITTED.to_vec()),
            agreement_id in "[^\\s][\\PC]{0,30}",
            participant_id in proptest::option::of("[\\PC]{0,30}"),
            created_at in 0i64..4_102_444_800,
            sent_at in 0i64..4_102_444_800,
        ) {
            let event = SandboxEvent {
                id,
                event_type: kind.to_owned(),
                created_at: DateTime::from_timestamp(created_at, 0).unwrap(),
                data: SandboxEventData { agreement_id, participant_id, signed_document: None },
            };
            let body = signed_event_body(&event);
            let headers = headers(&sign(SECRET, sent_at, &body));
            let now = DateTime::from_timestamp(sent_at, 0).unwrap();
            let verified = provider().verify(&headers, &body, now).unwrap();
            let ignored = matches!(verified.kind, crate::EventKind::Ignored { .. });
            prop_assert!(!ignored);
            prop_assert_eq!(verified, event.into_verified("sandbox"));
        }
    }
}
