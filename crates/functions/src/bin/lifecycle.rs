//! countersign `lifecycle` function: POST /v1/agreements/{id}/lifecycle and the sandbox routes.

use countersign_functions::init::{role, serve_http};

#[tokio::main]
async fn main() -> Result<(), countersign_functions::Error> {
    serve_http::<role::LifecycleAndSandbox>().await
}
