//! HTTP to Zigned: the bearer token, retries with backoff, and Zigned's error shape.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::config::ZignedConfig;
use super::error::ZignedError;
use super::token::{FreshToken, TokenCache};

/// Sees every HTTP answer (method, URL path, status, headers) before the client judges it, e.g.
/// a test that fails on Prism's `sl-violations` header. It never sees request bodies or tokens.
pub type ResponseObserver = Arc<dyn Fn(&Method, &str, StatusCode, &HeaderMap) + Send + Sync>;

/// A body that can be built again for every attempt (a multipart form cannot be cloned).
pub(crate) enum RequestBody<'a> {
    Empty,
    Json(Value),
    File {
        bytes: &'a [u8],
        filename: &'a str,
        mime_type: &'a str,
        lookup_key: &'a str,
    },
}

/// One complete answer: the body is read inside the attempt, so a timeout while reading it is
/// retried like any other.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

pub(crate) struct ZignedHttp {
    client: reqwest::Client,
    config: ZignedConfig,
    api_url: String,
    token: TokenCache,
    observer: Option<ResponseObserver>,
}

/// TLS for the provider's API: rustls on aws-lc-rs, the crypto the AWS SDK's client already
/// links (one TLS stack in every binary), and the webpki roots compiled in, so that nothing
/// scans the file system for certificates when a function starts.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // aws-lc-rs supports the default versions; were that ever not so, the process default.
        .unwrap_or_else(|_| rustls::ClientConfig::builder())
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl ZignedHttp {
    pub(crate) fn new(config: ZignedConfig) -> Result<Self, ZignedError> {
        for (name, url) in [("API", &config.api_url), ("token", &config.token_url)] {
            let parsed = reqwest::Url::parse(url).map_err(|error| {
                ZignedError::Configuration(format!("the Zigned {name} URL is not a URL: {error}"))
            })?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(ZignedError::Configuration(format!(
                    "the Zigned {name} URL must be https (or http for a local mock)"
                )));
            }
        }
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config())
            .connect_timeout(config.request_timeout)
            .timeout(config.request_timeout)
            // Zigned's API does not redirect; a redirect must not carry the bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| ZignedError::Configuration(error.without_url().to_string()))?;
        Ok(ZignedHttp {
            client,
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            config,
            token: TokenCache::default(),
            observer: None,
        })
    }

    pub(crate) fn set_observer(&mut self, observer: ResponseObserver) {
        self.observer = Some(observer);
    }

    pub(crate) fn config(&self) -> &ZignedConfig {
        &self.config
    }

    /// Calls the REST API with a bearer token; a 401 forgets the token and retries once with a
    /// new one. Returns the parsed JSON of a 2xx (`null` for an empty body).
    pub(crate) async fn api(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        body: &RequestBody<'_>,
    ) -> Result<Value, ZignedError> {
        let url = format!("{}{path}", self.api_url);
        let mut refreshed = false;
        loop {
            let token = self.token.get(|| self.fetch_token()).await?;
            let reply = self
                .with_retries(operation, || {
                    let request = self
                        .client
                        .request(method.clone(), &url)
                        .bearer_auth(token.expose_secret());
                    build_body(request, body)
                })
                .await?;
            if reply.status == StatusCode::UNAUTHORIZED && !refreshed {
                tracing::info!(operation, "Zigned answered 401: refreshing the token once");
                self.token.invalidate(&token).await;
                refreshed = true;
                continue;
            }
            if reply.status.is_success() {
                if reply.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Value::Null);
                }
                return serde_json::from_slice(&reply.body).map_err(|error| {
                    ZignedError::UnexpectedResponse {
                        operation: operation.to_owned(),
                        detail: format!("not JSON ({error})"),
                    }
                });
            }
            return Err(rejection(operation, &reply));
        }
    }

    /// GETs a URL Zigned gave (a signed read URL), without the bearer token: the URL carries its
    /// own authorisation, and the token must not go to whatever host it names.
    pub(crate) async fn download(
        &self,
        operation: &str,
        url: &str,
    ) -> Result<Vec<u8>, ZignedError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| ZignedError::UnexpectedResponse {
            operation: operation.to_owned(),
            detail: "the signed document URL is not a URL".to_owned(),
        })?;
        let api_is_https = self.api_url.starts_with("https:");
        let allowed = parsed.scheme() == "https" || (!api_is_https && parsed.scheme() == "http");
        if !allowed {
            return Err(ZignedError::UnexpectedResponse {
                operation: operation.to_owned(),
                detail: format!(
                    "the signed document URL has scheme `{}`, not https",
                    parsed.scheme()
                ),
            });
        }
        let reply = self
            .with_retries(operation, || Ok(self.client.get(parsed.clone())))
            .await?;
        if reply.status.is_success() {
            Ok(reply.body)
        } else {
            Err(rejection(operation, &reply))
        }
    }

    /// Client credentials, as a form, to the token URL.
    async fn fetch_token(&self) -> Result<FreshToken, ZignedError> {
        let operation = "the token request";
        let reply = self
            .with_retries(operation, || {
                Ok(self.client.post(&self.config.token_url).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", self.config.client_id.as_str()),
                    ("client_secret", self.config.client_secret.expose_secret()),
                ]))
            })
            .await?;
        if !reply.status.is_success() {
            // OAuth's `error_description`, never the body itself (it could echo what was sent).
            let described = serde_json::from_slice::<Value>(&reply.body)
                .ok()
                .and_then(|body| {
                    body.get("error_description")
                        .or_else(|| body.get("error"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| status_text(reply.status));
            return Err(ZignedError::Token(format!(
                "HTTP {}: {described}",
                reply.status.as_u16()
            )));
        }
        let body: Value = serde_json::from_slice(&reply.body)
            .map_err(|_| ZignedError::Token("the token answer is not JSON".to_owned()))?;
        let value = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ZignedError::Token("the token answer has no access_token".to_owned()))?;
        // `token_type` is not judged: Zigned issues bearer tokens only, and its published
        // document does not pin the value (a mock answers any string).
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        Ok(FreshToken {
            value: SecretString::from(value.to_owned()),
            expires_in,
        })
    }

    /// Sends what `build` makes until an answer other than 429/5xx arrives, or attempts run out.
    async fn with_retries<F>(&self, operation: &str, build: F) -> Result<Reply, ZignedError>
    where
        F: Fn() -> Result<RequestBuilder, ZignedError>,
    {
        let policy = self.config.retry;
        let attempts = policy.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let retry_after = match self.attempt(build()?).await {
                Ok((reply, retry_after)) => {
                    let retryable = reply.status == StatusCode::TOO_MANY_REQUESTS
                        || reply.status.is_server_error();
                    if !retryable {
                        return Ok(reply);
                    }
                    last = format!("HTTP {}", reply.status.as_u16());
                    retry_after
                }
                Err(problem) => {
                    last = problem;
                    None
                }
            };
            if attempt < attempts {
                let wait = policy.backoff(attempt, retry_after);
                tracing::info!(operation, attempt, %last, wait_ms = wait.as_millis() as u64, "retrying a Zigned request");
                tokio::time::sleep(wait).await;
            }
        }
        Err(ZignedError::Unavailable {
            operation: operation.to_owned(),
            attempts,
            last,
        })
    }

    /// One attempt: the answer with its body read to the end, or why there is none (words
    /// without the URL, which may be a signed read URL).
    async fn attempt(&self, request: RequestBuilder) -> Result<(Reply, Option<Duration>), String> {
        let (client, request) = request.build_split();
        let request = request.map_err(|error| error.without_url().to_string())?;
        let method = request.method().clone();
        let path = request.url().path().to_owned();
        let mut response = client.execute(request).await.map_err(describe)?;
        let status = response.status();
        if let Some(observer) = &self.observer {
            observer(&method, &path, status, response.headers());
        }
        let retry_after = retry_after(response.headers());
        let limit = self.config.max_download_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > limit {
                return Err(format!("the answer is larger than {limit} bytes"));
            }
        }
        Ok((Reply { status, body }, retry_after))
    }
}

fn build_body(
    request: RequestBuilder,
    body: &RequestBody<'_>,
) -> Result<RequestBuilder, ZignedError> {
    match body {
        RequestBody::Empty => Ok(request),
        RequestBody::Json(value) => Ok(request.json(value)),
        RequestBody::File {
            bytes,
            filename,
            mime_type,
            lookup_key,
        } => {
            let part = reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(filename.to_string())
                .mime_str(mime_type)
                .map_err(|_| {
                    ZignedError::NotSendable(format!("`{mime_type}` is not a MIME type"))
                })?;
            let form = reqwest::multipart::Form::new()
                .part("file", part)
                .text("lookup_key", lookup_key.to_string());
            Ok(request.multipart(form))
        }
    }
}

fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    format!("{kind}: {}", error.without_url())
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110); a date in the past means now.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

fn status_text(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("error").to_owned()
}

/// A permanent refusal in Zigned's words: `{"status":"error","error":{"code","message","request_id"}}`.
fn rejection(operation: &str, reply: &Reply) -> ZignedError {
    let body = serde_json::from_slice::<Value>(&reply.body).ok();
    let error = body.as_ref().and_then(|body| body.get("error"));
    let message = error
        .and_then(|error| error.get("message"))
        .and_then(Value::as_str)
        .map(|message| message.chars().take(500).collect())
        .unwrap_or_else(|| status_text(reply.status));
    let request_id = error
        .and_then(|error| error.get("request_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    ZignedError::Rejected {
        operation: operation.to_owned(),
        status: reply.status.as_u16(),
        message,
        request_id,
    }
}
