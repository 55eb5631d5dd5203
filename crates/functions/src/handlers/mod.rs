//! The event handlers of the non-HTTP functions, generic over the store where they read it, so
//! they are tested on the embedded store and run on DynamoDB.

pub mod callbacks;
pub mod dispatcher;
pub mod outbox;
pub mod sqs;
pub mod sweeper;
