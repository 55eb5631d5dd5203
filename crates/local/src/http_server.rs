//! Serves a `lambda_http`-style handler over real HTTP/1.1 on a tokio [`TcpListener`], so the
//! handlers the Lambda binaries run also answer on 127.0.0.1 in `countersign-local`.
//!
//! Each hyper request becomes a [`lambda_http::Request`] shaped like the one API Gateway (HTTP
//! API) would deliver: method, URI, headers, the body as [`Body::Empty`], [`Body::Text`] (valid
//! UTF-8) or [`Body::Binary`], the query string parsed into the query-string-parameters extension
//! (percent-decoded, repeated keys kept, exactly as `lambda_http` parses `rawQueryString`) and
//! the raw path extension, and a request context carrying a new request id as API Gateway's
//! `requestContext.requestId` does. The handler's [`lambda_http::Response`] goes back with its
//! status, headers and body bytes.
//!
//! hyper's own limits on the request head are set well above the API's
//! ([`countersign_api::limits`]: 100 fields, 32 KiB), so that the API answers an oversized head
//! with its SPEC-shaped 431; only heads beyond [`HYPER_MAX_HEADERS`] fields or
//! [`HYPER_MAX_HEAD_BYTES`] bytes, a request target over 64 KiB, or bytes that are not HTTP/1.1
//! get hyper's bare 431, 414 or 400. The answers this server makes itself (a body that cannot be
//! read, a handler that panicked) are in the SPEC's error shape with `X-Request-Id` too.

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, Instant};

use countersign_api::response::{ApiError, REQUEST_ID};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Uri;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::aws_lambda_events::query_map::QueryMap;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use tokio::net::TcpListener;

/// Largest body read from a client. Bodies above it are cut at LIMIT+1 bytes so the handler can
/// still answer 413 without the server holding an unbounded body in memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How long [`serve`] waits, once shut down, for in-flight requests to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// After a cut body has been answered, up to this many further bytes are read and thrown away so
/// that the client, still sending, receives the answer instead of a connection reset.
const DISCARD_MAX_BYTES: usize = 16 * 1024 * 1024;
/// ... and for no longer than this.
const DISCARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// hyper's limit on header fields (its default is 100, the API's own limit, which would make
/// hyper answer a bare 431 before the API could). Each parse reserves room for this many.
pub const HYPER_MAX_HEADERS: usize = 1000;
/// hyper's limit on the request line and headers together, in bytes (8 times the API's 32 KiB).
pub const HYPER_MAX_HEAD_BYTES: usize = 256 * 1024;

/// Serves `handler` on `listener`, one task per connection, until `shutdown` resolves; then stops
/// accepting (the listener is closed, so new connections are refused), lets in-flight requests
/// finish for up to [`SHUTDOWN_GRACE`] and returns.
///
/// A failing `accept` is logged and retried, so this returns `Ok(())` once shut down; the `Result`
/// leaves room for start-up errors.
pub async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    H: Fn(lambda_http::Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = lambda_http::Response<Body>> + Send + 'static,
{
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
                    let handler = handler.clone();
                    let service = service_fn(move |request| handle(handler.clone(), request));
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

/// One request: read it, run the handler, convert the answer. Every outcome is an answer; the
/// connection closes after a body that could not be read, as hyper does after an unread body.
async fn handle<H, Fut>(
    handler: H,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible>
where
    H: Fn(lambda_http::Request) -> Fut,
    Fut: Future<Output = lambda_http::Response<Body>> + Send + 'static,
{
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // As API Gateway does: a request id of the gateway's, used unless the caller sent its own.
    let gateway_request_id = format!("req_{}", countersign_service::ids::new_id());

    let (parts, incoming) = request.into_parts();
    let (bytes, rest, unreadable) = match read_body(incoming, MAX_BODY_BYTES).await {
        Ok((bytes, rest)) => (bytes, rest, None),
        Err(error) => (Vec::new(), None, Some(error)),
    };
    let request = into_lambda_request(parts, bytes, &gateway_request_id);
    let request_id = countersign_api::request_id(&request);

    let response = if let Some(error) = unreadable {
        // Cut short (the client stopped sending) or badly framed: nothing reaches the handler.
        tracing::info!(%request_id, %method, %path, %error, "request body unreadable");
        own_answer(
            ApiError::invalid_request("the request body could not be read to its end"),
            &request_id,
        )
    } else {
        // The handler runs in its own task: a panic becomes a 500 instead of taking the
        // connection down, and a client that disconnects does not cancel a handler half-way
        // through its work.
        match tokio::spawn(handler(request)).await {
            Ok(response) => into_hyper_response(response),
            Err(error) => {
                tracing::error!(%request_id, %method, %path, %error, "handler failed");
                own_answer(ApiError::internal(), &request_id)
            }
        }
    };

    if let Some(rest) = rest {
        tokio::spawn(discard(rest));
    }

    tracing::info!(
        %request_id,
        %method,
        %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(response)
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

fn into_lambda_request(
    mut parts: hyper::http::request::Parts,
    bytes: Vec<u8>,
    gateway_request_id: &str,
) -> lambda_http::Request {
    let raw_path = parts.uri.path().to_owned();
    let query: QueryMap = match parts.uri.query() {
        Some(query) => query
            .parse()
            .unwrap_or_else(|never: Infallible| match never {}),
        None => QueryMap::default(),
    };

    // API Gateway hands Lambda an absolute URI built from the Host header; do the same.
    if parts.uri.authority().is_none() {
        if let Some(uri) = absolute_uri(&parts.uri, parts.headers.get(HOST)) {
            parts.uri = uri;
        }
    }

    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes) {
            Ok(text) => Body::Text(text),
            Err(not_text) => Body::Binary(not_text.into_bytes()),
        }
    };

    let mut context = ApiGatewayV2httpRequestContext::default();
    context.request_id = Some(gateway_request_id.to_owned());
    lambda_http::Request::from_parts(parts, body)
        .with_query_string_parameters(query)
        .with_raw_http_path(raw_path)
        .with_request_context(RequestContext::ApiGatewayV2(context))
}

fn absolute_uri(uri: &Uri, host: Option<&HeaderValue>) -> Option<Uri> {
    let host = host?.to_str().ok()?;
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!("http://{host}{path_and_query}").parse().ok()
}

fn into_hyper_response(response: lambda_http::Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (mut parts, body) = response.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        other => Bytes::copy_from_slice(other.as_ref()),
    };
    // Framing is hyper's job: it sets Content-Length from the body it is given.
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.remove(TRANSFER_ENCODING);
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// An answer of this server's own, in the SPEC's error shape with `X-Request-Id`.
fn own_answer(error: ApiError, request_id: &str) -> hyper::Response<Full<Bytes>> {
    let mut response = into_hyper_response(error.into_response(request_id));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use lambda_http::request::RequestContext;
    use lambda_http::{Body, Request, RequestExt, Response};
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

    async fn start<H, Fut>(handler: H) -> Server
    where
        H: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, handler, async move {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client")
    }

    fn body_kind(body: &Body) -> &'static str {
        match body {
            Body::Empty => "empty",
            Body::Text(_) => "text",
            Body::Binary(_) => "binary",
            _ => "other",
        }
    }

    /// Answers with everything it was given, as JSON, with status 201 and an `x-echo` header.
    async fn echo(request: Request) -> Response<Body> {
        let params = request.query_string_parameters();
        let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in params.iter() {
            query
                .entry(key.to_owned())
                .or_default()
                .push(value.to_owned());
        }
        let headers: BTreeMap<String, String> = request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = json!({
            "method": request.method().as_str(),
            "uri": request.uri().to_string(),
            "path": request.uri().path(),
            "raw_path": request.raw_http_path(),
            "query": query,
            "headers": headers,
            "body_kind": body_kind(request.body()),
            "body": String::from_utf8_lossy(request.body().as_ref()),
        });
        Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("x-echo", "yes")
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .body(Body::Text(body.to_string()))
            .expect("response")
    }

    #[tokio::test]
    async fn echo_round_trip_keeps_method_path_query_headers_and_body() {
        let server = start(echo).await;
        let response = client()
            .post(server.url(
                "/v1/agreements/ag%201?name=J%C3%BCrgen%20M%C3%BCller&tag=a&tag=b&plus=1+2&amp=x%26y",
            ))
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
        assert_eq!(echoed["path"], "/v1/agreements/ag%201");
        assert_eq!(echoed["raw_path"], "/v1/agreements/ag%201");
        assert_eq!(
            echoed["uri"],
            format!(
                "http://{}/v1/agreements/ag%201?name=J%C3%BCrgen%20M%C3%BCller&tag=a&tag=b&plus=1+2&amp=x%26y",
                server.addr
            )
        );
        assert_eq!(
            echoed["query"],
            json!({
                "name": ["Jürgen Müller"],
                "tag": ["a", "b"],
                "plus": ["1 2"],
                "amp": ["x&y"],
            })
        );
        assert_eq!(echoed["headers"]["x-custom"], "custom value");
        assert_eq!(echoed["headers"]["authorization"], "Bearer dev-key");
        assert_eq!(echoed["body_kind"], "text");
        assert_eq!(echoed["body"], r#"{"hello":"wörld"}"#);

        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn binary_bodies_travel_intact_both_ways() {
        // Answers with the body it received, as the same variant, and names the variant.
        let server = start(|request: Request| async move {
            let kind = body_kind(request.body());
            let mut response = Response::new(request.into_body());
            response
                .headers_mut()
                .insert("x-body-kind", kind.parse().expect("header value"));
            response
                .headers_mut()
                .insert("content-length", "999".parse().expect("header value"));
            response
        })
        .await;
        let sent: Vec<u8> = vec![0x00, 0xff, 0xfe, 0x80, b'a', 0xc3];
        let response = client()
            .put(server.url("/blob"))
            .body(sent.clone())
            .send()
            .await
            .expect("request");

        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-body-kind"], "binary");
        // A wrong Content-Length from the handler is replaced by the real one.
        assert_eq!(response.headers()["content-length"], sent.len().to_string());
        assert_eq!(
            response.bytes().await.expect("body").as_ref(),
            sent.as_slice()
        );

        server.stop().await.expect("serve returns Ok");
    }

    /// Answers 413 when the body is over the limit, else 200; records every body length.
    fn size_checker(
        seen: Arc<Mutex<Vec<usize>>>,
    ) -> impl Fn(Request) -> std::future::Ready<Response<Body>> + Clone {
        move |request: Request| {
            let len = request.body().as_ref().len();
            seen.lock().expect("lock").push(len);
            let status = if len > MAX_BODY_BYTES { 413 } else { 200 };
            std::future::ready(
                Response::builder()
                    .status(status)
                    .body(Body::Text(len.to_string()))
                    .expect("response"),
            )
        }
    }

    #[tokio::test]
    async fn oversized_body_reaches_handler_cut_at_limit_plus_one_and_413_reaches_client() {
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
    async fn empty_bodies_reach_handler_as_body_empty() {
        let server = start(echo).await;
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
            assert_eq!(echoed["body_kind"], "empty", "{echoed}");
            assert_eq!(echoed["query"], json!({}));
        }
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn handler_panic_becomes_500_and_the_server_keeps_serving() {
        let server = start(|request: Request| async move {
            if request.uri().path() == "/boom" {
                panic!("handler bug");
            }
            Response::new(Body::Text("fine".into()))
        })
        .await;
        let client = client();

        let response = client
            .get(server.url("/boom"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 500);
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

        // The caller's own id, as the API would have used it.
        let response = client
            .get(server.url("/boom"))
            .header("x-request-id", "caller-7")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-request-id"], "caller-7");

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
    async fn a_body_cut_short_is_answered_400_and_never_reaches_the_handler() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let server = start(move |_request: Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Response::new(Body::Text("reached".into())))
        })
        .await;

        // Promise 100 bytes, send 10, then stop sending and wait for the answer.
        let answer = half_closed_exchange(
            server.addr,
            b"POST /v1/agreements HTTP/1.1\r\nhost: localhost\r\nx-request-id: cut-1\r\ncontent-length: 100\r\n\r\n0123456789",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
        assert!(answer.contains("\r\nx-request-id: cut-1\r\n"), "{answer}");
        let body = raw_json(&answer);
        assert_eq!(body["error"]["type"], "INVALID_REQUEST", "{body}");
        assert_eq!(body["error"]["request_id"], "cut-1", "{body}");
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
        let server = start(|request: Request| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            echo(request).await
        })
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
            assert_eq!(echoed["path"], format!("/echo/{attempt}"));
            assert_eq!(echoed["body"], "hello");
        }
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn the_handler_sees_a_gateway_request_id_and_heads_past_hyper_defaults() {
        let server = start(|request: Request| async move {
            let gateway_id = match request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
                _ => None,
            };
            Response::new(Body::Text(format!(
                "{} {}",
                gateway_id.unwrap_or_default(),
                request.headers().len()
            )))
        })
        .await;
        let client = client();
        let mut request = client.get(server.url("/ids"));
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
        let (gateway_id, fields) = text.split_once(' ').expect("two words");
        assert!(
            gateway_id.starts_with("req_") && gateway_id.len() > 4,
            "{text}"
        );
        assert!(fields.parse::<usize>().expect("a count") > 150, "{text}");

        // A new id for every request.
        let again = client
            .get(server.url("/ids"))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert_ne!(again.split_once(' ').expect("two words").0, gateway_id);
        server.stop().await.expect("serve returns Ok");
    }

    #[tokio::test]
    async fn graceful_shutdown_finishes_in_flight_requests_returns_and_refuses_new_connections() {
        let (entered_tx, entered_rx) = oneshot::channel::<()>();
        let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
        let finished = Arc::new(AtomicUsize::new(0));
        let finished_by_handler = finished.clone();
        let server = start(move |request: Request| {
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
                Response::new(Body::Text("done".into()))
            }
        })
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
