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
use crate::{PayloadProblem, WebhookError};

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
