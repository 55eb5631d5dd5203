//! What a function builds once, at init: the AWS clients, the store, the HTTP API.

use std::sync::Arc;

use async_trait::async_trait;
use aws_config::{BehaviorVersion, SdkConfig};
use countersign_api::auth::JwtClaim;
use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_aws::{EventBridgeSender, S3Documents, SqsCallbackQueue};
use countersign_provider::sandbox::SandboxProvider;
use countersign_provider::zigned::ZignedConfig;
use countersign_provider::{Providers, ProvidersSetup, VerifiedEvent, ZignedSetup};
use countersign_service::callbacks::{CallbackQueue, QueueError};
use countersign_service::dispatcher::Dispatcher;
use countersign_service::{AgreementService, CallbackProcessor, RetryPolicy, Sweeper, SystemClock};
use countersign_store_dynamodb::DynamoStore;
use secrecy::SecretString;

use crate::settings::{
    Settings, CALLBACK_QUEUE_URL, DOCUMENTS_BUCKET, EVENT_BUS_NAME, WEBHOOK_SECRET_PARAMETER,
};
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

/// The value of an SSM SecureString parameter. The value is never logged, nor put in an error.
async fn secure_parameter(sdk: &SdkConfig, name: &str) -> Result<String, Error> {
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
    output
        .parameter()
        .and_then(|parameter| parameter.value())
        .map(str::to_owned)
        .ok_or_else(|| format!("the SSM parameter {name} has no value").into())
}

/// Comma-separated secrets, newest first, from an SSM parameter; refused if any is the
/// published development secret or too short.
async fn secrets_parameter(sdk: &SdkConfig, name: &str) -> Result<Vec<Vec<u8>>, Error> {
    let value = secure_parameter(sdk, name).await?;
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

/// The sandbox webhook secrets, newest first, from their SSM SecureString parameter.
pub async fn webhook_secrets(sdk: &SdkConfig, settings: &Settings) -> Result<Vec<Vec<u8>>, Error> {
    let name = Settings::require(&settings.webhook_secret_parameter, WEBHOOK_SECRET_PARAMETER)?;
    secrets_parameter(sdk, name).await
}

#[derive(serde::Deserialize)]
struct ZignedCredentials {
    client_id: String,
    client_secret: String,
}

/// Zigned's client, when its credentials parameter is configured.
pub async fn zigned_config(
    sdk: &SdkConfig,
    settings: &Settings,
) -> Result<Option<ZignedConfig>, Error> {
    let Some(name) = settings.zigned.credentials_parameter.as_deref() else {
        return Ok(None);
    };
    let value = secure_parameter(sdk, name).await?;
    let credentials: ZignedCredentials = serde_json::from_str(&value).map_err(|_| {
        format!("the SSM parameter {name} is not {{\"client_id\": ..., \"client_secret\": ...}}")
    })?;
    let mut config = ZignedConfig::new(
        credentials.client_id,
        SecretString::from(credentials.client_secret),
    );
    if let Some(url) = &settings.zigned.api_url {
        config.api_url = url.clone();
    }
    if let Some(url) = &settings.zigned.token_url {
        config.token_url = url.clone();
    }
    Ok(Some(config))
}

/// What a function needs of the providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderHalves {
    /// Webhook verifiers only (the callback route).
    Webhooks,
    /// Outbound clients only (dispatcher, callback processor).
    Clients,
}

/// The providers this function uses, their secrets read from SSM.
pub async fn providers(
    sdk: &SdkConfig,
    settings: &Settings,
    halves: ProviderHalves,
) -> Result<Providers, Error> {
    let mut setup = ProvidersSetup::default();
    match halves {
        ProviderHalves::Webhooks => {
            if settings.sandbox_enabled {
                setup.sandbox_webhook_secrets = Some(webhook_secrets(sdk, settings).await?);
            }
            if let Some(name) = settings.zigned.webhook_secret_parameter.as_deref() {
                setup.zigned = ZignedSetup {
                    webhook_secrets: secrets_parameter(sdk, name).await?,
                    client: None,
                };
            }
        }
        ProviderHalves::Clients => {
            setup.zigned = ZignedSetup {
                webhook_secrets: Vec::new(),
                client: zigned_config(sdk, settings).await?,
            };
        }
    }
    Ok(Providers::from_setup(setup)?)
}

/// The documents bucket's store (signed documents, presigned links, `s3://` reads).
pub fn documents(sdk: &SdkConfig, settings: &Settings) -> Result<Arc<S3Documents>, Error> {
    let bucket = Settings::require(&settings.documents_bucket, DOCUMENTS_BUCKET)?;
    Ok(Arc::new(S3Documents::new(
        aws_sdk_s3::Client::new(sdk),
        bucket,
    )))
}

/// The dispatcher function's dispatcher: the table, the providers' clients (credentials from
/// SSM), the documents bucket.
pub async fn dispatcher(
    sdk: &SdkConfig,
    settings: &Settings,
) -> Result<Dispatcher<DynamoStore>, Error> {
    Ok(Dispatcher::new(
        store(sdk, settings),
        providers(sdk, settings, ProviderHalves::Clients).await?,
        documents(sdk, settings)?,
        Arc::new(SystemClock),
        RetryPolicy::default(),
    ))
}

/// The callback processor function's processor: the table, and the providers' clients and the
/// documents bucket to fetch and keep signed documents.
pub async fn callback_processor(
    sdk: &SdkConfig,
    settings: &Settings,
) -> Result<CallbackProcessor<DynamoStore>, Error> {
    Ok(CallbackProcessor::new(
        store(sdk, settings),
        Arc::new(SystemClock),
        settings.rules.clone(),
        RetryPolicy::default(),
    )
    .with_signed_documents(
        providers(sdk, settings, ProviderHalves::Clients).await?,
        documents(sdk, settings)?,
    ))
}

/// The outbox publisher function's sender: the bus.
pub fn outbox_publisher(sdk: &SdkConfig, settings: &Settings) -> Result<EventBridgeSender, Error> {
    let bus = Settings::require(&settings.event_bus_name, EVENT_BUS_NAME)?;
    Ok(EventBridgeSender::new(
        aws_sdk_eventbridge::Client::new(sdk),
        bus,
    ))
}

/// The sweeper function's sweeper: the table, pages of `SWEEP_PAGE_SIZE`.
pub fn sweeper(sdk: &SdkConfig, settings: &Settings) -> Sweeper<DynamoStore> {
    Sweeper::new(
        store(sdk, settings),
        Arc::new(SystemClock),
        RetryPolicy::default(),
        settings.sweep_page_size,
    )
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
    let agreements = Arc::new(
        AgreementService::new(
            store,
            Arc::new(SystemClock),
            settings.rules.clone(),
            RetryPolicy::default(),
        )
        .with_sending_providers(settings.sending_providers()),
    );
    let mut signing_secret = Vec::new();
    // Only the callback route and the sandbox routes (when on) enqueue. The sandbox provider,
    // and so its secrets, exist only when the sandbox is on: off, `POST /v1/callbacks/sandbox`
    // is 404 like every other sandbox route.
    let enqueues = match role {
        HttpRole::Agreements => false,
        HttpRole::LifecycleAndSandbox => settings.sandbox_enabled,
        HttpRole::Callbacks => true,
    };
    let providers = match role {
        HttpRole::Agreements => Providers::new(),
        HttpRole::LifecycleAndSandbox | HttpRole::Callbacks if !enqueues => Providers::new(),
        HttpRole::LifecycleAndSandbox => {
            let secrets = webhook_secrets(sdk, settings).await?;
            signing_secret = secrets[0].clone();
            let mut providers = Providers::new();
            providers.register_verifier(Arc::new(SandboxProvider::new(secrets)));
            providers
        }
        HttpRole::Callbacks => providers(sdk, settings, ProviderHalves::Webhooks).await?,
    };
    let queue: Arc<dyn CallbackQueue> = match enqueues {
        false => Arc::new(NoCallbackQueue),
        true => {
            let url = Settings::require(&settings.callback_queue_url, CALLBACK_QUEUE_URL)?;
            Arc::new(SqsCallbackQueue::new(aws_sdk_sqs::Client::new(sdk), url))
        }
    };
    let api = Api::new(
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
                signing_secret: signing_secret.into(),
            },
        },
    );
    // The read function serves the signed-document links, when the bucket is configured.
    Ok(match (role, &settings.documents_bucket) {
        (HttpRole::Agreements, Some(_)) => api.with_signed_documents(documents(sdk, settings)?),
        _ => api,
    })
}

/// The whole life of an HTTP function: settings, clients and the API once, then every request.
pub async fn serve_http(role: HttpRole) -> Result<(), Error> {
    crate::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config().await;
    let api = Arc::new(http_api(&sdk, &settings, role).await?);
    lambda_http::run(countersign_api::router(api)).await
}
