//! The provider dispatcher: SQS messages that a rule on the bus fed with the events the provider
//! acts on, each dispatched once; failures are redelivered, then dead-lettered.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use countersign_service::dispatcher::{DispatchEvent, Dispatcher};
use countersign_store::{AgreementCommit, AgreementGet, ProviderProgressStore};

pub async fn dispatch_batch<
    S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
>(
    dispatcher: &Dispatcher<S>,
    batch: SqsEvent,
) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for message in batch.records {
        let message_id = message.message_id.clone().unwrap_or_default();
        let event: DispatchEvent = match message.body.as_deref().map(serde_json::from_str) {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                tracing::error!(%message_id, %error, "unreadable dispatch message: left for the dead-letter queue");
                response.add_failure(message_id);
                continue;
            }
            None => {
                tracing::error!(%message_id, "dispatch message without a body: left for the dead-letter queue");
                response.add_failure(message_id);
                continue;
            }
        };
        match dispatcher.dispatch(&event).await {
            Ok(outcome) => {
                tracing::info!(%message_id, agreement_id = %event.detail.agreement_id, detail_type = %event.detail_type, ?outcome, "dispatched")
            }
            Err(error) => {
                tracing::warn!(%message_id, agreement_id = %event.detail.agreement_id, %error, "dispatch failed; SQS will redeliver it");
                response.add_failure(message_id);
            }
        }
    }
    response
}
