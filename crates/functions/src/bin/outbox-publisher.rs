//! countersign `outbox-publisher` function: the table's stream to EventBridge, in order per
//! agreement, batch item failures reported.

use aws_lambda_events::dynamodb::Event;
use countersign_functions::settings::Settings;
use countersign_functions::{handlers, init, Error};
use countersign_service::RetryPolicy;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let sender = &init::outbox_publisher(&init::sdk_config()?, &settings)?;
    let retry = &RetryPolicy::default();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(handlers::outbox::publish_batch(sender, event.payload, retry).await)
    }))
    .await
}
