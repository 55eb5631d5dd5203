//! SPEC section 2 (expiry), section 6 (sandbox expire) and the edit rules of sections 1 and 3
//! (editable while `draft` or `open`, IBAN checked wherever submitted, `test_mode` fixed).

mod support;

use chrono::Duration;
use countersign_domain::{
    Agreement, AgreementInput, Decision, DomainError, EntryType, IssueCode, Journey,
    LifecycleRequest, ParticipantStatus, SignatureStatus, Status,
};
use support::*;

fn test_mode_input() -> AgreementInput {
    AgreementInput {
        test_mode: Some(true),
        ..ready_input()
    }
}

// ---------------------------------------------------------------- expiry

#[test]
fn a_pending_agreement_is_not_expired_before_expires_at() {
    let agreement = pending();
    let expires_at = agreement.expires_at.unwrap();
    for now in [
        agreement.sent_at.unwrap(),
        expires_at - Duration::days(1),
        expires_at - Duration::seconds(1),
    ] {
        assert_eq!(agreement.decide_expiry(now), Decision::Unchanged, "{now}");
    }
}

#[test]
fn a_pending_agreement_past_expires_at_expires() {
    let agreement = pending();
    let now = agreement.expires_at.unwrap() + Duration::seconds(1);
    let transition = changed(agreement.decide_expiry(now));
    let after = &transition.agreement;
    assert_eq!(after.status, Status::Expired);
    assert_eq!(
        after.signature_status(),
        Some(SignatureStatus::SignatureExpired)
    );
    assert_eq!(after.journey(), Journey::Stopped);
    assert_eq!(
        entry_types(&transition.entries),
        [EntryType::AgreementExpired]
    );
    assert_eq!(after.version, agreement.version + 1);
    assert_eq!(transition.entries[0].version, after.version);
    assert_eq!(
        transition.entries[0].event_sequence,
        Some(agreement.published_len + 1)
    );
    assert_eq!(after.updated_at, now);
    assert_eq!(after.completed_at, None);
    // Long overdue is just as expired.
    let late = changed(agreement.decide_expiry(now + Duration::days(400)));
    assert_eq!(late.agreement.status, Status::Expired);
}

#[test]
fn only_pending_agreements_expire() {
    let far_future = t0() + Duration::days(3650);
    for status in Status::ALL {
        if status == Status::Pending {
            continue;
        }
        let agreement = in_status(status);
        assert_eq!(
            agreement.decide_expiry(far_future),
            Decision::Unchanged,
            "{status}"
        );
    }
}

#[test]
fn a_reopened_agreement_does_not_expire_on_its_old_date() {
    let pending = pending();
    let old_expiry = pending.expires_at.unwrap();
    let reopened = lifecycle(&pending, LifecycleRequest::Open, minutes(20));
    assert_eq!(
        reopened.decide_expiry(old_expiry + Duration::days(1)),
        Decision::Unchanged
    );
}

#[test]
fn participants_keep_their_statuses_on_expiry() {
    let mut agreement = pending();
    agreement = apply_event(&agreement, &signed("p1"));
    agreement = apply_event(&agreement, &delivery_failed("p2"));
    agreement = apply_event(&agreement, &identity_check_failed("p3"));
    let before = agreement.participants.clone();
    let expired =
        changed(agreement.decide_expiry(agreement.expires_at.unwrap() + Duration::hours(1)))
            .agreement;
    assert_eq!(expired.status, Status::Expired);
    assert_eq!(expired.participants, before);
    assert_eq!(
        participant_statuses(&expired),
        [
            ParticipantStatus::SignatureComplete,
            ParticipantStatus::SignatoryDeliveryFailed,
            ParticipantStatus::SignaturePending
        ]
    );
}

// ---------------------------------------------------------------- sandbox expire

#[test]
fn sandbox_expire_moves_expires_at_to_now_and_the_next_sweep_expires() {
    let agreement = reach(test_mode_input(), Status::Pending);
    assert!(agreement.test_mode);
    let now = minutes(60);
    assert!(agreement.expires_at.unwrap() > now);
    let transition = changed(agreement.decide_sandbox_expire(now).unwrap());
    let moved = &transition.agreement;
    assert_eq!(moved.expires_at, Some(now));
    assert_eq!(moved.status, Status::Pending, "the sweep does the expiring");
    assert_eq!(moved.version, agreement.version + 1);
    assert!(transition
        .entries
        .iter()
        .all(|e| e.event_sequence.is_some()));

    let swept = changed(moved.decide_expiry(now + Duration::seconds(1))).agreement;
    assert_eq!(swept.status, Status::Expired);
}

#[test]
fn sandbox_expire_needs_test_mode() {
    let agreement = pending();
    assert!(!agreement.test_mode);
    assert_eq!(
        agreement.decide_sandbox_expire(minutes(60)),
        Err(DomainError::NotInTestMode)
    );
}

#[test]
fn sandbox_expire_needs_a_pending_agreement() {
    for status in Status::ALL {
        if status == Status::Pending {
            continue;
        }
        let agreement = reach(test_mode_input(), status);
        assert!(agreement.test_mode);
        assert!(
            agreement.decide_sandbox_expire(minutes(600)).is_err(),
            "{status}"
        );
    }
}

// ---------------------------------------------------------------- edit

fn renamed(agreement: &Agreement) -> AgreementInput {
    let mut input = agreement.editable_input();
    input.participants[0].name = Some("Augusta Ada King".to_owned());
    input
}

#[test]
fn draft_and_open_agreements_are_editable() {
    for status in [Status::Draft, Status::Open] {
        let agreement = in_status(status);
        let now = minutes(600);
        let transition = changed(
            agreement
                .decide_edit(renamed(&agreement), now, &rules(), &mut Ids::new())
                .unwrap(),
        );
        let after = &transition.agreement;
        assert_eq!(after.status, status);
        assert_eq!(
            after.participant("p1").unwrap().name.as_deref(),
            Some("Augusta Ada King")
        );
        assert_eq!(after.version, agreement.version + 1);
        assert_eq!(after.updated_at, now);
        assert_eq!(
            entry_types(&transition.entries),
            [EntryType::AgreementUpdated]
        );
        assert_eq!(transition.entries[0].version, after.version);
        assert_eq!(
            transition.entries[0].event_sequence,
            Some(agreement.published_len + 1)
        );
    }
}

#[test]
fn no_other_status_is_editable() {
    for status in Status::ALL {
        if matches!(status, Status::Draft | Status::Open) {
            continue;
        }
        let agreement = in_status(status);
        assert_eq!(
            agreement.decide_edit(renamed(&agreement), minutes(600), &rules(), &mut Ids::new()),
            Err(DomainError::NotEditable { status }),
            "{status}"
        );
    }
}

#[test]
fn editing_with_the_editable_input_is_no_change() {
    let mut generated_ids = ready_input();
    for participant in &mut generated_ids.participants {
        participant.id = None;
    }
    generated_ids
        .documents
        .as_mut()
        .unwrap()
        .main
        .as_mut()
        .unwrap()
        .id = None;
    let mut spaced_iban = ready_input();
    spaced_iban
        .contract
        .as_mut()
        .unwrap()
        .bank_information
        .as_mut()
        .unwrap()
        .iban = Some("de89 3704 0044 0532 0130 00".to_owned());
    spaced_iban.signing_order = Some(countersign_domain::SigningOrder {
        enabled: true,
        grouped: true,
    });
    spaced_iban.expires_in_days = Some(30);

    let agreements = [
        draft(),
        open(),
        create(generated_ids),
        create(spaced_iban),
        create(AgreementInput::default()),
    ];
    for agreement in agreements {
        let decision = agreement
            .decide_edit(
                agreement.editable_input(),
                minutes(600),
                &rules(),
                &mut Ids::new(),
            )
            .unwrap();
        assert_eq!(decision, Decision::Unchanged, "{:?}", agreement.status);
    }
}

#[test]
fn generated_ids_are_kept_by_the_editable_input() {
    let mut input = ready_input();
    input.participants[1].id = None;
    let agreement = create(input);
    let generated = agreement.participants[1].id.clone();
    assert!(!["p1", "p3"].contains(&generated.as_str()));
    let edited = changed(
        agreement
            .decide_edit(renamed(&agreement), minutes(600), &rules(), &mut Ids::new())
            .unwrap(),
    )
    .agreement;
    assert_eq!(edited.participants[1].id, generated);
}

#[test]
fn test_mode_is_fixed_at_creation() {
    let agreement = draft();
    assert!(!agreement.test_mode);
    let mut input = agreement.editable_input();
    input.test_mode = Some(true);
    match agreement.decide_edit(input, minutes(600), &rules(), &mut Ids::new()) {
        Err(DomainError::Invalid(issues)) => {
            assert!(issues
                .iter()
                .any(|i| i.code == IssueCode::ValidationFailed && i.field == "test_mode"));
        }
        other => panic!("expected VALIDATION_FAILED, got {other:?}"),
    }
    // Restating the same test_mode is no change.
    let mut same = agreement.editable_input();
    same.test_mode = Some(false);
    assert_eq!(
        agreement.decide_edit(same, minutes(600), &rules(), &mut Ids::new()),
        Ok(Decision::Unchanged)
    );
}

fn with_iban(mut input: AgreementInput, iban: &str) -> AgreementInput {
    input
        .contract
        .as_mut()
        .unwrap()
        .bank_information
        .as_mut()
        .unwrap()
        .iban = Some(iban.to_owned());
    input
}

fn assert_iban_rejected(result: Result<impl std::fmt::Debug, DomainError>) {
    match result {
        Err(DomainError::Invalid(issues)) => {
            assert!(
                issues.iter().any(|i| i.code == IssueCode::ValidationFailed
                    && i.field == "contract.bank_information.iban"),
                "{issues:?}"
            );
        }
        other => panic!("expected VALIDATION_FAILED on the IBAN, got {other:?}"),
    }
}

#[test]
fn an_iban_failing_mod_97_is_rejected_wherever_it_is_submitted() {
    for status in [Status::Draft, Status::Open] {
        let agreement = in_status(status);
        let mut ids = Ids::new();
        let input = with_iban(agreement.editable_input(), BAD_IBAN);
        assert_iban_rejected(agreement.decide_edit(input, minutes(600), &rules(), &mut ids));
        assert_eq!(ids.issued(), 0, "a rejected edit makes nothing");
    }
    assert_iban_rejected(countersign_domain::Agreement::create(
        "agr2".to_owned(),
        "tenant-a".to_owned(),
        with_iban(ready_input(), BAD_IBAN),
        t0(),
        &rules(),
        &mut Ids::new(),
    ));
    // Garbage is rejected too, and a valid IBAN in any spacing is accepted.
    assert_iban_rejected(draft().decide_edit(
        with_iban(ready_input(), "NOT-AN-IBAN"),
        minutes(600),
        &rules(),
        &mut Ids::new(),
    ));
    let accepted = changed(
        draft()
            .decide_edit(
                with_iban(ready_input(), "GB82 WEST 1234 5698 7654 32"),
                minutes(600),
                &rules(),
                &mut Ids::new(),
            )
            .unwrap(),
    )
    .agreement;
    assert_eq!(
        accepted
            .contract
            .unwrap()
            .bank_information
            .unwrap()
            .iban
            .as_deref(),
        Some("GB82WEST12345698765432")
    );
}

#[test]
fn expires_in_days_is_between_1_and_365() {
    let agreement = draft();
    for (days, valid) in [(0, false), (1, true), (365, true), (366, false)] {
        let mut input = agreement.editable_input();
        input.expires_in_days = Some(days);
        let result = agreement.decide_edit(input, minutes(600), &rules(), &mut Ids::new());
        match (valid, result) {
            (true, Ok(_)) => {}
            (false, Err(DomainError::Invalid(issues))) => {
                assert!(issues.iter().any(|i| i.field == "expires_in_days"));
            }
            (_, other) => panic!("{days} days: {other:?}"),
        }
    }
}

#[test]
fn an_edit_while_open_is_what_the_next_pending_sends() {
    let agreement = open();
    let mut input = agreement.editable_input();
    input.expires_in_days = Some(10);
    let edited = changed(
        agreement
            .decide_edit(input, minutes(600), &rules(), &mut Ids::new())
            .unwrap(),
    )
    .agreement;
    assert_eq!(edited.status, Status::Open);
    let now = minutes(700);
    let resent = lifecycle(&edited, LifecycleRequest::Pending, now);
    assert_eq!(resent.expires_at, Some(now + Duration::days(10)));
}
