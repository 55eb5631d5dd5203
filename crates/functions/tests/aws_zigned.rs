//! Live agreements through Zigned across the function binaries on moto (DynamoDB, SQS,
//! EventBridge, S3, SSM), with Zigned's REST API played by Prism serving Zigned's published
//! document (behind the front of `countersign_test_kit::zigned`). Documents are read from the
//! documents bucket, the credentials and webhook secrets from SSM, the dispatch messages come from
//! a rule on the bus fed by the outbox publisher, and the signed document is kept in the bucket
//! and handed out through a presigned link by the read function.

mod support;

use countersign_service::dispatcher::DISPATCHED_EVENT_TYPES;
use countersign_service::documents::sha256_hex;
use countersign_test_kit::zigned::{
    agreement_event, now, participant_event, signature, ZignedFront, SIGNED_PDF,
};
use countersign_test_kit::{moto, prism};
use serde_json::{json, Value};
use support::{fixture, Function, Resources};

const CLIENT_SECRET: &str = "zigned-oauth-client-secret-lambda-e2e";
const WEBHOOK_SECRET: &str = "zigned-webhook-secret-for-lambda-e2e";
const OLDER_WEBHOOK_SECRET: &str = "zigned-webhook-secret-of-last-year";
const LEASE: &[u8] = b"%PDF-1.7\n% the lease contract, on S3\n%%EOF\n";
const ANNEX: &[u8] = b"%PDF-1.7 the annex, on S3";

/// What this test adds to the shared resources: the documents, Zigned's SSM parameters, and the
/// dispatch queue behind the rule template.yaml puts on the bus.
struct ZignedDeployment {
    resources: Resources,
    dispatch_queue_url: String,
    dispatch_queue_arn: String,
    environment: Vec<(String, String)>,
}

async fn deploy(front: &ZignedFront) -> ZignedDeployment {
    let resources = Resources::create().await;
    let s3 = aws_sdk_s3::Client::new(&resources.sdk);
    for (key, bytes) in [
        ("documents/lease.pdf", LEASE),
        ("documents/annex.pdf", ANNEX),
    ] {
        s3.put_object()
            .bucket(&resources.documents_bucket)
            .key(key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .expect("document");
    }
    let ssm = aws_sdk_ssm::Client::new(&resources.sdk);
    let credentials = format!("/{}/zigned-credentials", moto::unique_name("countersign"));
    let webhook_secrets = format!("/{}/zigned-webhook", moto::unique_name("countersign"));
    for (name, value) in [
        (
            &credentials,
            json!({"client_id": "countersign-lambda-e2e", "client_secret": CLIENT_SECRET})
                .to_string(),
        ),
        (
            &webhook_secrets,
            format!("{WEBHOOK_SECRET},{OLDER_WEBHOOK_SECRET}"),
        ),
    ] {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("parameter");
    }
    let (dispatch_queue_url, dispatch_queue_arn) = moto::queue("dispatch").await;
    let events = aws_sdk_eventbridge::Client::new(&resources.sdk);
    let rule = moto::unique_name("dispatch");
    let detail_types: Vec<&str> = DISPATCHED_EVENT_TYPES
        .iter()
        .map(|entry| entry.as_str())
        .collect();
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&resources.bus)
        .event_pattern(json!({"source": ["countersign"], "detail-type": detail_types}).to_string())
        .send()
        .await
        .expect("rule");
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&resources.bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("dispatch")
                .arn(&dispatch_queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("target");
    let mut environment = resources.environment();
    environment.extend(
        [
            ("ZIGNED_API_URL", front.url.clone()),
            ("ZIGNED_TOKEN_URL", prism::zigned_token_url()),
            ("ZIGNED_CREDENTIALS_PARAMETER", credentials),
            ("ZIGNED_WEBHOOK_SECRET_PARAMETER", webhook_secrets),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    ZignedDeployment {
        resources,
        dispatch_queue_url,
        dispatch_queue_arn,
        environment,
    }
}

fn live_agreement(bucket: &str) -> Value {
    json!({
        "test_mode": false,
        "contract": {"contract_id": "C-9", "proposal_id": "P-9",
            "bank_information": {"account_holder": "Ada Lovelace",
                "iban": "FR14 2004 1010 0505 0001 3M02 606", "bic": "BNPAFRPP"}},
        "issuer": {"name": "Leasing Co", "email": "contracts@leasing.example", "role": "observer"},
        "participants": [
            {"id": "ada", "name": "Ada Lovelace", "email": "ada@example.com", "role": "signer", "signing_group": 1},
            {"id": "bob", "name": "Bob Bank", "email": "bob@example.com", "role": "approver", "signing_group": 2}],
        "signing_order": {"enabled": true, "grouped": true},
        "documents": {
            "main": {"filename": "lease.pdf", "mime_type": "application/pdf", "size": LEASE.len(),
                "sha256": sha256_hex(LEASE), "uri": format!("s3://{bucket}/documents/lease.pdf")},
            "attachments": [{"filename": "annex.pdf", "mime_type": "application/pdf", "size": ANNEX.len(),
                "sha256": sha256_hex(ANNEX), "uri": format!("s3://{bucket}/documents/annex.pdf")}]},
        "communication": {"send_emails": true, "default_locale": "sv-SE"},
        "metadata": {"lookup_key": "lease-zigned-lambda"}
    })
}

/// `http/create-agreement.json` with `body` and its own idempotency key.
fn create_request(body: &Value, key: &str) -> String {
    let mut event: Value =
        serde_json::from_str(&fixture("http/create-agreement.json", "")).unwrap();
    event["headers"]["idempotency-key"] = json!(key);
    event["body"] = json!(body.to_string());
    event.to_string()
}

/// `http/callback-zigned.json` carrying `body`, signed at `timestamp` with `secret`.
fn webhook_request(body: &Value, timestamp: u64, secret: &str) -> String {
    let mut event: Value = serde_json::from_str(&fixture("http/callback-zigned.json", "")).unwrap();
    let bytes = body.to_string();
    event["headers"]["x-zigned-request-signature"] =
        json!(signature(secret, timestamp, bytes.as_bytes()));
    event["body"] = json!(bytes);
    event.to_string()
}

struct Functions {
    create: Function,
    lifecycle: Function,
    read: Function,
    callback: Function,
    processor: Function,
    dispatcher: Function,
    publisher: Function,
}

impl Functions {
    fn start(environment: &[(String, String)]) -> Functions {
        Functions {
            create: Function::start("create", env!("CARGO_BIN_EXE_create"), environment),
            lifecycle: Function::start("lifecycle", env!("CARGO_BIN_EXE_lifecycle"), environment),
            read: Function::start("read", env!("CARGO_BIN_EXE_read"), environment),
            callback: Function::start("callback", env!("CARGO_BIN_EXE_callback"), environment),
            processor: Function::start(
                "callback-processor",
                env!("CARGO_BIN_EXE_callback-processor"),
                environment,
            ),
            dispatcher: Function::start(
                "dispatcher",
                env!("CARGO_BIN_EXE_dispatcher"),
                environment,
            ),
            publisher: Function::start(
                "outbox-publisher",
                env!("CARGO_BIN_EXE_outbox-publisher"),
                environment,
            ),
        }
    }

    fn logs(&self) -> String {
        [
            &self.create,
            &self.lifecycle,
            &self.read,
            &self.callback,
            &self.processor,
            &self.dispatcher,
            &self.publisher,
        ]
        .iter()
        .flat_map(|function| function.logs.lock().unwrap().clone())
        .collect::<Vec<_>>()
        .join("\n")
    }

    fn agreement(&self, id: &str) -> Value {
        let (status, body) = self.read.http(&fixture("http/get-agreement.json", id));
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }
}

/// Hands the table's stream records not yet published to the outbox publisher (as the event
/// source mapping would), then returns what the bus's dispatch rule put on the dispatch queue.
async fn publish_and_take_dispatches(
    deployment: &ZignedDeployment,
    functions: &Functions,
    published: &mut usize,
    at_least: usize,
) -> Vec<aws_sdk_sqs::types::Message> {
    let records = support::stream_records(&deployment.resources).await;
    for batch in records[*published..].chunks(10) {
        let response = functions
            .publisher
            .invoke(&json!({ "Records": batch }).to_string());
        assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    }
    *published = records.len();
    moto::drain(&deployment.dispatch_queue_url, at_least).await
}

fn dispatch(
    deployment: &ZignedDeployment,
    functions: &Functions,
    messages: &[aws_sdk_sqs::types::Message],
) {
    let response = functions.dispatcher.invoke(
        &deployment
            .resources
            .sqs_event(messages, &deployment.dispatch_queue_arn),
    );
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "{response}\n{}",
        functions.dispatcher.logs.lock().unwrap().join("\n")
    );
}

/// Posts each webhook to the callback function (202), then has the processor apply what the
/// callback queue delivers.
async fn webhooks(deployment: &ZignedDeployment, functions: &Functions, bodies: &[Value]) {
    for body in bodies {
        let (status, reply) =
            functions
                .callback
                .http(&webhook_request(body, now(), WEBHOOK_SECRET));
        assert_eq!(status, 202, "{body}: {reply}");
    }
    let messages = moto::drain(&deployment.resources.callback_queue_url, bodies.len()).await;
    assert_eq!(messages.len(), bodies.len());
    let response = functions.processor.invoke(
        &deployment
            .resources
            .sqs_event(&messages, &deployment.resources.callback_queue_arn),
    );
    assert_eq!(
        response["batchItemFailures"],
        json!([]),
        "{response}\n{}",
        functions.processor.logs.lock().unwrap().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_agreements_go_through_zigned_across_the_functions() {
    let front = ZignedFront::start(prism::zigned_api_dynamic()).await;
    let deployment = deploy(&front).await;
    let functions = Functions::start(&deployment.environment);
    let bucket = deployment.resources.documents_bucket.clone();

    let mut ids = Vec::new();
    for key in ["zigned-fulfilled", "zigned-refused"] {
        let (status, body) = functions
            .create
            .http(&create_request(&live_agreement(&bucket), key));
        assert_eq!(status, 201, "{body}");
        let id = body["data"]["id"].as_str().unwrap().to_owned();
        let (status, body) = functions
            .lifecycle
            .http(&fixture("http/lifecycle-pending.json", &id));
        assert_eq!(status, 200, "{body}");
        ids.push(id);
    }
    let (fulfilled, refused) = (ids[0].clone(), ids[1].clone());

    // The sends (and the first signing group's invitations) reach the dispatcher through the bus.
    let mut published = 0;
    let messages = publish_and_take_dispatches(&deployment, &functions, &mut published, 4).await;
    let sends: Vec<_> = messages
        .iter()
        .filter(|message| {
            message
                .body()
                .is_some_and(|body| body.contains("\"AgreementSentForSignature\""))
        })
        .cloned()
        .collect();
    assert_eq!(sends.len(), 2, "{messages:?}");
    dispatch(&deployment, &functions, &messages);
    assert_eq!(front.succeeded("POST /agreements "), 2);
    assert_eq!(front.succeeded("POST /files "), 4, "two documents each");

    // A redelivered send finds its round delivered: no call reaches Zigned at all.
    let calls_before = front.calls("");
    dispatch(&deployment, &functions, &sends);
    assert_eq!(front.calls(""), calls_before, "{}", functions.logs());
    let sent: Vec<Value> = ids.iter().map(|id| functions.agreement(id)).collect();
    for agreement in &sent {
        assert_eq!(agreement["status"], "pending", "{agreement}");
        assert!(
            agreement["provider"]["reference"].is_string(),
            "{agreement}"
        );
        for participant in agreement["participants"].as_array().unwrap() {
            assert!(
                participant["provider_reference"].is_string(),
                "{participant}"
            );
        }
    }
    assert_ne!(
        sent[0]["provider"]["reference"],
        sent[1]["provider"]["reference"]
    );

    // A forged or stale signature is refused before anything is queued.
    let event = participant_event(
        "participant.lifecycle.fulfilled",
        &sent[0],
        "ada",
        "fulfilled",
    );
    for (timestamp, secret) in [
        (now(), "not-the-webhook-secret"),
        (now() - 301, WEBHOOK_SECRET),
    ] {
        let (status, body) = functions
            .callback
            .http(&webhook_request(&event, timestamp, secret));
        assert_eq!(status, 401, "{body}");
    }
    assert!(moto::drain(&deployment.resources.callback_queue_url, 0)
        .await
        .is_empty());
    // The older secret still verifies while it is being rotated out.
    let (status, body) =
        functions
            .callback
            .http(&webhook_request(&event, now(), OLDER_WEBHOOK_SECRET));
    assert_eq!(status, 202, "{body}");
    let older = moto::drain(&deployment.resources.callback_queue_url, 1).await;
    assert_eq!(older.len(), 1);

    // Ada signs the first, and refuses the second.
    webhooks(
        &deployment,
        &functions,
        &[
            event.clone(),
            participant_event(
                "sign_event.approval.disapproved",
                &sent[1],
                "ada",
                "rejected",
            ),
        ],
    )
    .await;
    assert_eq!(functions.agreement(&refused)["status"], "refused");
    // Bob approves; Zigned finalizes and the signed document is fetched and kept.
    webhooks(
        &deployment,
        &functions,
        &[participant_event(
            "participant.lifecycle.fulfilled",
            &sent[0],
            "bob",
            "fulfilled",
        )],
    )
    .await;
    webhooks(
        &deployment,
        &functions,
        &[agreement_event("agreement.lifecycle.finalized", &sent[0])],
    )
    .await;
    let done = functions.agreement(&fulfilled);
    assert_eq!(done["status"], "fulfilled", "{done}");
    let signed = &done["documents"]["signed_document"];
    assert_eq!(signed["sha256"], sha256_hex(SIGNED_PDF), "{done}");
    assert!(
        signed["uri"]
            .as_str()
            .is_some_and(|uri| uri.starts_with(&format!("s3://{bucket}/signed/{fulfilled}/"))),
        "{signed}"
    );

    // The read function hands out a presigned link to it, which returns its bytes.
    let (status, link) = functions
        .read
        .http(&fixture("http/get-signed-document.json", &fulfilled));
    assert_eq!(status, 200, "{link}");
    let url = link["data"]["url"].as_str().expect("a url");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let bytes = countersign_test_kit::http_client()
        .get(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(sha256_hex(&bytes), signed["sha256"].as_str().unwrap());
    let (status, body) = functions
        .read
        .http(&fixture("http/get-signed-document.json", &refused));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["type"], "DOCUMENT_NOT_AVAILABLE", "{body}");

    // Every request passed Zigned's document; one Zigned agreement per countersign agreement.
    front.assert_all_valid();
    assert_eq!(
        front.succeeded("POST /agreements "),
        2,
        "{:?}",
        front.calls_made("POST /agreements ")
    );
    let logs = functions.logs();
    for secret in [CLIENT_SECRET, WEBHOOK_SECRET, OLDER_WEBHOOK_SECRET] {
        assert!(!logs.contains(secret), "a secret is in the logs");
    }
}
