//! End to end with Zigned: `countersign-local` configured for Zigned, whose REST API is Prism
//! serving Zigned's published OpenAPI document (every request the adapter makes must pass its
//! validation), behind the front of `countersign_test_kit::zigned`, which plays only what Prism cannot
//! (the signed document and its download). Zigned's webhooks are made in Zigned's format, signed
//! with the webhook secret.

use countersign_test_kit::zigned::{
    agreement_event, now, participant_event, signature, ZignedFront, SIGNED_PDF,
};
use countersign_test_kit::{prism, Client, LocalProcess, Reply};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BINARY: &str = env!("CARGO_BIN_EXE_countersign-local");
const CLIENT_SECRET: &str = "zigned-oauth-client-secret-e2e";
const WEBHOOK_SECRET: &str = "zigned-webhook-secret-for-e2e-tests";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Documents {
    dir: std::path::PathBuf,
    main: Vec<u8>,
}

fn documents() -> Documents {
    let dir = std::env::temp_dir().join(format!("countersign-zigned-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let main = b"%PDF-1.7\n% the lease contract\n%%EOF\n".to_vec();
    std::fs::write(dir.join("lease.pdf"), &main).unwrap();
    std::fs::write(dir.join("annex.pdf"), b"%PDF-1.7 annex").unwrap();
    Documents { dir, main }
}

fn live_agreement(documents: &Documents, main_sha256: &str) -> Value {
    json!({
        "test_mode": false,
        "contract": {"contract_id": "C-9", "proposal_id": "P-9",
            "bank_information": {"account_holder": "Ada Lovelace",
                "iban": "FR14 2004 1010 0505 0001 3M02 606", "bic": "BNPAFRPP"}},
        "issuer": {"name": "Leasing Co", "email": "contracts@leasing.example", "role": "observer"},
        "participants": [
            {"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "role": "signer", "signing_group": 1},
            {"id": "bob", "name": "Bob Bank", "email": "bob@example.com", "role": "approver", "signing_group": 2}],
        "observers": [{"id": "obs", "name": "Olga Observer", "email": "olga@example.com", "scope": "cc"}],
        "signing_order": {"enabled": true, "grouped": true},
        "documents": {
            "main": {"filename": "lease.pdf", "mime_type": "application/pdf",
                "size": documents.main.len(), "sha256": main_sha256, "uri": "file://lease.pdf"},
            "attachments": [{"filename": "annex.pdf", "mime_type": "application/pdf", "size": 14,
                "sha256": sha256(b"%PDF-1.7 annex"), "uri": format!("file://{}", documents.dir.join("annex.pdf").display())}]},
        "communication": {"send_emails": true, "default_locale": "sv-SE"},
        "metadata": {"lookup_key": "lease-zigned"}
    })
}

async fn webhook(client: &Client, body: &Value, timestamp: u64, secret: &str) -> Reply {
    let bytes = body.to_string().into_bytes();
    let signature = signature(secret, timestamp, &bytes);
    client
        .send_raw(
            "/callbacks/zigned",
            bytes,
            &[
                ("x-zigned-request-signature", &signature),
                ("content-type", "application/json"),
            ],
        )
        .await
}

async fn signed_webhook(client: &Client, body: Value) {
    let reply = webhook(client, &body, now(), WEBHOOK_SECRET).await;
    assert_eq!(reply.status, 202, "webhook {body}: {:?}", reply.body);
}

async fn history_types(client: &Client, id: &str) -> Vec<String> {
    client
        .history(id)
        .await
        .iter()
        .map(|entry| entry["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn delivered(client: &Client, id: &str) -> Value {
    let reply = client
        .lifecycle(id, json!({"lifecycle_state": "pending"}))
        .await;
    assert_eq!(reply.status, 200, "pending: {:?}", reply.body);
    client
        .wait_for(id, "delivered to Zigned", |agreement| {
            !agreement["provider"]["reference"].is_null() || agreement["status"] == "failed"
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_agreements_go_through_zigned_end_to_end() {
    let front = ZignedFront::start(prism::zigned_api_dynamic()).await;
    let documents = documents();
    let main_sha256 = sha256(&documents.main);
    let process = LocalProcess::start(
        BINARY,
        &[
            ("COUNTERSIGN_ZIGNED_API_URL", &front.url),
            ("COUNTERSIGN_ZIGNED_TOKEN_URL", &prism::zigned_token_url()),
            ("COUNTERSIGN_ZIGNED_CLIENT_ID", "countersign-test-kit"),
            ("COUNTERSIGN_ZIGNED_CLIENT_SECRET", CLIENT_SECRET),
            (
                "COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS",
                &format!("{WEBHOOK_SECRET},an-older-webhook-secret"),
            ),
            ("COUNTERSIGN_DOCUMENTS_DIR", documents.dir.to_str().unwrap()),
            ("COUNTERSIGN_SWEEP_INTERVAL_SECS", "0.2"),
        ],
    );
    let client = process.client("dev-key");

    // ---- to fulfilled: two signing groups, then the signed document.
    let id = client
        .create(&live_agreement(&documents, &main_sha256))
        .await;
    let agreement = delivered(&client, &id).await;
    assert_eq!(agreement["status"], "pending", "{agreement}");
    assert_eq!(agreement["provider"]["name"], "zigned");
    let types = history_types(&client, &id).await;
    assert_eq!(
        types.last().map(String::as_str),
        Some("AgreementDeliveredToProvider"),
        "{types:?}"
    );
    for participant in agreement["participants"].as_array().unwrap() {
        assert!(
            participant["provider_reference"].is_string(),
            "{participant}"
        );
    }
    assert_eq!(
        front.succeeded("POST /files "),
        2,
        "main document and attachment uploaded"
    );
    assert_eq!(front.succeeded("POST /agreements "), 1);
    front.assert_all_valid();

    // A forged and a stale signature are 401 and store nothing.
    let before = client.history(&id).await.len();
    let event = participant_event(
        "participant.lifecycle.fulfilled",
        &agreement,
        "ada",
        "fulfilled",
    );
    let forged = webhook(&client, &event, now(), "not-the-webhook-secret").await;
    assert_eq!(forged.status, 401, "{:?}", forged.body);
    let stale = webhook(&client, &event, now() - 301, WEBHOOK_SECRET).await;
    assert_eq!(stale.status, 401, "{:?}", stale.body);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(client.history(&id).await.len(), before, "nothing stored");

    signed_webhook(&client, event.clone()).await;
    client
        .wait_for(&id, "ada signed", |a| {
            a["participants"][0]["status"] == "SIGNATURE_COMPLETE"
        })
        .await;
    // Redelivered by Zigned (same body): applied once.
    signed_webhook(&client, event).await;
    signed_webhook(
        &client,
        participant_event(
            "participant.lifecycle.fulfilled",
            &agreement,
            "bob",
            "fulfilled",
        ),
    )
    .await;
    client
        .wait_for(&id, "fulfilled", |a| a["status"] == "fulfilled")
        .await;
    let reply = client
        .get(&format!("/agreements/{id}/signed-document"))
        .await;
    assert_eq!(reply.status, 404, "{:?}", reply.body);
    assert_eq!(reply.error_type(), "DOCUMENT_NOT_AVAILABLE");

    signed_webhook(
        &client,
        agreement_event("agreement.lifecycle.finalized", &agreement),
    )
    .await;
    let fulfilled = client
        .wait_for(&id, "signed document stored", |a| {
            !a["documents"]["signed_document"].is_null()
        })
        .await;
    let signed = &fulfilled["documents"]["signed_document"];
    assert_eq!(signed["sha256"], sha256(SIGNED_PDF));
    assert_eq!(signed["size"], SIGNED_PDF.len());
    let link = client
        .get(&format!("/agreements/{id}/signed-document"))
        .await;
    assert_eq!(link.status, 200, "{:?}", link.body);
    let url = link.data()["url"].as_str().unwrap().to_owned();
    assert!(link.data()["expires_at"].is_string());
    let bytes = countersign_test_kit::http_client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        sha256(&bytes),
        signed["sha256"].as_str().unwrap(),
        "the link returns the recorded bytes"
    );
    let tampered = countersign_test_kit::http_client()
        .get(url.replace("signature=", "signature=00"))
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 404);
    let types = history_types(&client, &id).await;
    assert_eq!(
        types.iter().filter(|t| *t == "ParticipantSigned").count(),
        2,
        "{types:?}"
    );
    assert!(
        types.contains(&"SignedDocumentStored".to_owned()),
        "{types:?}"
    );
    assert!(
        types.contains(&"ProviderEventIgnored".to_owned()),
        "the redelivery is recorded as ignored: {types:?}"
    );

    // ---- refusal, bounce, identity failure, cancel and expiry at Zigned, generation failure.
    let refused = client
        .create(&live_agreement(&documents, &main_sha256))
        .await;
    let sent = delivered(&client, &refused).await;
    signed_webhook(
        &client,
        participant_event("sign_event.approval.disapproved", &sent, "ada", "rejected"),
    )
    .await;
    client
        .wait_for(&refused, "refused", |a| a["status"] == "refused")
        .await;

    let bounced = client
        .create(&live_agreement(&documents, &main_sha256))
        .await;
    let sent = delivered(&client, &bounced).await;
    // Matched by email, as Zigned's email events name the participant.
    signed_webhook(
        &client,
        json!({"event": "email_event.agreement_invitation.delivery_failed",
        "data": {"agreement": sent["provider"]["reference"], "email": "ada@example.com"}}),
    )
    .await;
    let stopped = client
        .wait_for(&bounced, "journey stopped", |a| a["journey"] == "STOPPED")
        .await;
    assert_eq!(
        stopped["participants"][0]["status"],
        "SIGNATORY_DELIVERY_FAILED"
    );

    let identity = client
        .create(&live_agreement(&documents, &main_sha256))
        .await;
    let sent = delivered(&client, &identity).await;
    for attempt in 0..3 {
        let mut event = participant_event(
            "participant.identity_enforcement.failed",
            &sent,
            "ada",
            "pending",
        );
        event["data"]["attempt"] = json!(attempt);
        signed_webhook(&client, event).await;
    }
    let failed_identity = client
        .wait_for(&identity, "identity check failed", |a| {
            a["participants"][0]["status"] == "IDENTITY_CHECK_FAILED"
        })
        .await;
    assert_eq!(failed_identity["status"], "pending");

    for (event, status) in [
        ("agreement.lifecycle.cancelled", "cancelled"),
        ("agreement.lifecycle.expired", "expired"),
        ("agreement.generation.failed", "failed"),
    ] {
        let id = client
            .create(&live_agreement(&documents, &main_sha256))
            .await;
        let sent = delivered(&client, &id).await;
        signed_webhook(&client, agreement_event(event, &sent)).await;
        let ended = client
            .wait_for(&id, status, |a| a["status"] == status)
            .await;
        if status == "cancelled" {
            assert_eq!(ended["cancellation_reason"], "provider_cancelled");
        }
    }

    // An event of an earlier round: a participant reference the agreement no longer carries.
    let reopened = client
        .create(&live_agreement(&documents, &main_sha256))
        .await;
    let first_round = delivered(&client, &reopened).await;
    let reply = client
        .lifecycle(&reopened, json!({"lifecycle_state": "open"}))
        .await;
    assert_eq!(reply.status, 200);
    let second_round = delivered(&client, &reopened).await;
    client
        .wait_for(&reopened, "second round delivered", |a| {
            a["participants"][0]["provider_reference"].is_string()
                && a["participants"][0]["provider_reference"]
                    != first_round["participants"][0]["provider_reference"]
        })
        .await;
    let old = participant_event(
        "participant.lifecycle.fulfilled",
        &first_round,
        "ada",
        "fulfilled",
    );
    signed_webhook(&client, old).await;
    let mut ignored = false;
    for _ in 0..50 {
        let history = client.history(&reopened).await;
        if history.iter().any(|e| e["type"] == "ProviderEventIgnored") {
            ignored = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ignored, "the earlier round's event is recorded as ignored");
    let now_agreement = client.agreement(&reopened).await;
    assert_eq!(
        now_agreement["participants"][0]["status"],
        "SIGNATURE_PENDING"
    );
    assert_eq!(
        second_round["provider"]["reference"], first_round["provider"]["reference"],
        "the Zigned agreement is reused"
    );
    assert_eq!(
        front.succeeded("PUT /agreements/"),
        1,
        "brought in line after the reopen"
    );

    // ---- a document that does not match fails the agreement before anything reaches Zigned.
    let files_before = front.calls("POST /files ");
    let mismatched = client
        .create(&live_agreement(&documents, &sha256(b"another document")))
        .await;
    let failed = delivered(&client, &mismatched).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let history = client.history(&mismatched).await;
    let last = history.last().unwrap();
    assert_eq!(last["type"], "AgreementFailed");
    assert!(
        last["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("does not match its sha256"),
        "{last}"
    );
    assert_eq!(
        front.calls("POST /files "),
        files_before,
        "nothing uploaded"
    );

    front.assert_all_valid();
    let logs = process.logs().join("\n");
    // Each agreement was created once at Zigned.
    let retries: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("retrying"))
        .collect();
    assert_eq!(
        front.succeeded("POST /agreements "),
        8,
        "calls: {:?}\nretries: {retries:#?}",
        front.calls_made("POST /agreements ")
    );
    for secret in [CLIENT_SECRET, WEBHOOK_SECRET, "an-older-webhook-secret"] {
        assert!(!logs.contains(secret), "a secret is in the logs");
    }
    let _ = std::fs::remove_dir_all(&documents.dir);
}

#[tokio::test]
async fn without_a_live_provider_sending_a_live_agreement_is_provider_not_configured() {
    let process = LocalProcess::start(BINARY, &[]);
    let client = process.client("dev-key");
    let documents = documents();
    let id = client
        .create(&live_agreement(&documents, &sha256(&documents.main)))
        .await;
    let before = client.agreement(&id).await;
    let reply = client
        .lifecycle(&id, json!({"lifecycle_state": "pending"}))
        .await;
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.error_type(), "PROVIDER_NOT_CONFIGURED");
    let after = client.agreement(&id).await;
    assert_eq!(after["version"], before["version"]);
    assert_eq!(after["status"], "draft");
    // No Zigned webhook route either.
    let reply = webhook(&client, &json!({"event": "x"}), now(), WEBHOOK_SECRET).await;
    assert_eq!(reply.status, 404);
}
