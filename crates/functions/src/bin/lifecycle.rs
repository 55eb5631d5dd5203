//! countersign `lifecycle` function: POST /v1/agreements/{id}/lifecycle and the sandbox routes.

use countersign_functions::init::{serve_http, HttpRole};

#[tokio::main]
async fn main() -> Result<(), countersign_functions::Error> {
    serve_http(HttpRole::LifecycleAndSandbox).await
}
