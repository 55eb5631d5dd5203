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
    init_logging(std::env::var("RUST_LOG").ok().as_deref());

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

/// Logs on standard error; standard output carries only the published events. Colours only for
/// a person at a terminal, never into a file or a log collector.
fn init_logging(setting: Option<&str>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let (filter, refused) = log_filter(setting);
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::sync::Arc::new(LogWriter::new()))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let logs = tracing_subscriber::registry().with(lines);
    match filter {
        LogFilter::Targets(targets) => logs.with(targets).init(),
        LogFilter::Spans(spans) => logs.with(spans).init(),
    }
    if let Some(refused) = refused {
        tracing::warn!(filter = %refused, "RUST_LOG does not parse: logging at info");
    }
}

/// Standard error without Rust's lock on it: every line is formatted whole and handed to the
/// kernel in one `write`, which keeps lines apart (a pipe does not split writes of up to 4 KiB),
/// while the lock made the runtime's workers queue behind each other's log lines, a thread
/// switch on about one request in two under load. Standard error itself when it cannot be
/// duplicated.
struct LogWriter(Option<std::fs::File>);

impl LogWriter {
    fn new() -> Self {
        use std::os::fd::AsFd;
        let duplicate = std::io::stderr().as_fd().try_clone_to_owned();
        LogWriter(duplicate.ok().map(std::fs::File::from))
    }
}

impl std::io::Write for &LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        match self.0.as_ref() {
            Some(mut file) => file.write(line),
            None => std::io::stderr().write(line),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.as_ref() {
            Some(mut file) => file.flush(),
            None => std::io::stderr().flush(),
        }
    }
}

/// `RUST_LOG` as a filter. Levels and targets (`warn,countersign_api=debug`) are decided once per
/// call site; only a filter that names spans or fields (`[request]=debug`) pays for `EnvFilter`,
/// which looks every span up on every poll of the request it instruments.
enum LogFilter {
    Targets(tracing_subscriber::filter::Targets),
    Spans(Box<tracing_subscriber::EnvFilter>),
}

/// The filter `setting` names (`info` when unset), and the setting itself when it was refused.
fn log_filter(setting: Option<&str>) -> (LogFilter, Option<String>) {
    let info = || {
        LogFilter::Targets(
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing_subscriber::filter::LevelFilter::INFO),
        )
    };
    let Some(setting) = setting.map(str::trim).filter(|setting| !setting.is_empty()) else {
        return (info(), None);
    };
    // `Targets` would take `[request]` for a target's name, so a span filter never reaches it.
    if !setting.contains('[') {
        if let Ok(targets) = setting.parse() {
            return (LogFilter::Targets(targets), None);
        }
    }
    match tracing_subscriber::EnvFilter::try_new(setting) {
        Ok(spans) => (LogFilter::Spans(Box::new(spans)), None),
        Err(_) => (info(), Some(setting.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    fn targets(filter: LogFilter) -> tracing_subscriber::filter::Targets {
        match filter {
            LogFilter::Targets(targets) => targets,
            LogFilter::Spans(spans) => panic!("expected a static filter, got {spans}"),
        }
    }

    #[test]
    fn levels_and_targets_are_a_static_filter() {
        let (filter, refused) = log_filter(None);
        assert!(refused.is_none());
        let filter = targets(filter);
        assert!(filter.would_enable("countersign_api::router", &Level::INFO));
        assert!(!filter.would_enable("countersign_api::router", &Level::DEBUG));

        let (filter, refused) = log_filter(Some("warn,countersign_service=debug"));
        assert!(refused.is_none());
        let filter = targets(filter);
        assert!(!filter.would_enable("countersign_api::router", &Level::INFO));
        assert!(filter.would_enable("countersign_service::outbox", &Level::DEBUG));
    }

    #[test]
    fn span_and_field_filters_keep_env_filter() {
        for setting in ["warn,[request{method=GET}]=debug", "warn,[request]=info"] {
            let (filter, refused) = log_filter(Some(setting));
            assert!(refused.is_none(), "{setting}");
            assert!(matches!(filter, LogFilter::Spans(_)), "{setting}");
        }
    }

    #[test]
    fn a_filter_that_does_not_parse_logs_at_info_and_says_so() {
        let (filter, refused) = log_filter(Some("countersign=loud"));
        assert_eq!(refused.as_deref(), Some("countersign=loud"));
        let filter = targets(filter);
        assert!(filter.would_enable("countersign_api::router", &Level::INFO));
        assert!(!filter.would_enable("countersign_api::router", &Level::DEBUG));
    }
}
