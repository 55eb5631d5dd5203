//! The item layout of the table: keys, index keys and the encoding of what the ports store.
//!
//! Every item has the table keys `pk` and `sk` (strings) and a `kind`. Whole records (the
//! agreement, a history entry, an idempotency record) are kept as one JSON string attribute, the
//! exact serde form of the domain type, so a read gives back exactly what was written; beside it,
//! plain attributes carry what conditions, indexes and people looking at the table need.
//!
//! | kind | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | `agreement` | `AGR#<id>` | `A` | `id`, `tenant`, `status`, `version` (N), `history_len` (N), `created_at`, `updated_at`, `expires_at`?, `lookup_key`?, `agreement` (JSON), index keys below |
//! | `history` | `AGR#<id>` | `H#<sequence, 20 digits>` | `agreement_id`, `tenant`, `sequence` (N), `type`, `occurred_at`, `entry` (JSON) |
//! | `idempotency` | `IDEM#<len(tenant)>#<tenant>#<key>` | `I` | `tenant`, `key`, `created_at`, `expires_at`, `ttl` (N, epoch seconds), `record` (JSON) |
//! | `provider_event` | `PEV#<len(provider)>#<provider>#<event id>` | `P` | `provider`, `event_id`, `agreement_id`, `recorded_at`, `ttl` (N, epoch seconds: `recorded_at` + [`PROVIDER_EVENT_MARK_RETENTION`]) |
//!
//! Index keys of the agreement item (a global secondary index holds only items with its keys):
//!
//! | index | partition key | sort key | present |
//! |---|---|---|---|
//! | `by_tenant` | `tenant_pk` = `T#<tenant>` | `created_sk` = `<created_at>#<id>` | always |
//! | `by_lookup_key` | `lookup_pk` = `L#<len(tenant)>#<tenant>#<lookup_key>` | `created_sk` | with a lookup key |
//! | `by_expiry` | `expiry_pk` = `EXP#<shard>` | `expiry_sk` = `<expires_at>#<id>` | while `pending` with an `expires_at` |
//!
//! Timestamps in keys are RFC 3339 UTC with nine fraction digits (`2030-01-02T03:04:05.000000000Z`),
//! fixed width, so string order is time order. A free-text part that another part follows is
//! prefixed with its length in bytes, so no tenant, provider or key can forge another's key.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use countersign_domain::{Agreement, HistoryEntry, Status};
use countersign_store::{IdempotencyRecord, ProviderEventMark, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An item as the SDK carries it.
pub type Item = HashMap<String, AttributeValue>;

/// Table keys.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const KIND: &str = "kind";
/// The `kind` of history items: the outbox, as the table's stream carries it.
pub const HISTORY_KIND: &str = "history";

/// Index key attributes.
pub const TENANT_PK: &str = "tenant_pk";
pub const LOOKUP_PK: &str = "lookup_pk";
pub const CREATED_SK: &str = "created_sk";
pub const EXPIRY_PK: &str = "expiry_pk";
pub const EXPIRY_SK: &str = "expiry_sk";

/// Index names.
pub const BY_TENANT: &str = "by_tenant";
pub const BY_LOOKUP_KEY: &str = "by_lookup_key";
pub const BY_EXPIRY: &str = "by_expiry";

/// Agreement attributes that conditions and filters use.
pub const VERSION: &str = "version";
pub const HISTORY_LEN: &str = "history_len";
pub const STATUS: &str = "status";
pub const AGREEMENT: &str = "agreement";
pub const ENTRY: &str = "entry";
pub const RECORD: &str = "record";
/// When an idempotency record expires, as a fixed-width timestamp: conditions compare it as a
/// string, which is comparing the instants, to the nanosecond.
pub const EXPIRES_AT: &str = "expires_at";
/// The table's time-to-live attribute (epoch seconds): DynamoDB deletes idempotency records and
/// provider-event marks some time after it. Only clean-up: whether an idempotency record is live
/// is decided in code, on `expires_at`.
pub const TTL: &str = "ttl";
/// How long a provider-event mark (the "applied once" record of a provider event id) is kept
/// before the table's TTL may delete it. It must outlive every redelivery of the event: the
/// callback queue and its dead-letter queue keep a message 14 days, a provider retries for hours
/// to days, and a webhook request older than the signature tolerance (300 s) is refused before it
/// is queued. 30 days covers all of them with room to redrive a dead letter by hand.
pub const PROVIDER_EVENT_MARK_RETENTION: Duration = Duration::days(30);

/// Sort key of the agreement item.
pub const AGREEMENT_SK: &str = "A";
/// Prefix of the history items' sort keys.
pub const HISTORY_SK_PREFIX: &str = "H#";

/// Shards of the expiry index: pending agreements spread over `EXP#0` .. `EXP#3` by a hash of
/// their id, so neither the index's writes nor the sweeper's reads go to one partition (each
/// takes some 1,000 writes a second). More shards spread further but cost the sweeper more: a
/// page queries every shard, and the merge reads more items it cannot return yet. Part of the
/// item format: changing it needs the pending agreements re-keyed.
pub const EXPIRY_SHARDS: u32 = 4;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A timestamp as keys and attributes hold it: fixed width, so string order is time order.
pub fn time_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub fn agreement_pk(id: &str) -> String {
    format!("AGR#{id}")
}

pub fn history_sk(sequence: u64) -> String {
    format!("{HISTORY_SK_PREFIX}{sequence:020}")
}

pub fn idempotency_pk(tenant: &str, key: &str) -> String {
    format!("IDEM#{}#{tenant}#{key}", tenant.len())
}

pub const IDEMPOTENCY_SK: &str = "I";

pub fn provider_event_pk(provider: &str, event_id: &str) -> String {
    format!("PEV#{}#{provider}#{event_id}", provider.len())
}

pub const PROVIDER_EVENT_SK: &str = "P";

pub fn tenant_pk(tenant: &str) -> String {
    format!("T#{tenant}")
}

pub fn lookup_pk(tenant: &str, lookup_key: &str) -> String {
    format!("L#{}#{tenant}#{lookup_key}", tenant.len())
}

/// Where an agreement sits in its tenant's list (and its lookup key's): `<created_at>#<id>`.
pub fn created_sk(created_at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", time_key(created_at))
}

/// Where a pending agreement sits in its expiry shard: `<expires_at>#<id>`.
pub fn expiry_sk(expires_at: DateTime<Utc>, id: &str) -> String {
    format!("{}#{id}", time_key(expires_at))
}

/// The smallest `expiry_sk` after every key due at `now`: the keys due at `now` exactly are
/// `<now>#<id>`, and `$` sorts right after `#`.
pub fn expiry_sk_after(now: DateTime<Utc>) -> String {
    format!("{}$", time_key(now))
}

/// The expiry shard of an agreement: FNV-1a of its id, stable across builds and platforms.
pub fn expiry_shard(id: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in id.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % EXPIRY_SHARDS
}

pub fn expiry_pk(shard: u32) -> String {
    format!("EXP#{shard}")
}

fn json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|error| StoreError::Corrupt(format!("{what} does not serialize: {error}")))
}

/// The agreement item: the agreement and every index key it has in its state.
pub fn agreement_item(agreement: &Agreement) -> Result<Item, StoreError> {
    let mut item = Item::from([
        (PK.to_owned(), s(agreement_pk(&agreement.id))),
        (SK.to_owned(), s(AGREEMENT_SK)),
        (KIND.to_owned(), s("agreement")),
        ("id".to_owned(), s(&agreement.id)),
        ("tenant".to_owned(), s(&agreement.tenant)),
        (STATUS.to_owned(), s(agreement.status.as_str())),
        (VERSION.to_owned(), n(agreement.version)),
        (HISTORY_LEN.to_owned(), n(agreement.history_len)),
        ("created_at".to_owned(), s(time_key(agreement.created_at))),
        ("updated_at".to_owned(), s(time_key(agreement.updated_at))),
        (AGREEMENT.to_owned(), s(json(agreement, "agreement")?)),
        (TENANT_PK.to_owned(), s(tenant_pk(&agreement.tenant))),
        (
            CREATED_SK.to_owned(),
            s(created_sk(agreement.created_at, &agreement.id)),
        ),
    ]);
    if let Some(expires_at) = agreement.expires_at {
        item.insert("expires_at".to_owned(), s(time_key(expires_at)));
    }
    if let Some(lookup_key) = agreement.lookup_key() {
        item.insert("lookup_key".to_owned(), s(lookup_key));
        item.insert(
            LOOKUP_PK.to_owned(),
            s(lookup_pk(&agreement.tenant, lookup_key)),
        );
    }
    if let (Status::Pending, Some(expires_at)) = (agreement.status, agreement.expires_at) {
        item.insert(
            EXPIRY_PK.to_owned(),
            s(expiry_pk(expiry_shard(&agreement.id))),
        );
        item.insert(
            EXPIRY_SK.to_owned(),
            s(expiry_sk(expires_at, &agreement.id)),
        );
    }
    Ok(item)
}

pub fn history_item(entry: &HistoryEntry) -> Result<Item, StoreError> {
    Ok(Item::from([
        (PK.to_owned(), s(agreement_pk(&entry.agreement_id))),
        (SK.to_owned(), s(history_sk(entry.sequence))),
        (KIND.to_owned(), s(HISTORY_KIND)),
        ("agreement_id".to_owned(), s(&entry.agreement_id)),
        ("tenant".to_owned(), s(&entry.tenant)),
        ("sequence".to_owned(), n(entry.sequence)),
        ("type".to_owned(), s(entry.entry_type.as_str())),
        ("occurred_at".to_owned(), s(time_key(entry.occurred_at))),
        (ENTRY.to_owned(), s(json(entry, "history entry")?)),
    ]))
}

pub fn idempotency_item(record: &IdempotencyRecord) -> Result<Item, StoreError> {
    Ok(Item::from([
        (
            PK.to_owned(),
            s(idempotency_pk(&record.tenant, &record.key)),
        ),
        (SK.to_owned(), s(IDEMPOTENCY_SK)),
        (KIND.to_owned(), s("idempotency")),
        ("tenant".to_owned(), s(&record.tenant)),
        ("key".to_owned(), s(&record.key)),
        ("created_at".to_owned(), s(time_key(record.created_at))),
        (EXPIRES_AT.to_owned(), s(time_key(record.expires_at))),
        (TTL.to_owned(), n(ttl_seconds(record.expires_at))),
        (RECORD.to_owned(), s(json(record, "idempotency record")?)),
    ]))
}

pub fn provider_event_item(mark: &ProviderEventMark) -> Item {
    Item::from([
        (
            PK.to_owned(),
            s(provider_event_pk(&mark.provider, &mark.event_id)),
        ),
        (SK.to_owned(), s(PROVIDER_EVENT_SK)),
        (KIND.to_owned(), s("provider_event")),
        ("provider".to_owned(), s(&mark.provider)),
        ("event_id".to_owned(), s(&mark.event_id)),
        ("agreement_id".to_owned(), s(&mark.agreement_id)),
        ("recorded_at".to_owned(), s(time_key(mark.recorded_at))),
        (
            TTL.to_owned(),
            n(ttl_seconds(
                mark.recorded_at + PROVIDER_EVENT_MARK_RETENTION,
            )),
        ),
    ])
}

/// `at` as the TTL attribute holds it. DynamoDB's TTL takes whole seconds; rounding up means it
/// never deletes an item before `at`.
fn ttl_seconds(at: DateTime<Utc>) -> i64 {
    at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)
}

/// The JSON attribute `name` of `item`, decoded.
pub fn decode<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let key = item
        .get(PK)
        .and_then(|pk| pk.as_s().ok())
        .map_or("?", String::as_str);
    let text = item
        .get(name)
        .and_then(|value| value.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("item `{key}` has no string `{name}`")))?;
    serde_json::from_str(text).map_err(|error| {
        StoreError::Corrupt(format!("item `{key}`: `{name}` does not decode: {error}"))
    })
}

/// The agreement of an agreement item (from the table or an index projecting it).
pub fn decode_agreement(item: &Item) -> Result<Agreement, StoreError> {
    decode(item, AGREEMENT)
}

/// The history entry of a history item: also what the outbox publisher reads from the table's
/// stream (the new image of an inserted item whose `kind` is `history`).
pub fn decode_history_entry(item: &Item) -> Result<HistoryEntry, StoreError> {
    decode(item, ENTRY)
}

/// The history entry of a stream image, whatever client read it: `text` gives a string attribute
/// of the image. `None` when the image is not a history item.
pub fn history_entry_of_image<'a>(
    text: impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<HistoryEntry>, StoreError> {
    if text(KIND) != Some(HISTORY_KIND) {
        return Ok(None);
    }
    let entry = text(ENTRY)
        .ok_or_else(|| StoreError::Corrupt(format!("a history item without its `{ENTRY}`")))?;
    serde_json::from_str(entry).map(Some).map_err(|error| {
        StoreError::Corrupt(format!("a history entry that does not decode: {error}"))
    })
}

pub fn decode_idempotency_record(item: &Item) -> Result<IdempotencyRecord, StoreError> {
    decode(item, RECORD)
}

/// A string attribute of an item, if it has one.
pub fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn time_keys_are_fixed_width_and_sort_as_time() {
        let a = Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap();
        let b = a + chrono::Duration::nanoseconds(1);
        let c = a + chrono::Duration::days(400);
        assert_eq!(time_key(a), "2030-01-02T03:04:05.000000000Z");
        assert_eq!(time_key(a).len(), time_key(b).len());
        assert!(time_key(a) < time_key(b) && time_key(b) < time_key(c));
        // Due at `now` includes `now` exactly, whatever the id; nothing later is included.
        assert!(expiry_sk(a, "zzzz~") < expiry_sk_after(a));
        assert!(expiry_sk_after(a) < expiry_sk(b, "0"));
    }

    #[test]
    fn free_text_cannot_forge_another_key() {
        assert_ne!(idempotency_pk("a#b", "c"), idempotency_pk("a", "b#c"));
        assert_ne!(provider_event_pk("p#e", "1"), provider_event_pk("p", "e#1"));
        assert_ne!(lookup_pk("t#x", "k"), lookup_pk("t", "x#k"));
    }

    #[test]
    fn shards_are_stable_and_spread() {
        // Pinned: a change would strand pending agreements in shards nobody reads.
        assert_eq!(expiry_shard(""), 0x811c_9dc5 % EXPIRY_SHARDS);
        let mut counts = [0u32; EXPIRY_SHARDS as usize];
        for i in 0..8000 {
            counts[expiry_shard(&format!("agreement-{i}")) as usize] += 1;
        }
        assert!(
            counts.iter().all(|count| (1800..2200).contains(count)),
            "{counts:?}"
        );
    }

    #[test]
    fn history_sort_keys_sort_as_numbers() {
        assert!(history_sk(9) < history_sk(10));
        assert!(history_sk(99_999) < history_sk(100_000));
    }
}
