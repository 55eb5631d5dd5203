//! countersign `outbox-publisher` function: the table's stream to EventBridge, in order per
//! agreement, batch item failures reported.

use aws_lambda_events::dynamodb::Event;
use countersign_aws::EventBridgeSender;
use countersign_functions::settings::{Settings, EVENT_BUS_NAME};
use countersign_functions::{handlers, init, Error};
use countersign_service::RetryPolicy;
use lambda_runtime::{service_fn, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let bus = Settings::require(&settings.event_bus_name, EVENT_BUS_NAME)?;
    let sender = &EventBridgeSender::new(
        aws_sdk_eventbridge::Client::new(&init::sdk_config().await),
        bus,
    );
    let retry = &RetryPolicy::default();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(handlers::outbox::publish_batch(sender, event.payload, retry).await)
    }))
    .await
}
