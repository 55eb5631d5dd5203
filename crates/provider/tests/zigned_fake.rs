//! What Prism cannot play, against a small stateful fake of Zigned on 127.0.0.1: token expiry
//! and one refresh for many concurrent calls, 401 → refresh and retry once, 429 with
//! Retry-After, 5xx, a timeout, permanent 4xx, a dispatch that died halfway resumed from its
//! progress, and the signed document download.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign_domain::CancellationReason;
use countersign_provider::zigned::{
    RetryPolicy, SendProgress, SendStep, ZignedClient, ZignedConfig, ZignedError,
};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use secrecy::SecretString;

const CLIENT_SECRET: &str = "fake-client-secret-value";
const SIGNED_PDF: &[u8] = b"%PDF-1.7 signed by everyone";

#[derive(Clone)]
enum Fault {
    /// Answer with this status (and `Retry-After`, and Zigned's error body).
    Status(u16, Option<&'static str>),
    /// Answer only after this long (longer than the client's timeout).
    Delay(Duration),
}

/// One request the fake received.
#[derive(Debug, Clone)]
struct Received {
    call: String,
    authorization: Option<String>,
}

#[derive(Default)]
struct State {
    address: Option<SocketAddr>,
    /// Form bodies of the token requests.
    token_requests: Vec<String>,
    expires_in: u64,
    /// Tokens the API answers 401 to.
    revoked: Vec<String>,
    refuse_every_token: bool,
    received: Vec<Received>,
    /// `(call prefix, fault, how many more times)`: the next matching requests get the fault.
    faults: Vec<(String, Fault, u32)>,
    ids: u32,
}

type Shared = Arc<Mutex<State>>;

struct Fake {
    state: Shared,
    address: SocketAddr,
}

impl Fake {
    async fn start() -> Fake {
        let state: Shared = Arc::new(Mutex::new(State {
            expires_in: 3600,
            ..State::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        state.lock().unwrap().address = Some(address);
        let serving = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| handle(state.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Fake { state, address }
    }

    fn config(&self) -> ZignedConfig {
        let mut config = ZignedConfig::new("fake-client", SecretString::from(CLIENT_SECRET))
            .with_urls(
                format!("http://{}/rest/v3", self.address),
                format!("http://{}/oauth/token", self.address),
            );
        config.request_timeout = Duration::from_millis(500);
        config.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retry_after: Duration::from_secs(2),
        };
        config
    }

    fn client(&self) -> ZignedClient {
        ZignedClient::new(self.config()).unwrap()
    }

    fn fault(&self, call: &str, fault: Fault, times: u32) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((call.to_owned(), fault, times));
    }

    /// API calls (not token requests), `METHOD /path` without the base path.
    fn calls(&self) -> Vec<String> {
        self.received()
            .into_iter()
            .map(|received| received.call)
            .filter(|call| call != "POST /oauth/token")
            .collect()
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    fn token_requests(&self) -> Vec<String> {
        self.state.lock().unwrap().token_requests.clone()
    }
}

fn answer(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn zigned_error(status: u16, message: &str) -> serde_json::Value {
    serde_json::json!({"status": "error", "error": {"code": status, "message": message,
        "request_id": "6f1c2b9e-0000-4000-8000-000000000000"}})
}

async fn handle(
    state: Shared,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let call = format!("{method} {}", path.trim_start_matches("/rest/v3"));

    let fault = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            call: call.clone(),
            authorization: authorization.clone(),
        });
        let position = state
            .faults
            .iter()
            .position(|(prefix, _, times)| *times > 0 && call.starts_with(prefix.as_str()));
        position.map(|position| {
            let entry = &mut state.faults[position];
            entry.2 -= 1;
            entry.1.clone()
        })
    };
    match fault {
        Some(Fault::Delay(wait)) => tokio::time::sleep(wait).await,
        Some(Fault::Status(status, retry_after)) => {
            let mut response = answer(status, zigned_error(status, "the fake says no"));
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.parse().unwrap());
            }
            return Ok(response);
        }
        None => {}
    }

    if call == "POST /oauth/token" {
        // Long enough that concurrent callers arrive while the first refresh is under way.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut state = state.lock().unwrap();
        state
            .token_requests
            .push(String::from_utf8_lossy(&body).into_owned());
        let token = format!("token-{}", state.token_requests.len());
        return Ok(answer(
            200,
            serde_json::json!({"access_token": token, "token_type": "Bearer",
                "expires_in": state.expires_in}),
        ));
    }
    if call == "GET /download/signed.pdf" {
        return Ok(Response::new(Full::new(Bytes::from_static(SIGNED_PDF))));
    }

    let mut state = state.lock().unwrap();
    let token = authorization
        .as_deref()
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if token.is_empty() || state.refuse_every_token || state.revoked.contains(&token) {
        return Ok(answer(401, zigned_error(401, "Unauthorized")));
    }
    if method == "GET" && path.starts_with("/rest/v3/agreements/") {
        let url = format!("http://{}/download/signed.pdf", state.address.unwrap());
        return Ok(answer(
            200,
            serde_json::json!({"data": {"id": "agr", "documents": {"signed_document":
                {"data": {"id": "signed", "url": url}}}}}),
        ));
    }
    state.ids += 1;
    let kind = path.rsplit('/').next().unwrap_or_default();
    Ok(answer(
        200,
        serde_json::json!({"data": {"id": format!("{kind}-{}", state.ids)}}),
    ))
}

const REFERENCE: &str = "zigned-agreement-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls_share_one_token_request() {
    let fake = Fake::start().await;
    let client = Arc::new(fake.client());
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let client = client.clone();
        calls.spawn(async move {
            client
                .cancel(REFERENCE, &CancellationReason::InvalidDocument)
                .await
        });
    }
    while let Some(result) = calls.join_next().await {
        result.unwrap().unwrap();
    }
    assert_eq!(fake.token_requests().len(), 1);
    let api: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|received| received.call != "POST /oauth/token")
        .collect();
    assert_eq!(api.len(), 20);
    assert!(api
        .iter()
        .all(|received| received.authorization.as_deref() == Some("Bearer token-1")));
    // Client credentials as a form, the secret only there.
    let form = &fake.token_requests()[0];
    assert!(form.contains("grant_type=client_credentials"), "{form}");
    assert!(form.contains("client_id=fake-client"), "{form}");
    assert!(
        form.contains(&format!("client_secret={CLIENT_SECRET}")),
        "{form}"
    );
}

#[tokio::test]
async fn a_token_is_reused_until_it_expires_then_refreshed() {
    let fake = Fake::start().await;
    let client = fake.client();
    for _ in 0..3 {
        client
            .cancel(REFERENCE, &CancellationReason::InvalidEmail)
            .await
            .unwrap();
    }
    assert_eq!(fake.token_requests().len(), 1, "a fresh token is reused");

    // A token whose life is over on arrival is used once, then replaced.
    fake.state.lock().unwrap().expires_in = 0;
    let expiring = fake.client();
    for _ in 0..3 {
        expiring
            .cancel(REFERENCE, &CancellationReason::InvalidEmail)
            .await
            .unwrap();
    }
    assert_eq!(fake.token_requests().len(), 4);
    let used: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|received| received.call != "POST /oauth/token")
        .filter_map(|received| received.authorization)
        .collect();
    assert_eq!(
        used[3..],
        ["Bearer token-2", "Bearer token-3", "Bearer token-4"]
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries_once() {
    let fake = Fake::start().await;
    fake.state
        .lock()
        .unwrap()
        .revoked
        .push("token-1".to_owned());
    let client = fake.client();
    client
        .cancel(REFERENCE, &CancellationReason::InvalidParticipant)
        .await
        .unwrap();
    assert_eq!(fake.token_requests().len(), 2);
    let authorizations: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|received| received.call != "POST /oauth/token")
        .map(|received| received.authorization.unwrap_or_default())
        .collect();
    assert_eq!(authorizations, ["Bearer token-1", "Bearer token-2"]);

    // Refused with every token: one refresh, one retry, then a permanent error.
    fake.state.lock().unwrap().refuse_every_token = true;
    let before = fake.calls().len();
    let error = client
        .cancel(REFERENCE, &CancellationReason::InvalidParticipant)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ZignedError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(fake.calls().len() - before, 2);
    assert_eq!(fake.token_requests().len(), 3);
}

#[tokio::test]
async fn a_429_waits_as_retry_after_says_then_succeeds() {
    let fake = Fake::start().await;
    fake.fault("POST /agreements/", Fault::Status(429, Some("1")), 1);
    fake.client()
        .cancel(REFERENCE, &CancellationReason::InvalidDocument)
        .await
        .unwrap();
    assert_eq!(
        fake.calls(),
        [
            "POST /agreements/zigned-agreement-1/lifecycle",
            "POST /agreements/zigned-agreement-1/lifecycle"
        ]
    );
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let fake = Fake::start().await;
    fake.fault("POST /agreements/", Fault::Status(503, None), 2);
    let client = fake.client();
    client
        .cancel(REFERENCE, &CancellationReason::InvalidDocument)
        .await
        .unwrap();
    assert_eq!(fake.calls().len(), 3);

    fake.fault("POST /agreements/", Fault::Status(500, None), u32::MAX);
    let error = client
        .cancel(REFERENCE, &CancellationReason::InvalidDocument)
        .await
        .unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(
        matches!(&error, ZignedError::Unavailable { attempts: 4, last, .. } if last == "HTTP 500"),
        "{error:?}"
    );
    assert_eq!(fake.calls().len(), 3 + 4);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let fake = Fake::start().await;
    fake.fault("POST /agreements/", Fault::Delay(Duration::from_secs(5)), 1);
    fake.client()
        .cancel(REFERENCE, &CancellationReason::InvalidDocument)
        .await
        .unwrap();
    assert_eq!(fake.calls().len(), 2);
}

#[tokio::test]
async fn a_4xx_is_permanent_and_carries_zigneds_message_not_the_credentials() {
    let fake = Fake::start().await;
    fake.fault("POST /agreements/", Fault::Status(422, None), u32::MAX);
    let error = fake
        .client()
        .cancel(REFERENCE, &CancellationReason::InvalidDocument)
        .await
        .unwrap_err();
    assert_eq!(fake.calls().len(), 1, "not retried");
    assert!(!error.is_transient());
    let ZignedError::Rejected {
        status,
        ref message,
        ref request_id,
        ..
    } = error
    else {
        panic!("expected a rejection: {error:?}");
    };
    assert_eq!((status, message.as_str()), (422, "the fake says no"));
    assert!(request_id.is_some());
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains(CLIENT_SECRET) && !shown.contains("token-1"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_refused_token_request_says_why_without_the_secret() {
    let fake = Fake::start().await;
    fake.fault("POST /oauth/token", Fault::Status(401, None), u32::MAX);
    let error = fake
        .client()
        .cancel(REFERENCE, &CancellationReason::InvalidDocument)
        .await
        .unwrap_err();
    assert!(matches!(error, ZignedError::Token(_)), "{error:?}");
    assert!(!format!("{error} {error:?}").contains(CLIENT_SECRET));
    assert!(fake.calls().is_empty(), "no API call without a token");
}

#[tokio::test]
async fn a_dispatch_that_died_halfway_resumes_without_a_second_agreement() {
    let fake = Fake::start().await;
    let agreement = common::agreement();
    let documents = common::documents();

    // The first dispatch records each step and dies once the first participant is created.
    let first = fake.client();
    let mut persisted = SendProgress::default();
    while persisted.participants.is_empty() {
        match first
            .advance_send(&agreement, &documents, &persisted)
            .await
            .unwrap()
        {
            SendStep::Progressed(next) => persisted = next,
            SendStep::Done(_) => panic!("finished before dying"),
        }
    }
    assert!(persisted.agreement_reference.is_some() && !persisted.sent);

    // A redelivered dispatch, in a new process: a new client, the persisted progress.
    let second = fake.client();
    let mut persisted_again = Vec::new();
    let done = second
        .run_send(&agreement, &documents, persisted, |next| {
            persisted_again.push(next);
            async { Ok::<(), Infallible>(()) }
        })
        .await
        .unwrap();
    assert!(done.sent);
    assert_eq!(persisted_again.last(), Some(&done));

    let calls = fake.calls();
    let count = |call: &str| calls.iter().filter(|made| made.as_str() == call).count();
    let reference = done.agreement_reference.clone().unwrap();
    assert_eq!(count("POST /agreements"), 1, "{calls:?}");
    assert_eq!(count("POST /files"), 2);
    assert_eq!(
        count(&format!("POST /agreements/{reference}/participants")),
        3
    );
    assert_eq!(
        count(&format!("POST /agreements/{reference}/signing_groups")),
        2
    );
    assert_eq!(count(&format!("POST /agreements/{reference}/lifecycle")), 1);

    // Delivered once more after it was sent: nothing is called.
    let before = fake.calls().len();
    let again = second
        .run_send(&agreement, &documents, done.clone(), |_| async {
            Ok::<(), Infallible>(())
        })
        .await
        .unwrap();
    assert_eq!(again, done);
    assert_eq!(fake.calls().len(), before);
}

#[tokio::test]
async fn a_step_that_keeps_failing_returns_the_progress_recorded_so_far() {
    let fake = Fake::start().await;
    let agreement = common::agreement();
    fake.fault("POST /agreements/", Fault::Status(502, None), u32::MAX);
    let mut persisted = Vec::new();
    let failure = fake
        .client()
        .run_send(
            &agreement,
            &common::documents(),
            SendProgress::default(),
            |next| {
                persisted.push(next);
                async { Ok::<(), Infallible>(()) }
            },
        )
        .await
        .unwrap_err();
    let (error, progress) = failure.unwrap();
    assert!(error.is_transient(), "{error:?}");
    // Uploaded and created; the main document call failed.
    assert_eq!(progress.files.len(), 2);
    assert!(progress.agreement_reference.is_some());
    assert!(progress.main_document.is_none());
    assert_eq!(persisted.last(), Some(&progress));
}

#[tokio::test]
async fn the_signed_document_is_downloaded_without_the_bearer_token() {
    let fake = Fake::start().await;
    let client = fake.client();
    let url = client
        .signed_document_url(REFERENCE)
        .await
        .unwrap()
        .expect("a signed document");
    assert_eq!(url, format!("http://{}/download/signed.pdf", fake.address));
    let bytes = client.download_signed_document(&url).await.unwrap();
    assert_eq!(bytes, SIGNED_PDF);
    let download = fake
        .received()
        .into_iter()
        .find(|received| received.call == "GET /download/signed.pdf")
        .unwrap();
    assert_eq!(download.authorization, None);

    let mut small = fake.config();
    small.max_download_bytes = 8;
    let error = ZignedClient::new(small)
        .unwrap()
        .download_signed_document(&url)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than 8 bytes"), "{error}");
}

#[test]
fn the_progress_of_a_send_round_trips_through_json() {
    let mut progress = SendProgress {
        agreement_reference: Some("agr".to_owned()),
        ..SendProgress::default()
    };
    progress.participants = BTreeMap::from([("ada".to_owned(), "p1".to_owned())]);
    let json = serde_json::to_string(&progress).unwrap();
    assert_eq!(
        serde_json::from_str::<SendProgress>(&json).unwrap(),
        progress
    );
}
