//! Where Zigned is, the OAuth client credentials, and how hard to retry.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;

/// Zigned's production REST API v3.
pub const DEFAULT_API_URL: &str = "https://api.zigned.se/rest/v3";
/// Zigned's OAuth 2.0 token endpoint (client credentials).
pub const DEFAULT_TOKEN_URL: &str = "https://api.zigned.se/oauth/token";

/// One Zigned account (one per deployment today; one per tenant would be one config each).
/// Test mode is decided by the credentials: a development client creates test-mode agreements.
#[derive(Clone)]
pub struct ZignedConfig {
    /// E.g. [`DEFAULT_API_URL`]; no trailing slash needed.
    pub api_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Bounds one HTTP attempt, connection included.
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// The largest signed document accepted from Zigned's download URL.
    pub max_download_bytes: u64,
}

impl ZignedConfig {
    /// Production URLs, 30 s per attempt, the default retry policy, downloads up to 64 MiB.
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        ZignedConfig {
            api_url: DEFAULT_API_URL.to_owned(),
            token_url: DEFAULT_TOKEN_URL.to_owned(),
            client_id: client_id.into(),
            client_secret,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_download_bytes: 64 * 1024 * 1024,
        }
    }

    pub fn with_urls(mut self, api_url: impl Into<String>, token_url: impl Into<String>) -> Self {
        self.api_url = api_url.into();
        self.token_url = token_url.into();
        self
    }
}

// The client secret never shows; the client id is not a secret.
impl fmt::Debug for ZignedConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZignedConfig")
            .field("api_url", &self.api_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_download_bytes", &self.max_download_bytes)
            .finish()
    }
}

/// Retries of one request on 429, 5xx, timeouts and connection failures: attempt `n` (from 1)
/// waits a random time in `[0, min(max_delay, base_delay * 2^(n-1))]` ("full jitter"), or what
/// `Retry-After` asks when that is longer, up to `max_retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A longer `Retry-After` is cut to this, so that one request never waits without bound.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the second attempt).
    pub(crate) fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let jittered = ceiling.mul_f64(rand::random::<f64>());
        match retry_after {
            Some(asked) => asked.min(self.max_retry_after).max(jittered),
            None => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn debug_never_shows_the_client_secret() {
        let config = ZignedConfig::new("client-1", SecretString::from("s3cr3t-value"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("client-1"));
    }

    #[test]
    fn backoff_stays_within_its_ceiling_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(2),
        };
        for _ in 0..200 {
            assert!(policy.backoff(1, None) <= Duration::from_millis(100));
            assert!(policy.backoff(2, None) <= Duration::from_millis(200));
            assert!(policy.backoff(9, None) <= Duration::from_millis(250));
            let asked = policy.backoff(1, Some(Duration::from_secs(1)));
            assert!(asked >= Duration::from_secs(1) && asked <= Duration::from_secs(1));
            assert_eq!(
                policy.backoff(1, Some(Duration::from_secs(3600))),
                Duration::from_secs(2)
            );
        }
    }
}
