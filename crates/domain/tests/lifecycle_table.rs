//! SPEC section 2, lifecycle table: every (status × request) pair, validation before `pending`,
//! the dates `pending` sets, what `open` resets, and the cancellation reasons. Also SPEC section 1's
//! status table, row by row.

mod support;

use std::collections::BTreeMap;

use chrono::Duration;
use countersign_domain::{
    CancellationReason, Decision, DomainError, EntryType, IssueCode, Journey, LifecycleRequest,
    ParticipantRole, ParticipantStatus, SignatureStatus, SigningOrder, Status,
};
use support::*;

/// The request column of the lifecycle table; `Cancel` stands for each of the four reason kinds.
#[derive(Debug, Clone, Copy)]
enum Req {
    Pending,
    Open,
    Cancel,
}

/// The effect column of the lifecycle table.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// A change to this status, appending exactly these entries, in order.
    To(Status, &'static [EntryType]),
    /// "the state it is already in / any non-terminal": no change (safe retry).
    Unchanged,
    /// "anything else": 409 INVALID_TRANSITION.
    Invalid,
}

const SENT: &[EntryType] = &[
    EntryType::AgreementSentForSignature,
    EntryType::SigningGroupInvited,
];
const REOPENED: &[EntryType] = &[EntryType::AgreementReopened];
const CANCELLED: &[EntryType] = &[EntryType::AgreementCancelled];

/// The lifecycle state name of each request body (`{"lifecycle_state": ...}`).
fn state_name(req: Req) -> &'static str {
    match req {
        Req::Pending => "pending",
        Req::Open => "open",
        Req::Cancel => "cancelled",
    }
}

/// Each cancellation request with what `cancellation_reason` must then show (SPEC section 1:
/// "the reason code, or the custom description").
fn cancel_requests() -> Vec<(LifecycleRequest, &'static str)> {
    let custom = "the customer withdrew the proposal";
    vec![
        (
            LifecycleRequest::Cancelled(
                CancellationReason::parse("invalid_document", None).unwrap(),
            ),
            "invalid_document",
        ),
        (
            LifecycleRequest::Cancelled(
                CancellationReason::parse("invalid_participant", None).unwrap(),
            ),
            "invalid_participant",
        ),
        (
            LifecycleRequest::Cancelled(CancellationReason::parse("invalid_email", None).unwrap()),
            "invalid_email",
        ),
        (
            LifecycleRequest::Cancelled(CancellationReason::parse("custom", Some(custom)).unwrap()),
            custom,
        ),
    ]
}

fn check(status: Status, req: Req, expect: Expect) {
    let requests: Vec<(LifecycleRequest, Option<&str>)> = match req {
        Req::Pending => vec![(LifecycleRequest::Pending, None)],
        Req::Open => vec![(LifecycleRequest::Open, None)],
        Req::Cancel => cancel_requests()
            .into_iter()
            .map(|(request, text)| (request, Some(text)))
            .collect(),
    };
    for (request, reason_text) in requests {
        let before = in_status(status);
        let now = minutes(90);
        let result = before.decide_lifecycle(request.clone(), now);
        let what = format!("{status} + {request:?}");
        match expect {
            Expect::To(new_status, types) => {
                let transition = match result {
                    Ok(Decision::Changed(transition)) => transition,
                    other => panic!("{what}: expected a change to {new_status}, got {other:?}"),
                };
                let after = &transition.agreement;
                assert_eq!(after.status, new_status, "{what}");
                assert_eq!(entry_types(&transition.entries), types, "{what}");
                assert_eq!(after.version, before.version + 1, "{what}");
                assert_eq!(after.updated_at, now, "{what}");
                for (offset, entry) in transition.entries.iter().enumerate() {
                    assert_eq!(entry.version, after.version, "{what}");
                    assert_eq!(entry.status, new_status, "{what}");
                    assert_eq!(entry.sequence, before.history_len + 1 + offset as u64);
                    assert_eq!(
                        entry.event_sequence,
                        Some(before.published_len + 1 + offset as u64),
                        "{what}: a change is published"
                    );
                }
                if let Some(text) = reason_text {
                    assert_eq!(
                        after
                            .cancellation_reason
                            .as_ref()
                            .map(CancellationReason::display_text),
                        Some(text.to_owned()),
                        "{what}"
                    );
                    assert_eq!(transition.entries[0].reason.as_deref(), Some(text));
                }
            }
            Expect::Unchanged => {
                assert_eq!(result, Ok(Decision::Unchanged), "{what}");
            }
            Expect::Invalid => match result {
                Err(DomainError::InvalidTransition { from, requested }) => {
                    assert_eq!(from, status, "{what}");
                    assert_eq!(requested, state_name(req), "{what}");
                }
                other => panic!("{what}: expected INVALID_TRANSITION, got {other:?}"),
            },
        }
    }
}

macro_rules! lifecycle_cases {
    ($($name:ident: $status:ident + $req:ident => $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(Status::$status, Req::$req, $expect);
            }
        )*
    };
}

// The lifecycle table of SPEC section 2, written out for all 8 statuses × 3 requests.
lifecycle_cases! {
    draft_to_pending: Draft + Pending => Expect::To(Status::Pending, SENT);
    draft_to_open: Draft + Open => Expect::Invalid;
    draft_to_cancelled: Draft + Cancel => Expect::To(Status::Cancelled, CANCELLED);

    open_to_pending: Open + Pending => Expect::To(Status::Pending, SENT);
    open_to_open: Open + Open => Expect::Unchanged;
    open_to_cancelled: Open + Cancel => Expect::To(Status::Cancelled, CANCELLED);

    pending_to_pending: Pending + Pending => Expect::Unchanged;
    pending_to_open: Pending + Open => Expect::To(Status::Open, REOPENED);
    pending_to_cancelled: Pending + Cancel => Expect::To(Status::Cancelled, CANCELLED);

    fulfilled_to_pending: Fulfilled + Pending => Expect::Invalid;
    fulfilled_to_open: Fulfilled + Open => Expect::Invalid;
    fulfilled_to_cancelled: Fulfilled + Cancel => Expect::Invalid;

    cancelled_to_pending: Cancelled + Pending => Expect::Invalid;
    cancelled_to_open: Cancelled + Open => Expect::Invalid;
    cancelled_to_cancelled: Cancelled + Cancel => Expect::Invalid;

    expired_to_pending: Expired + Pending => Expect::Invalid;
    expired_to_open: Expired + Open => Expect::Invalid;
    expired_to_cancelled: Expired + Cancel => Expect::Invalid;

    refused_to_pending: Refused + Pending => Expect::Invalid;
    refused_to_open: Refused + Open => Expect::Invalid;
    refused_to_cancelled: Refused + Cancel => Expect::Invalid;

    failed_to_pending: Failed + Pending => Expect::Invalid;
    failed_to_open: Failed + Open => Expect::Invalid;
    failed_to_cancelled: Failed + Cancel => Expect::Invalid;
}

// ---------------------------------------------------------------- SPEC section 1, status table

#[test]
fn every_status_row_of_the_status_table() {
    // (status, signature_status, journey when nobody failed, editable, terminal)
    let table = [
        (Status::Draft, None, Journey::Waiting, true, false),
        (Status::Open, None, Journey::Waiting, true, false),
        (
            Status::Pending,
            Some(SignatureStatus::SignatureOngoing),
            Journey::Waiting,
            false,
            false,
        ),
        (
            Status::Fulfilled,
            Some(SignatureStatus::SignatureComplete),
            Journey::Proceed,
            false,
            true,
        ),
        (
            Status::Expired,
            Some(SignatureStatus::SignatureExpired),
            Journey::Stopped,
            false,
            true,
        ),
        (
            Status::Cancelled,
            Some(SignatureStatus::SignatureCancelled),
            Journey::Stopped,
            false,
            true,
        ),
        (
            Status::Refused,
            Some(SignatureStatus::SignatureRefused),
            Journey::Stopped,
            false,
            true,
        ),
        (
            Status::Failed,
            Some(SignatureStatus::OtherFailure),
            Journey::Stopped,
            false,
            true,
        ),
    ];
    for (status, signature_status, journey, editable, terminal) in table {
        let agreement = in_status(status);
        assert_eq!(agreement.signature_status(), signature_status, "{status}");
        assert_eq!(agreement.journey(), journey, "{status}");
        assert_eq!(status.is_editable(), editable, "{status}");
        assert_eq!(status.is_terminal(), terminal, "{status}");
    }
    let wire: Vec<&str> = table
        .iter()
        .filter_map(|row| row.1.map(SignatureStatus::as_str))
        .collect();
    assert_eq!(
        wire,
        [
            "SIGNATURE_ONGOING",
            "SIGNATURE_COMPLETE",
            "SIGNATURE_EXPIRED",
            "SIGNATURE_CANCELLED",
            "SIGNATURE_REFUSED",
            "OTHER_FAILURE"
        ]
    );
}

#[test]
fn create_makes_a_draft_at_version_1_with_its_created_entry() {
    let transition = create_transition(ready_input());
    assert_eq!(transition.agreement.status, Status::Draft);
    assert_eq!(transition.agreement.version, 1);
    assert_eq!(
        entry_types(&transition.entries),
        [EntryType::AgreementCreated]
    );
    assert_eq!(transition.entries[0].sequence, 1);
    assert_eq!(transition.entries[0].event_sequence, Some(1));
    assert_eq!(transition.agreement.history_len, 1);
    assert_eq!(transition.agreement.published_len, 1);
    assert_eq!(transition.agreement.expires_in_days, 120, "SPEC default");
}

// ---------------------------------------------------------------- validation before pending

fn issue_counts(result: Result<Decision, DomainError>) -> BTreeMap<&'static str, usize> {
    match result {
        Err(DomainError::NotReady(issues)) => {
            let mut counts = BTreeMap::new();
            for issue in issues {
                *counts.entry(issue.code.as_str()).or_default() += 1;
            }
            counts
        }
        other => panic!("expected the readiness failures, got {other:?}"),
    }
}

#[test]
fn pending_validation_reports_every_failure_at_once_and_changes_nothing() {
    let mut input = ready_input();
    input.contract = None; // BANK_INFORMATION_UNDEFINED
    input.documents = None; // DOCUMENT_UNDEFINED
    input.signing_order = Some(SigningOrder {
        enabled: true,
        grouped: true,
    });
    // Nobody signs (approvers only): SIGNATORIES_UNDEFINED.
    for participant in &mut input.participants {
        participant.role = ParticipantRole::Approver;
    }
    input.participants[0].name = None; // INVALID_PARTICIPANT: no name
    input.participants[1].email = Some("alan-at-example.com".to_owned()); // INVALID_EMAIL
    input.participants[2].email = Some("ADA@example.com".to_owned()); // INVALID_PARTICIPANT: duplicate
    input.participants[2].signing_group = 3; // INVALID_PARTICIPANT: group 2 is empty

    for agreement in [create(input.clone()), {
        // The same through `open`: the draft is fixed, sent, reopened, then broken again.
        let open = open();
        changed(
            open.decide_edit(input.clone(), minutes(60), &rules(), &mut Ids::new())
                .unwrap(),
        )
        .agreement
    }] {
        let before = agreement.clone();
        let counts =
            issue_counts(agreement.decide_lifecycle(LifecycleRequest::Pending, minutes(90)));
        assert_eq!(counts.get("SIGNATORIES_UNDEFINED"), Some(&1));
        assert_eq!(counts.get("BANK_INFORMATION_UNDEFINED"), Some(&1));
        assert_eq!(counts.get("DOCUMENT_UNDEFINED"), Some(&1));
        assert_eq!(counts.get("INVALID_EMAIL"), Some(&1));
        assert_eq!(
            counts.get("INVALID_PARTICIPANT"),
            Some(&3),
            "no name, duplicate email, empty signing group: {counts:?}"
        );
        assert_eq!(counts.len(), 5, "nothing else: {counts:?}");
        assert_eq!(agreement, before);
        assert!(agreement.status.is_editable());
        assert_eq!(agreement.sent_at, None);
    }
}

#[test]
fn each_readiness_failure_alone_is_reported_with_its_type() {
    type Breaker = fn(&mut countersign_domain::AgreementInput);
    let cases: Vec<(&str, Breaker, IssueCode)> = vec![
        (
            "approvers only",
            |i| {
                for p in &mut i.participants {
                    p.role = ParticipantRole::Approver
                }
            },
            IssueCode::SignatoriesUndefined,
        ),
        (
            "no participants",
            |i| i.participants.clear(),
            IssueCode::SignatoriesUndefined,
        ),
        (
            "no contract",
            |i| i.contract = None,
            IssueCode::BankInformationUndefined,
        ),
        (
            "no bank information",
            |i| i.contract.as_mut().unwrap().bank_information = None,
            IssueCode::BankInformationUndefined,
        ),
        (
            "no account holder",
            |i| {
                i.contract
                    .as_mut()
                    .unwrap()
                    .bank_information
                    .as_mut()
                    .unwrap()
                    .account_holder = None
            },
            IssueCode::BankInformationUndefined,
        ),
        (
            "no iban",
            |i| {
                i.contract
                    .as_mut()
                    .unwrap()
                    .bank_information
                    .as_mut()
                    .unwrap()
                    .iban = None
            },
            IssueCode::BankInformationUndefined,
        ),
        (
            "no documents",
            |i| i.documents = None,
            IssueCode::DocumentUndefined,
        ),
        (
            "no main document",
            |i| i.documents.as_mut().unwrap().main = None,
            IssueCode::DocumentUndefined,
        ),
        (
            "malformed email",
            |i| i.participants[1].email = Some("alan@".to_owned()),
            IssueCode::InvalidEmail,
        ),
        (
            "missing email",
            |i| i.participants[1].email = None,
            IssueCode::InvalidEmail,
        ),
        (
            "missing name",
            |i| i.participants[1].name = None,
            IssueCode::InvalidParticipant,
        ),
        (
            "blank name",
            |i| i.participants[1].name = Some("   ".to_owned()),
            IssueCode::InvalidParticipant,
        ),
        (
            "duplicate email, other case",
            |i| i.participants[2].email = Some("Ada@Example.COM".to_owned()),
            IssueCode::InvalidParticipant,
        ),
        (
            "grouped order with group 2 empty",
            |i| {
                i.signing_order = Some(SigningOrder {
                    enabled: true,
                    grouped: true,
                });
                i.participants[2].signing_group = 3;
            },
            IssueCode::InvalidParticipant,
        ),
        (
            "grouped order without group 1",
            |i| {
                i.signing_order = Some(SigningOrder {
                    enabled: true,
                    grouped: true,
                });
                for p in &mut i.participants {
                    p.signing_group = 2;
                }
            },
            IssueCode::InvalidParticipant,
        ),
    ];
    for (name, breaker, code) in cases {
        let mut input = ready_input();
        breaker(&mut input);
        let draft = create(input);
        let result = draft.decide_lifecycle(LifecycleRequest::Pending, minutes(90));
        let counts = issue_counts(result);
        assert_eq!(
            counts.keys().copied().collect::<Vec<_>>(),
            [code.as_str()],
            "{name}: {counts:?}"
        );
    }
}

#[test]
fn a_ready_agreement_passes_with_grouped_order_and_approvers_beside_a_signer() {
    let mut input = ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: true,
        },
        &[1, 2, 2],
    );
    input.participants[1].role = ParticipantRole::Approver;
    let draft = create(input);
    let sent = changed(
        draft
            .decide_lifecycle(LifecycleRequest::Pending, minutes(10))
            .unwrap(),
    );
    assert_eq!(sent.agreement.status, Status::Pending);
}

// ---------------------------------------------------------------- what pending and open set

#[test]
fn pending_sets_sent_at_and_expires_at_from_expires_in_days() {
    for (days, expected_days) in [(None, 120), (Some(1), 1), (Some(30), 30), (Some(365), 365)] {
        let mut input = ready_input();
        input.expires_in_days = days;
        let draft = create(input);
        let now = minutes(10);
        let sent = changed(
            draft
                .decide_lifecycle(LifecycleRequest::Pending, now)
                .unwrap(),
        )
        .agreement;
        assert_eq!(sent.sent_at, Some(now));
        assert_eq!(sent.expires_at, Some(now + Duration::days(expected_days)));
        assert_eq!(sent.completed_at, None);
        assert_eq!(
            sent.signature_status(),
            Some(SignatureStatus::SignatureOngoing)
        );
        assert_eq!(sent.journey(), Journey::Waiting);
    }
}

#[test]
fn pending_without_signing_order_invites_everybody() {
    let sent = pending();
    assert!(sent.participants.iter().all(|p| p.invited_at.is_some()));
    assert!(sent
        .participants
        .iter()
        .all(|p| p.status == ParticipantStatus::SignaturePending));
}

#[test]
fn pending_with_grouped_order_invites_the_first_group_only() {
    let input = ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: true,
        },
        &[1, 1, 2],
    );
    let draft = create(input);
    let transition = changed(
        draft
            .decide_lifecycle(LifecycleRequest::Pending, minutes(10))
            .unwrap(),
    );
    assert_eq!(entry_types(&transition.entries), SENT);
    assert_eq!(transition.entries[1].signing_group, Some(1));
    let invited: Vec<bool> = transition
        .agreement
        .participants
        .iter()
        .map(|p| p.invited_at.is_some())
        .collect();
    assert_eq!(invited, [true, true, false]);
}

#[test]
fn open_clears_expires_at_and_resets_participants_then_pending_starts_over() {
    let mut agreement = pending();
    agreement = apply_event(&agreement, &signed("p1"));
    agreement = apply_event(&agreement, &delivery_failed("p2"));
    agreement = apply_event(&agreement, &identity_check_failed("p3"));
    agreement = apply_event(&agreement, &signed_document());
    assert_eq!(agreement.journey(), Journey::Stopped);
    assert!(agreement.documents.signed_document.is_some());
    assert_eq!(agreement.participants[2].identity_check_failures, 1);

    let reopened = lifecycle(&agreement, LifecycleRequest::Open, minutes(120));
    assert_eq!(reopened.status, Status::Open);
    assert_eq!(reopened.expires_at, None);
    assert_eq!(reopened.journey(), Journey::Waiting);
    assert_eq!(reopened.signature_status(), None);
    assert_eq!(
        reopened.documents.signed_document, None,
        "the abandoned round's document"
    );
    for participant in &reopened.participants {
        assert_eq!(participant.status, ParticipantStatus::SignaturePending);
        assert_eq!(participant.identity_check_failures, 0);
        assert_eq!(participant.signed_at, None);
    }
    assert!(reopened.status.is_editable());

    let later = minutes(60 * 24 * 3);
    let resent = lifecycle(&reopened, LifecycleRequest::Pending, later);
    assert_eq!(resent.sent_at, Some(later));
    assert_eq!(resent.expires_at, Some(later + Duration::days(120)));
    assert!(resent.participants.iter().all(|p| p.invited_at.is_some()
        && p.status == ParticipantStatus::SignaturePending
        && p.identity_check_failures == 0));
}

// ---------------------------------------------------------------- cancellation reasons

#[test]
fn custom_cancellation_reason_has_10_to_255_characters() {
    let reject = |text: &str| CancellationReason::parse("custom", Some(text)).is_err();
    assert!(reject(&"x".repeat(9)), "9 characters");
    assert!(!reject(&"x".repeat(10)), "10 characters");
    assert!(!reject(&"x".repeat(255)), "255 characters");
    assert!(reject(&"x".repeat(256)), "256 characters");
    // Characters, not bytes: 255 two-byte characters are 510 bytes and still fit.
    assert!(!reject(&"é".repeat(255)));
    assert!(reject(&"é".repeat(256)));
    assert!(!reject(&"é".repeat(10)));
    assert_eq!(
        CancellationReason::parse("custom", Some(&"y".repeat(10)))
            .unwrap()
            .display_text(),
        "y".repeat(10)
    );
}

#[test]
fn cancellation_reasons_follow_the_request_bodies() {
    for code in ["invalid_document", "invalid_participant", "invalid_email"] {
        let reason = CancellationReason::parse(code, None).unwrap();
        assert_eq!(reason.display_text(), code);
    }
    assert!(CancellationReason::parse("custom", None).is_err());
    assert!(CancellationReason::parse("because", None).is_err());
    assert!(CancellationReason::parse("", None).is_err());
}

#[test]
fn participants_of_a_step_follow_the_signing_order() {
    let ids = |agreement: &countersign_domain::Agreement, step: u32| -> Vec<String> {
        agreement
            .participants_of_step(step)
            .map(|p| p.id.clone())
            .collect()
    };
    let unordered = pending_from(ready_input());
    assert_eq!(ids(&unordered, 1), ["p1", "p2", "p3"]);
    assert!(ids(&unordered, 2).is_empty());

    let grouped = pending_from(ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: true,
        },
        &[2, 1, 2],
    ));
    assert_eq!(ids(&grouped, 1), ["p2"]);
    assert_eq!(ids(&grouped, 2), ["p1", "p3"]);

    let one_by_one = pending_from(ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: false,
        },
        &[2, 1, 2],
    ));
    assert_eq!(ids(&one_by_one, 1), ["p1"]);
    assert_eq!(ids(&one_by_one, 3), ["p3"]);
    // What `pending` invited is exactly the first step.
    let invited: Vec<String> = one_by_one
        .participants
        .iter()
        .filter(|p| p.invited_at.is_some())
        .map(|p| p.id.clone())
        .collect();
    assert_eq!(invited, ids(&one_by_one, 1));
}
