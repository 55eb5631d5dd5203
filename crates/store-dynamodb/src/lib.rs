//! The DynamoDB store of countersign: every storage port of `countersign-store` over one table
//! (single-table design), the table's definition as data, and a request-counting interceptor.
//!
//! * [`DynamoStore`] implements [`countersign_store::Store`]. A commit is one
//!   `TransactWriteItems` (agreement, history entries, idempotency record, provider-event mark,
//!   each with its condition); a read of an agreement, its history or an idempotency record is
//!   strongly consistent; lists and the sweeper read sparse global secondary indexes, never a
//!   scan. The outbox feed is the table's stream (see [`DynamoStore`]).
//! * [`item`] is the item layout; [`table`] the table definition, its `create_table` and its
//!   CloudFormation fragment (`infra/table.json`).
//! * [`RequestCounter`] counts requests and items read per operation.
//! * [`inbox`]: the callback inbox of `countersign-local` on DynamoDB.

pub mod counting;
pub mod error;
pub mod inbox;
pub mod item;
pub mod progress;
pub mod store;
pub mod table;

pub use counting::{Counts, RequestCounter};
pub use store::DynamoStore;
pub use table::{create_table, table_definition, TableDefinition, OUTBOX_STREAM_FILTER};

/// A DynamoDB client from a loaded SDK configuration, with `counter` attached.
pub fn client_with_counter(
    config: &aws_config::SdkConfig,
    counter: &RequestCounter,
) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(config)
        .interceptor(counter.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}
