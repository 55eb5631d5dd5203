//! End to end across the function binaries on moto: an agreement created, sent, signed through
//! webhooks posted to the callback function and applied from SQS by the callback processor, to
//! `fulfilled`; another expired by the sweeper; then the table's real stream handed to the
//! outbox publisher, and every published event found on a queue subscribed to the bus, in
//! sequence order, none missing.

mod support;

use std::collections::BTreeMap;

use countersign_domain::Status;
use countersign_store::{AgreementGet, HistoryRead};
use serde_json::{json, Value};
use support::{fixture, Function, Resources, SECRET};

fn webhook(agreement_id: &str, participant_id: &str) -> String {
    let body = json!({
        "id": format!("evt_{agreement_id}_{participant_id}"),
        "type": "participant.signed",
        "created_at": "2026-11-23T10:00:00Z",
        "data": {"agreement_id": agreement_id, "participant_id": participant_id},
    })
    .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut event: Value =
        serde_json::from_str(&fixture("http/callback-sandbox.json", agreement_id)).unwrap();
    event["headers"]["countersign-signature"] = json!(countersign_provider::sandbox::sign(
        SECRET.as_bytes(),
        now,
        body.as_bytes()
    ));
    event["body"] = json!(body);
    event.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_expired_and_every_event_on_the_bus_in_order() {
    let resources = Resources::create().await;
    let store = resources.store();
    let env = resources.environment();
    let create = Function::start("create", env!("CARGO_BIN_EXE_create"), &env);
    let lifecycle = Function::start("lifecycle", env!("CARGO_BIN_EXE_lifecycle"), &env);
    let callback = Function::start("callback", env!("CARGO_BIN_EXE_callback"), &env);
    let processor = Function::start(
        "callback-processor",
        env!("CARGO_BIN_EXE_callback-processor"),
        &env,
    );
    let sweeper = Function::start("sweeper", env!("CARGO_BIN_EXE_sweeper"), &env);
    let publisher = Function::start(
        "outbox-publisher",
        env!("CARGO_BIN_EXE_outbox-publisher"),
        &env,
    );

    let mut ids = Vec::new();
    for key in ["signed", "expired"] {
        let request = fixture("http/create-agreement.json", "").replace("lease-42-create", key);
        let (status, body) = create.http(&request);
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        let (status, body) = lifecycle.http(&fixture("http/lifecycle-pending.json", &id));
        assert_eq!(status, 200, "{body}");
        ids.push(id);
    }
    let (signed, expired) = (&ids[0], &ids[1]);

    // Both participants sign at the provider; the provider's webhooks reach the callback
    // function, which queues them; the processor applies what SQS delivers.
    for participant in ["ada", "bob"] {
        let (status, body) = callback.http(&webhook(signed, participant));
        assert_eq!(status, 202, "{body}");
    }
    let messages = countersign_test_kit::moto::drain(&resources.callback_queue_url, 2).await;
    assert_eq!(messages.len(), 2);
    let response = processor.invoke(&resources.sqs_event(&messages, &resources.callback_queue_arn));
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(
        store.get_agreement(signed).await.unwrap().unwrap().status,
        Status::Fulfilled
    );

    // The other one runs out of time.
    lifecycle.http(&fixture("http/sandbox-expire.json", expired));
    let report = sweeper.invoke(&fixture("scheduler-sweep.json", ""));
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(
        store.get_agreement(expired).await.unwrap().unwrap().status,
        Status::Expired
    );

    // The table's stream, as the event source mapping would deliver it, in batches of 10.
    let records = support::stream_records(&resources).await;
    assert!(
        records.len() > 10,
        "history inserts and agreement writes: {}",
        records.len()
    );
    for batch in records.chunks(10) {
        let response = publisher.invoke(&json!({ "Records": batch }).to_string());
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    }

    // On the bus: every published history entry of both agreements, once, in sequence order.
    let mut expected_total = 0;
    let mut expected: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for id in &ids {
        let entries: Vec<(String, u64)> = store
            .history(id)
            .await
            .unwrap()
            .iter()
            .filter_map(|entry| entry.published_event())
            .map(|event| (event.detail_type.to_owned(), event.detail.sequence))
            .collect();
        expected_total += entries.len();
        expected.insert(id.clone(), entries);
    }
    let delivered =
        countersign_test_kit::moto::drain(&resources.subscriber_queue_url, expected_total).await;
    let mut received: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for message in &delivered {
        let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        received
            .entry(event["detail"]["agreement_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                event["detail-type"].as_str().unwrap().to_owned(),
                event["detail"]["sequence"].as_u64().unwrap(),
            ));
    }
    assert_eq!(received, expected);
    let last_of_signed = expected[signed.as_str()].last().unwrap();
    assert_eq!(last_of_signed.0, "AgreementFulfilled");
    assert_eq!(
        expected[expired.as_str()].last().unwrap().0,
        "AgreementExpired"
    );
}
