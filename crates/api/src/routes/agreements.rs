//! Agreement routes: create, get, list, patch, lifecycle, history.

use std::sync::Mutex;

use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, ETAG, LOCATION};
use http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use countersign_domain::{
    Agreement, AgreementInput, CancellationReason, DomainError, LifecycleRequest, Status,
};
use countersign_service::documents::DocumentError;
use countersign_service::{Answer, IdempotencyIntent, RenderedResponse, ServiceError};
use countersign_store::{ListPosition, ListQuery, Store};

use crate::request::{
    decode_cursor, encode_cursor, idempotency_key, if_match, parse_json, request_hash, Consumer,
};
use crate::response::{json_response, list, single, to_json, ApiError};
use crate::shape::{
    self, json_object, listing, Place, Problem, Problems, Step, AGREEMENT_INPUT,
    CANCELLATION_INPUT, LIFECYCLE_BODY,
};
use crate::view::{AgreementView, HistoryEntryView};
use crate::Api;

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;
const LIST_PARAMETERS: [&str; 4] = ["lookup_key", "status", "limit", "cursor"];

/// An agreement's answer, whole: the envelope, `ETag`, and `Location` on creation. The one
/// place its shape is decided; [`agreement_response`] sends it, [`render_agreement`] keeps it
/// for an idempotent replay.
struct AgreementAnswer {
    status: StatusCode,
    body: Vec<u8>,
    headers: [Option<(HeaderName, HeaderValue)>; 3],
}

fn agreement_answer(status: StatusCode, agreement: &Agreement) -> AgreementAnswer {
    // Serializing these types cannot fail (no map with non-string keys); an empty body if it did.
    let body = to_json(&single("agreement", AgreementView::of(agreement))).unwrap_or_default();
    let etag = HeaderValue::try_from(format!("\"{}\"", agreement.version)).ok();
    let location = (status == StatusCode::CREATED)
        .then(|| HeaderValue::try_from(format!("/v1/agreements/{}", agreement.id)).ok())
        .flatten();
    AgreementAnswer {
        status,
        body,
        headers: [
            Some((CONTENT_TYPE, HeaderValue::from_static("application/json"))),
            etag.map(|etag| (ETAG, etag)),
            location.map(|location| (LOCATION, location)),
        ],
    }
}

/// The response for an agreement (see [`agreement_answer`]).
pub(crate) fn agreement_response(status: StatusCode, agreement: &Agreement) -> Response {
    let answer = agreement_answer(status, agreement);
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    for (name, value) in answer.headers.into_iter().flatten() {
        response.headers_mut().insert(name, value);
    }
    response
}

/// The response for an agreement as kept with an idempotency record (see [`agreement_answer`]).
pub(crate) fn render_agreement(status: StatusCode, agreement: &Agreement) -> RenderedResponse {
    let answer = agreement_answer(status, agreement);
    let headers = answer
        .headers
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    RenderedResponse {
        status: answer.status.as_u16(),
        headers,
        body: String::from_utf8(answer.body).unwrap_or_default(),
    }
}

fn rendered_to_response(rendered: RenderedResponse) -> Response {
    let mut response = Response::new(Body::from(rendered.body));
    *response.status_mut() = StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::OK);
    for (name, value) in rendered.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The response to a request that may carry an `Idempotency-Key`: the agreement, or the kept
/// response of the same request, marked `Idempotent-Replayed`.
fn answer_response(status: StatusCode, answer: Answer) -> Response {
    match answer {
        Answer::Agreement(agreement) => agreement_response(status, &agreement),
        Answer::Replayed(kept) => {
            let mut response = rendered_to_response(kept);
            response.headers_mut().insert(
                "idempotent-replayed",
                http::HeaderValue::from_static("true"),
            );
            response
        }
    }
}

/// `POST /v1/agreements/{id}/lifecycle` body; its words are [`LIFECYCLE_BODY`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleBody {
    lifecycle_state: LifecycleState,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LifecycleState {
    Pending,
    Open,
    Cancelled,
}

/// `input` of a cancellation; its words are [`CANCELLATION_INPUT`]. A missing or unknown reason
/// is the cancellation rules' refusal (422), not a malformed request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancellationInput {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

fn lifecycle_request(body: &[u8]) -> Result<LifecycleRequest, ApiError> {
    let body: LifecycleBody = parse_json(body, &LIFECYCLE_BODY)?;
    let invalid_reason =
        |message: String| -> ApiError { DomainError::InvalidCancellationReason(message).into() };
    match (body.lifecycle_state, body.input) {
        (LifecycleState::Pending, None) => Ok(LifecycleRequest::Pending),
        (LifecycleState::Open, None) => Ok(LifecycleRequest::Open),
        (LifecycleState::Pending | LifecycleState::Open, Some(_)) => Err(Problem::at(
            Place::body(&[Step::Key("input".to_owned())]),
            "is only for `cancelled`; `pending` and `open` take none",
        )
        .into_error()),
        (LifecycleState::Cancelled, None) => {
            Err(invalid_reason("cancelling needs `input.reason`".to_owned()))
        }
        (LifecycleState::Cancelled, Some(input)) => {
            let input: CancellationInput = shape::read(
                &input,
                &CANCELLATION_INPUT,
                &[Step::Key("input".to_owned())],
            )?;
            let reason = input
                .reason
                .ok_or_else(|| invalid_reason("cancelling needs `input.reason`".to_owned()))?;
            CancellationReason::parse(&reason, input.description.as_deref())
                .map(LifecycleRequest::Cancelled)
                .map_err(invalid_reason)
        }
    }
}

/// The list route's query (`application/x-www-form-urlencoded`, as API Gateway and browsers
/// send it): every parameter that does not fit is a problem of its own.
fn list_query(tenant: &str, raw_query: Option<&str>) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        tenant: tenant.to_owned(),
        lookup_key: None,
        status: None,
        limit: DEFAULT_PAGE,
        after: None,
    };
    let mut problems = Problems::default();
    for (name, value) in form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        let (name, value) = (name.as_ref(), value.as_ref());
        let place = Place::query(name);
        match name {
            "lookup_key" => query.lookup_key = Some(value.to_owned()),
            "status" => match Status::parse(value) {
                Some(status) => query.status = Some(status),
                None => {
                    let names: Vec<&str> =
                        Status::ALL.iter().map(|status| status.as_str()).collect();
                    problems.push(Problem::at(
                        place,
                        &format!("must be one of {}", listing(&names)),
                    ));
                }
            },
            "limit" => match value
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_PAGE).contains(limit))
            {
                Some(limit) => query.limit = limit,
                None => problems.push(Problem::at(
                    place,
                    &format!("must be a whole number from 1 to {MAX_PAGE}"),
                )),
            },
            "cursor" => match decode_cursor(value) {
                Some(position) => query.after = Some(position),
                None => problems.push(Problem::at(
                    place,
                    "must be a `next_cursor` this API returned",
                )),
            },
            _ => problems.push(Problem::at(
                place,
                &format!(
                    "is not a parameter of this route; known parameters: {}",
                    listing(&LIST_PARAMETERS)
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(query)
    } else {
        Err(problems.into_error())
    }
}

impl<S: Store + ?Sized + 'static> Api<S> {
    pub(crate) async fn create(&self, request: &Consumer) -> Result<Response, ApiError> {
        let (tenant, body) = (request.tenant.as_str(), &request.body[..]);
        let input: AgreementInput = if body.iter().all(u8::is_ascii_whitespace) {
            AgreementInput::default()
        } else {
            parse_json(body, &AGREEMENT_INPUT)?
        };
        let key = idempotency_key(&request.headers)?;
        let hash = request_hash("POST", &request.path, body);
        let render = |agreement: &Agreement| render_agreement(StatusCode::CREATED, agreement);
        let intent = key.as_deref().map(|key| IdempotencyIntent {
            key,
            request_hash: &hash,
            render: &render,
        });
        let answer = self
            .agreements
            .create(tenant, input, intent.as_ref())
            .await?;
        Ok(answer_response(StatusCode::CREATED, answer))
    }

    pub(crate) async fn get(&self, tenant: &str, id: &str) -> Result<Response, ApiError> {
        let agreement = self.agreements.get(tenant, id).await?;
        Ok(agreement_response(StatusCode::OK, &agreement))
    }

    pub(crate) async fn list(&self, request: &Consumer) -> Result<Response, ApiError> {
        let query = list_query(&request.tenant, request.query.as_deref())?;
        let page = self.agreements.list(&query).await?;
        let data: Vec<AgreementView> = page.agreements.iter().map(AgreementView::of).collect();
        let next = page
            .next
            .as_ref()
            .map(|position: &ListPosition| encode_cursor(position));
        Ok(json_response(
            StatusCode::OK,
            &list("agreement", data, next),
        ))
    }

    pub(crate) async fn patch(&self, request: &Consumer, id: &str) -> Result<Response, ApiError> {
        let tenant = request.tenant.as_str();
        let patch = json_object(&request.body)?;
        let if_match = if_match(&request.headers)?;
        // The service reports a patch that does not merge into an input as `Malformed`; the
        // answer with every problem in it waits here for the handler to return.
        let refusal: Mutex<Option<ApiError>> = Mutex::new(None);
        // Applied to the agreement as read on every attempt: a retry after a conflict merges
        // onto the newer version. Merging into the agreement as it is keeps the fields a patch of
        // one field of a nested object leaves out (`{"documents":{"main":{"filename":...}}}`);
        // what then fails to read as an input (unknown fields, wrong types) is 400, as for create,
        // each problem at its place in the merged document, which is its place in the patch.
        let make_input = |mut document: Value| -> Result<AgreementInput, ServiceError> {
            json_patch::merge(&mut document, &patch);
            shape::read(&document, &AGREEMENT_INPUT, &[]).map_err(|error: ApiError| {
                let message = error.message.clone();
                if let Ok(mut slot) = refusal.lock() {
                    *slot = Some(error);
                }
                ServiceError::Malformed(message)
            })
        };
        let edited = self
            .agreements
            .edit(tenant, id, if_match, &make_input)
            .await;
        match edited {
            Ok(agreement) => Ok(agreement_response(StatusCode::OK, &agreement)),
            Err(ServiceError::Malformed(message)) => Err(refusal
                .lock()
                .ok()
                .and_then(|mut slot| slot.take())
                .unwrap_or_else(|| ApiError::invalid_request(message))),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn lifecycle(
        &self,
        request: &Consumer,
        id: &str,
    ) -> Result<Response, ApiError> {
        let (tenant, body) = (request.tenant.as_str(), &request.body[..]);
        let lifecycle = lifecycle_request(body)?;
        let if_match = if_match(&request.headers)?;
        let key = idempotency_key(&request.headers)?;
        let hash = request_hash("POST", &request.path, body);
        let render = |agreement: &Agreement| render_agreement(StatusCode::OK, agreement);
        let intent = key.as_deref().map(|key| IdempotencyIntent {
            key,
            request_hash: &hash,
            render: &render,
        });
        let answer = self
            .agreements
            .lifecycle(tenant, id, lifecycle, if_match, intent.as_ref())
            .await?;
        Ok(answer_response(StatusCode::OK, answer))
    }

    /// `GET /v1/agreements/{id}/signed-document`: a short-lived link to the signed file once it
    /// is recorded (presigned on AWS, served by countersign-local locally).
    pub(crate) async fn signed_document(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Response, ApiError> {
        let agreement = self.agreements.get(tenant, id).await?;
        let not_available =
            |message: &str| ApiError::new(StatusCode::NOT_FOUND, "DOCUMENT_NOT_AVAILABLE", message);
        let Some(document) = &agreement.documents.signed_document else {
            return Err(not_available("the agreement has no signed document yet"));
        };
        let Some(store) = &self.signed_documents else {
            return Err(not_available("signed documents are not served here"));
        };
        let expires_at = self.agreements.now() + countersign_service::documents::LINK_TTL;
        let link = store
            .link(&document.uri, expires_at)
            .await
            .map_err(|error| match error {
                DocumentError::Unreadable(cause) => {
                    tracing::warn!(agreement_id = %agreement.id, %cause, "signed document not held here");
                    not_available("the signed document is not held by countersign")
                }
                DocumentError::Unavailable(cause) => {
                    tracing::error!(%cause, "document storage unavailable");
                    ApiError::unavailable("document storage is temporarily unavailable", 5)
                }
            })?;
        Ok(json_response(
            StatusCode::OK,
            &single(
                "signed_document",
                serde_json::json!({
                    "url": link.url,
                    "expires_at": link.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "filename": document.filename,
                    "mime_type": document.mime_type,
                    "size": document.size,
                    "sha256": document.sha256,
                }),
            ),
        ))
    }

    pub(crate) async fn history(&self, tenant: &str, id: &str) -> Result<Response, ApiError> {
        let entries = self.agreements.history(tenant, id).await?;
        let data: Vec<HistoryEntryView> = entries.iter().map(HistoryEntryView::of).collect();
        Ok(json_response(
            StatusCode::OK,
            &list("history_entry", data, None),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::assert_shape_agrees_with_serde;
    use serde_json::json;

    #[test]
    fn the_lifecycle_shapes_accept_what_serde_accepts() {
        assert_shape_agrees_with_serde::<LifecycleBody>(
            &LIFECYCLE_BODY,
            &json!({"lifecycle_state": "cancelled", "input": {"reason": "custom"}}),
        );
        assert_shape_agrees_with_serde::<CancellationInput>(
            &CANCELLATION_INPUT,
            &json!({"reason": "custom", "description": "the customer withdrew"}),
        );
    }
}
