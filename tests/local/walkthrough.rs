//! End to end: `countersign-local` started as a process, driven over real HTTP exactly as the
//! README's walk-through does, agreements taken to every status of SPEC section 1, and the events
//! it prints checked against each agreement's history.

use std::time::{SystemTime, UNIX_EPOCH};

use countersign_test_kit::{
    sandbox_signature, sandbox_signature_at, Client, LocalProcess, Reply, SETTLE_TIMEOUT,
};
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_countersign-local");

fn agreement_body(participants: Value, signing_order: Value) -> Value {
    json!({
        "test_mode": true,
        "contract": {"contract_id": "C-1", "proposal_id": "P-1",
            "bank_information": {"account_holder": "Ada Lovelace",
                "iban": "FR14 2004 1010 0505 0001 3M02 606", "bic": "BNPAFRPP"}},
        "participants": participants,
        "signing_order": signing_order,
        "documents": {"main": {"filename": "lease.pdf", "mime_type": "application/pdf", "size": 48213,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "uri": "s3://contracts/lease.pdf"}},
        "metadata": {"lookup_key": "lease-42"}
    })
}

fn two_signers() -> Value {
    agreement_body(
        json!([
            {"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "role": "signer"},
            {"id": "bob", "name": "Bob Bank", "email": "bob@example.com", "role": "approver"}
        ]),
        json!({"enabled": false, "grouped": false}),
    )
}

async fn sent(client: &Client, body: &Value) -> String {
    let id = client.create(body).await;
    let reply = client
        .lifecycle(&id, json!({"lifecycle_state": "pending"}))
        .await;
    assert_eq!(reply.status, 200, "pending: {:?}", reply.body);
    assert_eq!(reply.data()["status"], "pending");
    id
}

async fn sandbox(client: &Client, id: &str, action: &str) -> Reply {
    let reply = client
        .post(&format!("/sandbox/agreements/{id}/{action}"), &json!(null))
        .await;
    assert!(
        reply.status == 202 || reply.status == 200,
        "sandbox {action}: {} {:?}",
        reply.status,
        reply.body
    );
    reply
}

fn participant<'a>(agreement: &'a Value, id: &str) -> &'a Value {
    agreement["participants"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == id))
        .unwrap_or_else(|| panic!("no participant {id} in {agreement:#}"))
}

fn summary(agreement: &Value) -> (String, Value, String) {
    (
        agreement["status"].as_str().unwrap_or_default().to_owned(),
        agreement["signature_status"].clone(),
        agreement["journey"].as_str().unwrap_or_default().to_owned(),
    )
}

fn types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|entry| entry["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The events printed for `id` are its published history entries, in order, sequences 1..n.
async fn assert_events_match_history(local: &LocalProcess, client: &Client, id: &str) {
    let history = client.history(id).await;
    let published: Vec<&Value> = history
        .iter()
        .filter(|entry| entry["type"] != "ProviderEventIgnored")
        .collect();
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    let events = loop {
        let events = local.events_of(id);
        if events.len() >= published.len() || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let event_types: Vec<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap_or(""))
        .collect();
    let entry_types: Vec<&str> = published
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(event_types, entry_types, "events printed for {id}");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["source"], "countersign");
        assert_eq!(
            event["detail"]["sequence"],
            json!(index as u64 + 1),
            "gapless sequence: {event}"
        );
        assert_eq!(event["detail"]["tenant"], "dev-tenant");
        assert_eq!(event["detail"]["version"], published[index]["version"]);
    }
    let agreement = client.agreement(id).await;
    let last = events.last().expect("at least AgreementCreated");
    assert_eq!(last["detail"]["status"], agreement["status"]);
    assert_eq!(
        last["detail"]["signature_status"],
        agreement["signature_status"]
    );
    assert_eq!(last["detail"]["journey"], agreement["journey"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreements_reach_every_status_over_http() {
    let local = LocalProcess::start(BINARY, &[("COUNTERSIGN_SWEEP_INTERVAL_SECS", "0.2")]);
    assert!(
        local
            .logs()
            .iter()
            .any(|line| line.contains("Bearer dev-key")),
        "the start-up log says how to authenticate: {:?}",
        local.logs()
    );
    let client = local.client("dev-key");
    let mut walked = Vec::new();

    // fulfilled, with signing groups: bob's group is invited only once ada's has signed.
    let grouped = agreement_body(
        json!([
            {"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "role": "signer", "signing_group": 1},
            {"id": "bob", "name": "Bob Bank", "email": "bob@example.com", "role": "approver", "signing_group": 2}
        ]),
        json!({"enabled": true, "grouped": true}),
    );
    let id = sent(&client, &grouped).await;
    let invited = |history: &[Value]| -> Vec<Value> {
        history
            .iter()
            .filter(|e| e["type"] == "SigningGroupInvited")
            .map(|e| e["signing_group"].clone())
            .collect()
    };
    assert_eq!(invited(&client.history(&id).await), vec![json!(1)]);
    sandbox(&client, &id, "participants/ada/sign").await;
    client
        .wait_for(&id, "ada signed", |a| {
            participant(a, "ada")["status"] == "SIGNATURE_COMPLETE"
        })
        .await;
    assert_eq!(
        invited(&client.history(&id).await),
        vec![json!(1), json!(2)]
    );
    sandbox(&client, &id, "participants/bob/sign").await;
    let agreement = client
        .wait_for(&id, "fulfilled", |a| a["status"] == "fulfilled")
        .await;
    assert_eq!(
        summary(&agreement),
        (
            "fulfilled".into(),
            json!("SIGNATURE_COMPLETE"),
            "PROCEED".into()
        )
    );
    assert!(agreement["completed_at"].is_string());
    walked.push(id);

    // refused
    let id = sent(&client, &two_signers()).await;
    sandbox(&client, &id, "participants/bob/refuse").await;
    let agreement = client
        .wait_for(&id, "refused", |a| a["status"] == "refused")
        .await;
    assert_eq!(
        summary(&agreement),
        (
            "refused".into(),
            json!("SIGNATURE_REFUSED"),
            "STOPPED".into()
        )
    );
    assert_eq!(
        participant(&agreement, "bob")["status"],
        "SIGNATURE_REFUSED"
    );
    assert_eq!(
        participant(&agreement, "ada")["status"],
        "SIGNATURE_PENDING"
    );
    walked.push(id);

    // expired: the sandbox moves expires_at to now, the sweeper (every 0.2 s here) expires it.
    let id = sent(&client, &two_signers()).await;
    sandbox(&client, &id, "expire").await;
    let agreement = client
        .wait_for(&id, "expired", |a| a["status"] == "expired")
        .await;
    assert_eq!(
        summary(&agreement),
        (
            "expired".into(),
            json!("SIGNATURE_EXPIRED"),
            "STOPPED".into()
        )
    );
    walked.push(id);

    // failed
    let id = sent(&client, &two_signers()).await;
    sandbox(&client, &id, "fail").await;
    let agreement = client
        .wait_for(&id, "failed", |a| a["status"] == "failed")
        .await;
    assert_eq!(
        summary(&agreement),
        ("failed".into(), json!("OTHER_FAILURE"), "STOPPED".into())
    );
    walked.push(id);

    // cancelled, from draft, from open and from pending
    let from_draft = client.create(&two_signers()).await;
    let from_pending = sent(&client, &two_signers()).await;
    let from_open = sent(&client, &two_signers()).await;
    let reply = client
        .lifecycle(&from_open, json!({"lifecycle_state": "open"}))
        .await;
    assert_eq!(reply.data()["status"], "open");
    for (id, input) in [
        (&from_draft, json!({"reason": "invalid_document"})),
        (&from_open, json!({"reason": "invalid_participant"})),
        (
            &from_pending,
            json!({"reason": "custom", "description": "the customer changed their mind"}),
        ),
    ] {
        let reply = client
            .lifecycle(
                id,
                json!({"lifecycle_state": "cancelled", "input": input.clone()}),
            )
            .await;
        assert_eq!(reply.status, 200, "cancel: {:?}", reply.body);
        assert_eq!(
            summary(reply.data()),
            (
                "cancelled".into(),
                json!("SIGNATURE_CANCELLED"),
                "STOPPED".into()
            )
        );
        let expected_reason = input.get("description").unwrap_or(&input["reason"]).clone();
        assert_eq!(reply.data()["cancellation_reason"], expected_reason);
        // Terminal: nothing moves it again.
        let again = client
            .lifecycle(id, json!({"lifecycle_state": "pending"}))
            .await;
        assert_eq!(
            (again.status, again.error_type()),
            (409, "INVALID_TRANSITION")
        );
        walked.push(id.clone());
    }

    // bounced: the journey stops while the agreement stays pending; reopening resets it, and the
    // second round is signed to the end.
    let id = sent(&client, &two_signers()).await;
    sandbox(&client, &id, "participants/ada/bounce").await;
    let agreement = client
        .wait_for(&id, "journey STOPPED", |a| a["journey"] == "STOPPED")
        .await;
    assert_eq!(
        summary(&agreement),
        (
            "pending".into(),
            json!("SIGNATURE_ONGOING"),
            "STOPPED".into()
        )
    );
    assert_eq!(
        participant(&agreement, "ada")["status"],
        "SIGNATORY_DELIVERY_FAILED"
    );
    let reopened = client
        .lifecycle(&id, json!({"lifecycle_state": "open"}))
        .await;
    assert_eq!(
        summary(reopened.data()),
        ("open".into(), Value::Null, "WAITING".into())
    );
    assert_eq!(
        participant(reopened.data(), "ada")["status"],
        "SIGNATURE_PENDING"
    );
    assert!(reopened.data()["expires_at"].is_null());
    let resent = client
        .lifecycle(&id, json!({"lifecycle_state": "pending"}))
        .await;
    assert_eq!(
        summary(resent.data()),
        (
            "pending".into(),
            json!("SIGNATURE_ONGOING"),
            "WAITING".into()
        )
    );
    sandbox(&client, &id, "participants/ada/sign").await;
    sandbox(&client, &id, "participants/bob/sign").await;
    client
        .wait_for(&id, "fulfilled after reopening", |a| {
            a["status"] == "fulfilled"
        })
        .await;
    let history = types(&client.history(&id).await);
    assert!(
        history.contains(&"ParticipantDeliveryFailed".to_owned()),
        "{history:?}"
    );
    assert!(
        history.contains(&"CustomerJourneyStopped".to_owned()),
        "{history:?}"
    );
    assert!(
        history.contains(&"AgreementReopened".to_owned()),
        "{history:?}"
    );
    walked.push(id);

    // identity check failed at the third attempt (the default), not before.
    let id = sent(&client, &two_signers()).await;
    for _ in 0..2 {
        sandbox(&client, &id, "participants/bob/fail-identity").await;
    }
    let agreement = client
        .wait_for(&id, "two failed identity checks", |a| {
            participant(a, "bob")["identity_check_failures"] == 2
        })
        .await;
    assert_eq!(
        participant(&agreement, "bob")["status"],
        "SIGNATURE_PENDING"
    );
    assert_eq!(agreement["journey"], "WAITING");
    sandbox(&client, &id, "participants/bob/fail-identity").await;
    let agreement = client
        .wait_for(&id, "identity check failed", |a| a["journey"] == "STOPPED")
        .await;
    assert_eq!(
        participant(&agreement, "bob")["status"],
        "IDENTITY_CHECK_FAILED"
    );
    assert_eq!(agreement["status"], "pending");
    walked.push(id);

    for id in &walked {
        assert_events_match_history(&local, &client, id).await;
    }
    // What the provider was asked, as the dispatcher logged it (the sandbox sends nothing).
    // The reopen's own dispatch may find the agreement sent again already (the send then brings
    // the provider in line itself), so the event types are what is looked for.
    for action in [
        "AgreementSentForSignature",
        "SigningGroupInvited",
        "AgreementReopened",
        "AgreementCancelled",
    ] {
        log_line(&local, &format!("of {action} dispatched"), |line| {
            line.contains("dispatched") && line.contains(action)
        })
        .await;
    }
    // Newest first, and the walk is all there.
    let listed = client
        .get("/agreements?lookup_key=lease-42&limit=100")
        .await;
    let listed_ids: Vec<&str> = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed_ids.len(), walked.len());
    assert_eq!(
        listed_ids.first().copied(),
        walked.last().map(String::as_str)
    );
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_callbacks_and_limits_over_http() {
    let local = LocalProcess::start(
        BINARY,
        &[
            (
                "COUNTERSIGN_API_KEYS",
                "dev-key=dev-tenant,other-key=other-tenant",
            ),
            ("COUNTERSIGN_WEBHOOK_SECRETS", "new-secret,old-secret"),
        ],
    );
    let client = local.client("dev-key");
    let other = local.client("other-key");
    let id = sent(&client, &two_signers()).await;

    // Another tenant neither sees nor changes it.
    for reply in [
        other.get(&format!("/agreements/{id}")).await,
        other
            .lifecycle(&id, json!({"lifecycle_state": "open"}))
            .await,
        other.get(&format!("/agreements/{id}/history")).await,
    ] {
        assert_eq!(
            (reply.status, reply.error_type()),
            (404, "AGREEMENT_NOT_FOUND")
        );
    }
    let listed = other.get("/agreements?lookup_key=lease-42").await;
    assert_eq!(listed.data(), &json!([]));
    let unauthenticated = local
        .client("no-such-key")
        .get(&format!("/agreements/{id}"))
        .await;
    assert_eq!(
        (unauthenticated.status, unauthenticated.error_type()),
        (401, "UNAUTHORIZED")
    );
    let request_id = unauthenticated
        .header("x-request-id")
        .expect("X-Request-Id")
        .to_owned();
    assert_eq!(
        unauthenticated.body["error"]["request_id"],
        json!(request_id)
    );

    // A provider webhook posted by hand, signed with the previous secret (rotation).
    let before = client.history(&id).await.len();
    let event = json!({"id": "evt_e2e_1", "type": "participant.signed",
        "created_at": "2026-11-23T10:00:00Z", "data": {"agreement_id": id, "participant_id": "ada"}});
    let body = event.to_string().into_bytes();
    let forged = sandbox_signature(b"not-the-secret", &body);
    let reply = client
        .send_raw(
            "/callbacks/sandbox",
            body.clone(),
            &[("countersign-signature", &forged)],
        )
        .await;
    assert_eq!((reply.status, reply.error_type()), (401, "UNAUTHORIZED"));
    let stale = sandbox_signature_at(b"old-secret", unix_now() - 400, &body);
    let reply = client
        .send_raw(
            "/callbacks/sandbox",
            body.clone(),
            &[("countersign-signature", &stale)],
        )
        .await;
    assert_eq!((reply.status, reply.error_type()), (401, "UNAUTHORIZED"));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        client.history(&id).await.len(),
        before,
        "a refused webhook stores nothing"
    );

    // Delivered twice: the second time after the first was applied and left the inbox (while
    // it is still there, the inbox keeps the second as the same event), so it meets the
    // provider-event mark and is recorded as a duplicate.
    let signature = sandbox_signature(b"old-secret", &body);
    let mut agreement = Value::Null;
    for delivery in 0..2 {
        let reply = client
            .send_raw(
                "/callbacks/sandbox",
                body.clone(),
                &[("countersign-signature", &signature)],
            )
            .await;
        assert_eq!(reply.status, 202, "{:?}", reply.body);
        if delivery == 0 {
            agreement = client
                .wait_for(&id, "ada signed", |a| {
                    participant(a, "ada")["status"] == "SIGNATURE_COMPLETE"
                })
                .await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    let history = loop {
        let history = client.history(&id).await;
        if history.len() >= before + 2 || std::time::Instant::now() > deadline {
            break history;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let tail: Vec<String> = types(&history[before..]);
    assert_eq!(
        tail,
        vec!["ParticipantSigned", "ProviderEventIgnored"],
        "applied exactly once"
    );
    assert_eq!(
        agreement["version"], history[before]["version"],
        "the duplicate left the version alone"
    );

    // Over 1 MiB is refused before anything is read into an agreement.
    let huge = json!({"metadata": {"lookup_key": "x".repeat(1024 * 1024 + 10)}});
    let reply = client.post("/agreements", &huge).await;
    assert_eq!(
        (reply.status, reply.error_type()),
        (413, "PAYLOAD_TOO_LARGE")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_closes_the_sandbox_and_the_consumer_api() {
    // A one-hour window that starts two hours from now (UTC): closed for the whole test.
    let hour = (unix_now() / 3600 + 2) % 24;
    let hours = format!("{hour:02}:00-{:02}:00@UTC", (hour + 1) % 24);
    let local = LocalProcess::start(BINARY, &[("SERVICE_HOURS", &hours)]);
    let client = local.client("dev-key");

    let reply = client.post("/agreements", &two_signers()).await;
    assert_eq!(
        (reply.status, reply.error_type()),
        (503, "SERVICE_UNAVAILABLE")
    );
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!(
        (3600..=2 * 3600).contains(&retry_after),
        "opens in 1 to 2 hours: {retry_after}"
    );

    // Callbacks are never closed: a verified event for an unknown agreement is acknowledged.
    let body = json!({"id": "evt_closed", "type": "participant.signed", "created_at": "2026-11-23T10:00:00Z",
        "data": {"agreement_id": "unknownagreement000000000", "participant_id": "ada"}})
    .to_string()
    .into_bytes();
    let signature = sandbox_signature(b"sandbox-dev-secret", &body);
    let reply = client
        .send_raw(
            "/callbacks/sandbox",
            body.clone(),
            &[("countersign-signature", &signature)],
        )
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.body);
    drop(local);

    // Switched off, the sandbox is gone whole: its routes and its provider's callback route, so
    // its (development) secret verifies nothing.
    let local = LocalProcess::start(BINARY, &[("COUNTERSIGN_SANDBOX", "off")]);
    let client = local.client("dev-key");
    let reply = client
        .post(
            "/sandbox/agreements/unknownagreement000000000/expire",
            &json!(null),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_type()),
        (404, "NOT_FOUND"),
        "sandbox routes are gone: {:?}",
        reply.body
    );
    let signature = sandbox_signature(b"sandbox-dev-secret", &body);
    let reply = client
        .send_raw(
            "/callbacks/sandbox",
            body,
            &[("countersign-signature", &signature)],
        )
        .await;
    assert_eq!(
        (reply.status, reply.error_type()),
        (404, "NOT_FOUND"),
        "the sandbox's callback route is gone: {:?}",
        reply.body
    );
}

#[test]
fn the_development_credentials_are_refused_beyond_loopback() {
    let start = |vars: &[(&str, &str)]| {
        let mut command = std::process::Command::new(BINARY);
        command
            .env("COUNTERSIGN_HOST", "0.0.0.0")
            .env("COUNTERSIGN_PORT", "0");
        for (name, value) in vars {
            command.env(name, value);
        }
        command.output().expect("the binary runs")
    };
    let output = start(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("COUNTERSIGN_API_KEYS"));

    let output = start(&[(
        "COUNTERSIGN_API_KEYS",
        "a-real-key-of-32-characters-long=t1",
    )]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("COUNTERSIGN_WEBHOOK_SECRETS"), "{stderr}");
    assert!(stderr.contains("published development secret"), "{stderr}");
    assert!(
        !stderr.contains("sandbox-dev-secret"),
        "no secret in a message: {stderr}"
    );
}

#[test]
fn bad_configuration_is_refused_at_start_naming_the_variable() {
    let output = std::process::Command::new(BINARY)
        .env("COUNTERSIGN_PORT", "eighty")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("COUNTERSIGN_PORT"), "{stderr}");

    // Out of range is refused, not clamped.
    let output = std::process::Command::new(BINARY)
        .env("COUNTERSIGN_DEFAULT_EXPIRY_DAYS", "366")
        .output()
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COUNTERSIGN_DEFAULT_EXPIRY_DAYS"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_variable_set_but_blank_counts_as_unset() {
    let blank: Vec<(&str, &str)> = [
        "COUNTERSIGN_SANDBOX",
        "COUNTERSIGN_API_KEYS",
        "COUNTERSIGN_WEBHOOK_SECRETS",
        "SERVICE_HOURS",
        "COUNTERSIGN_DEFAULT_EXPIRY_DAYS",
        "COUNTERSIGN_CALLBACK_MAX_RECEIVES",
        "COUNTERSIGN_STORE",
        "COUNTERSIGN_DOCUMENTS_DIR",
        "COUNTERSIGN_TEST_MODE_PROVIDER",
        "COUNTERSIGN_ZIGNED_CLIENT_ID",
        "COUNTERSIGN_ZIGNED_CLIENT_SECRET",
    ]
    .into_iter()
    .map(|name| (name, "  "))
    .collect();
    let local = LocalProcess::start(BINARY, &blank);
    // The defaults: the development key, the sandbox on, always open, 120 days.
    let client = local.client("dev-key");
    let created = client
        .post("/agreements", &json!({"test_mode": true}))
        .await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(created.data()["expires_in_days"], 120, "{:?}", created.body);
    let id = created.data()["id"].as_str().unwrap().to_owned();
    let reply = client
        .post(&format!("/sandbox/agreements/{id}/expire"), &json!({}))
        .await;
    assert_ne!(reply.status, 404, "the sandbox is on: {:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_the_walk_is_the_same() {
    let endpoint = countersign_test_kit::moto::endpoint();
    let table = countersign_test_kit::moto::unique_name("local");
    let local = LocalProcess::start(
        BINARY,
        &[
            ("COUNTERSIGN_STORE", "dynamodb"),
            ("COUNTERSIGN_DYNAMODB_TABLE", &table),
            ("COUNTERSIGN_DYNAMODB_CREATE_TABLE", "true"),
            ("COUNTERSIGN_SWEEP_INTERVAL_SECS", "0.2"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert!(
        local
            .logs()
            .iter()
            .any(|line| line.contains(&format!("table {table}"))),
        "the start-up log names the table: {:?}",
        local.logs()
    );
    let client = local.client("dev-key");

    let id = sent(&client, &two_signers()).await;
    sandbox(&client, &id, "participants/ada/sign").await;
    sandbox(&client, &id, "participants/bob/sign").await;
    let agreement = client
        .wait_for(&id, "fulfilled", |a| a["status"] == "fulfilled")
        .await;
    assert_eq!(
        summary(&agreement),
        (
            "fulfilled".into(),
            json!("SIGNATURE_COMPLETE"),
            "PROCEED".into()
        )
    );

    let expiring = sent(&client, &two_signers()).await;
    sandbox(&client, &expiring, "expire").await;
    client
        .wait_for(&expiring, "expired", |a| a["status"] == "expired")
        .await;

    // Events come from the table's stream here: the same lines as on the embedded store.
    assert_events_match_history(&local, &client, &id).await;
    assert_events_match_history(&local, &client, &expiring).await;

    // The table holds it: a second process on the same table sees the agreement.
    drop(local);
    let again = LocalProcess::start(
        BINARY,
        &[
            ("COUNTERSIGN_STORE", "dynamodb"),
            ("COUNTERSIGN_DYNAMODB_TABLE", &table),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    assert_eq!(
        again.client("dev-key").agreement(&id).await["status"],
        "fulfilled"
    );
}

/// Query the table directly: how many callbacks the inbox holds.
async fn inbox_items(endpoint: &str, table: &str) -> usize {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let output = aws_sdk_dynamodb::Client::new(&sdk)
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("INBOX".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("moto answers");
    output.items().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_dynamodb_every_acknowledged_callback_survives_a_kill_9() {
    let endpoint = countersign_test_kit::moto::endpoint();
    let table = countersign_test_kit::moto::unique_name("crash");
    let env = [
        ("COUNTERSIGN_STORE", "dynamodb"),
        ("COUNTERSIGN_DYNAMODB_TABLE", table.as_str()),
        ("COUNTERSIGN_DYNAMODB_CREATE_TABLE", "true"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let first = LocalProcess::start(BINARY, &env);
    let client = first.client("dev-key");
    const AGREEMENTS: usize = 12;
    const SIGNERS: usize = 5;
    let signers: Vec<Value> = (0..SIGNERS)
        .map(|n| {
            json!({"id": format!("s{n}"), "name": format!("Signer {n}"),
            "email": format!("s{n}@example.com"), "role": "signer"})
        })
        .collect();
    let body = agreement_body(json!(signers), json!({"enabled": false}));
    let mut ids = Vec::new();
    for _ in 0..AGREEMENTS {
        ids.push(sent(&client, &body).await);
    }

    // A burst of signed webhooks; the process is killed (SIGKILL) once half are acknowledged.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let http = countersign_test_kit::http_client();
    let mut burst = Vec::new();
    for id in &ids {
        for n in 0..SIGNERS {
            let (id, acknowledged, http) = (id.clone(), acknowledged.clone(), http.clone());
            let url = format!("{}/callbacks/sandbox", first.base_url);
            burst.push(tokio::spawn(async move {
                let body = json!({"id": format!("evt-{id}-{n}"), "type": "participant.signed",
                    "created_at": "2026-11-23T10:00:00Z",
                    "data": {"agreement_id": id, "participant_id": format!("s{n}")}})
                .to_string();
                let signature = sandbox_signature(b"sandbox-dev-secret", body.as_bytes());
                let sent = http
                    .post(url)
                    .header("countersign-signature", signature)
                    .body(body)
                    .send()
                    .await;
                // Killed mid-request is no acknowledgement: nothing was promised.
                if let Ok(response) = sent {
                    if response.status() == 202 {
                        acknowledged.lock().unwrap().push((id, format!("s{n}")));
                    }
                }
            }));
        }
    }
    let total = AGREEMENTS * SIGNERS;
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    while acknowledged.lock().unwrap().len() < total / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "half the burst was never acknowledged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    drop(first); // SIGKILL
    for task in burst {
        task.await.expect("the burst task ends");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let left = inbox_items(&endpoint, &table).await;
    eprintln!(
        "kill -9 after {} of {total} callbacks acknowledged; {left} left in the inbox",
        acknowledged.len()
    );

    // The next start applies what the killed one acknowledged but had not applied.
    let second = LocalProcess::start(BINARY, &env);
    let client = second.client("dev-key");
    // What the killed process had claimed is held until its claim runs out (10 s): wait longer
    // than that, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for (id, participant_id) in &acknowledged {
        loop {
            let agreement = client.agreement(id).await;
            if participant(&agreement, participant_id)["status"] == "SIGNATURE_COMPLETE" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{participant_id} of {id} was acknowledged but never applied: {agreement:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    for id in &ids {
        let signed = client
            .history(id)
            .await
            .iter()
            .filter(|entry| entry["type"] == "ParticipantSigned")
            .count();
        let promised = acknowledged.iter().filter(|(of, _)| of == id).count();
        assert!(
            signed >= promised && signed <= SIGNERS,
            "{id}: {signed} signatures applied, {promised} acknowledged"
        );
    }
    while inbox_items(&endpoint, &table).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the inbox never emptied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The first line of standard error that `wanted` picks, once it is there.
async fn log_line(local: &LocalProcess, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
    loop {
        if let Some(line) = local.logs().into_iter().find(|line| wanted(line)) {
            return line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line {what}: {:?}",
            local.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The line a request leaves on standard error, once it is there.
async fn request_log_line(local: &LocalProcess, request_id: &str) -> String {
    log_line(local, &format!("for {request_id}"), |line| {
        line.contains(request_id) && line.contains("answered")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_leaves_one_plain_log_line() {
    // Standard error is a pipe here, as under a log collector: no terminal colours in it.
    let local = LocalProcess::start(BINARY, &[]);
    let client = local.client("dev-key");
    let reply = client
        .send(
            "GET",
            "/agreements/no-such-agreement",
            None,
            &[("x-request-id", "req-log-check-1")],
        )
        .await;
    assert_eq!(reply.status, 404);
    let line = request_log_line(&local, "req-log-check-1").await;
    for part in ["request_id=req-log-check-1", "method=GET", "status=404"] {
        assert!(line.contains(part), "{part} in {line}");
    }
    let logs = local.logs();
    assert!(
        logs.iter().all(|line| !line.contains('\u{1b}')),
        "no ANSI escapes: {logs:?}"
    );
    assert_eq!(
        logs.iter()
            .filter(|line| line.contains("req-log-check-1"))
            .count(),
        1,
        "one line per request: {logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_takes_levels_targets_and_span_filters() {
    // A level for everything and one for the router's target: the request line is at info.
    let quiet = LocalProcess::start(BINARY, &[("RUST_LOG", "warn")]);
    let targeted = LocalProcess::start(BINARY, &[("RUST_LOG", "warn,countersign_api=info")]);
    // A span filter: only what happens inside a request, at info.
    let spans = LocalProcess::start(BINARY, &[("RUST_LOG", "warn,[request]=info")]);
    for (local, id) in [
        (&quiet, "req-log-quiet"),
        (&targeted, "req-log-targets"),
        (&spans, "req-log-spans"),
    ] {
        let reply = local
            .client("dev-key")
            .send("GET", "/agreements", None, &[("x-request-id", id)])
            .await;
        assert_eq!(reply.status, 200);
    }
    request_log_line(&targeted, "req-log-targets").await;
    request_log_line(&spans, "req-log-spans").await;

    // A forged callback leaves a warning, after any line of the request above: once it is read,
    // so would a request line have been.
    let forged = quiet
        .client("dev-key")
        .send_raw("/callbacks/sandbox", b"{}".to_vec(), &[])
        .await;
    assert_eq!(forged.status, 401);
    log_line(&quiet, "of the forged callback", |line| {
        line.contains("verification failed")
    })
    .await;
    let logs = quiet.logs();
    assert!(
        logs.iter().all(|line| !line.contains("req-log-quiet")),
        "warn hides the request log: {logs:?}"
    );
    // info events outside any request (start-up) are not shown with the span filter.
    let logs = spans.logs();
    assert!(
        logs.iter()
            .all(|line| !line.contains("INFO") || line.contains("request")),
        "only the request's info lines: {logs:?}"
    );
}
