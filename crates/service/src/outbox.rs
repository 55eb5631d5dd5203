//! The outbox relay: committed history entries become published events, in commit order (so in
//! `sequence` order per agreement), at least once.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use countersign_domain::{HistoryEntry, PublishedEvent};
use countersign_store::{OutboxFeed, StoreError};
use serde_json::json;
use thiserror::Error;

use crate::RetryPolicy;

pub const EVENT_SOURCE: &str = "countersign";

/// The event as EventBridge carries it (`source`, `detail-type`, `detail`).
pub fn event_json(event: &PublishedEvent, bus: &str) -> serde_json::Value {
    json!({
        "source": EVENT_SOURCE,
        "detail-type": event.detail_type,
        "event-bus-name": bus,
        "detail": event.detail,
    })
}

#[derive(Debug, Error)]
#[error("event sink failed: {0}")]
pub struct SinkError(pub String);

#[derive(Debug, Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Events the sender did not take after every attempt: they stay in the feed, and the next
    /// pump publishes them again, in order.
    #[error("{0} events not published yet; kept for the next pump")]
    Unpublished(usize),
}

/// Reads the outbox feed from its position and publishes what it finds through
/// [`publish_in_order`], the publisher of the Lambda functions too. The position only moves,
/// and the feed only releases the entries, up to the first event not taken, so an event that
/// was not published is published later, never skipped (and others after it may go out again:
/// at least once, in order per agreement).
pub struct OutboxRelay<F: ?Sized> {
    feed: Arc<F>,
    sender: Arc<dyn EventBatchSender>,
    retry: RetryPolicy,
    position: u64,
    batch: usize,
}

impl<F: OutboxFeed + ?Sized> OutboxRelay<F> {
    pub fn new(
        feed: Arc<F>,
        sender: Arc<dyn EventBatchSender>,
        retry: RetryPolicy,
        batch: usize,
    ) -> Self {
        OutboxRelay {
            feed,
            sender,
            retry,
            position: 0,
            batch: batch.max(1),
        }
    }

    /// Publishes everything committed so far; returns how many events went out.
    pub async fn pump(&mut self) -> Result<usize, RelayError> {
        let mut published = 0;
        loop {
            let entries = self.feed.read_outbox(self.position, self.batch).await?;
            let Some((last, _)) = entries.last() else {
                return Ok(published);
            };
            let last = *last;
            // Each event with the position of its entry.
            let (positions, events): (Vec<u64>, Vec<PublishedEvent>) = entries
                .iter()
                .filter_map(|(position, entry): &(u64, HistoryEntry)| {
                    entry.published_event().map(|event| (*position, event))
                })
                .unzip();
            let report = publish_in_order(self.sender.as_ref(), &events, &self.retry).await;
            if let Some(first) = report.first_unpublished() {
                // Everything before the first entry not taken is done with.
                let done = entries
                    .iter()
                    .map(|(position, _)| *position)
                    .take_while(|position| *position < positions[first])
                    .last();
                if let Some(done) = done {
                    self.position = done;
                    self.feed.release_outbox(done).await?;
                }
                let unpublished = report.published.iter().filter(|taken| !**taken).count();
                return Err(RelayError::Unpublished(unpublished));
            }
            published += events.len();
            self.position = last;
            // The sender has everything up to `last`: the feed need not keep it.
            self.feed.release_outbox(last).await?;
        }
    }
}

/// At most this many events per call of an [`EventBatchSender`] (EventBridge's `PutEvents` limit).
pub const MAX_EVENTS_PER_CALL: usize = 10;

/// Where events go: EventBridge on AWS, standard output locally. Sends up to
/// [`MAX_EVENTS_PER_CALL`] events in one call; answers, per event, whether it was accepted. `Err` means the call as a whole failed (nothing is known to be accepted).
#[async_trait]
pub trait EventBatchSender: Send + Sync {
    async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError>;
}

/// Which of the events handed to [`publish_in_order`] went out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// One flag per event, in the order given.
    pub published: Vec<bool>,
}

impl PublishReport {
    /// The first event that did not go out: where a redelivery must start.
    pub fn first_unpublished(&self) -> Option<usize> {
        self.published.iter().position(|published| !published)
    }
}

/// Publishes `events` (given in `sequence` order per agreement) at least once and in order per
/// agreement: a call carries at most one event of each agreement, and an agreement's next event
/// goes out only after the previous one was accepted. Rejected events are retried with
/// `retry`'s backoff; once an event has used all its attempts, its agreement's remaining events
/// are left unpublished (the caller redelivers them later) while other agreements go on.
pub async fn publish_in_order(
    sender: &dyn EventBatchSender,
    events: &[PublishedEvent],
    retry: &RetryPolicy,
) -> PublishReport {
    let mut published = vec![false; events.len()];
    let mut attempts = vec![0u32; events.len()];
    let mut given_up: HashSet<&str> = HashSet::new();
    loop {
        // The first pending event of each agreement still going, up to the call limit.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut batch: Vec<usize> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let agreement = event.detail.agreement_id.as_str();
            if published[index] || !seen.insert(agreement) || given_up.contains(agreement) {
                continue;
            }
            batch.push(index);
            if batch.len() == MAX_EVENTS_PER_CALL {
                break;
            }
        }
        if batch.is_empty() {
            return PublishReport { published };
        }
        let refs: Vec<&PublishedEvent> = batch.iter().map(|&index| &events[index]).collect();
        let accepted = match sender.send_batch(&refs).await {
            Ok(accepted) if accepted.len() == batch.len() => accepted,
            Ok(accepted) => {
                tracing::error!(
                    sent = batch.len(),
                    answered = accepted.len(),
                    "event sink answered for a different number of events"
                );
                vec![false; batch.len()]
            }
            Err(error) => {
                tracing::warn!(%error, "publishing a batch of events failed");
                vec![false; batch.len()]
            }
        };
        let mut worst_attempt = 0;
        for (&index, accepted) in batch.iter().zip(accepted) {
            if accepted {
                published[index] = true;
                continue;
            }
            worst_attempt = worst_attempt.max(attempts[index]);
            attempts[index] += 1;
            if attempts[index] >= retry.max_attempts {
                tracing::error!(agreement_id = %events[index].detail.agreement_id, sequence = events[index].detail.sequence, "event not published after every attempt; left for redelivery");
                given_up.insert(events[index].detail.agreement_id.as_str());
            }
        }
        if batch.iter().any(|&index| !published[index]) {
            retry.pause(worst_attempt).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_domain::{EventDetail, Journey, Status};
    use std::sync::Mutex;
    use std::time::Duration;

    fn event(agreement: &str, sequence: u64) -> PublishedEvent {
        PublishedEvent {
            detail_type: "AgreementUpdated",
            detail: EventDetail {
                agreement_id: agreement.to_owned(),
                tenant: "t".to_owned(),
                sequence,
                history_sequence: sequence,
                version: sequence,
                status: Status::Draft,
                signature_status: None,
                journey: Journey::Waiting,
                lookup_key: None,
                participant_id: None,
                signing_group: None,
                reason: None,
                occurred_at: chrono::DateTime::UNIX_EPOCH,
            },
        }
    }

    fn no_wait(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// Records every call and what it accepted; `reject` decides per (agreement, sequence, try).
    struct FakeSender<F> {
        calls: Mutex<Vec<Vec<(String, u64)>>>,
        accepted: Mutex<Vec<(String, u64)>>,
        tries: Mutex<std::collections::HashMap<(String, u64), u32>>,
        reject: F,
    }

    impl<F: Fn(&str, u64, u32) -> bool + Send + Sync> FakeSender<F> {
        fn new(reject: F) -> Self {
            FakeSender {
                calls: Mutex::default(),
                accepted: Mutex::default(),
                tries: Mutex::default(),
                reject,
            }
        }

        fn accepted_sequences(&self, agreement: &str) -> Vec<u64> {
            let accepted = self.accepted.lock().unwrap();
            accepted
                .iter()
                .filter(|(a, _)| a == agreement)
                .map(|(_, s)| *s)
                .collect()
        }
    }

    #[async_trait]
    impl<F: Fn(&str, u64, u32) -> bool + Send + Sync> EventBatchSender for FakeSender<F> {
        async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError> {
            let keys: Vec<(String, u64)> = events
                .iter()
                .map(|e| (e.detail.agreement_id.clone(), e.detail.sequence))
                .collect();
            self.calls.lock().unwrap().push(keys.clone());
            let mut answers = Vec::new();
            for key in keys {
                let try_number = {
                    let mut tries = self.tries.lock().unwrap();
                    let count = tries.entry(key.clone()).or_default();
                    *count += 1;
                    *count
                };
                let rejected = (self.reject)(&key.0, key.1, try_number);
                if !rejected {
                    self.accepted.lock().unwrap().push(key);
                }
                answers.push(!rejected);
            }
            Ok(answers)
        }
    }

    /// A's 12, B's 8 and C's 5 events, interleaved as a stream batch would carry them.
    fn interleaved() -> Vec<PublishedEvent> {
        let mut events = Vec::new();
        for sequence in 1..=12 {
            for (agreement, last) in [("A", 12), ("B", 8), ("C", 5)] {
                if sequence <= last {
                    events.push(event(agreement, sequence));
                }
            }
        }
        events
    }

    #[tokio::test]
    async fn every_event_goes_out_in_order_at_most_ten_per_call_one_per_agreement() {
        let sender = FakeSender::new(|_, _, _| false);
        let events = interleaved();
        let report = publish_in_order(&sender, &events, &no_wait(3)).await;
        assert!(report.published.iter().all(|p| *p));
        assert_eq!(report.first_unpublished(), None);
        for call in sender.calls.lock().unwrap().iter() {
            assert!(call.len() <= MAX_EVENTS_PER_CALL, "{call:?}");
            let agreements: HashSet<&str> = call.iter().map(|(a, _)| a.as_str()).collect();
            assert_eq!(
                agreements.len(),
                call.len(),
                "one event per agreement per call: {call:?}"
            );
        }
        assert_eq!(sender.accepted_sequences("A"), (1..=12).collect::<Vec<_>>());
        assert_eq!(sender.accepted_sequences("B"), (1..=8).collect::<Vec<_>>());
        assert_eq!(sender.accepted_sequences("C"), (1..=5).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_rejected_event_is_retried_before_its_successors() {
        // A's event 2 is rejected twice, then accepted.
        let sender = FakeSender::new(|agreement, sequence, try_number| {
            agreement == "A" && sequence == 2 && try_number <= 2
        });
        let events = interleaved();
        let report = publish_in_order(&sender, &events, &no_wait(5)).await;
        assert_eq!(report.first_unpublished(), None);
        assert_eq!(sender.accepted_sequences("A"), (1..=12).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn an_event_that_keeps_failing_holds_back_only_its_agreement() {
        let sender = FakeSender::new(|agreement, sequence, _| agreement == "B" && sequence == 3);
        let events = interleaved();
        let report = publish_in_order(&sender, &events, &no_wait(4)).await;
        assert_eq!(sender.accepted_sequences("A"), (1..=12).collect::<Vec<_>>());
        assert_eq!(sender.accepted_sequences("C"), (1..=5).collect::<Vec<_>>());
        assert_eq!(sender.accepted_sequences("B"), vec![1, 2]);
        for (index, event) in events.iter().enumerate() {
            let expected = !(event.detail.agreement_id == "B" && event.detail.sequence >= 3);
            assert_eq!(report.published[index], expected, "{:?}", event.detail);
        }
        let first = report.first_unpublished().expect("B's third event");
        assert_eq!(
            (
                events[first].detail.agreement_id.as_str(),
                events[first].detail.sequence
            ),
            ("B", 3)
        );
        // Tried exactly as often as the policy allows.
        assert_eq!(sender.tries.lock().unwrap()[&("B".to_owned(), 3)], 4);
    }

    struct FailingCalls(Mutex<u32>);

    #[async_trait]
    impl EventBatchSender for FailingCalls {
        async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError> {
            let mut failures_left = self.0.lock().unwrap();
            if *failures_left > 0 {
                *failures_left -= 1;
                return Err(SinkError("throttled".to_owned()));
            }
            Ok(vec![true; events.len()])
        }
    }

    #[tokio::test]
    async fn a_failed_call_is_retried() {
        let events = interleaved();
        let report = publish_in_order(&FailingCalls(Mutex::new(2)), &events, &no_wait(3)).await;
        assert_eq!(report.first_unpublished(), None);
        let report = publish_in_order(&FailingCalls(Mutex::new(100)), &events, &no_wait(3)).await;
        assert_eq!(report.first_unpublished(), Some(0), "nothing went out");
        assert!(report.published.iter().all(|p| !p));
    }
}
