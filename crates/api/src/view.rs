//! The JSON resources clients see: the agreement (SPEC section 1) with its derived fields, and
//! history entries. Internal fields (tenant, history counters) are not part of them.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use countersign_domain::{
    Agreement, Communication, Contract, Documents, HistoryEntry, Issuer, Journey, Metadata,
    Observer, ParticipantRole, ParticipantStatus, ProviderOfRecord, SignatureStatus, SigningOrder,
    Status, TrustLevel,
};

/// UTC ISO 8601 with a `Z`, to the millisecond.
fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn optional_timestamp(at: &Option<DateTime<Utc>>) -> Option<String> {
    at.as_ref().map(timestamp)
}

#[derive(Serialize)]
pub struct AgreementView<'a> {
    id: &'a str,
    resource_type: &'static str,
    test_mode: bool,
    provider: &'a ProviderOfRecord,
    status: Status,
    signature_status: Option<SignatureStatus>,
    journey: Journey,
    journey_stopped_reason: Option<&'static str>,
    trust_level: TrustLevel,
    cancellation_reason: Option<String>,
    contract: Option<&'a Contract>,
    issuer: Option<&'a Issuer>,
    participants: Vec<ParticipantView<'a>>,
    observers: &'a [Observer],
    signing_order: SigningOrder,
    documents: &'a Documents,
    communication: &'a Communication,
    metadata: &'a Metadata,
    expires_in_days: u16,
    sent_at: Option<String>,
    expires_at: Option<String>,
    completed_at: Option<String>,
    version: u64,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
pub struct ParticipantView<'a> {
    id: &'a str,
    name: Option<&'a str>,
    email: Option<&'a str>,
    role: ParticipantRole,
    signing_group: u32,
    status: ParticipantStatus,
    identity_check_failures: u32,
    signed_at: Option<String>,
    invited_at: Option<String>,
    signing_room_url: Option<&'a str>,
    /// The provider's id for this participant, once the round is delivered.
    provider_reference: Option<&'a str>,
}

impl<'a> AgreementView<'a> {
    pub fn of(agreement: &'a Agreement) -> Self {
        AgreementView {
            id: &agreement.id,
            resource_type: "agreement",
            test_mode: agreement.test_mode,
            provider: &agreement.provider,
            status: agreement.status,
            signature_status: agreement.signature_status(),
            journey: agreement.journey(),
            journey_stopped_reason: agreement.journey_stopped_reason(),
            trust_level: agreement.trust_level,
            cancellation_reason: agreement
                .cancellation_reason
                .as_ref()
                .map(|reason| reason.display_text()),
            contract: agreement.contract.as_ref(),
            issuer: agreement.issuer.as_ref(),
            participants: agreement
                .participants
                .iter()
                .map(|participant| ParticipantView {
                    id: &participant.id,
                    name: participant.name.as_deref(),
                    email: participant.email.as_deref(),
                    role: participant.role,
                    signing_group: participant.signing_group,
                    status: participant.status,
                    identity_check_failures: participant.identity_check_failures,
                    signed_at: optional_timestamp(&participant.signed_at),
                    invited_at: optional_timestamp(&participant.invited_at),
                    signing_room_url: participant.signing_room_url.as_deref(),
                    provider_reference: participant.provider_reference.as_deref(),
                })
                .collect(),
            observers: &agreement.observers,
            signing_order: agreement.signing_order,
            documents: &agreement.documents,
            communication: &agreement.communication,
            metadata: &agreement.metadata,
            expires_in_days: agreement.expires_in_days,
            sent_at: optional_timestamp(&agreement.sent_at),
            expires_at: optional_timestamp(&agreement.expires_at),
            completed_at: optional_timestamp(&agreement.completed_at),
            version: agreement.version,
            created_at: timestamp(&agreement.created_at),
            updated_at: timestamp(&agreement.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct HistoryEntryView<'a> {
    sequence: u64,
    #[serde(rename = "type")]
    entry_type: &'static str,
    occurred_at: String,
    version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    participant_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_group: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_event_id: Option<&'a str>,
    /// The published event's `sequence`; absent for ignored provider events (not published).
    #[serde(skip_serializing_if = "Option::is_none")]
    event_sequence: Option<u64>,
}

impl<'a> HistoryEntryView<'a> {
    pub fn of(entry: &'a HistoryEntry) -> Self {
        HistoryEntryView {
            sequence: entry.sequence,
            entry_type: entry.entry_type.as_str(),
            occurred_at: timestamp(&entry.occurred_at),
            version: entry.version,
            participant_id: entry.participant_id.as_deref(),
            signing_group: entry.signing_group,
            reason: entry.reason.as_deref(),
            provider_event_id: entry.provider_event_id.as_deref(),
            event_sequence: entry.event_sequence,
        }
    }
}
