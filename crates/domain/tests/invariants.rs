//! Property tests: random command sequences (lifecycle requests, provider events of every kind
//! including unknown participants, replays and unusable events, expiry sweeps, sandbox expiry,
//! edits) applied to an agreement, with SPEC sections 1 and 2's invariants checked after every
//! step.

mod support;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use countersign_domain::{
    Agreement, AgreementInput, Decision, DomainError, EntryType, FileRef, IgnoreReason, Journey,
    LifecycleRequest, ParticipantStatus, ProviderEvent, ProviderEventKind, SignatureStatus,
    SigningOrder, Status, Transition,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use support::*;

#[derive(Debug, Clone)]
enum Cmd {
    Pending,
    Open,
    Cancel(usize),
    /// kind 0..7 (signed, refused, delivery failed, identity check failed, signed document,
    /// agreement failed, unusable); `who` beyond the participants is an unknown id.
    Event {
        kind: u8,
        who: usize,
    },
    /// The same provider event (same id) delivered again.
    Replay(usize),
    /// The sweep, `days` later.
    Expiry {
        days: i64,
    },
    SandboxExpire,
    Edit(u8),
}

#[derive(Debug, Clone)]
struct Setup {
    test_mode: bool,
    participants: usize,
    order: u8,
    groups: [u32; 4],
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        any::<bool>(),
        3usize..=4,
        0u8..3,
        prop_oneof![
            Just([1, 1, 2, 2]),
            Just([1, 2, 3, 3]),
            Just([1, 1, 1, 2]),
            Just([1, 2, 1, 2]),
        ],
    )
        .prop_map(|(test_mode, participants, order, groups)| Setup {
            test_mode,
            participants,
            order,
            groups,
        })
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        4 => Just(Cmd::Pending),
        1 => Just(Cmd::Open),
        1 => (0usize..4).prop_map(Cmd::Cancel),
        6 => (0usize..5).prop_map(|who| Cmd::Event { kind: 0, who }),
        5 => (1u8..7, 0usize..5).prop_map(|(kind, who)| Cmd::Event { kind, who }),
        1 => any::<usize>().prop_map(Cmd::Replay),
        1 => (0i64..200).prop_map(|days| Cmd::Expiry { days }),
        1 => Just(Cmd::SandboxExpire),
        2 => (0u8..9).prop_map(Cmd::Edit),
    ]
}

/// (setup, commands, minutes between commands)
fn scenario() -> impl Strategy<Value = (Setup, Vec<(Cmd, i64)>)> {
    (setup(), prop::collection::vec((cmd(), 0i64..600), 1..40))
}

fn order(kind: u8) -> SigningOrder {
    match kind {
        0 => SigningOrder::default(),
        1 => SigningOrder {
            enabled: true,
            grouped: true,
        },
        _ => SigningOrder {
            enabled: true,
            grouped: false,
        },
    }
}

fn initial_input(setup: &Setup) -> AgreementInput {
    let mut input = ready_input();
    input.test_mode = Some(setup.test_mode);
    input.participants.push(participant(
        "p4",
        "Katherine Johnson",
        "katherine@example.com",
        1,
    ));
    input.participants.truncate(setup.participants);
    input.signing_order = Some(order(setup.order));
    for (participant, group) in input.participants.iter_mut().zip(setup.groups) {
        participant.signing_group = group;
    }
    input
}

fn other_signed_file() -> FileRef {
    FileRef {
        id: "doc-signed-2".to_owned(),
        sha256: "b".repeat(64),
        ..signed_file()
    }
}

/// Edits keep the participants' ids, so provider events keep finding them.
fn edit_input(agreement: &Agreement, variant: u8, step: usize) -> AgreementInput {
    let mut input = agreement.editable_input();
    match variant {
        0 => {}
        1 => {
            if let Some(first) = input.participants.first_mut() {
                first.name = Some(format!("Renamed {step}"));
            }
        }
        2 => input.expires_in_days = Some([1, 7, 30, 120, 365][step % 5]),
        3 => input.signing_order = Some(order((step % 3) as u8)),
        4 => {
            input.contract = Some(countersign_domain::Contract {
                bank_information: Some(countersign_domain::BankInformation {
                    iban: Some(BAD_IBAN.to_owned()),
                    ..bank()
                }),
                ..Default::default()
            })
        }
        5 => input.test_mode = Some(!agreement.test_mode),
        6 => input.contract = None,
        7 => {
            input.contract = ready_input().contract;
            input.documents = ready_input().documents;
        }
        _ => input.documents = None,
    }
    input
}

enum Outcome {
    Unchanged,
    Changed(Transition),
    Ignored(Transition, IgnoreReason),
    Refused(DomainError),
}

impl From<Decision> for Outcome {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Unchanged => Outcome::Unchanged,
            Decision::Changed(transition) => Outcome::Changed(transition),
            Decision::Ignored { transition, reason } => Outcome::Ignored(transition, reason),
        }
    }
}

impl From<Result<Decision, DomainError>> for Outcome {
    fn from(result: Result<Decision, DomainError>) -> Self {
        match result {
            Ok(decision) => decision.into(),
            Err(error) => Outcome::Refused(error),
        }
    }
}

/// What the runner applied at one step, for the invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Lifecycle(Status),
    ProviderEvent { signed_document: bool },
    Expiry,
    SandboxExpire,
    Edit,
    Nothing,
}

struct Runner {
    agreement: Agreement,
    now: DateTime<Utc>,
    sent: Vec<ProviderEvent>,
    event_counter: u64,
}

impl Runner {
    fn new(setup: &Setup) -> Self {
        Runner {
            agreement: create(initial_input(setup)),
            now: minutes(1),
            sent: Vec::new(),
            event_counter: 0,
        }
    }

    fn event(&mut self, kind: u8, who: usize) -> ProviderEvent {
        let count = self.agreement.participants.len();
        let participant_id = if who < count {
            self.agreement.participants[who].id.clone()
        } else {
            "ghost".to_owned()
        };
        self.event_counter += 1;
        let kind = match kind {
            0 => ProviderEventKind::ParticipantSigned { participant_id },
            1 => ProviderEventKind::ParticipantRefused { participant_id },
            2 => ProviderEventKind::ParticipantDeliveryFailed { participant_id },
            3 => ProviderEventKind::ParticipantIdentityCheckFailed { participant_id },
            4 => ProviderEventKind::SignedDocument {
                document: [signed_file(), other_signed_file()][who % 2].clone(),
            },
            5 => ProviderEventKind::AgreementFailed,
            _ => ProviderEventKind::Unusable {
                event_type: "envelope.mystery".to_owned(),
                problem: "unknown event type".to_owned(),
            },
        };
        ProviderEvent {
            provider: self.agreement.provider.name.clone(),
            event_id: format!("evt-{}", self.event_counter),
            occurred_at: self.now,
            kind,
        }
    }

    /// Runs one command; returns what was applied and its outcome. `self.agreement` is left
    /// untouched: the caller checks and then advances.
    fn run(&mut self, cmd: &Cmd, step: usize) -> (Applied, Outcome) {
        let a = self.agreement.clone();
        let now = self.now;
        let rules = rules();
        match cmd {
            Cmd::Pending => (
                Applied::Lifecycle(Status::Pending),
                a.decide_lifecycle(LifecycleRequest::Pending, now).into(),
            ),
            Cmd::Open => (
                Applied::Lifecycle(Status::Open),
                a.decide_lifecycle(LifecycleRequest::Open, now).into(),
            ),
            Cmd::Cancel(i) => (
                Applied::Lifecycle(Status::Cancelled),
                a.decide_lifecycle(
                    LifecycleRequest::Cancelled(cancel_reasons()[*i].clone()),
                    now,
                )
                .into(),
            ),
            Cmd::Event { kind, who } => {
                let event = self.event(*kind, *who);
                self.sent.push(event.clone());
                (
                    Applied::ProviderEvent {
                        signed_document: *kind == 4,
                    },
                    a.decide_provider_event(&event, &rules, now).into(),
                )
            }
            Cmd::Replay(index) => {
                if self.sent.is_empty() {
                    return (Applied::Nothing, Outcome::Unchanged);
                }
                let event = self.sent[index % self.sent.len()].clone();
                (
                    Applied::ProviderEvent {
                        signed_document: matches!(
                            event.kind,
                            ProviderEventKind::SignedDocument { .. }
                        ),
                    },
                    a.decide_provider_event(&event, &rules, now).into(),
                )
            }
            Cmd::Expiry { days } => {
                self.now += Duration::days(*days);
                (Applied::Expiry, a.decide_expiry(self.now).into())
            }
            Cmd::SandboxExpire => (Applied::SandboxExpire, a.decide_sandbox_expire(now).into()),
            Cmd::Edit(variant) => (
                Applied::Edit,
                a.decide_edit(edit_input(&a, *variant, step), now, &rules, &mut Ids::new())
                    .into(),
            ),
        }
    }
}

/// SPEC section 1's status table: signature_status of each status.
fn table_signature_status(status: Status) -> Option<SignatureStatus> {
    match status {
        Status::Draft | Status::Open => None,
        Status::Pending => Some(SignatureStatus::SignatureOngoing),
        Status::Fulfilled => Some(SignatureStatus::SignatureComplete),
        Status::Expired => Some(SignatureStatus::SignatureExpired),
        Status::Cancelled => Some(SignatureStatus::SignatureCancelled),
        Status::Refused => Some(SignatureStatus::SignatureRefused),
        Status::Failed => Some(SignatureStatus::OtherFailure),
    }
}

/// SPEC section 1's status table: journey of each status.
fn table_journey(agreement: &Agreement) -> Journey {
    match agreement.status {
        Status::Draft | Status::Open => Journey::Waiting,
        Status::Pending => {
            let stopped = agreement.participants.iter().any(|p| {
                matches!(
                    p.status,
                    ParticipantStatus::SignatoryDeliveryFailed
                        | ParticipantStatus::IdentityCheckFailed
                )
            });
            if stopped {
                Journey::Stopped
            } else {
                Journey::Waiting
            }
        }
        Status::Fulfilled => Journey::Proceed,
        _ => Journey::Stopped,
    }
}

/// The status changes SPEC section 2 allows (lifecycle table, provider table, expiry).
fn allowed_move(from: Status, to: Status) -> bool {
    use Status::*;
    from == to
        || matches!(
            (from, to),
            (Draft | Open, Pending)
                | (Pending, Open)
                | (Draft | Open | Pending, Cancelled)
                | (Pending, Fulfilled | Refused | Failed | Expired)
        )
}

fn check_step(
    prev: &Agreement,
    applied: Applied,
    outcome: &Outcome,
    next: &Agreement,
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    match outcome {
        Outcome::Unchanged => {
            prop_assert_eq!(next, prev);
            if let Applied::Lifecycle(target) = applied {
                prop_assert_eq!(target, prev.status, "Unchanged only for the state it is in");
                prop_assert!(!prev.status.is_terminal());
            }
        }
        Outcome::Refused(error) => {
            prop_assert_eq!(next, prev);
            match (applied, error) {
                (Applied::Lifecycle(target), DomainError::InvalidTransition { from, .. }) => {
                    prop_assert_eq!(*from, prev.status);
                    let allowed = if target == prev.status {
                        !prev.status.is_terminal()
                    } else {
                        allowed_move(prev.status, target)
                    };
                    prop_assert!(
                        !allowed,
                        "{} -> {} is allowed by SPEC section 2",
                        prev.status,
                        target
                    );
                }
                (Applied::Lifecycle(Status::Pending), DomainError::NotReady(issues)) => {
                    prop_assert!(prev.status.is_editable());
                    prop_assert!(!issues.is_empty());
                }
                (Applied::Edit, DomainError::NotEditable { status }) => {
                    prop_assert_eq!(*status, prev.status);
                    prop_assert!(!prev.status.is_editable());
                }
                (Applied::Edit, DomainError::Invalid(issues)) => {
                    prop_assert!(prev.status.is_editable());
                    prop_assert!(!issues.is_empty());
                }
                (Applied::SandboxExpire, DomainError::NotInTestMode) => {
                    prop_assert!(!prev.test_mode);
                }
                (Applied::SandboxExpire, DomainError::InvalidTransition { from, .. }) => {
                    prop_assert_eq!(*from, prev.status);
                    prop_assert!(prev.status != Status::Pending);
                }
                (applied, error) => {
                    prop_assert!(false, "{:?} refused with {:?}", applied, error);
                }
            }
        }
        Outcome::Changed(transition) => {
            let entries = &transition.entries;
            prop_assert_eq!(next.version, prev.version + 1, "+1 per change");
            prop_assert!(!entries.is_empty());
            prop_assert_eq!(next.updated_at, now);
            prop_assert_eq!(next.history_len, prev.history_len + entries.len() as u64);
            prop_assert_eq!(
                next.published_len,
                prev.published_len + entries.len() as u64
            );
            for (offset, entry) in entries.iter().enumerate() {
                let offset = offset as u64;
                prop_assert!(entry.entry_type != EntryType::ProviderEventIgnored);
                prop_assert_eq!(entry.sequence, prev.history_len + 1 + offset);
                prop_assert_eq!(entry.event_sequence, Some(prev.published_len + 1 + offset));
                prop_assert_eq!(entry.version, next.version);
                prop_assert_eq!(entry.status, next.status);
                prop_assert_eq!(entry.journey, next.journey());
                prop_assert_eq!(entry.signature_status, next.signature_status());
                prop_assert_eq!(&entry.agreement_id, &next.id);
            }
            prop_assert!(
                allowed_move(prev.status, next.status),
                "{} -> {} is not in SPEC section 2",
                prev.status,
                next.status
            );
            if prev.status.is_terminal() {
                // The one exception: a fulfilled agreement records its signed document.
                prop_assert_eq!(prev.status, Status::Fulfilled);
                prop_assert_eq!(
                    applied,
                    Applied::ProviderEvent {
                        signed_document: true
                    }
                );
                prop_assert!(next.documents.signed_document.is_some());
                let mut expected = prev.clone();
                expected.documents.signed_document = next.documents.signed_document.clone();
                expected.version = next.version;
                expected.history_len = next.history_len;
                expected.published_len = next.published_len;
                expected.updated_at = next.updated_at;
                prop_assert_eq!(next, &expected);
            }
        }
        Outcome::Ignored(transition, reason) => {
            let is_provider_event = matches!(applied, Applied::ProviderEvent { .. });
            prop_assert!(is_provider_event, "only provider events are ignored");
            prop_assert_eq!(transition.entries.len(), 1);
            let entry = &transition.entries[0];
            prop_assert_eq!(entry.entry_type, EntryType::ProviderEventIgnored);
            prop_assert_eq!(entry.event_sequence, None);
            prop_assert_eq!(entry.sequence, prev.history_len + 1);
            prop_assert_eq!(entry.version, next.version);
            prop_assert_eq!(entry.reason.clone(), Some(reason.to_string()));
            let mut expected = prev.clone();
            expected.history_len += 1;
            prop_assert_eq!(
                next,
                &expected,
                "an ignored event leaves the agreement as it was"
            );
        }
    }

    // A terminal agreement stays in its status.
    if prev.status.is_terminal() {
        prop_assert_eq!(next.status, prev.status);
    }

    // Only lifecycle pending/open reset participants; edits rebuild them (draft/open only, where
    // nobody is final).
    let resets = matches!(
        applied,
        Applied::Lifecycle(Status::Pending) | Applied::Lifecycle(Status::Open)
    );
    if !resets {
        for before in prev.participants.iter().filter(|p| p.status.is_final()) {
            let after = next.participant(&before.id);
            prop_assert_eq!(
                after.map(|p| p.status),
                Some(before.status),
                "participant {} left its final status",
                before.id
            );
        }
    }
    if matches!(
        applied,
        Applied::ProviderEvent { .. } | Applied::Expiry | Applied::SandboxExpire
    ) {
        let ids = |a: &Agreement| {
            a.participants
                .iter()
                .map(|p| p.id.clone())
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(ids(next), ids(prev));
        // A participant moves only from SIGNATURE_PENDING to a final status.
        for (before, after) in prev.participants.iter().zip(&next.participants) {
            if before.status != after.status {
                prop_assert_eq!(before.status, ParticipantStatus::SignaturePending);
            }
        }
    }

    // The status table of SPEC section 1.
    prop_assert_eq!(next.signature_status(), table_signature_status(next.status));
    prop_assert_eq!(next.journey(), table_journey(next));
    if next.status == Status::Fulfilled {
        prop_assert!(next
            .participants
            .iter()
            .all(|p| p.status == ParticipantStatus::SignatureComplete));
        prop_assert!(next.completed_at.is_some());
    }
    Ok(())
}

/// Runs a scenario, checking every step; returns the statuses it went through.
fn run_scenario(
    setup: &Setup,
    cmds: &[(Cmd, i64)],
) -> Result<BTreeSet<&'static str>, TestCaseError> {
    let mut runner = Runner::new(setup);
    let mut seen = BTreeSet::from([runner.agreement.status.as_str()]);
    for (step, (cmd, pause)) in cmds.iter().enumerate() {
        runner.now += Duration::minutes(*pause);
        let prev = runner.agreement.clone();
        let (applied, outcome) = runner.run(cmd, step);
        let next = match &outcome {
            Outcome::Unchanged | Outcome::Refused(_) => prev.clone(),
            Outcome::Changed(transition) | Outcome::Ignored(transition, _) => {
                transition.agreement.clone()
            }
        };
        check_step(&prev, applied, &outcome, &next, runner.now)
            .map_err(|e| TestCaseError::fail(format!("step {step} ({cmd:?}): {e}")))?;
        seen.insert(next.status.as_str());
        if next.status == Status::Pending && next.journey() == Journey::Stopped {
            seen.insert("pending with the journey stopped");
        }
        if next.status == Status::Fulfilled && next.documents.signed_document.is_some() {
            seen.insert("fulfilled with its signed document");
        }
        if let Outcome::Ignored(..) = outcome {
            seen.insert("an ignored provider event");
        }
        runner.agreement = next;
    }
    Ok(seen)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        // Integration tests have no lib.rs next to them for a regressions file.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn spec_invariants_hold_after_every_step((setup, cmds) in scenario()) {
        run_scenario(&setup, &cmds)?;
    }
}

/// The generator is only as good as what it reaches: across 256 scenarios every status of the
/// status table comes up, and so do a stopped journey, a recorded signed document and an ignored
/// event.
#[test]
fn the_generator_reaches_every_status() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario();
    let mut seen = BTreeSet::new();
    for _ in 0..256 {
        let (setup, cmds) = strategy.new_tree(&mut runner).unwrap().current();
        seen.extend(run_scenario(&setup, &cmds).unwrap());
    }
    let mut all: BTreeSet<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    all.extend([
        "pending with the journey stopped",
        "fulfilled with its signed document",
        "an ignored provider event",
    ]);
    assert_eq!(seen, all);
}
