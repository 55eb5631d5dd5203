//! `countersign-local`: every route, the callback inbox and its worker, the sweeper and the event relay in one
//! process on 127.0.0.1. Configuration comes from flags and environment variables (`--help`
//! lists them).

mod app;
mod config;
mod documents;
mod events;
mod http_server;
mod inbox;
mod stream_feed;

use std::process::ExitCode;

use config::{LocalConfig, NotStarted};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match LocalConfig::from_env() {
        Ok(config) => config,
        Err(NotStarted::Asked(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(NotStarted::Refused(error)) => {
            eprintln!("countersign-local: {error} (see countersign-local --help)");
            return ExitCode::from(2);
        }
    };
    // Logs on standard error; standard output carries only the published events.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    match app::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("countersign-local: {error}");
            ExitCode::FAILURE
        }
    }
}
