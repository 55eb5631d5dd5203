//! The outbox relay over the embedded store, publishing through `publish_in_order`: every
//! committed event is published, in order per agreement, and the store forgets what the sender
//! took, so the feed stays as short as what is left.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use countersign_domain::{LifecycleRequest, PublishedEvent, Rules};
use countersign_service::outbox::{EventBatchSender, OutboxRelay, SinkError};
use countersign_service::test_doubles::ManualClock;
use countersign_service::{AgreementService, RetryPolicy};
use countersign_store::MemoryStore;
use serde_json::json;

/// Keeps what it took as (agreement, sequence); every call fails while `failing` is set, and
/// the events of the agreement in `refusing` are refused one by one.
#[derive(Default)]
struct RecordingSender {
    published: Mutex<Vec<(String, u64)>>,
    failing: Mutex<bool>,
    refusing: Mutex<Option<String>>,
}

#[async_trait]
impl EventBatchSender for RecordingSender {
    async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError> {
        if *self.failing.lock().unwrap() {
            return Err(SinkError("unavailable".to_owned()));
        }
        let refusing = self.refusing.lock().unwrap().clone();
        let mut published = self.published.lock().unwrap();
        Ok(events
            .iter()
            .map(|event| {
                let taken = refusing.as_deref() != Some(event.detail.agreement_id.as_str());
                if taken {
                    published.push((event.detail.agreement_id.clone(), event.detail.sequence));
                }
                taken
            })
            .collect())
    }
}

fn no_wait() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: std::time::Duration::ZERO,
        max_delay: std::time::Duration::ZERO,
    }
}

fn service(store: Arc<MemoryStore>) -> AgreementService<MemoryStore> {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
    ));
    AgreementService::new(store, clock, Rules::default(), RetryPolicy::default())
}

async fn create_and_send(agreements: &AgreementService<MemoryStore>) -> String {
    let input = serde_json::from_value(json!({
        "test_mode": true,
        "contract": {"contract_id": "C-1", "proposal_id": "P-1",
            "bank_information": {"account_holder": "Ada", "iban": "FR1420041010050500013M02606", "bic": "BNPAFRPP"}},
        "participants": [{"id": "ada", "name": "Ada", "email": "ada@example.com", "role": "signer"}],
        "documents": {"main": {"filename": "l.pdf", "mime_type": "application/pdf", "size": 1,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "uri": "s3://c/l.pdf"}}
    }))
    .expect("a valid input");
    let agreement = agreements
        .create("tenant-1", input, None)
        .await
        .expect("created")
        .agreement()
        .expect("no key: nothing replayed");
    agreements
        .lifecycle(
            "tenant-1",
            &agreement.id,
            LifecycleRequest::Pending,
            None,
            None,
        )
        .await
        .expect("sent");
    agreement.id
}

/// Each agreement's sequences, in the order the sink got them.
fn sequences_of(published: &[(String, u64)], id: &str) -> Vec<u64> {
    published
        .iter()
        .filter(|(agreement, _)| agreement == id)
        .map(|(_, sequence)| *sequence)
        .collect()
}

#[tokio::test]
async fn published_entries_are_released_and_the_feed_stays_bounded() {
    let store = Arc::new(MemoryStore::new());
    let agreements = service(store.clone());
    let sink = Arc::new(RecordingSender::default());
    let mut relay = OutboxRelay::new(store.clone(), sink.clone(), no_wait(), 7);

    let mut ids = Vec::new();
    for round in 0..3 {
        for _ in 0..20 {
            ids.push(create_and_send(&agreements).await);
        }
        assert!(store.outbox_kept() > 0, "round {round}: entries waiting");
        let published = relay.pump().await.expect("pumped");
        assert!(published > 0);
        assert_eq!(store.outbox_kept(), 0, "round {round}: everything released");
        // Nothing more to publish, and nothing published twice.
        assert_eq!(relay.pump().await.expect("pumped"), 0);
    }

    let published = sink.published.lock().unwrap().clone();
    for id in &ids {
        let sequences = sequences_of(&published, id);
        assert!(!sequences.is_empty(), "{id} published");
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        assert_eq!(sequences, expected, "{id}: once each, in order");
    }
}

#[tokio::test]
async fn entries_a_sink_refused_are_kept_and_published_later() {
    let store = Arc::new(MemoryStore::new());
    let agreements = service(store.clone());
    let sink = Arc::new(RecordingSender::default());
    let mut relay = OutboxRelay::new(store.clone(), sink.clone(), no_wait(), 100);

    let id = create_and_send(&agreements).await;
    let kept = store.outbox_kept();
    *sink.failing.lock().unwrap() = true;
    assert!(relay.pump().await.is_err());
    assert_eq!(store.outbox_kept(), kept, "nothing released");

    *sink.failing.lock().unwrap() = false;
    assert!(relay.pump().await.expect("pumped") > 0);
    assert_eq!(store.outbox_kept(), 0);
    let published = sink.published.lock().unwrap().clone();
    let sequences = sequences_of(&published, &id);
    let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
    assert_eq!(sequences, expected);
}

#[tokio::test]
async fn one_agreement_refused_holds_back_only_itself_and_is_published_later_in_order() {
    let store = Arc::new(MemoryStore::new());
    let agreements = service(store.clone());
    let sink = Arc::new(RecordingSender::default());
    let mut relay = OutboxRelay::new(store.clone(), sink.clone(), no_wait(), 100);

    let first = create_and_send(&agreements).await;
    let stuck = create_and_send(&agreements).await;
    let last = create_and_send(&agreements).await;
    *sink.refusing.lock().unwrap() = Some(stuck.clone());
    assert!(relay.pump().await.is_err(), "an event was not published");
    {
        let published = sink.published.lock().unwrap();
        assert!(!sequences_of(&published, &first).is_empty());
        assert!(!sequences_of(&published, &last).is_empty(), "others go on");
        assert!(sequences_of(&published, &stuck).is_empty());
    }
    assert!(store.outbox_kept() > 0, "the refused entries are kept");

    *sink.refusing.lock().unwrap() = None;
    relay.pump().await.expect("pumped");
    assert_eq!(store.outbox_kept(), 0);
    let published = sink.published.lock().unwrap().clone();
    for id in [&first, &stuck, &last] {
        // At least once, and the first delivery of each sequence in order.
        let mut firsts: Vec<u64> = Vec::new();
        for sequence in sequences_of(&published, id) {
            if !firsts.contains(&sequence) {
                firsts.push(sequence);
            }
        }
        let expected: Vec<u64> = (1..=firsts.len() as u64).collect();
        assert!(!firsts.is_empty(), "{id} published");
        assert_eq!(firsts, expected, "{id}");
    }
}
