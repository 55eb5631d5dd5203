//! The outbox publisher on the table's stream: each inserted history item that publishes an
//! event goes to EventBridge, in order per agreement; what did not go out is reported so the
//! stream hands it (and what follows it) over again.

use aws_lambda_events::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use countersign_domain::{HistoryEntry, PublishedEvent};
use countersign_service::outbox::{publish_in_order, EventBatchSender};
use countersign_service::RetryPolicy;
use countersign_store_dynamodb::item::history_entry_of_image;

/// The history entry a stream record inserted, if it inserted one.
pub fn inserted_history_entry(record: &EventRecord) -> Result<Option<HistoryEntry>, String> {
    if record.event_name != "INSERT" {
        return Ok(None);
    }
    // The image in DynamoDB's JSON form: {"kind":{"S":"history"},"entry":{"S":"{...}"},...}.
    let image =
        serde_json::to_value(&record.change.new_image).map_err(|error| error.to_string())?;
    history_entry_of_image(|name| image[name]["S"].as_str()).map_err(|error| error.to_string())
}

pub async fn publish_batch(
    sender: &dyn EventBatchSender,
    batch: Event,
    retry: &RetryPolicy,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut fail = |record: &EventRecord| {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = record.change.sequence_number.clone();
        response.batch_item_failures.push(failure);
    };
    let mut events: Vec<PublishedEvent> = Vec::new();
    let mut records_of_events: Vec<&EventRecord> = Vec::new();
    for record in &batch.records {
        match inserted_history_entry(record) {
            Ok(Some(entry)) => {
                if let Some(event) = entry.published_event() {
                    events.push(event);
                    records_of_events.push(record);
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(event_id = %record.event_id, %error, "stream record not published");
                fail(record);
            }
        }
    }
    let report = publish_in_order(sender, &events, retry).await;
    for (record, published) in records_of_events.iter().zip(&report.published) {
        if !published {
            fail(record);
        }
    }
    tracing::info!(
        records = batch.records.len(),
        events = events.len(),
        failures = response.batch_item_failures.len(),
        "stream batch published"
    );
    response
}
