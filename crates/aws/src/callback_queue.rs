//! Verified provider events travel from the callback function to the callback processor on SQS,
//! one message each, the event as JSON.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use countersign_provider::VerifiedEvent;
use countersign_service::callbacks::{CallbackQueue, QueueError};

pub struct SqsCallbackQueue {
    client: Client,
    queue_url: String,
}

impl SqsCallbackQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsCallbackQueue {
            client,
            queue_url: queue_url.into(),
        }
    }
}

/// The message body of a queued event.
pub fn message_body(event: &VerifiedEvent) -> Result<String, QueueError> {
    serde_json::to_string(event).map_err(|error| QueueError(error.to_string()))
}

/// Reads a message body back; `Err` for a poison message (it goes to the DLQ after the queue's
/// `maxReceiveCount`).
pub fn event_from_message(body: &str) -> Result<VerifiedEvent, serde_json::Error> {
    serde_json::from_str(body)
}

#[async_trait]
impl CallbackQueue for SqsCallbackQueue {
    async fn enqueue(&self, event: &VerifiedEvent) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message_body(event)?)
            .send()
            .await
            .map_err(|error| {
                QueueError(aws_sdk_sqs::error::DisplayErrorContext(&error).to_string())
            })?;
        Ok(())
    }
}
