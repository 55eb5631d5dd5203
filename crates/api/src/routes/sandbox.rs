//! Sandbox routes (SPEC section 6): for test-mode agreements only, they produce signed provider
//! callbacks that travel the real callback path, or move `expires_at` to now.

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};

use countersign_provider::sandbox;
use countersign_service::ids::new_id;
use countersign_store::Store;
use secrecy::ExposeSecret;

use crate::response::ApiError;
use crate::routes::agreements::agreement_response;
use crate::Api;

pub(crate) fn sandbox_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "the sandbox is switched off",
    )
}

impl<S: Store + ?Sized + 'static> Api<S> {
    pub(crate) async fn sandbox_participant(
        &self,
        tenant: &str,
        id: &str,
        participant_id: &str,
        action: &str,
    ) -> Result<Response, ApiError> {
        let event_type = match action {
            "sign" => sandbox::event_type::PARTICIPANT_SIGNED,
            "refuse" => sandbox::event_type::PARTICIPANT_REFUSED,
            "bounce" => sandbox::event_type::PARTICIPANT_DELIVERY_FAILED,
            "fail-identity" => sandbox::event_type::PARTICIPANT_IDENTITY_CHECK_FAILED,
            other => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    format!("unknown sandbox action `{other}`: expected sign, refuse, bounce or fail-identity"),
                ))
            }
        };
        let agreement = self.test_mode_agreement(tenant, id).await?;
        if agreement.participant(participant_id).is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "PARTICIPANT_NOT_FOUND",
                format!("agreement has no participant `{participant_id}`"),
            ));
        }
        self.emit(event_type, id, Some(participant_id)).await
    }

    pub(crate) async fn sandbox_fail(&self, tenant: &str, id: &str) -> Result<Response, ApiError> {
        self.test_mode_agreement(tenant, id).await?;
        self.emit(sandbox::event_type::AGREEMENT_FAILED, id, None)
            .await
    }

    pub(crate) async fn sandbox_expire(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Response, ApiError> {
        let agreement = self.agreements.sandbox_expire(tenant, id).await?;
        Ok(agreement_response(StatusCode::OK, &agreement))
    }

    /// Agreements not in test mode do not exist for the sandbox.
    async fn test_mode_agreement(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<std::sync::Arc<countersign_domain::Agreement>, ApiError> {
        let agreement = self.agreements.get(tenant, id).await?;
        if agreement.test_mode {
            Ok(agreement)
        } else {
            Err(ApiError::not_found())
        }
    }

    /// Builds the sandbox provider's webhook, signs it, and hands it to the callback route.
    async fn emit(
        &self,
        event_type: &str,
        agreement_id: &str,
        participant_id: Option<&str>,
    ) -> Result<Response, ApiError> {
        let now = self.agreements.now();
        let event = sandbox::SandboxEvent {
            id: format!("evt_{}", new_id()),
            event_type: event_type.to_owned(),
            created_at: now,
            data: sandbox::SandboxEventData {
                agreement_id: agreement_id.to_owned(),
                participant_id: participant_id.map(str::to_owned),
                signed_document: None,
            },
        };
        let body = sandbox::signed_event_body(&event);
        let signature = sandbox::sign(
            self.config.sandbox.signing_secret.expose_secret(),
            now.timestamp(),
            &body,
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            sandbox::SIGNATURE_HEADER,
            HeaderValue::from_str(&signature).map_err(|_| ApiError::internal())?,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self.accept_callback(sandbox::PROVIDER_NAME, &headers, &body)
            .await
    }
}
