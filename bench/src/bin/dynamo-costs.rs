//! What each operation costs on DynamoDB (moto), against the size of the table: requests per
//! operation, and items read per agreement the sweeper expires, on tables of N pending agreements
//! that are not due (SPEC section 8: the cost grows with what expires, not with the table).
//!
//!     dynamo-costs <rounds> <size>...
//!
//! For each size: a fresh table, seeded with N pending agreements (their agreement items, written
//! with BatchWriteItem); then each round creates and sends 100 agreements due a day later through
//! the services, counting the requests of each kind of operation, moves the clock two days on and
//! sweeps. One JSON line per figure on standard output. The endpoint is
//! `COUNTERSIGN_MOTO_ENDPOINT` (`scripts/moto start`).

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use countersign_domain::{Agreement, Decision, LifecycleRequest, Rules};
use countersign_service::test_doubles::ManualClock;
use countersign_service::{
    AgreementService, CallbackProcessor, Clock, IdempotencyIntent, RenderedResponse, RetryPolicy,
    Sweeper,
};
use countersign_store::ListQuery;
use countersign_store_dynamodb::item::agreement_item;
use countersign_store_dynamodb::RequestCounter;
use countersign_store_dynamodb::{client_with_counter, table_definition, Counts, DynamoStore};
use serde_json::json;

const DUE_PER_ROUND: usize = 100;
const TENANT: &str = "tenant-due";

type Error = Box<dyn std::error::Error>;

fn input(expires_in_days: u16) -> countersign_domain::AgreementInput {
    countersign_domain::AgreementInput {
        test_mode: Some(true),
        ..countersign_store::contract::input(1, None, Some(expires_in_days))
    }
}

fn line(size: usize, round: usize, measure: &str, counts: &Counts, per: usize) {
    println!(
        "{}",
        json!({
            "size": size,
            "round": round,
            "measure": measure,
            "requests": counts.total_requests() as f64 / per as f64,
            "items_read": counts.total_items_read() as f64 / per as f64,
            "by_operation": counts.requests,
        })
    );
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .ok_or("usage: dynamo-costs <rounds> <size>...")?
        .parse()?;
    let sizes: Vec<usize> = args.map(|size| size.parse()).collect::<Result<_, _>>()?;
    for size in sizes {
        measure(size, rounds).await?;
    }
    Ok(())
}

async fn measure(size: usize, rounds: usize) -> Result<(), Error> {
    let counter = RequestCounter::new();
    let client = client_with_counter(&countersign_test_kit::moto::sdk_config(), &counter);
    let table = countersign_test_kit::moto::unique_name("bench");
    table_definition(&table).create(&client).await?;
    let store = Arc::new(DynamoStore::new(client.clone(), &table));
    let clock = Arc::new(ManualClock::new(Utc::now().trunc_subsecs(3)));
    let t0 = clock.now();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let retry = RetryPolicy::default();
    let agreements =
        AgreementService::new(store.clone(), dyn_clock.clone(), Rules::default(), retry);
    let callbacks = CallbackProcessor::new(store.clone(), dyn_clock, Rules::default(), retry);
    let sweeper = Sweeper::new(store.clone(), clock.clone(), retry, DUE_PER_ROUND);

    // The table: `size` pending agreements of another tenant, due in 120 days.
    let template = Agreement::create(
        "template".to_owned(),
        "tenant-bulk".to_owned(),
        input(120),
        t0,
        &Rules::default(),
        &mut countersign_service::ids::RandomIds,
    )?
    .agreement;
    let Decision::Changed(sent) = template.decide_lifecycle(LifecycleRequest::Pending, t0)? else {
        return Err("the template was not sent".into());
    };
    let items = (0..size)
        .map(|i| {
            let mut agreement = sent.agreement.clone();
            agreement.id = format!("bulk{i:06}{}", countersign_service::ids::new_id());
            agreement_item(&agreement)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let seeding = std::time::Instant::now();
    countersign_test_kit::dynamodb::batch_put(&client, &table, items).await?;
    eprintln!(
        "dynamo-costs: {size} pending agreements seeded in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let render = |agreement: &Agreement| RenderedResponse {
        status: 201,
        headers: Vec::new(),
        body: agreement.id.clone(),
    };
    for round in 1..=rounds {
        let mut due = Vec::new();
        for n in 0..DUE_PER_ROUND {
            // The first of each round is measured operation by operation.
            let measured = n == 0;
            let before = counter.snapshot();
            let draft = agreements
                .create(TENANT, input(1), None)
                .await?
                .agreement()
                .ok_or("replayed")?;
            if measured {
                line(size, round, "create", &counter.snapshot().since(&before), 1);
                let key = format!("key-{round}");
                let intent = IdempotencyIntent {
                    key: &key,
                    request_hash: "hash",
                    render: &render,
                };
                let before = counter.snapshot();
                agreements.create(TENANT, input(1), Some(&intent)).await?;
                let cost = counter.snapshot().since(&before);
                line(size, round, "create with Idempotency-Key", &cost, 1);
                let before = counter.snapshot();
                agreements.get(TENANT, &draft.id).await?;
                line(
                    size,
                    round,
                    "get one",
                    &counter.snapshot().since(&before),
                    1,
                );
            }
            let before = counter.snapshot();
            let sent = agreements
                .lifecycle(TENANT, &draft.id, LifecycleRequest::Pending, None, None)
                .await?
                .agreement()
                .ok_or("replayed")?;
            if measured {
                line(
                    size,
                    round,
                    "lifecycle (send)",
                    &counter.snapshot().since(&before),
                    1,
                );
                let before = counter.snapshot();
                let event = countersign_provider::sandbox::SandboxEvent {
                    id: format!("event-{round}"),
                    event_type: "participant.signed".to_owned(),
                    created_at: Utc::now(),
                    data: countersign_provider::sandbox::SandboxEventData {
                        agreement_id: sent.id.clone(),
                        participant_id: Some("p1".to_owned()),
                        signed_document: None,
                    },
                }
                .into_verified("sandbox");
                callbacks.process(&event).await?;
                let cost = counter.snapshot().since(&before);
                line(size, round, "provider event (signature)", &cost, 1);
            } else {
                due.push(sent.id);
            }
        }
        // A page of the tenant's newest, once it has more than a page.
        let before = counter.snapshot();
        let query = ListQuery {
            tenant: TENANT.to_owned(),
            lookup_key: None,
            status: None,
            limit: 20,
            after: None,
        };
        let page = agreements.list(&query).await?;
        if page.agreements.len() != 20 {
            return Err(format!("listed {} of 20", page.agreements.len()).into());
        }
        line(
            size,
            round,
            "list 20",
            &counter.snapshot().since(&before),
            1,
        );
        // Past the due ones' expiry, well before the table's.
        clock.set(t0 + Duration::days(2 * round as i64));
        let before = counter.snapshot();
        let report = sweeper.sweep(None).await?;
        let cost = counter.snapshot().since(&before);
        if report.expired != due.len() {
            return Err(format!("expired {} of {} due", report.expired, due.len()).into());
        }
        line(
            size,
            round,
            "sweep, per expired agreement",
            &cost,
            report.expired,
        );
    }
    Ok(())
}
