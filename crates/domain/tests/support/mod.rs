//! Builders shared by the integration tests of `countersign-domain`. Every agreement here is
//! brought to its status through the crate's public API, never by writing `status` directly.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, TimeZone, Utc};
use countersign_domain::input::{DocumentsInput, FileRefInput, ParticipantInput};
use countersign_domain::{
    Agreement, AgreementInput, BankInformation, CancellationReason, Contract, Decision,
    DomainError, EntryType, FileRef, HistoryEntry, IdSource, IgnoreReason, LifecycleRequest,
    ParticipantRole, ParticipantStatus, ProviderEvent, ProviderEventKind, Rules, SigningOrder,
    Status, Transition,
};

/// A valid German IBAN (ISO 13616 mod-97 holds).
pub const IBAN: &str = "DE89370400440532013000";
/// The same IBAN with its check digits changed: mod-97 fails.
pub const BAD_IBAN: &str = "DE88370400440532013000";
pub const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// Ids `id-1`, `id-2`, ...: deterministic, distinct from the `p1`.. ids `ready_input` gives.
#[derive(Debug, Default)]
pub struct Ids {
    next: u64,
}

impl Ids {
    pub fn new() -> Self {
        Ids::default()
    }

    pub fn issued(&self) -> u64 {
        self.next
    }
}

impl IdSource for Ids {
    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("id-{}", self.next)
    }
}

/// The moment every scenario starts from.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap()
}

pub fn minutes(n: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(n)
}

pub fn rules() -> Rules {
    Rules::default()
}

pub fn participant(id: &str, name: &str, email: &str, group: u32) -> ParticipantInput {
    ParticipantInput {
        id: Some(id.to_owned()),
        name: Some(name.to_owned()),
        email: Some(email.to_owned()),
        role: ParticipantRole::Signer,
        signing_group: group,
    }
}

pub fn main_document() -> FileRefInput {
    FileRefInput {
        id: Some("doc-main".to_owned()),
        filename: "contract.pdf".to_owned(),
        mime_type: "application/pdf".to_owned(),
        size: 48_213,
        sha256: SHA256.to_owned(),
        uri: "s3://countersign-documents/contract.pdf".to_owned(),
    }
}

pub fn signed_file() -> FileRef {
    FileRef {
        id: "doc-signed".to_owned(),
        filename: "contract-signed.pdf".to_owned(),
        mime_type: "application/pdf".to_owned(),
        size: 51_002,
        sha256: "a".repeat(64),
        uri: "s3://countersign-documents/contract-signed.pdf".to_owned(),
    }
}

pub fn bank() -> BankInformation {
    BankInformation {
        account_holder: Some("Ada Lovelace".to_owned()),
        iban: Some(IBAN.to_owned()),
        bic: None,
    }
}

/// Three signers `p1`, `p2`, `p3` (group 1, no signing order), bank information, a main
/// document: passes validation before `pending`.
pub fn ready_input() -> AgreementInput {
    AgreementInput {
        contract: Some(Contract {
            contract_id: Some("C-1001".to_owned()),
            proposal_id: Some("P-2002".to_owned()),
            bank_information: Some(bank()),
        }),
        participants: vec![
            participant("p1", "Ada Lovelace", "ada@example.com", 1),
            participant("p2", "Alan Turing", "alan@example.com", 1),
            participant("p3", "Grace Hopper", "grace@example.com", 1),
        ],
        documents: Some(DocumentsInput {
            main: Some(main_document()),
            attachments: vec![],
        }),
        ..AgreementInput::default()
    }
}

pub fn ready_input_with_order(order: SigningOrder, groups: &[u32]) -> AgreementInput {
    let mut input = ready_input();
    input.signing_order = Some(order);
    for (participant, group) in input.participants.iter_mut().zip(groups) {
        participant.signing_group = *group;
    }
    input
}

pub const ALL_PARTICIPANTS: [&str; 3] = ["p1", "p2", "p3"];

// ---------------------------------------------------------------- decisions

/// The transition of a change; panics on anything else.
pub fn changed(decision: Decision) -> Transition {
    match decision {
        Decision::Changed(transition) => transition,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// The transition and reason of an ignored provider event; panics on anything else.
pub fn ignored(decision: Decision) -> (Transition, IgnoreReason) {
    match decision {
        Decision::Ignored { transition, reason } => (transition, reason),
        other => panic!("expected an ignored event, got {other:?}"),
    }
}

/// The agreement a decision leaves: the same one when unchanged.
pub fn apply(current: &Agreement, decision: Decision) -> Agreement {
    match decision {
        Decision::Unchanged => current.clone(),
        Decision::Changed(transition) | Decision::Ignored { transition, .. } => {
            transition.agreement
        }
    }
}

/// Like [`apply`] for a fallible decision: an error leaves the agreement as it was.
pub fn apply_result(current: &Agreement, decision: Result<Decision, DomainError>) -> Agreement {
    match decision {
        Ok(decision) => apply(current, decision),
        Err(_) => current.clone(),
    }
}

pub fn entry_types(entries: &[HistoryEntry]) -> Vec<EntryType> {
    entries.iter().map(|entry| entry.entry_type).collect()
}

pub fn participant_statuses(agreement: &Agreement) -> Vec<ParticipantStatus> {
    agreement.participants.iter().map(|p| p.status).collect()
}

pub fn status_of(agreement: &Agreement, participant_id: &str) -> ParticipantStatus {
    agreement
        .participant(participant_id)
        .unwrap_or_else(|| panic!("no participant {participant_id}"))
        .status
}

// ---------------------------------------------------------------- lifecycle requests

pub fn cancel_reasons() -> Vec<CancellationReason> {
    vec![
        CancellationReason::parse("invalid_document", None).unwrap(),
        CancellationReason::parse("invalid_participant", None).unwrap(),
        CancellationReason::parse("invalid_email", None).unwrap(),
        CancellationReason::parse("custom", Some("the customer withdrew the proposal")).unwrap(),
    ]
}

pub fn cancel() -> LifecycleRequest {
    LifecycleRequest::Cancelled(CancellationReason::InvalidDocument)
}

// ---------------------------------------------------------------- provider events

static EVENT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A provider event with a fresh id, occurring at `minutes(30)`.
pub fn event(kind: ProviderEventKind) -> ProviderEvent {
    let n = EVENT_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    ProviderEvent {
        // The agreements of these tests are live ones, carried by the default live provider.
        provider: rules().providers.live,
        event_id: format!("evt-{n}"),
        occurred_at: minutes(30),
        kind,
    }
}

pub fn signed(participant_id: &str) -> ProviderEvent {
    event(ProviderEventKind::ParticipantSigned {
        participant_id: participant_id.to_owned(),
    })
}

pub fn refused(participant_id: &str) -> ProviderEvent {
    event(ProviderEventKind::ParticipantRefused {
        participant_id: participant_id.to_owned(),
    })
}

pub fn delivery_failed(participant_id: &str) -> ProviderEvent {
    event(ProviderEventKind::ParticipantDeliveryFailed {
        participant_id: participant_id.to_owned(),
    })
}

pub fn identity_check_failed(participant_id: &str) -> ProviderEvent {
    event(ProviderEventKind::ParticipantIdentityCheckFailed {
        participant_id: participant_id.to_owned(),
    })
}

pub fn signed_document() -> ProviderEvent {
    event(ProviderEventKind::SignedDocument {
        document: signed_file(),
    })
}

pub fn agreement_failed() -> ProviderEvent {
    event(ProviderEventKind::AgreementFailed)
}

pub fn unusable() -> ProviderEvent {
    event(ProviderEventKind::Unusable {
        event_type: "envelope.voided_by_robot".to_owned(),
        problem: "unknown event type".to_owned(),
    })
}

/// Applies a provider event with the default rules at `now`.
pub fn on_event(agreement: &Agreement, event: &ProviderEvent, now: DateTime<Utc>) -> Decision {
    agreement.decide_provider_event(event, &rules(), now)
}

// ---------------------------------------------------------------- agreements in each status

pub fn create(input: AgreementInput) -> Agreement {
    create_transition(input).agreement
}

pub fn create_transition(input: AgreementInput) -> Transition {
    Agreement::create(
        "agr1".to_owned(),
        "tenant-a".to_owned(),
        input,
        t0(),
        &rules(),
        &mut Ids::new(),
    )
    .expect("the input is valid")
}

pub fn draft() -> Agreement {
    create(ready_input())
}

pub fn lifecycle(
    agreement: &Agreement,
    request: LifecycleRequest,
    now: DateTime<Utc>,
) -> Agreement {
    changed(
        agreement
            .decide_lifecycle(request, now)
            .expect("the lifecycle request is allowed"),
    )
    .agreement
}

pub fn send(agreement: &Agreement) -> Agreement {
    lifecycle(agreement, LifecycleRequest::Pending, minutes(10))
}

pub fn pending_from(input: AgreementInput) -> Agreement {
    send(&create(input))
}

pub fn pending() -> Agreement {
    send(&draft())
}

pub fn open() -> Agreement {
    lifecycle(&pending(), LifecycleRequest::Open, minutes(20))
}

/// Applies an event that must change the agreement.
/// The event comes from the agreement's own provider, whichever it is.
pub fn apply_event(agreement: &Agreement, event: &ProviderEvent) -> Agreement {
    let own = ProviderEvent {
        provider: agreement.provider.name.clone(),
        ..event.clone()
    };
    changed(on_event(agreement, &own, minutes(40))).agreement
}

/// An agreement in `status`, reached through the real API from `input` (which must be ready and
/// name its participants `p1`, `p2`, `p3`).
pub fn reach(input: AgreementInput, status: Status) -> Agreement {
    let draft = create(input);
    let agreement = match status {
        Status::Draft => draft,
        Status::Pending => send(&draft),
        Status::Open => lifecycle(&send(&draft), LifecycleRequest::Open, minutes(20)),
        Status::Fulfilled => ALL_PARTICIPANTS.iter().fold(send(&draft), |agreement, id| {
            apply_event(&agreement, &signed(id))
        }),
        Status::Cancelled => lifecycle(&send(&draft), cancel(), minutes(20)),
        Status::Expired => {
            let pending = send(&draft);
            let after = pending.expires_at.expect("pending has expires_at") + Duration::seconds(1);
            changed(pending.decide_expiry(after)).agreement
        }
        Status::Refused => apply_event(&send(&draft), &refused("p2")),
        Status::Failed => apply_event(&send(&draft), &agreement_failed()),
    };
    assert_eq!(agreement.status, status, "helper reached the wrong status");
    agreement
}

/// An agreement in `status`, reached through the real API from [`ready_input`].
pub fn in_status(status: Status) -> Agreement {
    reach(ready_input(), status)
}

pub fn fulfilled() -> Agreement {
    in_status(Status::Fulfilled)
}

pub fn refused_agreement() -> Agreement {
    in_status(Status::Refused)
}

pub fn cancelled() -> Agreement {
    in_status(Status::Cancelled)
}

pub fn expired() -> Agreement {
    in_status(Status::Expired)
}

pub fn failed() -> Agreement {
    in_status(Status::Failed)
}
