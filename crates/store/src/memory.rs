//! The embedded in-memory store: the same guarantees as the DynamoDB store (one atomic,
//! version-guarded write per transition; indexes instead of scans), held in one process.
//!
//! Everything lives behind one mutex. A commit checks every condition first and only then writes,
//! so a refused commit leaves no trace, and no reader ever sees half a commit.
//!
//! The maps are B-trees, not hash maps: a hash map doubles by moving every entry at once, under
//! the lock, which at a million agreements stalls every request for that long (the tail of
//! `scripts/bench`); a B-tree grows a node at a time. Agreements are kept behind an `Arc`, so a
//! read holds the lock only to take a reference, and copies the agreement after releasing it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use countersign_domain::{Agreement, HistoryEntry, Status};

use crate::ports::{
    AgreementCommit, AgreementGet, AgreementList, CallbackInbox, Commit, CommitError, DuePage,
    ExpiryIndex, HistoryRead, IdempotencyRecord, IdempotencyStore, InboxEvent, ListPage,
    ListPosition, ListQuery, OutboxFeed, ProviderEventMark, ProviderProgress,
    ProviderProgressStore, StoreError,
};

/// Capacity an emptied outbox keeps: enough for the relay's usual batch without reallocating.
const OUTBOX_KEPT_CAPACITY: usize = 1024;

/// A callback in the inbox, with the end of its claim if claimed.
type KeptCallback = (InboxEvent, Option<DateTime<Utc>>);

/// Position of an agreement in an ordered index: a timestamp, then the id to break ties.
type IndexKey = (DateTime<Utc>, String);

/// The embedded store. Cloning is cheap and every clone sees the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("agreements", &state.agreements.len())
            .field("outbox", &state.outbox.len())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    agreements: BTreeMap<String, Arc<Agreement>>,
    /// Each agreement's history, oldest first: entry `sequence` n sits at index n - 1.
    histories: BTreeMap<String, Vec<HistoryEntry>>,
    /// Per tenant, every agreement by (created_at, id): the newest-first listing.
    by_tenant: BTreeMap<String, BTreeSet<IndexKey>>,
    /// Per (tenant, lookup_key), the same order: the listing filtered by lookup key.
    by_lookup_key: BTreeMap<(String, String), BTreeSet<IndexKey>>,
    /// Sparse: only pending agreements with an `expires_at`, by (expires_at, id).
    pending_by_expiry: BTreeSet<IndexKey>,
    /// The committed history entries not yet released, in commit order: the entry at index i
    /// has position `outbox_released + i + 1`. Released entries are dropped so that the feed
    /// stays as short as what the relay has not yet published (the histories keep every entry).
    outbox: VecDeque<HistoryEntry>,
    /// The last released position (0: nothing released).
    outbox_released: u64,
    /// By (tenant, key). Expired records stay until replaced; readers treat them as absent.
    idempotency: BTreeMap<(String, String), IdempotencyRecord>,
    /// By (provider, event_id).
    provider_events: BTreeMap<(String, String), ProviderEventMark>,
    /// Kept callbacks by (provider, event_id).
    inbox: BTreeMap<(String, String), KeptCallback>,
    /// Dead-lettered callbacks by (provider, event_id), with their errors.
    dead_inbox: BTreeMap<(String, String), (InboxEvent, String)>,
    /// Provider progress by agreement id.
    provider_progress: BTreeMap<String, ProviderProgress>,
    /// The dispatch lease of each agreement: its holder and until when.
    dispatch_leases: BTreeMap<String, (String, DateTime<Utc>)>,
    /// Agreement ids by (provider, provider reference).
    provider_references: BTreeMap<(String, String), String>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many outbox entries are kept: committed and not yet released by the relay.
    pub fn outbox_kept(&self) -> usize {
        self.lock().outbox.len()
    }

    /// The state, even after a thread panicked while holding the lock. That is sound here: every
    /// write happens after all checks, through infallible map and vector inserts, so a panic
    /// cannot leave a half-applied commit behind that a later caller would need to be shielded
    /// from, and refusing every later call would take the whole process down with one bad request.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What the indexes hold for one agreement, so a commit can take out the old keys and put in the
/// new ones.
struct IndexKeys {
    tenant: (String, IndexKey),
    lookup_key: Option<((String, String), IndexKey)>,
    pending_expiry: Option<IndexKey>,
}

impl IndexKeys {
    fn of(agreement: &Agreement) -> Self {
        let position = (agreement.created_at, agreement.id.clone());
        IndexKeys {
            tenant: (agreement.tenant.clone(), position.clone()),
            lookup_key: agreement
                .lookup_key()
                .map(|key| ((agreement.tenant.clone(), key.to_owned()), position)),
            pending_expiry: match (agreement.status, agreement.expires_at) {
                (Status::Pending, Some(expires_at)) => Some((expires_at, agreement.id.clone())),
                _ => None,
            },
        }
    }
}

impl State {
    /// Every condition of a commit, checked before anything is written.
    fn check(&self, commit: &Commit) -> Result<(), CommitError> {
        let agreement = &commit.transition.agreement;
        let stored = self.agreements.get(&agreement.id);
        match (commit.expected, stored) {
            (None, None) => {}
            (Some(expected), Some(stored))
                if stored.version == expected.version
                    && stored.history_len == expected.history_len => {}
            _ => return Err(CommitError::Conflict),
        }

        // The entries must continue the stored history exactly, and the new agreement must count
        // them; otherwise the stored agreement and its history would disagree from then on.
        let stored_len = self.histories.get(&agreement.id).map_or(0, Vec::len) as u64;
        let continues =
            commit
                .transition
                .entries
                .iter()
                .zip(stored_len + 1..)
                .all(|(entry, sequence)| {
                    entry.agreement_id == agreement.id && entry.sequence == sequence
                });
        let counted = agreement.history_len == stored_len + commit.transition.entries.len() as u64;
        if !continues || !counted {
            return Err(CommitError::Conflict);
        }

        if let Some(record) = &commit.idempotency {
            // The commit's "now" is when its record was made.
            if self
                .live_idempotency(&record.tenant, &record.key, record.created_at)
                .is_some()
            {
                return Err(CommitError::IdempotencyKeyTaken);
            }
        }
        if let Some(mark) = &commit.provider_event {
            let key = (mark.provider.clone(), mark.event_id.clone());
            if self.provider_events.contains_key(&key) {
                return Err(CommitError::DuplicateProviderEvent);
            }
        }
        Ok(())
    }

    /// Writes a commit that passed `check`.
    fn apply(&mut self, commit: Commit) {
        let Commit {
            transition,
            idempotency,
            provider_event,
            ..
        } = commit;
        let agreement = transition.agreement;

        if let Some(previous) = self.agreements.get(&agreement.id) {
            let old = IndexKeys::of(previous);
            self.unindex(old);
        }
        self.index(IndexKeys::of(&agreement));

        self.outbox.extend(transition.entries.iter().cloned());
        self.histories
            .entry(agreement.id.clone())
            .or_default()
            .extend(transition.entries);
        self.agreements
            .insert(agreement.id.clone(), Arc::new(agreement));

        if let Some(record) = idempotency {
            self.idempotency
                .insert((record.tenant.clone(), record.key.clone()), record);
        }
        if let Some(mark) = provider_event {
            self.provider_events
                .insert((mark.provider.clone(), mark.event_id.clone()), mark);
        }
    }

    fn unindex(&mut self, keys: IndexKeys) {
        let (tenant, position) = keys.tenant;
        if let Some(index) = self.by_tenant.get_mut(&tenant) {
            index.remove(&position);
            if index.is_empty() {
                self.by_tenant.remove(&tenant);
            }
        }
        if let Some((lookup, position)) = keys.lookup_key {
            if let Some(index) = self.by_lookup_key.get_mut(&lookup) {
                index.remove(&position);
                if index.is_empty() {
                    self.by_lookup_key.remove(&lookup);
                }
            }
        }
        if let Some(key) = keys.pending_expiry {
            self.pending_by_expiry.remove(&key);
        }
    }

    fn index(&mut self, keys: IndexKeys) {
        let (tenant, position) = keys.tenant;
        self.by_tenant.entry(tenant).or_default().insert(position);
        if let Some((lookup, position)) = keys.lookup_key {
            self.by_lookup_key
                .entry(lookup)
                .or_default()
                .insert(position);
        }
        if let Some(key) = keys.pending_expiry {
            self.pending_by_expiry.insert(key);
        }
    }

    fn live_idempotency(
        &self,
        tenant: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Option<&IdempotencyRecord> {
        self.idempotency
            .get(&(tenant.to_owned(), key.to_owned()))
            .filter(|record| record.expires_at > now)
    }
}

#[async_trait]
impl AgreementGet for MemoryStore {
    async fn get_agreement(&self, id: &str) -> Result<Option<Arc<Agreement>>, StoreError> {
        Ok(self.lock().agreements.get(id).cloned())
    }
}

#[async_trait]
impl AgreementCommit for MemoryStore {
    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        // One guard for check and write: nothing can slip in between.
        let mut state = self.lock();
        state.check(&commit)?;
        state.apply(commit);
        Ok(())
    }
}

#[async_trait]
impl AgreementList for MemoryStore {
    /// Walks the tenant's index, or the (tenant, lookup_key) index when the query has a lookup
    /// key, newest first from `after`. The status filter is applied while walking, so a rare
    /// status costs a walk over the tenant's (or lookup key's) agreements, never over other
    /// tenants'. A `limit` of 0 is read as 1 so that every page makes progress.
    async fn list_agreements(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let state = self.lock();
        let index = match &query.lookup_key {
            Some(key) => state
                .by_lookup_key
                .get(&(query.tenant.clone(), key.clone())),
            None => state.by_tenant.get(&query.tenant),
        };
        let Some(index) = index else {
            return Ok(ListPage {
                agreements: Vec::new(),
                next: None,
            });
        };
        let upper = match &query.after {
            Some(after) => Bound::Excluded((after.created_at, after.id.clone())),
            None => Bound::Unbounded,
        };
        let limit = query.limit.max(1);
        let mut matching = index
            .range((Bound::Unbounded, upper))
            .rev()
            .map(|(_, id)| {
                state.agreements.get(id).ok_or_else(|| {
                    StoreError::Corrupt(format!("index names agreement `{id}` that is not stored"))
                })
            })
            .filter(|agreement| match (agreement, query.status) {
                (Ok(agreement), Some(status)) => agreement.status == status,
                _ => true,
            });

        let mut kept = Vec::new();
        for agreement in matching.by_ref().take(limit) {
            kept.push(agreement?.clone());
        }
        // One more match means there is a next page; it starts after this page's last item.
        let more = matching.next().transpose()?.is_some();
        drop(state);
        let next = match kept.last() {
            Some(last) if more => Some(ListPosition::of(last)),
            _ => None,
        };
        let agreements = kept.into_iter().map(Arc::unwrap_or_clone).collect();
        Ok(ListPage { agreements, next })
    }
}

#[async_trait]
impl HistoryRead for MemoryStore {
    async fn history(&self, agreement_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self
            .lock()
            .histories
            .get(agreement_id)
            .cloned()
            .unwrap_or_default())
    }
}

/// The cursor of `due_for_expiry`: `<expires_at RFC 3339, nanoseconds>|<id>`, the last agreement
/// returned. RFC 3339 has no `|`, so the first one separates the two, whatever the id holds.
fn due_cursor(key: &IndexKey) -> String {
    format!(
        "{}|{}",
        key.0.to_rfc3339_opts(SecondsFormat::Nanos, true),
        key.1
    )
}

/// Reads a cursor back. One this store did not make is `Corrupt`: the caller passed garbage, and
/// starting over silently could loop forever.
fn parse_due_cursor(cursor: &str) -> Result<IndexKey, StoreError> {
    let (expires_at, id) = cursor
        .split_once('|')
        .ok_or_else(|| StoreError::Corrupt(format!("expiry cursor `{cursor}` has no `|`")))?;
    let expires_at = DateTime::parse_from_rfc3339(expires_at)
        .map_err(|error| StoreError::Corrupt(format!("expiry cursor `{cursor}`: {error}")))?
        .with_timezone(&Utc);
    Ok((expires_at, id.to_owned()))
}

#[async_trait]
impl ExpiryIndex for MemoryStore {
    /// Walks the sparse pending index from the cursor, oldest expiry first. A `limit` of 0 is read
    /// as 1 so that every page makes progress. A cursor that does not parse is
    /// `StoreError::Corrupt`.
    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<DuePage, StoreError> {
        let lower = match cursor.as_deref() {
            Some(cursor) => Bound::Excluded(parse_due_cursor(cursor)?),
            None => Bound::Unbounded,
        };
        let state = self.lock();
        let mut due = state
            .pending_by_expiry
            .range((lower, Bound::Unbounded))
            .take_while(|(expires_at, _)| *expires_at <= now);

        let mut agreements = Vec::new();
        let mut last = None;
        for key in due.by_ref().take(limit.max(1)) {
            let agreement = state.agreements.get(&key.1).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "expiry index names agreement `{}` that is not stored",
                    key.1
                ))
            })?;
            agreements.push(agreement.clone());
            last = Some(key);
        }
        let cursor = match last {
            Some(last) if due.next().is_some() => Some(due_cursor(last)),
            _ => None,
        };
        drop(state);
        let agreements = agreements.into_iter().map(Arc::unwrap_or_clone).collect();
        Ok(DuePage { agreements, cursor })
    }
}

#[async_trait]
impl IdempotencyStore for MemoryStore {
    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().live_idempotency(tenant, key, now).cloned())
    }

    async fn put_idempotency(
        &self,
        record: IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), CommitError> {
        let mut state = self.lock();
        if state
            .live_idempotency(&record.tenant, &record.key, now)
            .is_some()
        {
            return Err(CommitError::IdempotencyKeyTaken);
        }
        // An expired record under the key is replaced.
        state
            .idempotency
            .insert((record.tenant.clone(), record.key.clone()), record);
        Ok(())
    }
}

#[async_trait]
impl CallbackInbox for MemoryStore {
    async fn put_inbox(&self, event: &InboxEvent) -> Result<(), StoreError> {
        let key = (event.provider.clone(), event.event_id.clone());
        self.lock().inbox.entry(key).or_insert_with(|| {
            (
                InboxEvent {
                    receives: 0,
                    ..event.clone()
                },
                None,
            )
        });
        Ok(())
    }

    async fn claim_inbox(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let mut state = self.lock();
        let mut free: Vec<&mut KeptCallback> = state
            .inbox
            .values_mut()
            .filter(|(_, claimed_until)| claimed_until.is_none_or(|end| end < now))
            .collect();
        free.sort_by(|(a, _), (b, _)| a.arrival().cmp(&b.arrival()));
        Ok(free
            .into_iter()
            .take(limit)
            .map(|(event, claimed_until)| {
                *claimed_until = Some(until);
                event.receives += 1;
                event.clone()
            })
            .collect())
    }

    async fn remove_inbox(&self, provider: &str, event_id: &str) -> Result<(), StoreError> {
        self.lock()
            .inbox
            .remove(&(provider.to_owned(), event_id.to_owned()));
        Ok(())
    }

    async fn dead_letter_inbox(&self, event: &InboxEvent, error: &str) -> Result<(), StoreError> {
        let key = (event.provider.clone(), event.event_id.clone());
        let mut state = self.lock();
        state.inbox.remove(&key);
        state
            .dead_inbox
            .insert(key, (event.clone(), error.to_owned()));
        Ok(())
    }

    async fn dead_lettered_inbox(
        &self,
        limit: usize,
    ) -> Result<Vec<(InboxEvent, String)>, StoreError> {
        let state = self.lock();
        let mut dead: Vec<(InboxEvent, String)> = state.dead_inbox.values().cloned().collect();
        dead.sort_by(|(a, _), (b, _)| a.arrival().cmp(&b.arrival()));
        dead.truncate(limit);
        Ok(dead)
    }
}

#[async_trait]
impl ProviderProgressStore for MemoryStore {
    async fn get_provider_progress(
        &self,
        agreement_id: &str,
    ) -> Result<Option<ProviderProgress>, StoreError> {
        Ok(self.lock().provider_progress.get(agreement_id).cloned())
    }

    async fn put_provider_progress(&self, progress: &ProviderProgress) -> Result<(), CommitError> {
        let mut state = self.lock();
        let stored = state
            .provider_progress
            .get(&progress.agreement_id)
            .map_or(0, |stored| stored.revision);
        if progress.revision == 0 || stored != progress.revision - 1 {
            return Err(CommitError::Conflict);
        }
        let key = progress
            .reference
            .as_ref()
            .map(|reference| (progress.provider.clone(), reference.clone()));
        if let Some(key) = &key {
            if state
                .provider_references
                .get(key)
                .is_some_and(|holder| *holder != progress.agreement_id)
            {
                return Err(CommitError::Conflict);
            }
        }
        if let Some(key) = key {
            state
                .provider_references
                .insert(key, progress.agreement_id.clone());
        }
        state
            .provider_progress
            .insert(progress.agreement_id.clone(), progress.clone());
        Ok(())
    }

    async fn take_dispatch_lease(
        &self,
        agreement_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let taken = state
            .dispatch_leases
            .get(agreement_id)
            .is_some_and(|(current, end)| current != holder && *end >= now);
        if taken {
            return Ok(false);
        }
        state
            .dispatch_leases
            .insert(agreement_id.to_owned(), (holder.to_owned(), until));
        Ok(true)
    }

    async fn release_dispatch_lease(
        &self,
        agreement_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        if state
            .dispatch_leases
            .get(agreement_id)
            .is_some_and(|(current, _)| current == holder)
        {
            state.dispatch_leases.remove(agreement_id);
        }
        Ok(())
    }

    async fn find_by_provider_reference(
        &self,
        provider: &str,
        reference: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .provider_references
            .get(&(provider.to_owned(), reference.to_owned()))
            .cloned())
    }
}

#[async_trait]
impl OutboxFeed for MemoryStore {
    /// A `limit` of 0 is read as 1, like the other pages.
    async fn read_outbox(
        &self,
        position: u64,
        limit: usize,
    ) -> Result<Vec<(u64, HistoryEntry)>, StoreError> {
        let state = self.lock();
        // Nothing at or before the released position is kept: read from the first entry kept.
        let position = position.max(state.outbox_released);
        // Position p is the entry at index p - released - 1, so the entries after p start at
        // index p - released.
        let start = usize::try_from(position - state.outbox_released).unwrap_or(usize::MAX);
        Ok(state
            .outbox
            .iter()
            .skip(start)
            .take(limit.max(1))
            .zip(position.saturating_add(1)..)
            .map(|(entry, position)| (position, entry.clone()))
            .collect())
    }

    async fn release_outbox(&self, position: u64) -> Result<(), StoreError> {
        let mut state = self.lock();
        let kept = state.outbox.len() as u64;
        // Positions beyond the last committed entry release only what exists.
        let releasing = position.saturating_sub(state.outbox_released).min(kept);
        state.outbox.drain(..releasing as usize);
        state.outbox_released += releasing;
        if state.outbox.is_empty() {
            // Give back the memory of a burst once it is published.
            state.outbox.shrink_to(OUTBOX_KEPT_CAPACITY);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use countersign_domain::input::{DocumentsInput, FileRefInput, ParticipantInput};
    use countersign_domain::{
        AgreementInput, BankInformation, CancellationReason, Contract, Decision, IdSource,
        LifecycleRequest, Metadata, Rules, Transition,
    };

    use super::*;
    use crate::ports::Revision;

    struct Ids(u64);

    impl IdSource for Ids {
        fn new_id(&mut self) -> String {
            self.0 += 1;
            format!("id{}", self.0)
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    }

    fn input(lookup_key: &str) -> AgreementInput {
        AgreementInput {
            participants: vec![ParticipantInput {
                id: Some("p1".into()),
                name: Some("Ada".into()),
                email: Some("ada@example.com".into()),
                role: Default::default(),
                signing_group: 1,
            }],
            contract: Some(Contract {
                contract_id: None,
                proposal_id: None,
                bank_information: Some(BankInformation {
                    account_holder: Some("Ada".into()),
                    iban: Some("DE89370400440532013000".into()),
                    bic: None,
                }),
            }),
            documents: Some(DocumentsInput {
                main: Some(FileRefInput {
                    id: None,
                    filename: "c.pdf".into(),
                    mime_type: "application/pdf".into(),
                    size: 1,
                    sha256: "0".repeat(64),
                    uri: "https://example.com/c.pdf".into(),
                }),
                attachments: vec![],
            }),
            metadata: Some(Metadata {
                lookup_key: Some(lookup_key.into()),
                success_callback_url: None,
            }),
            ..AgreementInput::default()
        }
    }

    fn create(id: &str, now: DateTime<Utc>) -> Transition {
        Agreement::create(
            id.into(),
            "tenant".into(),
            input("key-1"),
            now,
            &Rules::default(),
            &mut Ids(0),
        )
        .unwrap()
    }

    fn changed(decision: Decision) -> Transition {
        match decision {
            Decision::Changed(transition) => transition,
            other => panic!("not a change: {other:?}"),
        }
    }

    /// `read` sent for signature at `now`.
    fn sent(read: &Agreement, now: DateTime<Utc>) -> Transition {
        changed(
            read.decide_lifecycle(LifecycleRequest::Pending, now)
                .unwrap(),
        )
    }

    fn creating(transition: Transition) -> Commit {
        Commit {
            transition,
            expected: None,
            idempotency: None,
            provider_event: None,
        }
    }

    fn changing(read: &Agreement, transition: Transition) -> Commit {
        Commit {
            expected: Some(Revision::of(read)),
            ..creating(transition)
        }
    }

    fn record(key: &str, created_at: DateTime<Utc>, body: &str) -> IdempotencyRecord {
        IdempotencyRecord {
            tenant: "tenant".into(),
            key: key.into(),
            request_hash: "h".into(),
            status: 200,
            headers: vec![],
            body: body.into(),
            created_at,
            expires_at: created_at + Duration::days(1),
        }
    }

    /// Creates and sends an agreement; returns it pending.
    async fn pending(store: &MemoryStore, id: &str, now: DateTime<Utc>) -> Agreement {
        let draft = create(id, now);
        store.commit(creating(draft.clone())).await.unwrap();
        let sent = sent(&draft.agreement, now);
        store
            .commit(changing(&draft.agreement, sent.clone()))
            .await
            .unwrap();
        sent.agreement
    }

    #[tokio::test]
    async fn reads_share_the_agreement_held_until_a_commit_replaces_it() {
        let store = MemoryStore::new();
        let draft = create("a", t0());
        store.commit(creating(draft.clone())).await.unwrap();
        let first = store.get_agreement("a").await.unwrap().unwrap();
        let second = store.get_agreement("a").await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second), "a read is not a copy");

        let sent = sent(&draft.agreement, t0());
        store
            .commit(changing(&draft.agreement, sent.clone()))
            .await
            .unwrap();
        let after = store.get_agreement("a").await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &after));
        assert_eq!(*after, sent.agreement);
        assert_eq!(
            *first, draft.agreement,
            "what was read before stays as it was"
        );
    }

    #[tokio::test]
    async fn outbox_positions_follow_commit_order() {
        let store = MemoryStore::new();
        let a = create("a", t0());
        let b = create("b", t0());
        store.commit(creating(a.clone())).await.unwrap();
        store.commit(creating(b.clone())).await.unwrap();
        let send_a = sent(&a.agreement, t0());
        store
            .commit(changing(&a.agreement, send_a.clone()))
            .await
            .unwrap();
        // A refused commit adds nothing to the feed.
        assert_eq!(
            store.commit(creating(b.clone())).await,
            Err(CommitError::Conflict)
        );

        let all = store.read_outbox(0, 100).await.unwrap();
        let expected: Vec<(u64, HistoryEntry)> = a
            .entries
            .iter()
            .chain(&b.entries)
            .chain(&send_a.entries)
            .cloned()
            .zip(1..)
            .map(|(entry, position)| (position, entry))
            .collect();
        assert_eq!(expected.len(), 4);
        assert_eq!(all, expected);

        let middle = store.read_outbox(1, 2).await.unwrap();
        assert_eq!(middle, expected[1..3].to_vec());
        assert_eq!(store.read_outbox(3, 100).await.unwrap(), expected[3..]);
        assert!(store.read_outbox(4, 100).await.unwrap().is_empty());
        assert!(store.read_outbox(u64::MAX, 100).await.unwrap().is_empty());
        // A limit of 0 still makes progress.
        assert_eq!(store.read_outbox(0, 0).await.unwrap(), expected[..1]);

        // Released entries are gone; the others keep their positions.
        store.release_outbox(2).await.unwrap();
        assert_eq!(store.outbox_kept(), 2);
        assert_eq!(store.read_outbox(2, 100).await.unwrap(), expected[2..]);
        assert_eq!(
            store.read_outbox(0, 100).await.unwrap(),
            expected[2..],
            "reading from a released position starts at the first entry kept"
        );
        assert_eq!(store.read_outbox(3, 1).await.unwrap(), expected[3..]);
        // Releasing again, or behind what was released, changes nothing.
        store.release_outbox(2).await.unwrap();
        store.release_outbox(1).await.unwrap();
        assert_eq!(store.outbox_kept(), 2);
        // Beyond the last entry releases only what exists: the next commit takes position 5.
        store.release_outbox(u64::MAX).await.unwrap();
        assert_eq!(store.outbox_kept(), 0);
        assert!(store.read_outbox(0, 100).await.unwrap().is_empty());
        let c = create("c", t0());
        store.commit(creating(c.clone())).await.unwrap();
        assert_eq!(
            store.read_outbox(4, 100).await.unwrap(),
            vec![(5, c.entries[0].clone())]
        );
        assert_eq!(store.read_outbox(0, 100).await.unwrap()[0].0, 5);
    }

    #[tokio::test]
    async fn an_expired_idempotency_record_is_replaced() {
        let store = MemoryStore::new();
        let first = record("k", t0(), "first");
        store.put_idempotency(first.clone(), t0()).await.unwrap();
        let later = t0() + Duration::days(2);
        assert_eq!(store.get_idempotency("tenant", "k", later).await, Ok(None));

        let second = record("k", later, "second");
        assert_eq!(store.put_idempotency(second.clone(), later).await, Ok(()));
        assert_eq!(
            store.get_idempotency("tenant", "k", later).await,
            Ok(Some(second))
        );
        assert_eq!(
            store
                .put_idempotency(record("k", later, "third"), later + Duration::hours(1))
                .await,
            Err(CommitError::IdempotencyKeyTaken)
        );

        // A commit replaces an expired record too, judged at the record's created_at.
        let much_later = later + Duration::days(2);
        let fourth = record("k", much_later, "fourth");
        store
            .commit(Commit {
                idempotency: Some(fourth.clone()),
                ..creating(create("a", much_later))
            })
            .await
            .unwrap();
        assert_eq!(
            store.get_idempotency("tenant", "k", much_later).await,
            Ok(Some(fourth))
        );
    }

    #[tokio::test]
    async fn a_poisoned_lock_neither_panics_nor_refuses() {
        let store = MemoryStore::new();
        store.commit(creating(create("a", t0()))).await.unwrap();
        let holder = store.clone();
        let crashed = std::thread::spawn(move || {
            let _guard = holder.state.lock();
            panic!("a thread dies holding the lock (expected in this test)");
        })
        .join();
        assert!(crashed.is_err());
        assert!(store.state.is_poisoned());

        assert!(store.get_agreement("a").await.unwrap().is_some());
        store.commit(creating(create("b", t0()))).await.unwrap();
        let page = store
            .list_agreements(&ListQuery {
                tenant: "tenant".into(),
                lookup_key: None,
                status: None,
                limit: 10,
                after: None,
            })
            .await
            .unwrap();
        assert_eq!(page.agreements.len(), 2);
        assert_eq!(store.read_outbox(0, 10).await.unwrap().len(), 2);
        assert!(format!("{store:?}").contains("agreements: 2"));
    }

    #[tokio::test]
    async fn a_cursor_this_store_did_not_make_is_corrupt() {
        let store = MemoryStore::new();
        for cursor in ["garbage", "not-a-date|id", ""] {
            let result = store.due_for_expiry(t0(), 10, Some(cursor.into())).await;
            assert!(
                matches!(result, Err(StoreError::Corrupt(_))),
                "{cursor}: {result:?}"
            );
        }
        // The cursor's id may hold the separator: only the first one splits.
        let key = (t0(), "odd|id".to_owned());
        assert_eq!(parse_due_cursor(&due_cursor(&key)), Ok(key));
    }

    #[tokio::test]
    async fn due_pages_end_without_an_empty_page() {
        let store = MemoryStore::new();
        pending(&store, "a", t0()).await;
        pending(&store, "b", t0() + Duration::hours(1)).await;
        let now = t0() + Duration::days(200);

        let page = store.due_for_expiry(now, 2, None).await.unwrap();
        assert_eq!(page.agreements.len(), 2);
        assert_eq!(page.cursor, None, "nothing more is due");

        let first = store.due_for_expiry(now, 1, None).await.unwrap();
        assert_eq!(first.agreements[0].id, "a");
        assert!(first.cursor.is_some());
        let second = store.due_for_expiry(now, 1, first.cursor).await.unwrap();
        assert_eq!(second.agreements[0].id, "b");
        assert_eq!(second.cursor, None);
    }

    #[tokio::test]
    async fn entries_that_do_not_continue_the_history_are_refused() {
        let store = MemoryStore::new();
        let draft = create("a", t0());
        store.commit(creating(draft.clone())).await.unwrap();
        let read = draft.agreement;
        let send = sent(&read, t0());

        let mut gap = send.clone();
        gap.entries[0].sequence += 1;
        let mut foreign = send.clone();
        foreign.entries[0].agreement_id = "b".into();
        let mut miscounted = send.clone();
        miscounted.agreement.history_len += 1;
        let mut missing = send.clone();
        missing.entries.pop();
        for broken in [gap, foreign, miscounted, missing] {
            assert_eq!(
                store.commit(changing(&read, broken)).await,
                Err(CommitError::Conflict)
            );
        }
        assert_eq!(
            store.get_agreement("a").await.unwrap().as_deref(),
            Some(&read)
        );
        assert_eq!(store.history("a").await.unwrap().len(), 1);
        assert_eq!(store.read_outbox(0, 10).await.unwrap().len(), 1);
        assert!(store.state.lock().unwrap().pending_by_expiry.is_empty());

        store.commit(changing(&read, send)).await.unwrap();
        assert_eq!(store.history("a").await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn indexes_follow_each_commit() {
        let store = MemoryStore::new();
        let sent = pending(&store, "a", t0()).await;
        assert_eq!(store.state.lock().unwrap().pending_by_expiry.len(), 1);

        // Reopened and edited to another lookup key: out of the pending index, under the new key.
        let reopen = changed(sent.decide_lifecycle(LifecycleRequest::Open, t0()).unwrap());
        store.commit(changing(&sent, reopen.clone())).await.unwrap();
        let opened = reopen.agreement;
        let edit = changed(
            opened
                .decide_edit(input("key-2"), t0(), &Rules::default(), &mut Ids(100))
                .unwrap(),
        );
        store.commit(changing(&opened, edit.clone())).await.unwrap();
        let cancel = changed(
            edit.agreement
                .decide_lifecycle(
                    LifecycleRequest::Cancelled(CancellationReason::InvalidEmail),
                    t0(),
                )
                .unwrap(),
        );
        store
            .commit(changing(&edit.agreement, cancel))
            .await
            .unwrap();

        let state = store.state.lock().unwrap();
        assert!(state.pending_by_expiry.is_empty());
        let key = |k: &str| ("tenant".to_owned(), k.to_owned());
        assert!(!state.by_lookup_key.contains_key(&key("key-1")));
        assert_eq!(state.by_lookup_key[&key("key-2")].len(), 1);
        assert_eq!(state.by_tenant["tenant"].len(), 1);
    }
}
