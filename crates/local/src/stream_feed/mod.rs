//! The table's stream read directly (DynamoDB Streams `GetRecords`), for `countersign-local` on
//! DynamoDB: on AWS the outbox publisher function gets the same records from its event source
//! mapping instead.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use countersign_domain::HistoryEntry;
use countersign_store_dynamodb::item::history_entry_of_image;

/// Polls every shard of a table's stream, oldest record first, and yields the history entries
/// the table inserted. Shards that appear later (DynamoDB rolls them over) are read from their
/// start, so nothing committed is skipped.
pub struct StreamFeed {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// The next iterator of each open shard.
    iterators: HashMap<String, String>,
    /// Shards read to their end.
    finished: HashSet<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("reading the table's stream: {0}")]
pub struct StreamError(pub String);

/// A failed DynamoDB or DynamoDB Streams request, with the SDK's whole chain of causes.
fn stream_error(error: impl std::error::Error) -> StreamError {
    StreamError(aws_sdk_dynamodbstreams::error::DisplayErrorContext(&error).to_string())
}

impl StreamFeed {
    /// The feed of `table`'s stream. `from_now`: skip what the stream already holds (a new
    /// process prints what happens from its start), else read it all.
    pub async fn open(
        dynamodb: &aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: &str,
        from_now: bool,
    ) -> Result<StreamFeed, StreamError> {
        let description = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(stream_error)?;
        let stream_arn = description
            .table()
            .and_then(|table| table.latest_stream_arn())
            .ok_or_else(|| StreamError(format!("table {table} has no stream")))?
            .to_owned();
        let mut feed = StreamFeed {
            streams,
            stream_arn,
            iterators: HashMap::new(),
            finished: HashSet::new(),
        };
        let start = if from_now {
            ShardIteratorType::Latest
        } else {
            ShardIteratorType::TrimHorizon
        };
        feed.discover_shards(start).await?;
        Ok(feed)
    }

    async fn discover_shards(&mut self, start: ShardIteratorType) -> Result<(), StreamError> {
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(stream_error)?;
        let shards = description
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default();
        for shard in shards {
            let Some(shard_id) = shard.shard_id() else {
                continue;
            };
            if self.iterators.contains_key(shard_id) || self.finished.contains(shard_id) {
                continue;
            }
            let iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard_id)
                .shard_iterator_type(start.clone())
                .send()
                .await
                .map_err(stream_error)?;
            if let Some(iterator) = iterator.shard_iterator {
                self.iterators.insert(shard_id.to_owned(), iterator);
            }
        }
        Ok(())
    }

    /// The history entries inserted since the last poll, in stream order per shard. All or
    /// nothing: the shards' iterators move on only once every shard was read, so a read that
    /// fails leaves the next poll to read again what this one had read already.
    pub async fn poll(&mut self) -> Result<Vec<HistoryEntry>, StreamError> {
        // New shards are read from their start: they hold only what came after the old ones.
        self.discover_shards(ShardIteratorType::TrimHorizon).await?;
        let mut moved: Vec<(String, Option<String>)> = Vec::new();
        let mut entries = Vec::new();
        let mut shard_ids: Vec<String> = self.iterators.keys().cloned().collect();
        shard_ids.sort();
        for shard_id in shard_ids {
            let Some(iterator) = self.iterators.get(&shard_id).cloned() else {
                continue;
            };
            let output = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .map_err(stream_error)?;
            for record in output.records() {
                if record.event_name().map(|name| name.as_str()) != Some("INSERT") {
                    continue;
                }
                let Some(image) = record.dynamodb().and_then(|change| change.new_image()) else {
                    continue;
                };
                let entry = history_entry_of_image(|name| text(image, name))
                    .map_err(|error| StreamError(error.to_string()))?;
                entries.extend(entry);
            }
            moved.push((shard_id, output.next_shard_iterator));
        }
        for (shard_id, next) in moved {
            match next {
                Some(next) => {
                    self.iterators.insert(shard_id, next);
                }
                None => {
                    self.iterators.remove(&shard_id);
                    self.finished.insert(shard_id);
                }
            }
        }
        Ok(entries)
    }
}

fn text<'a>(image: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match image.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
