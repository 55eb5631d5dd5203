//! Every file of `events/` through the handler its function runs, over the embedded store:
//! the fixtures are real payloads of their triggers and the handlers do what SPEC says with them.
//! (`invoke_binaries.rs` sends the same files to the real binaries on moto.)

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::dynamodb::Event as StreamEvent;
use aws_lambda_events::sqs::SqsEvent;
use countersign_api::auth::JwtClaim;
use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_domain::{LifecycleRequest, PublishedEvent, Rules, Status};
use countersign_functions::handlers;
use countersign_provider::sandbox::SandboxProvider;
use countersign_provider::sandbox::{SandboxCall, SandboxClient};
use countersign_provider::Providers;
use countersign_service::dispatcher::Dispatcher;
use countersign_service::outbox::{EventBatchSender, SinkError};
use countersign_service::test_doubles::MemoryDocuments;
use countersign_service::test_doubles::RecordingQueue;
use countersign_service::{AgreementService, CallbackProcessor, RetryPolicy, Sweeper, SystemClock};
use countersign_store::{HistoryRead, MemoryStore};
use serde_json::{json, Value};
use tower::ServiceExt;

const TENANT: &str = "tenant-demo";
const SECRET: &[u8] = b"fixture-secret";

fn fixture(path: &str, agreement_id: &str) -> String {
    let full = countersign_test_kit::repo_root().join("events").join(path);
    std::fs::read_to_string(&full)
        .unwrap_or_else(|error| panic!("{}: {error}", full.display()))
        .replace("{{agreement_id}}", agreement_id)
}

struct World {
    store: Arc<MemoryStore>,
    agreements: Arc<AgreementService<MemoryStore>>,
}

impl World {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let agreements = Arc::new(AgreementService::new(
            store.clone(),
            Arc::new(SystemClock),
            Rules::default(),
            RetryPolicy::default(),
        ));
        World { store, agreements }
    }

    /// The agreement of `events/http/create-agreement.json`, created and optionally sent.
    async fn agreement(&self, send: bool) -> String {
        let request: Value =
            serde_json::from_str(&fixture("http/create-agreement.json", "")).unwrap();
        let input = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
        let agreement = self
            .agreements
            .create(TENANT, input, None)
            .await
            .unwrap()
            .agreement()
            .expect("no key: nothing replayed");
        if send {
            self.agreements
                .lifecycle(TENANT, &agreement.id, LifecycleRequest::Pending, None, None)
                .await
                .unwrap();
        }
        agreement.id
    }

    async fn status(&self, id: &str) -> Status {
        self.agreements.get(TENANT, id).await.unwrap().status
    }
}

#[tokio::test]
async fn the_callback_batch_applies_each_event_once_and_reports_the_poison_message() {
    let world = World::new();
    let id = world.agreement(true).await;
    let processor = CallbackProcessor::new(
        world.store.clone(),
        Arc::new(SystemClock),
        Rules::default(),
        RetryPolicy::default(),
    );
    let batch: SqsEvent = serde_json::from_str(&fixture("sqs-callbacks.json", &id)).unwrap();
    let poison_id = batch.records[2].message_id.clone().unwrap();

    let response = handlers::callbacks::process_batch(&processor, batch.clone()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        [poison_id.as_str()],
        "only the unreadable message is reported"
    );
    assert_eq!(world.status(&id).await, Status::Fulfilled);
    let version = world.agreements.get(TENANT, &id).await.unwrap().version;

    // SQS redelivers the whole batch: nothing is applied twice.
    let response = handlers::callbacks::process_batch(&processor, batch).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        world.agreements.get(TENANT, &id).await.unwrap().version,
        version
    );
    let history = world.store.history(&id).await.unwrap();
    let ignored = history
        .iter()
        .filter(|e| e.reason.as_deref() == Some("duplicate provider event id"))
        .count();
    assert_eq!(ignored, 2, "each redelivered event is recorded as ignored");
}

/// Accepts everything, or rejects the events of one `sequence`.
struct Recorder {
    reject_sequence: Option<u64>,
    accepted: Mutex<Vec<PublishedEvent>>,
}

#[async_trait]
impl EventBatchSender for Recorder {
    async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError> {
        let mut accepted = self.accepted.lock().unwrap();
        Ok(events
            .iter()
            .map(|event| {
                let ok = Some(event.detail.sequence) != self.reject_sequence;
                if ok {
                    accepted.push((*event).clone());
                }
                ok
            })
            .collect())
    }
}

fn no_wait() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: std::time::Duration::ZERO,
        max_delay: std::time::Duration::ZERO,
    }
}

#[tokio::test]
async fn the_stream_batch_publishes_history_inserts_in_order_and_reports_from_the_first_failure() {
    let batch: StreamEvent =
        serde_json::from_str(&fixture("dynamodb-stream.json", "agr1")).unwrap();
    let all = Recorder {
        reject_sequence: None,
        accepted: Mutex::default(),
    };
    let response = handlers::outbox::publish_batch(&all, batch.clone(), &no_wait()).await;
    assert!(response.batch_item_failures.is_empty());
    let published: Vec<(&str, u64)> = all
        .accepted
        .lock()
        .unwrap()
        .iter()
        .map(|e| (e.detail_type, e.detail.sequence))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        published,
        [
            ("AgreementCreated", 1),
            ("AgreementSentForSignature", 2),
            ("SigningGroupInvited", 3)
        ],
        "the agreement item's MODIFY record is not an event"
    );

    let stuck = Recorder {
        reject_sequence: Some(2),
        accepted: Mutex::default(),
    };
    let response = handlers::outbox::publish_batch(&stuck, batch, &no_wait()).await;
    let failed: Vec<Option<&str>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_deref())
        .collect();
    assert_eq!(
        failed,
        [
            Some("111000000000000000000020"),
            Some("111000000000000000000030")
        ],
        "the stream resumes at the first event that did not go out; the one after it waits"
    );
    assert_eq!(stuck.accepted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_dispatch_batch_sends_the_envelope_and_invites_the_first_group() {
    let world = World::new();
    let id = world.agreement(true).await;
    let sandbox = Arc::new(SandboxClient::recording());
    let mut providers = Providers::new();
    providers.register_client(sandbox.clone());
    let dispatcher = Dispatcher::new(
        world.store.clone(),
        providers,
        Arc::new(MemoryDocuments::new()),
        Arc::new(SystemClock),
        RetryPolicy::default(),
    );
    let mut batch: SqsEvent = serde_json::from_str(&fixture("sqs-dispatch.json", &id)).unwrap();
    let mut poison = batch.records[0].clone();
    poison.message_id = Some("poison".into());
    poison.body = Some("{}".into());
    batch.records.push(poison);

    let response = handlers::dispatcher::dispatch_batch(&dispatcher, batch).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["poison"]);
    assert_eq!(
        sandbox.calls(),
        [
            SandboxCall::Send {
                agreement_id: id.clone()
            },
            SandboxCall::Invite {
                agreement_id: id.clone(),
                step: 1,
                participant_ids: vec!["ada".into(), "bob".into()]
            }
        ]
    );
}

#[tokio::test]
async fn the_scheduled_sweep_expires_what_is_due_and_nothing_else() {
    let world = World::new();
    let due = world.agreement(true).await;
    let not_due = world.agreement(true).await;
    world.agreements.sandbox_expire(TENANT, &due).await.unwrap();
    let _schedule: Value = serde_json::from_str(&fixture("scheduler-sweep.json", "")).unwrap();
    let sweeper = Sweeper::new(
        world.store.clone(),
        Arc::new(SystemClock),
        RetryPolicy::default(),
        10,
    );
    let far = (std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let report = handlers::sweeper::sweep(&sweeper, far, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(report.expired, 1);
    assert!(!report.stopped_at_deadline);
    assert_eq!(world.status(&due).await, Status::Expired);
    assert_eq!(world.status(&not_due).await, Status::Pending);

    // A deadline already inside the margin: the sweep stops before reading anything.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let report =
        handlers::sweeper::sweep(&sweeper, now + 1_000, std::time::Duration::from_secs(30))
            .await
            .unwrap();
    assert!(report.stopped_at_deadline);
    assert_eq!(report.pages, 0);
}

fn api(world: &World, queue: Arc<RecordingQueue>) -> Arc<Api<MemoryStore>> {
    let mut providers = Providers::new();
    providers.register_verifier(Arc::new(SandboxProvider::new(vec![SECRET.to_vec()])));
    Arc::new(Api::new(
        world.agreements.clone(),
        queue,
        Arc::new(providers),
        Arc::new(JwtClaim {
            claim: "tenant".into(),
        }),
        ApiConfig {
            service_hours: None,
            sandbox: SandboxSettings {
                enabled: true,
                signing_secret: SECRET.to_vec().into(),
            },
        },
    ))
}

/// The fixture as `lambda_http` hands it to the function, through the router the function runs.
async fn call(api: &Arc<Api<MemoryStore>>, event: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(event).expect("an API Gateway HTTP API request");
    let response = countersign_api::router(api.clone())
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("a whole body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

#[tokio::test]
async fn every_http_fixture_is_a_request_its_route_answers() {
    let world = World::new();
    let queue = Arc::new(RecordingQueue::default());
    let api = api(&world, queue.clone());

    let (status, body) = call(&api, &fixture("http/create-agreement.json", "")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["status"], "draft");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let (status, again) = call(&api, &fixture("http/create-agreement.json", "")).await;
    assert_eq!(
        (status, &again["data"]["id"]),
        (201, &json!(id)),
        "the Idempotency-Key replays"
    );

    for (file, status_wanted, status_after) in [
        ("http/get-agreement.json", 200, "draft"),
        ("http/patch-agreement.json", 200, "draft"),
        ("http/lifecycle-pending.json", 200, "pending"),
        ("http/agreement-history.json", 200, "pending"),
        ("http/sandbox-sign.json", 202, "pending"),
    ] {
        let (status, body) = call(&api, &fixture(file, &id)).await;
        assert_eq!(status, status_wanted, "{file}: {body}");
        assert_eq!(world.status(&id).await.as_str(), status_after, "{file}");
    }
    let (_, list) = call(&api, &fixture("http/list-agreements.json", &id)).await;
    assert_eq!(list["data"][0]["id"], json!(id));

    // The webhook fixture, signed now with the fixture secret as a provider would.
    let template = fixture("http/callback-sandbox.json", &id);
    let body = serde_json::from_str::<Value>(&template).unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let signed = template.replace(
        "{{signature}}",
        &countersign_provider::sandbox::sign(SECRET, now, body.as_bytes()),
    );
    let (status, body) = call(&api, &signed).await;
    assert_eq!(status, 202, "{body}");
    let (status, _) = call(&api, &template.replace("{{signature}}", "t=1,v1=00")).await;
    assert_eq!(status, 401);

    let queued: Vec<String> = queue
        .take()
        .into_iter()
        .map(|event| event.event_id)
        .collect();
    assert_eq!(
        queued.len(),
        2,
        "the sandbox's and the provider's callbacks: {queued:?}"
    );
    assert!(queued.contains(&"evt_sample_bob_signed".to_owned()));

    let (status, body) = call(&api, &fixture("http/sandbox-expire.json", &id)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["expires_at"].is_string());
}
