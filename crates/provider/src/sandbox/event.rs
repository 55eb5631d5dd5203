//! The sandbox provider's webhook body.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{AgreementRef, EventKind, ParticipantRef, PayloadProblem, VerifiedEvent, WebhookError};

/// The event types the sandbox emits (SPEC section 6). Verification passes any other type through.
pub mod event_type {
    pub const PARTICIPANT_SIGNED: &str = "participant.signed";
    pub const PARTICIPANT_REFUSED: &str = "participant.refused";
    pub const PARTICIPANT_DELIVERY_FAILED: &str = "participant.delivery_failed";
    pub const PARTICIPANT_IDENTITY_CHECK_FAILED: &str = "participant.identity_check_failed";
    pub const AGREEMENT_FAILED: &str = "agreement.failed";
    pub const AGREEMENT_SIGNED_DOCUMENT: &str = "agreement.signed_document";

    /// Every type above.
    pub const EMITTED: [&str; 6] = [
        PARTICIPANT_SIGNED,
        PARTICIPANT_REFUSED,
        PARTICIPANT_DELIVERY_FAILED,
        PARTICIPANT_IDENTITY_CHECK_FAILED,
        AGREEMENT_FAILED,
        AGREEMENT_SIGNED_DOCUMENT,
    ];
}

/// `{"id":"evt_…","type":"participant.signed","created_at":"2026-11-22T10:00:00Z","data":{…}}`.
/// Unknown fields are ignored so the format can grow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxEvent {
    /// The provider event id: the service applies each one exactly once.
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created_at: DateTime<Utc>,
    pub data: SandboxEventData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SandboxEventData {
    pub agreement_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
    /// A file reference object, for `agreement.signed_document`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_document: Option<serde_json::Value>,
}

/// The JSON body of a sandbox callback, the exact bytes to sign with [`super::sign`].
pub fn signed_event_body(event: &SandboxEvent) -> Vec<u8> {
    // Serializing strings, a timestamp and a JSON value into memory cannot fail; were it to, an
    // empty body would be refused as malformed downstream rather than panic here.
    serde_json::to_vec(event).unwrap_or_default()
}

impl SandboxEvent {
    /// Reads a body whose signature has already been verified. What is not an event is refused
    /// field by field, in words a client may read (the sender is authenticated but may be a
    /// misconfigured integration).
    pub(super) fn from_verified_body(body: &[u8]) -> Result<Self, WebhookError> {
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            WebhookError::MalformedPayload(vec![PayloadProblem::of_body(not_json(&error, body))])
        })?;
        let problems = problems_of(&value);
        if !problems.is_empty() {
            return Err(WebhookError::MalformedPayload(problems));
        }
        // `problems_of` refuses whatever serde would; this is only reached if they drift.
        serde_json::from_value(value).map_err(|_| {
            WebhookError::MalformedPayload(vec![PayloadProblem::of_body(
                "the body is not an event of the sandbox provider",
            )])
        })
    }

    /// The sandbox's own event names mapped to what they mean (SPEC section 6); another type
    /// is passed through as ignored, with its name as the reason. Only for an event whose
    /// signature was verified (or, in tests, one made in place of a verified callback).
    pub fn into_verified(self, provider: &str) -> VerifiedEvent {
        let kind = match self.event_type.as_str() {
            event_type::PARTICIPANT_SIGNED => EventKind::ParticipantSigned,
            event_type::PARTICIPANT_REFUSED => EventKind::ParticipantRefused,
            event_type::PARTICIPANT_DELIVERY_FAILED => EventKind::ParticipantDeliveryFailed,
            event_type::PARTICIPANT_IDENTITY_CHECK_FAILED => {
                EventKind::ParticipantIdentityCheckFailed
            }
            event_type::AGREEMENT_FAILED => EventKind::AgreementFailed,
            event_type::AGREEMENT_SIGNED_DOCUMENT => EventKind::SignedDocument,
            other => EventKind::Ignored {
                reason: format!("unknown event type `{other}`"),
            },
        };
        VerifiedEvent {
            provider: provider.to_owned(),
            event_id: self.id,
            event_type: self.event_type,
            kind,
            agreement: Some(AgreementRef::Id(self.data.agreement_id)),
            participant: ParticipantRef {
                id: self.data.participant_id,
                reference: None,
                email: None,
            },
            signed_document: self.data.signed_document,
            occurred_at: self.created_at,
        }
    }
}

/// Every way `value` is not a sandbox event. Unknown fields are not among them: the format may grow.
fn problems_of(value: &Value) -> Vec<PayloadProblem> {
    let Some(event) = value.as_object() else {
        return vec![PayloadProblem::of_body("the body must be a JSON object")];
    };
    let mut problems = Vec::new();
    // Empty ids would make every such event the same one to the exactly-once bookkeeping.
    identifier(event, "id", "/id", "id", &mut problems);
    identifier(event, "type", "/type", "type", &mut problems);
    match event.get("created_at") {
        None => problems.push(PayloadProblem::at(
            "/created_at",
            "created_at",
            "is required",
        )),
        // What serde reads a `DateTime<Utc>` with.
        Some(Value::String(text)) if text.parse::<DateTime<Utc>>().is_ok() => {}
        Some(_) => problems.push(PayloadProblem::at(
            "/created_at",
            "created_at",
            "must be an RFC 3339 timestamp such as `2026-11-22T10:00:00Z`",
        )),
    }
    match event.get("data") {
        None => problems.push(PayloadProblem::at("/data", "data", "is required")),
        Some(Value::Object(data)) => {
            identifier(
                data,
                "agreement_id",
                "/data/agreement_id",
                "data.agreement_id",
                &mut problems,
            );
            match data.get("participant_id") {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(_) => problems.push(PayloadProblem::at(
                    "/data/participant_id",
                    "data.participant_id",
                    "must be text",
                )),
            }
        }
        Some(_) => problems.push(PayloadProblem::at("/data", "data", "must be an object")),
    }
    problems
}

/// A required, non-blank text field.
fn identifier(
    object: &serde_json::Map<String, Value>,
    key: &str,
    pointer: &str,
    field: &str,
    problems: &mut Vec<PayloadProblem>,
) {
    match object.get(key) {
        None => problems.push(PayloadProblem::at(pointer, field, "is required")),
        Some(Value::String(text)) if !text.trim().is_empty() => {}
        Some(_) => problems.push(PayloadProblem::at(pointer, field, "must be non-empty text")),
    }
}

/// What to say of a body that is not JSON, with where it went wrong.
fn not_json(error: &serde_json::Error, body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "the body is empty; it must be a JSON object".to_owned();
    }
    format!(
        "the body is not valid JSON (line {}, column {})",
        error.line(),
        error.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> SandboxEvent {
        SandboxEvent {
            id: "evt_1".to_owned(),
            event_type: event_type::PARTICIPANT_REFUSED.to_owned(),
            created_at: "2026-11-22T10:00:00Z".parse().unwrap(),
            data: SandboxEventData {
                agreement_id: "agr_1".to_owned(),
                participant_id: Some("par_1".to_owned()),
                signed_document: None,
            },
        }
    }

    #[test]
    fn body_has_the_documented_shape_and_omits_absent_fields() {
        let body: serde_json::Value = serde_json::from_slice(&signed_event_body(&event())).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": "evt_1",
                "type": "participant.refused",
                "created_at": "2026-11-22T10:00:00Z",
                "data": {"agreement_id": "agr_1", "participant_id": "par_1"},
            })
        );
    }

    #[test]
    fn body_reads_back_to_the_same_event() {
        let mut with_document = event();
        with_document.event_type = event_type::AGREEMENT_SIGNED_DOCUMENT.to_owned();
        with_document.data.participant_id = None;
        with_document.data.signed_document =
            Some(serde_json::json!({"file_id": "fil_1", "sha256": "ab12"}));
        for original in [event(), with_document] {
            let read = SandboxEvent::from_verified_body(&signed_event_body(&original)).unwrap();
            assert_eq!(read, original);
        }
    }

    #[test]
    fn created_at_with_an_offset_is_read_as_utc() {
        let body = br#"{"id":"evt_1","type":"agreement.failed","created_at":"2026-11-22T11:00:00+01:00","data":{"agreement_id":"agr_1","extra":1},"extra":true}"#;
        let read = SandboxEvent::from_verified_body(body).unwrap();
        assert_eq!(
            read.created_at,
            "2026-11-22T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(read.data.participant_id, None);
    }

    #[test]
    fn the_field_checks_refuse_whatever_serde_refuses() {
        let valid = serde_json::json!({
            "id": "evt_1", "type": "agreement.failed", "created_at": "2026-11-22T10:00:00Z",
            "data": {"agreement_id": "agr_1", "participant_id": "p", "signed_document": {"a": 1}}
        });
        let probes = [
            serde_json::json!(null),
            serde_json::json!(5),
            serde_json::json!(-1.5),
            serde_json::json!(true),
            serde_json::json!(""),
            serde_json::json!(" "),
            serde_json::json!("x"),
            serde_json::json!("2026-11-22T10:00:00Z"),
            serde_json::json!("2026-11-22 10:00:00+01:00"),
            serde_json::json!([]),
            serde_json::json!({}),
        ];
        let fields = [
            "/id",
            "/type",
            "/created_at",
            "/data",
            "/data/agreement_id",
            "/data/participant_id",
            "/data/signed_document",
        ];
        for field in fields {
            let mut variants = Vec::new();
            for probe in &probes {
                let mut changed = valid.clone();
                *changed.pointer_mut(field).unwrap() = probe.clone();
                variants.push(changed);
            }
            let (parent, last) = field.rsplit_once('/').unwrap();
            let mut without = valid.clone();
            if let Some(Value::Object(object)) = without.pointer_mut(parent) {
                object.remove(last);
            }
            variants.push(without);
            for value in variants {
                if problems_of(&value).is_empty() {
                    assert!(
                        serde_json::from_value::<SandboxEvent>(value.clone()).is_ok(),
                        "the checks pass what serde refuses: {value}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_problem_names_its_field() {
        let body = br#"{"id":5,"type":"","created_at":"yesterday","data":{"participant_id":3}}"#;
        let Err(WebhookError::MalformedPayload(problems)) = SandboxEvent::from_verified_body(body)
        else {
            panic!("refused");
        };
        let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/id",
                "/type",
                "/created_at",
                "/data/agreement_id",
                "/data/participant_id"
            ]
        );
        for problem in &problems {
            assert!(
                problem
                    .message
                    .starts_with(&format!("`{}` ", problem.field)),
                "{problem:?}"
            );
        }
    }

    #[test]
    fn refuses_bodies_that_are_not_events() {
        let bodies: [&[u8]; 7] = [
            b"",
            b"not json",
            br#"{"id":"evt_1","type":"agreement.failed","created_at":"2026-11-22T10:00:00Z"}"#,
            br#"{"id":"evt_1","type":"agreement.failed","created_at":"yesterday","data":{"agreement_id":"a"}}"#,
            br#"{"id":"","type":"agreement.failed","created_at":"2026-11-22T10:00:00Z","data":{"agreement_id":"a"}}"#,
            br#"{"id":"evt_1","type":" ","created_at":"2026-11-22T10:00:00Z","data":{"agreement_id":"a"}}"#,
            br#"{"id":"evt_1","type":"agreement.failed","created_at":"2026-11-22T10:00:00Z","data":{"agreement_id":""}}"#,
        ];
        for body in bodies {
            let error = SandboxEvent::from_verified_body(body).unwrap_err();
            assert!(
                matches!(error, WebhookError::MalformedPayload(_)),
                "{:?} gave {error:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
