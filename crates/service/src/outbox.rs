//! The outbox relay: committed history entries become published events, in commit order (so in
//! `sequence` order per agreement), at least once.

use std::sync::Arc;

use async_trait::async_trait;
use countersign_domain::{HistoryEntry, PublishedEvent};
use countersign_store::{OutboxFeed, StoreError};
use serde_json::json;
use thiserror::Error;

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

/// Where events go: EventBridge on AWS, standard output locally.
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn publish(&self, events: &[PublishedEvent]) -> Result<(), SinkError>;
}

#[derive(Debug, Error)]
pub enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Reads the outbox feed from its position and publishes what it finds. The position only moves
/// after the sink took the events, so a failed publish is retried, never skipped.
pub struct OutboxRelay<F: ?Sized> {
    feed: Arc<F>,
    sink: Arc<dyn EventSink>,
    position: u64,
    batch: usize,
}

impl<F: OutboxFeed + ?Sized> OutboxRelay<F> {
    pub fn new(feed: Arc<F>, sink: Arc<dyn EventSink>, batch: usize) -> Self {
        OutboxRelay {
            feed,
            sink,
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
            let events: Vec<PublishedEvent> = entries
                .iter()
                .filter_map(|(_, entry): &(u64, HistoryEntry)| entry.published_event())
                .collect();
            if !events.is_empty() {
                self.sink.publish(&events).await?;
            }
            published += events.len();
            self.position = last;
        }
    }
}
