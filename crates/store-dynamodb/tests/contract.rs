//! The store contract suite against DynamoDB (moto): each case on a table of its own, then every
//! case at once on one shared table.

mod support;

use countersign_store::contract::*;

countersign_store::store_contract_tests!(support::fresh_store());

/// The suite runs on a shared table, as it promises: every case, all at once, on one store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cases_share_one_table() {
    let store = support::fresh_store().await;
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
    );
}
