//! The HTTP API of countersign (SPEC section 3): one axum [`router`], which the Lambda binaries
//! hand to `lambda_http::run` and `countersign-local` serves on 127.0.0.1.

pub mod auth;
pub mod limits;
pub mod request;
pub mod response;
mod router;
mod routes;
pub mod service_hours;
pub mod shape;
pub mod view;

use std::sync::Arc;

use secrecy::SecretSlice;

use countersign_provider::Providers;
use countersign_service::documents::SignedDocumentStore;
use countersign_service::{AgreementService, CallbackQueue};
use countersign_store::Store;

use crate::auth::Authenticator;
use crate::response::ApiError;
use crate::service_hours::ServiceHours;

pub use crate::router::{router, unavailable_router};

/// Largest request body accepted (SPEC section 3: 413 over 1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Sandbox routes answer 404 when off.
    pub enabled: bool,
    /// The secret the sandbox provider signs its callbacks with (one the sandbox verifier accepts).
    pub signing_secret: SecretSlice<u8>,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Consumer routes answer 503 outside these hours; `None`: always open.
    pub service_hours: Option<ServiceHours>,
    pub sandbox: SandboxSettings,
}

/// The whole API: what its handlers share. [`router`] gives it its routes.
pub struct Api<S: ?Sized> {
    agreements: Arc<AgreementService<S>>,
    queue: Arc<dyn CallbackQueue>,
    providers: Arc<Providers>,
    auth: Arc<dyn Authenticator>,
    config: ApiConfig,
    /// Where signed documents are kept: the links of `GET .../signed-document`.
    signed_documents: Option<Arc<dyn SignedDocumentStore>>,
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

    /// Lets a consumer request in: inside service hours (503 outside), with a tenant (401/400).
    pub(crate) fn admit(&self, request: &http::request::Parts) -> Result<String, ApiError> {
        if let Some(hours) = &self.config.service_hours {
            if let Some(retry_after) = hours.retry_after(self.agreements.now()) {
                return Err(ApiError::unavailable(
                    "the API is outside its service hours; retry when it opens",
                    retry_after,
                ));
            }
        }
        self.auth.tenant(request).map_err(ApiError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signing_secret_stays_out_of_debug() {
        let config = ApiConfig {
            service_hours: None,
            sandbox: SandboxSettings {
                enabled: true,
                signing_secret: b"whsec-do-not-print".to_vec().into(),
            },
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("enabled: true"), "{shown}");
        assert!(!shown.contains("whsec-do-not-print"), "{shown}");
    }
}
