//! What the DynamoDB store keeps, read back raw from moto: readable items, index keys that come
//! and go with the agreement's state, and the edges the contract suite does not reach.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, TimeZone, Utc};
use countersign_domain::{
    Agreement, CancellationReason, Decision, LifecycleRequest, Rules, Transition,
};
use countersign_store::{
    AgreementCommit, Commit, CommitError, ExpiryIndex, IdempotencyRecord, IdempotencyStore,
    ProviderEventMark, Revision, StoreError,
};
use countersign_store_dynamodb::item::{self, Item};
use countersign_store_dynamodb::DynamoStore;

struct Ids(u64);

impl countersign_domain::IdSource for Ids {
    fn new_id(&mut self) -> String {
        self.0 += 1;
        format!("file{}", self.0)
    }
}

async fn raw(store: &DynamoStore, pk: &str, sk: &str) -> Option<Item> {
    store
        .client()
        .get_item()
        .table_name(store.table())
        .key(item::PK, AttributeValue::S(pk.to_owned()))
        .key(item::SK, AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item()
        .cloned()
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item::string(item, name)
}

fn changed(decision: Decision) -> Transition {
    match decision {
        Decision::Changed(transition) => transition,
        other => panic!("not a change: {other:?}"),
    }
}

async fn commit(
    store: &DynamoStore,
    read: Option<&Agreement>,
    transition: Transition,
) -> Agreement {
    let agreement = transition.agreement.clone();
    store
        .commit(Commit {
            transition,
            expected: read.map(Revision::of),
            idempotency: None,
            provider_event: None,
        })
        .await
        .expect("committed");
    agreement
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_are_readable_and_index_keys_follow_the_state() {
    let store = support::fresh_store().await;
    let now = Utc.with_ymd_and_hms(2031, 3, 4, 5, 6, 7).unwrap();
    let mut input = support::ready_input(1, Some(10));
    input.metadata = Some(countersign_domain::Metadata {
        lookup_key: Some("lease-42".to_owned()),
        success_callback_url: None,
    });
    let created = Agreement::create(
        "agr-layout".to_owned(),
        "tenant#1".to_owned(),
        input,
        now,
        &Rules::default(),
        &mut Ids(0),
    )
    .expect("valid");
    let draft = commit(&store, None, created).await;

    let pk = item::agreement_pk(&draft.id);
    let stored = raw(&store, &pk, item::AGREEMENT_SK).await.expect("stored");
    assert_eq!(text(&stored, "kind"), Some("agreement"));
    assert_eq!(text(&stored, "status"), Some("draft"));
    assert_eq!(
        stored.get("version"),
        Some(&AttributeValue::N("1".to_owned()))
    );
    assert_eq!(text(&stored, "tenant_pk"), Some("T#tenant#1"));
    assert_eq!(
        text(&stored, "created_sk"),
        Some("2031-03-04T05:06:07.000000000Z#agr-layout")
    );
    assert_eq!(text(&stored, "lookup_pk"), Some("L#8#tenant#1#lease-42"));
    assert!(
        !stored.contains_key("expiry_pk"),
        "a draft is not in the expiry index"
    );
    let first = raw(&store, &pk, &item::history_sk(1))
        .await
        .expect("entry 1");
    assert_eq!(text(&first, "kind"), Some("history"));
    assert_eq!(text(&first, "type"), Some("AgreementCreated"));
    assert_eq!(text(&first, "sk"), Some("H#00000000000000000001"));

    // Sent: in the expiry index, in its shard.
    let sent = commit(
        &store,
        Some(&draft),
        changed(
            draft
                .decide_lifecycle(LifecycleRequest::Pending, now)
                .unwrap(),
        ),
    )
    .await;
    let stored = raw(&store, &pk, item::AGREEMENT_SK).await.expect("stored");
    assert_eq!(text(&stored, "status"), Some("pending"));
    assert_eq!(
        text(&stored, "expiry_pk").map(str::to_owned),
        Some(item::expiry_pk(item::expiry_shard(&draft.id)))
    );
    assert_eq!(
        text(&stored, "expiry_sk"),
        Some("2031-03-14T05:06:07.000000000Z#agr-layout")
    );

    // Cancelled: out of the expiry index, still listed.
    let cancelled = changed(
        sent.decide_lifecycle(
            LifecycleRequest::Cancelled(CancellationReason::InvalidEmail),
            now,
        )
        .unwrap(),
    );
    commit(&store, Some(&sent), cancelled).await;
    let stored = raw(&store, &pk, item::AGREEMENT_SK).await.expect("stored");
    assert_eq!(text(&stored, "status"), Some("cancelled"));
    assert!(!stored.contains_key("expiry_pk") && !stored.contains_key("expiry_sk"));
    assert!(stored.contains_key("tenant_pk") && stored.contains_key("lookup_pk"));
    assert!(
        text(&stored, "expires_at").is_some(),
        "it keeps its expires_at"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_expiry_is_exact_to_the_nanosecond() {
    let store = support::fresh_store().await;
    let created_at = Utc.with_ymd_and_hms(2032, 1, 1, 0, 0, 0).unwrap();
    let expires_at = created_at + Duration::nanoseconds(500_000);
    let record = |body: &str, created_at| IdempotencyRecord {
        tenant: "tenant".to_owned(),
        key: "key".to_owned(),
        request_hash: "hash".to_owned(),
        status: 200,
        headers: Vec::new(),
        body: body.to_owned(),
        created_at,
        expires_at,
    };
    store
        .put_idempotency(record("first", created_at), created_at)
        .await
        .expect("stored");
    // Live until its expires_at, even within the same millisecond.
    let just_before = expires_at - Duration::nanoseconds(1);
    assert_eq!(
        store
            .put_idempotency(record("second", just_before), just_before)
            .await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert!(store
        .get_idempotency("tenant", "key", just_before)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.get_idempotency("tenant", "key", expires_at).await,
        Ok(None)
    );
    assert_eq!(
        store
            .put_idempotency(record("third", expires_at), expires_at)
            .await,
        Ok(())
    );
    let stored = raw(&store, &item::idempotency_pk("tenant", "key"), "I")
        .await
        .expect("stored");
    // The time-to-live attribute: whole seconds, rounded up.
    assert_eq!(
        stored.get("ttl"),
        Some(&AttributeValue::N((expires_at.timestamp() + 1).to_string()))
    );
}

/// A provider-event mark carries the table's time-to-live attribute: 30 days after it was
/// recorded, in whole seconds rounded up, so DynamoDB clears it once no redelivery can come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_event_mark_expires_by_ttl_30_days_after_it_was_recorded() {
    assert_eq!(item::PROVIDER_EVENT_MARK_RETENTION, Duration::days(30));
    let store = support::fresh_store().await;
    let now = Utc.with_ymd_and_hms(2031, 5, 6, 7, 8, 9).unwrap();
    let created = Agreement::create(
        "agr-mark".to_owned(),
        "tenant".to_owned(),
        support::ready_input(1, Some(10)),
        now,
        &Rules::default(),
        &mut Ids(0),
    )
    .expect("valid");
    let recorded_at = now + Duration::microseconds(250);
    store
        .commit(Commit {
            transition: created,
            expected: None,
            idempotency: None,
            provider_event: Some(ProviderEventMark {
                provider: "sandbox".to_owned(),
                event_id: "evt_ttl".to_owned(),
                agreement_id: "agr-mark".to_owned(),
                recorded_at,
            }),
        })
        .await
        .expect("committed");

    let mark = raw(
        &store,
        &item::provider_event_pk("sandbox", "evt_ttl"),
        item::PROVIDER_EVENT_SK,
    )
    .await
    .expect("the mark is stored");
    assert_eq!(text(&mark, "kind"), Some("provider_event"));
    assert_eq!(
        mark.get(item::TTL),
        Some(&AttributeValue::N(
            (now.timestamp() + 30 * 24 * 3600 + 1).to_string()
        ))
    );
    // The agreement and its history have no time-to-live: they are kept.
    let agreement = raw(&store, &item::agreement_pk("agr-mark"), item::AGREEMENT_SK)
        .await
        .expect("stored");
    assert!(!agreement.contains_key(item::TTL));
    let entry = raw(
        &store,
        &item::agreement_pk("agr-mark"),
        &item::history_sk(1),
    )
    .await
    .expect("stored");
    assert!(!entry.contains_key(item::TTL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_this_store_did_not_make_is_corrupt() {
    let store = support::fresh_store().await;
    let now = Utc::now();
    for cursor in ["", "garbage", "2000-01-01T00:00:00.000000000Z", "x|y"] {
        let result = store.due_for_expiry(now, 10, Some(cursor.to_owned())).await;
        assert!(
            matches!(result, Err(StoreError::Corrupt(_))),
            "{cursor}: {result:?}"
        );
    }
}
