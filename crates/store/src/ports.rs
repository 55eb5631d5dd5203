//! The storage port, split by capability. A transition is one atomic, version-guarded commit of the
//! agreement, its history entries (the outbox), and any idempotency record or provider-event mark.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use countersign_domain::{Agreement, HistoryEntry, Status, Transition};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The backing service failed or could not be reached; the caller may retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored record could not be read back.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

/// Why a commit was refused. Nothing of it was written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The agreement is no longer at the revision the transition was computed from (or, for a
    /// create, already exists). Read again, decide again, retry.
    #[error("the agreement changed since it was read")]
    Conflict,
    /// This provider event id was already applied to the agreement.
    #[error("provider event already applied")]
    DuplicateProviderEvent,
    /// A live idempotency record holds this key.
    #[error("idempotency key already used")]
    IdempotencyKeyTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The revision a transition was computed from: the guard of its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub version: u64,
    pub history_len: u64,
}

impl Revision {
    pub fn of(agreement: &Agreement) -> Self {
        Revision {
            version: agreement.version,
            history_len: agreement.history_len,
        }
    }
}

/// A response kept for an `Idempotency-Key`, replayed for the same key and body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub tenant: String,
    pub key: String,
    /// Hash of what identifies the request (method, path, body).
    pub request_hash: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Checked in code: a record past it is as good as absent.
    pub expires_at: DateTime<Utc>,
}

/// Marks a provider event id as applied, so it is applied exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEventMark {
    pub provider: String,
    pub event_id: String,
    pub agreement_id: String,
    pub recorded_at: DateTime<Utc>,
}

/// Everything one transition writes, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub transition: Transition,
    /// `None` for a create: the agreement must not exist yet.
    pub expected: Option<Revision>,
    /// Stored with the change; refused with `IdempotencyKeyTaken` if a live record has the key.
    pub idempotency: Option<IdempotencyRecord>,
    /// Stored with the change; refused with `DuplicateProviderEvent` if the event id is marked.
    pub provider_event: Option<ProviderEventMark>,
}

#[async_trait]
pub trait AgreementGet: Send + Sync {
    /// The agreement by id, whatever its tenant: callers check the tenant. Shared, so that a store
    /// that keeps agreements in memory hands out the one it holds instead of a deep copy.
    async fn get_agreement(&self, id: &str) -> Result<Option<Arc<Agreement>>, StoreError>;
}

#[async_trait]
pub trait AgreementCommit: Send + Sync {
    async fn commit(&self, commit: Commit) -> Result<(), CommitError>;
}

/// Keyset position in a tenant's list (newest first): the last agreement of the previous page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPosition {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

impl ListPosition {
    pub fn of(agreement: &Agreement) -> Self {
        ListPosition {
            created_at: agreement.created_at,
            id: agreement.id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub tenant: String,
    pub lookup_key: Option<String>,
    pub status: Option<Status>,
    /// 1 or more.
    pub limit: usize,
    pub after: Option<ListPosition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// Newest first (`created_at` descending, then `id` descending).
    pub agreements: Vec<Agreement>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<ListPosition>,
}

#[async_trait]
pub trait AgreementList: Send + Sync {
    /// The tenant's agreements, filtered, newest first, through an index (never a scan).
    async fn list_agreements(&self, query: &ListQuery) -> Result<ListPage, StoreError>;
}

#[async_trait]
pub trait HistoryRead: Send + Sync {
    /// Every history entry of the agreement, oldest first.
    async fn history(&self, agreement_id: &str) -> Result<Vec<HistoryEntry>, StoreError>;
}

/// A page of pending agreements whose `expires_at` has passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuePage {
    pub agreements: Vec<Agreement>,
    /// Opaque, store-specific; `None` when nothing more is due.
    pub cursor: Option<String>,
}

#[async_trait]
pub trait ExpiryIndex: Send + Sync {
    /// Pending agreements with `expires_at <= now`, at most `limit`, read from an index of pending
    /// agreements only, so the cost follows what is due, not the table.
    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<DuePage, StoreError>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// The live record for the key (`expires_at` after `now`), if any.
    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Stores a record on its own (a request that changed nothing); `IdempotencyKeyTaken` if a live
    /// record has the key.
    async fn put_idempotency(
        &self,
        record: IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), CommitError>;
}

/// Committed history entries in commit order: what the outbox publisher reads. On DynamoDB the
/// table's stream plays this part.
#[async_trait]
pub trait OutboxFeed: Send + Sync {
    /// Entries committed after `position` (0 = from the start), at most `limit`, each with its
    /// position.
    async fn read_outbox(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, StoreError>;

    /// Forgets the entries up to and including `position`: every sink has them. Positions stay
    /// what they were; a later `read_outbox` from a released position starts at the first entry
    /// still kept. The feed has one reader (the relay), so what it released nobody else needs.
    async fn release_outbox(&self, position: u64) -> Result<(), StoreError>;
}

/// A verified provider event kept until it is applied. `countersign-local` answers a callback
/// 202 only once its event is kept here, so a crash between the answer and the apply loses
/// nothing (on AWS the SQS callback queue plays this part). The payload is opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEvent {
    pub provider: String,
    pub event_id: String,
    pub received_at: DateTime<Utc>,
    pub payload: String,
    /// How many times it was claimed, this claim included (0 before the first claim): like
    /// SQS's receive count, it survives restarts.
    pub receives: u32,
}

impl InboxEvent {
    /// The order events are claimed in: oldest first, ties broken by provider and id.
    pub fn arrival(&self) -> (DateTime<Utc>, &str, &str) {
        (self.received_at, &self.provider, &self.event_id)
    }
}

#[async_trait]
pub trait CallbackInbox: Send + Sync {
    /// Keeps the event unless an event with its provider and id is already kept (a redelivery):
    /// either way it is kept once and will be applied.
    async fn put_inbox(&self, event: &InboxEvent) -> Result<(), StoreError>;

    /// Claims up to `limit` kept events, oldest first, that nobody holds (no claim, or a claim
    /// that ran out before `now`), each until `until`. Each claim is one conditional write, so
    /// two workers never hold the same event at once.
    async fn claim_inbox(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError>;

    /// Forgets an event once it has been applied (or recorded as ignored).
    async fn remove_inbox(&self, provider: &str, event_id: &str) -> Result<(), StoreError>;

    /// Sets aside an event that kept failing, with why, in one write: out of the claimable ones
    /// and never lost.
    async fn dead_letter_inbox(&self, event: &InboxEvent, error: &str) -> Result<(), StoreError>;

    /// The dead-lettered events with their errors, at most `limit`.
    async fn dead_lettered_inbox(
        &self,
        limit: usize,
    ) -> Result<Vec<(InboxEvent, String)>, StoreError>;
}

/// How far a provider adapter got with one agreement (SPEC section 9): recorded before each
/// next step, so that a redelivered dispatch, or a function that died halfway, resumes instead of
/// starting over. `state` is the adapter's own; the store only keys `reference`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderProgress {
    pub agreement_id: String,
    pub provider: String,
    pub state: String,
    /// The provider's id for the agreement, once it has one: webhooks naming it find the
    /// agreement through [`ProviderProgressStore::find_by_provider_reference`].
    pub reference: Option<String>,
    /// 1 for the first record, + 1 for each next one: the guard of every write.
    pub revision: u64,
    pub updated_at: DateTime<Utc>,
}

#[async_trait]
pub trait ProviderProgressStore: Send + Sync {
    async fn get_provider_progress(
        &self,
        agreement_id: &str,
    ) -> Result<Option<ProviderProgress>, StoreError>;

    /// Writes `progress` only if the stored revision is `progress.revision - 1` (nothing stored
    /// for revision 1), and with it, in the same write, the key from (`provider`, `reference`) to
    /// the agreement. `Conflict` if the revision moved, or another agreement holds the reference.
    async fn put_provider_progress(&self, progress: &ProviderProgress) -> Result<(), CommitError>;

    /// Takes the dispatch lease of an agreement for `holder` until `until`, or renews it: granted
    /// when nobody holds it, when its holder let it run out before `now`, or when `holder` has it
    /// already (so a retried write whose answer was lost is granted again). `false` when another
    /// holder has it. One conditional write: two dispatches of one agreement never both hold it.
    async fn take_dispatch_lease(
        &self,
        agreement_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives the lease back if `holder` still has it (nothing otherwise).
    async fn release_dispatch_lease(
        &self,
        agreement_id: &str,
        holder: &str,
    ) -> Result<(), StoreError>;

    /// The agreement a provider's own reference names, read from its key (never a scan).
    async fn find_by_provider_reference(
        &self,
        provider: &str,
        reference: &str,
    ) -> Result<Option<String>, StoreError>;
}

/// Everything the API and the workers need of a store.
pub trait Store:
    AgreementGet + AgreementCommit + AgreementList + HistoryRead + ExpiryIndex + IdempotencyStore
{
}

impl<T> Store for T where
    T: AgreementGet
        + AgreementCommit
        + AgreementList
        + HistoryRead
        + ExpiryIndex
        + IdempotencyStore
{
}
