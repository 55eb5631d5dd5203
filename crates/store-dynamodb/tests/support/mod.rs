//! What the moto tests share: the moto endpoint, clients with static test credentials, and fresh
//! tables.
//!
//! The endpoint is `COUNTERSIGN_MOTO_ENDPOINT` when set (for example by
//! `eval "$(scripts/moto start)"`); unset, `countersign_test_kit::moto` starts a moto_server owned by
//! this test binary. If moto cannot be had, every moto test fails, saying why: never a skip.

#![allow(dead_code)]

use aws_sdk_dynamodb::Client;
use countersign_store_dynamodb::{
    client_with_counter, table_definition, DynamoStore, RequestCounter,
};
use countersign_test_kit::moto;

/// A client of moto (`countersign_test_kit::moto`: started for this test binary unless
/// `COUNTERSIGN_MOTO_ENDPOINT` names one) counting into `counter`.
pub async fn client(counter: &RequestCounter) -> Client {
    client_with_counter(&moto::sdk_config(), counter)
}

pub fn endpoint() -> String {
    moto::endpoint()
}

/// A table name nobody else uses.
pub fn unique_table(prefix: &str) -> String {
    moto::unique_name(prefix)
}

/// A store on a new table of its own, and the counter of its client.
pub async fn fresh_store_counted(prefix: &str) -> (DynamoStore, RequestCounter) {
    let counter = RequestCounter::new();
    let client = client(&counter).await;
    let table = unique_table(prefix);
    if let Err(error) = table_definition(&table).create(&client).await {
        panic!("{error} (moto at {})", endpoint());
    }
    counter.reset();
    (DynamoStore::new(client, table), counter)
}

pub async fn fresh_store() -> DynamoStore {
    fresh_store_counted("contract").await.0
}

/// Input complete enough to be sent for signature: the contract suite's, in test mode, so that
/// the sandbox provider's events ([`provider_event`]) are its provider's.
pub fn ready_input(
    signers: usize,
    expires_in_days: Option<u16>,
) -> countersign_domain::AgreementInput {
    countersign_domain::AgreementInput {
        test_mode: Some(true),
        ..countersign_store::contract::input(signers, None, expires_in_days)
    }
}

/// The services of countersign over a fresh DynamoDB store, on a manual clock, with the
/// service's default retry policy.
pub struct Services {
    pub store: std::sync::Arc<DynamoStore>,
    pub counter: RequestCounter,
    pub clock: std::sync::Arc<countersign_service::test_doubles::ManualClock>,
    pub retry: countersign_service::RetryPolicy,
    pub agreements: countersign_service::AgreementService<DynamoStore>,
    pub callbacks: countersign_service::CallbackProcessor<DynamoStore>,
}

impl Services {
    pub async fn new(prefix: &str) -> Services {
        use chrono::SubsecRound;
        use countersign_service::test_doubles::ManualClock;
        use countersign_service::{AgreementService, CallbackProcessor, Clock, RetryPolicy};
        use std::sync::Arc;

        let (store, counter) = fresh_store_counted(prefix).await;
        let store = Arc::new(store);
        let clock = Arc::new(ManualClock::new(chrono::Utc::now().trunc_subsecs(3)));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let retry = RetryPolicy::default();
        let rules = countersign_domain::Rules::default();
        Services {
            agreements: AgreementService::new(
                store.clone(),
                dyn_clock.clone(),
                rules.clone(),
                retry,
            ),
            callbacks: CallbackProcessor::new(store.clone(), dyn_clock, rules, retry),
            store,
            counter,
            clock,
            retry,
        }
    }

    pub fn sweeper(&self, page_size: usize) -> countersign_service::Sweeper<DynamoStore> {
        countersign_service::Sweeper::new(
            self.store.clone(),
            self.clock.clone(),
            self.retry,
            page_size,
        )
    }

    /// Creates and sends an agreement with `signers` signers; returns its id.
    pub async fn pending(&self, tenant: &str, signers: usize, expires_in_days: u16) -> String {
        let draft = self
            .agreements
            .create(tenant, ready_input(signers, Some(expires_in_days)), None)
            .await
            .expect("created")
            .agreement()
            .expect("no key: nothing replayed");
        self.agreements
            .lifecycle(
                tenant,
                &draft.id,
                countersign_domain::LifecycleRequest::Pending,
                None,
                None,
            )
            .await
            .expect("sent")
            .agreement()
            .expect("no key: nothing replayed")
            .id
    }
}

/// A verified provider event, as the callback queue carries it.
pub fn provider_event(
    event_type: &str,
    agreement_id: &str,
    participant: &str,
    event_id: &str,
) -> countersign_provider::VerifiedEvent {
    countersign_provider::sandbox::SandboxEvent {
        id: event_id.to_owned(),
        event_type: event_type.to_owned(),
        created_at: chrono::Utc::now(),
        data: countersign_provider::sandbox::SandboxEventData {
            agreement_id: agreement_id.to_owned(),
            participant_id: Some(participant.to_owned()),
            signed_document: None,
        },
    }
    .into_verified("sandbox")
}
