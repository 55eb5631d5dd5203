//! Wires the whole product into one process: the API on 127.0.0.1, the callback worker on the
//! store's inbox (what a 202 promised survives a restart), the sweeper on an interval, and the events printed as JSON lines on standard
//! output (logs go to standard error): from the embedded store's outbox, or from the DynamoDB
//! table's stream.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::any;
use http::{Method, Uri};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_domain::PublishedEvent;
use countersign_provider::{Providers, ProvidersSetup, ZignedSetup};
use countersign_service::dispatcher::Dispatcher;
use countersign_service::documents::DocumentSource;
use countersign_service::outbox::OutboxRelay;
use countersign_service::{
    AgreementService, CallbackProcessor, Clock, RetryPolicy, Sweeper, SystemClock,
};
use countersign_store::{
    AgreementCommit, AgreementGet, CallbackInbox, MemoryStore, ProviderProgressStore, Store,
};
use countersign_store_dynamodb::{create_table, DynamoStore};

use crate::config::{LocalConfig, StoreChoice};
use crate::documents::{FolderDocuments, LINK_PATH};
use crate::events::{publish_until_done, StdoutBus};
use crate::http_server;
use crate::inbox::{run_inbox_worker, InboxQueue};
use crate::stream_feed::StreamFeed;

/// How often the relay looks for committed events: short, so events print as they happen.
const OUTBOX_POLL: Duration = Duration::from_millis(50);
const SWEEP_PAGE: usize = 100;

/// What every store shares: where the process listens, its documents, its providers.
struct Shared {
    listener: TcpListener,
    documents: Arc<FolderDocuments>,
    providers: Providers,
    clock: Arc<dyn Clock>,
}

fn dispatcher<S>(shared: &Shared, store: Arc<S>) -> Arc<Dispatcher<S>>
where
    S: AgreementGet + AgreementCommit + ProviderProgressStore + 'static,
{
    Arc::new(Dispatcher::new(
        store,
        shared.providers.clone(),
        shared.documents.clone() as Arc<dyn DocumentSource>,
        shared.clock.clone(),
        RetryPolicy::default(),
    ))
}

/// Runs until `shutdown` resolves, on the store the configuration names.
pub async fn run(
    config: LocalConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(config.addr).await?;
    let address = listener.local_addr()?;
    let documents = Arc::new(
        FolderDocuments::open(&config.documents_dir, format!("http://{address}")).map_err(
            |error| {
                std::io::Error::other(format!(
                    "COUNTERSIGN_DOCUMENTS_DIR {}: {error}",
                    config.documents_dir.display()
                ))
            },
        )?,
    );
    // Off, the sandbox provider has no webhook: `POST /v1/callbacks/sandbox` is 404 like every
    // other sandbox route, and its secret verifies nothing.
    let providers = Providers::from_setup(ProvidersSetup {
        sandbox_webhook_secrets: config
            .sandbox_enabled
            .then(|| config.webhook_secrets.clone()),
        zigned: ZignedSetup {
            webhook_secrets: config.zigned.webhook_secrets.clone(),
            client: config.zigned.client.clone(),
        },
    })
    .map_err(std::io::Error::other)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let shared = Shared {
        listener,
        documents,
        providers,
        clock,
    };
    match config.store.clone() {
        StoreChoice::Memory => {
            let store = Arc::new(MemoryStore::new());
            let bus = Arc::new(StdoutBus::new(
                config.event_bus.clone(),
                dispatcher(&shared, store.clone()),
            ));
            let mut relay = OutboxRelay::new(store.clone(), bus, RetryPolicy::default(), 100);
            tokio::spawn(async move {
                loop {
                    if let Err(error) = relay.pump().await {
                        tracing::error!(%error, "publishing events failed; retrying");
                    }
                    tokio::time::sleep(OUTBOX_POLL).await;
                }
            });
            let description = "memory (embedded; state is lost on exit)".to_owned();
            serve(config, shared, store, description, shutdown).await
        }
        StoreChoice::DynamoDb {
            table,
            create_table,
        } => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
            if create_table {
                ensure_table(&dynamodb, &table).await?;
            }
            let store = Arc::new(DynamoStore::new(dynamodb.clone(), table.clone()));
            let bus = StdoutBus::new(config.event_bus.clone(), dispatcher(&shared, store.clone()));
            let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
            let mut feed = StreamFeed::open(&dynamodb, streams, &table, true)
                .await
                .map_err(std::io::Error::other)?;
            tokio::spawn(async move {
                loop {
                    match feed.poll().await {
                        Ok(entries) => {
                            let events: Vec<PublishedEvent> = entries
                                .iter()
                                .filter_map(|entry| entry.published_event())
                                .collect();
                            // The feed has moved past these: they are published before it is read
                            // again, however long that takes.
                            publish_until_done(&bus, events, OUTBOX_POLL).await;
                        }
                        Err(error) => {
                            tracing::error!(%error, "reading the table's stream failed; retrying")
                        }
                    }
                    tokio::time::sleep(OUTBOX_POLL).await;
                }
            });
            let endpoint = sdk
                .endpoint_url()
                .unwrap_or("the environment's AWS endpoint")
                .to_owned();
            let description = format!("dynamodb (table {table} at {endpoint})");
            serve(config, shared, store, description, shutdown).await
        }
    }
}

/// Creates the table unless it exists.
async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> std::io::Result<()> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => {
            tracing::info!(table, "table exists");
            Ok(())
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|error| error.is_resource_not_found_exception()) =>
        {
            tracing::info!(table, "creating the table");
            create_table(client, table)
                .await
                .map_err(std::io::Error::other)
        }
        Err(error) => Err(std::io::Error::other(format!(
            "DynamoDB is not reachable: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&error)
        ))),
    }
}

async fn serve<S: Store + CallbackInbox + ProviderProgressStore + 'static>(
    config: LocalConfig,
    shared: Shared,
    store: Arc<S>,
    store_description: String,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Shared {
        listener,
        documents,
        providers,
        clock,
    } = shared;
    let retry = RetryPolicy::default();
    let agreements = Arc::new(
        AgreementService::new(store.clone(), clock.clone(), config.rules.clone(), retry)
            .with_sending_providers(providers.client_names()),
    );

    let processor = Arc::new(
        CallbackProcessor::new(store.clone(), clock.clone(), config.rules, retry)
            .with_signed_documents(providers.clone(), documents.clone()),
    );
    let wake = Arc::new(Notify::new());
    let queue = InboxQueue::new(store.clone(), clock.clone(), wake.clone());
    tokio::spawn(run_inbox_worker(
        store.clone(),
        processor,
        clock.clone(),
        wake,
        config.callback_max_receives,
    ));

    let sweeper = Sweeper::new(store.clone(), clock.clone(), retry, SWEEP_PAGE);
    let sweep_interval = config.sweep_interval;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(sweep_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweeper.sweep(None).await {
                Ok(report) if report.expired > 0 => {
                    tracing::info!(?report, "sweep expired agreements")
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "sweep failed; the next one retries"),
            }
        }
    });

    let signing_secret = config.webhook_secrets.first().cloned().unwrap_or_default();
    let webhooks: Vec<String> = providers.verifier_names().map(str::to_owned).collect();
    let senders: Vec<String> = providers.client_names().map(str::to_owned).collect();
    let api = Arc::new(
        Api::new(
            agreements,
            Arc::new(queue),
            Arc::new(providers),
            Arc::new(config.api_keys),
            ApiConfig {
                service_hours: config.service_hours,
                sandbox: SandboxSettings {
                    enabled: config.sandbox_enabled,
                    signing_secret: signing_secret.into(),
                },
            },
        )
        .with_signed_documents(documents.clone()),
    );

    let address = listener.local_addr()?;
    tracing::info!(
        url = %format!("http://{address}/v1"),
        store = %store_description,
        auth = if config.api_keys_are_default {
            "Authorization: Bearer dev-key (tenant dev-tenant; set COUNTERSIGN_API_KEYS for others)"
        } else {
            "Authorization: Bearer <a key of COUNTERSIGN_API_KEYS>"
        },
        sandbox = config.sandbox_enabled,
        webhooks = ?webhooks,
        providers = ?senders,
        documents = %config.documents_dir.display(),
        "countersign-local listening"
    );
    // A plain line too, for people and scripts that wait for the server to be up.
    eprintln!("countersign-local listening on http://{address}/v1");

    // Signed-document links are this process's own, outside the API and its layers.
    let router = countersign_api::router(api).route(
        &format!("{LINK_PATH}{{*file}}"),
        any(move |method: Method, uri: Uri| {
            let documents = documents.clone();
            let clock = clock.clone();
            async move { documents.serve(&method, &uri, clock.now()).await }
        }),
    );
    http_server::serve(listener, router, shutdown).await
}
