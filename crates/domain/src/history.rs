//! The append-only history of an agreement. Every change appends entries that are also the
//! events published on the bus (SPEC section 4); ignored provider events are recorded, never
//! published.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::Agreement;
use crate::status::{Journey, SignatureStatus, Status};

/// The type of a history entry: an event name of SPEC section 4, or `ProviderEventIgnored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryType {
    AgreementCreated,
    AgreementUpdated,
    AgreementSentForSignature,
    AgreementReopened,
    SigningGroupInvited,
    ParticipantSigned,
    ParticipantRefused,
    ParticipantDeliveryFailed,
    ParticipantIdentityCheckFailed,
    CustomerJourneyStopped,
    AgreementFulfilled,
    AgreementRefused,
    AgreementExpired,
    AgreementCancelled,
    AgreementFailed,
    AgreementDeliveredToProvider,
    SignedDocumentStored,
    ProviderEventIgnored,
}

impl EntryType {
    pub fn is_published(self) -> bool {
        self != EntryType::ProviderEventIgnored
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EntryType::AgreementCreated => "AgreementCreated",
            EntryType::AgreementUpdated => "AgreementUpdated",
            EntryType::AgreementSentForSignature => "AgreementSentForSignature",
            EntryType::AgreementReopened => "AgreementReopened",
            EntryType::SigningGroupInvited => "SigningGroupInvited",
            EntryType::ParticipantSigned => "ParticipantSigned",
            EntryType::ParticipantRefused => "ParticipantRefused",
            EntryType::ParticipantDeliveryFailed => "ParticipantDeliveryFailed",
            EntryType::ParticipantIdentityCheckFailed => "ParticipantIdentityCheckFailed",
            EntryType::CustomerJourneyStopped => "CustomerJourneyStopped",
            EntryType::AgreementFulfilled => "AgreementFulfilled",
            EntryType::AgreementRefused => "AgreementRefused",
            EntryType::AgreementExpired => "AgreementExpired",
            EntryType::AgreementCancelled => "AgreementCancelled",
            EntryType::AgreementFailed => "AgreementFailed",
            EntryType::AgreementDeliveredToProvider => "AgreementDeliveredToProvider",
            EntryType::SignedDocumentStored => "SignedDocumentStored",
            EntryType::ProviderEventIgnored => "ProviderEventIgnored",
        }
    }
}

/// One entry of the history. `sequence` numbers every entry of the agreement (gapless from 1);
/// `event_sequence` numbers the published ones (gapless from 1), and is what an event's
/// `sequence` is, so a consumer can tell it missed nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub agreement_id: String,
    pub tenant: String,
    pub sequence: u64,
    pub event_sequence: Option<u64>,
    #[serde(rename = "type")]
    pub entry_type: EntryType,
    pub occurred_at: DateTime<Utc>,
    /// The agreement's version after the write that appended this entry.
    pub version: u64,
    pub participant_id: Option<String>,
    pub signing_group: Option<u32>,
    pub reason: Option<String>,
    pub provider_event_id: Option<String>,
    /// The agreement as this entry left it: what the published event carries.
    pub status: Status,
    pub signature_status: Option<SignatureStatus>,
    pub journey: Journey,
    pub lookup_key: Option<String>,
}

/// What a transition says happened, before it is numbered against the agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    pub entry_type: EntryType,
    pub participant_id: Option<String>,
    pub signing_group: Option<u32>,
    pub reason: Option<String>,
}

impl EntryDraft {
    pub fn new(entry_type: EntryType) -> Self {
        EntryDraft {
            entry_type,
            participant_id: None,
            signing_group: None,
            reason: None,
        }
    }

    pub fn participant(mut self, participant_id: &str) -> Self {
        self.participant_id = Some(participant_id.to_owned());
        self
    }

    pub fn group(mut self, signing_group: u32) -> Self {
        self.signing_group = Some(signing_group);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Numbers drafts after the agreement's current history and snapshots the state they left.
/// `agreement` is the state after the write (its counters are advanced here).
pub(crate) fn append_entries(
    agreement: &mut Agreement,
    drafts: Vec<EntryDraft>,
    occurred_at: DateTime<Utc>,
    provider_event_id: Option<&str>,
) -> Vec<HistoryEntry> {
    let signature_status = agreement.signature_status();
    let journey = agreement.journey();
    drafts
        .into_iter()
        .map(|draft| {
            agreement.history_len += 1;
            let event_sequence = draft.entry_type.is_published().then(|| {
                agreement.published_len += 1;
                agreement.published_len
            });
            HistoryEntry {
                agreement_id: agreement.id.clone(),
                tenant: agreement.tenant.clone(),
                sequence: agreement.history_len,
                event_sequence,
                entry_type: draft.entry_type,
                occurred_at,
                version: agreement.version,
                participant_id: draft.participant_id,
                signing_group: draft.signing_group,
                reason: draft.reason,
                provider_event_id: provider_event_id.map(str::to_owned),
                status: agreement.status,
                signature_status,
                journey,
                lookup_key: agreement.metadata.lookup_key.clone(),
            }
        })
        .collect()
}

/// The detail of the EventBridge event published for a history entry (SPEC section 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetail {
    pub agreement_id: String,
    pub tenant: String,
    /// Gapless per agreement over published events.
    pub sequence: u64,
    /// The entry's place in the full history (`GET .../history`).
    pub history_sequence: u64,
    pub version: u64,
    pub status: Status,
    pub signature_status: Option<SignatureStatus>,
    pub journey: Journey,
    pub lookup_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_group: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// A published event: its detail-type and detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedEvent {
    pub detail_type: &'static str,
    pub detail: EventDetail,
}

impl HistoryEntry {
    /// The event this entry publishes; `None` for ignored provider events.
    pub fn published_event(&self) -> Option<PublishedEvent> {
        let sequence = self.event_sequence?;
        Some(PublishedEvent {
            detail_type: self.entry_type.as_str(),
            detail: EventDetail {
                agreement_id: self.agreement_id.clone(),
                tenant: self.tenant.clone(),
                sequence,
                history_sequence: self.sequence,
                version: self.version,
                status: self.status,
                signature_status: self.signature_status,
                journey: self.journey,
                lookup_key: self.lookup_key.clone(),
                participant_id: self.participant_id.clone(),
                signing_group: self.signing_group,
                reason: self.reason.clone(),
                occurred_at: self.occurred_at,
            },
        })
    }
}
