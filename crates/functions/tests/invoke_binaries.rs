//! Every file of `events/` invoked through its real function binary (`cargo lambda invoke
//! --data-file`, on a local Lambda runtime API) against moto: the response, and what changed in
//! the table, the queues and on the bus.

mod support;

use countersign_domain::Status;
use countersign_store::{AgreementGet, HistoryRead};
use serde_json::{json, Value};
use support::{fixture, signed_callback, Function, Resources, SECRET};

fn start(name: &str, binary: &str, resources: &Resources) -> Function {
    Function::start(name, binary, &resources.environment())
}

/// The create function and a callback function whose environment has `overrides` in place of the
/// template's values, and a draft made through the first: its id.
fn callback_with(
    resources: &Resources,
    overrides: &[(&str, &str)],
) -> (Function, Function, String) {
    let mut environment: Vec<(String, String)> = resources
        .environment()
        .into_iter()
        .filter(|(name, _)| overrides.iter().all(|(overridden, _)| name != overridden))
        .collect();
    environment.extend(
        overrides
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    let create = start("create", env!("CARGO_BIN_EXE_create"), resources);
    let callback = Function::start("callback", env!("CARGO_BIN_EXE_callback"), &environment);
    let (status, body) = create.http(&fixture("http/create-agreement.json", ""));
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().expect("an id").to_owned();
    (create, callback, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_file_through_its_function() {
    let resources = Resources::create().await;
    let store = resources.store();
    let create = start("create", env!("CARGO_BIN_EXE_create"), &resources);
    let read = start("read", env!("CARGO_BIN_EXE_read"), &resources);
    let lifecycle = start("lifecycle", env!("CARGO_BIN_EXE_lifecycle"), &resources);
    let callback = start("callback", env!("CARGO_BIN_EXE_callback"), &resources);
    let processor = start(
        "callback-processor",
        env!("CARGO_BIN_EXE_callback-processor"),
        &resources,
    );
    let publisher = start(
        "outbox-publisher",
        env!("CARGO_BIN_EXE_outbox-publisher"),
        &resources,
    );
    let sweeper = start("sweeper", env!("CARGO_BIN_EXE_sweeper"), &resources);
    let dispatcher = start("dispatcher", env!("CARGO_BIN_EXE_dispatcher"), &resources);

    // create: a draft in the table; the Idempotency-Key replays the first response.
    let (status, body) = create.http(&fixture("http/create-agreement.json", ""));
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["id"].as_str().expect("an id").to_owned();
    let stored = store.get_agreement(&id).await.unwrap().expect("stored");
    assert_eq!(
        (stored.status, stored.tenant.as_str(), stored.version),
        (Status::Draft, "tenant-demo", 1)
    );
    let (status, again) = create.http(&fixture("http/create-agreement.json", ""));
    assert_eq!((status, &again["data"]["id"]), (201, &json!(id)));

    // read: get, list, patch (If-Match "1"), history.
    let (status, body) = read.http(&fixture("http/get-agreement.json", &id));
    assert_eq!(
        (status, &body["data"]["version"]),
        (200, &json!(1)),
        "{body}"
    );
    let (status, body) = read.http(&fixture("http/list-agreements.json", &id));
    assert_eq!(
        (status, &body["data"][0]["id"]),
        (200, &json!(id)),
        "{body}"
    );
    let (status, body) = read.http(&fixture("http/patch-agreement.json", &id));
    assert_eq!(status, 200, "{body}");
    let stored = store.get_agreement(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.metadata.success_callback_url.as_deref(),
        Some("https://journey.example.com/done")
    );
    let (status, body) = read.http(&fixture("http/patch-agreement.json", &id));
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (412, Some("VERSION_MISMATCH")),
        "the If-Match is stale now"
    );
    let (status, body) = read.http(&fixture("http/agreement-history.json", &id));
    assert_eq!(status, 200);
    let types: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["AgreementCreated", "AgreementUpdated"]);

    // lifecycle: pending in the table, with its expiry.
    let (status, body) = lifecycle.http(&fixture("http/lifecycle-pending.json", &id));
    assert_eq!(
        (status, &body["data"]["status"]),
        (200, &json!("pending")),
        "{body}"
    );
    let stored = store.get_agreement(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Pending);
    assert!(stored.expires_at.is_some());

    // sandbox sign (lifecycle function) and a provider webhook (callback function): both verified
    // and queued on SQS, nothing applied yet.
    let (status, body) = lifecycle.http(&fixture("http/sandbox-sign.json", &id));
    assert_eq!(status, 202, "{body}");
    let (status, body) = callback.http(&signed_callback(&id, SECRET));
    assert_eq!(status, 202, "{body}");
    let (status, _) = callback.http(&signed_callback(&id, "not-the-secret"));
    assert_eq!(status, 401);
    let (status, _) = callback.http(&fixture("http/callback-sandbox.json", &id));
    assert_eq!(status, 401, "the unsigned template is refused");
    assert_eq!(
        store.get_agreement(&id).await.unwrap().unwrap().status,
        Status::Pending
    );
    let queued = countersign_test_kit::moto::drain(&resources.callback_queue_url, 2).await;
    assert_eq!(
        queued.len(),
        2,
        "two verified callbacks, the refused ones not queued"
    );

    // callback-processor: the real messages, applied; the agreement is fulfilled.
    let response = processor.invoke(&resources.sqs_event(&queued, &resources.callback_queue_arn));
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let stored = store.get_agreement(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Fulfilled);
    // The sample batch: ada's and bob's events are duplicates now; the poison message is reported.
    let response = processor.invoke(&fixture("sqs-callbacks.json", &id));
    let failures: Vec<&str> = response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    let sample: Value = serde_json::from_str(&fixture("sqs-callbacks.json", &id)).unwrap();
    assert_eq!(
        failures,
        [sample["Records"][2]["messageId"].as_str().unwrap()]
    );
    assert_eq!(
        store.get_agreement(&id).await.unwrap().unwrap().version,
        stored.version,
        "applied once"
    );

    // outbox-publisher: the sample stream batch reaches the bus, and a queue subscribed to it.
    let response = publisher.invoke(&fixture("dynamodb-stream.json", &id));
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let delivered = countersign_test_kit::moto::drain(&resources.subscriber_queue_url, 3).await;
    let events: Vec<(String, u64)> = delivered
        .iter()
        .map(|message| {
            let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            assert_eq!(event["source"], "countersign");
            assert_eq!(event["detail"]["agreement_id"], json!(id));
            (
                event["detail-type"].as_str().unwrap().to_owned(),
                event["detail"]["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("AgreementCreated".to_owned(), 1),
            ("AgreementSentForSignature".to_owned(), 2),
            ("SigningGroupInvited".to_owned(), 3)
        ]
    );

    // sweeper: a second agreement, expired through the sandbox, then swept.
    let (_, body) = create.http(
        &fixture("http/create-agreement.json", "").replace("lease-42-create", "lease-43-create"),
    );
    let second = body["data"]["id"].as_str().unwrap().to_owned();
    lifecycle.http(&fixture("http/lifecycle-pending.json", &second));
    let (status, body) = lifecycle.http(&fixture("http/sandbox-expire.json", &second));
    assert_eq!(status, 200, "{body}");
    let report = sweeper.invoke(&fixture("scheduler-sweep.json", ""));
    assert_eq!(report["expired"], 1, "{report}");
    assert_eq!(
        store.get_agreement(&second).await.unwrap().unwrap().status,
        Status::Expired
    );
    let history = store.history(&second).await.unwrap();
    assert_eq!(
        history.last().unwrap().entry_type.as_str(),
        "AgreementExpired"
    );

    // dispatcher: the sample events of a sent agreement go to the sandbox provider; an event it
    // cannot read is reported.
    let (_, body) = create.http(
        &fixture("http/create-agreement.json", "").replace("lease-42-create", "lease-44-create"),
    );
    let third = body["data"]["id"].as_str().unwrap().to_owned();
    lifecycle.http(&fixture("http/lifecycle-pending.json", &third));
    let response = dispatcher.invoke(&fixture("sqs-dispatch.json", &third));
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let logs = dispatcher.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains(r#"action: \"send\""#) && logs.contains(r#"action: \"invite\""#),
        "{logs}"
    );
    let mut poisoned: Value = serde_json::from_str(&fixture("sqs-dispatch.json", &third)).unwrap();
    poisoned["Records"][1]["body"] = json!("not an event");
    let response = dispatcher.invoke(&poisoned.to_string());
    assert_eq!(
        response["batchItemFailures"][0]["itemIdentifier"],
        poisoned["Records"][1]["messageId"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_sandbox_off_the_callback_function_knows_no_sandbox_provider() {
    let resources = Resources::create().await;
    // Off, the function needs no sandbox secret: its parameter does not even exist here.
    let (_create, callback, id) = callback_with(
        &resources,
        &[
            ("SANDBOX_ENABLED", "false"),
            ("WEBHOOK_SECRET_PARAMETER", "/no/such/parameter"),
        ],
    );

    // Correctly signed with the sandbox's secret, and still no provider answers for it.
    let (status, body) = callback.http(&signed_callback(&id, SECRET));
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (404, Some("NOT_FOUND")),
        "{body}"
    );
    let queued = countersign_test_kit::moto::drain(&resources.callback_queue_url, 0).await;
    assert!(queued.is_empty(), "nothing queued: {queued:?}");
}

/// Init makes no network call: a function whose secret is not in SSM yet still starts (its
/// runtime asks for work). A request then is a SPEC 500 that names nothing of the cause, and
/// nothing is queued; once the parameter is there, the next request reads it and goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_read_on_first_use_not_at_init() {
    let resources = Resources::create().await;
    let later = format!(
        "/{}/webhook-secrets",
        countersign_test_kit::moto::unique_name("later")
    );
    let (_create, callback, id) =
        callback_with(&resources, &[("WEBHOOK_SECRET_PARAMETER", later.as_str())]);

    let (status, body) = callback.http(&signed_callback(&id, SECRET));
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (500, Some("INTERNAL")),
        "{body}"
    );
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{body}"
    );
    assert!(!body.to_string().contains("later"), "no internals: {body}");
    let queued = countersign_test_kit::moto::drain(&resources.callback_queue_url, 0).await;
    assert!(queued.is_empty(), "nothing queued: {queued:?}");

    aws_sdk_ssm::Client::new(&resources.sdk)
        .put_parameter()
        .name(&later)
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("parameter");
    let (status, body) = callback.http(&signed_callback(&id, SECRET));
    assert_eq!(status, 202, "{body}");
    let queued = countersign_test_kit::moto::drain(&resources.callback_queue_url, 1).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
}
