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
mod agreements;
mod expiry;
mod idempotency;
mod inbox;
mod listing;
mod provider_progress;

pub use agreements::*;
pub use expiry::*;
pub use idempotency::*;
pub use inbox::*;
pub use listing::*;
pub use provider_progress::*;

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
        .map(std::sync::Arc::unwrap_or_clone)
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
