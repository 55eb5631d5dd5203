//! The callback processor: a batch of queued provider events, each applied exactly once; the
//! ones that failed are redelivered by SQS ([`each_message`]).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use countersign_aws::callback_queue::event_from_message;
use countersign_service::CallbackProcessor;
use countersign_store::{AgreementCommit, AgreementGet, ProviderProgressStore};

use super::sqs::each_message;

pub async fn process_batch<
    S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
>(
    processor: &CallbackProcessor<S>,
    batch: SqsEvent,
) -> SqsBatchResponse {
    each_message(
        batch,
        "callbacks",
        |body| event_from_message(body).map_err(|error| error.to_string()),
        |message_id, event| async move {
            let outcome = processor.process(&event).await?;
            tracing::info!(
                %message_id,
                event_id = %event.event_id,
                agreement = ?event.agreement,
                ?outcome,
                "provider event processed"
            );
            Ok::<_, countersign_service::ServiceError>(())
        },
    )
    .await
}
