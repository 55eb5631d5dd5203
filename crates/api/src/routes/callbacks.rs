//! `POST /v1/callbacks/{provider}` (SPEC section 5): verify, queue, 202. Applying the event is the
//! callback processor's job, so the provider gets its answer fast.

use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde_json::json;

use countersign_provider::{AgreementRef, WebhookError};
use countersign_store::Store;

use crate::response::{json_response, single, ApiError};
use crate::shape::{Place, Problem, Problems};
use crate::Api;

impl<S: Store + ?Sized + 'static> Api<S> {
    /// A provider's callback; also the entry of sandbox-produced ones, which travel the same
    /// path as a provider's.
    pub(crate) async fn accept_callback(
        &self,
        provider: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, ApiError> {
        let verifier = self.providers.verifier(provider).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no provider `{provider}`"),
            )
        })?;
        // Nothing is stored before the signature is verified.
        let event = verifier
            .verify(headers, body, self.agreements.now())
            .map_err(|error| match error {
                WebhookError::MalformedPayload(payload_problems) => {
                    let mut problems = Problems::default();
                    for problem in payload_problems {
                        problems.push(Problem {
                            place: Place::Body {
                                pointer: problem.pointer,
                                field: problem.field,
                            },
                            message: problem.message,
                        });
                    }
                    problems.into_error()
                }
                other => {
                    tracing::warn!(provider, error = %other, "callback refused: verification failed");
                    ApiError::unauthorized("webhook signature verification failed")
                        .with_challenge(signature_challenge(verifier.signature_header()))
                }
            })?;
        self.queue.enqueue(&event).await.map_err(|error| {
            tracing::error!(%error, "callback queue unavailable");
            ApiError::unavailable("callbacks cannot be queued right now", 5)
        })?;
        let (agreement_id, agreement_reference) = match &event.agreement {
            Some(AgreementRef::Id(id)) => (Some(id.as_str()), None),
            Some(AgreementRef::Reference(reference)) => (None, Some(reference.as_str())),
            None => (None, None),
        };
        let mut data = json!({
            "provider": event.provider,
            "event_id": event.event_id,
            "type": event.event_type,
            "agreement_id": agreement_id,
            "participant_id": event.participant.id,
        });
        if let Some(reference) = agreement_reference {
            data["agreement_reference"] = json!(reference);
        }
        Ok(json_response(
            StatusCode::ACCEPTED,
            &single("provider_event", data),
        ))
    }
}

/// The callback route's credential is the provider's signature header: its 401 challenge names
/// that header as the scheme, so a provider engineer sees what is missing.
fn signature_challenge(signature_header: &str) -> String {
    format!("{signature_header} realm=\"{}\"", crate::auth::REALM)
}
