//! The HTTP API of countersign (SPEC section 3), written against `lambda_http` request and
//! response types so the Lambda binaries and `countersign-local` serve the very same handlers.

pub mod auth;
pub mod limits;
pub mod request;
pub mod response;
mod routes;
pub mod service_hours;
pub mod shape;
pub mod view;

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use countersign_provider::Providers;
use countersign_service::documents::SignedDocumentStore;
use countersign_service::{AgreementService, CallbackQueue};
use countersign_store::Store;

use crate::auth::Authenticator;
use crate::response::{ApiError, REQUEST_ID};
use crate::service_hours::ServiceHours;

/// Largest request body accepted (SPEC section 3: 413 over 1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Sandbox routes answer 404 when off.
    pub enabled: bool,
    /// The secret the sandbox provider signs its callbacks with (one the sandbox verifier accepts).
    pub signing_secret: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Consumer routes answer 503 outside these hours; `None`: always open.
    pub service_hours: Option<ServiceHours>,
    pub sandbox: SandboxSettings,
}

/// The whole API: one handler for every route.
pub struct Api<S: ?Sized> {
    agreements: Arc<AgreementService<S>>,
    queue: Arc<dyn CallbackQueue>,
    providers: Arc<Providers>,
    auth: Arc<dyn Authenticator>,
    config: ApiConfig,
    /// Where signed documents are kept: the links of `GET .../signed-document`.
    signed_documents: Option<Arc<dyn SignedDocumentStore>>,
}

/// The routes of SPEC section 3.
enum Route<'a> {
    CreateAgreement,
    ListAgreements,
    GetAgreement(&'a str),
    PatchAgreement(&'a str),
    Lifecycle(&'a str),
    History(&'a str),
    SignedDocument(&'a str),
    Callback(&'a str),
    SandboxParticipant {
        id: &'a str,
        participant_id: &'a str,
        action: &'a str,
    },
    SandboxFail(&'a str),
    SandboxExpire(&'a str),
}

impl<'a> Route<'a> {
    /// The route for a method and path; `Err(Some(allowed methods))` when the path exists with
    /// other methods, `Err(None)` when it does not exist at all.
    fn find(method: &Method, path: &'a str) -> Result<Route<'a>, Option<&'static str>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route = match segments.as_slice() {
            ["v1", "agreements"] => match *method {
                Method::POST => Route::CreateAgreement,
                Method::GET => Route::ListAgreements,
                _ => return Err(Some("GET, POST")),
            },
            ["v1", "agreements", id] => match *method {
                Method::GET => Route::GetAgreement(id),
                Method::PATCH => Route::PatchAgreement(id),
                _ => return Err(Some("GET, PATCH")),
            },
            ["v1", "agreements", id, "lifecycle"] if method == Method::POST => Route::Lifecycle(id),
            ["v1", "agreements", id, "history"] if method == Method::GET => Route::History(id),
            ["v1", "agreements", id, "signed-document"] if method == Method::GET => {
                Route::SignedDocument(id)
            }
            ["v1", "callbacks", provider] if method == Method::POST => Route::Callback(provider),
            ["v1", "sandbox", "agreements", id, "participants", participant_id, action]
                if method == Method::POST =>
            {
                Route::SandboxParticipant {
                    id,
                    participant_id,
                    action,
                }
            }
            ["v1", "sandbox", "agreements", id, "fail"] if method == Method::POST => {
                Route::SandboxFail(id)
            }
            ["v1", "sandbox", "agreements", id, "expire"] if method == Method::POST => {
                Route::SandboxExpire(id)
            }
            ["v1", "agreements", _, "history" | "signed-document"] => return Err(Some("GET")),
            ["v1", "agreements", _, "lifecycle"]
            | ["v1", "callbacks", _]
            | ["v1", "sandbox", "agreements", _, "participants", _, _]
            | ["v1", "sandbox", "agreements", _, "fail" | "expire"] => return Err(Some("POST")),
            _ => return Err(None),
        };
        Ok(route)
    }

    fn is_sandbox_path(path: &str) -> bool {
        let mut segments = path.split('/').filter(|s| !s.is_empty());
        segments.next() == Some("v1") && segments.next() == Some("sandbox")
    }

    /// Callbacks are never closed and authenticate by signature, not by tenant.
    fn is_consumer(&self) -> bool {
        !matches!(self, Route::Callback(_))
    }

    fn is_sandbox(&self) -> bool {
        matches!(
            self,
            Route::SandboxParticipant { .. } | Route::SandboxFail(_) | Route::SandboxExpire(_)
        )
    }
}

impl<S: Store + ?Sized + 'static> Api<S> {
    pub fn new(
        agreements: Arc<AgreementService<S>>,
        queue: Arc<dyn CallbackQueue>,
        providers: Arc<Providers>,
        auth: Arc<dyn Authenticator>,
        config: ApiConfig,
    ) -> Self {
        Api {
            agreements,
            queue,
            providers,
            auth,
            config,
            signed_documents: None,
        }
    }

    /// Signed documents are kept in `store`, which makes their links.
    pub fn with_signed_documents(mut self, store: Arc<dyn SignedDocumentStore>) -> Self {
        self.signed_documents = Some(store);
        self
    }

    /// Answers one request. Never fails: every outcome is a response in SPEC's shapes, and every
    /// response carries `X-Request-Id`.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(&request);
        let method = request.method().clone();
        let path = request_path(&request);
        let mut response = match self.dispatch(&request, &path).await {
            Ok(response) => response,
            Err(error) => error.into_response(&request_id),
        };
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        );
        response
    }

    async fn dispatch(&self, request: &Request, path: &str) -> Result<Response<Body>, ApiError> {
        limits::check_headers(request.headers())?;
        let route = Route::find(request.method(), path).map_err(|allowed| match allowed {
            // Switched off, the sandbox routes do not exist with any method.
            Some(_) if Route::is_sandbox_path(path) && !self.config.sandbox.enabled => {
                routes::sandbox::sandbox_off()
            }
            Some(allow) => ApiError::method_not_allowed(allow),
            None => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route"),
        })?;
        if request::body_bytes(request).len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                "request bodies are limited to 1 MiB",
            ));
        }
        if let Route::Callback(provider) = route {
            return self.callback(provider, request).await;
        }
        // Switched off, the sandbox routes do not exist, whatever the hour.
        if route.is_sandbox() && !self.config.sandbox.enabled {
            return Err(routes::sandbox::sandbox_off());
        }
        debug_assert!(route.is_consumer());
        if let Some(hours) = &self.config.service_hours {
            if let Some(retry_after) = hours.retry_after(self.agreements.now()) {
                return Err(ApiError::unavailable(
                    "the API is outside its service hours; retry when it opens",
                    retry_after,
                ));
            }
        }
        let tenant = self.auth.tenant(request).map_err(ApiError::from)?;
        match route {
            Route::CreateAgreement => self.create(&tenant, request, path).await,
            Route::ListAgreements => self.list(&tenant, request).await,
            Route::GetAgreement(id) => self.get(&tenant, id).await,
            Route::PatchAgreement(id) => self.patch(&tenant, id, request).await,
            Route::Lifecycle(id) => self.lifecycle(&tenant, id, request, path).await,
            Route::History(id) => self.history(&tenant, id).await,
            Route::SignedDocument(id) => self.signed_document(&tenant, id).await,
            Route::SandboxParticipant {
                id,
                participant_id,
                action,
            } => {
                self.sandbox_participant(&tenant, id, participant_id, action)
                    .await
            }
            Route::SandboxFail(id) => self.sandbox_fail(&tenant, id).await,
            Route::SandboxExpire(id) => self.sandbox_expire(&tenant, id).await,
            Route::Callback(_) => Err(ApiError::internal()),
        }
    }
}

/// The path without an API Gateway stage.
fn request_path(request: &Request) -> String {
    let raw = request.raw_http_path();
    if raw.is_empty() {
        request.uri().path().to_owned()
    } else {
        raw.to_owned()
    }
}

/// The caller's `X-Request-Id` when it is sane, else API Gateway's request id, else a new one.
/// Public for the local HTTP server, whose own answers (a handler that panicked) use the id the
/// API would have.
pub fn request_id(request: &Request) -> String {
    let from_header = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned);
    from_header
        .or_else(|| match request.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => {
                context.request_id.clone()
            }
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .unwrap_or_else(|| format!("req_{}", countersign_service::ids::new_id()))
}
