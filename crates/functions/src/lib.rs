//! The Lambda functions of SPEC section 8. Each binary in `src/bin` builds its clients and
//! configuration once at init ([`init`]) and hands every invocation to a handler of
//! [`handlers`] or to the shared HTTP API.

pub mod handlers;
pub mod init;
pub mod settings;

pub use lambda_runtime::Error;

/// JSON logs on standard output, as the template's `LogFormat: JSON` expects; `RUST_LOG` or the
/// function's `AWS_LAMBDA_LOG_LEVEL` filters them.
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("AWS_LAMBDA_LOG_LEVEL"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .init();
}
