//! AWS adapters of the service ports: the SQS callback queue, the EventBridge event sender, and
//! the table's stream read directly (for long-running processes).
//! The DynamoDB store is its own crate (`countersign-store-dynamodb`).

pub mod callback_queue;
pub mod documents;
pub mod event_bus;
pub mod stream_feed;

pub use callback_queue::SqsCallbackQueue;
pub use documents::S3Documents;
pub use event_bus::EventBridgeSender;
pub use stream_feed::StreamFeed;
