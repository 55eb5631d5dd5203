//! The store contract suite, run against the embedded store.

use countersign_store::contract::*;
use countersign_store::MemoryStore;

countersign_store::store_contract_tests!(async { MemoryStore::new() });

/// The suite promises it runs on a shared store (a DynamoDB table) without assuming it empty:
/// every case, twice over, all at once, on one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cases_share_one_store() {
    let store = MemoryStore::new();
    let all_cases = || async {
        tokio::join!(
            create_then_get(&store),
            transition_appends_history(&store),
            stale_revision_is_refused(&store),
            refused_commit_writes_nothing(&store),
            provider_event_applied_once(&store),
            idempotency_records(&store),
            listing_pages_newest_first(&store),
            expiry_index(&store),
            concurrent_commits(&store),
        )
    };
    tokio::join!(all_cases(), all_cases());
}
