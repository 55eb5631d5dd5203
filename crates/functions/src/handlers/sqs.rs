//! One SQS batch with `ReportBatchItemFailures`, for both queue consumers: each message read and
//! handled in order; a message that cannot be read, or whose handling failed, is reported, so SQS
//! redelivers only those (and dead-letters them after the queue's `maxReceiveCount`).

use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};

/// `read` turns a body into what `handle` takes; `queue` names the messages in the logs.
pub async fn each_message<T, R, H, Fut, E>(
    batch: SqsEvent,
    queue: &'static str,
    read: R,
    handle: H,
) -> SqsBatchResponse
where
    R: Fn(&str) -> Result<T, String>,
    H: Fn(String, T) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let item = match message.body.as_deref().map(&read) {
            Some(Ok(item)) => item,
            Some(Err(error)) => {
                tracing::error!(%message_id, queue, %error, "unreadable message: left for the dead-letter queue");
                response.add_failure(message_id);
                continue;
            }
            None => {
                tracing::error!(%message_id, queue, "message without a body: left for the dead-letter queue");
                response.add_failure(message_id);
                continue;
            }
        };
        if let Err(error) = handle(message_id.clone(), item).await {
            tracing::warn!(%message_id, queue, %error, "message failed; SQS will redeliver it");
            response.add_failure(message_id);
        }
    }
    response
}

/// The whole batch reported as failed, when the function could not build what handles it (its
/// secrets could not be read): SQS redelivers every message later, and nothing is lost.
pub fn all_failed(batch: SqsEvent, queue: &'static str, error: &dyn Display) -> SqsBatchResponse {
    tracing::error!(queue, %error, messages = batch.records.len(), "cannot handle the batch now; SQS will redeliver it");
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        response.add_failure(message.message_id.unwrap_or_default());
    }
    response
}
