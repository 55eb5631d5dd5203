//! Zigned's webhooks: `x-zigned-request-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<raw body>")>`, payload `{"event": "<name>", "data": {...}}` (some senders say
//! `event_type`), mapped as `providers/zigned/README.md` says.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::signature::SignatureCheck;
use crate::{
    AgreementRef, EventKind, ParticipantRef, PayloadProblem, VerifiedEvent, WebhookError,
    WebhookVerifier,
};

/// `x-zigned-request-signature`, lower-cased as `http` stores header names.
pub const SIGNATURE_HEADER: &str = "x-zigned-request-signature";
/// How far the signed timestamp may be from now, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// What a Zigned event means to countersign (SPEC section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ZignedEventKind {
    /// `participant.lifecycle.fulfilled` (approvers too).
    ParticipantSigned,
    /// `sign_event.approval.disapproved`, or any participant event whose `status` is `rejected`.
    ParticipantRefused,
    /// `email_event.agreement_invitation.delivery_failed`.
    ParticipantDeliveryFailed,
    /// `participant.identity_enforcement.failed`: one failed attempt.
    IdentityCheckFailed,
    /// `agreement.lifecycle.finalized`: the signed document can be fetched.
    SignedDocumentReady,
    /// Generation, validation, PDF or audit trail verification failed.
    AgreementFailed,
    /// `agreement.lifecycle.cancelled`: cancelled at Zigned (not asked by countersign).
    CancelledByProvider,
    /// `agreement.lifecycle.expired`.
    ExpiredAtProvider,
    /// Anything else: recorded as ignored, with the event name as the reason.
    Ignored,
}

/// A verified Zigned event in provider-neutral terms. References are Zigned's ids: the caller
/// finds the agreement by `agreement_reference` (its `provider.reference`) and the participant by
/// `participant_reference` (its `provider_reference`) or, failing that, `participant_email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZignedEvent {
    /// Hex SHA-256 of the raw body: Zigned documents no event id, and a redelivery carries the
    /// same body, so this applies each event exactly once.
    pub event_id: String,
    /// Zigned's name, e.g. `participant.lifecycle.fulfilled`.
    pub event_name: String,
    pub kind: ZignedEventKind,
    /// Zigned's agreement id; always present unless `kind` is `Ignored`.
    pub agreement_reference: Option<String>,
    /// Zigned's participant id, for participant events.
    pub participant_reference: Option<String>,
    pub participant_email: Option<String>,
    /// The signed timestamp (`t=`).
    pub occurred_at: DateTime<Utc>,
}

impl ZignedEventKind {
    /// The kind of `event_name`, before looking at a participant's `status`.
    pub fn of_name(event_name: &str) -> ZignedEventKind {
        match event_name {
            "participant.lifecycle.fulfilled" => ZignedEventKind::ParticipantSigned,
            "sign_event.approval.disapproved" => ZignedEventKind::ParticipantRefused,
            "email_event.agreement_invitation.delivery_failed" => {
                ZignedEventKind::ParticipantDeliveryFailed
            }
            "participant.identity_enforcement.failed" => ZignedEventKind::IdentityCheckFailed,
            "agreement.lifecycle.finalized" => ZignedEventKind::SignedDocumentReady,
            "agreement.generation.failed"
            | "agreement.validation.failed"
            | "agreement.pdf_verification.failed"
            | "agreement.audit_trail_verification.failed" => ZignedEventKind::AgreementFailed,
            "agreement.lifecycle.cancelled" => ZignedEventKind::CancelledByProvider,
            "agreement.lifecycle.expired" => ZignedEventKind::ExpiredAtProvider,
            _ => ZignedEventKind::Ignored,
        }
    }

    fn is_participant_event(&self) -> bool {
        match self {
            ZignedEventKind::ParticipantSigned
            | ZignedEventKind::ParticipantRefused
            | ZignedEventKind::ParticipantDeliveryFailed
            | ZignedEventKind::IdentityCheckFailed => true,
            ZignedEventKind::SignedDocumentReady
            | ZignedEventKind::AgreementFailed
            | ZignedEventKind::CancelledByProvider
            | ZignedEventKind::ExpiredAtProvider
            | ZignedEventKind::Ignored => false,
        }
    }
}

/// Verifies Zigned webhooks against one or more secrets (several during rotation).
#[derive(Clone)]
pub struct ZignedWebhook {
    check: SignatureCheck,
}

// Never show the secrets.
impl fmt::Debug for ZignedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZignedWebhook")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.check.secrets.len()),
            )
            .field("tolerance", &self.check.tolerance)
            .finish()
    }
}

impl ZignedWebhook {
    /// Empty secrets are dropped; with none left every request is refused.
    pub fn new(secrets: Vec<Vec<u8>>) -> Self {
        ZignedWebhook {
            check: SignatureCheck::new(SIGNATURE_HEADER, secrets, DEFAULT_TOLERANCE),
        }
    }

    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.check.tolerance = tolerance;
        self
    }

    /// Authenticates the request (header, timestamp within the tolerance, a `v1` matching a
    /// secret in constant time), then maps the body. Nothing of the body is trusted before that.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<ZignedEvent, WebhookError> {
        let timestamp = self.check.verify(headers, body, now)?;
        let occurred_at = DateTime::from_timestamp(timestamp, 0).unwrap_or(now);
        map_event(body, occurred_at)
    }
}

impl ZignedEvent {
    /// In provider-neutral terms (SPEC section 5): Zigned names the agreement and the
    /// participant by its own ids.
    pub fn into_verified(self) -> VerifiedEvent {
        let kind = match self.kind {
            ZignedEventKind::ParticipantSigned => EventKind::ParticipantSigned,
            ZignedEventKind::ParticipantRefused => EventKind::ParticipantRefused,
            ZignedEventKind::ParticipantDeliveryFailed => EventKind::ParticipantDeliveryFailed,
            ZignedEventKind::IdentityCheckFailed => EventKind::ParticipantIdentityCheckFailed,
            ZignedEventKind::SignedDocumentReady => EventKind::SignedDocumentReady,
            ZignedEventKind::AgreementFailed => EventKind::AgreementFailed,
            ZignedEventKind::CancelledByProvider => EventKind::AgreementCancelled,
            ZignedEventKind::ExpiredAtProvider => EventKind::AgreementExpired,
            ZignedEventKind::Ignored => EventKind::Ignored {
                reason: format!("Zigned event `{}`", self.event_name),
            },
        };
        VerifiedEvent {
            provider: super::PROVIDER_NAME.to_owned(),
            event_id: self.event_id,
            event_type: self.event_name,
            kind,
            agreement: self.agreement_reference.map(AgreementRef::Reference),
            participant: ParticipantRef {
                id: None,
                reference: self.participant_reference,
                email: self.participant_email,
            },
            signed_document: None,
            occurred_at: self.occurred_at,
        }
    }
}

impl WebhookVerifier for ZignedWebhook {
    fn name(&self) -> &str {
        super::PROVIDER_NAME
    }

    fn signature_header(&self) -> &str {
        SIGNATURE_HEADER
    }

    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedEvent, WebhookError> {
        ZignedWebhook::verify(self, headers, body, now).map(ZignedEvent::into_verified)
    }
}

/// The full `x-zigned-request-signature` value for `body` sent at `timestamp`, as Zigned makes
/// it (for tests and for local tooling that plays Zigned).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    crate::signature::sign(secret, timestamp, body)
}

fn map_event(body: &[u8], occurred_at: DateTime<Utc>) -> Result<ZignedEvent, WebhookError> {
    let payload: Value = serde_json::from_slice(body).map_err(|_| {
        WebhookError::MalformedPayload(vec![PayloadProblem::of_body("the body is not JSON")])
    })?;
    let Some(object) = payload.as_object() else {
        return Err(WebhookError::MalformedPayload(vec![
            PayloadProblem::of_body("the body is not a JSON object"),
        ]));
    };
    let event_name = object
        .get("event")
        .or_else(|| object.get("event_type"))
        .and_then(Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .ok_or_else(|| {
            WebhookError::MalformedPayload(vec![PayloadProblem::at(
                "/event",
                "event",
                "is required: the event name (or `event_type`)",
            )])
        })?
        .to_owned();
    let data = object.get("data").filter(|data| data.is_object());

    let mut kind = ZignedEventKind::of_name(&event_name);
    let is_participant_data = event_name.starts_with("participant.")
        || data
            .and_then(|data| data.get("resource_type"))
            .and_then(Value::as_str)
            == Some("participant");
    // A participant whose status became `rejected` refused, whatever the event says, unless it
    // reports the signature itself.
    if is_participant_data
        && kind != ZignedEventKind::ParticipantSigned
        && data
            .and_then(|data| data.get("status"))
            .and_then(Value::as_str)
            == Some("rejected")
    {
        kind = ZignedEventKind::ParticipantRefused;
    }

    let (agreement_reference, participant_reference, participant_email) = match data {
        None => (None, None, None),
        Some(data) if is_participant_data => (
            reference(data.get("agreement")),
            text(data.get("id")),
            text(data.get("email")),
        ),
        Some(data) if event_name.starts_with("agreement.") => (text(data.get("id")), None, None),
        Some(data) => {
            let participant = data.get("participant");
            (
                reference(data.get("agreement")),
                reference(participant),
                participant
                    .and_then(|participant| participant.get("email"))
                    .and_then(Value::as_str)
                    .or_else(|| data.get("email").and_then(Value::as_str))
                    .map(str::to_owned),
            )
        }
    };

    let mut problems = Vec::new();
    if kind != ZignedEventKind::Ignored {
        if data.is_none() {
            problems.push(PayloadProblem::at(
                "/data",
                "data",
                "is required: an object",
            ));
        } else if agreement_reference.is_none() {
            let (pointer, field) = if is_participant_data || !event_name.starts_with("agreement.") {
                ("/data/agreement", "data.agreement")
            } else {
                ("/data/id", "data.id")
            };
            problems.push(PayloadProblem::at(
                pointer,
                field,
                "is required: Zigned's agreement id",
            ));
        }
        if kind.is_participant_event()
            && data.is_some()
            && participant_reference.is_none()
            && participant_email.is_none()
        {
            problems.push(PayloadProblem::at(
                "/data/participant",
                "data.participant",
                "is required: the participant's id or email",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(WebhookError::MalformedPayload(problems));
    }

    Ok(ZignedEvent {
        event_id: hex::encode(Sha256::digest(body)),
        event_name,
        kind,
        agreement_reference,
        participant_reference,
        participant_email,
        occurred_at,
    })
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|text| !text.trim().is_empty())
        .map(str::to_owned)
}

/// A reference Zigned gives either as an id or as the object itself (`{"id": ...}`).
fn reference(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(_) => text(value),
        Value::Object(object) => text(object.get("id")),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Array(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use http::HeaderValue;

    const SECRET: &[u8] = b"zigned-webhook-secret-1";
    const OLD_SECRET: &[u8] = b"zigned-webhook-secret-0";

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn signed(secret: &[u8], at: DateTime<Utc>, body: &str) -> HeaderMap {
        headers(&sign(secret, at.timestamp(), body.as_bytes()))
    }

    fn webhook() -> ZignedWebhook {
        ZignedWebhook::new(vec![SECRET.to_vec()])
    }

    fn verify(body: &str) -> Result<ZignedEvent, WebhookError> {
        webhook().verify(&signed(SECRET, now(), body), body.as_bytes(), now())
    }

    fn participant_event(event: &str, status: &str) -> String {
        serde_json::json!({"event": event, "data": {"id": "zp1", "resource_type": "participant",
            "email": "ada@example.com", "status": status, "agreement": "za1",
            "signed_at": null}})
        .to_string()
    }

    fn agreement_event(event: &str) -> String {
        serde_json::json!({"event": event, "data": {"id": "za1", "resource_type": "agreement",
            "status": "pending"}})
        .to_string()
    }

    #[test]
    fn a_good_signature_verifies_and_maps_the_event() {
        let body = participant_event("participant.lifecycle.fulfilled", "fulfilled");
        let event = verify(&body).unwrap();
        assert_eq!(
            event,
            ZignedEvent {
                event_id: hex::encode(Sha256::digest(body.as_bytes())),
                event_name: "participant.lifecycle.fulfilled".to_owned(),
                kind: ZignedEventKind::ParticipantSigned,
                agreement_reference: Some("za1".to_owned()),
                participant_reference: Some("zp1".to_owned()),
                participant_email: Some("ada@example.com".to_owned()),
                occurred_at: now(),
            }
        );
    }

    #[test]
    fn the_event_id_is_the_same_for_a_redelivery_and_differs_for_another_body() {
        let body = agreement_event("agreement.lifecycle.finalized");
        let first = verify(&body).unwrap();
        let later = now() + TimeDelta::seconds(30);
        let again = webhook()
            .verify(&signed(SECRET, later, &body), body.as_bytes(), later)
            .unwrap();
        assert_eq!(first.event_id, again.event_id);
        let other = verify(&agreement_event("agreement.lifecycle.expired")).unwrap();
        assert_ne!(first.event_id, other.event_id);
        assert_eq!(first.event_id.len(), 64);
    }

    #[test]
    fn secrets_rotate_and_several_v1_values_are_accepted() {
        let body = agreement_event("agreement.lifecycle.expired");
        let rotating = ZignedWebhook::new(vec![SECRET.to_vec(), OLD_SECRET.to_vec()]);
        // Signed with the old secret only.
        assert!(rotating
            .verify(&signed(OLD_SECRET, now(), &body), body.as_bytes(), now())
            .is_ok());
        // A sender signing with both: one unknown tag and one good one.
        let t = now().timestamp();
        let with_unknown = sign(b"some-other-secret", t, body.as_bytes());
        let good = sign(SECRET, t, body.as_bytes());
        let both = format!("{with_unknown},v1={}", good.split_once("v1=").unwrap().1);
        assert!(webhook()
            .verify(&headers(&both), body.as_bytes(), now())
            .is_ok());
        // Without the old secret configured, the old signature fails.
        assert_eq!(
            webhook()
                .verify(&signed(OLD_SECRET, now(), &body), body.as_bytes(), now())
                .unwrap_err(),
            WebhookError::SignatureMismatch
        );
    }

    #[test]
    fn a_stale_or_future_timestamp_is_refused() {
        let body = agreement_event("agreement.lifecycle.expired");
        for offset in [-301, 301] {
            let at = now() + TimeDelta::seconds(offset);
            assert_eq!(
                webhook()
                    .verify(&signed(SECRET, at, &body), body.as_bytes(), now())
                    .unwrap_err(),
                WebhookError::TimestampOutOfTolerance,
                "offset {offset}"
            );
        }
        for offset in [-300, 300] {
            let at = now() + TimeDelta::seconds(offset);
            assert!(webhook()
                .verify(&signed(SECRET, at, &body), body.as_bytes(), now())
                .is_ok());
        }
    }

    #[test]
    fn forged_and_tampered_requests_are_refused() {
        let body = agreement_event("agreement.lifecycle.cancelled");
        let forged = signed(b"not-the-secret", now(), &body);
        assert_eq!(
            webhook()
                .verify(&forged, body.as_bytes(), now())
                .unwrap_err(),
            WebhookError::SignatureMismatch
        );
        let tampered = body.replace("za1", "za2");
        assert_eq!(
            webhook()
                .verify(&signed(SECRET, now(), &body), tampered.as_bytes(), now())
                .unwrap_err(),
            WebhookError::SignatureMismatch
        );
        // No secret configured (an empty one is dropped): nothing verifies.
        let unconfigured = ZignedWebhook::new(vec![Vec::new()]);
        assert_eq!(
            unconfigured
                .verify(&signed(b"", now(), &body), body.as_bytes(), now())
                .unwrap_err(),
            WebhookError::SignatureMismatch
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let body = agreement_event("agreement.lifecycle.cancelled");
        assert_eq!(
            webhook()
                .verify(&HeaderMap::new(), body.as_bytes(), now())
                .unwrap_err(),
            WebhookError::MissingSignature
        );
        for malformed in ["", "t=abc,v1=00", "v1=zz", "t=1795341600", "garbage"] {
            assert_eq!(
                webhook()
                    .verify(&headers(malformed), body.as_bytes(), now())
                    .unwrap_err(),
                WebhookError::MalformedSignature,
                "{malformed:?}"
            );
        }
        let mut twice = signed(SECRET, now(), &body);
        let value = twice.get(SIGNATURE_HEADER).unwrap().clone();
        twice.append(SIGNATURE_HEADER, value);
        assert_eq!(
            webhook()
                .verify(&twice, body.as_bytes(), now())
                .unwrap_err(),
            WebhookError::MalformedSignature
        );
    }

    #[test]
    fn every_mapped_event_name_has_its_kind() {
        let participant_events = [
            (
                "participant.lifecycle.fulfilled",
                ZignedEventKind::ParticipantSigned,
            ),
            (
                "participant.identity_enforcement.failed",
                ZignedEventKind::IdentityCheckFailed,
            ),
        ];
        for (name, kind) in participant_events {
            let event = verify(&participant_event(name, "pending")).unwrap();
            assert_eq!(event.kind, kind, "{name}");
            assert_eq!(event.participant_reference.as_deref(), Some("zp1"));
            assert_eq!(event.agreement_reference.as_deref(), Some("za1"));
        }
        let agreement_events = [
            (
                "agreement.lifecycle.finalized",
                ZignedEventKind::SignedDocumentReady,
            ),
            (
                "agreement.generation.failed",
                ZignedEventKind::AgreementFailed,
            ),
            (
                "agreement.validation.failed",
                ZignedEventKind::AgreementFailed,
            ),
            (
                "agreement.pdf_verification.failed",
                ZignedEventKind::AgreementFailed,
            ),
            (
                "agreement.audit_trail_verification.failed",
                ZignedEventKind::AgreementFailed,
            ),
            (
                "agreement.lifecycle.cancelled",
                ZignedEventKind::CancelledByProvider,
            ),
            (
                "agreement.lifecycle.expired",
                ZignedEventKind::ExpiredAtProvider,
            ),
        ];
        for (name, kind) in agreement_events {
            let event = verify(&agreement_event(name)).unwrap();
            assert_eq!(event.kind, kind, "{name}");
            assert_eq!(event.agreement_reference.as_deref(), Some("za1"));
            assert_eq!(event.participant_reference, None);
        }
    }

    #[test]
    fn a_disapproval_and_a_rejected_participant_are_refusals() {
        let disapproved = serde_json::json!({"event": "sign_event.approval.disapproved",
            "data": {"id": "se1", "participant": {"id": "zp2", "email": "bank@example.com"},
                "agreement": {"id": "za1"}}})
        .to_string();
        let event = verify(&disapproved).unwrap();
        assert_eq!(event.kind, ZignedEventKind::ParticipantRefused);
        assert_eq!(event.participant_reference.as_deref(), Some("zp2"));
        assert_eq!(event.participant_email.as_deref(), Some("bank@example.com"));
        assert_eq!(event.agreement_reference.as_deref(), Some("za1"));

        // Any participant event whose status is `rejected`.
        let rejected = verify(&participant_event("participant.draft.updated", "rejected")).unwrap();
        assert_eq!(rejected.kind, ZignedEventKind::ParticipantRefused);
        assert_eq!(rejected.participant_reference.as_deref(), Some("zp1"));
        // Not rejected: an ignored participant event.
        let updated = verify(&participant_event("participant.draft.updated", "pending")).unwrap();
        assert_eq!(updated.kind, ZignedEventKind::Ignored);
    }

    #[test]
    fn a_failed_invitation_names_the_participant_by_id_or_email() {
        let by_id = serde_json::json!({"event": "email_event.agreement_invitation.delivery_failed",
            "data": {"participant": "zp1", "agreement": "za1", "email": "ada@example.com"}})
        .to_string();
        let event = verify(&by_id).unwrap();
        assert_eq!(event.kind, ZignedEventKind::ParticipantDeliveryFailed);
        assert_eq!(event.participant_reference.as_deref(), Some("zp1"));
        assert_eq!(event.participant_email.as_deref(), Some("ada@example.com"));

        let by_email =
            serde_json::json!({"event": "email_event.agreement_invitation.delivery_failed",
            "data": {"agreement": "za1", "email": "ada@example.com"}})
            .to_string();
        let event = verify(&by_email).unwrap();
        assert_eq!(event.participant_reference, None);
        assert_eq!(event.participant_email.as_deref(), Some("ada@example.com"));

        let nobody =
            serde_json::json!({"event": "email_event.agreement_invitation.delivery_failed",
            "data": {"agreement": "za1"}})
            .to_string();
        let WebhookError::MalformedPayload(problems) = verify(&nobody).unwrap_err() else {
            panic!("expected a malformed payload");
        };
        assert_eq!(problems[0].field, "data.participant");
    }

    #[test]
    fn an_unknown_event_is_ignored_with_its_name() {
        let body = serde_json::json!({"event": "sign_event.document.downloaded",
            "data": {"participant": "zp1", "agreement": "za1"}})
        .to_string();
        let event = verify(&body).unwrap();
        assert_eq!(event.kind, ZignedEventKind::Ignored);
        assert_eq!(event.event_name, "sign_event.document.downloaded");
        assert_eq!(event.agreement_reference.as_deref(), Some("za1"));
        // Even without data.
        let bare = verify(r#"{"event":"observer.draft.created"}"#).unwrap();
        assert_eq!(bare.kind, ZignedEventKind::Ignored);
        assert_eq!(bare.event_name, "observer.draft.created");
        assert_eq!(bare.agreement_reference, None);
    }

    #[test]
    fn event_type_is_accepted_for_event() {
        let body = serde_json::json!({"event_type": "agreement.lifecycle.finalized",
            "data": {"id": "za1"}})
        .to_string();
        let event = verify(&body).unwrap();
        assert_eq!(event.event_name, "agreement.lifecycle.finalized");
        assert_eq!(event.kind, ZignedEventKind::SignedDocumentReady);
    }

    #[test]
    fn a_signed_body_that_is_not_an_event_is_malformed_not_unauthenticated() {
        for (body, field) in [
            ("not json", ""),
            ("[1,2]", ""),
            (r#"{"data":{}}"#, "event"),
            (r#"{"event":"agreement.lifecycle.finalized"}"#, "data"),
            (
                r#"{"event":"agreement.lifecycle.finalized","data":{}}"#,
                "data.id",
            ),
            (
                r#"{"event":"participant.lifecycle.fulfilled","data":{"id":"zp1"}}"#,
                "data.agreement",
            ),
        ] {
            let error = verify(body).unwrap_err();
            assert!(!error.is_authentication_failure(), "{body}");
            let WebhookError::MalformedPayload(problems) = error else {
                panic!("expected a malformed payload for {body}");
            };
            assert_eq!(problems[0].field, field, "{body}");
        }
    }

    #[test]
    fn debug_never_shows_the_secrets() {
        let shown = format!("{:?}", ZignedWebhook::new(vec![SECRET.to_vec()]));
        assert!(!shown.contains("zigned-webhook-secret"), "{shown}");
        assert!(shown.contains("1 redacted"));
    }
}
