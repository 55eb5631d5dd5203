//! countersign `dispatcher` function: asks each agreement's provider (picked by its
//! `provider.name`) to send, invite, reopen or cancel, from an SQS queue fed by the bus.

use aws_lambda_events::sqs::SqsEvent;
use countersign_functions::{handlers, init, settings::Settings, Error};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let dispatcher = &init::dispatcher(&init::sdk_config()?, &settings)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(match dispatcher.get().await {
            Ok(dispatcher) => {
                handlers::dispatcher::dispatch_batch(&dispatcher, event.payload).await
            }
            Err(error) => handlers::sqs::all_failed(event.payload, "dispatch", &error),
        })
    }))
    .await
}
