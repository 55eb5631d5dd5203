//! countersign `create` function: POST /v1/agreements.

use countersign_functions::init::{serve_http, HttpRole};

#[tokio::main]
async fn main() -> Result<(), countersign_functions::Error> {
    serve_http(HttpRole::Agreements).await
}
