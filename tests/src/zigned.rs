//! Zigned as the end-to-end tests play it: Prism serving Zigned's published document behind a
//! small front that records every call (and Prism's request violations) and plays only what
//! Prism cannot: a finalized agreement's signed document (`GET /agreements/{id}`) and its bytes.
//! Also Zigned's webhooks, in Zigned's format and signed as Zigned signs them.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::prism;

/// The bytes the front serves as every agreement's signed document.
pub const SIGNED_PDF: &[u8] = b"%PDF-1.7\n% signed by every participant at Zigned\n%%EOF\n";

/// What went through the front: each call with Prism's status, and Prism's request violations.
#[derive(Default)]
struct Seen {
    calls: Vec<String>,
    violations: Vec<String>,
}

/// The front, listening on 127.0.0.1 for as long as the test's runtime runs.
pub struct ZignedFront {
    pub url: String,
    seen: Arc<Mutex<Seen>>,
}

type State = (String, String, Arc<Mutex<Seen>>, reqwest::Client);

impl ZignedFront {
    /// A front before Prism at `prism_url` (e.g. [`prism::zigned_api_dynamic`]).
    pub async fn start(prism_url: String) -> ZignedFront {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let state: State = (url.clone(), prism_url, seen.clone(), crate::http_client());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ZignedFront { url, seen }
    }

    /// How many calls began with `prefix` (`"POST /agreements "`: creations only).
    pub fn calls(&self, prefix: &str) -> usize {
        self.calls_made(prefix).len()
    }

    /// How many calls began with `prefix` and succeeded (2xx). Prism in dynamic mode now and
    /// then fails to make up an answer (500): such a call created nothing, and was retried.
    pub fn succeeded(&self, prefix: &str) -> usize {
        self.calls_made(prefix)
            .iter()
            .filter(|call| {
                call.rsplit(' ')
                    .next()
                    .is_some_and(|status| status.starts_with('2'))
            })
            .count()
    }

    /// The calls that began with `prefix`, in order, each with Prism's status.
    pub fn calls_made(&self, prefix: &str) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.calls
            .iter()
            .filter(|call| call.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Every request passed Prism's validation of Zigned's document, and none was refused.
    pub fn assert_all_valid(&self) {
        let seen = self.seen.lock().unwrap();
        assert!(
            seen.violations.is_empty(),
            "Prism found requests that break Zigned's document:\n{}",
            seen.violations.join("\n")
        );
        let refused: Vec<_> = seen
            .calls
            .iter()
            .filter(|call| {
                call.ends_with(" 400")
                    || call.ends_with(" 401")
                    || call.ends_with(" 422")
                    || call.ends_with(" 404")
            })
            .collect();
        assert!(refused.is_empty(), "requests Prism refused: {refused:?}");
    }
}

async fn answer(
    (own, prism_url, seen, http): State,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // What Prism cannot play: the signed document of a finalized agreement, and its bytes.
    if method == hyper::Method::GET && segments.len() == 2 && segments[0] == "agreements" {
        seen.lock()
            .unwrap()
            .calls
            .push("GET /agreements/{id} (front) 200".to_owned());
        let body = json!({"version": "1.0", "result_type": "single", "resource_type": "agreement",
            "data": {"id": segments[1], "status": "fulfilled",
                "documents": {"signed_document": {"data": {"url": format!("{own}/download/signed.pdf")}}}}});
        return Response::new(Full::new(Bytes::from(body.to_string())));
    }
    if path == "/download/signed.pdf" {
        seen.lock()
            .unwrap()
            .calls
            .push("GET /download (front) 200".to_owned());
        return Response::new(Full::new(Bytes::from_static(SIGNED_PDF)));
    }
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut forward = http.request(method.clone(), format!("{prism_url}{}", path));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            forward = forward.header(name, value);
        }
    }
    let reply = forward.body(body).send().await.expect("Prism answers");
    let status = reply.status().as_u16();
    {
        let mut seen = seen.lock().unwrap();
        seen.calls.push(format!("{method} {path} {status}"));
        let values = reply
            .headers()
            .get_all(prism::VIOLATIONS_HEADER)
            .iter()
            .map(|value| value.to_str().unwrap_or("(not text)"));
        for violation in prism::request_violations(values) {
            seen.violations
                .push(format!("{method} {path}: {violation}"));
        }
    }
    let content_type = reply.headers().get("content-type").cloned();
    let mut bytes = reply.bytes().await.unwrap_or_default();
    if method == hyper::Method::POST && path == "/agreements" && (200..300).contains(&status) {
        bytes = with_own_agreement_id(&bytes);
    }
    let mut response = Response::new(Full::new(bytes));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    if let Some(content_type) = content_type {
        response.headers_mut().insert("content-type", content_type);
    }
    response
}

/// A created agreement's answer with an id of its own. Zigned's ids are cuids, never given
/// twice; Prism's dynamic answers fill them with lorem ipsum ("incididunt" came back twice in 40
/// calls), and countersign rightly refuses to record a reference another agreement holds, so a
/// repeated one made a send retry and create a second agreement at "Zigned".
fn with_own_agreement_id(body: &[u8]) -> Bytes {
    static CREATED: AtomicU64 = AtomicU64::new(0);
    let Ok(mut answer) = serde_json::from_slice::<Value>(body) else {
        return Bytes::copy_from_slice(body);
    };
    let Some(id) = answer.pointer_mut("/data/id") else {
        return Bytes::copy_from_slice(body);
    };
    let n = CREATED.fetch_add(1, Ordering::Relaxed);
    *id = json!(format!("cfront{n:019}"));
    Bytes::from(answer.to_string())
}

/// Seconds since the epoch, as Zigned's signature header carries them.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `x-zigned-request-signature` for `body` at `timestamp`: `t=<seconds>,v1=<hex HMAC-SHA256
/// (secret, "<t>.<body>")>`, the scheme countersign's sandbox shares.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    crate::sandbox_signature_at(secret.as_bytes(), timestamp, body)
}

/// A participant event as Zigned sends it, about a participant of countersign's `agreement`
/// (its JSON, with `provider_reference`s recorded).
pub fn participant_event(event: &str, agreement: &Value, participant: &str, status: &str) -> Value {
    let person = agreement["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == participant)
        .unwrap();
    json!({"event": event, "data": {"id": person["provider_reference"], "resource_type": "participant",
        "email": person["email"], "status": status, "agreement": agreement["provider"]["reference"],
        "signed_at": null}})
}

/// An agreement event as Zigned sends it (with `event_type`, as some integrators see it).
pub fn agreement_event(event: &str, agreement: &Value) -> Value {
    json!({"event_type": event, "data": {"id": agreement["provider"]["reference"], "resource_type": "agreement", "status": "pending"}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_created_agreement_gets_an_id_of_its_own() {
        let prism = br#"{"version":"1.0","data":{"id":"incididunt","status":"draft"}}"#;
        let first: Value = serde_json::from_slice(&with_own_agreement_id(prism)).unwrap();
        let second: Value = serde_json::from_slice(&with_own_agreement_id(prism)).unwrap();
        let (a, b) = (&first["data"]["id"], &second["data"]["id"]);
        assert_ne!(a, b);
        for id in [a, b] {
            let id = id.as_str().unwrap();
            assert_eq!(id.len(), 25, "{id}");
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{id}"
            );
        }
        assert_eq!(first["data"]["status"], "draft", "the rest is Prism's");
        assert_eq!(first["version"], "1.0");
    }

    #[test]
    fn an_answer_without_an_id_passes_as_it_came() {
        for body in [&b"not json"[..], br#"{"data":{}}"#] {
            assert_eq!(with_own_agreement_id(body), Bytes::copy_from_slice(body));
        }
    }
}
