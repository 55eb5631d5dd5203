//! The DynamoDB store on moto through the fault injector (`countersign_test_kit::faults`): a third of
//! the requests throttled and a quarter of the committed transactions timing out on the way back,
//! with the SDK's standard retries (faults strike first attempts, retries go through). The
//! store contract holds unchanged: a commit whose answer was lost is retried by the SDK, meets its
//! own write (the version guard refuses it) and is still reported committed, never a conflict.

mod support;

use countersign_domain::LifecycleRequest;
use countersign_store::{AgreementGet, HistoryRead};
use countersign_store_dynamodb::{table_definition, DynamoStore};
use countersign_test_kit::faults::{FaultInjector, FaultKind, FaultPlan};

fn plan(write_then_timeout: f64) -> FaultPlan {
    FaultPlan {
        dynamodb_throttling: 1.0 / 3.0,
        write_then_timeout,
        spare_retries: true,
        ..FaultPlan::default()
    }
}

/// A store on a new table whose client goes through `faults` with `max_attempts` SDK attempts.
async fn faulty_store(faults: &FaultInjector, max_attempts: u32) -> DynamoStore {
    let client = aws_sdk_dynamodb::Client::new(&faults.sdk_config(max_attempts));
    let table = support::unique_table("faults");
    faults.set_enabled(false);
    table_definition(&table)
        .create(&client)
        .await
        .unwrap_or_else(|error| panic!("{error} (moto at {})", support::endpoint()));
    faults.set_enabled(true);
    DynamoStore::new(client, table)
}

async fn contract_store() -> DynamoStore {
    faulty_store(&FaultInjector::new(20261202, plan(0.25)), 3).await
}

countersign_store::store_contract_tests!(contract_store());

/// Every commit's answer lost, once with SDK retries (the retry meets the version guard) and once
/// without (the caller gets the timeout itself): each is reported committed, and the history is
/// what one commit each wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_answer_was_lost_is_reported_committed() {
    for max_attempts in [3, 1] {
        let faults = FaultInjector::new(
            7,
            FaultPlan {
                write_then_timeout: 1.0,
                spare_retries: true,
                ..FaultPlan::default()
            },
        );
        let store = std::sync::Arc::new(faulty_store(&faults, max_attempts).await);
        let services = countersign_service::AgreementService::new(
            store.clone(),
            std::sync::Arc::new(countersign_service::SystemClock),
            countersign_domain::Rules::default(),
            countersign_service::RetryPolicy::default(),
        );
        let draft = services
            .create("tenant-faults", support::ready_input(2, Some(30)), None)
            .await
            .unwrap_or_else(|error| panic!("create, {max_attempts} attempts: {error:?}"))
            .agreement()
            .expect("no key: nothing replayed");
        let sent = services
            .lifecycle(
                "tenant-faults",
                &draft.id,
                LifecycleRequest::Pending,
                None,
                None,
            )
            .await
            .unwrap_or_else(|error| panic!("send, {max_attempts} attempts: {error:?}"))
            .agreement()
            .expect("no key: nothing replayed");
        assert_eq!(
            faults.injected_of(FaultKind::CommittedThenTimedOut),
            2,
            "{max_attempts} attempts"
        );
        assert_eq!(
            store.get_agreement(&draft.id).await.unwrap().as_deref(),
            Some(&sent)
        );
        let sequences: Vec<u64> = store
            .history(&draft.id)
            .await
            .unwrap()
            .iter()
            .map(|entry| entry.sequence)
            .collect();
        assert_eq!(
            sequences,
            (1..=sent.history_len).collect::<Vec<_>>(),
            "one write per commit, {max_attempts} attempts"
        );
        // Every attempt of one commit carries the same token (DynamoDB's idempotent retries).
        let tokens = faults.commit_tokens();
        assert_eq!(tokens.len(), if max_attempts == 3 { 4 } else { 2 });
        assert!(tokens.iter().all(Option::is_some), "{tokens:?}");
        if max_attempts == 3 {
            assert_eq!(tokens[0], tokens[1]);
            assert_eq!(tokens[2], tokens[3]);
            assert_ne!(tokens[0], tokens[2]);
        }
    }
}
