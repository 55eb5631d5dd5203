//! The provider dispatcher fed with the events an agreement really publishes (as EventBridge
//! carries them), over the embedded store.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use countersign_domain::{Agreement, CancellationReason, LifecycleRequest, Rules};
use countersign_provider::VerifiedEvent;
use countersign_service::dispatcher::{
    DispatchError, DispatchEvent, DispatchOutcome, Dispatcher, ProviderAction, ProviderClient,
    SandboxClient,
};
use countersign_service::outbox::event_json;
use countersign_service::{AgreementService, CallbackProcessor, ManualClock, RetryPolicy};
use countersign_store::{HistoryRead, MemoryStore};
use serde_json::json;

struct World {
    store: Arc<MemoryStore>,
    agreements: AgreementService<MemoryStore>,
    callbacks: CallbackProcessor<MemoryStore>,
    sandbox: Arc<SandboxClient>,
    live: Arc<SandboxClient>,
}

impl World {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        ));
        World {
            agreements: AgreementService::new(
                store.clone(),
                clock.clone(),
                Rules::default(),
                RetryPolicy::default(),
            ),
            callbacks: CallbackProcessor::new(
                store.clone(),
                clock,
                Rules::default(),
                RetryPolicy::default(),
            ),
            store,
            sandbox: Arc::new(SandboxClient::recording()),
            live: Arc::new(SandboxClient::recording()),
        }
    }

    fn dispatcher(&self, with_live: bool) -> Dispatcher<MemoryStore> {
        let live: Option<Arc<dyn ProviderClient>> = if with_live {
            Some(self.live.clone())
        } else {
            None
        };
        Dispatcher::new(self.store.clone(), self.sandbox.clone(), live)
    }

    async fn create(&self, test_mode: bool, grouped: bool) -> Agreement {
        let input = serde_json::from_value(json!({
            "test_mode": test_mode,
            "contract": {"contract_id": "C-1", "proposal_id": "P-1",
                "bank_information": {"account_holder": "Ada", "iban": "FR1420041010050500013M02606", "bic": "BNPAFRPP"}},
            "participants": [
                {"id": "ada", "name": "Ada", "email": "ada@example.com", "role": "signer", "signing_group": 1},
                {"id": "bob", "name": "Bob", "email": "bob@example.com", "role": "signer", "signing_group": 2}],
            "signing_order": {"enabled": grouped, "grouped": grouped},
            "documents": {"main": {"filename": "l.pdf", "mime_type": "application/pdf", "size": 1,
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "uri": "s3://c/l.pdf"}}
        }))
        .expect("a valid input");
        self.agreements
            .create("tenant-1", input, None)
            .await
            .expect("created")
    }

    async fn lifecycle(&self, id: &str, request: LifecycleRequest) {
        self.agreements
            .lifecycle("tenant-1", id, request, None, None)
            .await
            .expect("lifecycle applied");
    }

    async fn sign(&self, id: &str, participant: &str) {
        let event = VerifiedEvent {
            provider: "sandbox".into(),
            event_id: format!("evt-{id}-{participant}"),
            event_type: "participant.signed".into(),
            agreement_id: id.into(),
            participant_id: Some(participant.into()),
            signed_document: None,
            occurred_at: Utc::now(),
        };
        self.callbacks.process(&event).await.expect("applied");
    }

    /// The published events of `id` after its first `skip`, as the dispatcher's queue gets them.
    async fn events(&self, id: &str, skip: usize) -> Vec<DispatchEvent> {
        let history = self.store.history(id).await.expect("history");
        history
            .iter()
            .filter_map(|entry| entry.published_event())
            .skip(skip)
            .map(|event| {
                serde_json::from_value(event_json(&event, "bus")).expect("a dispatch event")
            })
            .collect()
    }

    async fn dispatch_all(
        &self,
        dispatcher: &Dispatcher<MemoryStore>,
        id: &str,
        skip: usize,
    ) -> Vec<DispatchOutcome> {
        let mut outcomes = Vec::new();
        for event in self.events(id, skip).await {
            outcomes.push(dispatcher.dispatch(&event).await.expect("dispatched"));
        }
        outcomes
    }
}

fn dispatched(action: ProviderAction) -> DispatchOutcome {
    DispatchOutcome::Dispatched {
        provider: "sandbox".into(),
        action,
    }
}

fn invite(step: u32, ids: &[&str]) -> ProviderAction {
    ProviderAction::Invite {
        step,
        participant_ids: ids.iter().map(|id| id.to_string()).collect(),
    }
}

#[tokio::test]
async fn sending_and_each_signing_group_reach_the_provider_in_turn() {
    let world = World::new();
    let dispatcher = world.dispatcher(false);
    let agreement = world.create(true, true).await;
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    let outcomes = world.dispatch_all(&dispatcher, &agreement.id, 0).await;
    assert_eq!(
        outcomes,
        vec![
            DispatchOutcome::NothingToDo("not an event the provider acts on"), // AgreementCreated
            dispatched(ProviderAction::SendEnvelope),
            dispatched(invite(1, &["ada"])),
        ]
    );
    world.sign(&agreement.id, "ada").await;
    let outcomes = world.dispatch_all(&dispatcher, &agreement.id, 3).await;
    assert_eq!(
        outcomes,
        vec![
            DispatchOutcome::NothingToDo("not an event the provider acts on"), // ParticipantSigned
            dispatched(invite(2, &["bob"])),
        ]
    );
    let keys: Vec<String> = world
        .sandbox
        .calls()
        .iter()
        .map(|call| call.idempotency_key.clone())
        .collect();
    assert_eq!(
        keys,
        [2, 3, 5].map(|sequence| format!("{}:{sequence}", agreement.id)),
        "one key per published event, stable across redeliveries"
    );
    // A redelivery asks again with the same key: the provider can drop it.
    let again = world.events(&agreement.id, 4).await;
    dispatcher.dispatch(&again[0]).await.expect("redelivered");
    assert_eq!(
        world.sandbox.calls().last().unwrap().idempotency_key,
        format!("{}:5", agreement.id)
    );
}

#[tokio::test]
async fn reopening_withdraws_and_cancelling_cancels_only_what_was_sent() {
    let world = World::new();
    let dispatcher = world.dispatcher(false);

    let reopened = world.create(true, false).await;
    world
        .lifecycle(&reopened.id, LifecycleRequest::Pending)
        .await;
    world.lifecycle(&reopened.id, LifecycleRequest::Open).await;
    let outcomes = world.dispatch_all(&dispatcher, &reopened.id, 0).await;
    assert_eq!(outcomes.last(), Some(&dispatched(ProviderAction::Withdraw)));
    // The invitation published before the reopening is not sent after it.
    assert_eq!(
        outcomes[2],
        DispatchOutcome::NothingToDo("the agreement was reopened since")
    );

    let cancelled_while_pending = world.create(true, false).await;
    world
        .lifecycle(&cancelled_while_pending.id, LifecycleRequest::Pending)
        .await;
    world
        .lifecycle(
            &cancelled_while_pending.id,
            LifecycleRequest::Cancelled(CancellationReason::InvalidDocument),
        )
        .await;
    let outcomes = world
        .dispatch_all(&dispatcher, &cancelled_while_pending.id, 3)
        .await;
    assert_eq!(outcomes, vec![dispatched(ProviderAction::Cancel)]);

    let cancelled_draft = world.create(true, false).await;
    world
        .lifecycle(
            &cancelled_draft.id,
            LifecycleRequest::Cancelled(CancellationReason::InvalidEmail),
        )
        .await;
    let outcomes = world
        .dispatch_all(&dispatcher, &cancelled_draft.id, 1)
        .await;
    assert_eq!(
        outcomes,
        vec![DispatchOutcome::NothingToDo("the envelope was never sent")]
    );
}

#[tokio::test]
async fn live_agreements_need_a_live_provider_and_never_use_the_sandbox() {
    let world = World::new();
    let agreement = world.create(false, false).await;
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    let sent = world.events(&agreement.id, 1).await;

    let error = world
        .dispatcher(false)
        .dispatch(&sent[0])
        .await
        .expect_err("no live provider");
    assert!(matches!(error, DispatchError::NoLiveProvider), "{error}");

    world
        .dispatcher(true)
        .dispatch(&sent[0])
        .await
        .expect("dispatched");
    assert_eq!(world.live.calls().len(), 1);
    assert_eq!(world.live.calls()[0].action, ProviderAction::SendEnvelope);
    assert!(
        world.sandbox.calls().is_empty(),
        "a live agreement never goes to the sandbox"
    );
}

#[tokio::test]
async fn an_unknown_or_foreign_agreement_is_acknowledged() {
    let world = World::new();
    let agreement = world.create(true, false).await;
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    let mut event = world.events(&agreement.id, 1).await.remove(0);
    event.detail.tenant = "tenant-2".into();
    let outcome = world
        .dispatcher(false)
        .dispatch(&event)
        .await
        .expect("acknowledged");
    assert_eq!(outcome, DispatchOutcome::UnknownAgreement);
    event.detail.agreement_id = "nosuchagreement".into();
    event.detail.tenant = "tenant-1".into();
    let outcome = world
        .dispatcher(false)
        .dispatch(&event)
        .await
        .expect("acknowledged");
    assert_eq!(outcome, DispatchOutcome::UnknownAgreement);
    assert!(world.sandbox.calls().is_empty());
}
