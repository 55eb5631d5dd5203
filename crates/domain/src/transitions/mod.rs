//! The state machine of SPEC section 2: lifecycle requests, provider events, expiry and edits.
//! Each `decide_*` computes, from the agreement as read, the whole write a change makes: the new
//! agreement (version + 1) and the history entries it appends. Nothing here does I/O.

use chrono::{DateTime, Duration, Utc};

use crate::error::DomainError;
use crate::history::{append_entries, EntryDraft, EntryType, HistoryEntry};
use crate::input::{
    check_input, AgreementInput, DocumentsInput, IdSource, ObserverInput, ParticipantInput,
};
use crate::model::{
    Agreement, CancellationReason, Communication, Documents, FileRef, Observer, Participant,
    ParticipantStatus, ProviderOfRecord, SANDBOX_PROVIDER,
};
use crate::readiness::readiness_issues;
use crate::status::{Journey, Status};

/// Settings of the rules that SPEC leaves configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Failed identity checks after which a participant is `IDENTITY_CHECK_FAILED`.
    pub identity_check_attempts: u32,
    /// `expires_in_days` when the client sets none.
    pub default_expires_in_days: u16,
    /// Which provider carries a new agreement (SPEC section 9).
    pub providers: ProviderRouting,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            identity_check_attempts: 3,
            default_expires_in_days: 120,
            providers: ProviderRouting::default(),
        }
    }
}

/// The provider of record of new agreements: `test_mode` ones go to `test_mode` (the sandbox
/// unless configured otherwise), the others to `live`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRouting {
    pub test_mode: String,
    pub live: String,
}

impl Default for ProviderRouting {
    fn default() -> Self {
        ProviderRouting {
            test_mode: SANDBOX_PROVIDER.to_owned(),
            live: "zigned".to_owned(),
        }
    }
}

impl ProviderRouting {
    pub fn for_test_mode(&self, test_mode: bool) -> &str {
        if test_mode {
            &self.test_mode
        } else {
            &self.live
        }
    }
}

/// `POST /v1/agreements/{id}/lifecycle` bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleRequest {
    Pending,
    Open,
    Cancelled(CancellationReason),
}

impl LifecycleRequest {
    pub fn target(&self) -> Status {
        match self {
            LifecycleRequest::Pending => Status::Pending,
            LifecycleRequest::Open => Status::Open,
            LifecycleRequest::Cancelled(_) => Status::Cancelled,
        }
    }
}

/// A verified provider event, mapped to what section 2 knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider adapter that verified the event (its webhook secret signed it).
    pub provider: String,
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub kind: ProviderEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEventKind {
    ParticipantSigned {
        participant_id: String,
    },
    ParticipantRefused {
        participant_id: String,
    },
    ParticipantDeliveryFailed {
        participant_id: String,
    },
    ParticipantIdentityCheckFailed {
        participant_id: String,
    },
    SignedDocument {
        document: FileRef,
    },
    AgreementFailed,
    /// Cancelled on the provider's side (its operations team), not asked by countersign.
    AgreementCancelled,
    /// Expired on the provider's side.
    AgreementExpired,
    /// An event countersign cannot use: an unknown type, or one missing what its type needs.
    Unusable {
        event_type: String,
        problem: String,
    },
}

/// What a provider reported once it has a round (SPEC section 9): its own id for the agreement
/// and for each participant (by countersign participant id), and any signing room links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivery {
    pub reference: Option<String>,
    pub participants: std::collections::BTreeMap<String, String>,
    pub signing_room_urls: std::collections::BTreeMap<String, String>,
}

/// What a participant's provider event does, once it is known to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParticipantAction {
    Signed,
    Refused,
    DeliveryFailed,
    IdentityCheckFailed,
}

/// Why a provider event changed nothing. Recorded in the history, never published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoreReason {
    Duplicate,
    Unusable {
        event_type: String,
        problem: String,
    },
    AgreementNotPending(Status),
    UnknownParticipant(String),
    ParticipantFinal {
        participant_id: String,
        status: ParticipantStatus,
    },
    ParticipantNotInvited(String),
    /// The same signed document was already recorded (by another event id).
    SignedDocumentAlreadyRecorded,
    /// Verified by another provider than the agreement's provider of record: it proves nothing
    /// about this agreement.
    NotItsProvider {
        provider: String,
        provider_of_record: String,
    },
    /// The sandbox provider's events never move a live (`test_mode: false`) agreement.
    SandboxOnLiveAgreement,
}

impl std::fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IgnoreReason::Duplicate => write!(f, "duplicate provider event id"),
            IgnoreReason::SignedDocumentAlreadyRecorded => {
                write!(f, "this signed document is already recorded")
            }
            IgnoreReason::Unusable {
                event_type,
                problem,
            } => write!(f, "unusable event `{event_type}`: {problem}"),
            IgnoreReason::AgreementNotPending(status) => {
                write!(f, "agreement is {status}, not pending")
            }
            IgnoreReason::UnknownParticipant(id) => write!(f, "no participant `{id}`"),
            IgnoreReason::ParticipantFinal {
                participant_id,
                status,
            } => write!(
                f,
                "participant `{participant_id}` is already {}",
                status.as_str()
            ),
            IgnoreReason::ParticipantNotInvited(id) => {
                write!(f, "participant `{id}` has not been invited yet")
            }
            IgnoreReason::NotItsProvider {
                provider,
                provider_of_record,
            } => write!(
                f,
                "event from provider `{provider}`, but the agreement is carried by `{provider_of_record}`"
            ),
            IgnoreReason::SandboxOnLiveAgreement => write!(
                f,
                "sandbox provider event for an agreement not in test mode"
            ),
        }
    }
}

/// The write a change makes: the agreement after it, and the entries it appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub agreement: Agreement,
    pub entries: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Already in the requested state: nothing to write (safe retries).
    Unchanged,
    /// A change: version + 1, entries published.
    Changed(Transition),
    /// A provider event that changes nothing: one `ProviderEventIgnored` entry, version as it was.
    Ignored {
        transition: Transition,
        reason: IgnoreReason,
    },
}

mod edit;
mod lifecycle;
mod provider_events;

impl Agreement {
    /// A new `draft` at version 1 with its `AgreementCreated` entry.
    pub fn create(
        id: String,
        tenant: String,
        mut input: AgreementInput,
        now: DateTime<Utc>,
        rules: &Rules,
        ids: &mut dyn IdSource,
    ) -> Result<Transition, DomainError> {
        let issues = check_input(&mut input);
        if !issues.is_empty() {
            return Err(DomainError::Invalid(issues));
        }
        let test_mode = input.test_mode.unwrap_or(false);
        let mut agreement = Agreement {
            id,
            tenant,
            test_mode,
            provider: ProviderOfRecord {
                name: rules.providers.for_test_mode(test_mode).to_owned(),
                reference: None,
            },
            status: Status::Draft,
            trust_level: Default::default(),
            cancellation_reason: None,
            contract: None,
            issuer: None,
            participants: Vec::new(),
            observers: Vec::new(),
            signing_order: Default::default(),
            documents: Documents::default(),
            communication: Communication::default(),
            metadata: Default::default(),
            expires_in_days: rules.default_expires_in_days,
            sent_at: None,
            expires_at: None,
            completed_at: None,
            delivered_round: None,
            version: 1,
            history_len: 0,
            published_len: 0,
            created_at: now,
            updated_at: now,
        };
        agreement.set_editable(input, rules, ids);
        let entries = append_entries(
            &mut agreement,
            vec![EntryDraft::new(EntryType::AgreementCreated)],
            now,
            None,
        );
        Ok(Transition { agreement, entries })
    }

    /// The decision to ignore `event`, with its history-only write.
    fn ignore_event(
        &self,
        event: &ProviderEvent,
        reason: IgnoreReason,
        now: DateTime<Utc>,
    ) -> Decision {
        Decision::Ignored {
            transition: self.record_ignored(&event.event_id, &reason, now),
            reason,
        }
    }

    /// A history-only write for a provider event that changes nothing.
    pub fn record_ignored(
        &self,
        event_id: &str,
        reason: &IgnoreReason,
        now: DateTime<Utc>,
    ) -> Transition {
        let mut agreement = self.clone();
        let entries = append_entries(
            &mut agreement,
            vec![EntryDraft::new(EntryType::ProviderEventIgnored).reason(reason.to_string())],
            now,
            Some(event_id),
        );
        Transition { agreement, entries }
    }

    /// Builds a change from `self` to `next`: version + 1, `updated_at`, the drafts `entries`
    /// returns (it may still adjust `next`), and `CustomerJourneyStopped` when a pending
    /// agreement's journey stops.
    fn change_to(
        &self,
        mut next: Agreement,
        now: DateTime<Utc>,
        provider_event_id: Option<&str>,
        entries: impl FnOnce(&mut Agreement) -> Vec<EntryDraft>,
    ) -> Transition {
        let mut drafts = entries(&mut next);
        next.version = self.version + 1;
        next.updated_at = now;
        if next.status == Status::Pending
            && self.journey() != Journey::Stopped
            && next.journey() == Journey::Stopped
        {
            let mut stopped = EntryDraft::new(EntryType::CustomerJourneyStopped);
            if let Some(reason) = next.journey_stopped_reason() {
                stopped = stopped.reason(reason);
            }
            drafts.push(stopped);
        }
        let entries = append_entries(&mut next, drafts, now, provider_event_id);
        Transition {
            agreement: next,
            entries,
        }
    }
}

/// `Unusable` returns before the match; kept out of line so the match stays exhaustive without a
/// panic in library code.
#[cold]
fn unreachable_unusable() -> Decision {
    Decision::Unchanged
}
