//! Agreements walked to every end through the functions' handlers, in process, on moto, with every
//! fault of the fault injector on (`countersign_test_kit::faults`): a third of the DynamoDB requests
//! throttled, a quarter of the committed writes losing their answer, a third of the `SendMessage`
//! failing, half of the `PutEvents` entries failing. The SDK retries once, so faults also reach
//! the code. Clients retry a 503 (it must carry `Retry-After`); SQS redelivers what the callback
//! processor reports failed; the stream hands a batch over again from its first failed record.
//!
//! Then: every end reached; every history gapless; every event on the bus, none lost, the first
//! delivery of each in sequence order and never ahead of one missing, any copy identical to the
//! committed event (at least once, in order: SPEC section 4); every acknowledged request applied,
//! once; no 5xx but 503.
//!
//! Copies do reach the bus: from a stream batch handed over again (its records after the first
//! failed one were already published), and from moto, whose stream also records the puts of a
//! transaction it cancelled (the retry of a commit whose answer was lost), which DynamoDB never
//! does. A consumer keeps the highest sequence it applied per agreement and skips the others.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::sqs::SqsEvent;
use countersign_aws::EventBridgeSender;
use countersign_domain::{EntryType, Journey, Status};
use countersign_functions::handlers;
use countersign_functions::init::{http_api, HttpRole};
use countersign_functions::settings::Settings;
use countersign_service::{CallbackProcessor, RetryPolicy, Sweeper, SystemClock};
use countersign_store::{AgreementGet, AgreementList, HistoryRead, ListQuery};
use countersign_store_dynamodb::DynamoStore;
use countersign_test_kit::faults::{FaultInjector, FaultKind, FaultPlan};
use serde_json::{json, Value};
use support::{fixture, Resources, SECRET, TENANT};
use tower::ServiceExt;

/// Attempts of each SDK call (the first included): one retry, so some faults reach our code.
const SDK_ATTEMPTS: u32 = 2;
/// How often a client sends a request again after a 503 (without waiting: the run's faults do
/// not heal with time) before the run fails.
const CLIENT_TRIES: usize = 30;
/// The run's schedule of faults, unless `COUNTERSIGN_FAULT_SEED` names another.
const DEFAULT_SEED: u64 = 20261202;
/// Deliveries of a queued message, or of a stream batch, before the run fails.
const REDELIVERIES: usize = 30;

/// Where each agreement of the run is headed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Fulfilled,
    Refused,
    Expired,
    Cancelled,
    Failed,
    Stopped,
}

const PATHS: [Path; 6] = [
    Path::Fulfilled,
    Path::Refused,
    Path::Expired,
    Path::Cancelled,
    Path::Failed,
    Path::Stopped,
];

/// A response as the client saw it.
struct Reply {
    status: u16,
    body: Value,
}

/// One HTTP function's router, and what its clients saw.
struct Client {
    router: axum::Router,
    /// Every 503, and how many requests were sent in all.
    unavailable: usize,
    sent: usize,
}

impl Client {
    /// Sends `event` (an API Gateway request) until it is not a 503; any other 5xx fails the run.
    async fn send(&mut self, event: &str) -> Reply {
        for _ in 0..CLIENT_TRIES {
            self.sent += 1;
            let request =
                lambda_http::request::from_str(event).expect("an API Gateway HTTP API request");
            let response = self
                .router
                .clone()
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a whole body");
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status == 503 {
                let retry_after = retry_after
                    .as_ref()
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok());
                assert!(
                    retry_after.is_some_and(|seconds| seconds > 0),
                    "a 503 without Retry-After: {body}"
                );
                assert_eq!(body["error"]["type"], "SERVICE_UNAVAILABLE", "{body}");
                self.unavailable += 1;
                continue;
            }
            assert!(status < 500, "a {status}, not a 503: {body}");
            return Reply { status, body };
        }
        panic!("still 503 after {CLIENT_TRIES} tries: {event}");
    }
}

fn with_idempotency_key(event: &str, key: &str) -> String {
    let mut event: Value = serde_json::from_str(event).unwrap();
    event["headers"]["idempotency-key"] = json!(key);
    event.to_string()
}

fn create_request(key: &str) -> String {
    let mut event: Value =
        serde_json::from_str(&fixture("http/create-agreement.json", "")).unwrap();
    let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    body["metadata"]["lookup_key"] = json!(key);
    event["body"] = json!(body.to_string());
    with_idempotency_key(&event.to_string(), &format!("create-{key}"))
}

fn lifecycle_request(id: &str, body: Value, key: &str) -> String {
    let mut event: Value =
        serde_json::from_str(&fixture("http/lifecycle-pending.json", id)).unwrap();
    event["body"] = json!(body.to_string());
    with_idempotency_key(&event.to_string(), key)
}

fn sandbox_participant_request(id: &str, participant: &str, action: &str) -> String {
    fixture("http/sandbox-sign.json", id)
        .replace(
            "participants/ada/sign",
            &format!("participants/{participant}/{action}"),
        )
        .replace("\"pid\": \"ada\"", &format!("\"pid\": \"{participant}\""))
        .replace("\"action\": \"sign\"", &format!("\"action\": \"{action}\""))
}

fn sandbox_request(id: &str, action: &str) -> String {
    fixture("http/sandbox-expire.json", id).replace("/expire", &format!("/{action}"))
}

/// A provider webhook, signed as the sandbox provider signs.
fn webhook(event_id: &str, agreement_id: &str, participant_id: &str) -> String {
    let body = json!({
        "id": event_id,
        "type": "participant.signed",
        "created_at": "2026-11-23T10:00:00Z",
        "data": {"agreement_id": agreement_id, "participant_id": participant_id},
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
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

/// Applies what the callback queue holds, as SQS and the callback processor do: a message the
/// processor reports failed is delivered again, until none is left.
async fn process_callbacks(
    resources: &Resources,
    processor: &CallbackProcessor<DynamoStore>,
    expected: usize,
) -> usize {
    let mut pending =
        countersign_test_kit::moto::drain(&resources.callback_queue_url, expected).await;
    assert_eq!(
        pending.len(),
        expected,
        "every acknowledged callback was queued once"
    );
    let mut redelivered = 0;
    for _ in 0..REDELIVERIES {
        if pending.is_empty() {
            return redelivered;
        }
        let mut failed = Vec::new();
        for chunk in pending.chunks(10) {
            let batch: SqsEvent =
                serde_json::from_str(&resources.sqs_event(chunk, &resources.callback_queue_arn))
                    .unwrap();
            let response = handlers::callbacks::process_batch(processor, batch).await;
            for failure in response.batch_item_failures {
                failed.extend(
                    chunk
                        .iter()
                        .filter(|message| message.message_id() == Some(&failure.item_identifier))
                        .cloned(),
                );
            }
        }
        redelivered += failed.len();
        pending = failed;
    }
    panic!("callbacks still failing after {REDELIVERIES} deliveries: {pending:?}");
}

/// Hands the table's stream to the outbox publisher in batches of 10, as the event source
/// mapping does with `ReportBatchItemFailures`: after a failure, the next batch starts at the
/// first failed record. Returns how many batches were handed over again.
async fn publish_stream(resources: &Resources, sender: &EventBridgeSender) -> usize {
    let records = support::stream_records(resources).await;
    let retry = RetryPolicy::default();
    let mut start = 0;
    let mut again = 0;
    let mut tries_here = 0;
    while start < records.len() {
        let batch = &records[start..(start + 10).min(records.len())];
        let event: StreamEvent = serde_json::from_value(json!({ "Records": batch })).unwrap();
        let response = handlers::outbox::publish_batch(sender, event, &retry).await;
        let first_failed = batch.iter().position(|record| {
            response.batch_item_failures.iter().any(|failure| {
                failure.item_identifier.as_deref() == record["dynamodb"]["SequenceNumber"].as_str()
            })
        });
        match first_failed {
            None => {
                start += batch.len();
                tries_here = 0;
            }
            Some(position) => {
                tries_here += 1;
                assert!(
                    tries_here < REDELIVERIES,
                    "stream records still failing after {REDELIVERIES} deliveries"
                );
                again += 1;
                start += position;
            }
        }
    }
    again
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_end_reached_under_faults_nothing_lost_nothing_applied_twice() {
    let resources = Resources::create().await;
    // Another schedule of faults: COUNTERSIGN_FAULT_SEED=<n>.
    let seed = std::env::var("COUNTERSIGN_FAULT_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let faults = FaultInjector::new(seed, FaultPlan::all());
    let sdk = faults.sdk_config(SDK_ATTEMPTS);
    let mut environment: HashMap<String, String> = resources.environment().into_iter().collect();
    environment.insert("SANDBOX_ENABLED".to_owned(), "true".to_owned());
    let settings = Settings::from_lookup(|name| environment.get(name).cloned()).expect("settings");

    faults.set_enabled(false);
    let client = |role| {
        let (sdk, settings) = (&sdk, &settings);
        async move {
            Client {
                router: countersign_api::router(Arc::new(
                    http_api(sdk, settings, role).await.expect("the API"),
                )),
                unavailable: 0,
                sent: 0,
            }
        }
    };
    let mut agreements_api = client(HttpRole::Agreements).await;
    let mut lifecycle_api = client(HttpRole::LifecycleAndSandbox).await;
    let mut callbacks_api = client(HttpRole::Callbacks).await;
    faults.set_enabled(true);

    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &resources.table,
    ));
    let processor = CallbackProcessor::new(
        store.clone(),
        Arc::new(SystemClock),
        settings.rules,
        RetryPolicy::default(),
    );
    let sweeper = Sweeper::new(
        store.clone(),
        Arc::new(SystemClock),
        RetryPolicy::default(),
        settings.sweep_page_size,
    );
    let sender = EventBridgeSender::new(aws_sdk_eventbridge::Client::new(&sdk), &resources.bus);

    // Two agreements per end, created and sent.
    let mut walked: Vec<(Path, String, String)> = Vec::new();
    for round in 0..2 {
        for path in PATHS {
            let key = format!("{path:?}-{round}").to_lowercase();
            let created = agreements_api.send(&create_request(&key)).await;
            assert_eq!(created.status, 201, "{}", created.body);
            let id = created.body["data"]["id"].as_str().unwrap().to_owned();
            let sent = lifecycle_api
                .send(&lifecycle_request(
                    &id,
                    json!({"lifecycle_state": "pending"}),
                    &format!("send-{key}"),
                ))
                .await;
            assert_eq!(sent.status, 200, "{}", sent.body);
            assert_eq!(sent.body["data"]["status"], "pending");
            walked.push((path, id, key));
        }
    }

    // Each on its way: provider webhooks, sandbox callbacks, a cancel, expiry.
    let mut queued = 0;
    let mut webhook_ids: Vec<(String, String)> = Vec::new();
    for (path, id, key) in &walked {
        let accepted = |reply: &Reply| assert_eq!(reply.status, 202, "{}", reply.body);
        match path {
            Path::Fulfilled => {
                for participant in ["ada", "bob"] {
                    let event_id = format!("evt_{id}_{participant}");
                    accepted(
                        &callbacks_api
                            .send(&webhook(&event_id, id, participant))
                            .await,
                    );
                    webhook_ids.push((id.clone(), event_id));
                    queued += 1;
                }
            }
            Path::Refused => {
                accepted(
                    &lifecycle_api
                        .send(&sandbox_participant_request(id, "ada", "refuse"))
                        .await,
                );
                queued += 1;
            }
            Path::Stopped => {
                accepted(
                    &lifecycle_api
                        .send(&sandbox_participant_request(id, "bob", "bounce"))
                        .await,
                );
                queued += 1;
            }
            Path::Failed => {
                accepted(&lifecycle_api.send(&sandbox_request(id, "fail")).await);
                queued += 1;
            }
            Path::Cancelled => {
                let reply = lifecycle_api
                    .send(&lifecycle_request(
                        id,
                        json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_document"}}),
                        &format!("cancel-{key}"),
                    ))
                    .await;
                assert_eq!(reply.status, 200, "{}", reply.body);
                assert_eq!(reply.body["data"]["status"], "cancelled");
            }
            Path::Expired => {
                let reply = lifecycle_api.send(&sandbox_request(id, "expire")).await;
                assert_eq!(reply.status, 200, "{}", reply.body);
            }
        }
    }
    let redelivered_callbacks = process_callbacks(&resources, &processor, queued).await;

    // The sweeper runs on its schedule until both are expired (what a failed run left is the
    // next one's). Checked on a client without faults.
    let clean = resources.store();
    let due: Vec<&str> = walked
        .iter()
        .filter(|(path, _, _)| *path == Path::Expired)
        .map(|(_, id, _)| id.as_str())
        .collect();
    let mut sweeps = 0;
    loop {
        let mut expired = 0;
        for id in &due {
            let agreement = clean.get_agreement(id).await.unwrap().expect("created");
            expired += usize::from(agreement.status == Status::Expired);
        }
        if expired == due.len() {
            break;
        }
        sweeps += 1;
        assert!(
            sweeps <= REDELIVERIES,
            "still not expired after {sweeps} sweeps"
        );
        let _ = handlers::sweeper::sweep(&sweeper, 0, Duration::from_secs(30)).await;
    }

    let batches_again = publish_stream(&resources, &sender).await;
    let injected = faults.injected();
    eprintln!(
        "seed {seed}: faults injected: {injected:?}; 503s: {} of {} requests; callbacks redelivered: {redelivered_callbacks}; sweeps: {sweeps}; stream batches handed over again: {batches_again}",
        agreements_api.unavailable + lifecycle_api.unavailable + callbacks_api.unavailable,
        agreements_api.sent + lifecycle_api.sent + callbacks_api.sent,
    );
    for kind in [
        FaultKind::ProvisionedThroughputExceeded,
        FaultKind::Throttling,
        FaultKind::SqsSendFailure,
        FaultKind::PutEventsEntryFailed,
        FaultKind::CommittedThenTimedOut,
    ] {
        // The default schedule meets every fault (another seed may miss the rarest ones).
        assert!(
            injected.get(&kind).copied().unwrap_or(0) > 0 || seed != DEFAULT_SEED,
            "the run met no {kind:?}: {injected:?}"
        );
    }

    // Every end reached, every history gapless, every acknowledged request applied once.
    let mut expected_events: BTreeMap<String, Vec<(u64, String, Value)>> = BTreeMap::new();
    for (path, id, key) in &walked {
        let agreement = clean.get_agreement(id).await.unwrap().expect("created");
        let (status, journey) = match path {
            Path::Fulfilled => (Status::Fulfilled, Journey::Proceed),
            Path::Refused => (Status::Refused, Journey::Stopped),
            Path::Expired => (Status::Expired, Journey::Stopped),
            Path::Cancelled => (Status::Cancelled, Journey::Stopped),
            Path::Failed => (Status::Failed, Journey::Stopped),
            Path::Stopped => (Status::Pending, Journey::Stopped),
        };
        assert_eq!(
            (agreement.status, agreement.journey()),
            (status, journey),
            "{path:?} {id}"
        );
        let history = clean.history(id).await.unwrap();
        let sequences: Vec<u64> = history.iter().map(|entry| entry.sequence).collect();
        assert_eq!(
            sequences,
            (1..=history.len() as u64).collect::<Vec<_>>(),
            "{path:?} {id}: gapless"
        );
        assert_eq!(agreement.history_len, history.len() as u64);
        let count = |wanted: EntryType| {
            history
                .iter()
                .filter(|entry| entry.entry_type == wanted)
                .count()
        };
        // Sent once and created once, though requests were retried and answers lost.
        assert_eq!(count(EntryType::AgreementCreated), 1, "{path:?} {id}");
        assert_eq!(
            count(EntryType::AgreementSentForSignature),
            1,
            "{path:?} {id}"
        );
        let listed = clean
            .list_agreements(&ListQuery {
                tenant: TENANT.to_owned(),
                lookup_key: Some(key.clone()),
                status: None,
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(
            listed.agreements.len(),
            1,
            "one agreement per create: {key}"
        );
        // Each provider event applied by one transition; ignored only when delivered again
        // after it was applied (a redelivery whose first delivery's answer was lost).
        let mut applied: HashMap<&str, std::collections::BTreeSet<u64>> = HashMap::new();
        for entry in &history {
            if let (Some(event_id), false) = (
                entry.provider_event_id.as_deref(),
                entry.entry_type == EntryType::ProviderEventIgnored,
            ) {
                applied.entry(event_id).or_default().insert(entry.version);
            }
        }
        for (event_id, versions) in &applied {
            assert_eq!(versions.len(), 1, "{id}: {event_id} applied more than once");
        }
        for entry in &history {
            if entry.entry_type == EntryType::ProviderEventIgnored {
                let event_id = entry.provider_event_id.as_deref().unwrap_or_default();
                assert!(
                    applied.contains_key(event_id),
                    "{id}: {event_id} ignored though never applied: {:?}",
                    entry.reason
                );
            }
        }
        expected_events.insert(
            id.clone(),
            history
                .iter()
                .filter_map(|entry| entry.published_event())
                .map(|event| {
                    (
                        event.detail.sequence,
                        event.detail_type.to_owned(),
                        serde_json::to_value(&event.detail).unwrap(),
                    )
                })
                .collect(),
        );
    }
    for (id, event_id) in &webhook_ids {
        let history = clean.history(id).await.unwrap();
        assert_eq!(
            history
                .iter()
                .filter(|entry| entry.provider_event_id.as_deref() == Some(event_id)
                    && entry.entry_type == EntryType::ParticipantSigned)
                .count(),
            1,
            "webhook {event_id} applied once"
        );
    }

    // On the bus: every event, first deliveries in sequence order, never one ahead of a missing
    // one, copies only if the stream handed a batch over again.
    let total: usize = expected_events.values().map(Vec::len).sum();
    let delivered = countersign_test_kit::moto::drain(&resources.subscriber_queue_url, total).await;
    let mut received: BTreeMap<String, Vec<(u64, String, Value)>> = BTreeMap::new();
    for message in &delivered {
        let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        received
            .entry(event["detail"]["agreement_id"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                event["detail"]["sequence"].as_u64().unwrap(),
                event["detail-type"].as_str().unwrap().to_owned(),
                event["detail"].clone(),
            ));
    }
    let mut copies = 0;
    for (id, expected) in &expected_events {
        let deliveries = received.remove(id).unwrap_or_default();
        let mut first_deliveries = Vec::new();
        let mut highest = 0;
        for delivery in &deliveries {
            let sequence = delivery.0;
            assert!(
                sequence <= highest + 1,
                "{id}: event {sequence} delivered before {}: {deliveries:?}",
                highest + 1
            );
            if sequence == highest + 1 {
                highest = sequence;
                first_deliveries.push(delivery.clone());
            } else {
                copies += 1;
                assert!(
                    expected.contains(delivery),
                    "{id}: a copy that is not the committed event: {delivery:?}"
                );
            }
        }
        assert_eq!(&first_deliveries, expected, "{id}: every event, in order");
    }
    eprintln!("events: {total}, and {copies} copies");
    assert!(received.is_empty(), "events of no agreement: {received:?}");
}
