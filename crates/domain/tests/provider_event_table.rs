//! SPEC section 2, provider event table: every (status × event) pair, then the rules of each
//! event: fulfilment, signing order, identity check attempts, delivery failures, final and unknown
//! participants.

mod support;

use countersign_domain::{
    Agreement, Decision, EntryType, IgnoreReason, Journey, ParticipantStatus, ProviderEvent,
    ProviderEventKind, Rules, SignatureStatus, SigningOrder, Status,
};
use support::*;

#[derive(Debug, Clone, Copy)]
enum Ev {
    Signed,
    Refused,
    DeliveryFailed,
    IdentityCheckFailed,
    SignedDocument,
    AgreementFailed,
    ProviderCancelled,
    ProviderExpired,
    Unusable,
}

fn make(ev: Ev) -> ProviderEvent {
    match ev {
        Ev::Signed => signed("p1"),
        Ev::Refused => refused("p1"),
        Ev::DeliveryFailed => delivery_failed("p1"),
        Ev::IdentityCheckFailed => identity_check_failed("p1"),
        Ev::SignedDocument => signed_document(),
        Ev::AgreementFailed => agreement_failed(),
        Ev::ProviderCancelled => event(ProviderEventKind::AgreementCancelled),
        Ev::ProviderExpired => event(ProviderEventKind::AgreementExpired),
        Ev::Unusable => unusable(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Applied: the agreement's new status, `p1`'s new status, the entries in order.
    Applied(Status, ParticipantStatus, &'static [EntryType]),
    /// Changes nothing: one unpublished `ProviderEventIgnored` entry.
    Ignored,
}

use EntryType as E;
use ParticipantStatus as P;

/// Checks that an ignored event left the agreement as it was, bar one history entry.
fn assert_ignored(before: &Agreement, event: &ProviderEvent, decision: Decision, what: &str) {
    let (transition, reason) = match decision {
        Decision::Ignored { transition, reason } => (transition, reason),
        other => panic!("{what}: expected the event to be ignored, got {other:?}"),
    };
    let mut expected = before.clone();
    expected.history_len += 1;
    assert_eq!(
        transition.agreement, expected,
        "{what}: only history_len moves"
    );
    assert_eq!(transition.agreement.version, before.version, "{what}");
    assert_eq!(transition.entries.len(), 1, "{what}");
    let entry = &transition.entries[0];
    assert_eq!(entry.entry_type, EntryType::ProviderEventIgnored, "{what}");
    assert_eq!(entry.event_sequence, None, "{what}: never published");
    assert!(entry.published_event().is_none(), "{what}");
    assert_eq!(entry.sequence, before.history_len + 1, "{what}");
    assert_eq!(entry.version, before.version, "{what}");
    assert_eq!(
        entry.provider_event_id.as_deref(),
        Some(event.event_id.as_str())
    );
    assert_eq!(entry.reason, Some(reason.to_string()), "{what}");
    assert!(!reason.to_string().is_empty(), "{what}");
}

fn check(status: Status, ev: Ev, expect: Expect) {
    let before = in_status(status);
    let event = make(ev);
    let now = minutes(200);
    let decision = on_event(&before, &event, now);
    let what = format!("{status} + {ev:?}");
    match expect {
        Expect::Ignored => assert_ignored(&before, &event, decision, &what),
        Expect::Applied(new_status, p1_status, types) => {
            let transition = match decision {
                Decision::Changed(transition) => transition,
                other => panic!("{what}: expected a change, got {other:?}"),
            };
            let after = &transition.agreement;
            assert_eq!(after.status, new_status, "{what}");
            assert_eq!(status_of(after, "p1"), p1_status, "{what}");
            for other in ["p2", "p3"] {
                assert_eq!(status_of(after, other), status_of(&before, other), "{what}");
            }
            assert_eq!(entry_types(&transition.entries), types, "{what}");
            assert_eq!(after.version, before.version + 1, "{what}");
            assert_eq!(after.updated_at, now, "{what}");
            for (offset, entry) in transition.entries.iter().enumerate() {
                assert_eq!(entry.sequence, before.history_len + 1 + offset as u64);
                assert_eq!(
                    entry.event_sequence,
                    Some(before.published_len + 1 + offset as u64),
                    "{what}"
                );
                assert_eq!(entry.version, after.version, "{what}");
                assert_eq!(
                    entry.provider_event_id.as_deref(),
                    Some(event.event_id.as_str()),
                    "{what}"
                );
            }
            if matches!(ev, Ev::ProviderCancelled) {
                assert_eq!(
                    after.cancellation_reason,
                    Some(countersign_domain::CancellationReason::ProviderCancelled)
                );
                assert_eq!(
                    after
                        .cancellation_reason
                        .as_ref()
                        .map(|reason| reason.display_text()),
                    Some("provider_cancelled".to_owned())
                );
            }
            if matches!(ev, Ev::SignedDocument) {
                assert_eq!(after.documents.signed_document, Some(signed_file()));
            } else {
                assert_eq!(after.documents.signed_document, None);
            }
        }
    }
}

macro_rules! provider_cases {
    ($($name:ident: $status:ident + $ev:ident => $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                check(Status::$status, Ev::$ev, $expect);
            }
        )*
    };
}

const I: Expect = Expect::Ignored;

// The provider event table of SPEC section 2 for all 8 statuses × 9 events. Events target `p1`,
// one of three signers; `signed_document` is recorded as `SignedDocumentStored`.
provider_cases! {
    pending_signed: Pending + Signed =>
        Expect::Applied(Status::Pending, P::SignatureComplete, &[E::ParticipantSigned]);
    pending_refused: Pending + Refused =>
        Expect::Applied(Status::Refused, P::SignatureRefused, &[E::ParticipantRefused, E::AgreementRefused]);
    pending_delivery_failed: Pending + DeliveryFailed =>
        Expect::Applied(Status::Pending, P::SignatoryDeliveryFailed,
            &[E::ParticipantDeliveryFailed, E::CustomerJourneyStopped]);
    pending_identity_check_failed: Pending + IdentityCheckFailed =>
        Expect::Applied(Status::Pending, P::SignaturePending, &[E::ParticipantIdentityCheckFailed]);
    pending_signed_document: Pending + SignedDocument =>
        Expect::Applied(Status::Pending, P::SignaturePending, &[E::SignedDocumentStored]);
    pending_agreement_failed: Pending + AgreementFailed =>
        Expect::Applied(Status::Failed, P::SignaturePending, &[E::AgreementFailed]);
    pending_unusable: Pending + Unusable => I;
    pending_provider_cancelled: Pending + ProviderCancelled =>
        Expect::Applied(Status::Cancelled, P::SignaturePending, &[E::AgreementCancelled]);
    pending_provider_expired: Pending + ProviderExpired =>
        Expect::Applied(Status::Expired, P::SignaturePending, &[E::AgreementExpired]);

    fulfilled_signed: Fulfilled + Signed => I;
    fulfilled_refused: Fulfilled + Refused => I;
    fulfilled_delivery_failed: Fulfilled + DeliveryFailed => I;
    fulfilled_identity_check_failed: Fulfilled + IdentityCheckFailed => I;
    fulfilled_signed_document: Fulfilled + SignedDocument =>
        Expect::Applied(Status::Fulfilled, P::SignatureComplete, &[E::SignedDocumentStored]);
    fulfilled_agreement_failed: Fulfilled + AgreementFailed => I;
    fulfilled_unusable: Fulfilled + Unusable => I;
    fulfilled_provider_cancelled: Fulfilled + ProviderCancelled => I;
    fulfilled_provider_expired: Fulfilled + ProviderExpired => I;

    draft_signed: Draft + Signed => I;
    draft_refused: Draft + Refused => I;
    draft_delivery_failed: Draft + DeliveryFailed => I;
    draft_identity_check_failed: Draft + IdentityCheckFailed => I;
    draft_signed_document: Draft + SignedDocument => I;
    draft_agreement_failed: Draft + AgreementFailed => I;
    draft_unusable: Draft + Unusable => I;
    draft_provider_cancelled: Draft + ProviderCancelled => I;
    draft_provider_expired: Draft + ProviderExpired => I;

    open_signed: Open + Signed => I;
    open_refused: Open + Refused => I;
    open_delivery_failed: Open + DeliveryFailed => I;
    open_identity_check_failed: Open + IdentityCheckFailed => I;
    open_signed_document: Open + SignedDocument => I;
    open_agreement_failed: Open + AgreementFailed => I;
    open_unusable: Open + Unusable => I;
    open_provider_cancelled: Open + ProviderCancelled => I;
    open_provider_expired: Open + ProviderExpired => I;

    cancelled_signed: Cancelled + Signed => I;
    cancelled_refused: Cancelled + Refused => I;
    cancelled_delivery_failed: Cancelled + DeliveryFailed => I;
    cancelled_identity_check_failed: Cancelled + IdentityCheckFailed => I;
    cancelled_signed_document: Cancelled + SignedDocument => I;
    cancelled_agreement_failed: Cancelled + AgreementFailed => I;
    cancelled_unusable: Cancelled + Unusable => I;
    cancelled_provider_cancelled: Cancelled + ProviderCancelled => I;
    cancelled_provider_expired: Cancelled + ProviderExpired => I;

    expired_signed: Expired + Signed => I;
    expired_refused: Expired + Refused => I;
    expired_delivery_failed: Expired + DeliveryFailed => I;
    expired_identity_check_failed: Expired + IdentityCheckFailed => I;
    expired_signed_document: Expired + SignedDocument => I;
    expired_agreement_failed: Expired + AgreementFailed => I;
    expired_unusable: Expired + Unusable => I;
    expired_provider_cancelled: Expired + ProviderCancelled => I;
    expired_provider_expired: Expired + ProviderExpired => I;

    refused_signed: Refused + Signed => I;
    refused_refused: Refused + Refused => I;
    refused_delivery_failed: Refused + DeliveryFailed => I;
    refused_identity_check_failed: Refused + IdentityCheckFailed => I;
    refused_signed_document: Refused + SignedDocument => I;
    refused_agreement_failed: Refused + AgreementFailed => I;
    refused_unusable: Refused + Unusable => I;
    refused_provider_cancelled: Refused + ProviderCancelled => I;
    refused_provider_expired: Refused + ProviderExpired => I;

    failed_signed: Failed + Signed => I;
    failed_refused: Failed + Refused => I;
    failed_delivery_failed: Failed + DeliveryFailed => I;
    failed_identity_check_failed: Failed + IdentityCheckFailed => I;
    failed_signed_document: Failed + SignedDocument => I;
    failed_agreement_failed: Failed + AgreementFailed => I;
    failed_unusable: Failed + Unusable => I;
    failed_provider_cancelled: Failed + ProviderCancelled => I;
    failed_provider_expired: Failed + ProviderExpired => I;
}

// ---------------------------------------------------------------- participant.signed

#[test]
fn the_last_signature_fulfils_the_agreement_in_the_same_transition() {
    let mut agreement = pending();
    agreement = apply_event(&agreement, &signed("p1"));
    agreement = apply_event(&agreement, &signed("p3"));
    assert_eq!(agreement.status, Status::Pending);
    assert_eq!(agreement.completed_at, None);

    let now = minutes(300);
    let transition = changed(on_event(&agreement, &signed("p2"), now));
    let after = &transition.agreement;
    assert_eq!(
        entry_types(&transition.entries),
        [EntryType::ParticipantSigned, EntryType::AgreementFulfilled]
    );
    assert_eq!(transition.entries[0].participant_id.as_deref(), Some("p2"));
    assert_eq!(after.status, Status::Fulfilled);
    assert_eq!(after.completed_at, Some(now));
    assert_eq!(
        after.signature_status(),
        Some(SignatureStatus::SignatureComplete)
    );
    assert_eq!(after.journey(), Journey::Proceed);
    assert_eq!(after.version, agreement.version + 1, "one write");
    assert!(after
        .participants
        .iter()
        .all(|p| p.status == ParticipantStatus::SignatureComplete && p.signed_at.is_some()));
    // Both entries describe the agreement the write left.
    assert!(transition
        .entries
        .iter()
        .all(|e| e.status == Status::Fulfilled && e.journey == Journey::Proceed));
}

#[test]
fn signed_at_is_when_the_participant_signed() {
    let agreement = pending();
    let event = signed("p1");
    let after = changed(on_event(&agreement, &event, minutes(500))).agreement;
    assert_eq!(
        after.participant("p1").unwrap().signed_at,
        Some(event.occurred_at)
    );
}

#[test]
fn grouped_signing_order_invites_group_2_once_group_1_has_all_signed() {
    let agreement = pending_from(ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: true,
        },
        &[1, 1, 2],
    ));
    let invited = |a: &Agreement, id: &str| a.participant(id).unwrap().invited_at.is_some();
    assert!(invited(&agreement, "p1") && invited(&agreement, "p2"));
    assert!(!invited(&agreement, "p3"));

    // Group 2 signing early is not applied.
    let early = signed("p3");
    let (_, reason) = ignored(on_event(&agreement, &early, minutes(50)));
    assert_eq!(reason, IgnoreReason::ParticipantNotInvited("p3".to_owned()));

    let first = changed(on_event(&agreement, &signed("p1"), minutes(50)));
    assert_eq!(
        entry_types(&first.entries),
        [EntryType::ParticipantSigned],
        "group 1 is not complete yet"
    );
    assert!(!invited(&first.agreement, "p3"));

    let second = changed(on_event(&first.agreement, &signed("p2"), minutes(60)));
    assert_eq!(
        entry_types(&second.entries),
        [EntryType::ParticipantSigned, EntryType::SigningGroupInvited]
    );
    assert_eq!(second.entries[1].signing_group, Some(2));
    assert!(invited(&second.agreement, "p3"));
    assert_eq!(second.agreement.status, Status::Pending);

    let last = changed(on_event(&second.agreement, &signed("p3"), minutes(70)));
    assert_eq!(last.agreement.status, Status::Fulfilled);
}

#[test]
fn ungrouped_signing_order_invites_one_participant_at_a_time_in_list_order() {
    let agreement = pending_from(ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: false,
        },
        &[1, 1, 1],
    ));
    let invited = |a: &Agreement| -> Vec<bool> {
        a.participants
            .iter()
            .map(|p| p.invited_at.is_some())
            .collect()
    };
    assert_eq!(invited(&agreement), [true, false, false]);
    for early in ["p2", "p3"] {
        let (_, reason) = ignored(on_event(&agreement, &signed(early), minutes(50)));
        assert_eq!(
            reason,
            IgnoreReason::ParticipantNotInvited(early.to_owned())
        );
    }

    let one = changed(on_event(&agreement, &signed("p1"), minutes(50)));
    assert_eq!(
        entry_types(&one.entries),
        [EntryType::ParticipantSigned, EntryType::SigningGroupInvited]
    );
    assert_eq!(invited(&one.agreement), [true, true, false]);
    let (_, reason) = ignored(on_event(&one.agreement, &signed("p3"), minutes(55)));
    assert_eq!(reason, IgnoreReason::ParticipantNotInvited("p3".to_owned()));

    let two = changed(on_event(&one.agreement, &signed("p2"), minutes(60)));
    assert_eq!(invited(&two.agreement), [true, true, true]);
    let three = changed(on_event(&two.agreement, &signed("p3"), minutes(70)));
    assert_eq!(
        entry_types(&three.entries),
        [EntryType::ParticipantSigned, EntryType::AgreementFulfilled]
    );
}

#[test]
fn a_participant_not_yet_invited_cannot_refuse_fail_or_bounce_either() {
    let agreement = pending_from(ready_input_with_order(
        SigningOrder {
            enabled: true,
            grouped: true,
        },
        &[1, 1, 2],
    ));
    for event in [
        refused("p3"),
        delivery_failed("p3"),
        identity_check_failed("p3"),
    ] {
        assert_ignored(
            &agreement,
            &event,
            on_event(&agreement, &event, minutes(50)),
            "uninvited p3",
        );
    }
}

// ---------------------------------------------------------------- identity checks

fn fail_identity(agreement: &Agreement, rules: &Rules) -> countersign_domain::Transition {
    changed(agreement.decide_provider_event(&identity_check_failed("p2"), rules, minutes(80)))
}

#[test]
fn the_third_failed_identity_check_fails_the_participant_and_stops_the_journey() {
    let rules = Rules::default();
    let mut agreement = pending();
    for attempt in 1..=2 {
        let transition = fail_identity(&agreement, &rules);
        agreement = transition.agreement;
        assert_eq!(
            status_of(&agreement, "p2"),
            ParticipantStatus::SignaturePending,
            "attempt {attempt}"
        );
        assert_eq!(
            agreement.participant("p2").unwrap().identity_check_failures,
            attempt
        );
        assert_eq!(agreement.journey(), Journey::Waiting, "attempt {attempt}");
        assert!(!entry_types(&transition.entries).contains(&EntryType::CustomerJourneyStopped));
    }
    let third = fail_identity(&agreement, &rules);
    assert_eq!(
        entry_types(&third.entries),
        [
            EntryType::ParticipantIdentityCheckFailed,
            EntryType::CustomerJourneyStopped
        ]
    );
    let after = &third.agreement;
    assert_eq!(
        status_of(after, "p2"),
        ParticipantStatus::IdentityCheckFailed
    );
    assert_eq!(after.status, Status::Pending);
    assert_eq!(
        after.signature_status(),
        Some(SignatureStatus::SignatureOngoing)
    );
    assert_eq!(after.journey(), Journey::Stopped);
    assert_eq!(
        after.journey_stopped_reason(),
        Some("IDENTITY_CHECK_FAILED")
    );
    assert_eq!(third.entries[1].journey, Journey::Stopped);

    // The participant is final now: a 4th failure changes nothing.
    let fourth = identity_check_failed("p2");
    let (_, reason) = ignored(on_event(after, &fourth, minutes(90)));
    assert_eq!(
        reason,
        IgnoreReason::ParticipantFinal {
            participant_id: "p2".to_owned(),
            status: ParticipantStatus::IdentityCheckFailed
        }
    );
}

#[test]
fn the_number_of_identity_check_attempts_is_configurable() {
    let rules = Rules {
        identity_check_attempts: 5,
        ..Rules::default()
    };
    let mut agreement = pending();
    for attempt in 1..=4 {
        agreement = fail_identity(&agreement, &rules).agreement;
        assert_eq!(
            status_of(&agreement, "p2"),
            ParticipantStatus::SignaturePending,
            "attempt {attempt} of 5"
        );
        assert_eq!(agreement.journey(), Journey::Waiting);
    }
    let fifth = fail_identity(&agreement, &rules).agreement;
    assert_eq!(
        status_of(&fifth, "p2"),
        ParticipantStatus::IdentityCheckFailed
    );
    assert_eq!(fifth.journey(), Journey::Stopped);

    let one = Rules {
        identity_check_attempts: 1,
        ..Rules::default()
    };
    let first = fail_identity(&pending(), &one).agreement;
    assert_eq!(
        status_of(&first, "p2"),
        ParticipantStatus::IdentityCheckFailed
    );
}

#[test]
fn a_participant_may_still_sign_after_failed_identity_attempts_below_the_limit() {
    let mut agreement = pending();
    agreement = fail_identity(&agreement, &Rules::default()).agreement;
    agreement = fail_identity(&agreement, &Rules::default()).agreement;
    agreement = apply_event(&agreement, &signed("p2"));
    assert_eq!(
        status_of(&agreement, "p2"),
        ParticipantStatus::SignatureComplete
    );
}

// ---------------------------------------------------------------- delivery failures

#[test]
fn a_delivery_failure_stops_the_journey_and_the_agreement_stays_pending() {
    let transition = changed(on_event(&pending(), &delivery_failed("p3"), minutes(90)));
    let after = &transition.agreement;
    assert_eq!(after.status, Status::Pending);
    assert_eq!(
        after.signature_status(),
        Some(SignatureStatus::SignatureOngoing)
    );
    assert_eq!(
        status_of(after, "p3"),
        ParticipantStatus::SignatoryDeliveryFailed
    );
    assert_eq!(after.journey(), Journey::Stopped);
    assert_eq!(
        after.journey_stopped_reason(),
        Some("SIGNATORY_DELIVERY_FAILED")
    );
    let stopped = transition
        .entries
        .iter()
        .find(|e| e.entry_type == EntryType::CustomerJourneyStopped)
        .expect("the journey stop is published");
    assert_eq!(stopped.journey, Journey::Stopped);

    // The others may still sign; the journey stays stopped and is not stopped a second time.
    let signed_p1 = changed(on_event(after, &signed("p1"), minutes(95)));
    assert_eq!(
        entry_types(&signed_p1.entries),
        [EntryType::ParticipantSigned]
    );
    assert_eq!(signed_p1.agreement.journey(), Journey::Stopped);
    let second = changed(on_event(
        &signed_p1.agreement,
        &delivery_failed("p2"),
        minutes(96),
    ));
    assert_eq!(
        entry_types(&second.entries),
        [EntryType::ParticipantDeliveryFailed],
        "the journey was already stopped"
    );
    // With a participant who can never sign, the agreement is not fulfilled.
    assert_eq!(second.agreement.status, Status::Pending);
}

// ---------------------------------------------------------------- ignored events

#[test]
fn events_for_a_final_participant_are_ignored() {
    let mut agreement = pending();
    agreement = apply_event(&agreement, &signed("p1"));
    agreement = apply_event(&agreement, &delivery_failed("p2"));
    for (id, status) in [
        ("p1", ParticipantStatus::SignatureComplete),
        ("p2", ParticipantStatus::SignatoryDeliveryFailed),
    ] {
        for event in [
            signed(id),
            refused(id),
            delivery_failed(id),
            identity_check_failed(id),
        ] {
            let decision = on_event(&agreement, &event, minutes(120));
            if let Decision::Ignored { reason, .. } = &decision {
                assert_eq!(
                    *reason,
                    IgnoreReason::ParticipantFinal {
                        participant_id: id.to_owned(),
                        status
                    }
                );
            }
            assert_ignored(&agreement, &event, decision, id);
        }
    }
}

#[test]
fn events_for_an_unknown_participant_are_ignored() {
    let agreement = pending();
    for event in [
        signed("nobody"),
        refused("nobody"),
        delivery_failed("nobody"),
        identity_check_failed("nobody"),
    ] {
        let decision = on_event(&agreement, &event, minutes(120));
        if let Decision::Ignored { reason, .. } = &decision {
            assert_eq!(
                *reason,
                IgnoreReason::UnknownParticipant("nobody".to_owned())
            );
        }
        assert_ignored(&agreement, &event, decision, "unknown participant");
    }
}

#[test]
fn an_unusable_event_is_ignored_with_its_problem_as_the_reason() {
    let agreement = pending();
    let event = unusable();
    let (transition, reason) = ignored(on_event(&agreement, &event, minutes(120)));
    let ProviderEventKind::Unusable { problem, .. } = &event.kind else {
        unreachable!()
    };
    assert!(matches!(reason, IgnoreReason::Unusable { .. }));
    assert!(transition.entries[0]
        .reason
        .as_deref()
        .unwrap()
        .contains(problem.as_str()));
}

#[test]
fn a_refusal_refuses_the_agreement_and_later_events_are_ignored() {
    let transition = changed(on_event(&pending(), &refused("p2"), minutes(90)));
    let after = &transition.agreement;
    assert_eq!(after.status, Status::Refused);
    assert_eq!(
        after.signature_status(),
        Some(SignatureStatus::SignatureRefused)
    );
    assert_eq!(after.journey(), Journey::Stopped);
    assert_eq!(status_of(after, "p2"), ParticipantStatus::SignatureRefused);
    assert_eq!(
        entry_types(&transition.entries),
        [EntryType::ParticipantRefused, EntryType::AgreementRefused]
    );
    assert_eq!(transition.entries[0].participant_id.as_deref(), Some("p2"));
    // The others keep SIGNATURE_PENDING; their own events no longer apply.
    assert_eq!(status_of(after, "p1"), ParticipantStatus::SignaturePending);
    let late = signed("p1");
    let (_, reason) = ignored(on_event(after, &late, minutes(95)));
    assert_eq!(reason, IgnoreReason::AgreementNotPending(Status::Refused));
}

#[test]
fn a_fulfilled_agreement_records_its_signed_document_once() {
    let agreement = fulfilled();
    let first = changed(on_event(&agreement, &signed_document(), minutes(300)));
    assert_eq!(first.agreement.status, Status::Fulfilled);
    assert_eq!(first.agreement.completed_at, agreement.completed_at);
    // Only the document and the write's bookkeeping moved.
    let mut expected = agreement.clone();
    expected.documents.signed_document = Some(signed_file());
    expected.version = first.agreement.version;
    expected.history_len = first.agreement.history_len;
    expected.published_len = first.agreement.published_len;
    expected.updated_at = first.agreement.updated_at;
    assert_eq!(first.agreement, expected);

    // The same document delivered again is no change: no new version.
    let again = signed_document();
    let decision = on_event(&first.agreement, &again, minutes(310));
    assert!(
        matches!(
            &decision,
            Decision::Ignored {
                reason: IgnoreReason::SignedDocumentAlreadyRecorded,
                ..
            }
        ),
        "{decision:?}"
    );
    assert_ignored(
        &first.agreement,
        &again,
        decision,
        "same signed document again",
    );
}

// ---------------------------------------------------------------- provider of record

fn from_provider(provider: &str, event: ProviderEvent) -> ProviderEvent {
    ProviderEvent {
        provider: provider.to_owned(),
        ..event
    }
}

fn sandbox_input() -> countersign_domain::AgreementInput {
    countersign_domain::AgreementInput {
        test_mode: Some(true),
        ..ready_input()
    }
}

#[test]
fn the_provider_of_record_is_fixed_at_creation_from_test_mode() {
    let live = draft();
    assert!(!live.test_mode);
    assert_eq!(live.provider.name, rules().providers.live);
    assert_eq!(live.provider.reference, None);
    let test = create(sandbox_input());
    assert_eq!(test.provider.name, "sandbox");

    let routed = Rules {
        providers: countersign_domain::ProviderRouting {
            test_mode: "zigned".to_owned(),
            live: "zigned".to_owned(),
        },
        ..Rules::default()
    };
    let to_zigned_test = Agreement::create(
        "agr2".to_owned(),
        "tenant-a".to_owned(),
        sandbox_input(),
        t0(),
        &routed,
        &mut Ids::new(),
    )
    .unwrap()
    .agreement;
    assert_eq!(to_zigned_test.provider.name, "zigned");
}

#[test]
fn an_event_from_another_provider_than_the_agreements_changes_nothing() {
    // Every kind of event, on a live agreement and on a test-mode one, from the wrong provider.
    for agreement in [pending(), pending_from(sandbox_input())] {
        let wrong = if agreement.provider.name == "sandbox" {
            "zigned"
        } else {
            "sandbox"
        };
        for ev in [
            Ev::Signed,
            Ev::Refused,
            Ev::DeliveryFailed,
            Ev::IdentityCheckFailed,
            Ev::SignedDocument,
            Ev::AgreementFailed,
            Ev::Unusable,
        ] {
            let event = from_provider(wrong, make(ev));
            match on_event(&agreement, &event, minutes(40)) {
                Decision::Ignored { transition, reason } => {
                    assert_eq!(
                        reason,
                        IgnoreReason::NotItsProvider {
                            provider: wrong.to_owned(),
                            provider_of_record: agreement.provider.name.clone(),
                        },
                        "{ev:?}"
                    );
                    assert_eq!(transition.agreement.version, agreement.version);
                    assert_eq!(transition.agreement.status, agreement.status);
                    assert_eq!(transition.agreement.participants, agreement.participants);
                    assert_eq!(transition.entries.len(), 1);
                    assert_eq!(
                        transition.entries[0].entry_type,
                        EntryType::ProviderEventIgnored
                    );
                }
                other => panic!("{ev:?} from {wrong}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_sandbox_never_moves_a_live_agreement_even_as_its_provider_of_record() {
    // A misconfiguration that routes live agreements to the sandbox still cannot let the
    // sandbox's (development) secret complete a live agreement.
    let misrouted = Rules {
        providers: countersign_domain::ProviderRouting {
            test_mode: "sandbox".to_owned(),
            live: "sandbox".to_owned(),
        },
        ..Rules::default()
    };
    let live = Agreement::create(
        "agr3".to_owned(),
        "tenant-a".to_owned(),
        ready_input(),
        t0(),
        &misrouted,
        &mut Ids::new(),
    )
    .unwrap()
    .agreement;
    let live = send(&live);
    assert_eq!(live.provider.name, "sandbox");
    match live.decide_provider_event(
        &from_provider("sandbox", signed("p1")),
        &misrouted,
        minutes(40),
    ) {
        Decision::Ignored { reason, transition } => {
            assert_eq!(reason, IgnoreReason::SandboxOnLiveAgreement);
            assert_eq!(transition.agreement.version, live.version);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_provider_of_record_survives_a_stored_record_without_it_as_no_provider() {
    // Records written before the field existed read back with no provider: nothing matches them.
    let mut json = serde_json::to_value(pending()).unwrap();
    json.as_object_mut().unwrap().remove("provider");
    let old: Agreement = serde_json::from_value(json).unwrap();
    assert_eq!(old.provider.name, "");
    assert!(matches!(
        on_event(&old, &signed("p1"), minutes(40)),
        Decision::Ignored {
            reason: IgnoreReason::NotItsProvider { .. },
            ..
        }
    ));
}
