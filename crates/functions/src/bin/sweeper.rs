//! countersign `sweeper` function: on its schedule, expires the pending agreements that are due,
//! until shortly before its deadline.

use countersign_functions::{handlers, init, settings::Settings, Error};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    countersign_functions::init_tracing();
    let settings = Settings::from_env()?;
    let budget = settings.sweep_budget;
    let sweeper = &init::sweeper(&init::sdk_config()?, &settings);
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
