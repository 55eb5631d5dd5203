//! countersign `callback-processor` function: applies queued provider events (SQS batches,
//! `ReportBatchItemFailures`), fetching and keeping the signed document when the provider
//! announces it.

use aws_lambda_events::sqs::SqsEvent;
use countersign_functions::{handlers, init, settings::Settings, Error};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let processor = &init::callback_processor(&init::sdk_config()?, &settings)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(match processor.get().await {
            Ok(processor) => handlers::callbacks::process_batch(&processor, event.payload).await,
            Err(error) => handlers::sqs::all_failed(event.payload, "callbacks", &error),
        })
    }))
    .await
}
