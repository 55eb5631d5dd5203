//! countersign `dispatcher` function: asks each agreement's provider (picked by its
//! `provider.name`) to send, invite, reopen or cancel, from an SQS queue fed by the bus.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use countersign_functions::init::{self, ProviderHalves};
use countersign_functions::{handlers, settings::Settings, Error};
use countersign_service::dispatcher::Dispatcher;
use countersign_service::{RetryPolicy, SystemClock};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = init::sdk_config().await;
    let dispatcher = &Dispatcher::new(
        init::store(&sdk, &settings),
        init::providers(&sdk, &settings, ProviderHalves::Clients).await?,
        init::documents(&sdk, &settings)?,
        Arc::new(SystemClock),
        RetryPolicy::default(),
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handlers::dispatcher::dispatch_batch(dispatcher, event.payload).await)
    }))
    .await
}
