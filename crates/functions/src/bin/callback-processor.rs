//! countersign `callback-processor` function: applies queued provider events (SQS batches,
//! `ReportBatchItemFailures`), fetching and keeping the signed document when the provider
//! announces it.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use countersign_functions::init::{self, ProviderHalves};
use countersign_functions::{handlers, settings::Settings, Error};
use countersign_service::{CallbackProcessor, RetryPolicy, SystemClock};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = init::sdk_config().await;
    let processor = &CallbackProcessor::new(
        init::store(&sdk, &settings),
        Arc::new(SystemClock),
        settings.rules.clone(),
        RetryPolicy::default(),
    )
    .with_signed_documents(
        init::providers(&sdk, &settings, ProviderHalves::Clients).await?,
        init::documents(&sdk, &settings)?,
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handlers::callbacks::process_batch(processor, event.payload).await)
    }))
    .await
}
