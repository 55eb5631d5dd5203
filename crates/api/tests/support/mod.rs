//! What the handler tests share: the whole API's router wired over the embedded store with a
//! manual clock, a recording callback queue applied on demand, requests sent through the router
//! (`tower::ServiceExt::oneshot`, as the Lambda runtime and countersign-local call it), and
//! replies read back as JSON.
//!
//! Expected values here come from SPEC (and from independent computations such as the HMAC and
//! mod-97 helpers below), never from the implementation's own helpers.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::Router;
use chrono::{DateTime, Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method};
use serde_json::{json, Value};
use sha2::Sha256;
use tower::ServiceExt;

use countersign_api::auth::{ApiKeys, Authenticator};
use countersign_api::service_hours::ServiceHours;
use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_domain::Rules;
use countersign_provider::sandbox::SandboxProvider;
use countersign_provider::Providers;
use countersign_service::test_doubles::ManualClock;
use countersign_service::test_doubles::RecordingQueue;
use countersign_service::{
    AgreementService, CallbackOutcome, CallbackProcessor, RetryPolicy, SweepReport, Sweeper,
};
use countersign_store::{MemoryStore, Store};

pub const KEY_A: &str = "key-a";
pub const TENANT_A: &str = "tenant-a";
pub const KEY_B: &str = "key-b";
pub const TENANT_B: &str = "tenant-b";

/// The secret the sandbox signs with and the verifier accepts.
pub const SECRET: &[u8] = b"whsec-current-4f2a";
/// A secret being rotated out: still accepted by the verifier in rotation tests.
pub const OLD_SECRET: &[u8] = b"whsec-previous-9c1d";

/// A valid French IBAN (ISO 13616 mod-97 holds; checked by `mod97_holds` below).
pub const IBAN: &str = "FR14 2004 1010 0505 0001 3M02 606";
/// Another valid one (German).
pub const IBAN_DE: &str = "DE89370400440532013000";
/// The French IBAN with its check digits changed: mod-97 fails.
pub const BAD_IBAN: &str = "FR15 2004 1010 0505 0001 3M02 606";
pub const SHA256_HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// 1 MiB, the largest body SPEC section 3 accepts.
pub const ONE_MIB: usize = 1024 * 1024;

/// Monday 15 June 2026, 12:00 in Paris: inside any sensible service hours.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 10, 0, 0).unwrap()
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

/// ISO 13616 mod-97, written out here so the IBAN fixtures do not rest on the crate under test.
pub fn mod97_holds(iban: &str) -> bool {
    let compact: String = iban.chars().filter(|c| !c.is_whitespace()).collect();
    let rearranged = format!("{}{}", &compact[4..], &compact[..4]);
    let mut remainder: u32 = 0;
    for c in rearranged.chars() {
        let digits = match c {
            '0'..='9' => c.to_digit(10).unwrap().to_string(),
            'A'..='Z' => (c as u32 - 'A' as u32 + 10).to_string(),
            _ => return false,
        };
        for d in digits.chars() {
            remainder = (remainder * 10 + d.to_digit(10).unwrap()) % 97;
        }
    }
    remainder == 1
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, computed with `hmac` directly.
pub fn v1(secret: &[u8], timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    format!("t={timestamp},v1={}", v1(secret, timestamp, body))
}

/// A sandbox provider webhook body (SPEC section 5/6 shape).
pub fn event_body(
    event_id: &str,
    event_type: &str,
    agreement_id: &str,
    participant_id: Option<&str>,
    created_at: DateTime<Utc>,
) -> String {
    let mut data = json!({ "agreement_id": agreement_id });
    if let Some(participant_id) = participant_id {
        data["participant_id"] = json!(participant_id);
    }
    json!({
        "id": event_id,
        "type": event_type,
        "created_at": created_at.to_rfc3339(),
        "data": data,
    })
    .to_string()
}

pub fn main_document() -> Value {
    json!({
        "filename": "lease.pdf",
        "mime_type": "application/pdf",
        "size": 48213,
        "sha256": SHA256_HEX,
        "uri": "s3://contracts/lease.pdf"
    })
}

pub fn bank_information() -> Value {
    json!({"account_holder": "Ada Lovelace", "iban": IBAN, "bic": "BNPAFRPP"})
}

/// A complete agreement: everything `pending` needs, two signatories (a signer and an approver).
pub fn ready_body(test_mode: bool) -> Value {
    json!({
        "test_mode": test_mode,
        "trust_level": "AES",
        "contract": {"contract_id": "C-1", "proposal_id": "P-1", "bank_information": bank_information()},
        "issuer": {"name": "Leasing Co", "email": "ops@leasing.example", "role": "observer"},
        "participants": [
            {"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "role": "signer"},
            {"id": "bob", "name": "Bob Banker", "email": "bob@example.com", "role": "approver"}
        ],
        "observers": [{"id": "obs", "name": "Olga", "email": "olga@example.com", "scope": "cc"}],
        "documents": {"main": main_document()},
        "communication": {"send_emails": false, "default_locale": "fr-FR"},
        "metadata": {"lookup_key": "lease-42", "success_callback_url": "https://leasing.example/done"}
    })
}

/// `ready_body(true)` with these participants and signing order.
pub fn ready_with(participants: Value, signing_order: Value) -> Value {
    let mut body = ready_body(true);
    body["participants"] = participants;
    body["signing_order"] = signing_order;
    body
}

pub struct Options {
    pub service_hours: Option<ServiceHours>,
    pub sandbox_enabled: bool,
    /// What the sandbox verifier accepts.
    pub verifier_secrets: Vec<Vec<u8>>,
    /// What the sandbox routes sign with.
    pub signing_secret: Vec<u8>,
    pub start: DateTime<Utc>,
    pub rules: Rules,
    /// Who the callers are; `None`: the API keys of [`api_keys`].
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            service_hours: None,
            sandbox_enabled: true,
            verifier_secrets: vec![SECRET.to_vec()],
            signing_secret: SECRET.to_vec(),
            start: t0(),
            rules: Rules::default(),
            authenticator: None,
        }
    }
}

pub fn api_keys() -> Arc<ApiKeys> {
    Arc::new(ApiKeys::parse(&format!("{KEY_A}={TENANT_A},{KEY_B}={TENANT_B}")).unwrap())
}

/// The API's router over any store, as `countersign-local` wires it (sandbox provider, API keys).
pub fn api_over<S: Store + 'static>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    queue: Arc<RecordingQueue>,
    options: &Options,
) -> Router {
    let agreements = Arc::new(AgreementService::new(
        store,
        clock,
        options.rules.clone(),
        RetryPolicy::default(),
    ));
    // As countersign-local and the callback function do: off, the sandbox provider is not there.
    let mut providers = Providers::new();
    if options.sandbox_enabled {
        providers.register_verifier(Arc::new(SandboxProvider::new(
            options.verifier_secrets.clone(),
        )));
    }
    let api = Api::new(
        agreements,
        queue,
        Arc::new(providers),
        options
            .authenticator
            .clone()
            .unwrap_or_else(|| api_keys() as Arc<dyn Authenticator>),
        ApiConfig {
            service_hours: options.service_hours,
            sandbox: SandboxSettings {
                enabled: options.sandbox_enabled,
                signing_secret: options.signing_secret.clone().into(),
            },
        },
    );
    countersign_api::router(Arc::new(api))
}

/// Sends one request through the router.
pub async fn send_to(router: &Router, call: Call) -> Reply {
    let mut builder = http::Request::builder().method(call.method).uri(&call.path);
    if let Some(key) = &call.key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    for (name, value) in &call.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder.body(Body::from(call.body)).unwrap();
    let response = router
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {});
    Reply::of(response).await
}

/// A request being built. Authenticated as tenant A unless told otherwise.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub key: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Call {
    pub fn new(method: Method, path: &str) -> Self {
        Call {
            method,
            path: path.to_owned(),
            key: Some(KEY_A.to_owned()),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    pub fn no_auth(mut self) -> Self {
        self.key = None;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        self
    }

    pub fn text(mut self, body: impl Into<String>) -> Self {
        self.body = body.into().into_bytes();
        self
    }
}

/// A response, its body read as JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    async fn of(response: axum::response::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a whole body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn request_id(&self) -> &str {
        self.header("x-request-id")
            .unwrap_or_else(|| panic!("no X-Request-Id on {} {}", self.status, self.text))
    }

    pub fn data(&self) -> &Value {
        &self.json["data"]
    }

    pub fn error(&self) -> &Value {
        &self.json["error"]
    }

    /// A success in the single envelope of SPEC section 3, for an agreement, with its ETag.
    pub fn expect_agreement(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.json["version"], "1.0", "{}", self.text);
        assert_eq!(self.json["result_type"], "single", "{}", self.text);
        assert_eq!(self.json["resource_type"], "agreement", "{}", self.text);
        let data = self.data();
        assert_eq!(data["resource_type"], "agreement", "{}", self.text);
        let version = data["version"].as_u64().expect("data.version");
        assert_eq!(
            self.header("etag"),
            Some(format!("\"{version}\"").as_str()),
            "ETag is the version"
        );
        assert!(self.header("x-request-id").is_some_and(|id| !id.is_empty()));
        data
    }

    /// An error in the envelope of SPEC section 3: `status`, `error.code`, `error.type`, a
    /// message, `details` as a list, and `error.request_id` equal to `X-Request-Id`.
    pub fn expect_error(&self, status: u16, error_type: &str) -> &Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.json["status"], "error", "{}", self.text);
        let error = self.error();
        assert_eq!(error["code"], json!(status), "{}", self.text);
        assert_eq!(error["type"], error_type, "{}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.text
        );
        assert!(error["details"].is_array(), "{}", self.text);
        assert_eq!(
            error["request_id"].as_str(),
            Some(self.request_id()),
            "error.request_id is X-Request-Id"
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        error
    }

    /// The `type`s of `error.details`.
    pub fn detail_types(&self) -> Vec<String> {
        self.error()["details"]
            .as_array()
            .map(|details| {
                details
                    .iter()
                    .map(|d| d["type"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The API over the embedded store, a manual clock, a recording queue, and the workers the
/// tests run by hand (callback processor, sweeper).
pub struct Harness {
    pub api: Router,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<ManualClock>,
    pub queue: Arc<RecordingQueue>,
    pub processor: CallbackProcessor<MemoryStore>,
    pub sweeper: Sweeper<MemoryStore>,
}

impl Harness {
    pub fn new() -> Self {
        Harness::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(options.start));
        let queue = Arc::new(RecordingQueue::default());
        let api = api_over(store.clone(), clock.clone(), queue.clone(), &options);
        let processor = CallbackProcessor::new(
            store.clone(),
            clock.clone(),
            options.rules.clone(),
            RetryPolicy::default(),
        );
        let sweeper = Sweeper::new(store.clone(), clock.clone(), RetryPolicy::default(), 2);
        Harness {
            api,
            store,
            clock,
            queue,
            processor,
            sweeper,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        use countersign_service::Clock;
        self.clock.now()
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn send(&self, call: Call) -> Reply {
        send_to(&self.api, call).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Call::new(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(Call::new(Method::POST, path).json(body)).await
    }

    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(Call::new(Method::POST, path)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(Call::new(Method::PATCH, path).json(body)).await
    }

    /// Creates an agreement as tenant A; returns its `data`.
    pub async fn create(&self, body: &Value) -> Value {
        let reply = self.post("/v1/agreements", body).await;
        reply.expect_agreement(201).clone()
    }

    pub async fn create_id(&self, body: &Value) -> String {
        self.create(body).await["id"].as_str().unwrap().to_owned()
    }

    /// Tenant A's agreement as `GET` shows it.
    pub async fn agreement(&self, id: &str) -> Value {
        let reply = self.get(&format!("/v1/agreements/{id}")).await;
        reply.expect_agreement(200).clone()
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        let reply = self.get(&format!("/v1/agreements/{id}/history")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.data().as_array().cloned().expect("history data")
    }

    pub async fn history_types(&self, id: &str) -> Vec<String> {
        types(&self.history(id).await)
    }

    pub async fn lifecycle(&self, id: &str, body: &Value) -> Reply {
        self.post(&format!("/v1/agreements/{id}/lifecycle"), body)
            .await
    }

    /// Creates `body` and sends it for signature; returns the id.
    pub async fn sent(&self, body: &Value) -> String {
        let id = self.create_id(body).await;
        let reply = self
            .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
            .await;
        let data = reply.expect_agreement(200);
        assert_eq!(data["status"], "pending", "{}", reply.text);
        id
    }

    /// `POST /v1/sandbox/agreements/{id}/participants/{pid}/{action}`.
    pub async fn sandbox_participant(&self, id: &str, pid: &str, action: &str) -> Reply {
        self.post_empty(&format!(
            "/v1/sandbox/agreements/{id}/participants/{pid}/{action}"
        ))
        .await
    }

    /// A sandbox participant action that must be accepted, then applied.
    pub async fn act(&self, id: &str, pid: &str, action: &str) -> Vec<CallbackOutcome> {
        let reply = self.sandbox_participant(id, pid, action).await;
        assert_eq!(reply.status, 202, "{action} {pid}: {}", reply.text);
        self.pump().await
    }

    /// Applies every queued callback, in order, as the callback worker would.
    pub async fn pump(&self) -> Vec<CallbackOutcome> {
        let mut outcomes = Vec::new();
        for event in self.queue.take() {
            outcomes.push(self.processor.process(&event).await.unwrap());
        }
        outcomes
    }

    /// Posts a provider webhook to `POST /v1/callbacks/sandbox`.
    pub async fn callback(&self, body: &str, signature: Option<&str>) -> Reply {
        let mut call = Call::new(Method::POST, "/v1/callbacks/sandbox")
            .no_auth()
            .header("content-type", "application/json")
            .text(body.to_owned());
        if let Some(signature) = signature {
            call = call.header("countersign-signature", signature);
        }
        self.send(call).await
    }

    pub async fn sweep(&self) -> SweepReport {
        self.sweeper.sweep(None).await.unwrap()
    }
}

pub fn types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|entry| entry["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn participant<'a>(agreement: &'a Value, id: &str) -> &'a Value {
    agreement["participants"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == id))
        .unwrap_or_else(|| panic!("no participant {id} in {agreement:#}"))
}

/// The status-table columns of an agreement: (`status`, `signature_status`, `journey`).
pub fn row(agreement: &Value) -> (String, Value, String) {
    (
        agreement["status"].as_str().unwrap_or_default().to_owned(),
        agreement["signature_status"].clone(),
        agreement["journey"].as_str().unwrap_or_default().to_owned(),
    )
}

pub fn expect_row(agreement: &Value, status: &str, signature_status: Value, journey: &str) {
    assert_eq!(
        row(agreement),
        (status.to_owned(), signature_status, journey.to_owned()),
        "{agreement:#}"
    );
}

pub fn parse_time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
        .parse()
        .unwrap()
}
