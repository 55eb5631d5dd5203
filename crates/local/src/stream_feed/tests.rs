//! The stream feed on moto (one shard), and over a scripted stream with two shards (moto has
//! one): a poll that fails on one shard loses nothing another shard had given it.

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use countersign_domain::{Agreement, AgreementInput, HistoryEntry, LifecycleRequest, Rules};
use countersign_service::ids::RandomIds;
use countersign_service::{AgreementService, RetryPolicy, SystemClock};
use countersign_store::HistoryRead;
use countersign_store_dynamodb::item::history_item;
use countersign_store_dynamodb::{create_table, DynamoStore};
use countersign_test_kit::faults::ScriptedAws;
use countersign_test_kit::moto;
use serde_json::{json, Value};

use super::StreamFeed;

async fn draft(service: &AgreementService<DynamoStore>, tenant: &str) -> String {
    let input =
        serde_json::from_value(serde_json::json!({"metadata": {"lookup_key": "feed"}})).unwrap();
    service
        .create(tenant, input, None)
        .await
        .expect("created")
        .agreement()
        .expect("no key: nothing replayed")
        .id
}

#[tokio::test]
async fn the_feed_yields_each_inserted_history_entry_once_in_order() {
    let sdk = moto::sdk_config();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = moto::unique_name("feed");
    create_table(&dynamodb, &table).await.expect("table");
    let store = Arc::new(DynamoStore::new(dynamodb.clone(), &table));
    let service = AgreementService::new(
        store.clone(),
        Arc::new(SystemClock),
        Rules::default(),
        RetryPolicy::default(),
    );

    let before = draft(&service, "t1").await;
    let mut from_start = StreamFeed::open(
        &dynamodb,
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        &table,
        false,
    )
    .await
    .expect("feed");
    let mut from_now = StreamFeed::open(
        &dynamodb,
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        &table,
        true,
    )
    .await
    .expect("feed");
    let after = draft(&service, "t1").await;
    let reason = countersign_domain::CancellationReason::InvalidDocument;
    service
        .lifecycle(
            "t1",
            &after,
            LifecycleRequest::Cancelled(reason),
            None,
            None,
        )
        .await
        .expect("cancelled");

    let seen = |entries: Vec<HistoryEntry>| -> Vec<(String, u64)> {
        entries
            .into_iter()
            .map(|e| (e.agreement_id, e.sequence))
            .collect()
    };
    let all = seen(from_start.poll().await.expect("poll"));
    assert_eq!(
        all,
        [(before.clone(), 1), (after.clone(), 1), (after.clone(), 2)]
    );
    assert_eq!(
        seen(from_now.poll().await.expect("poll")),
        [(after.clone(), 1), (after.clone(), 2)]
    );
    assert!(
        from_start.poll().await.expect("poll").is_empty(),
        "nothing twice"
    );

    // What the feed yields is what the table holds.
    let history = store.history(&after).await.unwrap();
    assert_eq!(history.len(), 2);
}

const STREAM: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/1";

fn entry() -> HistoryEntry {
    let transition = Agreement::create(
        "agr-stream".to_owned(),
        "tenant".to_owned(),
        AgreementInput::default(),
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        &Rules::default(),
        &mut RandomIds,
    )
    .expect("a draft");
    transition.entries[0].clone()
}

/// The entry's item as a stream record's `NewImage` (every attribute is S or N).
fn image(entry: &HistoryEntry) -> Value {
    let item = history_item(entry).expect("an item");
    let attributes: serde_json::Map<String, Value> = item
        .iter()
        .map(|(name, value)| {
            let typed = match (value.as_s(), value.as_n()) {
                (Ok(text), _) => json!({ "S": text }),
                (_, Ok(number)) => json!({ "N": number }),
                _ => panic!("{name}: not S or N"),
            };
            (name.clone(), typed)
        })
        .collect();
    Value::Object(attributes)
}

#[tokio::test]
async fn a_poll_that_fails_on_one_shard_loses_nothing_of_the_others() {
    let entry = entry();
    let new_image = image(&entry);
    // Shard A holds one insert; shard B fails its first read, then is empty.
    let b_reads = Arc::new(Mutex::new(0));
    let script = {
        let b_reads = b_reads.clone();
        move |operation: &str, body: &Value| -> (u16, Value) {
            match operation {
                "DescribeTable" => (
                    200,
                    json!({"Table": {"TableName": "t", "LatestStreamArn": STREAM}}),
                ),
                "DescribeStream" => (
                    200,
                    json!({"StreamDescription": {"StreamArn": STREAM, "StreamStatus": "ENABLED",
                        "Shards": [{"ShardId": "shard-a"}, {"ShardId": "shard-b"}]}}),
                ),
                "GetShardIterator" => (
                    200,
                    json!({"ShardIterator": format!("{}-start", body["ShardId"].as_str().unwrap())}),
                ),
                "GetRecords" => match body["ShardIterator"].as_str().unwrap() {
                    "shard-a-start" => (
                        200,
                        json!({"Records": [{"eventID": "1", "eventName": "INSERT",
                            "dynamodb": {"NewImage": new_image, "SequenceNumber": "100",
                                "StreamViewType": "NEW_IMAGE"}}],
                            "NextShardIterator": "shard-a-next"}),
                    ),
                    "shard-b-start" => {
                        let mut reads = b_reads.lock().unwrap();
                        *reads += 1;
                        if *reads == 1 {
                            (
                                500,
                                json!({"__type": "InternalServerError", "message": "try again"}),
                            )
                        } else {
                            (
                                200,
                                json!({"Records": [], "NextShardIterator": "shard-b-next"}),
                            )
                        }
                    }
                    _ => (
                        200,
                        json!({"Records": [], "NextShardIterator": body["ShardIterator"]}),
                    ),
                },
                other => panic!("unscripted {other}"),
            }
        }
    };
    let sdk = ScriptedAws::new(script).sdk_config();
    let mut feed = StreamFeed::open(
        &aws_sdk_dynamodb::Client::new(&sdk),
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        "t",
        false,
    )
    .await
    .expect("opened");

    assert!(feed.poll().await.is_err(), "shard B failed");
    let entries = feed.poll().await.expect("both shards read");
    assert_eq!(
        entries,
        vec![entry],
        "shard A's insert is read again, not lost"
    );
    assert_eq!(*b_reads.lock().unwrap(), 2);
    assert_eq!(
        feed.poll().await.expect("nothing new"),
        Vec::<HistoryEntry>::new()
    );
}
