//! `countersign-local` at the edges of HTTP/1.1, over real sockets: request heads over the API's
//! limits, clients that half-close after a complete request, and the challenge of a 401. Every
//! answer keeps SPEC section 3: the error envelope and `X-Request-Id`.

use std::time::Duration;

use countersign_test_kit::{LocalProcess, Reply};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BINARY: &str = env!("CARGO_BIN_EXE_countersign-local");

/// Bounds a read that should end with the server closing; only a broken server reaches it.
const HANG_GUARD: Duration = Duration::from_secs(20);

/// `127.0.0.1:<port>` of the process.
fn address(local: &LocalProcess) -> String {
    local
        .base_url
        .strip_prefix("http://")
        .and_then(|rest| rest.strip_suffix("/v1"))
        .unwrap_or_else(|| panic!("unexpected base URL {}", local.base_url))
        .to_owned()
}

/// An HTTP/1.1 answer read off the wire.
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawAnswer {
    /// Parses one answer framed by `Content-Length`; panics on anything else.
    fn parse(bytes: &[u8]) -> RawAnswer {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, rest) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete answer head in {text:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {line:?}"));
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let answer = RawAnswer {
            status,
            headers,
            body: rest.to_owned(),
        };
        let length: usize = answer
            .header("content-length")
            .and_then(|length| length.parse().ok())
            .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
        assert_eq!(
            answer.body.len(),
            length,
            "the whole body arrived: {text:?}"
        );
        answer
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.body))
    }
}

/// Writes `request` whole, half-closes (no more from this side), and reads until the server
/// closes.
async fn half_closed_exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write the request");
    stream.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    tokio::time::timeout(HANG_GUARD, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .expect("read the answer");
    answer
}

fn assert_spec_error(reply: &Reply, status: u16, error_type: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "error", "{:?}", reply.body);
    assert_eq!(reply.body["error"]["code"], json!(status));
    assert_eq!(reply.body["error"]["type"], error_type, "{:?}", reply.body);
    assert!(reply.body["error"]["details"].is_array());
    let request_id = reply.header("x-request-id").expect("X-Request-Id");
    assert!(!request_id.is_empty());
    assert_eq!(reply.body["error"]["request_id"], json!(request_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_over_the_limits_get_a_spec_shaped_431_with_a_request_id() {
    let local = LocalProcess::start(BINARY, &[]);
    let client = local.client("dev-key");

    // The issue's 120 header fields.
    let names: Vec<String> = (0..120).map(|n| format!("x-filler-{n}")).collect();
    let headers: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "v")).collect();
    let reply = client.send("GET", "/agreements", None, &headers).await;
    assert_spec_error(&reply, 431, "INVALID_REQUEST");

    // 33 KiB in one field.
    let big = "v".repeat(33 * 1024);
    let reply = client
        .send("GET", "/agreements", None, &[("x-big", big.as_str())])
        .await;
    assert_spec_error(&reply, 431, "INVALID_REQUEST");

    // The same connection pool still serves ordinary requests.
    let reply = client.get("/agreements").await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_half_closes_after_a_complete_request_gets_the_whole_answer() {
    let local = LocalProcess::start(BINARY, &[]);
    let addr = address(&local);
    let create = json!({"test_mode": true, "metadata": {"lookup_key": "half-close"}}).to_string();

    for attempt in 0..20 {
        let (request, expected) = match attempt % 3 {
            0 => (
                format!(
                    "GET /v1/agreements HTTP/1.1\r\nhost: {addr}\r\n\
                     authorization: Bearer dev-key\r\n\r\n"
                ),
                200,
            ),
            1 => (
                format!(
                    "POST /v1/agreements HTTP/1.1\r\nhost: {addr}\r\n\
                     authorization: Bearer dev-key\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\n\r\n{create}",
                    create.len()
                ),
                201,
            ),
            _ => (
                format!("GET /v1/agreements HTTP/1.1\r\nhost: {addr}\r\n\r\n"),
                401,
            ),
        };
        let answer = RawAnswer::parse(&half_closed_exchange(&addr, request.as_bytes()).await);
        assert_eq!(answer.status, expected, "attempt {attempt}: {answer:?}");
        let request_id = answer.header("x-request-id").expect("X-Request-Id");
        let body = answer.json();
        match expected {
            200 => assert_eq!(body["result_type"], "list", "{body}"),
            201 => assert_eq!(body["data"]["status"], "draft", "{body}"),
            _ => {
                assert_eq!(body["error"]["type"], "UNAUTHORIZED", "{body}");
                assert_eq!(body["error"]["request_id"], json!(request_id));
                assert_eq!(
                    answer.header("www-authenticate"),
                    Some(r#"Bearer realm="countersign""#)
                );
            }
        }
    }
    // Every POST was applied once: 7 of the 20 attempts.
    let listed = local
        .client("dev-key")
        .get("/agreements?lookup_key=half-close")
        .await;
    assert_eq!(listed.data().as_array().map(Vec::len), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_401_over_http_carries_a_challenge() {
    let local = LocalProcess::start(BINARY, &[]);
    let reply = local.client("no-such-key").get("/agreements").await;
    assert_spec_error(&reply, 401, "UNAUTHORIZED");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Bearer realm="countersign", error="invalid_token""#)
    );

    let reply = local
        .client("dev-key")
        .send_raw("/callbacks/sandbox", b"{}".to_vec(), &[])
        .await;
    assert_spec_error(&reply, 401, "UNAUTHORIZED");
    assert_eq!(
        reply.header("www-authenticate"),
        Some(r#"Countersign-Signature realm="countersign""#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_short_is_a_spec_shaped_400_and_creates_nothing() {
    let local = LocalProcess::start(BINARY, &[]);
    let addr = address(&local);
    // Promise 100 bytes, send 10, then stop sending and wait for the answer.
    let request = format!(
        "POST /v1/agreements HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer dev-key\r\n\
         x-request-id: cut-1\r\ncontent-length: 100\r\n\r\n{{\"test_mo"
    );
    let answer = RawAnswer::parse(&half_closed_exchange(&addr, request.as_bytes()).await);
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.header("x-request-id"), Some("cut-1"));
    let body = answer.json();
    assert_eq!(body["error"]["type"], "INVALID_REQUEST", "{body}");
    assert_eq!(body["error"]["request_id"], "cut-1", "{body}");

    let listed = local.client("dev-key").get("/agreements").await;
    assert_eq!(listed.data().as_array().map(Vec::len), Some(0));
}
