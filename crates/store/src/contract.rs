//! The store contract: what every store must guarantee, as one `pub async fn` per case, each
//! panicking on failure. `store_contract_tests!` turns them into `#[tokio::test]`s for a store.
//!
//! The cases only use the traits of [`crate::ports`], so the same suite runs unchanged against
//! the embedded store and against DynamoDB. They share nothing and assume nothing about what the
//! store already holds: every agreement id, tenant, idempotency key and provider event id is made
//! unique per call (clock, process id and a counter), so several runs may share one table, at the
//! same time, without cleanup. Each case works at its own timestamps, far apart, and only the
//! expiry case uses year-2000 expiry dates (and takes its agreements out of the pending index
//! before it returns), so the expiry pages it walks hold only what it made.
//!
//! Agreements and transitions come from the real domain (`Agreement::create`, `decide_*`), so the
//! store is exercised with exactly what the services commit.
//!
//! Listings and the expiry index may be eventually consistent (DynamoDB's global secondary
//! indexes are): before asserting on an index, a case waits until the index shows its own writes
//! ([`eventually`], at most [`INDEX_SETTLE`]). A store whose indexes are immediate, like the
//! embedded one, passes the first look, without waiting.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Duration, TimeZone, Utc};
use countersign_domain::input::{DocumentsInput, FileRefInput, ParticipantInput};
use countersign_domain::{
    Agreement, AgreementInput, BankInformation, CancellationReason, Contract, Decision, EntryType,
    HistoryEntry, IdSource, LifecycleRequest, Metadata, ParticipantRole, ParticipantStatus,
    ProviderEvent, ProviderEventKind, Rules, Status, Transition,
};
use futures_util::future::join_all;

use crate::ports::{
    CallbackInbox, Commit, CommitError, IdempotencyRecord, InboxEvent, ListPage, ListPosition,
    ListQuery, ProviderEventMark, ProviderProgress, ProviderProgressStore, Revision, Store,
};

/// Declares one `#[tokio::test]` per contract case, in a module `store_contract`, each running the
/// case against a fresh store from `$make` (an expression giving a future of the store, such as
/// `async { MemoryStore::new() }`). The calling crate needs `tokio` with `macros` and
/// `rt-multi-thread`.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        $crate::store_contract_tests!(@cases $make;
            create_then_get,
            transition_appends_history,
            stale_revision_is_refused,
            refused_commit_writes_nothing,
            provider_event_applied_once,
            idempotency_records,
            listing_pages_newest_first,
            expiry_index,
            concurrent_commits,
            inbox_keeps_each_event_once_until_applied,
            provider_progress_is_guarded_and_keyed,
            dispatch_lease_is_held_by_one_until_it_runs_out,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        mod store_contract {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let store = $make.await;
                    $crate::contract::$case(&store).await;
                }
            )*
        }
    };
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A name nobody else uses, in this run or another one sharing the store.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{nanos:x}-{:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `seconds` after the first instant of `year`. Each case has its own year.
fn time(year: i32, seconds: i64) -> DateTime<Utc> {
    let start = Utc
        .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
        .single()
        .expect("January 1st exists");
    start + Duration::seconds(seconds)
}

/// How long an index may take to show a case's writes (DynamoDB: usually well under a second).
pub const INDEX_SETTLE: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs `check` until it passes, pausing a little longer each time; fails the case with the last
/// complaint once [`INDEX_SETTLE`] has passed. For reads of eventually consistent indexes only:
/// what a strongly consistent read must show is asserted at once.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + INDEX_SETTLE;
    let mut pause = std::time::Duration::from_millis(20);
    loop {
        match check().await {
            Ok(()) => return,
            Err(complaint) if Instant::now() >= deadline => {
                panic!("{what}: still not so after {INDEX_SETTLE:?}: {complaint}")
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_millis(500));
            }
        }
    }
}

/// `Ok` when `actual` equals `expected`, else the difference, for [`eventually`].
fn same<T: PartialEq + std::fmt::Debug>(actual: T, expected: T) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!("got {actual:?}, expected {expected:?}"))
    }
}

/// Ids for files; participants get explicit ids `p1`, `p2`, ...
struct CountingIds(u64);

impl IdSource for CountingIds {
    fn new_id(&mut self) -> String {
        self.0 += 1;
        format!("file{}", self.0)
    }
}

/// Input complete enough to be sent for signature: `signers` signers `p1`.., bank information, a
/// main document; also what the stores' own tests build agreements from.
pub fn input(
    signers: usize,
    lookup_key: Option<&str>,
    expires_in_days: Option<u16>,
) -> AgreementInput {
    AgreementInput {
        participants: (1..=signers)
            .map(|i| ParticipantInput {
                id: Some(format!("p{i}")),
                name: Some(format!("Signer {i}")),
                email: Some(format!("signer{i}@example.com")),
                role: ParticipantRole::Signer,
                signing_group: 1,
            })
            .collect(),
        contract: Some(Contract {
            contract_id: Some("contract-1".to_owned()),
            proposal_id: Some("proposal-1".to_owned()),
            bank_information: Some(BankInformation {
                account_holder: Some("Ada Lovelace".to_owned()),
                iban: Some("DE89370400440532013000".to_owned()),
                bic: None,
            }),
        }),
        documents: Some(DocumentsInput {
            main: Some(FileRefInput {
                id: None,
                filename: "contract.pdf".to_owned(),
                mime_type: "application/pdf".to_owned(),
                size: 1024,
                sha256: "ab".repeat(32),
                uri: "https://files.example.com/contract.pdf".to_owned(),
            }),
            attachments: Vec::new(),
        }),
        metadata: Some(Metadata {
            lookup_key: lookup_key.map(str::to_owned),
            success_callback_url: None,
        }),
        expires_in_days,
        ..AgreementInput::default()
    }
}

fn created(id: &str, tenant: &str, input: AgreementInput, now: DateTime<Utc>) -> Transition {
    Agreement::create(
        id.to_owned(),
        tenant.to_owned(),
        input,
        now,
        &Rules::default(),
        &mut CountingIds(0),
    )
    .expect("the contract's input is valid")
}

fn changed(decision: Decision) -> Transition {
    match decision {
        Decision::Changed(transition) => transition,
        other => panic!("expected a change, the domain decided {other:?}"),
    }
}

fn ignored(decision: Decision) -> Transition {
    match decision {
        Decision::Ignored { transition, .. } => transition,
        other => panic!("expected an ignored event, the domain decided {other:?}"),
    }
}

fn send(agreement: &Agreement, now: DateTime<Utc>) -> Transition {
    changed(
        agreement
            .decide_lifecycle(LifecycleRequest::Pending, now)
            .expect("the agreement is ready to be sent"),
    )
}

fn cancel(agreement: &Agreement, now: DateTime<Utc>) -> Transition {
    changed(
        agreement
            .decide_lifecycle(
                LifecycleRequest::Cancelled(CancellationReason::InvalidDocument),
                now,
            )
            .expect("the agreement can be cancelled"),
    )
}

fn signed_event(
    provider: &str,
    event_id: &str,
    participant_id: &str,
    at: DateTime<Utc>,
) -> ProviderEvent {
    ProviderEvent {
        provider: provider.to_owned(),
        event_id: event_id.to_owned(),
        occurred_at: at,
        kind: ProviderEventKind::ParticipantSigned {
            participant_id: participant_id.to_owned(),
        },
    }
}

/// What the provider event says, decided against `agreement` as read.
fn sign(
    agreement: &Agreement,
    participant_id: &str,
    event_id: &str,
    now: DateTime<Utc>,
) -> Decision {
    agreement.decide_provider_event(
        &signed_event(&agreement.provider.name, event_id, participant_id, now),
        &Rules::default(),
        now,
    )
}

fn create_commit(transition: Transition) -> Commit {
    Commit {
        transition,
        expected: None,
        idempotency: None,
        provider_event: None,
    }
}

/// A commit of `transition`, computed from `read`.
fn change_commit(read: &Agreement, transition: Transition) -> Commit {
    Commit {
        transition,
        expected: Some(Revision::of(read)),
        idempotency: None,
        provider_event: None,
    }
}

fn idempotency_record(
    tenant: &str,
    key: &str,
    created_at: DateTime<Utc>,
    body: &str,
) -> IdempotencyRecord {
    IdempotencyRecord {
        tenant: tenant.to_owned(),
        key: key.to_owned(),
        request_hash: format!("hash-of-{body}"),
        status: 201,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: body.to_owned(),
        created_at,
        expires_at: created_at + Duration::seconds(DAY),
    }
}

fn mark(
    provider: &str,
    event_id: &str,
    agreement_id: &str,
    at: DateTime<Utc>,
) -> ProviderEventMark {
    ProviderEventMark {
        provider: provider.to_owned(),
        event_id: event_id.to_owned(),
        agreement_id: agreement_id.to_owned(),
        recorded_at: at,
    }
}

/// Commits what must pass; returns the agreement as it now stands.
async fn write<S: Store + ?Sized>(store: &S, commit: Commit) -> Agreement {
    let agreement = commit.transition.agreement.clone();
    if let Err(error) = store.commit(commit).await {
        panic!("commit of agreement `{}` refused: {error:?}", agreement.id);
    }
    agreement
}

/// Creates and sends an agreement; returns it pending.
async fn create_pending<S: Store + ?Sized>(
    store: &S,
    tenant: &str,
    signers: usize,
    now: DateTime<Utc>,
) -> Agreement {
    let draft = write(
        store,
        create_commit(created(
            &unique("agr"),
            tenant,
            input(signers, None, None),
            now,
        )),
    )
    .await;
    let sent = write(
        store,
        change_commit(&draft, send(&draft, now + Duration::seconds(MINUTE))),
    )
    .await;
    assert_eq!(sent.status, Status::Pending);
    sent
}

async fn get<S: Store + ?Sized>(store: &S, id: &str) -> Option<Agreement> {
    store
        .get_agreement(id)
        .await
        .unwrap_or_else(|error| panic!("get_agreement(`{id}`) failed: {error:?}"))
}

async fn history<S: Store + ?Sized>(store: &S, id: &str) -> Vec<HistoryEntry> {
    store
        .history(id)
        .await
        .unwrap_or_else(|error| panic!("history(`{id}`) failed: {error:?}"))
}

/// An agreement and its history, to show that a refused commit changed neither.
#[derive(Debug, PartialEq)]
struct Snapshot {
    agreement: Option<Agreement>,
    history: Vec<HistoryEntry>,
}

async fn snapshot<S: Store + ?Sized>(store: &S, id: &str) -> Snapshot {
    Snapshot {
        agreement: get(store, id).await,
        history: history(store, id).await,
    }
}

async fn live_record<S: Store + ?Sized>(
    store: &S,
    tenant: &str,
    key: &str,
    now: DateTime<Utc>,
) -> Option<IdempotencyRecord> {
    store
        .get_idempotency(tenant, key, now)
        .await
        .unwrap_or_else(|error| panic!("get_idempotency failed: {error:?}"))
}

/// The history is gapless from 1 and agrees with the agreement's counters.
fn assert_gapless(agreement: &Agreement, entries: &[HistoryEntry]) {
    let sequences: Vec<u64> = entries.iter().map(|entry| entry.sequence).collect();
    let expected: Vec<u64> = (1..=entries.len() as u64).collect();
    assert_eq!(
        sequences, expected,
        "history sequences of `{}`",
        agreement.id
    );
    assert_eq!(agreement.history_len, entries.len() as u64);
    assert!(entries
        .iter()
        .all(|entry| entry.agreement_id == agreement.id));
}

/// Case 1: a created agreement reads back as it was written, with its `AgreementCreated` entry; a
/// second create of the same id is a `Conflict` and changes nothing (not even its idempotency
/// record is stored).
pub async fn create_then_get<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let id = unique("agr");
    let now = time(2040, 0);

    assert_eq!(get(store, &id).await, None, "unknown id");
    assert!(
        history(store, &id).await.is_empty(),
        "unknown id has history"
    );

    let creation = created(&id, &tenant, input(2, Some("lookup"), None), now);
    write(store, create_commit(creation.clone())).await;
    assert_eq!(get(store, &id).await.as_ref(), Some(&creation.agreement));
    let entries = history(store, &id).await;
    assert_eq!(entries, creation.entries);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry_type, EntryType::AgreementCreated);

    let before = snapshot(store, &id).await;
    let other_tenant = unique("tenant");
    let key = unique("key");
    let again = Commit {
        idempotency: Some(idempotency_record(&other_tenant, &key, now, "again")),
        ..create_commit(created(
            &id,
            &other_tenant,
            input(1, None, None),
            now + Duration::seconds(HOUR),
        ))
    };
    assert_eq!(store.commit(again).await, Err(CommitError::Conflict));
    assert_eq!(
        snapshot(store, &id).await,
        before,
        "a refused create changed the agreement"
    );
    assert_eq!(
        live_record(store, &other_tenant, &key, now).await,
        None,
        "a refused create stored its idempotency record"
    );
}

/// Case 2: each transition stores the agreement and appends its entries; the history reads oldest
/// first, sequences 1..n without gaps, including an ignored provider event (a history-only write
/// that keeps the version).
pub async fn transition_appends_history<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2041, 0);
    let provider = unique("provider");

    let creation = created(&unique("agr"), &tenant, input(2, None, None), now);
    let mut expected_entries = creation.entries.clone();
    let draft = write(store, create_commit(creation)).await;

    let sending = send(&draft, now + Duration::seconds(MINUTE));
    assert_eq!(sending.entries.len(), 2, "sent and group invited");
    expected_entries.extend(sending.entries.clone());
    let pending = write(store, change_commit(&draft, sending)).await;

    let event = unique("event");
    let signing = changed(sign(&pending, "p1", &event, now + Duration::seconds(HOUR)));
    expected_entries.extend(signing.entries.clone());
    let signed = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &event, &pending.id, now)),
            ..change_commit(&pending, signing)
        },
    )
    .await;

    // The same participant again: final already, so only a `ProviderEventIgnored` entry.
    let ignoring = ignored(sign(
        &signed,
        "p1",
        &unique("event"),
        now + Duration::seconds(2 * HOUR),
    ));
    expected_entries.extend(ignoring.entries.clone());
    let recorded = write(store, change_commit(&signed, ignoring)).await;
    assert_eq!(
        recorded.version, signed.version,
        "an ignored event keeps the version"
    );

    let stored = get(store, &recorded.id).await;
    assert_eq!(stored.as_ref(), Some(&recorded));
    let entries = history(store, &recorded.id).await;
    assert_eq!(entries, expected_entries, "history, oldest first");
    assert_eq!(entries.len(), 5);
    assert_gapless(&recorded, &entries);
    assert_eq!(recorded.version, 3);
    assert_eq!(
        entries.last().map(|entry| entry.entry_type),
        Some(EntryType::ProviderEventIgnored)
    );
}

/// Case 3: a transition computed from an old read is a `Conflict` once another commit went in,
/// whether the version moved or only the history (an ignored event); nothing of it is written:
/// not the agreement, not its entries, not its idempotency record, not its provider-event mark.
/// An expected revision for an agreement that does not exist is a `Conflict` too.
pub async fn stale_revision_is_refused<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2042, 0);
    let provider = unique("provider");
    let stale = create_pending(store, &tenant, 3, now).await;

    // Another writer goes first.
    let first_event = unique("event");
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &first_event, &stale.id, now)),
            ..change_commit(&stale, changed(sign(&stale, "p1", &first_event, now)))
        },
    )
    .await;
    let before = snapshot(store, &stale.id).await;

    let key = unique("key");
    let late_event = unique("event");
    let late = Commit {
        idempotency: Some(idempotency_record(&tenant, &key, now, "late")),
        provider_event: Some(mark(&provider, &late_event, &stale.id, now)),
        ..change_commit(&stale, changed(sign(&stale, "p2", &late_event, now)))
    };
    assert_eq!(store.commit(late).await, Err(CommitError::Conflict));
    assert_eq!(
        snapshot(store, &stale.id).await,
        before,
        "a stale commit changed the agreement"
    );
    assert_eq!(
        live_record(store, &tenant, &key, now).await,
        None,
        "a stale commit stored its idempotency record"
    );
    // Its mark was not stored either: the same event, decided on a fresh read, goes in.
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &late_event, &stale.id, now)),
            ..change_commit(&current, changed(sign(&current, "p2", &late_event, now)))
        },
    )
    .await;
    // And its key is free.
    let record = idempotency_record(&tenant, &key, now, "alone");
    assert_eq!(store.put_idempotency(record.clone(), now).await, Ok(()));
    assert_eq!(live_record(store, &tenant, &key, now).await, Some(record));

    // Same version, longer history: the guard covers history_len too.
    let ignoring = ignored(sign(&current, "p1", &unique("event"), now));
    let after_ignored = write(store, change_commit(&current, ignoring)).await;
    assert_eq!(after_ignored.version, current.version);
    let before = snapshot(store, &current.id).await;
    let late = change_commit(
        &current,
        changed(sign(&current, "p3", &unique("event"), now)),
    );
    assert_eq!(store.commit(late).await, Err(CommitError::Conflict));
    assert_eq!(snapshot(store, &current.id).await, before);

    // The guard is the exact revision: a transition that continues the history correctly is
    // still refused when the expected version or history_len is off.
    let fresh = changed(sign(&after_ignored, "p3", &unique("event"), now));
    let read = Revision::of(&after_ignored);
    for expected in [
        Revision {
            history_len: read.history_len - 1,
            ..read
        },
        Revision {
            version: read.version - 1,
            ..read
        },
        Revision {
            version: read.version + 1,
            ..read
        },
    ] {
        let off = Commit {
            expected: Some(expected),
            ..change_commit(&after_ignored, fresh.clone())
        };
        assert_eq!(
            store.commit(off).await,
            Err(CommitError::Conflict),
            "{expected:?}"
        );
        assert_eq!(snapshot(store, &current.id).await, before);
    }

    // An update of an agreement that was never created.
    let ghost = created(&unique("agr"), &tenant, input(1, None, None), now);
    let ghost_id = ghost.agreement.id.clone();
    let update = Commit {
        expected: Some(Revision {
            version: 1,
            history_len: 0,
        }),
        ..create_commit(ghost)
    };
    assert_eq!(store.commit(update).await, Err(CommitError::Conflict));
    assert_eq!(
        snapshot(store, &ghost_id).await,
        Snapshot {
            agreement: None,
            history: Vec::new()
        }
    );
}

/// Case 4: a commit refused for its idempotency record or its provider-event mark writes nothing
/// else: the agreement, its history, the other record or mark it carried all stay as they were.
pub async fn refused_commit_writes_nothing<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2043, 0);
    let provider = unique("provider");
    let pending = create_pending(store, &tenant, 3, now).await;

    let taken_key = unique("key");
    let taken_event = unique("event");
    let first_record = idempotency_record(&tenant, &taken_key, now, "first");
    let current = write(
        store,
        Commit {
            idempotency: Some(first_record.clone()),
            provider_event: Some(mark(&provider, &taken_event, &pending.id, now)),
            ..change_commit(&pending, changed(sign(&pending, "p1", &taken_event, now)))
        },
    )
    .await;
    let before = snapshot(store, &current.id).await;
    let later = now + Duration::seconds(MINUTE);

    // Refused for the key: its mark is not stored.
    let free_event = unique("event");
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &taken_key, later, "second")),
        provider_event: Some(mark(&provider, &free_event, &current.id, later)),
        ..change_commit(&current, changed(sign(&current, "p2", &free_event, later)))
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(snapshot(store, &current.id).await, before);
    assert_eq!(
        live_record(store, &tenant, &taken_key, later).await,
        Some(first_record.clone()),
        "the live record was replaced"
    );

    // Refused for the mark: its record is not stored.
    let free_key = unique("key");
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &free_key, later, "third")),
        provider_event: Some(mark(&provider, &taken_event, &current.id, later)),
        ..change_commit(&current, changed(sign(&current, "p2", &taken_event, later)))
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::DuplicateProviderEvent)
    );
    assert_eq!(snapshot(store, &current.id).await, before);
    assert_eq!(live_record(store, &tenant, &free_key, later).await, None);

    // A create refused for its key creates nothing.
    let creation = created(&unique("agr"), &tenant, input(1, None, None), later);
    let new_id = creation.agreement.id.clone();
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &taken_key, later, "create")),
        ..create_commit(creation)
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(
        get(store, &new_id).await,
        None,
        "a refused create stored the agreement"
    );
    assert!(history(store, &new_id).await.is_empty());

    // Both refused commits left the free key and the free event id free.
    let record = idempotency_record(&tenant, &free_key, later, "fourth");
    let after = write(
        store,
        Commit {
            idempotency: Some(record.clone()),
            provider_event: Some(mark(&provider, &free_event, &current.id, later)),
            ..change_commit(&current, changed(sign(&current, "p2", &free_event, later)))
        },
    )
    .await;
    assert_eq!(
        live_record(store, &tenant, &free_key, later).await,
        Some(record)
    );
    assert_eq!(get(store, &after.id).await.as_ref(), Some(&after));
    assert_eq!(
        history(store, &after.id).await.len() as u64,
        after.history_len
    );
}

/// Case 5: a (provider, event id) pair is applied once: a second commit carrying it is a
/// `DuplicateProviderEvent`; another event id, or the same id from another provider, goes in.
pub async fn provider_event_applied_once<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2044, 0);
    let provider = unique("provider");
    let other_provider = unique("provider");
    let pending = create_pending(store, &tenant, 3, now).await;

    let event = unique("event");
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &event, &pending.id, now)),
            ..change_commit(&pending, changed(sign(&pending, "p1", &event, now)))
        },
    )
    .await;
    let before = snapshot(store, &current.id).await;

    // Decided again on a fresh read, as a redelivered callback would be: still refused.
    let again = Commit {
        provider_event: Some(mark(&provider, &event, &current.id, now)),
        ..change_commit(&current, changed(sign(&current, "p2", &event, now)))
    };
    assert_eq!(
        store.commit(again).await,
        Err(CommitError::DuplicateProviderEvent)
    );
    assert_eq!(snapshot(store, &current.id).await, before);

    let other_event = unique("event");
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &other_event, &current.id, now)),
            ..change_commit(&current, changed(sign(&current, "p2", &other_event, now)))
        },
    )
    .await;
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&other_provider, &event, &current.id, now)),
            ..change_commit(&current, changed(sign(&current, "p3", &event, now)))
        },
    )
    .await;
    assert_eq!(current.status, Status::Fulfilled);
    assert_eq!(get(store, &current.id).await.as_ref(), Some(&current));
}

/// Case 6: idempotency records: stored with a commit, read back while live and not once expired,
/// a live key refuses another commit or put, an expired one is replaced, keys are per tenant.
pub async fn idempotency_records<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let other_tenant = unique("tenant");
    let key = unique("key");
    let now = time(2045, 0);
    let at = |seconds: i64| now + Duration::seconds(seconds);

    let record = idempotency_record(&tenant, &key, now, "created");
    write(
        store,
        Commit {
            idempotency: Some(record.clone()),
            ..create_commit(created(&unique("agr"), &tenant, input(1, None, None), now))
        },
    )
    .await;
    assert_eq!(
        live_record(store, &tenant, &key, now).await,
        Some(record.clone())
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(HOUR)).await,
        Some(record.clone())
    );
    assert_eq!(
        live_record(store, &tenant, &key, record.expires_at).await,
        None,
        "a record is live only before its expires_at"
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(DAY + HOUR)).await,
        None
    );

    // While live, the key refuses another commit and a put.
    let creation = created(&unique("agr"), &tenant, input(1, None, None), at(2 * HOUR));
    let refused_id = creation.agreement.id.clone();
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &key, at(2 * HOUR), "again")),
        ..create_commit(creation)
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(get(store, &refused_id).await, None);
    assert_eq!(
        store
            .put_idempotency(
                idempotency_record(&tenant, &key, at(3 * HOUR), "put"),
                at(3 * HOUR)
            )
            .await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(3 * HOUR)).await,
        Some(record.clone())
    );

    // Keys are per tenant.
    let elsewhere = idempotency_record(&other_tenant, &key, at(3 * HOUR), "elsewhere");
    assert_eq!(
        store.put_idempotency(elsewhere.clone(), at(3 * HOUR)).await,
        Ok(())
    );
    assert_eq!(
        live_record(store, &other_tenant, &key, at(3 * HOUR)).await,
        Some(elsewhere)
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(3 * HOUR)).await,
        Some(record.clone())
    );

    // Once expired, a put replaces it ...
    let replacement = idempotency_record(&tenant, &key, at(DAY + HOUR), "replacement");
    assert_eq!(
        store
            .put_idempotency(replacement.clone(), at(DAY + HOUR))
            .await,
        Ok(())
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(DAY + 2 * HOUR)).await,
        Some(replacement.clone())
    );
    // ... and so does a commit.
    let third = idempotency_record(&tenant, &key, replacement.expires_at, "third");
    write(
        store,
        Commit {
            idempotency: Some(third.clone()),
            ..create_commit(created(
                &unique("agr"),
                &tenant,
                input(1, None, None),
                replacement.expires_at,
            ))
        },
    )
    .await;
    assert_eq!(
        live_record(store, &tenant, &key, replacement.expires_at).await,
        Some(third)
    );

    // A put on its own, on a fresh key, then the same key again while live.
    let alone_key = unique("key");
    let alone = idempotency_record(&tenant, &alone_key, now, "alone");
    assert_eq!(store.put_idempotency(alone.clone(), now).await, Ok(()));
    assert_eq!(
        live_record(store, &tenant, &alone_key, at(MINUTE)).await,
        Some(alone.clone())
    );
    assert_eq!(
        store
            .put_idempotency(
                idempotency_record(&tenant, &alone_key, at(MINUTE), "twice"),
                at(MINUTE)
            )
            .await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(
        live_record(store, &tenant, &alone_key, at(MINUTE)).await,
        Some(alone)
    );
}

/// Every page of a listing, following `next` until it is `None`. Checks what holds for any page:
/// at most `limit` items, and a `next` only after a full page, pointing at its last item.
async fn list_pages<S: Store + ?Sized>(store: &S, query: ListQuery) -> Vec<Vec<Agreement>> {
    let mut query = query;
    let mut pages = Vec::new();
    loop {
        assert!(pages.len() < 100, "listing does not end: {query:?}");
        let ListPage { agreements, next } = store
            .list_agreements(&query)
            .await
            .unwrap_or_else(|error| panic!("list_agreements({query:?}) failed: {error:?}"));
        assert!(
            agreements.len() <= query.limit,
            "page larger than its limit"
        );
        match next {
            Some(next) => {
                assert_eq!(agreements.len(), query.limit, "a page with a next is full");
                assert_eq!(agreements.last().map(ListPosition::of), Some(next.clone()));
                pages.push(agreements);
                query.after = Some(next);
            }
            None => {
                pages.push(agreements);
                return pages;
            }
        }
    }
}

fn page_sizes(pages: &[Vec<Agreement>]) -> Vec<usize> {
    pages.iter().map(Vec::len).collect()
}

fn page_ids(pages: &[Vec<Agreement>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|agreement| agreement.id.clone())
        .collect()
}

/// Case 7: a tenant's agreements list newest first in keyset pages, without duplicates or
/// omissions, `next` only while more match; other tenants' never appear; the lookup-key and
/// status filters return only what matches, in the same order and pages.
pub async fn listing_pages_newest_first<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let other_tenant = unique("tenant");
    let key_a = unique("lookup");
    let key_b = unique("lookup");
    let now = time(2046, 0);
    let query = |limit: usize| ListQuery {
        tenant: tenant.clone(),
        lookup_key: None,
        status: None,
        limit,
        after: None,
    };

    // 25 agreements a minute apart: lookup key a, b or none in turn; every 4th sent.
    let mut stored: HashMap<String, Agreement> = HashMap::new();
    let mut oldest_first = Vec::new();
    for i in 0..25_i64 {
        let lookup_key = match i % 3 {
            0 => Some(key_a.as_str()),
            1 => Some(key_b.as_str()),
            _ => None,
        };
        let created_at = now + Duration::seconds(i * MINUTE);
        let creation = created(
            &unique("agr"),
            &tenant,
            input(1, lookup_key, None),
            created_at,
        );
        let mut agreement = write(store, create_commit(creation)).await;
        if i % 4 == 0 {
            let sending = send(&agreement, created_at + Duration::seconds(1));
            agreement = write(store, change_commit(&agreement, sending)).await;
        }
        oldest_first.push((i, agreement.id.clone()));
        stored.insert(agreement.id.clone(), agreement);
    }
    // Another tenant, same times, same lookup key.
    let mut foreign = HashSet::new();
    for i in 0..5_i64 {
        let creation = created(
            &unique("agr"),
            &other_tenant,
            input(1, Some(&key_a), None),
            now + Duration::seconds(i * MINUTE),
        );
        foreign.insert(write(store, create_commit(creation)).await.id);
    }
    let newest_first = |keep: &dyn Fn(i64) -> bool| -> Vec<String> {
        oldest_first
            .iter()
            .rev()
            .filter(|(i, _)| keep(*i))
            .map(|(_, id)| id.clone())
            .collect()
    };

    // Wait until both indexes show every agreement of the case, as it was last written.
    let everything = newest_first(&|_| true);
    eventually("the tenant's listing shows its 25 agreements", || async {
        let listed: Vec<Agreement> = list_pages(store, query(100))
            .await
            .into_iter()
            .flatten()
            .collect();
        let current = listed
            .iter()
            .filter(|agreement| stored.get(&agreement.id) == Some(*agreement))
            .count();
        same(
            (
                listed
                    .iter()
                    .map(|agreement| agreement.id.clone())
                    .collect::<Vec<_>>(),
                current,
            ),
            (everything.clone(), everything.len()),
        )
    })
    .await;
    let key_a_ids = newest_first(&|i| i % 3 == 0);
    eventually("the lookup-key listing shows its agreements", || async {
        let by_key_a = ListQuery {
            lookup_key: Some(key_a.clone()),
            ..query(100)
        };
        same(
            page_ids(&list_pages(store, by_key_a).await),
            key_a_ids.clone(),
        )
    })
    .await;
    for lookup_key in [None, Some(key_a.clone())] {
        eventually(
            "the other tenant's listings show its agreements",
            || async {
                let theirs = ListQuery {
                    tenant: other_tenant.clone(),
                    lookup_key: lookup_key.clone(),
                    ..query(100)
                };
                let ids: HashSet<String> = page_ids(&list_pages(store, theirs).await)
                    .into_iter()
                    .collect();
                same(ids, foreign.clone())
            },
        )
        .await;
    }

    let pages = list_pages(store, query(10)).await;
    assert_eq!(page_sizes(&pages), vec![10, 10, 5]);
    assert_eq!(page_ids(&pages), newest_first(&|_| true));
    for agreement in pages.iter().flatten() {
        assert_eq!(
            Some(agreement),
            stored.get(&agreement.id),
            "listed as stored"
        );
    }
    assert_eq!(page_sizes(&list_pages(store, query(5)).await), vec![5; 5]);
    assert_eq!(page_sizes(&list_pages(store, query(25)).await), vec![25]);
    assert_eq!(page_sizes(&list_pages(store, query(100)).await), vec![25]);

    let by_key_a = ListQuery {
        lookup_key: Some(key_a.clone()),
        ..query(4)
    };
    let pages = list_pages(store, by_key_a.clone()).await;
    assert_eq!(page_sizes(&pages), vec![4, 4, 1]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 3 == 0));

    let pending = ListQuery {
        status: Some(Status::Pending),
        ..query(3)
    };
    let pages = list_pages(store, pending).await;
    assert_eq!(page_sizes(&pages), vec![3, 3, 1]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 4 == 0));
    assert!(pages
        .iter()
        .flatten()
        .all(|agreement| agreement.status == Status::Pending));

    let drafts = ListQuery {
        status: Some(Status::Draft),
        ..query(10)
    };
    let pages = list_pages(store, drafts).await;
    assert_eq!(page_sizes(&pages), vec![10, 8]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 4 != 0));

    let pending_with_key_a = ListQuery {
        status: Some(Status::Pending),
        ..by_key_a.clone()
    };
    let pages = list_pages(
        store,
        ListQuery {
            limit: 2,
            ..pending_with_key_a
        },
    )
    .await;
    assert_eq!(page_sizes(&pages), vec![2, 1]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 12 == 0));

    let unknown_key = ListQuery {
        lookup_key: Some(unique("lookup")),
        ..query(10)
    };
    assert_eq!(page_sizes(&list_pages(store, unknown_key).await), vec![0]);
    let nobody = ListQuery {
        tenant: unique("tenant"),
        ..query(10)
    };
    assert_eq!(page_sizes(&list_pages(store, nobody).await), vec![0]);

    // The other tenant sees its own only, through both indexes.
    let theirs = ListQuery {
        tenant: other_tenant.clone(),
        ..query(10)
    };
    let ids: HashSet<String> = page_ids(&list_pages(store, theirs.clone()).await)
        .into_iter()
        .collect();
    assert_eq!(ids, foreign);
    let theirs_by_key = ListQuery {
        lookup_key: Some(key_a.clone()),
        ..theirs
    };
    let ids: HashSet<String> = page_ids(&list_pages(store, theirs_by_key).await)
        .into_iter()
        .collect();
    assert_eq!(ids, foreign);

    // Same created_at: the id breaks the tie, descending.
    let tied_tenant = unique("tenant");
    let base = unique("agr");
    for suffix in ["b", "c", "a"] {
        let creation = created(
            &format!("{base}-{suffix}"),
            &tied_tenant,
            input(1, None, None),
            now,
        );
        write(store, create_commit(creation)).await;
    }
    eventually(
        "the tied tenant's listing shows its 3 agreements",
        || async {
            let tied = ListQuery {
                tenant: tied_tenant.clone(),
                ..query(100)
            };
            same(page_sizes(&list_pages(store, tied).await), vec![3])
        },
    )
    .await;
    let pages = list_pages(
        store,
        ListQuery {
            tenant: tied_tenant,
            ..query(2)
        },
    )
    .await;
    assert_eq!(page_sizes(&pages), vec![2, 1]);
    assert_eq!(
        page_ids(&pages),
        vec![
            format!("{base}-c"),
            format!("{base}-b"),
            format!("{base}-a")
        ]
    );
}

/// Every due page at `now`, following the cursor. Checks what holds for any page: at most
/// `limit` items, each pending and due.
async fn due_ids<S: Store + ?Sized>(store: &S, now: DateTime<Utc>, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store
            .due_for_expiry(now, limit, cursor)
            .await
            .unwrap_or_else(|error| panic!("due_for_expiry failed: {error:?}"));
        assert!(page.agreements.len() <= limit, "page larger than its limit");
        for agreement in &page.agreements {
            assert_eq!(
                agreement.status,
                Status::Pending,
                "`{}` is not pending",
                agreement.id
            );
            assert!(
                agreement
                    .expires_at
                    .is_some_and(|expires_at| expires_at <= now),
                "`{}` is not due",
                agreement.id
            );
        }
        ids.extend(page.agreements.into_iter().map(|agreement| agreement.id));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("the due pages do not end");
}

/// Where each of `own` appears in `ids` (`None` if absent), asserting none appears twice.
fn positions(ids: &[String], own: &[&str]) -> Vec<Option<usize>> {
    own.iter()
        .map(|id| {
            let found: Vec<usize> = ids
                .iter()
                .enumerate()
                .filter(|(_, listed)| listed.as_str() == *id)
                .map(|(index, _)| index)
                .collect();
            assert!(found.len() <= 1, "`{id}` listed {} times", found.len());
            found.first().copied()
        })
        .collect()
}

/// Case 8: the expiry index returns pending agreements whose `expires_at` has passed, oldest
/// expiry first, each once across pages; not those not yet due, nor any that is not pending (also
/// when it keeps an `expires_at`), and an agreement leaves it when it stops being pending. Only
/// this case's own ids are asserted on: a shared store may hold others.
pub async fn expiry_index<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let base = time(2000, 0);
    let at = |seconds: i64| base + Duration::seconds(seconds);
    let make = |days: u16, signers: usize| {
        created(
            &unique("agr"),
            &tenant,
            input(signers, None, Some(days)),
            base,
        )
    };
    let sent_at = |agreement: Agreement, seconds: i64| async move {
        let sending = send(&agreement, at(seconds));
        write(store, change_commit(&agreement, sending)).await
    };

    // Due at base + 1 day, + 1 day 1 hour, + 1 day 2 hours.
    let mut due = Vec::new();
    for hours in 0..3 {
        let draft = write(store, create_commit(make(1, 1))).await;
        due.push(sent_at(draft, hours * HOUR).await);
    }
    let later = sent_at(write(store, create_commit(make(2, 1))).await, 0).await;
    let draft = write(store, create_commit(make(1, 1))).await;
    // Cancelled and fulfilled ones keep their expires_at; a reopened one loses it.
    let cancelled = sent_at(write(store, create_commit(make(1, 1))).await, 0).await;
    let cancelled = write(
        store,
        change_commit(&cancelled, cancel(&cancelled, at(MINUTE))),
    )
    .await;
    assert!(cancelled.expires_at.is_some());
    let fulfilled = sent_at(write(store, create_commit(make(1, 1))).await, 0).await;
    let signing = changed(sign(&fulfilled, "p1", &unique("event"), at(MINUTE)));
    let fulfilled = write(store, change_commit(&fulfilled, signing)).await;
    assert_eq!(fulfilled.status, Status::Fulfilled);
    let reopened = sent_at(write(store, create_commit(make(1, 1))).await, 0).await;
    let reopening = changed(
        reopened
            .decide_lifecycle(LifecycleRequest::Open, at(MINUTE))
            .expect("a pending agreement reopens"),
    );
    let reopened = write(store, change_commit(&reopened, reopening)).await;

    // `now` is the last due agreement's expires_at exactly: due includes equality.
    let now = due[2].expires_at.expect("sent agreements expire");
    assert_eq!(now, at(DAY + 2 * HOUR));
    let own: Vec<&str> = due.iter().map(|agreement| agreement.id.as_str()).collect();
    let not_due = [
        later.id.as_str(),
        draft.id.as_str(),
        cancelled.id.as_str(),
        fulfilled.id.as_str(),
        reopened.id.as_str(),
    ];
    // Wait until the index shows the due ones, and no longer the ones that stopped being pending.
    eventually("the expiry index shows the case's writes", || async {
        let ids = due_ids(store, now, 1000).await;
        same(
            (
                positions(&ids, &own).iter().all(Option::is_some),
                positions(&ids, &not_due),
            ),
            (true, vec![None; not_due.len()]),
        )
    })
    .await;
    for limit in [1, 2, 1000] {
        let ids = due_ids(store, now, limit).await;
        let found = positions(&ids, &own);
        assert!(
            found.iter().all(Option::is_some),
            "missing due: {found:?} (limit {limit})"
        );
        assert!(
            found.windows(2).all(|pair| pair[0] < pair[1]),
            "oldest expiry first"
        );
        assert_eq!(positions(&ids, &not_due), vec![None; not_due.len()]);
    }
    // A second before the first one is due: none of them.
    let ids = due_ids(store, at(DAY - 1), 10).await;
    assert_eq!(positions(&ids, &own), vec![None; own.len()]);
    // One hour later than `now`, the first two only.
    let ids = due_ids(store, at(DAY + HOUR), 10).await;
    assert_eq!(positions(&ids, &own)[2], None);
    assert!(positions(&ids, &own)[..2].iter().all(Option::is_some));

    // Expired and cancelled ones leave the index.
    let expired = write(
        store,
        change_commit(&due[0], changed(due[0].decide_expiry(now))),
    )
    .await;
    assert_eq!(expired.status, Status::Expired);
    write(store, change_commit(&due[1], cancel(&due[1], now))).await;
    eventually(
        "expired and cancelled agreements leave the expiry index",
        || async {
            same(
                positions(&due_ids(store, now, 1000).await, &own[..2]),
                vec![None, None],
            )
        },
    )
    .await;
    let ids = due_ids(store, now, 2).await;
    let found = positions(&ids, &own);
    assert_eq!(found[..2], [None, None], "no longer pending, still listed");
    assert!(found[2].is_some());

    // Leave nothing pending behind for the next run on a shared store.
    write(store, change_commit(&due[2], cancel(&due[2], now))).await;
    write(store, change_commit(&later, cancel(&later, now))).await;
    let mut all_own = own.clone();
    all_own.push(later.id.as_str());
    eventually("the case leaves nothing in the expiry index", || async {
        same(
            positions(&due_ids(store, at(3 * DAY), 100).await, &all_own),
            vec![None; all_own.len()],
        )
    })
    .await;
}

/// Case 9: commits computed from the same revision race: exactly one goes in, the others are
/// `Conflict`s that wrote nothing. Then 16 writers each apply their own participant's signature
/// with read, decide, commit and retry on conflict: every signature lands exactly once.
///
/// The racing commits run as concurrent futures of one task, yielding between read and commit,
/// so they interleave on any store; against a networked store their requests overlap in flight.
pub async fn concurrent_commits<S: Store + ?Sized>(store: &S) {
    const WRITERS: usize = 16;
    let tenant = unique("tenant");
    let now = time(2047, 0);
    let provider = unique("provider");

    // Same revision, 16 different events.
    let read = create_pending(store, &tenant, 2, now).await;
    let events: Vec<String> = (0..WRITERS).map(|_| unique("event")).collect();
    let commits = events.iter().map(|event| Commit {
        provider_event: Some(mark(&provider, event, &read.id, now)),
        ..change_commit(&read, changed(sign(&read, "p1", event, now)))
    });
    let results = join_all(commits.map(|commit| async move {
        tokio::task::yield_now().await;
        store.commit(commit).await
    }))
    .await;
    let winners: Vec<usize> = (0..WRITERS).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one commit wins: {results:?}");
    assert!(results
        .iter()
        .all(|result| matches!(result, Ok(()) | Err(CommitError::Conflict))));
    let winner = winners[0];
    let current = get(store, &read.id).await.expect("the agreement exists");
    assert_eq!(
        current,
        changed(sign(&read, "p1", &events[winner], now)).agreement
    );
    assert_eq!(
        history(store, &read.id).await.len() as u64,
        read.history_len + 1
    );
    // A loser's mark was not written: its event id still goes in.
    let loser = (winner + 1) % WRITERS;
    write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &events[loser], &read.id, now)),
            ..change_commit(&current, changed(sign(&current, "p2", &events[loser], now)))
        },
    )
    .await;

    // 16 signers, each signature applied by its own writer with retries.
    let pending = create_pending(store, &tenant, WRITERS, now).await;
    let id = pending.id.as_str();
    let writers = (1..=WRITERS).map(|i| {
        let provider = provider.as_str();
        async move {
            let participant = format!("p{i}");
            let event = unique("event");
            for attempt in 1..=200_u32 {
                let read = get(store, id).await.expect("the agreement exists");
                let at = now + Duration::seconds(HOUR);
                let transition = changed(sign(&read, &participant, &event, at));
                // Let the other writers read the same revision before this one commits.
                tokio::task::yield_now().await;
                let commit = Commit {
                    provider_event: Some(mark(provider, &event, id, at)),
                    ..change_commit(&read, transition)
                };
                match store.commit(commit).await {
                    Ok(()) => return attempt,
                    Err(CommitError::Conflict) => continue,
                    Err(error) => panic!("{participant}: commit failed: {error:?}"),
                }
            }
            panic!("{participant}: still conflicting after 200 attempts");
        }
    });
    let attempts = join_all(writers).await;

    let last = get(store, id).await.expect("the agreement exists");
    assert_eq!(last.status, Status::Fulfilled, "attempts: {attempts:?}");
    assert_eq!(last.version, 1 + 1 + WRITERS as u64);
    assert!(last
        .participants
        .iter()
        .all(|participant| participant.status == ParticipantStatus::SignatureComplete));
    let entries = history(store, id).await;
    // Created, sent, group invited, 16 signed, fulfilled.
    assert_eq!(entries.len(), 3 + WRITERS + 1);
    assert_gapless(&last, &entries);
    let signers: Vec<&str> = entries
        .iter()
        .filter(|entry| entry.entry_type == EntryType::ParticipantSigned)
        .filter_map(|entry| entry.participant_id.as_deref())
        .collect();
    let distinct: HashSet<&str> = signers.iter().copied().collect();
    assert_eq!(signers.len(), WRITERS, "one ParticipantSigned per signer");
    assert_eq!(distinct.len(), WRITERS);
    assert_eq!(
        entries.last().map(|entry| entry.entry_type),
        Some(EntryType::AgreementFulfilled)
    );
}

/// The callback inbox: a redelivered event is kept once with its first payload; a claim holds an
/// event until it runs out, then it can be claimed again (receives counted); removed and
/// dead-lettered events are claimed no more, and dead letters keep their event and error.
pub async fn inbox_keeps_each_event_once_until_applied<S: CallbackInbox + ?Sized>(store: &S) {
    let at = |seconds| time(2031, seconds);
    let provider = unique("inbox-provider");
    let event = |event_id: &str, seconds: i64, payload: &str| InboxEvent {
        provider: provider.clone(),
        event_id: event_id.to_owned(),
        received_at: at(seconds),
        payload: payload.to_owned(),
        receives: 0,
    };
    let first = event("evt-1", 10, r#"{"n":1}"#);
    let second = event("evt-2", 20, r#"{"n":2}"#);
    store.put_inbox(&second).await.expect("put");
    store.put_inbox(&first).await.expect("put");
    store
        .put_inbox(&event("evt-1", 30, r#"{"n":"redelivered"}"#))
        .await
        .expect("a redelivery is no error");

    // Other runs may share the store: look only at this case's provider.
    let ours = |claimed: Vec<InboxEvent>| -> Vec<(String, String, u32)> {
        claimed
            .into_iter()
            .filter(|event| event.provider == provider)
            .map(|event| (event.event_id, event.payload, event.receives))
            .collect()
    };
    let claim = |now: i64, hold: i64| store.claim_inbox(at(now), at(now + hold), 1000);

    let claimed = ours(claim(100, 30).await.expect("claim"));
    assert_eq!(
        claimed,
        [
            ("evt-1".to_owned(), r#"{"n":1}"#.to_owned(), 1),
            ("evt-2".to_owned(), r#"{"n":2}"#.to_owned(), 1),
        ],
        "oldest first, kept once with the first payload"
    );
    assert_eq!(
        ours(claim(110, 30).await.expect("claim")),
        [],
        "held while the claim runs"
    );
    let again = ours(claim(131, 30).await.expect("claim"));
    assert_eq!(
        again
            .iter()
            .map(|(id, _, receives)| (id.as_str(), *receives))
            .collect::<Vec<_>>(),
        [("evt-1", 2), ("evt-2", 2)],
        "claimable again once the claim ran out, each receive counted"
    );

    store
        .remove_inbox(&provider, "evt-1")
        .await
        .expect("remove");
    let mut dead = second.clone();
    dead.receives = 2;
    store
        .dead_letter_inbox(&dead, "kept failing: store unavailable")
        .await
        .expect("dead letter");
    assert_eq!(
        ours(claim(200, 30).await.expect("claim")),
        [],
        "none left to claim"
    );
    let dead_letters: Vec<(InboxEvent, String)> = store
        .dead_lettered_inbox(1000)
        .await
        .expect("dead letters")
        .into_iter()
        .filter(|(event, _)| event.provider == provider)
        .collect();
    assert_eq!(
        dead_letters,
        [(dead, "kept failing: store unavailable".to_owned())]
    );

    // Delivered again after it was applied, it is kept again: the provider-event mark, not the
    // inbox, makes it apply once.
    store.put_inbox(&first).await.expect("put");
    assert_eq!(
        ours(claim(300, 30).await.expect("claim")),
        [("evt-1".to_owned(), r#"{"n":1}"#.to_owned(), 1)]
    );
    store
        .remove_inbox(&provider, "evt-1")
        .await
        .expect("remove");
}

/// Provider progress: each write guarded by the revision before it, the provider's reference
/// keyed to its agreement (and to no other), read back strongly.
pub async fn provider_progress_is_guarded_and_keyed<S: ProviderProgressStore + ?Sized>(store: &S) {
    let at = |seconds| time(2032, seconds);
    let agreement_id = unique("progress-agreement");
    let other_agreement = unique("progress-other");
    let provider = unique("progress-provider");
    let reference = unique("zigned-ref");
    let progress = |agreement_id: &str, revision: u64, state: &str, reference: Option<&str>| {
        ProviderProgress {
            agreement_id: agreement_id.to_owned(),
            provider: provider.clone(),
            state: state.to_owned(),
            reference: reference.map(str::to_owned),
            revision,
            updated_at: at(i64::try_from(revision).unwrap_or(0)),
        }
    };
    assert_eq!(
        store
            .get_provider_progress(&agreement_id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .put_provider_progress(&progress(&agreement_id, 2, "{}", None))
            .await,
        Err(CommitError::Conflict),
        "revision 2 needs revision 1 first"
    );
    let first = progress(&agreement_id, 1, r#"{"files":1}"#, None);
    store.put_provider_progress(&first).await.expect("first");
    assert_eq!(
        store
            .put_provider_progress(&progress(&agreement_id, 1, "{}", None))
            .await,
        Err(CommitError::Conflict),
        "two writers of revision 1: one wins"
    );
    assert_eq!(
        store
            .get_provider_progress(&agreement_id)
            .await
            .expect("get"),
        Some(first)
    );
    assert_eq!(
        store
            .find_by_provider_reference(&provider, &reference)
            .await
            .expect("find"),
        None
    );
    let second = progress(&agreement_id, 2, r#"{"created":true}"#, Some(&reference));
    store.put_provider_progress(&second).await.expect("second");
    assert_eq!(
        store
            .find_by_provider_reference(&provider, &reference)
            .await
            .expect("find"),
        Some(agreement_id.clone())
    );
    assert_eq!(
        store
            .find_by_provider_reference(&unique("another-provider"), &reference)
            .await
            .expect("find"),
        None,
        "references are per provider"
    );
    // Another agreement cannot take the reference, and the refused write leaves nothing.
    assert_eq!(
        store
            .put_provider_progress(&progress(&other_agreement, 1, "{}", Some(&reference)))
            .await,
        Err(CommitError::Conflict)
    );
    assert_eq!(
        store
            .get_provider_progress(&other_agreement)
            .await
            .expect("get"),
        None
    );
    let third = progress(&agreement_id, 3, r#"{"sent":true}"#, Some(&reference));
    store
        .put_provider_progress(&third)
        .await
        .expect("the same reference again");
    assert_eq!(
        store
            .get_provider_progress(&agreement_id)
            .await
            .expect("get"),
        Some(third)
    );
    assert_eq!(
        store
            .find_by_provider_reference(&provider, &reference)
            .await
            .expect("find"),
        Some(agreement_id)
    );
}

/// The dispatch lease: one holder at a time, even among concurrent takers; renewed by its holder;
/// free again once released or run out; released only by its holder.
pub async fn dispatch_lease_is_held_by_one_until_it_runs_out<S: ProviderProgressStore + ?Sized>(
    store: &S,
) {
    let at = |seconds| time(2033, seconds);
    let agreement_id = unique("lease-agreement");
    let other_agreement = unique("lease-other");
    let takers: Vec<String> = (0..6).map(|n| format!("dispatch-{n}")).collect();
    let granted = join_all(
        takers
            .iter()
            .map(|holder| store.take_dispatch_lease(&agreement_id, holder, at(0), at(60))),
    )
    .await;
    let winners: Vec<&String> = takers
        .iter()
        .zip(&granted)
        .filter(|(_, granted)| matches!(granted, Ok(true)))
        .map(|(holder, _)| holder)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "one of concurrent takers holds it: {granted:?}"
    );
    let holder = winners[0].clone();
    let loser = takers
        .iter()
        .find(|other| **other != holder)
        .unwrap()
        .clone();

    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(30), at(90))
            .await
            .expect("take"),
        "held until 60"
    );
    assert!(
        store
            .take_dispatch_lease(&other_agreement, &loser, at(30), at(90))
            .await
            .expect("take"),
        "each agreement has its own lease"
    );
    assert!(
        store
            .take_dispatch_lease(&agreement_id, &holder, at(30), at(120))
            .await
            .expect("renew"),
        "its holder renews it"
    );
    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(90), at(150))
            .await
            .expect("take"),
        "renewed until 120"
    );
    store
        .release_dispatch_lease(&agreement_id, &loser)
        .await
        .expect("release by another");
    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(90), at(150))
            .await
            .expect("take"),
        "only its holder releases it"
    );
    store
        .release_dispatch_lease(&agreement_id, &holder)
        .await
        .expect("release");
    store
        .release_dispatch_lease(&agreement_id, &holder)
        .await
        .expect("a second release changes nothing");
    assert!(
        store
            .take_dispatch_lease(&agreement_id, &loser, at(91), at(150))
            .await
            .expect("take"),
        "free once released"
    );
    assert!(
        store
            .take_dispatch_lease(&agreement_id, &holder, at(151), at(200))
            .await
            .expect("take"),
        "free once run out"
    );
    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(152), at(210))
            .await
            .expect("take"),
        "and held again by whoever took it"
    );
}
