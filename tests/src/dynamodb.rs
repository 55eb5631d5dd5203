//! Seeding large tables fast, for the tests and the bench that measure cost against table size.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use tokio::task::JoinSet;

/// Requests in flight while seeding.
const IN_FLIGHT: usize = 8;

/// Writes `items` straight into `table` with `BatchWriteItem` (25 items a request, 8 requests in
/// flight), until none is left unprocessed. Outside any store's guarantees: only for seeding.
pub async fn batch_put(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<(), String> {
    let mut batches = items.chunks(25).map(|chunk| {
        chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item.clone()))
                    .build()
                    .map_err(|error| error.to_string())?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<WriteRequest>, String>>()
    });
    let mut running = JoinSet::new();
    loop {
        while running.len() < IN_FLIGHT {
            let Some(batch) = batches.next() else { break };
            let (client, table) = (client.clone(), table.to_owned());
            let mut batch = batch?;
            running.spawn(async move {
                while !batch.is_empty() {
                    let output = client
                        .batch_write_item()
                        .request_items(&table, batch)
                        .send()
                        .await
                        .map_err(|error| format!("BatchWriteItem: {error:?}"))?;
                    batch = output
                        .unprocessed_items()
                        .and_then(|items| items.get(&table).cloned())
                        .unwrap_or_default();
                }
                Ok::<(), String>(())
            });
        }
        match running.join_next().await {
            Some(done) => done.map_err(|error| error.to_string())??,
            None => return Ok(()),
        }
    }
}
