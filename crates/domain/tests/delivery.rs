//! The provider's delivery of a round (SPEC section 9): recorded once, for the round it was
//! made for, and a round that cannot be delivered fails the agreement.

mod support;

use countersign_domain::{Decision, Delivery, EntryType, Status};
use support::*;

fn delivery() -> Delivery {
    Delivery {
        reference: Some("za-1".to_owned()),
        participants: [("p1", "zp-1"), ("p2", "zp-2"), ("p3", "zp-3")]
            .into_iter()
            .map(|(id, reference)| (id.to_owned(), reference.to_owned()))
            .collect(),
        signing_room_urls: Default::default(),
    }
}

#[test]
fn the_delivery_records_the_references_once_as_a_published_change() {
    let sent = pending();
    let round = sent.sent_at.expect("a pending agreement was sent");
    assert!(sent.awaits_delivery());
    let transition = changed(sent.decide_delivered(round, &delivery(), minutes(300)));
    let after = &transition.agreement;
    assert_eq!(
        entry_types(&transition.entries),
        [EntryType::AgreementDeliveredToProvider]
    );
    assert_eq!(after.version, sent.version + 1);
    assert_eq!(after.provider.reference.as_deref(), Some("za-1"));
    assert_eq!(
        after
            .participant("p2")
            .and_then(|p| p.provider_reference.as_deref()),
        Some("zp-2")
    );
    assert!(!after.awaits_delivery());
    assert_eq!(
        after.decide_delivered(round, &delivery(), minutes(301)),
        Decision::Unchanged
    );
}

#[test]
fn a_delivery_of_another_round_or_of_an_ended_one_changes_nothing() {
    let sent = pending();
    let round = sent.sent_at.unwrap();
    let earlier = round - chrono::Duration::minutes(1);
    assert_eq!(
        sent.decide_delivered(earlier, &delivery(), minutes(300)),
        Decision::Unchanged
    );
    let reopened = open();
    assert!(!reopened.awaits_delivery());
    assert_eq!(
        reopened.decide_delivered(round, &delivery(), minutes(300)),
        Decision::Unchanged
    );
    let ended = fulfilled();
    assert_eq!(
        ended.decide_delivered(round, &delivery(), minutes(300)),
        Decision::Unchanged
    );
}

#[test]
fn reopening_forgets_the_participant_references_of_the_round() {
    let sent = pending();
    let round = sent.sent_at.unwrap();
    let delivered = apply(
        &sent,
        sent.decide_delivered(round, &delivery(), minutes(300)),
    );
    let reopened = apply_result(
        &delivered,
        delivered.decide_lifecycle(countersign_domain::LifecycleRequest::Open, minutes(301)),
    );
    assert!(reopened
        .participants
        .iter()
        .all(|p| p.provider_reference.is_none()));
    assert_eq!(
        reopened.provider.reference.as_deref(),
        Some("za-1"),
        "the provider's agreement is reused"
    );
}

#[test]
fn an_undeliverable_round_fails_the_agreement_with_the_reason() {
    let sent = pending();
    let round = sent.sent_at.unwrap();
    let reason = "document `main` (lease.pdf) does not match its sha256";
    let transition = changed(sent.decide_delivery_failed(round, reason, minutes(300)));
    assert_eq!(transition.agreement.status, Status::Failed);
    assert_eq!(
        entry_types(&transition.entries),
        [EntryType::AgreementFailed]
    );
    assert_eq!(transition.entries[0].reason.as_deref(), Some(reason));
    let failed = transition.agreement;
    assert_eq!(
        failed.decide_delivery_failed(round, reason, minutes(301)),
        Decision::Unchanged
    );
}
