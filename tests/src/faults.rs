//! Fault injection for the AWS adapter tests: one in-process proxy, an SDK HTTP client that sits
//! between any SDK client (DynamoDB, SQS, EventBridge) and moto, and answers some requests the way
//! a struggling AWS does.
//!
//! It works at the HTTP layer rather than as an interceptor because only there can a fault be
//! answered without the request reaching moto, and because the SDK then sees genuine responses:
//! its error deserializers and retry classifiers behave exactly as they would on AWS.
//!
//! Faults (each a fraction of the matching requests, 0 for none):
//! - DynamoDB throttling: answered before moto, 400 `ProvisionedThroughputExceededException` or
//!   `ThrottlingException` (alternating), as DynamoDB answers them;
//! - SQS `SendMessage` failing: answered before moto, 500 `InternalError`;
//! - `PutEvents` partial failure: the failing entries are taken out of the request before it
//!   goes to moto (so they are really not delivered) and put back into the response as failed
//!   entries (`ErrorCode`, `ErrorMessage`, `FailedEntryCount`), as EventBridge reports them;
//! - `TransactWriteItems` (or `PutItem`) committed, then timed out: the request reaches moto and
//!   commits, and the caller gets a timeout instead of the response, so it does not know it did.
//!
//! Deterministic: whether the n-th request of an operation (every attempt counts, SDK retries
//! included) meets a fault is a hash of the seed, the operation and n, so a run that sends the
//! same requests in the same order meets the same faults, whatever the interleaving of the other
//! operations.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde_json::{json, Value};

/// How often each fault strikes: the fraction of matching requests, in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultPlan {
    /// Of every DynamoDB request (any operation).
    pub dynamodb_throttling: f64,
    /// Of the `TransactWriteItems` and `PutItem` that reached moto and succeeded.
    pub write_then_timeout: f64,
    /// Of SQS `SendMessage` requests.
    pub sqs_send_failure: f64,
    /// Of the entries of each `PutEvents` request.
    pub put_events_entry_failure: f64,
    /// Faults strike first attempts only; the SDK's retries go through (a service that recovers
    /// at once), so a client retrying at least once absorbs every fault. For tests of what an
    /// adapter guarantees on its own; off, retries meet faults as often as first attempts.
    pub spare_retries: bool,
}

impl FaultPlan {
    /// Every fault of the issue: half the `PutEvents` entries failing, a third of the DynamoDB
    /// requests throttled, a third of the `SendMessage` failing, a quarter of the committed
    /// writes timing out.
    pub fn all() -> FaultPlan {
        FaultPlan {
            dynamodb_throttling: 1.0 / 3.0,
            write_then_timeout: 0.25,
            sqs_send_failure: 1.0 / 3.0,
            put_events_entry_failure: 0.5,
            spare_retries: false,
        }
    }
}

/// What was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    ProvisionedThroughputExceeded,
    Throttling,
    SqsSendFailure,
    PutEventsEntryFailed,
    CommittedThenTimedOut,
}

/// The injector. Cheap to clone; clones share their counters and their record of faults.
#[derive(Clone)]
pub struct FaultInjector {
    state: Arc<State>,
}

struct State {
    seed: u64,
    plan: FaultPlan,
    enabled: AtomicBool,
    real: SharedHttpClient,
    /// Requests seen per operation (the n of the decision).
    seen: Mutex<BTreeMap<String, u64>>,
    injected: Mutex<BTreeMap<FaultKind, u64>>,
    /// Every `ClientRequestToken` of a `TransactWriteItems`, one per attempt, in order.
    commit_tokens: Mutex<Vec<Option<String>>>,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("seed", &self.state.seed)
            .field("plan", &self.state.plan)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters only: a panicking test thread cannot leave them half updated.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SplitMix64: a well-mixed u64 of any u64.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// FNV-1a of a name, so an operation's schedule does not depend on the others.
fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl FaultInjector {
    pub fn new(seed: u64, plan: FaultPlan) -> FaultInjector {
        FaultInjector {
            state: Arc::new(State {
                seed,
                plan,
                enabled: AtomicBool::new(true),
                real: aws_smithy_http_client::Builder::new().build_http(),
                seen: Mutex::default(),
                injected: Mutex::default(),
                commit_tokens: Mutex::default(),
            }),
        }
    }

    /// Faults on (the default) or off: off, every request goes through untouched (setup, checks).
    pub fn set_enabled(&self, enabled: bool) {
        self.state.enabled.store(enabled, Ordering::SeqCst);
    }

    /// The SDK HTTP client to give a client config (`http_client(...)`).
    pub fn http_client(&self) -> SharedHttpClient {
        SharedHttpClient::new(self.clone())
    }

    /// The moto SDK configuration ([`crate::moto::sdk_config`]) with this injector in its path and
    /// the SDK's standard retries at `max_attempts` (1: none, every fault reaches the caller),
    /// backing off a few milliseconds so a run takes seconds.
    pub fn sdk_config(&self, max_attempts: u32) -> SdkConfig {
        crate::moto::sdk_config()
            .into_builder()
            .http_client(self.http_client())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(max_attempts)
                    .with_initial_backoff(Duration::from_millis(1))
                    .with_max_backoff(Duration::from_millis(10)),
            )
            .build()
    }

    /// How many faults of each kind were injected so far.
    pub fn injected(&self) -> BTreeMap<FaultKind, u64> {
        lock(&self.state.injected).clone()
    }

    pub fn injected_of(&self, kind: FaultKind) -> u64 {
        self.injected().get(&kind).copied().unwrap_or(0)
    }

    /// The `ClientRequestToken` of every `TransactWriteItems` attempt so far, in order.
    pub fn commit_tokens(&self) -> Vec<Option<String>> {
        lock(&self.state.commit_tokens).clone()
    }

    fn record(&self, kind: FaultKind, count: u64) {
        if count > 0 {
            *lock(&self.state.injected).entry(kind).or_default() += count;
        }
    }

    /// A number in [0, 1) for the next request of `operation`.
    fn draw(&self, operation: &str) -> f64 {
        let n = {
            let mut seen = lock(&self.state.seen);
            let count = seen.entry(operation.to_owned()).or_default();
            *count += 1;
            *count
        };
        self.uniform(name_hash(operation), n)
    }

    fn uniform(&self, stream: u64, n: u64) -> f64 {
        let bits = mix(self.state.seed ^ mix(stream ^ mix(n)));
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }

    fn real_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.state.real.http_connector(settings, components)
    }
}

impl HttpClient for FaultInjector {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            injector: self.clone(),
            real: self.real_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    injector: FaultInjector,
    real: SharedHttpConnector,
}

/// `(service, operation)` of an AWS JSON protocol request, from its `X-Amz-Target`
/// (`DynamoDB_20120810.GetItem`, `AmazonSQS.SendMessage`, `AWSEvents.PutEvents`).
fn target(request: &HttpRequest) -> Option<(String, String)> {
    let target = request.headers().get("x-amz-target")?;
    let (service, operation) = target.split_once('.')?;
    Some((service.to_owned(), operation.to_owned()))
}

/// The attempt number the SDK gives each request (`amz-sdk-request: attempt=2; max=3`).
fn attempt(request: &HttpRequest) -> u32 {
    request
        .headers()
        .get("amz-sdk-request")
        .and_then(|value| {
            value
                .split(';')
                .find_map(|part| part.trim().strip_prefix("attempt="))
        })
        .and_then(|number| number.parse().ok())
        .unwrap_or(1)
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).expect("a valid status"),
        SdkBody::from(body.to_string()),
    );
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.1");
    response
}

/// An AWS JSON protocol error response, as the services send them.
fn error_response(status: u16, error_type: &str, message: &str) -> HttpResponse {
    let mut response = json_response(status, &json!({"__type": error_type, "message": message}));
    let code = error_type.rsplit('#').next().unwrap_or(error_type);
    response
        .headers_mut()
        .insert("x-amzn-errortype", code.to_owned());
    response
}

async fn read_body(response: HttpResponse) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
    let status = response.status();
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .map_err(|error| ConnectorError::io(error.into()))?;
    Ok((status, bytes.into_bytes().to_vec()))
}

fn replace_body(request: &mut HttpRequest, body: Vec<u8>) {
    request
        .headers_mut()
        .insert("content-length", body.len().to_string());
    *request.body_mut() = SdkBody::from(body);
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let injector = self.injector.clone();
        let real = self.real.clone();
        HttpConnectorFuture::new(async move {
            let target = target(&request);
            if let Some((_, "TransactWriteItems")) = target.as_ref().map(|(s, o)| (s, o.as_str())) {
                let token = request
                    .body()
                    .bytes()
                    .and_then(|body| serde_json::from_slice::<Value>(body).ok())
                    .and_then(|body| body["ClientRequestToken"].as_str().map(str::to_owned));
                lock(&injector.state.commit_tokens).push(token);
            }
            let spared = injector.state.plan.spare_retries && attempt(&request) > 1;
            if spared || !injector.state.enabled.load(Ordering::SeqCst) {
                return real.call(request).await;
            }
            let Some((service, operation)) = target else {
                return real.call(request).await;
            };
            let plan = injector.state.plan;
            match (service.as_str(), operation.as_str()) {
                ("DynamoDB_20120810", operation) => {
                    dynamodb(&injector, &real, plan, operation, request).await
                }
                ("AmazonSQS", "SendMessage") => {
                    if injector.draw("SQS.SendMessage") < plan.sqs_send_failure {
                        injector.record(FaultKind::SqsSendFailure, 1);
                        return Ok(error_response(
                            500,
                            "com.amazonaws.sqs#InternalError",
                            "We encountered an internal error. Please try again.",
                        ));
                    }
                    real.call(request).await
                }
                ("AWSEvents", "PutEvents") => {
                    put_events(&injector, &real, plan.put_events_entry_failure, request).await
                }
                _ => real.call(request).await,
            }
        })
    }
}

async fn dynamodb(
    injector: &FaultInjector,
    real: &SharedHttpConnector,
    plan: FaultPlan,
    operation: &str,
    request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let draw = injector.draw("DynamoDB");
    if draw < plan.dynamodb_throttling {
        // Alternate the two codes DynamoDB throttles with.
        return Ok(if draw < plan.dynamodb_throttling / 2.0 {
            injector.record(FaultKind::ProvisionedThroughputExceeded, 1);
            error_response(
                400,
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            )
        } else {
            injector.record(FaultKind::Throttling, 1);
            error_response(
                400,
                "com.amazon.coral.availability#ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            )
        });
    }
    if operation != "TransactWriteItems" && operation != "PutItem" {
        return real.call(request).await;
    }
    let response = real.call(request).await?;
    if response.status().is_success()
        && injector.draw("DynamoDB.write.committed") < plan.write_then_timeout
    {
        // It committed; the answer is lost on the way back.
        drop(read_body(response).await?);
        injector.record(FaultKind::CommittedThenTimedOut, 1);
        return Err(ConnectorError::timeout(
            format!("injected: the response to a committed {operation} timed out").into(),
        ));
    }
    Ok(response)
}

async fn put_events(
    injector: &FaultInjector,
    real: &SharedHttpConnector,
    failure: f64,
    mut request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let Some(mut body) = request
        .body()
        .bytes()
        .and_then(|body| serde_json::from_slice::<Value>(body).ok())
    else {
        return real.call(request).await;
    };
    let entries = body["Entries"].as_array().cloned().unwrap_or_default();
    let failing: Vec<bool> = entries
        .iter()
        .map(|_| injector.draw("EventBridge.PutEvents.entry") < failure)
        .collect();
    let failed = failing.iter().filter(|failing| **failing).count();
    if failed == 0 {
        return real.call(request).await;
    }
    injector.record(FaultKind::PutEventsEntryFailed, failed as u64);
    let kept: Vec<Value> = entries
        .iter()
        .zip(&failing)
        .filter(|(_, failing)| !**failing)
        .map(|(entry, _)| entry.clone())
        .collect();
    // What moto accepted, in the order of the entries it was given.
    let mut accepted: std::vec::IntoIter<Value> = if kept.is_empty() {
        Vec::new().into_iter()
    } else {
        body["Entries"] = Value::Array(kept);
        replace_body(&mut request, body.to_string().into_bytes());
        let (status, bytes) = read_body(real.call(request).await?).await?;
        let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            // moto refused the whole call: pass its answer on.
            return Ok(json_response(status.as_u16(), &answer));
        }
        answer["Entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
    };
    let mut moto_failed = 0;
    let results: Vec<Value> = failing
        .iter()
        .map(|failing| {
            if *failing {
                return json!({
                    "ErrorCode": "InternalFailure",
                    "ErrorMessage": "injected: entry not delivered",
                });
            }
            let result = accepted.next().unwrap_or_else(
                || json!({"ErrorCode": "InternalFailure", "ErrorMessage": "no result from moto"}),
            );
            if result.get("ErrorCode").is_some() {
                moto_failed += 1;
            }
            result
        })
        .collect();
    Ok(json_response(
        200,
        &json!({"FailedEntryCount": failed + moto_failed, "Entries": results}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_is_reproducible_and_near_its_fraction() {
        let a = FaultInjector::new(7, FaultPlan::all());
        let b = FaultInjector::new(7, FaultPlan::all());
        let other = FaultInjector::new(8, FaultPlan::all());
        let draws = |injector: &FaultInjector| -> Vec<bool> {
            (0..3000)
                .map(|_| injector.draw("DynamoDB") < 1.0 / 3.0)
                .collect()
        };
        let first = draws(&a);
        assert_eq!(first, draws(&b));
        assert_ne!(first, draws(&other));
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((900..1100).contains(&hits), "{hits} of 3000");
    }

    #[test]
    fn operations_draw_independently() {
        let a = FaultInjector::new(7, FaultPlan::all());
        let b = FaultInjector::new(7, FaultPlan::all());
        let first: Vec<f64> = (0..50).map(|_| a.draw("DynamoDB")).collect();
        // Other operations in between change nothing for DynamoDB.
        let second: Vec<f64> = (0..50)
            .map(|_| {
                b.draw("SQS.SendMessage");
                b.draw("DynamoDB")
            })
            .collect();
        assert_eq!(first, second);
    }
}

/// What [`ScriptedAws`] answers: the status and JSON body for an operation (`GetRecords`) and
/// its request body.
pub type Script = dyn Fn(&str, &Value) -> (u16, Value) + Send + Sync;

/// An SDK HTTP client that answers AWS JSON protocol requests from a script, for what moto
/// cannot play (a stream with two shards, one of which fails). Nothing leaves the process.
#[derive(Clone)]
pub struct ScriptedAws {
    script: Arc<Script>,
}

impl fmt::Debug for ScriptedAws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedAws").finish_non_exhaustive()
    }
}

impl ScriptedAws {
    pub fn new(script: impl Fn(&str, &Value) -> (u16, Value) + Send + Sync + 'static) -> Self {
        ScriptedAws {
            script: Arc::new(script),
        }
    }

    /// An SDK configuration whose every request this script answers, with no SDK retries.
    pub fn sdk_config(&self) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("testing", "testing", None, None, "s"),
                ),
            )
            .http_client(SharedHttpClient::new(self.clone()))
            .retry_config(RetryConfig::disabled())
            .build()
    }
}

impl HttpClient for ScriptedAws {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for ScriptedAws {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let operation = target(&request).map(|(_, operation)| operation);
        let body = request
            .body()
            .bytes()
            .and_then(|body| serde_json::from_slice::<Value>(body).ok())
            .unwrap_or(Value::Null);
        let (status, answer) = (self.script)(operation.as_deref().unwrap_or(""), &body);
        let response = if status >= 400 {
            error_response(
                status,
                answer["__type"].as_str().unwrap_or("InternalServerError"),
                answer["message"].as_str().unwrap_or("scripted failure"),
            )
        } else {
            json_response(status, &answer)
        };
        HttpConnectorFuture::ready(Ok(response))
    }
}
