//! What every request meets on its way through the router, whatever its route: one request id
//! (the caller's if it is fit to echo), one log line, SPEC's error shape for what axum and
//! tower-http refuse themselves (a declared body over the limit, a panic, HEAD), and nothing else.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use http::request::Parts;
use http::Method;
use serde_json::json;

use countersign_api::auth::{Authenticator, Rejection};
use support::*;

/// Log lines written while the returned guard lives (this thread only: the tests run on a
/// current-thread runtime).
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn containing(&self, needle: &str) -> Vec<String> {
        let bytes = self.0.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_request_is_one_log_line_with_its_id_method_path_and_status() {
    let h = Harness::new();
    let lines = Lines::default();
    let _guard = lines.capture();
    let cases = [
        (
            Call::new(Method::POST, "/v1/agreements").json(&json!({})),
            201,
        ),
        (Call::new(Method::GET, "/v1/agreements/nope"), 404),
        (Call::new(Method::GET, "/v1/no-such-route"), 404),
        (Call::new(Method::DELETE, "/v1/agreements"), 405),
        (Call::new(Method::GET, "/v1/agreements").no_auth(), 401),
        (Call::new(Method::POST, "/v1/agreements").text("{"), 400),
    ];
    for (n, (call, status)) in cases.into_iter().enumerate() {
        let id = format!("log-case-{n}");
        let path = call.path.clone();
        let reply = h.send(call.header("x-request-id", &id)).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text);
        let logged = lines.containing(&format!("request_id={id} "));
        assert_eq!(logged.len(), 1, "{path}: {logged:#?}");
        assert!(
            logged[0].contains(&format!("status={status}")) && logged[0].contains(&path),
            "{logged:?}"
        );
    }
}

#[tokio::test]
async fn a_request_id_unfit_to_echo_is_replaced_and_so_is_a_second_one() {
    let h = Harness::new();
    for unfit in ["has spaces", "", &"x".repeat(129), "semi;colon", "quo\"te"] {
        let reply = h
            .send(Call::new(Method::GET, "/v1/agreements").header("x-request-id", unfit))
            .await;
        assert_eq!(reply.status, 200);
        assert!(reply.request_id().starts_with("req_"), "{unfit:?}");
        assert_eq!(reply.json["error"], serde_json::Value::Null);
    }
    let reply = h
        .send(
            Call::new(Method::GET, "/v1/nowhere")
                .header("x-request-id", "first")
                .header("x-request-id", "second"),
        )
        .await;
    let error = reply.expect_error(404, "NOT_FOUND");
    assert!(reply.request_id().starts_with("req_"));
    assert_eq!(error["request_id"], reply.request_id());
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read() {
    let h = Harness::new();
    let call = Call::new(Method::POST, "/v1/agreements")
        .header("content-length", &(ONE_MIB + 1).to_string());
    let mut call = call;
    call.body = vec![b' '; ONE_MIB + 1];
    h.send(call).await.expect_error(413, "PAYLOAD_TOO_LARGE");
    // Unauthenticated, on any route: the limit comes first.
    let mut call = Call::new(Method::POST, "/v1/callbacks/sandbox")
        .no_auth()
        .header("content-length", &(ONE_MIB + 1).to_string());
    call.body = vec![b' '; ONE_MIB + 1];
    h.send(call).await.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn head_is_not_a_method_of_this_api() {
    let h = Harness::new();
    let id = h.create_id(&json!({})).await;
    for (path, allowed) in [
        ("/v1/agreements".to_owned(), vec!["GET", "POST"]),
        (format!("/v1/agreements/{id}"), vec!["GET", "PATCH"]),
        (format!("/v1/agreements/{id}/history"), vec!["GET"]),
    ] {
        let reply = h.send(Call::new(Method::HEAD, &path)).await;
        reply.expect_error(405, "METHOD_NOT_ALLOWED");
        let mut listed: Vec<&str> = reply
            .header("allow")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        listed.sort_unstable();
        assert_eq!(listed, allowed, "{path}");
    }
}

/// An authenticator with a bug in it.
struct Panicking;

impl Authenticator for Panicking {
    fn tenant(&self, _request: &Parts) -> Result<String, Rejection> {
        panic!("authenticator bug")
    }
}

#[tokio::test]
async fn a_handler_that_panics_is_a_spec_500_and_the_api_keeps_answering() {
    let h = Harness::with(Options {
        authenticator: Some(Arc::new(Panicking)),
        ..Options::default()
    });
    let reply = h
        .send(Call::new(Method::GET, "/v1/agreements").header("x-request-id", "boom-1"))
        .await;
    let error = reply.expect_error(500, "INTERNAL");
    assert_eq!(error["request_id"], "boom-1");
    assert!(
        !reply.text.contains("authenticator bug"),
        "the panic stays in the log: {}",
        reply.text
    );
    // Callbacks do not authenticate by tenant: they are still answered.
    let reply = h.callback("{", None).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
}
