//! AWS adapters of the service ports: the SQS callback queue, the EventBridge event sender and
//! the S3 documents. (countersign-local's reader of the table's stream is in `crates/local`.)
//! The DynamoDB store is its own crate (`countersign-store-dynamodb`).

pub mod callback_queue;
pub mod documents;
pub mod event_bus;
pub mod http_client;

pub use callback_queue::SqsCallbackQueue;
pub use documents::S3Documents;
pub use event_bus::EventBridgeSender;
pub use http_client::sdk_http_client;
