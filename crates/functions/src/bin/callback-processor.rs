//! countersign `callback-processor` function: applies queued provider events (SQS batches,
//! `ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use countersign_functions::{handlers, init, settings::Settings, Error};
use countersign_service::{CallbackProcessor, RetryPolicy, SystemClock};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let store = init::store(&init::sdk_config().await, &settings);
    let processor = &CallbackProcessor::new(
        store,
        Arc::new(SystemClock),
        settings.rules,
        RetryPolicy::default(),
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handlers::callbacks::process_batch(processor, event.payload).await)
    }))
    .await
}
