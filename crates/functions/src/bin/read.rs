//! countersign `read` function: GET one, GET list, PATCH and GET history of agreements.

use countersign_functions::init::{serve_http, HttpRole};

#[tokio::main]
async fn main() -> Result<(), countersign_functions::Error> {
    serve_http(HttpRole::Agreements).await
}
