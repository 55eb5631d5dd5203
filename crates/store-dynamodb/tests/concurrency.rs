//! Conflicting changes on DynamoDB (moto), through the services: 32 tokio tasks released at once
//! against the same agreements. Every signer signs at once (each event delivered twice); a cancel
//! races the last signature; sweepers race refusals. Each accepted change is applied exactly
//! once and nothing is lost, terminal states hold, histories stay gapless, and retries stay
//! within the service's `RetryPolicy` (a delivery that exhausts it is redelivered, as SQS would,
//! a bounded number of times).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Duration;
use countersign_domain::{
    CancellationReason, DomainError, EntryType, HistoryEntry, LifecycleRequest, ParticipantStatus,
    Status,
};
use countersign_provider::VerifiedEvent;
use countersign_service::{CallbackOutcome, ServiceError};
use countersign_store::{AgreementGet, HistoryRead};
use support::{provider_event, Services};
use tokio::sync::Barrier;

const TASKS: usize = 32;
/// Deliveries of one event before it would be dead-lettered (each delivery retries conflicts up
/// to the service's `RetryPolicy::max_attempts`).
const MAX_RECEIVES: u32 = 5;

/// Delivers an event like the callback queue: redelivered while the service gives up on
/// contention, at most `MAX_RECEIVES` times. Returns the outcome and the deliveries it took.
async fn deliver(services: &Services, event: &VerifiedEvent) -> (CallbackOutcome, u32) {
    for receive in 1..=MAX_RECEIVES {
        match services.callbacks.process(event).await {
            Ok(outcome) => return (outcome, receive),
            Err(ServiceError::Contention) => continue,
            Err(other) => panic!("event {}: {other:?}", event.event_id),
        }
    }
    panic!(
        "event {} would be dead-lettered after {MAX_RECEIVES} deliveries",
        event.event_id
    );
}

/// The history is gapless from 1 and matches the agreement's counters.
fn assert_gapless(id: &str, version: u64, history_len: u64, entries: &[HistoryEntry]) {
    let sequences: Vec<u64> = entries.iter().map(|entry| entry.sequence).collect();
    assert_eq!(
        sequences,
        (1..=entries.len() as u64).collect::<Vec<_>>(),
        "{id}: sequences"
    );
    assert_eq!(history_len, entries.len() as u64, "{id}: history_len");
    let published: Vec<u64> = entries
        .iter()
        .filter_map(|entry| entry.event_sequence)
        .collect();
    assert_eq!(
        published,
        (1..=published.len() as u64).collect::<Vec<_>>(),
        "{id}: published sequences"
    );
    assert_eq!(
        entries.last().map(|entry| entry.version),
        Some(version),
        "{id}: the last entry carries the version"
    );
}

fn count(entries: &[HistoryEntry], entry_type: EntryType) -> usize {
    entries
        .iter()
        .filter(|entry| entry.entry_type == entry_type)
        .count()
}

/// Entries recorded for a provider event id, by type.
fn by_event<'a>(entries: &'a [HistoryEntry], event_id: &str) -> BTreeMap<&'a str, usize> {
    let mut types = BTreeMap::new();
    for entry in entries
        .iter()
        .filter(|entry| entry.provider_event_id.as_deref() == Some(event_id))
    {
        *types.entry(entry.entry_type.as_str()).or_insert(0) += 1;
    }
    types
}

/// Bounded retries: the writes stay within what the retry policy allows the deliveries made.
fn assert_bounded(services: &Services, deliveries: u64, receives: u64, what: &str) {
    let counts = services.counter.snapshot();
    let writes = counts.requests("TransactWriteItems");
    // A delivery may commit up to max_attempts times, then as many for a duplicate's record.
    let allowed = receives * 2 * u64::from(services.retry.max_attempts);
    eprintln!(
        "{what}: {deliveries} deliveries took {receives} receives, {} requests \
         ({writes} TransactWriteItems, {} GetItem); at most {allowed} writes allowed",
        counts.total_requests(),
        counts.requests("GetItem"),
    );
    assert!(writes <= allowed, "{what}: {writes} writes > {allowed}");
}

/// Every signer of one agreement signs at once, and every signature is delivered twice: 32
/// tasks. Each signature is applied once, each second delivery is a recorded duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_signer_signs_at_once() {
    const SIGNERS: usize = TASKS / 2;
    let services = Arc::new(Services::new("storm").await);
    let id = services.pending("tenant", SIGNERS, 30).await;
    services.counter.reset();

    let barrier = Arc::new(Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let participant = format!("p{}", task % SIGNERS + 1);
            let event = provider_event(
                "participant.signed",
                &id,
                &participant,
                &format!("sig-{participant}"),
            );
            let (services, barrier) = (services.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let (outcome, receives) = deliver(&services, &event).await;
                (participant, outcome, receives)
            })
        })
        .collect();
    let mut per_participant: HashMap<String, Vec<CallbackOutcome>> = HashMap::new();
    let mut receives = 0;
    for task in tasks {
        let (participant, outcome, took) = task.await.expect("task");
        receives += u64::from(took);
        per_participant
            .entry(participant)
            .or_default()
            .push(outcome);
    }
    assert_eq!(per_participant.len(), SIGNERS);
    for (participant, outcomes) in &per_participant {
        let applied = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, CallbackOutcome::Applied { .. }))
            .count();
        let duplicates = outcomes
            .iter()
            .filter(|outcome| **outcome == CallbackOutcome::Duplicate)
            .count();
        assert_eq!((applied, duplicates), (1, 1), "{participant}: {outcomes:?}");
    }

    let agreement = services.store.get_agreement(&id).await.unwrap().unwrap();
    assert_eq!(agreement.status, Status::Fulfilled);
    assert_eq!(
        agreement.version,
        2 + SIGNERS as u64,
        "one version per signature"
    );
    assert!(agreement
        .participants
        .iter()
        .all(|participant| participant.status == ParticipantStatus::SignatureComplete));
    let entries = services.store.history(&id).await.unwrap();
    assert_gapless(&id, agreement.version, agreement.history_len, &entries);
    // Created, sent, invited, one signature each, fulfilled, one duplicate each.
    assert_eq!(entries.len(), 3 + SIGNERS + 1 + SIGNERS);
    assert_eq!(count(&entries, EntryType::ParticipantSigned), SIGNERS);
    assert_eq!(count(&entries, EntryType::AgreementFulfilled), 1);
    assert_eq!(count(&entries, EntryType::ProviderEventIgnored), SIGNERS);
    for signer in 1..=SIGNERS {
        let types = by_event(&entries, &format!("sig-p{signer}"));
        assert_eq!(
            types.get("ParticipantSigned"),
            Some(&1),
            "p{signer}: {types:?}"
        );
        assert_eq!(
            types.get("ProviderEventIgnored"),
            Some(&1),
            "p{signer}: {types:?}"
        );
    }
    assert_bounded(&services, TASKS as u64, receives, "signing storm");
}

/// A cancel races the last signature on each of 16 agreements: 32 tasks. Each agreement ends
/// either cancelled (the signature recorded as ignored) or fulfilled (the cancel refused), never
/// both, and stays so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_races_the_last_signature() {
    const AGREEMENTS: usize = TASKS / 2;
    let services = Arc::new(Services::new("cancel-race").await);
    let mut ids = Vec::new();
    for i in 0..AGREEMENTS {
        let id = services.pending("tenant", 2, 30).await;
        let first = provider_event("participant.signed", &id, "p1", &format!("first-{i}"));
        deliver(&services, &first).await;
        ids.push(id);
    }
    services.counter.reset();

    let barrier = Arc::new(Barrier::new(TASKS));
    let mut cancels = Vec::new();
    let mut signatures = Vec::new();
    for id in &ids {
        let (services_c, barrier_c, id_c) = (services.clone(), barrier.clone(), id.clone());
        cancels.push(tokio::spawn(async move {
            barrier_c.wait().await;
            services_c
                .agreements
                .lifecycle(
                    "tenant",
                    &id_c,
                    LifecycleRequest::Cancelled(CancellationReason::InvalidEmail),
                    None,
                    None,
                )
                .await
                .map(|answer| answer.agreement().expect("no key: nothing replayed").status)
        }));
        let (services_s, barrier_s) = (services.clone(), barrier.clone());
        let event = provider_event("participant.signed", id, "p2", &format!("last-{id}"));
        signatures.push(tokio::spawn(async move {
            barrier_s.wait().await;
            deliver(&services_s, &event).await
        }));
    }

    let mut receives = AGREEMENTS as u64;
    let (mut cancelled, mut fulfilled) = (0, 0);
    for ((id, cancel), signature) in ids.iter().zip(cancels).zip(signatures) {
        let cancel = cancel.await.expect("task");
        let (signature, took) = signature.await.expect("task");
        receives += u64::from(took);
        let agreement = services.store.get_agreement(id).await.unwrap().unwrap();
        let entries = services.store.history(id).await.unwrap();
        assert_gapless(id, agreement.version, agreement.history_len, &entries);
        match (&cancel, &signature) {
            (Ok(Status::Cancelled), CallbackOutcome::Ignored { .. }) => {
                cancelled += 1;
                assert_eq!(agreement.status, Status::Cancelled);
                assert_eq!(count(&entries, EntryType::AgreementCancelled), 1);
                assert_eq!(count(&entries, EntryType::AgreementFulfilled), 0);
                // The late signature is recorded, not applied.
                let types = by_event(&entries, &format!("last-{id}"));
                assert_eq!(types, BTreeMap::from([("ProviderEventIgnored", 1)]), "{id}");
            }
            (
                Err(ServiceError::Domain(DomainError::InvalidTransition { .. })),
                CallbackOutcome::Applied { .. },
            ) => {
                fulfilled += 1;
                assert_eq!(agreement.status, Status::Fulfilled);
                assert_eq!(count(&entries, EntryType::AgreementFulfilled), 1);
                assert_eq!(count(&entries, EntryType::AgreementCancelled), 0);
            }
            other => panic!("{id}: cancel and signature disagree: {other:?}"),
        }
        // Created, sent, invited, p1 signed, then the cancel or the signature: version 4.
        assert_eq!(agreement.version, 4, "{id}");

        // Terminal holds: a refusal and another cancel change nothing.
        let refusal = provider_event("participant.refused", id, "p2", &format!("after-{id}"));
        let (outcome, _) = deliver(&services, &refusal).await;
        assert!(
            matches!(outcome, CallbackOutcome::Ignored { .. }),
            "{outcome:?}"
        );
        let again = services
            .agreements
            .lifecycle(
                "tenant",
                id,
                LifecycleRequest::Cancelled(CancellationReason::InvalidEmail),
                None,
                None,
            )
            .await;
        assert!(
            matches!(
                again,
                Err(ServiceError::Domain(DomainError::InvalidTransition { .. }))
            ),
            "{again:?}"
        );
        let after = services.store.get_agreement(id).await.unwrap().unwrap();
        assert_eq!(
            (after.status, after.version),
            (agreement.status, agreement.version)
        );
    }
    eprintln!("cancel race: {cancelled} cancelled, {fulfilled} fulfilled");
    assert_eq!(cancelled + fulfilled, AGREEMENTS);
    assert_bounded(&services, TASKS as u64, receives, "cancel race");
}

/// Four sweepers race a refusal on each of 28 due agreements: 32 tasks. Each agreement ends
/// expired (by exactly one sweeper, the refusal recorded as ignored) or refused (the sweepers
/// skip it), never both, and stays so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweepers_race_refusals() {
    const SWEEPERS: usize = 4;
    const AGREEMENTS: usize = TASKS - SWEEPERS;
    let services = Arc::new(Services::new("sweep-race").await);
    let mut ids = Vec::new();
    for _ in 0..AGREEMENTS {
        ids.push(services.pending("tenant", 1, 1).await);
    }
    services
        .clock
        .advance(Duration::days(2) + Duration::minutes(1));
    services.counter.reset();

    let barrier = Arc::new(Barrier::new(TASKS));
    let sweepers: Vec<_> = (0..SWEEPERS)
        .map(|_| {
            let (services, barrier) = (services.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                // Small pages, so the sweepers interleave with the refusals.
                services.sweeper(5).sweep(None).await.expect("sweep")
            })
        })
        .collect();
    // The sweepers expire oldest first; the refusals come in newest first, one every 25 ms, so
    // the two meet somewhere in the middle: the agreements before that point expire, those after
    // it are refused, and around it the two collide.
    let refusals: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (services, barrier) = (services.clone(), barrier.clone());
            let event = provider_event("participant.refused", id, "p1", &format!("refuse-{id}"));
            let stagger = std::time::Duration::from_millis(25 * (AGREEMENTS - 1 - i) as u64);
            tokio::spawn(async move {
                barrier.wait().await;
                tokio::time::sleep(stagger).await;
                deliver(&services, &event).await
            })
        })
        .collect();

    let (mut expired_by_sweepers, mut skipped) = (0, 0);
    for sweeper in sweepers {
        let report = sweeper.await.expect("task");
        assert!(!report.stopped_at_deadline);
        expired_by_sweepers += report.expired;
        skipped += report.skipped;
    }
    let mut receives = SWEEPERS as u64;
    let (mut expired, mut refused) = (0, 0);
    for (id, refusal) in ids.iter().zip(refusals) {
        let (outcome, took) = refusal.await.expect("task");
        receives += u64::from(took);
        let agreement = services.store.get_agreement(id).await.unwrap().unwrap();
        let entries = services.store.history(id).await.unwrap();
        assert_gapless(id, agreement.version, agreement.history_len, &entries);
        match (&outcome, agreement.status) {
            (CallbackOutcome::Ignored { .. }, Status::Expired) => {
                expired += 1;
                assert_eq!(count(&entries, EntryType::AgreementExpired), 1, "{id}");
                assert_eq!(count(&entries, EntryType::AgreementRefused), 0, "{id}");
                let types = by_event(&entries, &format!("refuse-{id}"));
                assert_eq!(types, BTreeMap::from([("ProviderEventIgnored", 1)]), "{id}");
                // The participant keeps their status (SPEC section 2).
                assert_eq!(
                    agreement.participants[0].status,
                    ParticipantStatus::SignaturePending
                );
            }
            (CallbackOutcome::Applied { .. }, Status::Refused) => {
                refused += 1;
                assert_eq!(count(&entries, EntryType::AgreementRefused), 1, "{id}");
                assert_eq!(count(&entries, EntryType::AgreementExpired), 0, "{id}");
            }
            other => panic!("{id}: refusal and status disagree: {other:?}"),
        }
        // Created, sent, invited, then the expiry or the refusal: version 3.
        assert_eq!(agreement.version, 3, "{id}");
    }
    eprintln!("sweep race: {expired} expired, {refused} refused, {skipped} skipped by sweepers");
    assert_eq!(expired + refused, AGREEMENTS);
    assert_eq!(
        expired_by_sweepers, expired,
        "each expiry is counted by exactly one sweeper"
    );
    assert_bounded(&services, TASKS as u64, receives, "sweep race");

    // Terminal holds: another sweep finds nothing, a late refusal changes nothing.
    let report = services.sweeper(100).sweep(None).await.expect("sweep");
    assert_eq!((report.expired, report.skipped), (0, 0), "{report:?}");
    for id in &ids {
        let before = services.store.get_agreement(id).await.unwrap().unwrap();
        let late = provider_event("participant.refused", id, "p1", &format!("late-{id}"));
        let (outcome, _) = deliver(&services, &late).await;
        assert!(
            matches!(outcome, CallbackOutcome::Ignored { .. }),
            "{outcome:?}"
        );
        let after = services.store.get_agreement(id).await.unwrap().unwrap();
        assert_eq!(
            (after.status, after.version),
            (before.status, before.version)
        );
    }
}
