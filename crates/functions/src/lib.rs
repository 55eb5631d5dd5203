//! The Lambda functions of SPEC section 8. Each binary in `src/bin` builds its clients and
//! configuration once at init ([`init`]) and hands every invocation to a handler of
//! [`handlers`] or to the shared HTTP API.

pub mod first_use;
pub mod handlers;
pub mod init;
pub mod settings;

pub use lambda_runtime::Error;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON logs on standard output, as the template's `LogFormat: JSON` expects; `RUST_LOG` or the
/// function's `AWS_LAMBDA_LOG_LEVEL` filters them, as a level or `target=level` directives
/// (tracing-subscriber's `Targets`: no regex engine in the package). One that does not parse is
/// `info`, said in the first log line.
pub fn init_tracing() {
    let (filter, refused) = log_filter(
        std::env::var("RUST_LOG")
            .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
            .ok()
            .as_deref(),
    );
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time()
        // Every level reaches the filter below, which decides.
        .with_max_level(LevelFilter::TRACE)
        .finish()
        .with(filter)
        .init();
    if let Some(refused) = refused {
        tracing::warn!(filter = %refused, "the log filter does not parse: logging at info");
    }
}

/// The filter a setting names, and the setting itself when it was refused.
fn log_filter(setting: Option<&str>) -> (Targets, Option<String>) {
    let info = Targets::new().with_default(LevelFilter::INFO);
    let Some(setting) = setting.map(str::trim).filter(|setting| !setting.is_empty()) else {
        return (info, None);
    };
    // Lambda's log levels are upper case, and one of them is FATAL.
    let lowered = setting.to_lowercase();
    let directives = if lowered == "fatal" {
        "error"
    } else {
        &lowered
    };
    // Span filters are not supported here, and `Targets` would take `[span]` for a target's name.
    match directives.parse::<Targets>() {
        Ok(targets) if !directives.contains('[') => (targets, None),
        _ => (info, Some(setting.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn the_log_filter_takes_lambdas_levels_and_directives() {
        let (filter, refused) = log_filter(None);
        assert!(refused.is_none());
        assert!(filter.would_enable("countersign", &Level::INFO));
        assert!(!filter.would_enable("countersign", &Level::DEBUG));

        let (filter, _) = log_filter(Some("WARN"));
        assert!(!filter.would_enable("countersign", &Level::INFO));
        assert!(filter.would_enable("countersign", &Level::WARN));

        let (filter, _) = log_filter(Some("FATAL"));
        assert!(!filter.would_enable("countersign", &Level::WARN));
        assert!(filter.would_enable("countersign", &Level::ERROR));

        let (filter, _) = log_filter(Some("warn,countersign_service=debug"));
        assert!(filter.would_enable("countersign_service::outbox", &Level::DEBUG));
        assert!(!filter.would_enable("hyper", &Level::INFO));

        let (filter, refused) = log_filter(Some("warn,[span{field=x}]=debug"));
        assert_eq!(refused.as_deref(), Some("warn,[span{field=x}]=debug"));
        assert!(filter.would_enable("countersign", &Level::INFO));

        // A span filter without fields would parse as a target named "[request]", silencing
        // every other target with no word of it: refused like the one above.
        let (filter, refused) = log_filter(Some("[request]=debug"));
        assert_eq!(refused.as_deref(), Some("[request]=debug"));
        assert!(filter.would_enable("countersign", &Level::INFO));
    }
}
