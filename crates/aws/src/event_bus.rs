//! Published events go to EventBridge with `PutEvents`; [`publish_in_order`] decides the batches
//! and the retries, this module only speaks the API.
//!
//! [`publish_in_order`]: countersign_service::outbox::publish_in_order

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use countersign_domain::PublishedEvent;
use countersign_service::outbox::{EventBatchSender, SinkError, EVENT_SOURCE};

pub struct EventBridgeSender {
    client: Client,
    bus: String,
}

impl EventBridgeSender {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        EventBridgeSender {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl EventBatchSender for EventBridgeSender {
    async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError> {
        let mut entries = Vec::with_capacity(events.len());
        for event in events {
            let detail = serde_json::to_string(&event.detail)
                .map_err(|error| SinkError(error.to_string()))?;
            entries.push(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(EVENT_SOURCE)
                    .detail_type(event.detail_type)
                    .detail(detail)
                    .build(),
            );
        }
        let output = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| {
                SinkError(aws_sdk_eventbridge::error::DisplayErrorContext(&error).to_string())
            })?;
        // One result per entry, in request order; a failed one carries an error code.
        let results = output.entries();
        if results.len() != events.len() {
            return Err(SinkError(format!(
                "PutEvents answered {} entries for {}",
                results.len(),
                events.len()
            )));
        }
        Ok(results
            .iter()
            .map(|result| {
                if let Some(code) = result.error_code() {
                    tracing::warn!(
                        code,
                        message = result.error_message().unwrap_or(""),
                        "event rejected by EventBridge"
                    );
                }
                result.error_code().is_none() && result.event_id().is_some()
            })
            .collect())
    }
}
