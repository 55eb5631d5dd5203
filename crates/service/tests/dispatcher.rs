//! The provider dispatcher fed with the events an agreement really publishes (as EventBridge
//! carries them), over the embedded store.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use countersign_domain::{
    Agreement, CancellationReason, Delivery, EntryType, LifecycleRequest, Rules, Status,
};
use countersign_provider::sandbox::{SandboxCall, SandboxClient, SandboxEvent, SandboxEventData};
use countersign_provider::{
    DocumentBytes, OutboundError, ProgressLog, ProviderClient, Providers, SignedFile,
    StoredProgress,
};
use countersign_service::dispatcher::{DispatchError, DispatchEvent, DispatchOutcome, Dispatcher};
use countersign_service::outbox::event_json;
use countersign_service::test_doubles::ManualClock;
use countersign_service::test_doubles::MemoryDocuments;
use countersign_service::{AgreementService, CallbackProcessor, RetryPolicy};
use countersign_store::{AgreementGet, HistoryRead, MemoryStore, ProviderProgressStore};
use serde_json::json;

const MAIN: &[u8] = b"test";

/// A live provider played in memory: it records what it is asked, keeps one progress record
/// per send, and answers as it is told to.
struct FakeLive {
    calls: Mutex<Vec<String>>,
    /// What `send` answers after recording its progress.
    send_answer: Mutex<Result<(), OutboundError>>,
    documents_seen: Mutex<Vec<DocumentBytes>>,
    /// How long `send` takes between reading its progress and recording it.
    send_time: Mutex<std::time::Duration>,
}

impl FakeLive {
    fn new() -> Self {
        FakeLive {
            calls: Mutex::new(Vec::new()),
            send_answer: Mutex::new(Ok(())),
            documents_seen: Mutex::new(Vec::new()),
            send_time: Mutex::new(std::time::Duration::ZERO),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl ProviderClient for FakeLive {
    fn name(&self) -> &str {
        "zigned"
    }

    fn reads_documents(&self) -> bool {
        true
    }

    async fn send(
        &self,
        agreement: &Agreement,
        documents: &DocumentBytes,
        log: &dyn ProgressLog,
    ) -> Result<Option<Delivery>, OutboundError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("send {}", agreement.id));
        self.documents_seen.lock().unwrap().push(documents.clone());
        let previous = log.load().await?;
        let send_time = *self.send_time.lock().unwrap();
        tokio::time::sleep(send_time).await;
        let sends = previous.map_or(0, |stored| stored.state.parse::<u32>().unwrap_or(0)) + 1;
        log.save(StoredProgress {
            state: sends.to_string(),
            reference: Some(format!("ref-{}", agreement.id)),
        })
        .await?;
        self.send_answer.lock().unwrap().clone()?;
        Ok(Some(Delivery {
            reference: Some(format!("ref-{}", agreement.id)),
            participants: agreement
                .participants
                .iter()
                .map(|participant| (participant.id.clone(), format!("zp-{}", participant.id)))
                .collect::<BTreeMap<_, _>>(),
            signing_room_urls: BTreeMap::new(),
        }))
    }

    async fn invite(&self, _agreement: &Agreement, _step: u32) -> Result<(), OutboundError> {
        Ok(())
    }

    async fn reopen(
        &self,
        agreement: &Agreement,
        _log: &dyn ProgressLog,
    ) -> Result<(), OutboundError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("reopen {}", agreement.id));
        Ok(())
    }

    async fn cancel(
        &self,
        agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<bool, OutboundError> {
        if log.load().await?.is_none() {
            return Ok(false);
        }
        self.calls
            .lock()
            .unwrap()
            .push(format!("cancel {}", agreement.id));
        Ok(true)
    }

    async fn signed_document(
        &self,
        _agreement: &Agreement,
        _log: &dyn ProgressLog,
    ) -> Result<Option<SignedFile>, OutboundError> {
        Ok(None)
    }
}

struct World {
    store: Arc<MemoryStore>,
    agreements: AgreementService<MemoryStore>,
    callbacks: CallbackProcessor<MemoryStore>,
    clock: Arc<ManualClock>,
    sandbox: Arc<SandboxClient>,
    live: Arc<FakeLive>,
    documents: Arc<MemoryDocuments>,
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
                clock.clone(),
                Rules::default(),
                RetryPolicy::default(),
            ),
            store,
            clock,
            sandbox: Arc::new(SandboxClient::recording()),
            live: Arc::new(FakeLive::new()),
            documents: {
                let documents = MemoryDocuments::new();
                documents.put("memory://l.pdf", MAIN.to_vec());
                Arc::new(documents)
            },
        }
    }

    fn dispatcher(&self, with_live: bool) -> Dispatcher<MemoryStore> {
        let mut providers = Providers::new();
        providers.register_client(self.sandbox.clone());
        if with_live {
            providers.register_client(self.live.clone());
        }
        Dispatcher::new(
            self.store.clone(),
            providers,
            self.documents.clone(),
            self.clock.clone(),
            RetryPolicy::default(),
        )
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
            "documents": {"main": {"filename": "l.pdf", "mime_type": "application/pdf", "size": 4,
                "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "uri": "memory://l.pdf"}}
        }))
        .expect("a valid input");
        self.agreements
            .create("tenant-1", input, None)
            .await
            .expect("created")
            .agreement()
            .expect("no key: nothing replayed")
    }

    async fn lifecycle(&self, id: &str, request: LifecycleRequest) {
        self.agreements
            .lifecycle("tenant-1", id, request, None, None)
            .await
            .expect("lifecycle applied");
    }

    async fn sign(&self, id: &str, participant: &str) {
        let event = SandboxEvent {
            id: format!("evt-{id}-{participant}"),
            event_type: "participant.signed".into(),
            created_at: Utc::now(),
            data: SandboxEventData {
                agreement_id: id.into(),
                participant_id: Some(participant.into()),
                signed_document: None,
            },
        }
        .into_verified("sandbox");
        self.callbacks.process(&event).await.expect("applied");
    }

    /// A live agreement sent for signature, and its `AgreementSentForSignature` as the
    /// dispatcher's queue gets it.
    async fn live_agreement_sent(&self) -> (Agreement, DispatchEvent) {
        let agreement = self.create(false, false).await;
        self.lifecycle(&agreement.id, LifecycleRequest::Pending)
            .await;
        let send = self
            .events(&agreement.id, 0)
            .await
            .into_iter()
            .find(|event| event.detail_type == "AgreementSentForSignature")
            .expect("a send");
        (agreement, send)
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

fn dispatched(provider: &str, action: &'static str) -> DispatchOutcome {
    DispatchOutcome::Dispatched {
        provider: provider.into(),
        action,
    }
}

fn invite(agreement: &Agreement, step: u32, ids: &[&str]) -> SandboxCall {
    SandboxCall::Invite {
        agreement_id: agreement.id.clone(),
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
            dispatched("sandbox", "send"),
            dispatched("sandbox", "invite"),
        ]
    );
    world.sign(&agreement.id, "ada").await;
    let outcomes = world.dispatch_all(&dispatcher, &agreement.id, 3).await;
    assert_eq!(
        outcomes,
        vec![
            DispatchOutcome::NothingToDo("not an event the provider acts on"), // ParticipantSigned
            dispatched("sandbox", "invite"),
        ]
    );
    let id = agreement.id.clone();
    assert_eq!(
        world.sandbox.calls(),
        vec![
            SandboxCall::Send {
                agreement_id: id.clone()
            },
            invite(&agreement, 1, &["ada"]),
            invite(&agreement, 2, &["bob"]),
        ]
    );
    // The sandbox knows countersign's ids: no delivery is recorded, the version stays.
    let after = world.store.get_agreement(&id).await.unwrap().unwrap();
    assert_eq!(after.provider.reference, None);
    assert!(world
        .store
        .get_provider_progress(&id)
        .await
        .unwrap()
        .is_none());
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
    assert_eq!(outcomes.last(), Some(&dispatched("sandbox", "reopen")));
    // The send and the invitation published before the reopening are not acted on after it.
    assert_eq!(
        outcomes[1..3],
        [
            DispatchOutcome::NothingToDo("the agreement is no longer pending"),
            DispatchOutcome::NothingToDo("the agreement is no longer pending"),
        ]
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
    assert_eq!(outcomes, vec![dispatched("sandbox", "cancel")]);

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
        vec![DispatchOutcome::NothingToDo(
            "nothing was sent to the provider"
        )]
    );
}

#[tokio::test]
async fn a_live_agreement_goes_to_its_provider_and_its_delivery_is_recorded_once() {
    let world = World::new();
    let agreement = world.create(false, false).await;
    assert_eq!(agreement.provider.name, "zigned");
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    let sent = world.events(&agreement.id, 1).await;

    // Not configured here: retried (the queue redelivers), nothing sent anywhere.
    let error = world
        .dispatcher(false)
        .dispatch(&sent[0])
        .await
        .expect_err("no live provider here");
    assert!(matches!(error, DispatchError::Retryable(_)), "{error}");
    assert!(
        world.sandbox.calls().is_empty(),
        "a live agreement never goes to the sandbox"
    );

    let dispatcher = world.dispatcher(true);
    let before = world
        .store
        .get_agreement(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    let outcome = dispatcher.dispatch(&sent[0]).await.expect("dispatched");
    assert_eq!(
        outcome,
        DispatchOutcome::Delivered {
            provider: "zigned".into(),
            version: before.version + 1
        }
    );
    assert_eq!(
        world.live.documents_seen.lock().unwrap()[0]
            .values()
            .next()
            .map(Vec::as_slice),
        Some(MAIN),
        "the checked bytes reach the provider"
    );
    let delivered = world
        .store
        .get_agreement(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivered.provider.reference,
        Some(format!("ref-{}", agreement.id))
    );
    assert_eq!(
        delivered
            .participants
            .iter()
            .map(|participant| participant.provider_reference.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["zp-ada", "zp-bob"]
    );
    let history = world.store.history(&agreement.id).await.unwrap();
    assert_eq!(
        history.last().map(|entry| entry.entry_type),
        Some(EntryType::AgreementDeliveredToProvider)
    );
    // The provider's reference finds the agreement (the key the webhooks use).
    assert_eq!(
        world
            .store
            .find_by_provider_reference("zigned", &format!("ref-{}", agreement.id))
            .await
            .unwrap(),
        Some(agreement.id.clone())
    );

    // Redelivered: nothing is sent again, nothing changes.
    let again = dispatcher.dispatch(&sent[0]).await.expect("redelivered");
    assert_eq!(
        again,
        DispatchOutcome::NothingToDo("this round is already delivered")
    );
    assert_eq!(world.live.calls(), [format!("send {}", agreement.id)]);
    let unchanged = world
        .store
        .get_agreement(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.version, delivered.version);
}

#[tokio::test]
async fn a_document_that_does_not_match_fails_the_agreement_before_the_provider_sees_it() {
    let world = World::new();
    let agreement = world.create(false, false).await;
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    world.documents.put("memory://l.pdf", b"tess".to_vec());
    let sent = world.events(&agreement.id, 1).await;
    let outcome = world
        .dispatcher(true)
        .dispatch(&sent[0])
        .await
        .expect("handled");
    let DispatchOutcome::Failed { reason } = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert!(reason.contains("does not match its sha256"), "{reason}");
    assert!(
        world.live.calls().is_empty(),
        "nothing reached the provider"
    );
    let failed = world
        .store
        .get_agreement(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, Status::Failed);
    let history = world.store.history(&agreement.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.entry_type, EntryType::AgreementFailed);
    assert_eq!(last.reason.as_deref(), Some(reason.as_str()));
}

#[tokio::test]
async fn a_provider_refusal_fails_the_agreement_and_an_outage_is_retried() {
    let world = World::new();
    let agreement = world.create(false, false).await;
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    let sent = world.events(&agreement.id, 1).await;
    let dispatcher = world.dispatcher(true);

    *world.live.send_answer.lock().unwrap() =
        Err(OutboundError::Retryable("Zigned did not answer".into()));
    let error = dispatcher.dispatch(&sent[0]).await.expect_err("retried");
    assert!(matches!(error, DispatchError::Retryable(_)));
    let still = world
        .store
        .get_agreement(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status, Status::Pending);

    *world.live.send_answer.lock().unwrap() = Err(OutboundError::Permanent(
        "Zigned refused POST /agreements (422): bad issuer".into(),
    ));
    let outcome = dispatcher.dispatch(&sent[0]).await.expect("handled");
    assert_eq!(
        outcome,
        DispatchOutcome::Failed {
            reason: "the provider refused the agreement: Zigned refused POST /agreements (422): bad issuer".into()
        }
    );
    let failed = world
        .store
        .get_agreement(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, Status::Failed);
    // The progress of both attempts was recorded, one revision each.
    let progress = world
        .store
        .get_provider_progress(&agreement.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((progress.state.as_str(), progress.revision), ("2", 2));
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

/// The same send delivered twice at once (an event republished while its first dispatch runs):
/// the dispatches take turns, so the provider is asked once and the second finds it delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatches_of_one_agreement_take_turns() {
    let world = World::new();
    let dispatcher = world.dispatcher(true);
    *world.live.send_time.lock().unwrap() = std::time::Duration::from_millis(300);
    let (agreement, send) = world.live_agreement_sent().await;
    let (first, second) = tokio::join!(dispatcher.dispatch(&send), dispatcher.dispatch(&send));
    let mut outcomes = vec![first.expect("dispatched"), second.expect("dispatched")];
    outcomes.sort_by_key(|outcome| format!("{outcome:?}"));
    assert!(
        matches!(outcomes[0], DispatchOutcome::Delivered { .. }),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[1],
        DispatchOutcome::NothingToDo("this round is already delivered")
    );
    assert_eq!(world.live.calls(), vec![format!("send {}", agreement.id)]);
}

/// A lease another dispatch holds: this one waits, then gives up without calling the provider
/// and is retried; once the lease is given back the send goes through.
#[tokio::test]
async fn a_dispatch_waits_for_the_lease_then_is_retried() {
    let world = World::new();
    let dispatcher = world
        .dispatcher(true)
        .with_lease_wait(std::time::Duration::from_millis(100));
    let (agreement, send) = world.live_agreement_sent().await;
    let now = Utc::now();
    assert!(world
        .store
        .take_dispatch_lease(
            &agreement.id,
            "another-dispatch",
            now,
            now + chrono::Duration::hours(1)
        )
        .await
        .unwrap());
    let error = dispatcher
        .dispatch(&send)
        .await
        .expect_err("the lease is held");
    assert!(
        matches!(&error, DispatchError::Retryable(message) if message.contains("another dispatch")),
        "{error:?}"
    );
    assert!(world.live.calls().is_empty(), "the provider is not called");
    world
        .store
        .release_dispatch_lease(&agreement.id, "another-dispatch")
        .await
        .unwrap();
    assert!(matches!(
        dispatcher.dispatch(&send).await.expect("dispatched"),
        DispatchOutcome::Delivered { .. }
    ));
    assert_eq!(world.live.calls().len(), 1);
}

/// countersign-local hands the dispatcher its events in process: what it hands over is what the
/// dispatch queue carries on AWS (the event's JSON, read back).
#[tokio::test]
async fn the_in_process_dispatch_event_is_the_one_the_queue_carries() {
    let world = World::new();
    let agreement = world.create(true, true).await;
    world
        .lifecycle(&agreement.id, LifecycleRequest::Pending)
        .await;
    world.sign(&agreement.id, "ada").await;
    let history = world.store.history(&agreement.id).await.expect("history");
    let published: Vec<_> = history
        .iter()
        .filter_map(|entry| entry.published_event())
        .collect();
    assert!(published
        .iter()
        .any(|event| event.detail.signing_group.is_some()));
    for event in &published {
        let carried: DispatchEvent =
            serde_json::from_value(event_json(event, "bus")).expect("a dispatch event");
        assert_eq!(DispatchEvent::from(event), carried);
    }
}
