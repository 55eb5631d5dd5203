//! The OAuth 2.0 access token (client credentials), cached until shortly before it expires and
//! fetched once for all the calls that need it at the same time.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token is replaced this long before Zigned says it expires (or halfway through a shorter
/// life), so that a call started with it does not arrive with an expired one.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Assumed when the token endpoint does not say `expires_in`.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Default)]
pub(crate) struct TokenCache {
    // A tokio Mutex held across the fetch: concurrent callers wait for the one refresh instead
    // of each asking the token endpoint (single flight).
    current: Mutex<Option<CachedToken>>,
}

struct CachedToken {
    value: SecretString,
    refresh_at: Instant,
}

/// What the token endpoint gave: the token and its lifetime (`expires_in`).
pub(crate) struct FreshToken {
    pub(crate) value: SecretString,
    pub(crate) expires_in: Option<Duration>,
}

impl TokenCache {
    /// The cached token while it is fresh, else the one `fetch` gets (then cached).
    pub(crate) async fn get<F, Fut, E>(&self, fetch: F) -> Result<SecretString, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<FreshToken, E>>,
    {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            if Instant::now() < token.refresh_at {
                return Ok(token.value.clone());
            }
        }
        let fresh = fetch().await?;
        let lifetime = fresh.expires_in.unwrap_or(ASSUMED_LIFETIME);
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *current = Some(CachedToken {
            value: fresh.value.clone(),
            refresh_at: Instant::now() + (lifetime - margin),
        });
        Ok(fresh.value)
    }

    /// Forgets `rejected` (Zigned answered 401 to it), unless another caller already replaced
    /// it: many calls refused with the same token cause one refresh, not one each.
    pub(crate) async fn invalidate(&self, rejected: &SecretString) {
        let mut current = self.current.lock().await;
        let is_the_rejected_one = current
            .as_ref()
            .is_some_and(|token| token.value.expose_secret() == rejected.expose_secret());
        if is_the_rejected_one {
            *current = None;
        }
    }
}
