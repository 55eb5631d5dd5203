//! The stream feed of countersign-local on DynamoDB, over a scripted stream with two shards (moto
//! has one): a poll that fails on one shard loses nothing another shard had given it.

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use countersign_aws::stream_feed::StreamFeed;
use countersign_domain::{Agreement, AgreementInput, HistoryEntry, Rules};
use countersign_e2e::faults::ScriptedAws;
use countersign_service::ids::RandomIds;
use countersign_store_dynamodb::item::history_item;
use serde_json::{json, Value};

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
