//! The envelopes of SPEC section 3: `{"version":"1.0","result_type":...,"data":...}` for success,
//! `{"status":"error","error":{...}}` for errors. Nothing internal reaches a client.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use countersign_domain::{DomainError, Issue};
use countersign_service::ServiceError;
use countersign_store::StoreError;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request id of countersign's own (`req_` and a new id), made in one String.
pub fn new_request_id() -> String {
    const PREFIX: &str = "req_";
    let mut id = String::with_capacity(PREFIX.len() + countersign_service::ids::ID_LEN);
    id.push_str(PREFIX);
    countersign_service::ids::push_new_id(&mut id);
    id
}

/// What a panic said, when it said it as text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> Option<String> {
    panic
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
}

/// An error answer: status, `type`, message and details.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub message: String,
    pub details: Vec<Value>,
    pub retry_after: Option<u64>,
    /// The `Allow` header of a 405: the methods the path does support.
    pub allow: Option<Box<str>>,
    /// The `WWW-Authenticate` challenge of a 401 (RFC 9110 section 11.6.1). Boxed, not a
    /// `String`, to keep `ApiError` (the `Err` of every handler) small.
    pub challenge: Option<Box<str>>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_type: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_type,
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
            allow: None,
            challenge: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 405 with `Allow` (RFC 9110 section 15.5.6: a 405 names the methods the path supports).
    pub fn method_not_allowed(allow: impl Into<Box<str>>) -> Self {
        let allow = allow.into();
        ApiError {
            message: format!("method not allowed on this path; allowed: {allow}"),
            allow: Some(allow),
            ..ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "")
        }
    }

    /// 401; give it its challenge with [`ApiError::with_challenge`], else it carries the consumer
    /// API's bearer challenge.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn with_challenge(mut self, challenge: impl Into<Box<str>>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    pub fn not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "AGREEMENT_NOT_FOUND",
            "no such agreement",
        )
    }

    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                message,
            )
        }
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "an internal error occurred; quote the request id when reporting it",
        )
    }

    pub fn with_details(mut self, details: Vec<Value>) -> Self {
        self.details = details;
        self
    }

    fn with_issues(mut self, issues: &[Issue]) -> Self {
        self.details = issues
            .iter()
            .map(|issue| serde_json::to_value(issue).unwrap_or(Value::Null))
            .collect();
        self
    }

    pub fn payload_too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "request bodies are limited to 1 MiB",
        )
    }

    /// The answer in SPEC section 3's error shape, naming the request it answers.
    pub fn render(self, request_id: &str) -> Response {
        let body = json!({
            "status": "error",
            "error": {
                "code": self.status.as_u16(),
                "type": self.error_type,
                "message": self.message,
                "request_id": request_id,
                "details": self.details,
            }
        });
        let mut response = json_response(self.status, &body);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self
            .allow
            .and_then(|allow| HeaderValue::from_str(&allow).ok())
        {
            response.headers_mut().insert(ALLOW, allow);
        }
        // Every 401 names how to authenticate (RFC 9110 section 15.5.2).
        let challenge = match self.challenge {
            Some(challenge) => Some(challenge),
            None if self.status == StatusCode::UNAUTHORIZED => {
                Some(format!("Bearer realm=\"{}\"", crate::auth::REALM).into())
            }
            None => None,
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A handler's error travels out as the `ApiError` itself, in the response's extensions: the
/// router's error layer renders it with the request id (see [`crate::router`]), so no handler
/// needs to know that id.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let message = error.to_string();
        match error {
            DomainError::InvalidTransition { .. } => {
                ApiError::new(StatusCode::CONFLICT, "INVALID_TRANSITION", message)
            }
            DomainError::NotEditable { .. } => {
                ApiError::new(StatusCode::CONFLICT, "AGREEMENT_NOT_EDITABLE", message)
            }
            DomainError::Invalid(issues) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "VALIDATION_FAILED",
                summarise(&message, &issues),
            )
            .with_issues(&issues),
            // The type is the first failure's; every failure is in `details`.
            DomainError::NotReady(issues) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                issues
                    .first()
                    .map(|issue| issue.code.as_str())
                    .unwrap_or("VALIDATION_FAILED"),
                summarise(&message, &issues),
            )
            .with_issues(&issues),
            DomainError::InvalidCancellationReason(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_CANCELLATION_REASON",
                message,
            ),
            DomainError::NotInTestMode => ApiError::not_found(),
        }
    }
}

fn summarise(message: &str, issues: &[Issue]) -> String {
    match issues {
        [only] => format!("{message}: {} {}", only.field, only.message),
        _ => format!("{message}: {} problems, listed in details", issues.len()),
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::VersionMismatch { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "VERSION_MISMATCH",
                format!("If-Match does not match: the agreement is at version {current}"),
            ),
            ServiceError::Malformed(message) => ApiError::invalid_request(message),
            ServiceError::Domain(domain) => domain.into(),
            ServiceError::IdempotencyKeyTaken => idempotency_key_reused(),
            ServiceError::IdempotencyRace => {
                ApiError::unavailable("the request raced another with the same key; retry", 1)
            }
            // The API marks no provider events; were one marked twice, retrying is the answer.
            ServiceError::Contention | ServiceError::DuplicateProviderEvent => {
                ApiError::unavailable("the agreement is busy; retry shortly", 1)
            }
            ServiceError::ProviderNotConfigured { provider } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "PROVIDER_NOT_CONFIGURED",
                format!(
                    "no e-signature provider is configured to carry this agreement (provider `{provider}`); nothing was changed"
                ),
            ),
            ServiceError::NotYet(cause) => {
                tracing::warn!(%cause, "not possible yet");
                ApiError::unavailable("not possible yet; retry shortly", 5)
            }
            ServiceError::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "store unavailable");
                ApiError::unavailable("storage is temporarily unavailable", 5)
            }
            ServiceError::Store(StoreError::Corrupt(cause)) => {
                tracing::error!(%cause, "corrupt stored record");
                ApiError::internal()
            }
        }
    }
}

fn idempotency_key_reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
        "this Idempotency-Key was used with another request",
    )
}

/// Room for a usual answer in one allocation (an agreement with two participants is about
/// 1.6 KiB): `serde_json::to_vec` starts at 128 bytes and doubles, copying the answer each time.
const ANSWER_CAPACITY: usize = 4 * 1024;

/// `body` as JSON, serialized straight from its type into one buffer (no `serde_json::Value` in
/// between: building and dropping that tree was a quarter of a GET's time in `scripts/bench`).
pub(crate) fn to_json(body: &impl Serialize) -> serde_json::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(ANSWER_CAPACITY);
    serde_json::to_writer(&mut bytes, body)?;
    Ok(bytes)
}

/// A JSON answer (see [`to_json`]).
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = match to_json(body) {
        Ok(bytes) => bytes,
        // Only a map with non-string keys fails, and no answer has one; still, never a panic.
        Err(_) => {
            let mut response = Response::new(Body::from(INTERNAL_BODY));
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return response;
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// What `json_response` answers if a body cannot be serialized (the SPEC shape, without a request
/// id, which the errors layer does not see there).
const INTERNAL_BODY: &str = r#"{"status":"error","error":{"code":500,"type":"INTERNAL","message":"an internal error occurred","request_id":"","details":[]}}"#;

/// `{"version":"1.0","result_type":"single","resource_type":...,"data":...}`.
#[derive(Serialize)]
pub struct Single<'a, T> {
    version: &'static str,
    result_type: &'static str,
    resource_type: &'a str,
    data: T,
}

pub fn single<T: Serialize>(resource_type: &str, data: T) -> Single<'_, T> {
    Single {
        version: "1.0",
        result_type: "single",
        resource_type,
        data,
    }
}

/// `{"version":"1.0","result_type":"list","resource_type":...,"data":[...],"next_cursor":...}`.
#[derive(Serialize)]
pub struct List<'a, T> {
    version: &'static str,
    result_type: &'static str,
    resource_type: &'a str,
    data: T,
    next_cursor: Option<String>,
}

pub fn list<T: Serialize>(
    resource_type: &str,
    data: T,
    next_cursor: Option<String>,
) -> List<'_, T> {
    List {
        version: "1.0",
        result_type: "list",
        resource_type,
        data,
        next_cursor,
    }
}
