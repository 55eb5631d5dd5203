//! Serves the API's axum [`Router`] over HTTP/1.1 on a tokio [`TcpListener`], with graceful
//! shutdown.
//!
//! `axum::serve` would do, but for three things this API needs and it cannot set: hyper's
//! limits on the request head, set well above the API's ([`countersign_api::limits`]: 100
//! fields, 32 KiB) so that the router answers an oversized head with its SPEC-shaped 431 (only
//! heads beyond [`HYPER_MAX_HEADERS`] fields or [`HYPER_MAX_HEAD_BYTES`] bytes get hyper's bare
//! one); half-closed clients, which shut down their sending side once the request is sent and
//! still wait for the answer; and bodies over the limit, answered 413 by the router while the
//! client is still sending: the server reads at most one byte past the limit, so the router's
//! limit layer refuses it, and throws the rest away so that the client gets the 413 instead of
//! a connection reset.
//!
//! Every answer is the router's: a body that ends early reaches it as a body that fails to read.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Router;
use countersign_api::response::{new_request_id, panic_message, ApiError, REQUEST_ID};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Largest body read from a client: the API's limit. Bodies above it are cut at LIMIT+1 bytes, so
/// the router answers 413 without the server holding an unbounded body in memory.
pub const MAX_BODY_BYTES: usize = countersign_api::MAX_BODY_BYTES;

/// How long [`serve`] waits, once shut down, for in-flight requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// After a body has been cut, up to this many further bytes are read and thrown away so that the
/// client, still sending, receives the answer instead of a connection reset.
const DISCARD_MAX_BYTES: usize = 16 * 1024 * 1024;
/// ... and for no longer than this.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// hyper's limit on header fields (its default is 100, the API's own limit, which would make
/// hyper answer a bare 431 before the API could): twice the API's. Every request's parse
/// allocates and fills room for this many (32 bytes each, twice), so it is not set higher: at
/// 1000 that was 64 KiB per request, a few percent of a GET's time.
pub const HYPER_MAX_HEADERS: usize = 2 * countersign_api::limits::MAX_HEADER_FIELDS;
/// hyper's limit on the request line and headers together, in bytes (8 times the API's 32 KiB).
pub const HYPER_MAX_HEAD_BYTES: usize = 256 * 1024;

/// Serves `router` on `listener`, one task per connection, until `shutdown` resolves; then stops
/// accepting (the listener is closed, so new connections are refused), lets in-flight requests
/// finish for up to [`SHUTDOWN_GRACE`] and returns.
///
/// A failing `accept` is logged and retried, so this returns `Ok(())` once shut down; the `Result`
/// leaves room for start-up errors.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, %error, "could not set TCP_NODELAY");
                    }
                    let router = router.clone();
                    let service = service_fn(move |request| handle(router.clone(), request));
                    let connection = http1::Builder::new()
                        // Enables hyper's default 30 s limit on reading a request's headers.
                        .timer(TokioTimer::new())
                        // A client may shut down its sending side once its request is complete
                        // and still wait for the answer; without this hyper drops it on EOF.
                        .half_close(true)
                        .max_headers(HYPER_MAX_HEADERS)
                        .max_header_size(HYPER_MAX_HEAD_BYTES)
                        .serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }

    // Closing the listener makes new connections fail at once instead of queueing unanswered.
    drop(listener);
    tracing::info!("shutting down: no longer accepting connections");

    match tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(
            grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
            "connections still open after the grace period; abandoning them"
        ),
    }
    Ok(())
}

/// One request: read its body (at most one byte past the limit), hand it to the router.
async fn handle(router: Router, request: hyper::Request<Incoming>) -> Result<Response, Infallible> {
    let (parts, incoming) = request.into_parts();
    let body = match read_body(incoming, MAX_BODY_BYTES).await {
        Ok((bytes, rest)) => {
            if let Some(rest) = rest {
                tokio::spawn(discard(rest));
            }
            Body::from(bytes)
        }
        // Cut short (the client stopped sending) or badly framed: the router answers it.
        Err(_) => Body::new(Unreadable),
    };
    let request = http::Request::from_parts(parts, body);
    // A GET only reads: dropped half-way when its client goes, it leaves nothing half-done, so
    // it runs here instead of paying for a task of its own (5-7% more GETs a second). Any other
    // request runs in its own task, so that a client that disconnects does not cancel it
    // half-way through its work.
    let answer = if request.method() == http::Method::GET {
        AssertUnwindSafe(router.oneshot(request))
            .catch_unwind()
            .await
            .map_err(|panic| described(panic.as_ref()))
    } else {
        tokio::spawn(router.oneshot(request))
            .await
            .map_err(|error| match error.try_into_panic() {
                Ok(panic) => described(panic.as_ref()),
                Err(error) => error.to_string(),
            })
    };
    match answer {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(never)) => match never {},
        Err(error) => {
            // The API's router catches its handlers' panics; this is anything else that took the
            // request down. The answer is still SPEC's, with a request id of its own.
            let request_id = new_request_id();
            tracing::error!(%request_id, %error, "request failed");
            let mut response = ApiError::internal().render(&request_id).into_response();
            if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID, value);
            }
            Ok(response)
        }
    }
}

/// A panic, as the log says it.
fn described(panic: &(dyn std::any::Any + Send)) -> String {
    panic_message(panic).unwrap_or_else(|| "a panic".to_owned())
}

/// A body that could not be read from the client: it fails when read, as the client's did.
struct Unreadable;

impl hyper::body::Body for Unreadable {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the request body could not be read to its end",
        ))))
    }
}

/// Reads at most `limit + 1` bytes of `body`. Returns them and, when reading stopped before the
/// end of the body, what is left of it.
async fn read_body(
    mut body: Incoming,
    limit: usize,
) -> Result<(Vec<u8>, Option<Incoming>), hyper::Error> {
    let cap = limit.saturating_add(1);
    let expected = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut bytes = Vec::with_capacity(expected.min(cap));
    while bytes.len() < cap {
        match body.frame().await {
            None => return Ok((bytes, None)),
            Some(Err(error)) => return Err(error),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = cap - bytes.len();
                    bytes.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
    }
    let rest = if body.is_end_stream() {
        None
    } else {
        Some(body)
    };
    Ok((bytes, rest))
}

/// Reads and throws away the rest of a cut body, within [`DISCARD_MAX_BYTES`] and
/// [`DISCARD_TIMEOUT`]; beyond either, dropping it makes hyper close the connection.
async fn discard(mut rest: Incoming) {
    let drained = tokio::time::timeout(DISCARD_TIMEOUT, async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = rest.frame().await {
            if let Ok(data) = frame.into_data() {
                seen = seen.saturating_add(data.len());
                if seen > DISCARD_MAX_BYTES {
                    return false;
                }
            }
        }
        true
    })
    .await;
    if !matches!(drained, Ok(true)) {
        tracing::debug!("gave up discarding an oversized request body; the connection will close");
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::body::Bytes;
    use axum::extract::Request;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{any, get};
    use axum::Router;
    use serde_json::{json, Value};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    use super::{serve, MAX_BODY_BYTES};

    struct Server {
        addr: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: JoinHandle<std::io::Result<()>>,
    }

    impl Server {
        fn url(&self, path_and_query: &str) -> String {
            format!("http://{}{path_and_query}", self.addr)
        }

        /// Resolves the shutdown future and waits (bounded) for `serve` to return.
        async fn stop(mut self) -> std::io::Result<()> {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            tokio::time::timeout(Duration::from_secs(15), self.task)
                .await
                .expect("serve returned within the grace period")
                .expect("serve task did not panic")
        }
    }

    async fn start(router: Router) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn client() -> reqwest::Client {
        countersign_test_kit::http_client_builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    /// Answers with everything it was given, as JSON, with status 201 and an `x-echo` header.
    async fn echo(request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("a whole body");
        let headers: serde_json::Map<String, Value> = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    json!(String::from_utf8_lossy(value.as_bytes())),
                )
            })
            .collect();
        let echoed = json!({
            "method": parts.method.as_str(),
            "path_and_query": parts.uri.path_and_query().map(|pq| pq.as_str()),
            "headers": headers,
            "body_len": body.len(),
            "body": String::from_utf8_lossy(&body),
        });
        Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("x-echo", "yes")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(axum::body::Body::from(echoed.to_string()))
            .expect("response")
    }

    fn echo_router() -> Router {
        Router::new().fallback(echo)
    }

    #[tokio::test]
    async fn echo_round_trip_keeps_method_path_query_headers_and_body() {
        let server = start(echo_router()).await;
        let target =
            "/v1/agreements/ag%201?name=J%C3%BCrgen%20M%C3%BCller&tag=a&tag=b&plus=1+2&amp=x%26y";
        let response = client()
            .post(server.url(target))
            .header("x-custom", "custom value")
            .header("authorization", "Bearer dev-key")
            .body(r#"{"hello":"wörld"}"#)
            .send()
            .await
            .expect("request");

        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-echo"], "yes");
        assert_eq!(response.headers()["content-type"], "application/json");
        let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);

        let echoed: Value = response.json().await.expect("json body");
        assert_eq!(echoed["method"], "POST");
        // The request target reaches the router as the client sent it, undecoded.
        assert_eq!(echoed["path_and_query"], target);
        assert_eq!(echoed["headers"]["x-custom"], "custom value");
        assert_eq!(echoed["headers"]["authorization"], "Bearer dev-key");
        assert_eq!(echoed["body"], r#"{"hello":"wörld"}"#);

        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn binary_bodies_travel_intact_both_ways() {
        let server = start(Router::new().fallback(|body: Bytes| async move { body })).await;
        let sent: Vec<u8> = vec![0x00, 0xff, 0xfe, 0x80, b'a', 0xc3];
        let response = client()
            .put(server.url("/blob"))
            .body(sent.clone())
            .send()
            .await
            .expect("request");

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], sent.len().to_string());
        assert_eq!(
            response.bytes().await.expect("body").as_ref(),
            sent.as_slice()
        );

        server.stop().await.expect("serve returns Ok");
    }

    /// Answers 413 when the body is over the limit, else 200; records every body length.
    fn size_checker(seen: Arc<Mutex<Vec<usize>>>) -> Router {
        Router::new().fallback(any(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(body.len());
                let status = if body.len() > MAX_BODY_BYTES {
                    413
                } else {
                    200
                };
                (
                    http::StatusCode::from_u16(status).expect("a status"),
                    body.len().to_string(),
                )
            }
        }))
    }

    #[tokio::test]
    async fn oversized_body_reaches_router_cut_at_limit_plus_one_and_413_reaches_client() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let server = start(size_checker(seen.clone())).await;
        let client = client();

        let response = client
            .post(server.url("/v1/agreements"))
            .body(vec![b'x'; 2 * 1024 * 1024])
            .send()
            .await
            .expect("the client gets an answer, not a reset");
        assert_eq!(response.status(), 413);
        assert_eq!(
            response.text().await.expect("body"),
            (MAX_BODY_BYTES + 1).to_string()
        );

        // A body of exactly the limit arrives whole, on the same client (connection reuse).
        let response = client
            .post(server.url("/v1/agreements"))
            .body(vec![b'y'; MAX_BODY_BYTES])
            .send()
            .await
            .expect("request at the limit");
        assert_eq!(response.status(), 200);

        assert_eq!(
            *seen.lock().expect("lock"),
            vec![MAX_BODY_BYTES + 1, MAX_BODY_BYTES]
        );
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn empty_bodies_reach_the_router_empty() {
        let server = start(echo_router()).await;
        let client = client();

        for request in [
            client.get(server.url("/v1/agreements")),
            client.post(server.url("/v1/agreements")).body(""),
            client.delete(server.url("/v1/agreements/x")),
        ] {
            let echoed: Value = request
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json body");
            assert_eq!(echoed["body_len"], 0, "{echoed}");
        }
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn a_request_that_dies_is_a_spec_500_and_the_server_keeps_serving() {
        // A bare router, without the API's panic layer: the server's last resort answers, both
        // for a GET (run in place) and for any other method (run in a task of its own).
        async fn boom() -> &'static str {
            if true {
                panic!("handler bug");
            }
            "unreached"
        }
        let router = Router::new()
            .route("/boom", get(boom).post(boom))
            .route("/ok", get(|| async { "fine" }));
        let server = start(router).await;
        let client = client();

        for method in [reqwest::Method::GET, reqwest::Method::POST] {
            let response = client
                .request(method.clone(), server.url("/boom"))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 500, "{method}");
            let request_id = response
                .headers()
                .get("x-request-id")
                .expect("X-Request-Id")
                .to_str()
                .expect("visible ASCII")
                .to_owned();
            let body: Value = response.json().await.expect("json body");
            assert_eq!(body["status"], "error");
            assert_eq!(body["error"]["type"], "INTERNAL");
            assert_eq!(body["error"]["code"], 500);
            assert_eq!(body["error"]["request_id"], request_id.as_str());
            assert!(request_id.starts_with("req_"), "{request_id}");
        }

        let response = client.get(server.url("/ok")).send().await.expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "fine");
        server.stop().await.expect("serve returns Ok");
    }

    /// Writes `request`, half-closes, reads until the server closes.
    async fn half_closed_exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        stream.shutdown().await.expect("half-close");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .expect("the server answers and closes")
            .expect("read");
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// The JSON body of a raw answer.
    fn raw_json(answer: &str) -> Value {
        let (_, body) = answer.split_once("\r\n\r\n").expect("a complete head");
        serde_json::from_str(body).expect("a JSON body")
    }

    #[tokio::test]
    async fn a_body_cut_short_reaches_the_router_as_one_that_fails_to_read() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        // The handler runs only once its body has been read whole.
        let server = start(Router::new().fallback(move |_body: Bytes| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready("reached".into_response())
        }))
        .await;

        // Promise 100 bytes, send 10, then stop sending and wait for the answer.
        let answer = half_closed_exchange(
            server.addr,
            b"POST /v1/agreements HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n0123456789",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "the handler never saw the cut request"
        );

        let response = client()
            .get(server.url("/next"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.text().await.expect("body"), "reached");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn a_client_that_half_closes_after_its_request_gets_the_whole_answer_every_time() {
        // A handler that takes a moment, like one that writes to a store: the client's EOF
        // reaches the server while the answer is still being made. (The pause only makes the
        // defect show; an answer is expected however long the handler takes.)
        let server = start(Router::new().fallback(|request: Request| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            echo(request).await
        }))
        .await;
        for attempt in 0..20 {
            let answer = half_closed_exchange(
                server.addr,
                format!(
                    "POST /echo/{attempt} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 5\r\n\r\nhello"
                )
                .as_bytes(),
            )
            .await;
            assert!(
                answer.starts_with("HTTP/1.1 201 "),
                "attempt {attempt}: {answer}"
            );
            let echoed = raw_json(&answer);
            assert_eq!(echoed["path_and_query"], format!("/echo/{attempt}"));
            assert_eq!(echoed["body"], "hello");
        }
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn heads_past_hyper_defaults_reach_the_router() {
        let server = start(
            Router::new()
                .fallback(|request: Request| async move { request.headers().len().to_string() }),
        )
        .await;
        let mut request = client().get(server.url("/fields"));
        // 150 fields: over hyper's default of 100, under HYPER_MAX_HEADERS.
        for n in 0..150 {
            request = request.header(format!("x-filler-{n}"), "v");
        }
        let text = request
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert!(text.parse::<usize>().expect("a count") > 150, "{text}");
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn graceful_shutdown_finishes_in_flight_requests_returns_and_refuses_new_connections() {
        let (entered_tx, entered_rx) = oneshot::channel::<()>();
        let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
        let finished = Arc::new(AtomicUsize::new(0));
        let finished_by_handler = finished.clone();
        let server = start(Router::new().fallback(move |request: Request| {
            let entered_tx = entered_tx.clone();
            let finished = finished_by_handler.clone();
            async move {
                if request.uri().path() == "/slow" {
                    if let Some(tx) = entered_tx.lock().expect("lock").take() {
                        let _ = tx.send(());
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                "done"
            }
        }))
        .await;
        let addr = server.addr;

        let client = client();
        let up = client
            .get(server.url("/up"))
            .send()
            .await
            .expect("server is up");
        assert_eq!(up.status(), 200);

        let slow_url = server.url("/slow");
        let slow = tokio::spawn(async move { client.get(slow_url).send().await });
        tokio::time::timeout(Duration::from_secs(5), entered_rx)
            .await
            .expect("the slow handler started")
            .expect("sender kept");

        server.stop().await.expect("serve returns Ok");
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "serve returned only after the in-flight handler finished"
        );
        let slow = slow
            .await
            .expect("task")
            .expect("the in-flight request is answered");
        assert_eq!(slow.status(), 200);
        assert_eq!(slow.text().await.expect("body"), "done");

        assert!(
            TcpStream::connect(addr).await.is_err(),
            "new connections are refused once serve has returned"
        );
    }
}
