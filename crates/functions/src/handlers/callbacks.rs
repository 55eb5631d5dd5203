//! The callback processor: a batch of queued provider events, each applied exactly once; the
//! ones that failed are reported so SQS redelivers only them (and dead-letters them after the
//! queue's `maxReceiveCount`).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use countersign_aws::callback_queue::event_from_message;
use countersign_service::CallbackProcessor;
use countersign_store::{AgreementCommit, AgreementGet, ProviderProgressStore};

pub async fn process_batch<
    S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
>(
    processor: &CallbackProcessor<S>,
    batch: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let event = match message.body.as_deref().map(event_from_message) {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                tracing::error!(%message_id, %error, "unreadable callback message: left for the dead-letter queue");
                response.add_failure(message_id);
                continue;
            }
            None => {
                tracing::error!(%message_id, "callback message without a body: left for the dead-letter queue");
                response.add_failure(message_id);
                continue;
            }
        };
        match processor.process(&event).await {
            Ok(outcome) => tracing::info!(
                %message_id,
                event_id = %event.event_id,
                agreement = ?event.agreement,
                ?outcome,
                "provider event processed"
            ),
            Err(error) => {
                tracing::warn!(%message_id, event_id = %event.event_id, %error, "provider event failed; SQS will redeliver it");
                response.add_failure(message_id);
            }
        }
    }
    response
}
