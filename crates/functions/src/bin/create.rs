//! countersign `create` function: POST /v1/agreements.

use countersign_functions::init::{role, serve_http};

#[tokio::main]
async fn main() -> Result<(), countersign_functions::Error> {
    serve_http::<role::Agreements>().await
}
