//! The Zigned adapter (SPEC sections 5 and 9, `providers/zigned/README.md`): Zigned's REST API v3
//! outbound, its signed webhooks inbound.
//!
//! - [`ZignedConfig`]: where Zigned is and the OAuth client credentials (secrets as
//!   [`secrecy::SecretString`], never shown by `Debug`).
//! - [`ZignedClient`]: every call countersign makes, each retried on 429, 5xx and timeouts with
//!   bounded, jittered exponential backoff, with an OAuth token cached and refreshed once for
//!   all concurrent callers. The send of a signing round is resumable: see [`SendProgress`] and
//!   [`ZignedClient::advance_send`].
//! - [`ZignedWebhook`]: verifies `x-zigned-request-signature` and maps the event to a
//!   provider-neutral [`ZignedEvent`].

mod config;
mod error;
mod http;
mod outbound;
mod progress;
mod provider;
mod token;
mod webhook;

pub use crate::outbound::DocumentBytes;
pub use config::{RetryPolicy, ZignedConfig, DEFAULT_API_URL, DEFAULT_TOKEN_URL};
pub use error::ZignedError;
pub use http::ResponseObserver;
pub use outbound::{zigned_locale, SendStep, ZignedClient};
pub use progress::{SendProgress, StaleObjects, UploadedFile};
pub use provider::ZignedProvider;
pub use webhook::{
    sign, ZignedEvent, ZignedEventKind, ZignedWebhook, DEFAULT_TOLERANCE, SIGNATURE_HEADER,
};

/// The provider's name: `provider.name` of the agreements it carries, and the `{provider}` of
/// `POST /v1/callbacks/{provider}`.
pub const PROVIDER_NAME: &str = "zigned";
