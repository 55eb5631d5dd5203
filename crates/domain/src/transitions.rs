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

    /// The editable fields as a client would send them: the document a merge patch applies to.
    pub fn editable_input(&self) -> AgreementInput {
        AgreementInput {
            test_mode: None,
            trust_level: Some(self.trust_level),
            contract: self.contract.clone(),
            issuer: self.issuer.clone(),
            participants: self
                .participants
                .iter()
                .map(|participant| ParticipantInput {
                    id: Some(participant.id.clone()),
                    name: participant.name.clone(),
                    email: participant.email.clone(),
                    role: participant.role,
                    signing_group: participant.signing_group,
                })
                .collect(),
            observers: self
                .observers
                .iter()
                .map(|observer| ObserverInput {
                    id: Some(observer.id.clone()),
                    name: observer.name.clone(),
                    email: observer.email.clone(),
                    scope: observer.scope,
                })
                .collect(),
            signing_order: Some(self.signing_order),
            documents: Some(DocumentsInput {
                main: self.documents.main.as_ref().map(Into::into),
                attachments: self.documents.attachments.iter().map(Into::into).collect(),
            }),
            communication: Some(self.communication.clone()),
            metadata: Some(self.metadata.clone()),
            expires_in_days: Some(self.expires_in_days),
        }
    }

    /// An edit (PATCH) of a `draft` or `open` agreement. Participants are rebuilt from the input:
    /// in these statuses none has signed or failed anything yet.
    pub fn decide_edit(
        &self,
        mut input: AgreementInput,
        now: DateTime<Utc>,
        rules: &Rules,
        ids: &mut dyn IdSource,
    ) -> Result<Decision, DomainError> {
        if !self.status.is_editable() {
            return Err(DomainError::NotEditable {
                status: self.status,
            });
        }
        let mut issues = check_input(&mut input);
        if input
            .test_mode
            .is_some_and(|test_mode| test_mode != self.test_mode)
        {
            issues.push(crate::error::Issue::new(
                crate::error::IssueCode::ValidationFailed,
                "test_mode",
                "fixed when the agreement is created",
            ));
        }
        if !issues.is_empty() {
            return Err(DomainError::Invalid(issues));
        }
        let mut edited = self.clone();
        edited.set_editable(input, rules, ids);
        if edited == *self {
            return Ok(Decision::Unchanged);
        }
        Ok(Decision::Changed(self.change_to(edited, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementUpdated)]
        })))
    }

    fn set_editable(&mut self, input: AgreementInput, rules: &Rules, ids: &mut dyn IdSource) {
        self.trust_level = input.trust_level.unwrap_or_default();
        self.contract = input.contract;
        self.issuer = input.issuer;
        self.participants = input
            .participants
            .into_iter()
            .map(|participant| Participant {
                id: participant.id.unwrap_or_else(|| ids.new_id()),
                name: participant.name,
                email: participant.email,
                role: participant.role,
                signing_group: participant.signing_group,
                status: ParticipantStatus::SignaturePending,
                identity_check_failures: 0,
                signed_at: None,
                invited_at: None,
                signing_room_url: None,
                provider_reference: None,
            })
            .collect();
        self.observers = input
            .observers
            .into_iter()
            .map(|observer| Observer {
                id: observer.id.unwrap_or_else(|| ids.new_id()),
                name: observer.name,
                email: observer.email,
                scope: observer.scope,
            })
            .collect();
        self.signing_order = input.signing_order.unwrap_or_default();
        let documents = input.documents.unwrap_or_default();
        self.documents.main = documents.main.map(|file| file.into_file_ref(ids));
        self.documents.attachments = documents
            .attachments
            .into_iter()
            .map(|file| file.into_file_ref(ids))
            .collect();
        self.communication = input.communication.unwrap_or_default();
        self.metadata = input.metadata.unwrap_or_default();
        self.expires_in_days = input
            .expires_in_days
            .unwrap_or(rules.default_expires_in_days);
    }

    /// SPEC section 2, lifecycle table.
    pub fn decide_lifecycle(
        &self,
        request: LifecycleRequest,
        now: DateTime<Utc>,
    ) -> Result<Decision, DomainError> {
        use Status::*;
        match (self.status, request) {
            (Draft | Open, LifecycleRequest::Pending) => self.send_for_signature(now),
            (Pending, LifecycleRequest::Open) => Ok(Decision::Changed(self.reopen(now))),
            (Draft | Open | Pending, LifecycleRequest::Cancelled(reason)) => {
                Ok(Decision::Changed(self.cancel(reason, now)))
            }
            (status, request) if !status.is_terminal() && request.target() == status => {
                Ok(Decision::Unchanged)
            }
            (status, request) => Err(DomainError::InvalidTransition {
                from: status,
                requested: request.target().to_string(),
            }),
        }
    }

    fn send_for_signature(&self, now: DateTime<Utc>) -> Result<Decision, DomainError> {
        let issues = readiness_issues(self);
        if !issues.is_empty() {
            return Err(DomainError::NotReady(issues));
        }
        let mut sent = self.clone();
        sent.status = Status::Pending;
        sent.reset_signing();
        sent.sent_at = Some(now);
        sent.expires_at = Some(now + Duration::days(i64::from(sent.expires_in_days)));
        let first_step = sent.first_step();
        Ok(Decision::Changed(self.change_to(
            sent,
            now,
            None,
            |agreement| {
                let mut drafts = vec![EntryDraft::new(EntryType::AgreementSentForSignature)];
                if let Some(step) = first_step {
                    drafts.push(agreement.invite_step(step, now));
                }
                drafts
            },
        )))
    }

    fn reopen(&self, now: DateTime<Utc>) -> Transition {
        let mut reopened = self.clone();
        reopened.status = Status::Open;
        reopened.reset_signing();
        reopened.sent_at = None;
        reopened.expires_at = None;
        // A document signed in the abandoned round is not the outcome of the next one.
        reopened.documents.signed_document = None;
        self.change_to(reopened, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementReopened)]
        })
    }

    fn cancel(&self, reason: CancellationReason, now: DateTime<Utc>) -> Transition {
        let mut cancelled = self.clone();
        cancelled.status = Status::Cancelled;
        let text = reason.display_text();
        cancelled.cancellation_reason = Some(reason);
        self.change_to(cancelled, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementCancelled).reason(text)]
        })
    }

    /// Every participant back to `SIGNATURE_PENDING`, failures and invitations cleared: the
    /// signing restarts from nothing (`pending` and `open` requests).
    fn reset_signing(&mut self) {
        for participant in &mut self.participants {
            participant.status = ParticipantStatus::SignaturePending;
            participant.identity_check_failures = 0;
            participant.signed_at = None;
            participant.invited_at = None;
            participant.signing_room_url = None;
            participant.provider_reference = None;
        }
    }

    /// The step a participant signs in: its signing group (grouped order), its place in the list
    /// (ungrouped order), or 1 for everybody (no order).
    fn step_of(&self, index: usize) -> u32 {
        match (self.signing_order.enabled, self.signing_order.grouped) {
            (false, _) => 1,
            (true, true) => self.participants[index].signing_group,
            (true, false) => u32::try_from(index + 1).unwrap_or(u32::MAX),
        }
    }

    /// The participants a `SigningGroupInvited` entry of `step` invites: all of them without
    /// signing order, a signing group with grouped order, one participant (list order) otherwise.
    pub fn participants_of_step(&self, step: u32) -> impl Iterator<Item = &Participant> {
        (0..self.participants.len())
            .filter(move |&index| self.step_of(index) == step)
            .map(|index| &self.participants[index])
    }

    fn first_step(&self) -> Option<u32> {
        (0..self.participants.len()).map(|i| self.step_of(i)).min()
    }

    fn next_step_after(&self, step: u32) -> Option<u32> {
        (0..self.participants.len())
            .map(|i| self.step_of(i))
            .filter(|s| *s > step)
            .min()
    }

    /// Releases the invitations of one step; its entry names the group.
    fn invite_step(&mut self, step: u32, now: DateTime<Utc>) -> EntryDraft {
        for index in 0..self.participants.len() {
            if self.step_of(index) == step {
                self.participants[index].invited_at = Some(now);
            }
        }
        EntryDraft::new(EntryType::SigningGroupInvited).group(step)
    }

    /// SPEC section 2, provider event table. Never fails: what cannot apply is ignored.
    pub fn decide_provider_event(
        &self,
        event: &ProviderEvent,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Decision {
        let ignore = |reason: IgnoreReason| self.ignore_event(event, reason, now);
        // Who signed the webhook comes first: another provider's event proves nothing here.
        if event.provider != self.provider.name {
            return ignore(IgnoreReason::NotItsProvider {
                provider: event.provider.clone(),
                provider_of_record: self.provider.name.clone(),
            });
        }
        if event.provider == SANDBOX_PROVIDER && !self.test_mode {
            return ignore(IgnoreReason::SandboxOnLiveAgreement);
        }
        if let ProviderEventKind::Unusable {
            event_type,
            problem,
        } = &event.kind
        {
            return ignore(IgnoreReason::Unusable {
                event_type: event_type.clone(),
                problem: problem.clone(),
            });
        }
        let applies = match &event.kind {
            ProviderEventKind::SignedDocument { .. } => {
                matches!(self.status, Status::Pending | Status::Fulfilled)
            }
            ProviderEventKind::ParticipantSigned { .. }
            | ProviderEventKind::ParticipantRefused { .. }
            | ProviderEventKind::ParticipantDeliveryFailed { .. }
            | ProviderEventKind::ParticipantIdentityCheckFailed { .. }
            | ProviderEventKind::AgreementFailed
            | ProviderEventKind::AgreementCancelled
            | ProviderEventKind::AgreementExpired
            | ProviderEventKind::Unusable { .. } => self.status == Status::Pending,
        };
        if !applies {
            return ignore(IgnoreReason::AgreementNotPending(self.status));
        }
        let event_id = Some(event.event_id.as_str());

        match &event.kind {
            ProviderEventKind::SignedDocument { document } => {
                let mut recorded = self.clone();
                recorded.documents.signed_document = Some(document.clone());
                if recorded == *self {
                    return ignore(IgnoreReason::SignedDocumentAlreadyRecorded);
                }
                Decision::Changed(self.change_to(recorded, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::SignedDocumentStored)]
                }))
            }
            ProviderEventKind::AgreementFailed => {
                let mut failed = self.clone();
                failed.status = Status::Failed;
                Decision::Changed(self.change_to(failed, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::AgreementFailed)]
                }))
            }
            ProviderEventKind::AgreementCancelled => {
                let mut cancelled = self.clone();
                cancelled.status = Status::Cancelled;
                cancelled.cancellation_reason = Some(CancellationReason::ProviderCancelled);
                Decision::Changed(self.change_to(cancelled, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::AgreementCancelled)
                        .reason(CancellationReason::ProviderCancelled.display_text())]
                }))
            }
            ProviderEventKind::AgreementExpired => {
                let mut expired = self.clone();
                expired.status = Status::Expired;
                Decision::Changed(self.change_to(expired, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::AgreementExpired)
                        .reason("expired at the provider")]
                }))
            }
            ProviderEventKind::ParticipantSigned { participant_id } => {
                self.participant_event(participant_id, ParticipantAction::Signed, event, rules, now)
            }
            ProviderEventKind::ParticipantRefused { participant_id } => self.participant_event(
                participant_id,
                ParticipantAction::Refused,
                event,
                rules,
                now,
            ),
            ProviderEventKind::ParticipantDeliveryFailed { participant_id } => self
                .participant_event(
                    participant_id,
                    ParticipantAction::DeliveryFailed,
                    event,
                    rules,
                    now,
                ),
            ProviderEventKind::ParticipantIdentityCheckFailed { participant_id } => self
                .participant_event(
                    participant_id,
                    ParticipantAction::IdentityCheckFailed,
                    event,
                    rules,
                    now,
                ),
            ProviderEventKind::Unusable { .. } => unreachable_unusable(),
        }
    }

    /// A participant's event: ignored for an unknown, final or not yet invited participant,
    /// else applied as `action` says.
    fn participant_event(
        &self,
        participant_id: &str,
        action: ParticipantAction,
        event: &ProviderEvent,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Decision {
        let ignore = |reason: IgnoreReason| self.ignore_event(event, reason, now);
        let Some(index) = self
            .participants
            .iter()
            .position(|participant| participant.id == participant_id)
        else {
            return ignore(IgnoreReason::UnknownParticipant(participant_id.to_owned()));
        };
        let participant = &self.participants[index];
        if participant.status.is_final() {
            return ignore(IgnoreReason::ParticipantFinal {
                participant_id: participant_id.to_owned(),
                status: participant.status,
            });
        }
        if participant.invited_at.is_none() {
            return ignore(IgnoreReason::ParticipantNotInvited(
                participant_id.to_owned(),
            ));
        }
        let event_id = Some(event.event_id.as_str());
        Decision::Changed(match action {
            ParticipantAction::Signed => {
                self.participant_signed(index, event.occurred_at, now, event_id)
            }
            ParticipantAction::Refused => self.participant_refused(index, now, event_id),
            ParticipantAction::DeliveryFailed => {
                self.participant_delivery_failed(index, now, event_id)
            }
            ParticipantAction::IdentityCheckFailed => {
                self.identity_check_failed(index, rules, now, event_id)
            }
        })
    }

    fn participant_signed(
        &self,
        index: usize,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        next.participants[index].status = ParticipantStatus::SignatureComplete;
        next.participants[index].signed_at = Some(signed_at);
        let participant_id = next.participants[index].id.clone();
        let all_signed = next
            .participants
            .iter()
            .all(|participant| participant.status == ParticipantStatus::SignatureComplete);
        let step = next.step_of(index);
        let step_done = (0..next.participants.len())
            .filter(|&i| next.step_of(i) == step)
            .all(|i| next.participants[i].status == ParticipantStatus::SignatureComplete);
        if all_signed {
            next.status = Status::Fulfilled;
            next.completed_at = Some(now);
        }
        self.change_to(next, now, event_id, |agreement| {
            let mut drafts =
                vec![EntryDraft::new(EntryType::ParticipantSigned).participant(&participant_id)];
            if all_signed {
                drafts.push(EntryDraft::new(EntryType::AgreementFulfilled));
            } else if step_done {
                if let Some(next_step) = agreement.next_step_after(step) {
                    drafts.push(agreement.invite_step(next_step, now));
                }
            }
            drafts
        })
    }

    fn participant_refused(
        &self,
        index: usize,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        next.participants[index].status = ParticipantStatus::SignatureRefused;
        next.status = Status::Refused;
        let participant_id = next.participants[index].id.clone();
        self.change_to(next, now, event_id, |_| {
            vec![
                EntryDraft::new(EntryType::ParticipantRefused).participant(&participant_id),
                EntryDraft::new(EntryType::AgreementRefused).participant(&participant_id),
            ]
        })
    }

    fn participant_delivery_failed(
        &self,
        index: usize,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        next.participants[index].status = ParticipantStatus::SignatoryDeliveryFailed;
        let participant_id = next.participants[index].id.clone();
        self.change_to(next, now, event_id, |_| {
            vec![EntryDraft::new(EntryType::ParticipantDeliveryFailed).participant(&participant_id)]
        })
    }

    fn identity_check_failed(
        &self,
        index: usize,
        rules: &Rules,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        let participant = &mut next.participants[index];
        participant.identity_check_failures += 1;
        let attempts = participant.identity_check_failures;
        let limit = rules.identity_check_attempts.max(1);
        if attempts >= limit {
            participant.status = ParticipantStatus::IdentityCheckFailed;
        }
        let participant_id = participant.id.clone();
        self.change_to(next, now, event_id, |_| {
            vec![EntryDraft::new(EntryType::ParticipantIdentityCheckFailed)
                .participant(&participant_id)
                .reason(format!("failed identity check {attempts} of {limit}"))]
        })
    }

    /// The provider has the round `round` (the `sent_at` of the `pending` that started it) and
    /// sent its invitations (SPEC section 9): its reference and each participant's are recorded,
    /// with `AgreementDeliveredToProvider`. Unchanged when that round is over (reopened,
    /// cancelled, finished) or the same delivery is already recorded, so a repeat is harmless.
    pub fn decide_delivered(
        &self,
        round: DateTime<Utc>,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Decision {
        if self.status != Status::Pending || self.sent_at != Some(round) {
            return Decision::Unchanged;
        }
        let mut delivered = self.clone();
        delivered.provider.reference = delivery.reference.clone();
        for participant in &mut delivered.participants {
            if let Some(reference) = delivery.participants.get(&participant.id) {
                participant.provider_reference = Some(reference.clone());
            }
            if let Some(url) = delivery.signing_room_urls.get(&participant.id) {
                participant.signing_room_url = Some(url.clone());
            }
        }
        if delivered == *self && self.delivered_round == Some(round) {
            return Decision::Unchanged;
        }
        delivered.delivered_round = Some(round);
        let provider = self.provider.name.clone();
        Decision::Changed(self.change_to(delivered, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementDeliveredToProvider)
                .reason(format!("delivered to {provider}"))]
        }))
    }

    /// The round `round` could not be delivered and retrying cannot fix it (a document that
    /// cannot be read or does not match its `size`/`sha256`, a provider's refusal): `failed`,
    /// with why in the history entry. Unchanged when that round is already over.
    pub fn decide_delivery_failed(
        &self,
        round: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Decision {
        if self.status != Status::Pending || self.sent_at != Some(round) {
            return Decision::Unchanged;
        }
        let mut failed = self.clone();
        failed.status = Status::Failed;
        Decision::Changed(self.change_to(failed, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementFailed).reason(reason)]
        }))
    }

    /// True while the current round is pending and its delivery is not recorded yet: a
    /// provider event naming a participant reference may be early rather than stale.
    pub fn awaits_delivery(&self) -> bool {
        self.status == Status::Pending
            && self.sent_at.is_some()
            && self.delivered_round != self.sent_at
    }

    /// Expiry (SPEC section 2): a pending agreement whose `expires_at` has passed. Anything else is
    /// unchanged, so a sweep that races another change is harmless.
    pub fn decide_expiry(&self, now: DateTime<Utc>) -> Decision {
        let due = self.expires_at.is_some_and(|expires_at| expires_at <= now);
        if self.status != Status::Pending || !due {
            return Decision::Unchanged;
        }
        let mut expired = self.clone();
        expired.status = Status::Expired;
        Decision::Changed(self.change_to(expired, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementExpired)]
        }))
    }

    /// Sandbox `expire` (SPEC section 6): `expires_at` moves to now so the next sweep expires it.
    pub fn decide_sandbox_expire(&self, now: DateTime<Utc>) -> Result<Decision, DomainError> {
        if !self.test_mode {
            return Err(DomainError::NotInTestMode);
        }
        if self.status != Status::Pending {
            return Err(DomainError::InvalidTransition {
                from: self.status,
                requested: "expired".to_owned(),
            });
        }
        let mut moved = self.clone();
        moved.expires_at = Some(now);
        Ok(Decision::Changed(self.change_to(moved, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementUpdated)
                .reason("sandbox: expires_at moved to now")]
        })))
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
