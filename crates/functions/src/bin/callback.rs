//! countersign `callback` function: `POST /v1/callbacks/{provider}` verifies the webhook, puts
//! it on the callback queue and answers 202.

use countersign_functions::init::{role, serve_http};

#[tokio::main]
async fn main() -> Result<(), countersign_functions::Error> {
    serve_http::<role::Callbacks>().await
}
