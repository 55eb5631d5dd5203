//! The error side of SPEC section 3: credentials, tenancy, routing, payload size, malformed
//! input, service hours, internal failures, and `X-Request-Id` on every response.

mod support;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use http::Method;
use serde_json::{json, Value};

use countersign_api::service_hours::ServiceHours;
use countersign_domain::{Agreement, HistoryEntry};
use countersign_service::test_doubles::ManualClock;
use countersign_service::test_doubles::RecordingQueue;
use countersign_store::{
    AgreementCommit, AgreementGet, AgreementList, Commit, CommitError, DuePage, ExpiryIndex,
    HistoryRead, IdempotencyRecord, IdempotencyStore, ListPage, ListQuery, StoreError,
};
use support::*;

// ---------------------------------------------------------------------------------------------
// 401

#[tokio::test]
async fn consumer_routes_without_valid_credentials_are_401() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let routes = [
        (Method::POST, "/v1/agreements".to_owned(), Some(json!({}))),
        (Method::GET, "/v1/agreements".to_owned(), None),
        (Method::GET, format!("/v1/agreements/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/agreements/{id}"),
            Some(json!({"metadata": {"lookup_key": "x"}})),
        ),
        (
            Method::POST,
            format!("/v1/agreements/{id}/lifecycle"),
            Some(json!({"lifecycle_state": "pending"})),
        ),
        (Method::GET, format!("/v1/agreements/{id}/history"), None),
        (
            Method::POST,
            format!("/v1/sandbox/agreements/{id}/participants/ada/sign"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/sandbox/agreements/{id}/fail"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/sandbox/agreements/{id}/expire"),
            None,
        ),
    ];
    let credentials: [Option<&str>; 7] = [
        None,
        Some("Bearer nope"),
        Some("Bearer "),
        Some("Bearer"),
        Some("Basic a2V5LWE6"),
        Some("key-a"),
        Some("Bearer key-a-but-longer"),
    ];
    for (method, path, body) in &routes {
        for credential in credentials {
            let mut call = Call::new(method.clone(), path).no_auth();
            if let Some(value) = credential {
                call = call.header("authorization", value);
            }
            if let Some(body) = body {
                call = call.json(body);
            }
            let reply = h.send(call).await;
            assert_eq!(
                reply.status, 401,
                "{method} {path} with {credential:?}: {}",
                reply.text
            );
            reply.expect_error(401, "UNAUTHORIZED");
        }
    }
    // Nothing happened.
    assert_eq!(h.agreement(&id).await["version"], 1);
    assert_eq!(
        h.get("/v1/agreements")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(h.queue.take().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Tenancy: 404 AGREEMENT_NOT_FOUND for another tenant's agreement

#[tokio::test]
async fn another_tenants_agreement_is_not_found_for_every_route() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    let history_before = h.history(&id).await;
    let as_b = |method: Method, path: String| Call::new(method, &path).key(KEY_B);

    let replies = [
        h.send(as_b(Method::GET, format!("/v1/agreements/{id}")))
            .await,
        h.send(
            as_b(Method::PATCH, format!("/v1/agreements/{id}"))
                .json(&json!({"metadata": {"lookup_key": "stolen"}})),
        )
        .await,
        h.send(
            as_b(Method::POST, format!("/v1/agreements/{id}/lifecycle"))
                .json(&json!({"lifecycle_state": "open"})),
        )
        .await,
        h.send(
            as_b(Method::POST, format!("/v1/agreements/{id}/lifecycle")).json(
                &json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_email"}}),
            ),
        )
        .await,
        h.send(as_b(Method::GET, format!("/v1/agreements/{id}/history")))
            .await,
        h.send(as_b(
            Method::POST,
            format!("/v1/sandbox/agreements/{id}/participants/ada/refuse"),
        ))
        .await,
        h.send(as_b(
            Method::POST,
            format!("/v1/sandbox/agreements/{id}/fail"),
        ))
        .await,
        h.send(as_b(
            Method::POST,
            format!("/v1/sandbox/agreements/{id}/expire"),
        ))
        .await,
    ];
    // The same answer as for an id that does not exist at all: nothing tells them apart.
    let unknown = h
        .send(as_b(
            Method::GET,
            "/v1/agreements/nosuchagreement0000000000".to_owned(),
        ))
        .await;
    unknown.expect_error(404, "AGREEMENT_NOT_FOUND");
    for reply in &replies {
        reply.expect_error(404, "AGREEMENT_NOT_FOUND");
        assert_eq!(reply.error()["message"], unknown.error()["message"]);
        assert!(!reply.text.contains(TENANT_A), "{}", reply.text);
    }
    assert_eq!(h.agreement(&id).await, before);
    assert_eq!(h.history(&id).await, history_before);
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn listing_never_shows_another_tenants_agreements() {
    let h = Harness::new();
    let mut a_ids = Vec::new();
    for _ in 0..3 {
        a_ids.push(h.create_id(&ready_body(true)).await);
        h.advance(Duration::seconds(1));
    }
    let b_id = h
        .send(
            Call::new(Method::POST, "/v1/agreements")
                .key(KEY_B)
                .json(&ready_body(true)),
        )
        .await
        .expect_agreement(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let list_b = |query: &str| Call::new(Method::GET, &format!("/v1/agreements{query}")).key(KEY_B);
    for query in ["", "?lookup_key=lease-42", "?status=draft", "?limit=1"] {
        let reply = h.send(list_b(query)).await;
        assert_eq!(reply.status, 200);
        let ids: Vec<&str> = reply
            .data()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [b_id.as_str()], "{query}");
    }
    // A cursor from tenant A's listing gives tenant B nothing of A's.
    let a_page = h.get("/v1/agreements?limit=1").await;
    let cursor = a_page.json["next_cursor"].as_str().unwrap().to_owned();
    let reply = h.send(list_b(&format!("?cursor={cursor}"))).await;
    for agreement in reply.data().as_array().unwrap() {
        assert!(!a_ids.contains(&agreement["id"].as_str().unwrap().to_owned()));
    }
    // And A sees only A's.
    let reply = h.get("/v1/agreements?limit=100").await;
    let ids: Vec<String> = reply
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!ids.contains(&b_id));
    assert_eq!(ids.len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Routing: 404 for unknown routes, 405 for known paths with another method

#[tokio::test]
async fn unknown_routes_are_404() {
    let h = Harness::new();
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/v1"),
        (Method::GET, "/v2/agreements"),
        (Method::GET, "/v1/agreement"),
        (Method::GET, "/v1/agreements/abc/participants"),
        (Method::POST, "/v1/agreements/abc/lifecycle/extra"),
        (Method::POST, "/v1/sandbox/agreements/abc"),
        (Method::POST, "/v1/callbacks"),
    ] {
        let reply = h.send(Call::new(method.clone(), path)).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
        let error_type = reply.error()["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        reply.expect_error(404, &error_type);
        assert_ne!(
            error_type, "AGREEMENT_NOT_FOUND",
            "{path}: no agreement was looked up, the route does not exist"
        );
    }
}

#[tokio::test]
async fn known_paths_with_another_method_are_405_with_allow() {
    let h = Harness::new();
    let id = h.create_id(&json!({})).await;
    let cases = [
        (
            Method::DELETE,
            "/v1/agreements".to_owned(),
            ["GET", "POST"].as_slice(),
        ),
        (Method::PUT, "/v1/agreements".to_owned(), &["GET", "POST"]),
        (
            Method::DELETE,
            format!("/v1/agreements/{id}"),
            &["GET", "PATCH"],
        ),
        (
            Method::POST,
            format!("/v1/agreements/{id}"),
            &["GET", "PATCH"],
        ),
        (
            Method::PUT,
            format!("/v1/agreements/{id}"),
            &["GET", "PATCH"],
        ),
        (
            Method::GET,
            format!("/v1/agreements/{id}/lifecycle"),
            &["POST"],
        ),
        (
            Method::POST,
            format!("/v1/agreements/{id}/history"),
            &["GET"],
        ),
        (Method::GET, "/v1/callbacks/sandbox".to_owned(), &["POST"]),
        (
            Method::GET,
            format!("/v1/sandbox/agreements/{id}/fail"),
            &["POST"],
        ),
        (
            Method::GET,
            format!("/v1/sandbox/agreements/{id}/participants/p/sign"),
            &["POST"],
        ),
    ];
    for (method, path, allowed) in cases {
        let reply = h.send(Call::new(method.clone(), &path)).await;
        assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
        let error_type = reply.error()["type"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        reply.expect_error(405, &error_type);
        // RFC 9110 section 15.5.6: a 405 names the methods the resource supports.
        let allow = reply
            .header("allow")
            .unwrap_or_else(|| panic!("{method} {path}: 405 without Allow"));
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        listed.sort_unstable();
        assert_eq!(listed, allowed, "{method} {path}");
    }
    // The agreement was not touched by any of them.
    assert_eq!(h.agreement(&id).await["version"], 1);
}

// ---------------------------------------------------------------------------------------------
// 413

fn padded(json_text: &str, total: usize) -> String {
    assert!(json_text.len() <= total);
    format!("{json_text}{}", " ".repeat(total - json_text.len()))
}

#[tokio::test]
async fn bodies_over_1_mib_are_413_and_1_mib_is_accepted() {
    let h = Harness::new();
    let body = r#"{"metadata":{"lookup_key":"big"}}"#;

    let exactly = h
        .send(Call::new(Method::POST, "/v1/agreements").text(padded(body, ONE_MIB)))
        .await;
    exactly.expect_agreement(201);

    let over = h
        .send(Call::new(Method::POST, "/v1/agreements").text(padded(body, ONE_MIB + 1)))
        .await;
    over.expect_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(
        h.get("/v1/agreements")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing created by the 413"
    );

    let id = exactly.data()["id"].as_str().unwrap().to_owned();
    let huge = format!(
        r#"{{"metadata":{{"lookup_key":"{}"}}}}"#,
        "x".repeat(2 * ONE_MIB)
    );
    for (method, path) in [
        (Method::PATCH, format!("/v1/agreements/{id}")),
        (Method::POST, format!("/v1/agreements/{id}/lifecycle")),
        (Method::POST, "/v1/callbacks/sandbox".to_owned()),
    ] {
        let reply = h.send(Call::new(method, &path).text(huge.clone())).await;
        reply.expect_error(413, "PAYLOAD_TOO_LARGE");
    }
    assert_eq!(h.agreement(&id).await["version"], 1);
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn binary_bodies_count_towards_the_limit_too() {
    let h = Harness::new();
    let mut call = Call::new(Method::POST, "/v1/agreements");
    call.body = vec![b' '; ONE_MIB + 1];
    h.send(call).await.expect_error(413, "PAYLOAD_TOO_LARGE");
}

// ---------------------------------------------------------------------------------------------
// 400 INVALID_REQUEST on create

#[tokio::test]
async fn create_refuses_malformed_json_wrong_types_unknown_fields_and_enum_values() {
    let h = Harness::new();
    let bodies = [
        "{".to_owned(),
        "{\"metadata\": }".to_owned(),
        "[]".to_owned(),
        // serde would read a struct from an array, field by position.
        "[true, \"QES\"]".to_owned(),
        "null".to_owned(),
        "42".to_owned(),
        "\"agreement\"".to_owned(),
        json!({"expires_in_days": "ten"}).to_string(),
        json!({"expires_in_days": -1}).to_string(),
        json!({"expires_in_days": 1.5}).to_string(),
        json!({"test_mode": "yes"}).to_string(),
        json!({"participants": {"id": "a"}}).to_string(),
        json!({"participants": [{"name": 5}]}).to_string(),
        json!({"communication": {"send_emails": "true", "default_locale": "en"}}).to_string(),
        json!({"colour": "blue"}).to_string(),
        json!({"status": "fulfilled"}).to_string(),
        json!({"id": "mine"}).to_string(),
        json!({"version": 3}).to_string(),
        json!({"contract": {"bank_information": {"iban": IBAN, "swift": "X"}}}).to_string(),
        json!({"participants": [{"name": "A", "email": "a@example.com", "status": "SIGNATURE_COMPLETE"}]}).to_string(),
        json!({"trust_level": "XES"}).to_string(),
        json!({"trust_level": "ses"}).to_string(),
        json!({"participants": [{"name": "A", "role": "witness"}]}).to_string(),
        json!({"observers": [{"name": "O", "scope": "spy"}]}).to_string(),
        json!({"issuer": {"name": "I", "role": "boss"}}).to_string(),
    ];
    for body in bodies {
        let reply = h
            .send(Call::new(Method::POST, "/v1/agreements").text(body.clone()))
            .await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text);
        reply.expect_error(400, "INVALID_REQUEST");
    }
    assert!(h
        .get("/v1/agreements")
        .await
        .data()
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn create_with_a_bad_iban_is_422_validation_failed() {
    let h = Harness::new();
    assert!(!mod97_holds(BAD_IBAN) && !mod97_holds("DE89370400440532013001"));
    for iban in [BAD_IBAN, "FR14", "NOT AN IBAN", "DE89370400440532013001"] {
        let mut body = ready_body(true);
        body["contract"]["bank_information"]["iban"] = json!(iban);
        let reply = h.post("/v1/agreements", &body).await;
        let error = reply.expect_error(422, "VALIDATION_FAILED");
        let fields: Vec<&str> = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["contract.bank_information.iban"], "{iban}");
    }
    assert!(h
        .get("/v1/agreements")
        .await
        .data()
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn validation_failures_on_create_are_all_reported() {
    let h = Harness::new();
    let reply = h
        .post(
            "/v1/agreements",
            &json!({
                "expires_in_days": 0,
                "contract": {"bank_information": {"iban": BAD_IBAN, "bic": "NOPE"}},
                "metadata": {"success_callback_url": "ftp://x"}
            }),
        )
        .await;
    let error = reply.expect_error(422, "VALIDATION_FAILED");
    let fields: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    for field in [
        "expires_in_days",
        "contract.bank_information.iban",
        "contract.bank_information.bic",
        "metadata.success_callback_url",
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 503 outside service hours

fn paris_hours() -> ServiceHours {
    "07:30-22:00@Europe/Paris".parse().unwrap()
}

fn closed_at(now: DateTime<Utc>) -> Harness {
    Harness::with(Options {
        service_hours: Some(paris_hours()),
        start: now,
        ..Options::default()
    })
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("503 without Retry-After: {}", reply.text))
        .parse()
        .expect("Retry-After in whole seconds")
}

/// 503 with the `Retry-After` that lands on the next opening, computed by hand from the Paris
/// offsets (CET = UTC+1, CEST = UTC+2).
async fn assert_closed_until(now: DateTime<Utc>, opens: DateTime<Utc>) {
    let h = closed_at(now);
    let reply = h.get("/v1/agreements").await;
    reply.expect_error(503, "SERVICE_UNAVAILABLE");
    assert_eq!(
        retry_after(&reply),
        (opens - now).num_seconds() as u64,
        "closed at {now}, opens at {opens}"
    );
    // At the opening instant it answers.
    h.clock.set(opens);
    assert_eq!(h.get("/v1/agreements").await.status, 200, "open at {opens}");
}

#[tokio::test]
async fn outside_service_hours_consumer_routes_are_503_with_retry_after() {
    // A winter night: 23:30 CET; opens 07:30 CET = 06:30 UTC.
    assert_closed_until(utc(2026, 1, 15, 22, 30, 0), utc(2026, 1, 16, 6, 30, 0)).await;
    // One second before opening.
    assert_closed_until(utc(2026, 1, 16, 6, 29, 59), utc(2026, 1, 16, 6, 30, 0)).await;
    // A summer evening at 22:00 CEST sharp (closing is excluded); opens 07:30 CEST = 05:30 UTC.
    assert_closed_until(utc(2026, 7, 1, 20, 0, 0), utc(2026, 7, 2, 5, 30, 0)).await;
}

#[tokio::test]
async fn service_hours_follow_daylight_saving() {
    // Spring forward, Sunday 29 March 2026: 00:00 CET Saturday night; the opening is at 07:30
    // CEST, 05:30 UTC (a fixed CET offset would say 06:30 UTC).
    assert_closed_until(utc(2026, 3, 28, 23, 0, 0), utc(2026, 3, 29, 5, 30, 0)).await;
    // Fall back, Sunday 25 October 2026: 23:00 CEST Saturday; the opening is at 07:30 CET,
    // 06:30 UTC (keeping Saturday's CEST offset would say 05:30 UTC).
    assert_closed_until(utc(2026, 10, 24, 21, 0, 0), utc(2026, 10, 25, 6, 30, 0)).await;
    // 07:00 CET that morning is still closed.
    assert_closed_until(utc(2026, 10, 25, 6, 0, 0), utc(2026, 10, 25, 6, 30, 0)).await;
}

#[tokio::test]
async fn inside_service_hours_everything_answers() {
    for now in [
        utc(2026, 1, 15, 6, 30, 0),   // 07:30 CET
        utc(2026, 1, 15, 20, 59, 59), // 21:59:59 CET
        utc(2026, 7, 1, 19, 59, 59),  // 21:59:59 CEST
        utc(2026, 7, 1, 5, 30, 0),    // 07:30 CEST
    ] {
        let h = closed_at(now);
        let reply = h.get("/v1/agreements").await;
        assert_eq!(reply.status, 200, "{now}: {}", reply.text);
        assert!(reply.header("retry-after").is_none());
    }
}

#[tokio::test]
async fn while_closed_every_consumer_route_is_503_but_callbacks_are_202_and_applied() {
    let h = closed_at(t0());
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    // Night falls: 23:00 CEST.
    h.clock.set(utc(2026, 6, 15, 21, 0, 0));
    for (method, path, body) in [
        (Method::POST, "/v1/agreements".to_owned(), Some(json!({}))),
        (Method::GET, "/v1/agreements".to_owned(), None),
        (Method::GET, format!("/v1/agreements/{id}"), None),
        (
            Method::PATCH,
            format!("/v1/agreements/{id}"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/v1/agreements/{id}/lifecycle"),
            Some(json!({"lifecycle_state": "open"})),
        ),
        (Method::GET, format!("/v1/agreements/{id}/history"), None),
    ] {
        let mut call = Call::new(method.clone(), &path);
        if let Some(body) = body {
            call = call.json(&body);
        }
        let reply = h.send(call).await;
        reply.expect_error(503, "SERVICE_UNAVAILABLE");
        // 23:00 CEST to 07:30 CEST.
        assert_eq!(retry_after(&reply), 8 * 3600 + 30 * 60, "{method} {path}");
    }

    let body = event_body("evt_night", "participant.signed", &id, Some("ada"), h.now());
    let reply = h
        .callback(&body, Some(&signature(SECRET, h.now().timestamp(), &body)))
        .await;
    assert_eq!(
        reply.status, 202,
        "callbacks are never closed: {}",
        reply.text
    );
    assert!(reply.header("retry-after").is_none());
    assert_eq!(h.pump().await.len(), 1);

    // Morning: the callback was applied, nothing was lost.
    h.clock.set(utc(2026, 6, 16, 5, 30, 0));
    let after = h.agreement(&id).await;
    assert_eq!(participant(&after, "ada")["status"], "SIGNATURE_COMPLETE");
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
}

// ---------------------------------------------------------------------------------------------
// 500 / store failures: nothing internal leaks

const SECRET_CAUSE: &str = "dynamodb://prod-table-7/arn:aws:secret-4711 connection refused";

/// A store where everything fails with `error`.
struct FailingStore {
    error: StoreError,
}

impl FailingStore {
    fn fail<T>(&self) -> Result<T, StoreError> {
        Err(self.error.clone())
    }
}

#[async_trait]
impl AgreementGet for FailingStore {
    async fn get_agreement(
        &self,
        _id: &str,
    ) -> Result<Option<std::sync::Arc<Agreement>>, StoreError> {
        self.fail()
    }
}

#[async_trait]
impl AgreementCommit for FailingStore {
    async fn commit(&self, _commit: Commit) -> Result<(), CommitError> {
        Err(CommitError::Store(self.error.clone()))
    }
}

#[async_trait]
impl AgreementList for FailingStore {
    async fn list_agreements(&self, _query: &ListQuery) -> Result<ListPage, StoreError> {
        self.fail()
    }
}

#[async_trait]
impl HistoryRead for FailingStore {
    async fn history(&self, _agreement_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.fail()
    }
}

#[async_trait]
impl ExpiryIndex for FailingStore {
    async fn due_for_expiry(
        &self,
        _now: DateTime<Utc>,
        _limit: usize,
        _cursor: Option<String>,
    ) -> Result<DuePage, StoreError> {
        self.fail()
    }
}

#[async_trait]
impl IdempotencyStore for FailingStore {
    async fn get_idempotency(
        &self,
        _tenant: &str,
        _key: &str,
        _now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.fail()
    }

    async fn put_idempotency(
        &self,
        _record: IdempotencyRecord,
        _now: DateTime<Utc>,
    ) -> Result<(), CommitError> {
        Err(CommitError::Store(self.error.clone()))
    }
}

fn failing_api(error: StoreError) -> axum::Router {
    api_over(
        Arc::new(FailingStore { error }),
        Arc::new(ManualClock::new(t0())),
        Arc::new(RecordingQueue::default()),
        &Options::default(),
    )
}

fn every_store_backed_request() -> Vec<Call> {
    let id = "abcdefghijklmnopqrstuvwxy";
    vec![
        Call::new(Method::POST, "/v1/agreements").json(&ready_body(true)),
        Call::new(Method::POST, "/v1/agreements")
            .header("idempotency-key", "k1")
            .json(&json!({})),
        Call::new(Method::GET, "/v1/agreements"),
        Call::new(Method::GET, &format!("/v1/agreements/{id}")),
        Call::new(Method::PATCH, &format!("/v1/agreements/{id}"))
            .json(&json!({"metadata": {"lookup_key": "x"}})),
        Call::new(Method::POST, &format!("/v1/agreements/{id}/lifecycle"))
            .json(&json!({"lifecycle_state": "pending"})),
        Call::new(Method::GET, &format!("/v1/agreements/{id}/history")),
        Call::new(Method::POST, &format!("/v1/sandbox/agreements/{id}/fail")),
        Call::new(Method::POST, &format!("/v1/sandbox/agreements/{id}/expire")),
    ]
}

fn assert_nothing_leaks(reply: &Reply) {
    for secret in [
        SECRET_CAUSE,
        "prod-table-7",
        "secret-4711",
        "connection refused",
        "dynamodb",
    ] {
        assert!(
            !reply.text.contains(secret),
            "{secret} leaked: {}",
            reply.text
        );
        for (name, value) in &reply.headers {
            assert!(
                !value.to_str().unwrap_or_default().contains(secret),
                "{secret} leaked in {name}"
            );
        }
    }
}

#[tokio::test]
async fn a_corrupt_store_record_is_500_internal_and_leaks_nothing() {
    let api = failing_api(StoreError::Corrupt(SECRET_CAUSE.to_owned()));
    for call in every_store_backed_request() {
        let what = format!("{} {}", call.method, call.path);
        let reply = send_to(&api, call).await;
        reply.expect_error(500, "INTERNAL");
        assert_eq!(reply.error()["details"], json!([]), "{what}");
        assert_nothing_leaks(&reply);
    }
}

#[tokio::test]
async fn an_unavailable_store_is_a_503_to_retry_that_leaks_nothing() {
    // A store outage is transient: 503 with Retry-After tells the caller to come back, where a
    // 500 would say the request itself broke something.
    let api = failing_api(StoreError::Unavailable(SECRET_CAUSE.to_owned()));
    for call in every_store_backed_request() {
        let reply = send_to(&api, call).await;
        reply.expect_error(503, "SERVICE_UNAVAILABLE");
        retry_after(&reply);
        assert_nothing_leaks(&reply);
    }
}

#[tokio::test]
async fn a_failing_store_does_not_turn_auth_or_shape_errors_into_5xx() {
    let api = failing_api(StoreError::Unavailable(SECRET_CAUSE.to_owned()));
    let reply = send_to(&api, Call::new(Method::GET, "/v1/agreements").no_auth()).await;
    reply.expect_error(401, "UNAUTHORIZED");
    let reply = send_to(&api, Call::new(Method::POST, "/v1/agreements").text("{")).await;
    reply.expect_error(400, "INVALID_REQUEST");
    // Callbacks are verified and queued without the store.
    let body = event_body("evt", "participant.signed", "abc", Some("p"), t0());
    let reply = send_to(
        &api,
        Call::new(Method::POST, "/v1/callbacks/sandbox")
            .no_auth()
            .header(
                "countersign-signature",
                &signature(SECRET, t0().timestamp(), &body),
            )
            .text(body),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
}

// ---------------------------------------------------------------------------------------------
// X-Request-Id

#[tokio::test]
async fn every_response_carries_x_request_id_equal_to_error_request_id() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let body = event_body("evt_rid", "participant.signed", &id, Some("ada"), h.now());
    let sig = signature(SECRET, h.now().timestamp(), &body);
    let calls = vec![
        Call::new(Method::POST, "/v1/agreements").json(&json!({})),
        Call::new(Method::GET, "/v1/agreements"),
        Call::new(Method::GET, &format!("/v1/agreements/{id}")),
        Call::new(Method::GET, &format!("/v1/agreements/{id}/history")),
        Call::new(
            Method::POST,
            &format!("/v1/sandbox/agreements/{id}/participants/bob/sign"),
        ),
        Call::new(Method::POST, "/v1/callbacks/sandbox")
            .no_auth()
            .header("countersign-signature", &sig)
            .text(body.clone()),
        // Errors of every kind.
        Call::new(Method::GET, "/v1/agreements").no_auth(),
        Call::new(Method::GET, "/v1/agreements/nosuchagreement0000000000"),
        Call::new(Method::GET, "/nowhere"),
        Call::new(Method::DELETE, "/v1/agreements"),
        Call::new(Method::POST, "/v1/agreements").text("{"),
        Call::new(Method::POST, "/v1/agreements").text(" ".repeat(ONE_MIB + 1)),
        Call::new(Method::PATCH, &format!("/v1/agreements/{id}")).json(&json!({})),
        Call::new(Method::POST, &format!("/v1/agreements/{id}/lifecycle"))
            .header("if-match", "\"1\"")
            .json(&json!({"lifecycle_state": "open"})),
        Call::new(Method::POST, &format!("/v1/agreements/{id}/lifecycle"))
            .json(&json!({"lifecycle_state": "cancelled", "input": {"reason": "nope"}})),
        Call::new(Method::POST, "/v1/callbacks/sandbox")
            .no_auth()
            .text(body),
    ];
    let mut seen = std::collections::HashSet::new();
    for call in calls {
        let what = format!("{} {}", call.method, call.path);
        let reply = h.send(call).await;
        let request_id = reply.request_id().to_owned();
        assert!(!request_id.is_empty(), "{what}");
        assert!(
            seen.insert(request_id.clone()),
            "{what}: request ids are distinct"
        );
        if reply.status >= 400 {
            assert_eq!(
                reply.error()["request_id"],
                request_id.as_str(),
                "{what}: {}",
                reply.text
            );
        }
    }
    assert!(seen.len() >= 16);
}

#[tokio::test]
async fn a_sane_caller_request_id_is_kept_and_a_bad_one_replaced() {
    let h = Harness::new();
    let reply = h
        .send(
            Call::new(Method::GET, "/v1/agreements/nope").header("x-request-id", "trace-42.a_b:c"),
        )
        .await;
    assert_eq!(reply.request_id(), "trace-42.a_b:c");
    reply.expect_error(404, "AGREEMENT_NOT_FOUND");

    let long = "r".repeat(500);
    for bad in ["has space", "<script>", long.as_str()] {
        let reply = h
            .send(Call::new(Method::GET, "/v1/agreements/nope").header("x-request-id", bad))
            .await;
        assert_ne!(reply.request_id(), bad);
        assert!(!reply.text.contains("<script>"));
        reply.expect_error(404, "AGREEMENT_NOT_FOUND");
    }
}

#[tokio::test]
async fn a_503_carries_x_request_id_too() {
    let h = closed_at(utc(2026, 1, 15, 23, 0, 0));
    let reply = h.get("/v1/agreements").await;
    reply.expect_error(503, "SERVICE_UNAVAILABLE");
    let value: Value = reply.error()["request_id"].clone();
    assert_eq!(value, reply.request_id());
}
