//! Request counting: an SDK interceptor that counts, per operation, the requests sent to DynamoDB
//! (every attempt, retries included) and the items they read. Attach it to a client's config
//! (`aws_sdk_dynamodb::config::Builder::interceptor`) and read the counts at any time; clones
//! share the counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests sent, by operation name (`GetItem`, `TransactWriteItems`, `Query`, ...).
    pub requests: BTreeMap<String, u64>,
    /// Items read, by operation: found items of `GetItem`, `BatchGetItem` and `TransactGetItems`,
    /// and the items a `Query` or `Scan` evaluated (`ScannedCount`, what capacity is paid for,
    /// before any filter).
    pub items_read: BTreeMap<String, u64>,
}

impl Counts {
    pub fn requests(&self, operation: &str) -> u64 {
        self.requests.get(operation).copied().unwrap_or(0)
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn items_read(&self, operation: &str) -> u64 {
        self.items_read.get(operation).copied().unwrap_or(0)
    }

    pub fn total_items_read(&self) -> u64 {
        self.items_read.values().sum()
    }

    /// What was counted after `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &Counts) -> Counts {
        let minus = |now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(operation, count)| {
                    let base = before.get(operation).copied().unwrap_or(0);
                    (operation.clone(), count.saturating_sub(base))
                })
                .filter(|(_, count)| *count > 0)
                .collect()
        };
        Counts {
            requests: minus(&self.requests, &earlier.requests),
            items_read: minus(&self.items_read, &earlier.items_read),
        }
    }
}

/// The interceptor. Cheap to clone; every clone counts into the same [`Counts`].
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<Counts>>,
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> Counts {
        self.lock().clone()
    }

    pub fn reset(&self) {
        *self.lock() = Counts::default();
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Counting is plain arithmetic: a panic elsewhere cannot leave it half done.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>().map_or_else(
        || "unknown".to_owned(),
        |metadata| metadata.name().to_owned(),
    )
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "CountersignRequestCounter"
    }

    /// Once per attempt, right before it goes out.
    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        *self.lock().requests.entry(operation(cfg)).or_default() += 1;
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let scanned = |count: i32| u64::try_from(count).unwrap_or(0);
        let read = if let Some(output) = output.downcast_ref::<QueryOutput>() {
            scanned(output.scanned_count())
        } else if let Some(output) = output.downcast_ref::<GetItemOutput>() {
            u64::from(output.item().is_some())
        } else if let Some(output) = output.downcast_ref::<ScanOutput>() {
            scanned(output.scanned_count())
        } else if let Some(output) = output.downcast_ref::<BatchGetItemOutput>() {
            output.responses().map_or(0, |tables| {
                tables.values().map(|items| items.len() as u64).sum()
            })
        } else if let Some(output) = output.downcast_ref::<TransactGetItemsOutput>() {
            output
                .responses()
                .iter()
                .filter(|response| response.item().is_some())
                .count() as u64
        } else {
            return Ok(());
        };
        *self.lock().items_read.entry(operation(cfg)).or_default() += read;
        Ok(())
    }
}
