//! The routes of SPEC section 3 as one axum [`Router`], and the layers every request passes
//! through, each once (outermost first):
//!
//! 1. the head as the client sent it: its limits are checked (the refusal waits for step 5, which
//!    has the request id), and an `X-Request-Id` not fit to be logged and echoed is dropped;
//! 2. `SetRequestId`: the caller's id, else API Gateway's, else a new `req_...`;
//! 3. `PropagateRequestId`: that id on every answer;
//! 4. `Trace`: one log line per request, when it is answered;
//! 5. SPEC errors: a head over its limits is 431; every error leaves in SPEC's shape with the request
//!    id: a handler's [`ApiError`], and the bare answers of axum and tower-http (unknown route,
//!    unknown method, body over the limit, a panic);
//! 6. `CatchPanic`: a handler that panics is a 500, not a dropped connection;
//! 7. `RequestBodyLimit`: bodies over [`MAX_BODY_BYTES`] are 413.
//!
//! The routes sit behind the layers as one service, so that what axum decides itself (404, 405
//! and its `Allow`) passes through them like any handler's answer.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{BoxError, Router};
use http::header::ALLOW;
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use serde::de::DeserializeOwned;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

use countersign_store::Store;

use crate::request::{read_body, Consumer};
use crate::response::{new_request_id, panic_message, ApiError, REQUEST_ID};
use crate::routes::sandbox::sandbox_off;
use crate::{limits, Api, MAX_BODY_BYTES};

type Shared<S> = State<Arc<Api<S>>>;
type Answer = Result<Response, ApiError>;

/// The whole API, layers included. Serve it with `lambda_http::run` or any hyper server.
pub fn router<S: Store + ?Sized + 'static>(api: Arc<Api<S>>) -> Router {
    let sandbox_enabled = api.config.sandbox.enabled;
    let routes = Router::new()
        .route(
            "/v1/agreements",
            post(create::<S>)
                .get(list::<S>)
                .head(head_refused("GET, POST")),
        )
        .route(
            "/v1/agreements/{id}",
            get(get_one::<S>)
                .patch(patch::<S>)
                .head(head_refused("GET, PATCH")),
        )
        .route("/v1/agreements/{id}/lifecycle", post(lifecycle::<S>))
        .route(
            "/v1/agreements/{id}/history",
            get(history::<S>).head(head_refused("GET")),
        )
        .route(
            "/v1/agreements/{id}/signed-document",
            get(signed_document::<S>).head(head_refused("GET")),
        )
        .route("/v1/callbacks/{provider}", post(callback::<S>));
    let routes = if sandbox_enabled {
        routes
            .route(
                "/v1/sandbox/agreements/{id}/participants/{participant_id}/{action}",
                post(sandbox_participant::<S>),
            )
            .route("/v1/sandbox/agreements/{id}/fail", post(sandbox_fail::<S>))
            .route(
                "/v1/sandbox/agreements/{id}/expire",
                post(sandbox_expire::<S>),
            )
    } else {
        // Switched off, the sandbox routes do not exist, with any method.
        routes.route("/v1/sandbox/{*rest}", any(|| async { sandbox_off() }))
    };
    let routes = routes
        .fallback(|| std::future::ready(no_such_route()))
        .with_state(api);
    behind_the_layers(routes)
}

/// What answers while the API cannot be built (a function whose secrets could not be read yet):
/// every request a SPEC 500, through the same layers (request id, log line), nothing else said.
pub fn unavailable_router() -> Router {
    behind_the_layers(Router::new().fallback(|| std::future::ready(ApiError::internal())))
}

fn behind_the_layers(routes: Router) -> Router {
    let layers = ServiceBuilder::new()
        .map_request(read_head)
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_answer)
                // The answer's line says the status; a second line for a 5xx would say it twice.
                .on_failure(()),
        )
        .layer(SpecErrorsLayer)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .service(routes);
    Router::new().fallback_service(layers)
}

// ---------------------------------------------------------------------------------------------
// Handlers: extract, call the API, answer.

async fn create<S: Store + ?Sized + 'static>(State(api): Shared<S>, request: Consumer) -> Answer {
    api.create(&request).await
}

async fn list<S: Store + ?Sized + 'static>(State(api): Shared<S>, request: Consumer) -> Answer {
    api.list(&request).await
}

async fn get_one<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.get(&request.tenant, &id).await
}

async fn patch<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.patch(&request, &id).await
}

async fn lifecycle<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.lifecycle(&request, &id).await
}

async fn history<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.history(&request.tenant, &id).await
}

async fn signed_document<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.signed_document(&request.tenant, &id).await
}

/// Callbacks are never closed and authenticate by signature, not by tenant.
async fn callback<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(provider): Segments<String>,
    request: Request,
) -> Answer {
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    api.accept_callback(&provider, &parts.headers, &body).await
}

async fn sandbox_participant<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments((id, participant_id, action)): Segments<(String, String, String)>,
    request: Consumer,
) -> Answer {
    api.sandbox_participant(&request.tenant, &id, &participant_id, &action)
        .await
}

async fn sandbox_fail<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.sandbox_fail(&request.tenant, &id).await
}

async fn sandbox_expire<S: Store + ?Sized + 'static>(
    State(api): Shared<S>,
    Segments(id): Segments<String>,
    request: Consumer,
) -> Answer {
    api.sandbox_expire(&request.tenant, &id).await
}

fn no_such_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

/// axum answers HEAD with the GET handler; HEAD is not a method of this API (API Gateway routes
/// none to it), so it is refused like any other method the path does not have.
fn head_refused(
    allow: &'static str,
) -> impl Fn() -> std::future::Ready<ApiError> + Clone + Send + Sync + 'static {
    move || std::future::ready(ApiError::method_not_allowed(allow))
}

// ---------------------------------------------------------------------------------------------
// Extractors.

/// Every consumer route admits its request the same way: the body read (413 over the limit),
/// then service hours (503), then the tenant (401/400).
impl<S: Store + ?Sized + 'static> FromRequest<Arc<Api<S>>> for Consumer {
    type Rejection = ApiError;

    async fn from_request(request: Request, api: &Arc<Api<S>>) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let body = read_body(body).await?;
        let tenant = api.admit(&parts)?;
        Ok(Consumer {
            tenant,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
        })
    }
}

/// The path's parameters, percent-decoded; a segment that does not decode to UTF-8 is 400.
struct Segments<T>(T);

impl<T, St> FromRequestParts<St> for Segments<T>
where
    T: DeserializeOwned + Send,
    St: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(segments)| Segments(segments))
            .map_err(|_| {
                ApiError::invalid_request("a path segment is not valid UTF-8 once percent-decoded")
            })
    }
}

// ---------------------------------------------------------------------------------------------
// Layers.

/// A head over the limits of [`limits::check_headers`], counted before any layer adds a header.
#[derive(Clone)]
struct HeadRefused(ApiError);

/// Checks the head's limits, and keeps a caller's request id only if it is one short printable
/// token: it is logged and echoed, so anything else (and two of them) is dropped and replaced.
fn read_head(mut request: Request) -> Request {
    if let Err(error) = limits::check_headers(request.headers()) {
        request.extensions_mut().insert(HeadRefused(error));
    }
    let mut ids = request.headers().get_all(REQUEST_ID).iter();
    let fit = match (ids.next(), ids.next()) {
        (Some(id), None) => id.to_str().is_ok_and(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        }),
        _ => false,
    };
    if !fit {
        request.headers_mut().remove(REQUEST_ID);
    }
    request
}

/// API Gateway's request id when there is one (so logs meet the gateway's), else a new one.
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, request: &http::Request<B>) -> Option<RequestId> {
        let gateway = match request.extensions().get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
            _ => None,
        };
        let id = gateway.unwrap_or_else(new_request_id);
        // Taken as it is, not copied.
        HeaderValue::try_from(id).ok().map(RequestId::new)
    }
}

/// The request's id, as `SetRequestId` left it in the head.
fn request_id_of(request: &Request) -> &str {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default()
}

fn request_span(request: &Request) -> Span {
    let request_id = request_id_of(request);
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

fn log_answer(response: &Response, latency: Duration, _span: &Span) {
    tracing::info!(
        status = response.status().as_u16(),
        elapsed_ms = latency.as_millis() as u64,
        "answered"
    );
}

/// Layer 5: every error leaves in SPEC's shape with the request id, whoever made it. Written out
/// rather than with `middleware::from_fn`, which clones the services below it and boxes two
/// futures on every request.
#[derive(Clone, Copy)]
struct SpecErrorsLayer;

impl<S> Layer<S> for SpecErrorsLayer {
    type Service = SpecErrors<S>;

    fn layer(&self, inner: S) -> SpecErrors<S> {
        SpecErrors { inner }
    }
}

#[derive(Clone)]
struct SpecErrors<S> {
    inner: S,
}

impl<S, B> Service<Request> for SpecErrors<S>
where
    S: Service<Request, Response = http::Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = SpecErrorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let request_id = request_id_of(&request).to_owned();
        if let Some(HeadRefused(error)) = request.extensions_mut().remove() {
            return SpecErrorsFuture::Refused {
                answer: std::future::ready(Ok(error.render(&request_id))),
            };
        }
        SpecErrorsFuture::Answering {
            answer: self.inner.call(request),
            request_id,
        }
    }
}

pin_project_lite::pin_project! {
    #[project = SpecErrorsState]
    enum SpecErrorsFuture<F> {
        Refused { #[pin] answer: std::future::Ready<Result<Response, Infallible>> },
        Answering { #[pin] answer: F, request_id: String },
    }
}

impl<F, B> Future for SpecErrorsFuture<F>
where
    F: Future<Output = Result<http::Response<B>, Infallible>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            SpecErrorsState::Refused { answer } => answer.poll(cx),
            SpecErrorsState::Answering { answer, request_id } => {
                let Ok(response) = ready!(answer.poll(cx));
                Poll::Ready(Ok(in_spec_shape(response.map(Body::new), request_id)))
            }
        }
    }
}

/// The answer, or the SPEC error it carries or stands for.
fn in_spec_shape(mut response: Response, request_id: &str) -> Response {
    if let Some(error) = response.extensions_mut().remove::<ApiError>() {
        return error.render(request_id);
    }
    match bare_error(&response) {
        Some(error) => error.render(request_id),
        None => response,
    }
}

/// The SPEC error for an error answer that axum or tower-http made without one.
fn bare_error(response: &Response) -> Option<ApiError> {
    let status = response.status();
    let error = match status {
        _ if !(status.is_client_error() || status.is_server_error()) => return None,
        StatusCode::NOT_FOUND => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            // axum lists HEAD with every GET; this API has no HEAD (see `head_refused`).
            let allow = response
                .headers()
                .get(ALLOW)
                .and_then(|allow| allow.to_str().ok())
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|method| !method.is_empty() && *method != "HEAD")
                .collect::<Vec<_>>()
                .join(", ");
            ApiError::method_not_allowed(allow)
        }
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        _ if status.is_server_error() => ApiError::internal(),
        _ => ApiError::new(
            status,
            "INVALID_REQUEST",
            status
                .canonical_reason()
                .unwrap_or("the request was refused"),
        ),
    };
    Some(error)
}

fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic_message(panic.as_ref()).unwrap_or_default();
    tracing::error!(panic = %message, "handler panicked");
    ApiError::internal().into_response()
}
