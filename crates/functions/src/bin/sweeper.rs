//! countersign `sweeper` function: on its schedule, expires the pending agreements that are due,
//! until shortly before its deadline.

use std::sync::Arc;

use countersign_functions::{handlers, init, settings::Settings, Error};
use countersign_service::{RetryPolicy, Sweeper, SystemClock};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let store = init::store(&init::sdk_config().await, &settings);
    let budget = settings.sweep_budget;
    let sweeper = &Sweeper::new(
        store,
        Arc::new(SystemClock),
        RetryPolicy::default(),
        settings.sweep_page_size,
    );
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let report = handlers::sweeper::sweep(sweeper, event.context.deadline, budget).await?;
        Ok::<_, Error>(serde_json::json!({
            "expired": report.expired,
            "skipped": report.skipped,
            "pages": report.pages,
            "stopped_at_deadline": report.stopped_at_deadline,
        }))
    }))
    .await
}
