//! Credentials and request-head limits: the `Authorization` rules of the local API-key path, the
//! `WWW-Authenticate` challenge every 401 carries (RFC 9110 section 11.6.1), and the SPEC-shaped
//! 431 for too many or too large request headers.

mod support;

use http::Method;
use serde_json::json;

use support::*;

/// The consumer routes, each with a body it accepts.
async fn consumer_routes(h: &Harness) -> Vec<(Method, String, Option<serde_json::Value>)> {
    let id = h.create_id(&ready_body(true)).await;
    vec![
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
    ]
}

// ---------------------------------------------------------------------------------------------
// The Bearer scheme

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let reply = h
            .send(
                Call::new(Method::GET, &format!("/v1/agreements/{id}"))
                    .no_auth()
                    .header("authorization", &format!("{scheme} {KEY_A}")),
            )
            .await;
        let data = reply.expect_agreement(200);
        assert_eq!(data["id"], json!(id), "{scheme}");
    }
}

#[tokio::test]
async fn spaces_around_the_token_are_tolerated_and_nothing_else_is() {
    let h = Harness::new();
    let reply = h
        .send(
            Call::new(Method::GET, "/v1/agreements")
                .no_auth()
                .header("authorization", &format!("Bearer   {KEY_A}  ")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    for credential in [
        format!("Bearer {KEY_A} {KEY_A}"),
        format!("Bearer\t{KEY_A}"),
        format!("Bearer{KEY_A}"),
        format!("Bearerx {KEY_A}"),
        format!("Token {KEY_A}"),
    ] {
        let reply = h
            .send(
                Call::new(Method::GET, "/v1/agreements")
                    .no_auth()
                    .header("authorization", &credential),
            )
            .await;
        reply.expect_error(401, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn two_authorization_headers_are_400_whatever_they_hold_and_change_nothing() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let pairs = [
        (format!("Bearer {KEY_A}"), format!("Bearer {KEY_A}")),
        (format!("Bearer {KEY_A}"), format!("Bearer {KEY_B}")),
        (format!("Bearer {KEY_A}"), "Bearer nope".to_owned()),
        ("Bearer nope".to_owned(), format!("Bearer {KEY_A}")),
        ("Basic a2V5LWE6".to_owned(), format!("Bearer {KEY_A}")),
    ];
    // `consumer_routes` creates a second agreement for its paths.
    let routes = consumer_routes(&h).await;
    for (first, second) in &pairs {
        for (method, path, body) in &routes {
            let mut call = Call::new(method.clone(), path)
                .no_auth()
                .header("authorization", first)
                .header("authorization", second);
            if let Some(body) = body {
                call = call.json(body);
            }
            let reply = h.send(call).await;
            let error = reply.expect_error(400, "INVALID_REQUEST");
            assert!(
                error["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Authorization")),
                "{method} {path}: {}",
                reply.text
            );
        }
    }
    // Nothing was created, changed or queued.
    assert_eq!(h.agreement(&id).await["version"], 1);
    let listed = h.get("/v1/agreements").await;
    let listed = listed.data().as_array().unwrap();
    assert_eq!(
        listed.len(),
        2,
        "only the two agreements created as tenant A"
    );
    assert!(listed.iter().all(|agreement| agreement["version"] == 1));
    assert!(h.queue.take().is_empty());
}

// ---------------------------------------------------------------------------------------------
// WWW-Authenticate on every 401

#[tokio::test]
async fn a_consumer_401_challenges_for_a_bearer_token() {
    let h = Harness::new();
    let credentials: [Option<&str>; 6] = [
        None,
        Some("Bearer nope"),
        Some("Bearer "),
        Some("Bearer"),
        Some("Basic a2V5LWE6"),
        Some("key-a"),
    ];
    for (method, path, body) in consumer_routes(&h).await {
        for credential in credentials {
            let mut call = Call::new(method.clone(), &path).no_auth();
            if let Some(value) = credential {
                call = call.header("authorization", value);
            }
            if let Some(body) = &body {
                call = call.json(body);
            }
            let reply = h.send(call).await;
            reply.expect_error(401, "UNAUTHORIZED");
            let challenges: Vec<&str> = reply
                .headers
                .get_all("www-authenticate")
                .iter()
                .map(|value| value.to_str().unwrap())
                .collect();
            // RFC 6750 section 3: no error code when no credentials were sent at all.
            let expected = match credential {
                None => r#"Bearer realm="countersign""#,
                Some(_) => r#"Bearer realm="countersign", error="invalid_token""#,
            };
            assert_eq!(
                challenges,
                [expected],
                "{method} {path} with {credential:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_callback_401_challenges_for_the_providers_signature_header() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let body = event_body(
        "evt_challenge",
        "participant.signed",
        &id,
        Some("ada"),
        h.now(),
    );
    let t = h.now().timestamp();
    let forged = signature(b"not-the-secret", t, &body);
    for signature_header in [None, Some("garbage"), Some(forged.as_str())] {
        let reply = h.callback(&body, signature_header).await;
        reply.expect_error(401, "UNAUTHORIZED");
        let challenges: Vec<&str> = reply
            .headers
            .get_all("www-authenticate")
            .iter()
            .map(|value| value.to_str().unwrap())
            .collect();
        assert_eq!(
            challenges,
            [r#"Countersign-Signature realm="countersign""#],
            "{signature_header:?}"
        );
    }
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn answers_other_than_401_carry_no_challenge() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    for reply in [
        h.get(&format!("/v1/agreements/{id}")).await,
        h.get("/v1/agreements/nope").await,
        h.post("/v1/agreements", &json!({"test_mode": "yes"})).await,
    ] {
        assert!(
            reply.header("www-authenticate").is_none(),
            "{} {}",
            reply.status,
            reply.text
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Request-head limits: 100 header fields, 32 KiB of header bytes

/// The harness adds `authorization` (and `content-type` with a JSON body); `fillers` more.
fn with_fillers(mut call: Call, fillers: usize, value: &str) -> Call {
    for n in 0..fillers {
        call = call.header(&format!("x-filler-{n}"), value);
    }
    call
}

#[tokio::test]
async fn up_to_100_header_fields_are_served_and_101_are_a_spec_shaped_431() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let path = format!("/v1/agreements/{id}");

    // authorization + 99 fillers = 100 fields.
    let reply = h
        .send(with_fillers(Call::new(Method::GET, &path), 99, "v"))
        .await;
    reply.expect_agreement(200);

    // 101 fields, and the 120 of the issue; on every kind of route, known or not.
    for fillers in [100, 119] {
        for (method, path) in [
            (Method::GET, path.clone()),
            (Method::POST, "/v1/agreements".to_owned()),
            (Method::POST, "/v1/callbacks/sandbox".to_owned()),
            (Method::GET, "/v1/no-such-route".to_owned()),
        ] {
            let reply = h
                .send(
                    with_fillers(Call::new(method.clone(), &path), fillers, "v")
                        .header("x-request-id", "caller-id-431"),
                )
                .await;
            let error = reply.expect_error(431, "INVALID_REQUEST");
            assert_eq!(reply.request_id(), "caller-id-431");
            assert!(
                error["message"].as_str().is_some_and(|m| m.contains("100")),
                "{method} {path}: {}",
                reply.text
            );
        }
    }
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn header_bytes_over_32_kib_are_a_spec_shaped_431() {
    let h = Harness::new();
    // Each field counts as `name: value\r\n`. `authorization: Bearer key-a\r\n` is 29 bytes,
    // `x-big: <v>\r\n` is 9 + len(v); together exactly 32 KiB at the limit.
    let fixed = "authorization: Bearer key-a\r\n".len() + "x-big: \r\n".len();
    let at_limit = "v".repeat(32 * 1024 - fixed);
    let reply = h
        .send(Call::new(Method::GET, "/v1/agreements").header("x-big", &at_limit))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    let over = format!("{at_limit}v");
    let reply = h
        .send(Call::new(Method::GET, "/v1/agreements").header("x-big", &over))
        .await;
    let error = reply.expect_error(431, "INVALID_REQUEST");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("32 KiB")),
        "{}",
        reply.text
    );
}
