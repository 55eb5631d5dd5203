//! What a function builds once, at init: the AWS clients, the store, the HTTP API.

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use countersign_api::auth::JwtClaim;
use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_aws::SqsCallbackQueue;
use countersign_provider::sandbox::SandboxProvider;
use countersign_provider::{ProviderRegistry, VerifiedEvent};
use countersign_service::callbacks::{CallbackQueue, QueueError};
use countersign_service::{AgreementService, RetryPolicy, SystemClock};
use countersign_store_dynamodb::DynamoStore;
use lambda_http::{service_fn, Request};

use crate::settings::{Settings, CALLBACK_QUEUE_URL, WEBHOOK_SECRET_PARAMETER};
use crate::Error;

/// The SDK configuration from the function's environment (region, credentials, and
/// `AWS_ENDPOINT_URL` when pointed at an emulator).
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

pub fn store(sdk: &SdkConfig, settings: &Settings) -> Arc<DynamoStore> {
    Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &settings.table_name,
    ))
}

/// The webhook secrets, newest first, from their SSM SecureString parameter (comma-separated).
pub async fn webhook_secrets(sdk: &SdkConfig, settings: &Settings) -> Result<Vec<Vec<u8>>, Error> {
    let name = Settings::require(&settings.webhook_secret_parameter, WEBHOOK_SECRET_PARAMETER)?;
    let output = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|error| {
            format!(
                "reading the SSM parameter {name}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&error)
            )
        })?;
    let value = output
        .parameter()
        .and_then(|parameter| parameter.value())
        .ok_or_else(|| format!("the SSM parameter {name} has no value"))?;
    let secrets: Vec<Vec<u8>> = value
        .split(',')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .map(|secret| secret.as_bytes().to_vec())
        .collect();
    if secrets.is_empty() {
        return Err(format!("the SSM parameter {name} holds no secret").into());
    }
    // A deployment never signs or verifies with the published development secret.
    countersign_provider::sandbox::check_deployment_secrets(&secrets)
        .map_err(|error| format!("the SSM parameter {name}: {error}"))?;
    Ok(secrets)
}

/// Which parts of the API a function serves beyond agreements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRole {
    /// Create, read and edit: no provider, no queue.
    Agreements,
    /// Lifecycle and the sandbox routes, whose signed callbacks go to the callback queue.
    LifecycleAndSandbox,
    /// `POST /v1/callbacks/{provider}`: verify and enqueue.
    Callbacks,
}

/// The queue of a function that has none: its routes never enqueue, and if one did, the
/// request fails (500) instead of losing the event.
struct NoCallbackQueue;

#[async_trait]
impl CallbackQueue for NoCallbackQueue {
    async fn enqueue(&self, _event: &VerifiedEvent) -> Result<(), QueueError> {
        Err(QueueError(format!(
            "this function has no {CALLBACK_QUEUE_URL}"
        )))
    }
}

pub async fn http_api(
    sdk: &SdkConfig,
    settings: &Settings,
    role: HttpRole,
) -> Result<Api<DynamoStore>, Error> {
    let store = store(sdk, settings);
    let agreements = Arc::new(AgreementService::new(
        store,
        Arc::new(SystemClock),
        settings.rules.clone(),
        RetryPolicy::default(),
    ));
    let mut providers = ProviderRegistry::new();
    let mut signing_secret = Vec::new();
    // Only the callback route and the sandbox routes (when on) enqueue. The sandbox provider,
    // and so its secrets, exist only when the sandbox is on: off, `POST /v1/callbacks/sandbox`
    // is 404 like every other sandbox route.
    let enqueues = match role {
        HttpRole::Agreements => false,
        HttpRole::LifecycleAndSandbox => settings.sandbox_enabled,
        HttpRole::Callbacks => true,
    };
    if enqueues && settings.sandbox_enabled {
        let secrets = webhook_secrets(sdk, settings).await?;
        signing_secret = secrets[0].clone();
        providers.register(Box::new(SandboxProvider::new(secrets)));
    }
    let queue: Arc<dyn CallbackQueue> = match enqueues {
        false => Arc::new(NoCallbackQueue),
        true => {
            let url = Settings::require(&settings.callback_queue_url, CALLBACK_QUEUE_URL)?;
            Arc::new(SqsCallbackQueue::new(aws_sdk_sqs::Client::new(sdk), url))
        }
    };
    Ok(Api::new(
        agreements,
        queue,
        Arc::new(providers),
        Arc::new(JwtClaim {
            claim: settings.tenant_claim.clone(),
        }),
        ApiConfig {
            service_hours: settings.service_hours,
            sandbox: SandboxSettings {
                enabled: settings.sandbox_enabled,
                signing_secret,
            },
        },
    ))
}

/// The whole life of an HTTP function: settings, clients and the API once, then every request.
pub async fn serve_http(role: HttpRole) -> Result<(), Error> {
    crate::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let api = Arc::new(http_api(&sdk, &settings, role).await?);
    lambda_http::run(service_fn(move |request: Request| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(api.handle(request).await) }
    }))
    .await
}
