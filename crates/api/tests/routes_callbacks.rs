//! `POST /v1/callbacks/{provider}` (SPEC section 5): verification, acknowledgement, and what the
//! queued events do once applied.

mod support;

use chrono::Duration;
use http::Method;
use serde_json::{json, Value};

use countersign_service::CallbackOutcome;
use support::*;

/// A pending test-mode agreement with `ada` (signer) and `bob` (approver).
async fn pending(h: &Harness) -> String {
    h.sent(&ready_body(true)).await
}

fn signed_event(
    h: &Harness,
    event_id: &str,
    event_type: &str,
    agreement_id: &str,
    participant_id: Option<&str>,
) -> (String, String) {
    let body = event_body(event_id, event_type, agreement_id, participant_id, h.now());
    let sig = signature(SECRET, h.now().timestamp(), &body);
    (body, sig)
}

#[tokio::test]
async fn a_verified_callback_is_acknowledged_202_and_queued_not_applied() {
    let h = Harness::new();
    let id = pending(&h).await;
    let before = h.agreement(&id).await;
    let (body, sig) = signed_event(&h, "evt_1", "participant.signed", &id, Some("ada"));

    let reply = h.callback(&body, Some(&sig)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert!(reply.header("x-request-id").is_some());
    assert_eq!(reply.json["version"], "1.0");
    assert_eq!(reply.json["result_type"], "single");
    assert_eq!(reply.data()["event_id"], "evt_1");
    assert_eq!(reply.data()["agreement_id"], id.as_str());

    // Acknowledged before it is applied: the queue holds it, the agreement is as it was.
    assert_eq!(h.agreement(&id).await, before);
    let outcomes = h.pump().await;
    assert_eq!(outcomes, [CallbackOutcome::Applied { version: 3 }]);
    let after = h.agreement(&id).await;
    assert_eq!(participant(&after, "ada")["status"], "SIGNATURE_COMPLETE");
    assert_eq!(participant(&after, "bob")["status"], "SIGNATURE_PENDING");
    assert_eq!(after["version"], 3);
    assert_eq!(after["status"], "pending");
}

#[tokio::test]
async fn callbacks_need_no_api_key() {
    let h = Harness::new();
    let id = pending(&h).await;
    let (body, sig) = signed_event(&h, "evt_1", "participant.signed", &id, Some("ada"));
    // An API key of another tenant does not matter either: the signature authenticates.
    let reply = h
        .send(
            Call::new(Method::POST, "/v1/callbacks/sandbox")
                .key(KEY_B)
                .header("countersign-signature", &sig)
                .text(body),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(h.pump().await.len(), 1);
}

/// 401, nothing queued, nothing stored.
async fn assert_refused(h: &Harness, id: &str, body: &str, signature: Option<&str>) {
    let before = h.agreement(id).await;
    let history_before = h.history(id).await;
    let reply = h.callback(body, signature).await;
    reply.expect_error(401, "UNAUTHORIZED");
    assert!(h.queue.take().is_empty(), "nothing queued after a 401");
    assert_eq!(h.agreement(id).await, before, "nothing stored after a 401");
    assert_eq!(h.history(id).await, history_before);
}

#[tokio::test]
async fn a_callback_without_or_with_a_bad_signature_is_401_and_stores_nothing() {
    let h = Harness::new();
    let id = pending(&h).await;
    let (body, good) = signed_event(&h, "evt_1", "participant.refused", &id, Some("ada"));
    let t = h.now().timestamp();

    assert_refused(&h, &id, &body, None).await;
    assert_refused(&h, &id, &body, Some("")).await;
    assert_refused(&h, &id, &body, Some("garbage")).await;
    // Signed with another secret.
    assert_refused(
        &h,
        &id,
        &body,
        Some(&signature(b"not-the-secret", t, &body)),
    )
    .await;
    // A valid signature of another body.
    let other = body.replace("participant.refused", "participant.signed");
    assert_refused(&h, &id, &other, Some(&good)).await;
    // The right tag under another timestamp.
    let tag = v1(SECRET, t, &body);
    assert_refused(&h, &id, &body, Some(&format!("t={},v1={tag}", t - 1))).await;
    // Tag truncated, or in the wrong scheme.
    assert_refused(&h, &id, &body, Some(&format!("t={t},v1={}", &tag[..62]))).await;
    assert_refused(&h, &id, &body, Some(&format!("t={t},v0={tag}"))).await;
    // No timestamp.
    assert_refused(&h, &id, &body, Some(&format!("v1={tag}"))).await;

    // And the good one still works afterwards.
    assert_eq!(h.callback(&body, Some(&good)).await.status, 202);
}

#[tokio::test]
async fn a_timestamp_more_than_300_seconds_away_is_401() {
    let h = Harness::new();
    let id = pending(&h).await;
    let body = event_body("evt_t", "participant.refused", &id, Some("ada"), h.now());
    let now = h.now().timestamp();
    for t in [now - 301, now + 301, now - 3600, 0] {
        assert_refused(&h, &id, &body, Some(&signature(SECRET, t, &body))).await;
    }
    // 300 s either way is within tolerance.
    for t in [now - 300, now + 300] {
        let reply = h.callback(&body, Some(&signature(SECRET, t, &body))).await;
        assert_eq!(reply.status, 202, "t = now {:+}: {}", t - now, reply.text);
    }
}

#[tokio::test]
async fn a_stale_signature_becomes_stale_as_the_clock_moves() {
    let h = Harness::new();
    let id = pending(&h).await;
    let (body, sig) = signed_event(&h, "evt_late", "participant.refused", &id, Some("ada"));
    h.advance(Duration::seconds(301));
    assert_refused(&h, &id, &body, Some(&sig)).await;
}

#[tokio::test]
async fn several_v1_signatures_are_accepted_during_secret_rotation() {
    // The verifier knows both the new and the old secret.
    let h = Harness::with(Options {
        verifier_secrets: vec![SECRET.to_vec(), OLD_SECRET.to_vec()],
        ..Options::default()
    });
    let id = pending(&h).await;
    let t = h.now().timestamp();

    // A sender still on the old secret.
    let body = event_body("evt_old", "participant.signed", &id, Some("ada"), h.now());
    let reply = h
        .callback(&body, Some(&signature(OLD_SECRET, t, &body)))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);

    // A sender signing with both, the unknown one first.
    let body = event_body("evt_both", "participant.signed", &id, Some("bob"), h.now());
    let header = format!(
        "t={t},v1={},v1={}",
        v1(b"some-future-secret", t, &body),
        v1(SECRET, t, &body)
    );
    let reply = h.callback(&body, Some(&header)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);

    h.pump().await;
    assert_eq!(h.agreement(&id).await["status"], "fulfilled");
}

#[tokio::test]
async fn several_v1_values_one_of_which_matches_the_only_secret() {
    let h = Harness::new();
    let id = pending(&h).await;
    let t = h.now().timestamp();
    let body = event_body("evt_rot", "participant.signed", &id, Some("ada"), h.now());
    let header = format!(
        "t={t},v1={},v1={}",
        v1(SECRET, t, &body),
        v1(OLD_SECRET, t, &body)
    );
    assert_eq!(h.callback(&body, Some(&header)).await.status, 202);
    assert_eq!(h.pump().await, [CallbackOutcome::Applied { version: 3 }]);
    // None of several matches: 401.
    let header = format!(
        "t={t},v1={},v1={}",
        v1(b"a", t, &body),
        v1(OLD_SECRET, t, &body)
    );
    assert_refused(&h, &id, &body, Some(&header)).await;
}

#[tokio::test]
async fn a_duplicate_provider_event_id_is_applied_once() {
    let h = Harness::new();
    let id = pending(&h).await;
    let (body, sig) = signed_event(
        &h,
        "evt_dup",
        "participant.identity_check_failed",
        &id,
        Some("ada"),
    );

    assert_eq!(h.callback(&body, Some(&sig)).await.status, 202);
    assert_eq!(h.pump().await, [CallbackOutcome::Applied { version: 3 }]);
    let applied = h.agreement(&id).await;
    assert_eq!(participant(&applied, "ada")["identity_check_failures"], 1);

    // Redelivered: acknowledged again, applied never again.
    h.advance(Duration::seconds(5));
    assert_eq!(h.callback(&body, Some(&sig)).await.status, 202);
    let outcomes = h.pump().await;
    assert_eq!(outcomes.len(), 1);
    assert!(
        !matches!(outcomes[0], CallbackOutcome::Applied { .. }),
        "{outcomes:?}"
    );
    let after = h.agreement(&id).await;
    assert_eq!(participant(&after, "ada")["identity_check_failures"], 1);
    assert_eq!(after["version"], applied["version"], "version unchanged");
    assert_eq!(
        h.get(&format!("/v1/agreements/{id}")).await.header("etag"),
        Some("\"3\"")
    );

    let history = h.history(&id).await;
    let last = history.last().unwrap();
    assert_eq!(last["type"], "ProviderEventIgnored");
    assert!(
        last["reason"].as_str().unwrap().contains("duplicate"),
        "{last}"
    );
    assert_eq!(last["version"], 3);
    assert_eq!(
        types(&history)
            .iter()
            .filter(|t| *t == "ParticipantIdentityCheckFailed")
            .count(),
        1
    );
}

#[tokio::test]
async fn the_same_event_queued_twice_before_processing_is_applied_once() {
    let h = Harness::new();
    let id = pending(&h).await;
    let (body, sig) = signed_event(&h, "evt_twice", "participant.signed", &id, Some("ada"));
    assert_eq!(h.callback(&body, Some(&sig)).await.status, 202);
    assert_eq!(h.callback(&body, Some(&sig)).await.status, 202);
    let outcomes = h.pump().await;
    assert_eq!(outcomes[0], CallbackOutcome::Applied { version: 3 });
    assert_eq!(outcomes[1], CallbackOutcome::Duplicate);
    assert_eq!(h.agreement(&id).await["version"], 3);
}

#[tokio::test]
async fn an_event_for_a_terminal_agreement_is_ignored_with_its_reason() {
    let h = Harness::new();
    let id = pending(&h).await;
    h.act(&id, "ada", "refuse").await;
    let refused = h.agreement(&id).await;
    assert_eq!(refused["status"], "refused");
    let history_len = h.history(&id).await.len();

    let (body, sig) = signed_event(&h, "evt_late_sign", "participant.signed", &id, Some("bob"));
    assert_eq!(h.callback(&body, Some(&sig)).await.status, 202);
    let outcomes = h.pump().await;
    assert!(
        matches!(outcomes[0], CallbackOutcome::Ignored { .. }),
        "{outcomes:?}"
    );

    let after = h.agreement(&id).await;
    assert_eq!(after, refused, "agreement and version as they were");
    let history = h.history(&id).await;
    assert_eq!(history.len(), history_len + 1);
    let last = history.last().unwrap();
    assert_eq!(last["type"], "ProviderEventIgnored");
    let reason = last["reason"].as_str().unwrap();
    assert!(reason.contains("refused"), "the reason names why: {reason}");
    assert_eq!(last["version"], refused["version"]);
}

#[tokio::test]
async fn an_event_for_a_final_participant_or_an_unknown_one_is_ignored() {
    let h = Harness::new();
    let id = pending(&h).await;
    h.act(&id, "ada", "sign").await;
    let signed = h.agreement(&id).await;

    // ada has signed: a later refusal from her changes nothing.
    let (body, sig) = signed_event(&h, "evt_2", "participant.refused", &id, Some("ada"));
    h.callback(&body, Some(&sig)).await;
    let (body, sig) = signed_event(&h, "evt_3", "participant.signed", &id, Some("zed"));
    h.callback(&body, Some(&sig)).await;
    let (body, sig) = signed_event(&h, "evt_4", "participant.teleported", &id, Some("bob"));
    h.callback(&body, Some(&sig)).await;
    let (body, sig) = signed_event(&h, "evt_5", "participant.signed", &id, None);
    h.callback(&body, Some(&sig)).await;
    let outcomes = h.pump().await;
    assert_eq!(outcomes.len(), 4);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, CallbackOutcome::Ignored { .. })),
        "{outcomes:?}"
    );
    let after = h.agreement(&id).await;
    assert_eq!(after, signed);
    let history = h.history(&id).await;
    let ignored: Vec<&Value> = history
        .iter()
        .filter(|e| e["type"] == "ProviderEventIgnored")
        .collect();
    assert_eq!(ignored.len(), 4);
    assert!(ignored[0]["reason"].as_str().unwrap().contains("ada"));
    assert!(ignored[1]["reason"].as_str().unwrap().contains("zed"));
    assert!(ignored[2]["reason"]
        .as_str()
        .unwrap()
        .contains("participant.teleported"));
    for entry in ignored {
        assert_eq!(entry["version"], signed["version"]);
        assert!(entry["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
}

#[tokio::test]
async fn an_event_for_an_unknown_agreement_is_acknowledged_and_dropped() {
    let h = Harness::new();
    let (body, sig) = signed_event(
        &h,
        "evt_x",
        "participant.signed",
        "nosuchagreement0000000000",
        Some("p"),
    );
    let reply = h.callback(&body, Some(&sig)).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(h.pump().await, [CallbackOutcome::UnknownAgreement]);
}

#[tokio::test]
async fn a_signed_payload_that_is_not_an_event_is_400() {
    let h = Harness::new();
    let t = h.now().timestamp();
    for body in [
        "{}".to_owned(),
        "not json".to_owned(),
        json!({"id": "", "type": "agreement.failed", "created_at": h.now().to_rfc3339(),
               "data": {"agreement_id": "a"}})
        .to_string(),
    ] {
        let reply = h.callback(&body, Some(&signature(SECRET, t, &body))).await;
        reply.expect_error(400, "INVALID_REQUEST");
    }
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn an_unknown_provider_is_404() {
    let h = Harness::new();
    let body = event_body("evt", "agreement.failed", "a", None, h.now());
    let reply = h
        .send(
            Call::new(Method::POST, "/v1/callbacks/docusign")
                .no_auth()
                .header(
                    "countersign-signature",
                    &signature(SECRET, h.now().timestamp(), &body),
                )
                .text(body),
        )
        .await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    reply.expect_error(404, reply.error()["type"].as_str().unwrap());
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn signed_document_is_recorded_on_a_fulfilled_agreement() {
    let h = Harness::new();
    let id = pending(&h).await;
    h.act(&id, "ada", "sign").await;
    h.act(&id, "bob", "sign").await;
    let fulfilled = h.agreement(&id).await;
    assert_eq!(fulfilled["status"], "fulfilled");

    let document = json!({"id": "signed-1", "filename": "lease-signed.pdf",
        "mime_type": "application/pdf", "size": 50000, "sha256": SHA256_HEX,
        "uri": "s3://contracts/lease-signed.pdf"});
    let body = json!({"id": "evt_doc", "type": "agreement.signed_document",
        "created_at": h.now().to_rfc3339(),
        "data": {"agreement_id": id, "signed_document": document}})
    .to_string();
    let reply = h
        .callback(&body, Some(&signature(SECRET, h.now().timestamp(), &body)))
        .await;
    assert_eq!(reply.status, 202);
    h.pump().await;
    let after = h.agreement(&id).await;
    assert_eq!(after["status"], "fulfilled");
    assert_eq!(
        after["documents"]["signed_document"]["filename"],
        "lease-signed.pdf"
    );
    assert_eq!(after["version"], fulfilled["version"].as_u64().unwrap() + 1);
}

#[tokio::test]
async fn an_empty_secret_accepts_nothing() {
    let h = Harness::with(Options {
        verifier_secrets: vec![Vec::new()],
        ..Options::default()
    });
    let id = pending(&h).await;
    let body = event_body("evt", "participant.signed", &id, Some("ada"), h.now());
    assert_refused(
        &h,
        &id,
        &body,
        Some(&signature(b"", h.now().timestamp(), &body)),
    )
    .await;
}

#[tokio::test]
async fn a_sandbox_signed_event_for_a_live_agreement_is_acknowledged_and_ignored() {
    // The sandbox's secret is a development one: it must never complete a real contract.
    let h = Harness::new();
    let live = h.sent(&ready_body(false)).await;
    let before = h.agreement(&live).await;
    assert_eq!(before["test_mode"], false);
    assert_eq!(before["provider"]["name"], "zigned");

    for (n, participant_id) in ["ada", "bob"].iter().enumerate() {
        let event_id = format!("evt_live_{n}");
        let (body, sig) = signed_event(
            &h,
            &event_id,
            "participant.signed",
            &live,
            Some(participant_id),
        );
        let reply = h.callback(&body, Some(&sig)).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
    }
    let outcomes = h.pump().await;
    assert_eq!(outcomes.len(), 2);
    for outcome in &outcomes {
        match outcome {
            CallbackOutcome::Ignored { reason } => assert_eq!(
                reason,
                "event from provider `sandbox`, but the agreement is carried by `zigned`"
            ),
            other => panic!("{other:?}"),
        }
    }
    let after = h.agreement(&live).await;
    assert_eq!(
        after, before,
        "nothing of the agreement changed, version included"
    );
    let history = h.history(&live).await;
    let ignored: Vec<&Value> = history
        .iter()
        .filter(|entry| entry["type"] == "ProviderEventIgnored")
        .collect();
    assert_eq!(ignored.len(), 2);
    assert!(ignored[0]["reason"]
        .as_str()
        .unwrap()
        .contains("carried by `zigned`"));
}

#[tokio::test]
async fn a_sandbox_signed_event_still_moves_a_test_mode_agreement() {
    let h = Harness::new();
    let id = pending(&h).await;
    assert_eq!(h.agreement(&id).await["provider"]["name"], "sandbox");
    let (body, sig) = signed_event(&h, "evt_t", "participant.signed", &id, Some("ada"));
    assert_eq!(h.callback(&body, Some(&sig)).await.status, 202);
    assert!(matches!(
        h.pump().await.as_slice(),
        [CallbackOutcome::Applied { .. }]
    ));
}

#[tokio::test]
async fn with_the_sandbox_off_its_callback_route_is_404_and_queues_nothing() {
    let h = Harness::with(Options {
        sandbox_enabled: false,
        ..Options::default()
    });
    let id = h.sent(&ready_body(false)).await;
    let (body, sig) = signed_event(&h, "evt_off", "participant.signed", &id, Some("ada"));
    let reply = h.callback(&body, Some(&sig)).await;
    reply.expect_error(404, "NOT_FOUND");
    assert!(h.queue.take().is_empty());
    assert_eq!(h.agreement(&id).await["version"], 2);
}
