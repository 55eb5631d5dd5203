//! The provider dispatcher: SQS messages that a rule on the bus fed with the events the provider
//! acts on, each dispatched once; failures are redelivered, then dead-lettered
//! ([`each_message`]).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use countersign_service::dispatcher::{DispatchError, DispatchEvent, Dispatcher};
use countersign_store::{AgreementCommit, AgreementGet, ProviderProgressStore};

use super::sqs::each_message;

pub async fn dispatch_batch<
    S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
>(
    dispatcher: &Dispatcher<S>,
    batch: SqsEvent,
) -> SqsBatchResponse {
    each_message(
        batch,
        "dispatch",
        |body| serde_json::from_str::<DispatchEvent>(body).map_err(|error| error.to_string()),
        |message_id, event| async move {
            let outcome = dispatcher.dispatch(&event).await?;
            tracing::info!(%message_id, agreement_id = %event.detail.agreement_id, detail_type = %event.detail_type, ?outcome, "dispatched");
            Ok::<_, DispatchError>(())
        },
    )
    .await
}
