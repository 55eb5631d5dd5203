//! `DynamoStore`: the storage ports over one DynamoDB table (layout in [`crate::item`]).

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use countersign_domain::{Agreement, HistoryEntry};
use countersign_store::{
    AgreementCommit, AgreementGet, AgreementList, Commit, CommitError, DuePage, ExpiryIndex,
    HistoryRead, IdempotencyRecord, IdempotencyStore, ListPage, ListPosition, ListQuery,
    StoreError,
};
use futures_util::future::try_join_all;

use crate::error::{commit_error, put_idempotency_error, unavailable, Role};
use crate::item::{
    agreement_item, agreement_pk, created_sk, decode_agreement, decode_history_entry,
    decode_idempotency_record, expiry_pk, expiry_sk_after, history_item, history_sk,
    idempotency_item, idempotency_pk, lookup_pk, n, provider_event_item, s, string, tenant_pk,
    time_key, Item, AGREEMENT, AGREEMENT_SK, BY_EXPIRY, BY_LOOKUP_KEY, BY_TENANT, CREATED_SK,
    EXPIRES_AT, EXPIRY_PK, EXPIRY_SHARDS, EXPIRY_SK, HISTORY_LEN, HISTORY_SK_PREFIX,
    IDEMPOTENCY_SK, LOOKUP_PK, PK, SK, STATUS, TENANT_PK, VERSION,
};

/// The DynamoDB store. Cloning is cheap (the SDK client is shared).
///
/// It implements every port of [`countersign_store::Store`]. It does not implement
/// [`countersign_store::OutboxFeed`]: a gapless, table-wide commit order would need one counter
/// item that every commit updates (a hot item serializing every write of every agreement) or a
/// scan. On DynamoDB the table's stream is the outbox feed: each commit inserts its history
/// items in the same transaction, and the publisher reads those inserts
/// ([`crate::item::decode_history_entry`], [`crate::table::OUTBOX_STREAM_FILTER`]).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// A `Put` of `item` under `condition`, with its names and values.
    fn put(
        &self,
        item: Item,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (placeholder, name) in names {
            put = put.expression_attribute_names(*placeholder, *name);
        }
        for (placeholder, value) in values {
            put = put.expression_attribute_values(placeholder, value);
        }
        let put = put
            .build()
            .map_err(|error| StoreError::Unavailable(format!("malformed Put: {error}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// One page of an expiry shard: due items after `after` (exclusive), at most `limit`.
    async fn due_in_shard(
        &self,
        shard: u32,
        after: Option<&str>,
        upper: &str,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<(String, Agreement)>, Option<Item>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_EXPIRY)
            .expression_attribute_names("#pk", EXPIRY_PK)
            .expression_attribute_names("#sk", EXPIRY_SK)
            .expression_attribute_values(":pk", s(expiry_pk(shard)))
            .expression_attribute_values(":upper", s(upper))
            .limit(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_exclusive_start_key(start);
        query = match after {
            // The smallest string after the cursor is the cursor followed by U+0000.
            Some(after) => query
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lower AND :upper")
                .expression_attribute_values(":lower", s(format!("{after}\u{0}"))),
            None => query.key_condition_expression("#pk = :pk AND #sk < :upper"),
        };
        let output = query
            .send()
            .await
            .map_err(|error| unavailable("Query", &error))?;
        let items = output
            .items()
            .iter()
            .map(|item| {
                let key = string(item, EXPIRY_SK).ok_or_else(|| {
                    StoreError::Corrupt("expiry index item without `expiry_sk`".to_owned())
                })?;
                Ok((key.to_owned(), decode_agreement(item)?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, output.last_evaluated_key().cloned()))
    }
}

/// Checks that a transition's entries continue the history the commit expects, and that the new
/// agreement counts them: otherwise the agreement and its history would disagree from then on.
fn continues_history(commit: &Commit) -> bool {
    let agreement = &commit.transition.agreement;
    let base = commit.expected.map_or(0, |expected| expected.history_len);
    let entries = &commit.transition.entries;
    entries
        .iter()
        .zip(base + 1..)
        .all(|(entry, sequence)| entry.agreement_id == agreement.id && entry.sequence == sequence)
        && agreement.history_len == base + entries.len() as u64
}

#[async_trait]
impl AgreementGet for DynamoStore {
    /// One strongly consistent `GetItem`.
    async fn get_agreement(&self, id: &str) -> Result<Option<Arc<Agreement>>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(agreement_pk(id)))
            .key(SK, s(AGREEMENT_SK))
            .consistent_read(true)
            .projection_expression("#agreement")
            .expression_attribute_names("#agreement", AGREEMENT)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        let agreement = output.item().map(decode_agreement).transpose()?;
        Ok(agreement.map(Arc::new))
    }
}

#[async_trait]
impl AgreementCommit for DynamoStore {
    /// One `TransactWriteItems`: the agreement guarded by the revision it was computed from (or
    /// by not existing), each new history entry, the idempotency record and the provider-event
    /// mark, each guarded so that it is new (or, for the record, replaces an expired one). When
    /// it fails as a conflict or as unavailable, one `GetItem` of its first history entry tells
    /// whether an attempt whose answer was lost had committed it ([`COMMIT_TOKEN`]).
    async fn commit(&self, commit: Commit) -> Result<(), CommitError> {
        if !continues_history(&commit) {
            return Err(CommitError::Conflict);
        }
        let Commit {
            transition,
            expected,
            idempotency,
            provider_event,
        } = commit;
        let mut items = Vec::with_capacity(transition.entries.len() + 3);
        let mut roles = Vec::with_capacity(items.capacity());

        let token = new_commit_token();
        let agreement = agreement_item(&transition.agreement)?;
        items.push(match expected {
            None => self.put(
                agreement,
                "attribute_not_exists(#pk)",
                &[("#pk", PK)],
                Vec::new(),
            )?,
            Some(revision) => self.put(
                agreement,
                "#version = :version AND #history_len = :history_len",
                &[("#version", VERSION), ("#history_len", HISTORY_LEN)],
                vec![
                    (":version", n(revision.version)),
                    (":history_len", n(revision.history_len)),
                ],
            )?,
        });
        roles.push(Role::Agreement);

        for (index, entry) in transition.entries.iter().enumerate() {
            let mut item = history_item(entry)?;
            if index == 0 {
                item.insert(COMMIT_TOKEN.to_owned(), s(&token));
            }
            items.push(self.put(
                item,
                "attribute_not_exists(#pk)",
                &[("#pk", PK)],
                Vec::new(),
            )?);
            roles.push(Role::History);
        }
        if let Some(record) = &idempotency {
            // The commit's "now" is when its record was made.
            items.push(self.put(
                idempotency_item(record)?,
                "attribute_not_exists(#pk) OR #expires_at <= :now",
                &[("#pk", PK), ("#expires_at", EXPIRES_AT)],
                vec![(":now", s(time_key(record.created_at)))],
            )?);
            roles.push(Role::Idempotency);
        }
        if let Some(mark) = &provider_event {
            items.push(self.put(
                provider_event_item(mark),
                "attribute_not_exists(#pk)",
                &[("#pk", PK)],
                Vec::new(),
            )?);
            roles.push(Role::ProviderEvent);
        }

        let Err(error) = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(&token)
            .send()
            .await
        else {
            return Ok(());
        };
        let refused = commit_error(&error, &roles);
        match &refused {
            // An attempt may have committed before its answer was lost (a timeout, a dropped
            // connection): the outcome is unknown, and a retry of the SDK meets our own write
            // as a failed guard. The first history entry names the commit that wrote it, and
            // history entries never change, whatever was committed since.
            CommitError::Conflict | CommitError::Store(StoreError::Unavailable(_)) => {
                let Some(first) = transition.entries.first() else {
                    return Err(refused);
                };
                match self
                    .commit_token_of(&transition.agreement.id, first.sequence)
                    .await
                {
                    Ok(Some(written)) if written == token => {
                        tracing::warn!(
                            agreement_id = %transition.agreement.id,
                            error = %refused,
                            "a commit whose answer was lost had committed"
                        );
                        Ok(())
                    }
                    Ok(_) => Err(refused),
                    // Whether it committed is unknown: a conflict would have the caller decide
                    // again on a state that may already be its own.
                    Err(read) => Err(StoreError::Unavailable(format!(
                        "{refused}; and whether it committed is unknown: {read}"
                    ))
                    .into()),
                }
            }
            CommitError::IdempotencyKeyTaken
            | CommitError::DuplicateProviderEvent
            | CommitError::Store(StoreError::Corrupt(_)) => Err(refused),
        }
    }
}

/// The attribute of a commit's first history item naming the commit (also the transaction's
/// `ClientRequestToken`): how a commit whose answer was lost finds out whether it committed.
pub const COMMIT_TOKEN: &str = "commit_token";

/// A `ClientRequestToken` (1 to 36 of `[a-zA-Z0-9-]`), unique per commit: the same for every
/// attempt of one commit, so DynamoDB applies it at most once within its 10 minutes.
pub(crate) fn new_commit_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl DynamoStore {
    /// The token of the commit that wrote the agreement's history entry `sequence`, if it is
    /// there.
    async fn commit_token_of(&self, id: &str, sequence: u64) -> Result<Option<String>, StoreError> {
        self.commit_token_at(&agreement_pk(id), &history_sk(sequence))
            .await
    }

    /// The [`COMMIT_TOKEN`] of the item at (`pk`, `sk`), if there is one; one strongly
    /// consistent `GetItem`. How a write whose answer was lost finds out whether it committed.
    pub(crate) async fn commit_token_at(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<String>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .consistent_read(true)
            .projection_expression("#token")
            .expression_attribute_names("#token", COMMIT_TOKEN)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        Ok(output
            .item()
            .and_then(|item| string(item, COMMIT_TOKEN))
            .map(str::to_owned))
    }
}

#[async_trait]
impl AgreementList for DynamoStore {
    /// A `Query` of the tenant's index (or the tenant-and-lookup-key index), newest first from
    /// `after`, until the page and one more match are found or the index ends. The status filter
    /// applies while reading, so a rare status reads more of the tenant's agreements (never
    /// another tenant's). A `limit` of 0 is read as 1. Index reads are eventually consistent: an
    /// agreement written a moment ago may be missing, or listed as it was.
    async fn list_agreements(&self, query: &ListQuery) -> Result<ListPage, StoreError> {
        let (index, key_name, key) = match &query.lookup_key {
            Some(lookup_key) => (
                BY_LOOKUP_KEY,
                LOOKUP_PK,
                lookup_pk(&query.tenant, lookup_key),
            ),
            None => (BY_TENANT, TENANT_PK, tenant_pk(&query.tenant)),
        };
        let limit = query.limit.max(1);
        let mut matching: Vec<Agreement> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let wanted = limit + 1 - matching.len();
            // A filtered read skips what does not match: read more per request.
            let read = if query.status.is_some() {
                wanted.max(100)
            } else {
                wanted
            };
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .scan_index_forward(false)
                .expression_attribute_names("#pk", key_name)
                .expression_attribute_values(":pk", s(&key))
                .limit(i32::try_from(read.min(1000)).unwrap_or(1000))
                .set_exclusive_start_key(start.take());
            request = match &query.after {
                Some(after) => request
                    .key_condition_expression("#pk = :pk AND #sk < :after")
                    .expression_attribute_names("#sk", CREATED_SK)
                    .expression_attribute_values(
                        ":after",
                        s(created_sk(after.created_at, &after.id)),
                    ),
                None => request.key_condition_expression("#pk = :pk"),
            };
            if let Some(status) = query.status {
                request = request
                    .filter_expression("#status = :status")
                    .expression_attribute_names("#status", STATUS)
                    .expression_attribute_values(":status", s(status.as_str()));
            }
            let output = request
                .send()
                .await
                .map_err(|error| unavailable("Query", &error))?;
            for item in output.items() {
                matching.push(decode_agreement(item)?);
            }
            match output.last_evaluated_key() {
                Some(last) if matching.len() <= limit => start = Some(last.clone()),
                _ => break,
            }
        }
        let more = matching.len() > limit;
        matching.truncate(limit);
        let next = match matching.last() {
            Some(last) if more => Some(ListPosition::of(last)),
            _ => None,
        };
        Ok(ListPage {
            agreements: matching,
            next,
        })
    }
}

#[async_trait]
impl HistoryRead for DynamoStore {
    /// Strongly consistent `Query` pages of the agreement's `H#` items, oldest first.
    async fn history(&self, agreement_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :history)")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#sk", SK)
                .expression_attribute_values(":pk", s(agreement_pk(agreement_id)))
                .expression_attribute_values(":history", s(HISTORY_SK_PREFIX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|error| unavailable("Query", &error))?;
            for item in output.items() {
                entries.push(decode_history_entry(item)?);
            }
            match output.last_evaluated_key() {
                Some(last) => start = Some(last.clone()),
                None => return Ok(entries),
            }
        }
    }
}

/// Reads an expiry cursor back (the `expiry_sk` of the last agreement returned). One this store
/// did not make is `Corrupt`: starting over silently could loop forever.
fn parse_due_cursor(cursor: &str) -> Result<&str, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("expiry cursor `{cursor}` is not one of ours"));
    let stamp_len = time_key(DateTime::<Utc>::UNIX_EPOCH).len();
    let (stamp, rest) = cursor.split_at_checked(stamp_len).ok_or_else(corrupt)?;
    DateTime::parse_from_rfc3339(stamp).map_err(|_| corrupt())?;
    if !rest.starts_with('#') || rest.len() < 2 {
        return Err(corrupt());
    }
    Ok(cursor)
}

/// One expiry shard while a page is merged: what was read and not yet taken, and where to go on.
struct ShardReader {
    shard: u32,
    buffer: VecDeque<(String, Agreement)>,
    start: Option<Item>,
    done: bool,
}

#[async_trait]
impl ExpiryIndex for DynamoStore {
    /// Merges the expiry shards, oldest expiry first. Each shard is queried for its due keys only
    /// (`expiry_sk` up to `now`, after the cursor), so nothing that is not due is read. A page
    /// first asks every shard for its share of the page (`limit / shards`, all at once), then asks
    /// again only the shards whose read items were all taken, each for its share of what is still
    /// missing: items read but not returned (read again by the next page) stay few. The cursor
    /// is the `expiry_sk` of the last agreement returned. A `limit` of 0 is read as 1; a cursor
    /// this store did not make is `Corrupt`. Index reads are eventually consistent: the sweeper's
    /// commit is guarded by the version, so a stale entry costs a conflict, never a wrong write.
    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<DuePage, StoreError> {
        let after = cursor.as_deref().map(parse_due_cursor).transpose()?;
        let upper = expiry_sk_after(now);
        let limit = limit.max(1);
        if after.is_some_and(|after| after >= upper.as_str()) {
            return Ok(DuePage {
                agreements: Vec::new(),
                cursor: None,
            });
        }
        let mut shards: Vec<ShardReader> = (0..EXPIRY_SHARDS)
            .map(|shard| ShardReader {
                shard,
                buffer: VecDeque::new(),
                start: None,
                done: false,
            })
            .collect();
        let mut agreements = Vec::new();
        let mut last_key = None;
        while agreements.len() < limit {
            let hungry: Vec<usize> = (0..shards.len())
                .filter(|&i| shards[i].buffer.is_empty() && !shards[i].done)
                .collect();
            if !hungry.is_empty() {
                let active = shards
                    .iter()
                    .filter(|shard| !shard.buffer.is_empty() || !shard.done)
                    .count();
                let share = (limit - agreements.len()).div_ceil(active.max(1));
                let reads = hungry.iter().map(|&i| {
                    let shard = &shards[i];
                    self.due_in_shard(shard.shard, after, &upper, shard.start.clone(), share)
                });
                let pages = try_join_all(reads).await?;
                for (&i, (items, start)) in hungry.iter().zip(pages) {
                    let shard = &mut shards[i];
                    shard.buffer.extend(items);
                    shard.done = start.is_none();
                    shard.start = start;
                }
                continue;
            }
            let next = shards
                .iter_mut()
                .filter(|shard| !shard.buffer.is_empty())
                .min_by(|a, b| a.buffer[0].0.cmp(&b.buffer[0].0));
            let Some((key, agreement)) = next.and_then(|shard| shard.buffer.pop_front()) else {
                break;
            };
            agreements.push(agreement);
            last_key = Some(key);
        }
        let more = agreements.len() == limit
            && shards
                .iter()
                .any(|shard| !shard.buffer.is_empty() || !shard.done);
        Ok(DuePage {
            agreements,
            cursor: last_key.filter(|_| more),
        })
    }
}

#[async_trait]
impl IdempotencyStore for DynamoStore {
    /// A strongly consistent `GetItem`; a record past its `expires_at` is as good as absent (the
    /// table's TTL deletes it some time later).
    async fn get_idempotency(
        &self,
        tenant: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(idempotency_pk(tenant, key)))
            .key(SK, s(IDEMPOTENCY_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let record = decode_idempotency_record(item)?;
        Ok((record.expires_at > now).then_some(record))
    }

    /// One conditional `PutItem`: it goes in when no record has the key or the one there has
    /// expired at `now`.
    async fn put_idempotency(
        &self,
        record: IdempotencyRecord,
        now: DateTime<Utc>,
    ) -> Result<(), CommitError> {
        let Err(error) = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(idempotency_item(&record)?))
            .condition_expression("attribute_not_exists(#pk) OR #expires_at <= :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", EXPIRES_AT)
            .expression_attribute_values(":now", s(time_key(now)))
            .send()
            .await
        else {
            return Ok(());
        };
        let refused = put_idempotency_error(&error);
        match &refused {
            // As for a commit: a put whose answer was lost may have gone in, and the SDK's retry
            // then finds the key taken by our own record (the same to the nanosecond).
            CommitError::IdempotencyKeyTaken | CommitError::Store(StoreError::Unavailable(_)) => {
                match self.get_idempotency(&record.tenant, &record.key, now).await {
                    Ok(Some(stored)) if stored == record => Ok(()),
                    Ok(_) => Err(refused),
                    Err(read) => Err(StoreError::Unavailable(format!(
                        "{refused}; and whether the record went in is unknown: {read}"
                    ))
                    .into()),
                }
            }
            CommitError::Conflict
            | CommitError::DuplicateProviderEvent
            | CommitError::Store(StoreError::Corrupt(_)) => Err(refused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_checked() {
        let good = "2000-01-02T00:00:00.000000000Z#agr-1";
        assert_eq!(parse_due_cursor(good), Ok(good));
        for bad in [
            "",
            "garbage",
            "2000-01-02T00:00:00.000000000Z",
            "2000-01-02T00:00:00.000000000Z#",
            "2000-01-02T00:00:00.000000000Zxid",
            "not-a-date-at-all-but-30-chars#id",
        ] {
            assert!(
                matches!(parse_due_cursor(bad), Err(StoreError::Corrupt(_))),
                "{bad}"
            );
        }
    }
}
