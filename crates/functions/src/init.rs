//! What a function builds once, at init: the AWS clients, the store, and what is built from
//! its secrets on first use ([`OnFirstUse`]): the HTTP API, the providers' clients. Init makes no
//! network call.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use axum::Router;
use countersign_api::auth::JwtClaim;
use countersign_api::{Api, ApiConfig, SandboxSettings};
use countersign_aws::{EventBridgeSender, S3Documents, SqsCallbackQueue};
use countersign_provider::sandbox::SandboxProvider;
use countersign_provider::zigned::ZignedConfig;
use countersign_provider::{Providers, VerifiedEvent, WebhookSecrets};
use countersign_service::callbacks::{CallbackQueue, QueueError};
use countersign_service::dispatcher::Dispatcher;
use countersign_service::{AgreementService, CallbackProcessor, RetryPolicy, Sweeper, SystemClock};
use countersign_store_dynamodb::DynamoStore;
use lambda_http::tower::ServiceExt;
use secrecy::{ExposeSecret, SecretString};

use crate::first_use::{OnFirstUse, Source};
use crate::settings::{
    Settings, CALLBACK_QUEUE_URL, DOCUMENTS_BUCKET, EVENT_BUS_NAME, WEBHOOK_SECRET_PARAMETER,
};
use crate::Error;

/// The SDK configuration from the function's environment, as Lambda sets it: the region
/// (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`, read when a request is signed), and `AWS_ENDPOINT_URL` when pointed at an
/// emulator. Not aws-config's default chain: it reads profile files at init and links STS, SSO,
/// IMDS and ECS clients that a function never uses (init time and package size). The HTTP client
/// is made on the first request, with compiled-in roots ([`countersign_aws::sdk_http_client`]);
/// the clients bring their own defaults for the rest (retries, timeouts, identity cache).
pub fn sdk_config() -> Result<SdkConfig, Error> {
    sdk_config_from(|name| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.trim().is_empty())
    })
}

pub fn sdk_config_from(get: impl Fn(&str) -> Option<String>) -> Result<SdkConfig, Error> {
    let region = get("AWS_REGION")
        .or_else(|| get("AWS_DEFAULT_REGION"))
        .ok_or("AWS_REGION is not set")?;
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(countersign_aws::sdk_http_client());
    if let Some(endpoint) = get("AWS_ENDPOINT_URL") {
        config = config.endpoint_url(endpoint);
    }
    Ok(config.build())
}

pub fn store(sdk: &SdkConfig, settings: &Settings) -> Arc<DynamoStore> {
    Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        &settings.table_name,
    ))
}

/// The value of an SSM SecureString parameter. The value is never logged, nor put in an error.
async fn secure_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<SecretString, Error> {
    let output = ssm
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
        .map(|value| SecretString::from(value.to_owned()))
        .ok_or_else(|| format!("the SSM parameter {name} has no value").into())
}

/// The SSM SecureString parameters a function's secrets are in, read on first use
/// ([`crate::first_use`]), never at init.
pub struct SecretParameters {
    sdk: SdkConfig,
    /// Made on the first read: most functions have no secret to read.
    ssm: OnceLock<aws_sdk_ssm::Client>,
    names: Vec<String>,
}

impl SecretParameters {
    fn new(sdk: &SdkConfig, names: Vec<String>) -> Self {
        SecretParameters {
            sdk: sdk.clone(),
            ssm: OnceLock::new(),
            names,
        }
    }

    /// Every parameter's value; none for a function without secrets (no call at all).
    pub async fn read(&self) -> Result<ParameterValues, Error> {
        let mut values = BTreeMap::new();
        for name in &self.names {
            let ssm = self.ssm.get_or_init(|| aws_sdk_ssm::Client::new(&self.sdk));
            values.insert(name.clone(), secure_parameter(ssm, name).await?);
        }
        Ok(ParameterValues(values))
    }
}

/// Parameter values by name. Compared to tell a rotation; never shown.
#[derive(Default)]
pub struct ParameterValues(BTreeMap<String, SecretString>);

impl PartialEq for ParameterValues {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((a, x), (b, y))| a == b && x.expose_secret() == y.expose_secret())
    }
}

impl ParameterValues {
    fn get(&self, name: &str) -> Result<&str, Error> {
        self.0
            .get(name)
            .map(|value| value.expose_secret())
            .ok_or_else(|| format!("the SSM parameter {name} was not read").into())
    }

    /// Comma-separated secrets, newest first; refused if any is the published development
    /// secret or too short.
    fn secrets(&self, name: &str) -> Result<Vec<Vec<u8>>, Error> {
        let secrets: Vec<Vec<u8>> = self
            .get(name)?
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
}

#[derive(serde::Deserialize)]
struct ZignedCredentials {
    client_id: String,
    client_secret: String,
}

/// Zigned's client configuration from its credentials parameter.
fn zigned_config(
    values: &ParameterValues,
    settings: &Settings,
    name: &str,
) -> Result<ZignedConfig, Error> {
    let credentials: ZignedCredentials = serde_json::from_str(values.get(name)?).map_err(|_| {
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
    Ok(config)
}

/// The SSM parameters of the webhook secrets the callback route verifies with.
fn webhook_parameters(settings: &Settings) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    if settings.sandbox_enabled {
        let name = Settings::require(&settings.webhook_secret_parameter, WEBHOOK_SECRET_PARAMETER)?;
        names.push(name.to_owned());
    }
    names.extend(settings.zigned.webhook_secret_parameter.clone());
    Ok(names)
}

/// The callback route's webhook secrets, from what was read.
fn webhook_secrets(settings: &Settings, values: &ParameterValues) -> Result<WebhookSecrets, Error> {
    let mut secrets = WebhookSecrets::default();
    if settings.sandbox_enabled {
        let name = Settings::require(&settings.webhook_secret_parameter, WEBHOOK_SECRET_PARAMETER)?;
        secrets.sandbox = Some(values.secrets(name)?);
    }
    if let Some(name) = settings.zigned.webhook_secret_parameter.as_deref() {
        secrets.zigned = values.secrets(name)?;
    }
    Ok(secrets)
}

/// The providers' clients (dispatcher, callback processor), Zigned's from its credentials.
fn client_providers(settings: &Settings, values: &ParameterValues) -> Result<Providers, Error> {
    let zigned = match settings.zigned.credentials_parameter.as_deref() {
        Some(name) => Some(zigned_config(values, settings, name)?),
        None => None,
    };
    let mut providers = Providers::new();
    providers.register_clients(zigned)?;
    Ok(providers)
}

/// The documents bucket's store (signed documents, presigned links, `s3://` reads).
pub fn documents(sdk: &SdkConfig, settings: &Settings) -> Result<Arc<S3Documents>, Error> {
    let bucket = Settings::require(&settings.documents_bucket, DOCUMENTS_BUCKET)?;
    Ok(Arc::new(S3Documents::new(
        aws_sdk_s3::Client::new(sdk),
        bucket,
    )))
}

/// What a worker makes from the SDK configuration, its settings and its providers.
type Assemble<T> = dyn Fn(&SdkConfig, &Settings, Providers) -> Result<T, Error> + Send + Sync;

/// A worker whose settings are checked at init, and whose clients (the table, the bucket, the
/// providers' with their secrets) are made on first use.
pub struct WorkerParts<T> {
    sdk: SdkConfig,
    settings: Settings,
    secrets: SecretParameters,
    assemble: Box<Assemble<T>>,
}

impl<T> WorkerParts<T> {
    fn new(
        sdk: &SdkConfig,
        settings: &Settings,
        assemble: impl Fn(&SdkConfig, &Settings, Providers) -> Result<T, Error> + Send + Sync + 'static,
    ) -> Self {
        WorkerParts {
            sdk: sdk.clone(),
            settings: settings.clone(),
            secrets: SecretParameters::new(
                sdk,
                settings
                    .zigned
                    .credentials_parameter
                    .iter()
                    .cloned()
                    .collect(),
            ),
            assemble: Box::new(assemble),
        }
    }

    pub fn secrets(&self) -> &SecretParameters {
        &self.secrets
    }
}

#[async_trait]
impl<T: Send + Sync> Source for WorkerParts<T> {
    type Material = ParameterValues;
    type Built = Arc<T>;

    async fn read(&self) -> Result<ParameterValues, Error> {
        self.secrets.read().await
    }

    fn build(&self, values: &ParameterValues) -> Result<Arc<T>, Error> {
        let providers = client_providers(&self.settings, values)?;
        Ok(Arc::new((self.assemble)(
            &self.sdk,
            &self.settings,
            providers,
        )?))
    }
}

/// The dispatcher function's dispatcher: the table, the documents bucket and the providers'
/// clients (credentials from SSM), made on first use; the bucket is required at init.
pub fn dispatcher(
    sdk: &SdkConfig,
    settings: &Settings,
) -> Result<OnFirstUse<WorkerParts<Dispatcher<DynamoStore>>>, Error> {
    Settings::require(&settings.documents_bucket, DOCUMENTS_BUCKET)?;
    let parts = WorkerParts::new(sdk, settings, |sdk, settings, providers| {
        Ok(Dispatcher::new(
            store(sdk, settings),
            providers,
            documents(sdk, settings)?,
            Arc::new(SystemClock),
            RetryPolicy::default(),
        ))
    });
    Ok(OnFirstUse::new(parts))
}

/// The callback processor function's processor: the table, and the providers' clients and the
/// documents bucket to fetch and keep signed documents, made on first use; the bucket is
/// required at init.
pub fn callback_processor(
    sdk: &SdkConfig,
    settings: &Settings,
) -> Result<OnFirstUse<WorkerParts<CallbackProcessor<DynamoStore>>>, Error> {
    Settings::require(&settings.documents_bucket, DOCUMENTS_BUCKET)?;
    let parts = WorkerParts::new(sdk, settings, |sdk, settings, providers| {
        Ok(CallbackProcessor::new(
            store(sdk, settings),
            Arc::new(SystemClock),
            settings.rules.clone(),
            RetryPolicy::default(),
        )
        .with_signed_documents(providers, documents(sdk, settings)?))
    });
    Ok(OnFirstUse::new(parts))
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

/// An [`HttpRole`] as a type. A binary names its role at compile time
/// (`serve_http::<role::Agreements>()`), so what its role never uses (the queue's, the bucket's
/// or SSM's client, the providers' verifiers) is not even linked into its package.
pub trait Role: Send + Sync + 'static {
    const ROLE: HttpRole;
}

/// The roles as types, one per HTTP function.
pub mod role {
    use super::{HttpRole, Role};

    pub struct Agreements;
    pub struct LifecycleAndSandbox;
    pub struct Callbacks;

    impl Role for Agreements {
        const ROLE: HttpRole = HttpRole::Agreements;
    }
    impl Role for LifecycleAndSandbox {
        const ROLE: HttpRole = HttpRole::LifecycleAndSandbox;
    }
    impl Role for Callbacks {
        const ROLE: HttpRole = HttpRole::Callbacks;
    }
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

/// An HTTP function's parts built at init, from settings alone (no network call): the store,
/// the queue, the documents bucket; its webhook secrets are read on first use.
pub struct HttpParts<R: Role> {
    sdk: SdkConfig,
    settings: Settings,
    /// The callback queue, for the routes that enqueue.
    queue_url: Option<String>,
    secrets: SecretParameters,
    role: PhantomData<R>,
}

impl<R: Role> HttpParts<R> {
    /// Checks that the settings have what the role needs; builds nothing yet: the clients are
    /// made with the API, on first use (a client costs a share of a bare runtime's init).
    pub fn new(sdk: &SdkConfig, settings: &Settings) -> Result<Self, Error> {
        // Only the callback route and the sandbox routes (when on) enqueue. The sandbox provider,
        // and so its secrets, exist only when the sandbox is on: off, `POST /v1/callbacks/sandbox`
        // is 404 like every other sandbox route.
        let (enqueues, secret_names) = match R::ROLE {
            HttpRole::Agreements => (false, Vec::new()),
            HttpRole::LifecycleAndSandbox if settings.sandbox_enabled => (
                true,
                vec![Settings::require(
                    &settings.webhook_secret_parameter,
                    WEBHOOK_SECRET_PARAMETER,
                )?
                .to_owned()],
            ),
            HttpRole::LifecycleAndSandbox => (false, Vec::new()),
            HttpRole::Callbacks => (true, webhook_parameters(settings)?),
        };
        let queue_url = match enqueues {
            false => None,
            true => Some(
                Settings::require(&settings.callback_queue_url, CALLBACK_QUEUE_URL)?.to_owned(),
            ),
        };
        Ok(HttpParts {
            sdk: sdk.clone(),
            settings: settings.clone(),
            queue_url,
            secrets: SecretParameters::new(sdk, secret_names),
            role: PhantomData,
        })
    }

    /// The API, with the providers and the sandbox's signing secret from `values`.
    pub fn api(&self, values: &ParameterValues) -> Result<Api<DynamoStore>, Error> {
        let settings = &self.settings;
        let mut signing_secret = Vec::new();
        let mut providers = Providers::new();
        match R::ROLE {
            HttpRole::Agreements => {}
            HttpRole::LifecycleAndSandbox if !settings.sandbox_enabled => {}
            HttpRole::LifecycleAndSandbox => {
                let name = Settings::require(
                    &settings.webhook_secret_parameter,
                    WEBHOOK_SECRET_PARAMETER,
                )?;
                let secrets = values.secrets(name)?;
                signing_secret = secrets[0].clone();
                providers.register_verifier(Arc::new(SandboxProvider::new(secrets)));
            }
            HttpRole::Callbacks => providers.register_webhooks(webhook_secrets(settings, values)?),
        }
        let sdk = &self.sdk;
        let agreements = AgreementService::new(
            store(sdk, settings),
            Arc::new(SystemClock),
            settings.rules.clone(),
            RetryPolicy::default(),
        )
        .with_sending_providers(settings.sending_providers());
        let queue: Arc<dyn CallbackQueue> = match &self.queue_url {
            None => Arc::new(NoCallbackQueue),
            Some(url) => Arc::new(SqsCallbackQueue::new(aws_sdk_sqs::Client::new(sdk), url)),
        };
        let api = Api::new(
            Arc::new(agreements),
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
        Ok(match (R::ROLE, &settings.documents_bucket) {
            (HttpRole::Agreements, Some(_)) => api.with_signed_documents(documents(sdk, settings)?),
            _ => api,
        })
    }
}

#[async_trait]
impl<R: Role> Source for HttpParts<R> {
    type Material = ParameterValues;
    type Built = Router;

    async fn read(&self) -> Result<ParameterValues, Error> {
        self.secrets.read().await
    }

    fn build(&self, values: &ParameterValues) -> Result<Router, Error> {
        Ok(countersign_api::router(Arc::new(self.api(values)?)))
    }
}

/// The API as the function of `role` builds it, its secrets read now (the functions read them
/// on first use, through [`HttpParts`] and [`OnFirstUse`]).
pub async fn http_api(
    sdk: &SdkConfig,
    settings: &Settings,
    role: HttpRole,
) -> Result<Api<DynamoStore>, Error> {
    async fn built<R: Role>(
        sdk: &SdkConfig,
        settings: &Settings,
    ) -> Result<Api<DynamoStore>, Error> {
        let parts = HttpParts::<R>::new(sdk, settings)?;
        let values = parts.secrets.read().await?;
        parts.api(&values)
    }
    match role {
        HttpRole::Agreements => built::<role::Agreements>(sdk, settings).await,
        HttpRole::LifecycleAndSandbox => built::<role::LifecycleAndSandbox>(sdk, settings).await,
        HttpRole::Callbacks => built::<role::Callbacks>(sdk, settings).await,
    }
}

/// The whole life of an HTTP function: settings and clients at init, the API with its secrets
/// on first use, then every request. A request that comes while the secrets cannot be read is a
/// SPEC 500 (logged here), and the next request tries again.
pub async fn serve_http<R: Role>() -> Result<(), Error> {
    crate::init_tracing();
    let settings = Settings::from_env()?;
    let sdk = sdk_config()?;
    let api = Arc::new(OnFirstUse::new(HttpParts::<R>::new(&sdk, &settings)?));
    let unavailable = countersign_api::unavailable_router();
    lambda_http::run(lambda_http::service_fn(
        move |request: lambda_http::Request| {
            let api = api.clone();
            let unavailable = unavailable.clone();
            async move {
                let router = match api.get().await {
                    Ok(router) => router,
                    Err(error) => {
                        tracing::error!(%error, "the API could not be built: answering 500");
                        unavailable
                    }
                };
                router.oneshot(request).await
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<SdkConfig, Error> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        sdk_config_from(|name| vars.get(name).map(|value| value.to_string()))
    }

    #[test]
    fn the_sdk_configuration_is_lambdas_environment() {
        let error = config(&[]).unwrap_err().to_string();
        assert_eq!(error, "AWS_REGION is not set");

        let sdk = config(&[("AWS_REGION", "eu-west-1")]).unwrap();
        assert_eq!(
            sdk.region().map(|region| region.as_ref()),
            Some("eu-west-1")
        );
        assert_eq!(sdk.endpoint_url(), None);
        assert!(sdk.credentials_provider().is_some());

        let sdk = config(&[
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ])
        .unwrap();
        assert_eq!(
            sdk.region().map(|region| region.as_ref()),
            Some("us-east-1")
        );
        assert_eq!(sdk.endpoint_url(), Some("http://127.0.0.1:5000"));
    }
}
