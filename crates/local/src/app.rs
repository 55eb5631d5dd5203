//! Wires the whole product into one process: the API on 127.0.0.1, the callback worker on an
//! in-process queue, the sweeper on an interval, and the outbox relay printing each event as a
//! JSON line on standard output (logs go to standard error).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpListener;

use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_domain::PublishedEvent;
use countersign_provider::sandbox::SandboxProvider;
use countersign_provider::ProviderRegistry;
use countersign_service::callbacks::{run_callback_worker, ChannelQueue};
use countersign_service::outbox::{event_json, EventSink, OutboxRelay, SinkError};
use countersign_service::{
    AgreementService, CallbackProcessor, Clock, RetryPolicy, Sweeper, SystemClock,
};
use countersign_store::MemoryStore;

use crate::config::LocalConfig;
use crate::http_server;

/// How often the relay looks for committed events: short, so events print as they happen.
const OUTBOX_POLL: Duration = Duration::from_millis(50);
const SWEEP_PAGE: usize = 100;

/// Prints each event as one JSON line, as EventBridge would carry it.
struct StdoutSink {
    bus: String,
}

#[async_trait]
impl EventSink for StdoutSink {
    async fn publish(&self, events: &[PublishedEvent]) -> Result<(), SinkError> {
        let mut out = std::io::stdout().lock();
        for event in events {
            writeln!(out, "{}", event_json(event, &self.bus))
                .map_err(|error| SinkError(error.to_string()))?;
        }
        out.flush().map_err(|error| SinkError(error.to_string()))
    }
}

pub async fn run(
    config: LocalConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = Arc::new(MemoryStore::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let retry = RetryPolicy::default();
    let agreements = Arc::new(AgreementService::new(
        store.clone(),
        clock.clone(),
        config.rules,
        retry,
    ));

    let (queue, receiver) = ChannelQueue::new(1024);
    let processor = Arc::new(CallbackProcessor::new(
        store.clone(),
        clock.clone(),
        config.rules,
        retry,
    ));
    let dead_letters = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(run_callback_worker(
        receiver,
        processor,
        config.callback_max_receives,
        dead_letters,
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

    let sink = Arc::new(StdoutSink {
        bus: config.event_bus.clone(),
    });
    let mut relay = OutboxRelay::new(store.clone(), sink, 100);
    tokio::spawn(async move {
        loop {
            if let Err(error) = relay.pump().await {
                tracing::error!(%error, "publishing events failed; retrying");
            }
            tokio::time::sleep(OUTBOX_POLL).await;
        }
    });

    let mut providers = ProviderRegistry::new();
    providers.register(Box::new(SandboxProvider::new(
        config.webhook_secrets.clone(),
    )));
    let signing_secret = config.webhook_secrets.first().cloned().unwrap_or_default();
    let api = Arc::new(Api::new(
        agreements,
        Arc::new(queue),
        Arc::new(providers),
        Arc::new(config.api_keys),
        ApiConfig {
            service_hours: config.service_hours,
            sandbox: SandboxSettings {
                enabled: config.sandbox_enabled,
                signing_secret,
            },
        },
    ));

    let listener = TcpListener::bind(config.addr).await?;
    let address = listener.local_addr()?;
    tracing::info!(
        url = %format!("http://{address}/v1"),
        store = "memory (embedded; state is lost on exit)",
        auth = if config.api_keys_are_default {
            "Authorization: Bearer dev-key (tenant dev-tenant; set COUNTERSIGN_API_KEYS for others)"
        } else {
            "Authorization: Bearer <a key of COUNTERSIGN_API_KEYS>"
        },
        sandbox = config.sandbox_enabled,
        "countersign-local listening"
    );
    // A plain line too, for people and scripts that wait for the server to be up.
    eprintln!("countersign-local listening on http://{address}/v1");

    http_server::serve(
        listener,
        move |request| {
            let api = api.clone();
            async move { api.handle(request).await }
        },
        shutdown,
    )
    .await
}
