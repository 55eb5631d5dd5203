//! countersign `dispatcher` function: asks the e-signature provider to send, invite, withdraw or
//! cancel (the sandbox one for test-mode agreements), from an SQS queue fed by the bus.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use countersign_functions::{handlers, init, settings::Settings, Error};
use countersign_service::dispatcher::{Dispatcher, SandboxClient};
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let store = init::store(&init::sdk_config().await, &settings);
    // No live provider adapter exists yet: live agreements fail here, visibly, into the DLQ.
    let dispatcher = &Dispatcher::new(store, Arc::new(SandboxClient::logging()), None);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(handlers::dispatcher::dispatch_batch(dispatcher, event.payload).await)
    }))
    .await
}
