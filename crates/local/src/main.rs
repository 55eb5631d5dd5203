//! `countersign-local`: every route, the callback inbox and its worker, the sweeper and the event relay in one
//! process on 127.0.0.1. Configuration comes from environment variables (`--help` lists them).

mod app;
mod config;
mod documents;
mod events;
mod http_server;
mod inbox;
mod stream_feed;

use std::process::ExitCode;

use config::{LocalConfig, VARIABLES};

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "--help" || arg == "-h")
    {
        print_help();
        return ExitCode::SUCCESS;
    }
    // Logs on standard error; standard output carries only the published events.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let config = match LocalConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("countersign-local: {error} (see countersign-local --help)");
            return ExitCode::from(2);
        }
    };
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

fn print_help() {
    println!("countersign-local: the whole countersign API on one machine.\n");
    println!("Usage: countersign-local            (configured by environment variables)\n");
    println!("{:<38} {:<26} meaning", "variable", "default");
    for (name, default, meaning) in VARIABLES {
        println!("{name:<38} {default:<26} {meaning}");
    }
}
