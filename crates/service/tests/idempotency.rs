//! Requests carrying an `Idempotency-Key`, owned by the service: the same request replays the
//! kept response, another request with the key is refused, and requests racing with one key
//! make one agreement between them.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use countersign_domain::{Agreement, AgreementInput, LifecycleRequest, Rules};
use countersign_service::test_doubles::ManualClock;
use countersign_service::{
    AgreementService, Answer, IdempotencyIntent, RenderedResponse, RetryPolicy, ServiceError,
};
use countersign_store::{ListQuery, MemoryStore};
use serde_json::json;

fn service() -> Arc<AgreementService<MemoryStore>> {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
    ));
    Arc::new(AgreementService::new(
        Arc::new(MemoryStore::new()),
        clock,
        Rules::default(),
        RetryPolicy::default(),
    ))
}

fn input() -> AgreementInput {
    serde_json::from_value(json!({
        "test_mode": true,
        "contract": {"contract_id": "C-1", "proposal_id": "P-1",
            "bank_information": {"account_holder": "Ada", "iban": "FR1420041010050500013M02606", "bic": "BNPAFRPP"}},
        "participants": [{"id": "ada", "name": "Ada", "email": "ada@example.com", "role": "signer"}],
        "documents": {"main": {"filename": "l.pdf", "mime_type": "application/pdf", "size": 1,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "uri": "s3://c/l.pdf"}}
    }))
    .expect("a valid input")
}

fn render(agreement: &Agreement) -> RenderedResponse {
    RenderedResponse {
        status: 201,
        headers: vec![("etag".to_owned(), agreement.version.to_string())],
        body: format!("{}@{}", agreement.id, agreement.version),
    }
}

fn intent<'a>(key: &'a str, hash: &'a str) -> IdempotencyIntent<'a> {
    IdempotencyIntent {
        key,
        request_hash: hash,
        render: &render,
    }
}

#[tokio::test]
async fn the_same_request_replays_and_another_request_is_refused() {
    let agreements = service();
    let first = agreements
        .create("tenant-1", input(), Some(&intent("key-1", "create-a")))
        .await
        .expect("created")
        .agreement()
        .expect("the first request makes the agreement");
    let again = agreements
        .create("tenant-1", input(), Some(&intent("key-1", "create-a")))
        .await
        .expect("replayed");
    assert_eq!(again, Answer::Replayed(render(&first)));
    assert!(matches!(
        agreements
            .create("tenant-1", input(), Some(&intent("key-1", "create-b")))
            .await,
        Err(ServiceError::IdempotencyKeyTaken)
    ));
    // Another tenant's key is its own.
    assert!(matches!(
        agreements
            .create("tenant-2", input(), Some(&intent("key-1", "create-b")))
            .await,
        Ok(Answer::Agreement(_))
    ));

    let sent = agreements
        .lifecycle(
            "tenant-1",
            &first.id,
            LifecycleRequest::Pending,
            None,
            Some(&intent("key-2", "send")),
        )
        .await
        .expect("sent")
        .agreement()
        .expect("sent now");
    assert_eq!(
        agreements
            .lifecycle(
                "tenant-1",
                &first.id,
                LifecycleRequest::Pending,
                None,
                Some(&intent("key-2", "send")),
            )
            .await
            .expect("replayed"),
        Answer::Replayed(render(&sent))
    );
    let listed = agreements_of(&agreements, "tenant-1").await;
    assert_eq!(listed, 1, "one agreement for tenant-1");
}

async fn agreements_of(agreements: &AgreementService<MemoryStore>, tenant: &str) -> usize {
    agreements
        .list(&ListQuery {
            tenant: tenant.to_owned(),
            lookup_key: None,
            status: None,
            limit: 100,
            after: None,
        })
        .await
        .expect("listed")
        .agreements
        .len()
}

/// Requests with one key at once: whichever commits first makes the agreement, every other one
/// answers with its kept response (also one that found no record when it looked, then lost the
/// commit).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_racing_with_one_key_make_one_agreement() {
    for round in 0..20 {
        let agreements = service();
        let key = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let agreements = agreements.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    agreements
                        .create("tenant-1", input(), Some(&intent(&key, "create")))
                        .await
                })
            })
            .collect();
        let mut made = Vec::new();
        let mut replayed = Vec::new();
        for task in tasks {
            match task.await.expect("joined").expect("answered") {
                Answer::Agreement(agreement) => made.push(agreement),
                Answer::Replayed(kept) => replayed.push(kept),
            }
        }
        assert_eq!(made.len(), 1, "round {round}");
        assert!(replayed.iter().all(|kept| *kept == render(&made[0])));
        assert_eq!(agreements_of(&agreements, "tenant-1").await, 1);
    }
}
