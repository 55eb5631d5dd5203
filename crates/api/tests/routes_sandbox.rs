//! Sandbox routes (SPEC section 6), and agreements walked through the handlers to every row of
//! the status tables of SPEC section 1.

mod support;

use chrono::Duration;
use http::Method;
use serde_json::{json, Value};

use countersign_service::CallbackOutcome;
use support::*;

// ---------------------------------------------------------------------------------------------
// The routes themselves

#[tokio::test]
async fn sandbox_actions_answer_202_with_a_signed_callback_that_travels_the_callback_path() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    let reply = h.sandbox_participant(&id, "ada", "sign").await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(reply.data()["agreement_id"], id.as_str());
    assert_eq!(reply.data()["participant_id"], "ada");
    assert_eq!(reply.data()["provider"], "sandbox");

    // Queued like a provider's callback, not applied by the route.
    assert_eq!(h.agreement(&id).await, before);
    let queued = h.queue.take();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].provider, "sandbox");
    assert_eq!(queued[0].event_type, "participant.signed");
    assert_eq!(queued[0].participant.id.as_deref(), Some("ada"));
    assert!(!queued[0].event_id.is_empty());
    for event in &queued {
        h.processor.process(event).await.unwrap();
    }
    assert_eq!(
        participant(&h.agreement(&id).await, "ada")["status"],
        "SIGNATURE_COMPLETE"
    );
}

#[tokio::test]
async fn each_sandbox_action_emits_its_provider_event_type() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    for (action, event_type) in [
        ("sign", "participant.signed"),
        ("refuse", "participant.refused"),
        ("bounce", "participant.delivery_failed"),
        ("fail-identity", "participant.identity_check_failed"),
    ] {
        let reply = h.sandbox_participant(&id, "bob", action).await;
        assert_eq!(reply.status, 202, "{action}: {}", reply.text);
        let queued = h.queue.take();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].event_type, event_type);
    }
    let reply = h
        .post_empty(&format!("/v1/sandbox/agreements/{id}/fail"))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let queued = h.queue.take();
    assert_eq!(queued[0].event_type, "agreement.failed");
    assert_eq!(queued[0].participant.id, None);
    // Every emitted event has its own id.
    let a = h.sandbox_participant(&id, "bob", "sign").await;
    let b = h.sandbox_participant(&id, "bob", "sign").await;
    assert_ne!(a.data()["event_id"], b.data()["event_id"]);
}

#[tokio::test]
async fn sandbox_callbacks_are_verified_with_the_provider_secret() {
    // The sandbox signs with a secret the verifier does not know: its callbacks are refused,
    // which shows they do go through verification.
    let h = Harness::with(Options {
        signing_secret: b"unknown-to-the-verifier".to_vec(),
        ..Options::default()
    });
    let id = h.sent(&ready_body(true)).await;
    let reply = h.sandbox_participant(&id, "ada", "sign").await;
    reply.expect_error(401, "UNAUTHORIZED");
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn sandbox_routes_are_404_for_agreements_not_in_test_mode() {
    let h = Harness::new();
    let id = h.sent(&ready_body(false)).await;
    let before = h.agreement(&id).await;
    for path in [
        format!("/v1/sandbox/agreements/{id}/participants/ada/sign"),
        format!("/v1/sandbox/agreements/{id}/participants/ada/refuse"),
        format!("/v1/sandbox/agreements/{id}/fail"),
        format!("/v1/sandbox/agreements/{id}/expire"),
    ] {
        h.post_empty(&path)
            .await
            .expect_error(404, "AGREEMENT_NOT_FOUND");
    }
    assert!(h.queue.take().is_empty());
    assert_eq!(h.agreement(&id).await, before);
}

#[tokio::test]
async fn sandbox_routes_are_404_for_unknown_agreements() {
    let h = Harness::new();
    for path in [
        "/v1/sandbox/agreements/nosuchagreement0000000000/participants/ada/sign",
        "/v1/sandbox/agreements/nosuchagreement0000000000/fail",
        "/v1/sandbox/agreements/nosuchagreement0000000000/expire",
    ] {
        h.post_empty(path)
            .await
            .expect_error(404, "AGREEMENT_NOT_FOUND");
    }
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn sandbox_routes_are_absent_when_switched_off() {
    let h = Harness::with(Options {
        sandbox_enabled: false,
        ..Options::default()
    });
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    for path in [
        format!("/v1/sandbox/agreements/{id}/participants/ada/sign"),
        format!("/v1/sandbox/agreements/{id}/fail"),
        format!("/v1/sandbox/agreements/{id}/expire"),
    ] {
        let reply = h.post_empty(&path).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        let error_type = reply.error()["type"].as_str().unwrap().to_owned();
        reply.expect_error(404, &error_type);
        // As for any path that does not exist.
        let unknown = h.post_empty("/v1/no/such/route").await;
        assert_eq!(error_type, unknown.error()["type"].as_str().unwrap());
    }
    assert!(h.queue.take().is_empty());
    assert_eq!(h.agreement(&id).await, before);
    // The sandbox provider's own callback route goes with the switch (issue 8): off, even a
    // correctly signed sandbox webhook finds no provider.
    let body = event_body("evt_real", "participant.signed", &id, Some("ada"), h.now());
    let reply = h
        .callback(&body, Some(&signature(SECRET, h.now().timestamp(), &body)))
        .await;
    reply.expect_error(404, "NOT_FOUND");
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn switched_off_sandbox_routes_are_404_whatever_the_method() {
    let h = Harness::with(Options {
        sandbox_enabled: false,
        ..Options::default()
    });
    let id = h.create_id(&ready_body(true)).await;
    for method in [Method::GET, Method::DELETE, Method::PUT] {
        let reply = h
            .send(Call::new(
                method.clone(),
                &format!("/v1/sandbox/agreements/{id}/fail"),
            ))
            .await;
        assert_eq!(
            reply.status, 404,
            "{method}: a switched-off route does not exist, so no 405 either: {}",
            reply.text
        );
    }
}

#[tokio::test]
async fn an_unknown_participant_is_an_error_and_emits_nothing() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let reply = h.sandbox_participant(&id, "zed", "sign").await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    let error_type = reply.error()["type"].as_str().unwrap().to_owned();
    let error = reply.expect_error(404, &error_type);
    assert!(
        error["message"].as_str().unwrap().contains("zed"),
        "{error}"
    );
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn an_unknown_action_is_an_error_and_emits_nothing() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    for action in ["approve", "SIGN", "fail_identity", "expire"] {
        let reply = h.sandbox_participant(&id, "ada", action).await;
        assert!(
            reply.status == 404 || reply.status == 400,
            "{action}: {}",
            reply.text
        );
        let error_type = reply.error()["type"].as_str().unwrap().to_owned();
        reply.expect_error(reply.status, &error_type);
    }
    assert!(h.queue.take().is_empty());
    assert_eq!(h.agreement(&id).await["version"], 2);
}

#[tokio::test]
async fn expire_moves_expires_at_to_now_and_the_next_sweep_expires() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.advance(Duration::hours(2));
    let reply = h
        .post_empty(&format!("/v1/sandbox/agreements/{id}/expire"))
        .await;
    let data = reply.expect_agreement(200);
    assert_eq!(parse_time(&data["expires_at"]), h.now());
    assert_eq!(
        data["status"], "pending",
        "the sweep expires it, not the route"
    );

    let report = h.sweep().await;
    assert_eq!(report.expired, 1);
    let expired = h.agreement(&id).await;
    expect_row(&expired, "expired", json!("SIGNATURE_EXPIRED"), "STOPPED");
}

#[tokio::test]
async fn expire_of_an_agreement_that_is_not_pending_is_refused() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let reply = h
        .post_empty(&format!("/v1/sandbox/agreements/{id}/expire"))
        .await;
    reply.expect_error(409, "INVALID_TRANSITION");
    assert_eq!(h.agreement(&id).await["expires_at"], Value::Null);
    assert_eq!(h.sweep().await.expired, 0);
}

// ---------------------------------------------------------------------------------------------
// Every row of the status tables, reached through the handlers

#[tokio::test]
async fn walk_to_fulfilled() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.advance(Duration::minutes(5));
    assert!(matches!(
        h.act(&id, "ada", "sign").await[..],
        [CallbackOutcome::Applied { .. }]
    ));
    let half = h.agreement(&id).await;
    expect_row(&half, "pending", json!("SIGNATURE_ONGOING"), "WAITING");
    assert_eq!(participant(&half, "ada")["status"], "SIGNATURE_COMPLETE");
    assert!(participant(&half, "ada")["signed_at"].is_string());
    assert_eq!(half["completed_at"], Value::Null);

    h.advance(Duration::minutes(5));
    h.act(&id, "bob", "sign").await;
    let done = h.agreement(&id).await;
    expect_row(&done, "fulfilled", json!("SIGNATURE_COMPLETE"), "PROCEED");
    assert_eq!(done["journey_stopped_reason"], Value::Null);
    assert_eq!(parse_time(&done["completed_at"]), h.now());
    assert_eq!(participant(&done, "bob")["status"], "SIGNATURE_COMPLETE");
    let history = h.history_types(&id).await;
    assert_eq!(
        history[history.len() - 2..],
        ["ParticipantSigned", "AgreementFulfilled"]
    );
    // Observers never sign: they are not waited for.
    assert_eq!(done["observers"][0]["id"], "obs");
}

#[tokio::test]
async fn walk_to_refused() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.act(&id, "ada", "sign").await;
    h.act(&id, "bob", "refuse").await;
    let refused = h.agreement(&id).await;
    expect_row(&refused, "refused", json!("SIGNATURE_REFUSED"), "STOPPED");
    assert_eq!(refused["journey_stopped_reason"], "SIGNATURE_REFUSED");
    assert_eq!(participant(&refused, "bob")["status"], "SIGNATURE_REFUSED");
    assert_eq!(participant(&refused, "ada")["status"], "SIGNATURE_COMPLETE");
    let history = h.history_types(&id).await;
    assert!(history.ends_with(&[
        "ParticipantRefused".to_owned(),
        "AgreementRefused".to_owned()
    ]));
    // Terminal: nothing moves it again.
    h.act(&id, "ada", "refuse").await;
    assert_eq!(h.agreement(&id).await, refused);
}

#[tokio::test]
async fn walk_to_failed() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let reply = h
        .post_empty(&format!("/v1/sandbox/agreements/{id}/fail"))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    h.pump().await;
    let failed = h.agreement(&id).await;
    expect_row(&failed, "failed", json!("OTHER_FAILURE"), "STOPPED");
    assert_eq!(failed["journey_stopped_reason"], "OTHER_FAILURE");
    assert_eq!(
        h.history_types(&id).await.last().map(String::as_str),
        Some("AgreementFailed")
    );
}

#[tokio::test]
async fn walk_to_expired_keeps_participant_statuses() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.act(&id, "ada", "sign").await;
    let reply = h
        .post_empty(&format!("/v1/sandbox/agreements/{id}/expire"))
        .await;
    reply.expect_agreement(200);
    assert_eq!(h.sweep().await.expired, 1);
    let expired = h.agreement(&id).await;
    expect_row(&expired, "expired", json!("SIGNATURE_EXPIRED"), "STOPPED");
    assert_eq!(expired["journey_stopped_reason"], "SIGNATURE_EXPIRED");
    assert_eq!(participant(&expired, "ada")["status"], "SIGNATURE_COMPLETE");
    assert_eq!(participant(&expired, "bob")["status"], "SIGNATURE_PENDING");
    assert_eq!(
        h.history_types(&id).await.last().map(String::as_str),
        Some("AgreementExpired")
    );
    // A second sweep has nothing to do; a late signature is ignored.
    assert_eq!(h.sweep().await.expired, 0);
    h.act(&id, "bob", "sign").await;
    assert_eq!(h.agreement(&id).await, expired);
}

#[tokio::test]
async fn an_agreement_expires_on_its_own_once_expires_at_passes() {
    let h = Harness::new();
    let mut body = ready_body(false);
    body["expires_in_days"] = json!(3);
    let id = h.sent(&body).await;
    h.advance(Duration::days(3) - Duration::seconds(1));
    assert_eq!(h.sweep().await.expired, 0);
    assert_eq!(h.agreement(&id).await["status"], "pending");
    h.advance(Duration::seconds(1));
    assert_eq!(h.sweep().await.expired, 1);
    expect_row(
        &h.agreement(&id).await,
        "expired",
        json!("SIGNATURE_EXPIRED"),
        "STOPPED",
    );
}

#[tokio::test]
async fn the_sweep_pages_through_every_due_agreement() {
    let h = Harness::new();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = h.sent(&ready_body(true)).await;
        h.post_empty(&format!("/v1/sandbox/agreements/{id}/expire"))
            .await
            .expect_agreement(200);
        ids.push(id);
    }
    let still_pending = h.sent(&ready_body(true)).await;
    let report = h.sweep().await;
    assert_eq!(report.expired, 5);
    for id in &ids {
        assert_eq!(h.agreement(id).await["status"], "expired");
    }
    assert_eq!(h.agreement(&still_pending).await["status"], "pending");
}

#[tokio::test]
async fn walk_to_cancelled_from_draft_open_and_pending() {
    let h = Harness::new();
    let cancel =
        json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_participant"}});

    let draft = h.create_id(&ready_body(true)).await;
    let pending = h.sent(&ready_body(true)).await;
    h.act(&pending, "ada", "sign").await;
    let open = h.sent(&ready_body(true)).await;
    h.lifecycle(&open, &json!({"lifecycle_state": "open"}))
        .await
        .expect_agreement(200);

    for id in [&draft, &open, &pending] {
        let data = h.lifecycle(id, &cancel).await.expect_agreement(200).clone();
        expect_row(&data, "cancelled", json!("SIGNATURE_CANCELLED"), "STOPPED");
        assert_eq!(data["cancellation_reason"], "invalid_participant");
        // Terminal: provider events are ignored, the sandbox cannot move it.
        h.act(id, "bob", "sign").await;
        assert_eq!(h.agreement(id).await, data);
    }
}

#[tokio::test]
async fn walk_to_pending_stopped_by_a_bounce() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.act(&id, "bob", "bounce").await;
    let stopped = h.agreement(&id).await;
    expect_row(&stopped, "pending", json!("SIGNATURE_ONGOING"), "STOPPED");
    assert_eq!(
        stopped["journey_stopped_reason"],
        "SIGNATORY_DELIVERY_FAILED"
    );
    assert_eq!(
        participant(&stopped, "bob")["status"],
        "SIGNATORY_DELIVERY_FAILED"
    );
    let history = h.history(&id).await;
    let tail: Vec<String> = types(&history[history.len() - 2..]);
    assert_eq!(
        tail,
        ["ParticipantDeliveryFailed", "CustomerJourneyStopped"]
    );
    assert_eq!(
        history.last().unwrap()["reason"],
        "SIGNATORY_DELIVERY_FAILED"
    );

    // Final for the participant; the envelope stays pending until it expires.
    h.act(&id, "bob", "sign").await;
    h.act(&id, "ada", "sign").await;
    let later = h.agreement(&id).await;
    expect_row(&later, "pending", json!("SIGNATURE_ONGOING"), "STOPPED");
    assert_eq!(
        participant(&later, "bob")["status"],
        "SIGNATORY_DELIVERY_FAILED"
    );
    assert_eq!(participant(&later, "ada")["status"], "SIGNATURE_COMPLETE");
    // CustomerJourneyStopped is said once.
    assert_eq!(
        h.history_types(&id)
            .await
            .iter()
            .filter(|t| *t == "CustomerJourneyStopped")
            .count(),
        1
    );
    // It expires like any pending agreement.
    h.post_empty(&format!("/v1/sandbox/agreements/{id}/expire"))
        .await
        .expect_agreement(200);
    h.sweep().await;
    expect_row(
        &h.agreement(&id).await,
        "expired",
        json!("SIGNATURE_EXPIRED"),
        "STOPPED",
    );
}

#[tokio::test]
async fn walk_to_pending_stopped_by_three_failed_identity_checks() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    for attempt in 1..=2 {
        h.act(&id, "ada", "fail-identity").await;
        let agreement = h.agreement(&id).await;
        expect_row(&agreement, "pending", json!("SIGNATURE_ONGOING"), "WAITING");
        let ada = participant(&agreement, "ada");
        assert_eq!(ada["status"], "SIGNATURE_PENDING", "attempt {attempt}");
        assert_eq!(ada["identity_check_failures"], attempt);
    }
    h.act(&id, "ada", "fail-identity").await;
    let stopped = h.agreement(&id).await;
    expect_row(&stopped, "pending", json!("SIGNATURE_ONGOING"), "STOPPED");
    assert_eq!(stopped["journey_stopped_reason"], "IDENTITY_CHECK_FAILED");
    let ada = participant(&stopped, "ada");
    assert_eq!(ada["status"], "IDENTITY_CHECK_FAILED");
    assert_eq!(ada["identity_check_failures"], 3);
    let history = h.history_types(&id).await;
    assert_eq!(
        history
            .iter()
            .filter(|t| *t == "ParticipantIdentityCheckFailed")
            .count(),
        3
    );
    assert_eq!(
        history.last().map(String::as_str),
        Some("CustomerJourneyStopped")
    );

    // A fourth failure, or a signature, changes nothing for a final participant.
    h.act(&id, "ada", "fail-identity").await;
    h.act(&id, "ada", "sign").await;
    assert_eq!(h.agreement(&id).await, stopped);
}

#[tokio::test]
async fn reopening_a_stopped_agreement_resets_participants_and_the_journey() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.act(&id, "ada", "sign").await;
    h.act(&id, "bob", "bounce").await;
    assert_eq!(h.agreement(&id).await["journey"], "STOPPED");

    let reply = h.lifecycle(&id, &json!({"lifecycle_state": "open"})).await;
    let open = reply.expect_agreement(200);
    expect_row(open, "open", Value::Null, "WAITING");
    assert_eq!(open["journey_stopped_reason"], Value::Null);
    assert_eq!(open["expires_at"], Value::Null);
    for p in open["participants"].as_array().unwrap() {
        assert_eq!(p["status"], "SIGNATURE_PENDING", "{p}");
        assert_eq!(p["signed_at"], Value::Null, "{p}");
        assert_eq!(p["identity_check_failures"], 0, "{p}");
    }
    // Events of the abandoned round do not apply to an open agreement.
    h.act(&id, "bob", "sign").await;
    assert_eq!(
        participant(&h.agreement(&id).await, "bob")["status"],
        "SIGNATURE_PENDING"
    );

    // The next round starts from nothing and can be completed.
    h.lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await
        .expect_agreement(200);
    h.act(&id, "ada", "sign").await;
    h.act(&id, "bob", "sign").await;
    expect_row(
        &h.agreement(&id).await,
        "fulfilled",
        json!("SIGNATURE_COMPLETE"),
        "PROCEED",
    );
}

fn invited_groups(history: &[Value]) -> Vec<u64> {
    history
        .iter()
        .filter(|e| e["type"] == "SigningGroupInvited")
        .map(|e| {
            e["signing_group"]
                .as_u64()
                .expect("SigningGroupInvited names its group")
        })
        .collect()
}

#[tokio::test]
async fn grouped_signing_order_invites_the_next_group_only_once_the_previous_has_all_signed() {
    let h = Harness::new();
    let body = ready_with(
        json!([
            {"id": "g1a", "name": "One A", "email": "1a@example.com", "role": "signer", "signing_group": 1},
            {"id": "g1b", "name": "One B", "email": "1b@example.com", "role": "approver", "signing_group": 1},
            {"id": "g2", "name": "Two", "email": "2@example.com", "role": "signer", "signing_group": 2}
        ]),
        json!({"enabled": true, "grouped": true}),
    );
    let id = h.sent(&body).await;
    assert_eq!(invited_groups(&h.history(&id).await), [1]);
    let sent = h.agreement(&id).await;
    assert!(participant(&sent, "g1a")["invited_at"].is_string());
    assert!(participant(&sent, "g2")["invited_at"].is_null());

    // Group 2 has not been invited: its signature is ignored.
    let outcomes = h.act(&id, "g2", "sign").await;
    assert!(
        matches!(outcomes[..], [CallbackOutcome::Ignored { .. }]),
        "{outcomes:?}"
    );
    assert_eq!(
        participant(&h.agreement(&id).await, "g2")["status"],
        "SIGNATURE_PENDING"
    );

    h.act(&id, "g1a", "sign").await;
    assert_eq!(
        invited_groups(&h.history(&id).await),
        [1],
        "group 1 not done yet"
    );
    h.act(&id, "g1b", "sign").await;
    let history = h.history(&id).await;
    assert_eq!(invited_groups(&history), [1, 2]);
    let tail = types(&history[history.len() - 2..]);
    assert_eq!(tail, ["ParticipantSigned", "SigningGroupInvited"]);
    assert_eq!(h.agreement(&id).await["status"], "pending");

    h.act(&id, "g2", "sign").await;
    expect_row(
        &h.agreement(&id).await,
        "fulfilled",
        json!("SIGNATURE_COMPLETE"),
        "PROCEED",
    );
    assert_eq!(invited_groups(&h.history(&id).await), [1, 2]);
}

#[tokio::test]
async fn without_signing_order_everybody_is_invited_at_once() {
    let h = Harness::new();
    let body = ready_with(
        json!([
            {"id": "a", "name": "A", "email": "a@example.com", "signing_group": 1},
            {"id": "b", "name": "B", "email": "b@example.com", "signing_group": 2}
        ]),
        json!({"enabled": false, "grouped": true}),
    );
    let id = h.sent(&body).await;
    let sent = h.agreement(&id).await;
    for p in sent["participants"].as_array().unwrap() {
        assert!(p["invited_at"].is_string(), "{p}");
    }
    h.act(&id, "b", "sign").await;
    h.act(&id, "a", "sign").await;
    assert_eq!(h.agreement(&id).await["status"], "fulfilled");
}

#[tokio::test]
async fn sandbox_routes_of_another_tenant_are_not_found() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    for path in [
        format!("/v1/sandbox/agreements/{id}/participants/ada/sign"),
        format!("/v1/sandbox/agreements/{id}/fail"),
        format!("/v1/sandbox/agreements/{id}/expire"),
    ] {
        h.send(Call::new(Method::POST, &path).key(KEY_B))
            .await
            .expect_error(404, "AGREEMENT_NOT_FOUND");
    }
    assert!(h.queue.take().is_empty());
    assert_eq!(h.agreement(&id).await, before);
}

#[tokio::test]
async fn ungrouped_signing_order_invites_participants_one_by_one_in_list_order() {
    let h = Harness::new();
    let body = ready_with(
        json!([
            {"id": "first", "name": "First", "email": "first@example.com"},
            {"id": "second", "name": "Second", "email": "second@example.com"}
        ]),
        json!({"enabled": true, "grouped": false}),
    );
    let id = h.sent(&body).await;
    let sent = h.agreement(&id).await;
    assert!(participant(&sent, "first")["invited_at"].is_string());
    assert!(participant(&sent, "second")["invited_at"].is_null());

    let outcomes = h.act(&id, "second", "sign").await;
    assert!(
        matches!(outcomes[..], [CallbackOutcome::Ignored { .. }]),
        "{outcomes:?}"
    );
    h.act(&id, "first", "sign").await;
    assert!(participant(&h.agreement(&id).await, "second")["invited_at"].is_string());
    h.act(&id, "second", "sign").await;
    assert_eq!(h.agreement(&id).await["status"], "fulfilled");
    assert_eq!(invited_groups(&h.history(&id).await).len(), 2);
}

#[tokio::test]
async fn a_reopened_agreement_is_not_expired_by_later_sweeps() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.lifecycle(&id, &json!({"lifecycle_state": "open"}))
        .await
        .expect_agreement(200);
    h.advance(Duration::days(121));
    assert_eq!(h.sweep().await.expired, 0);
    expect_row(&h.agreement(&id).await, "open", Value::Null, "WAITING");
    // Sent again, its new expiry counts from the new sending.
    h.lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await
        .expect_agreement(200);
    h.advance(Duration::days(119));
    assert_eq!(h.sweep().await.expired, 0);
    h.advance(Duration::days(1));
    assert_eq!(h.sweep().await.expired, 1);
    assert_eq!(h.agreement(&id).await["status"], "expired");
}
