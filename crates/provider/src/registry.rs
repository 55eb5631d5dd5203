//! The configured providers by name: the callback route's verifiers, the dispatcher's clients.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use http::HeaderMap;

use std::sync::Arc;

use crate::outbound::ProviderClient;
use crate::sandbox::{SandboxClient, SandboxProvider};
use crate::zigned::{ZignedClient, ZignedProvider, ZignedWebhook};
use crate::{VerifiedEvent, WebhookError};

/// One provider's webhook verification and payload mapping.
pub trait WebhookVerifier: Send + Sync {
    /// The `{provider}` segment of `POST /v1/callbacks/{provider}`.
    fn name(&self) -> &str;

    /// The header that carries the webhook's signature, as providers spell it (e.g.
    /// `Countersign-Signature`): the challenge of the callback route's 401 names it.
    fn signature_header(&self) -> &str;

    /// Authenticates the request from its headers and raw body, then maps the body. `now` is
    /// passed in so that timestamp tolerance is testable.
    fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<VerifiedEvent, WebhookError>;
}

/// What to build the providers from: each part present is one adapter (or one half of it)
/// registered. A function builds only what it uses (the callback function needs no OAuth
/// client, the dispatcher no webhook secret).
#[derive(Default)]
pub struct ProvidersSetup {
    /// The sandbox's webhook secrets, newest first; `None` when the sandbox is off (its
    /// callback route is then 404). Its outbound side, which sends nothing, is always there.
    pub sandbox_webhook_secrets: Option<Vec<Vec<u8>>>,
    pub zigned: ZignedSetup,
}

/// The webhook secrets of the built-in providers, newest first (several during rotation).
#[derive(Default)]
pub struct WebhookSecrets {
    /// `None`: the sandbox is off (its callback route is then 404).
    pub sandbox: Option<Vec<Vec<u8>>>,
    /// None: no Zigned callback route.
    pub zigned: Vec<Vec<u8>>,
}

/// Zigned's two halves; either may be absent.
#[derive(Default)]
pub struct ZignedSetup {
    /// Webhook secrets, newest first (several during rotation); none: no Zigned callback route.
    pub webhook_secrets: Vec<Vec<u8>>,
    /// The REST API and OAuth client; `None`: Zigned is not configured to send.
    pub client: Option<crate::zigned::ZignedConfig>,
}

/// The configured providers by name: webhook verifiers for `POST /v1/callbacks/{provider}`,
/// clients for what the dispatcher asks. Cheap to share.
#[derive(Default, Clone)]
pub struct Providers {
    verifiers: BTreeMap<String, Arc<dyn WebhookVerifier>>,
    clients: BTreeMap<String, Arc<dyn ProviderClient>>,
}

impl Providers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every built-in provider the setup configures: both halves, as [`register_webhooks`] and
    /// [`register_clients`] register them.
    ///
    /// [`register_webhooks`]: Self::register_webhooks
    /// [`register_clients`]: Self::register_clients
    pub fn from_setup(setup: ProvidersSetup) -> Result<Self, String> {
        let mut providers = Providers::new();
        providers.register_webhooks(WebhookSecrets {
            sandbox: setup.sandbox_webhook_secrets,
            zigned: setup.zigned.webhook_secrets,
        });
        providers.register_clients(setup.zigned.client)?;
        Ok(providers)
    }

    /// The built-in webhook verifiers the secrets configure: the one place one is registered. A
    /// function that only verifies calls this alone, and links no provider's HTTP client.
    pub fn register_webhooks(&mut self, secrets: WebhookSecrets) {
        if let Some(secrets) = secrets.sandbox {
            self.register_verifier(Arc::new(SandboxProvider::new(secrets)));
        }
        if !secrets.zigned.is_empty() {
            self.register_verifier(Arc::new(ZignedWebhook::new(secrets.zigned)));
        }
    }

    /// The built-in clients: the sandbox's (which sends nothing), and Zigned's when configured.
    /// The one place a client is registered.
    pub fn register_clients(
        &mut self,
        zigned: Option<crate::zigned::ZignedConfig>,
    ) -> Result<(), String> {
        self.register_client(Arc::new(SandboxClient::logging()));
        if let Some(config) = zigned {
            let client = ZignedClient::new(config).map_err(|error| error.to_string())?;
            self.register_client(Arc::new(ZignedProvider::new(client)));
        }
        Ok(())
    }

    /// Adds a verifier under its own name, replacing any verifier registered under that name.
    pub fn register_verifier(&mut self, verifier: Arc<dyn WebhookVerifier>) {
        self.verifiers.insert(verifier.name().to_owned(), verifier);
    }

    /// Adds a client under its own name, replacing any client registered under that name.
    pub fn register_client(&mut self, client: Arc<dyn ProviderClient>) {
        self.clients.insert(client.name().to_owned(), client);
    }

    pub fn verifier(&self, name: &str) -> Option<&dyn WebhookVerifier> {
        self.verifiers.get(name).map(|verifier| verifier.as_ref())
    }

    pub fn client(&self, name: &str) -> Option<Arc<dyn ProviderClient>> {
        self.clients.get(name).cloned()
    }

    /// Names with a webhook verifier, in order.
    pub fn verifier_names(&self) -> impl Iterator<Item = &str> {
        self.verifiers.keys().map(String::as_str)
    }

    /// Names with a client, in order.
    pub fn client_names(&self) -> impl Iterator<Item = &str> {
        self.clients.keys().map(String::as_str)
    }
}

// Verifiers and clients hold secrets: show only their names.
impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Providers")
            .field("webhooks", &self.verifier_names().collect::<Vec<_>>())
            .field("clients", &self.client_names().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PayloadProblem;

    /// Refuses everything, saying which instance it is.
    struct Fixed {
        name: &'static str,
        instance: &'static str,
    }

    impl WebhookVerifier for Fixed {
        fn name(&self) -> &str {
            self.name
        }

        fn signature_header(&self) -> &str {
            "Fixed-Signature"
        }

        fn verify(
            &self,
            _headers: &HeaderMap,
            _body: &[u8],
            _now: DateTime<Utc>,
        ) -> Result<VerifiedEvent, WebhookError> {
            Err(WebhookError::MalformedPayload(vec![
                PayloadProblem::of_body(self.instance),
            ]))
        }
    }

    #[test]
    fn looks_verifiers_up_by_name() {
        let mut registry = Providers::new();
        registry.register_verifier(Arc::new(Fixed {
            name: "sandbox",
            instance: "a",
        }));
        registry.register_verifier(Arc::new(Fixed {
            name: "other",
            instance: "b",
        }));

        let verifier = registry.verifier("sandbox").unwrap();
        assert_eq!(verifier.name(), "sandbox");
        assert!(registry.verifier("docusign").is_none());
        assert!(registry.verifier("Sandbox").is_none());
        assert_eq!(
            registry.verifier_names().collect::<Vec<_>>(),
            ["other", "sandbox"]
        );
        assert_eq!(
            format!("{registry:?}"),
            r#"Providers { webhooks: ["other", "sandbox"], clients: [] }"#
        );
    }

    #[test]
    fn registering_a_name_again_replaces_the_verifier() {
        let mut registry = Providers::new();
        registry.register_verifier(Arc::new(Fixed {
            name: "sandbox",
            instance: "first",
        }));
        registry.register_verifier(Arc::new(Fixed {
            name: "sandbox",
            instance: "second",
        }));
        assert_eq!(registry.verifier_names().count(), 1);
        let error = registry
            .verifier("sandbox")
            .unwrap()
            .verify(&HeaderMap::new(), b"", Utc::now())
            .unwrap_err();
        assert_eq!(
            error,
            WebhookError::MalformedPayload(vec![PayloadProblem::of_body("second")])
        );
    }

    #[test]
    fn the_setup_registers_what_it_configures_and_nothing_else() {
        let providers = Providers::from_setup(ProvidersSetup::default()).unwrap();
        assert_eq!(providers.verifier_names().count(), 0);
        assert_eq!(providers.client_names().collect::<Vec<_>>(), ["sandbox"]);

        let providers = Providers::from_setup(ProvidersSetup {
            sandbox_webhook_secrets: Some(vec![b"a-sandbox-secret-of-length".to_vec()]),
            zigned: ZignedSetup {
                webhook_secrets: vec![b"a-zigned-secret-of-length".to_vec()],
                client: Some(crate::zigned::ZignedConfig::new(
                    "client",
                    secrecy::SecretString::from("client-secret-value"),
                )),
            },
        })
        .unwrap();
        assert_eq!(
            providers.verifier_names().collect::<Vec<_>>(),
            ["sandbox", "zigned"]
        );
        assert_eq!(
            providers.client_names().collect::<Vec<_>>(),
            ["sandbox", "zigned"]
        );
        assert_eq!(
            providers.verifier("zigned").unwrap().signature_header(),
            "x-zigned-request-signature"
        );
        let shown = format!("{providers:?}");
        assert!(
            !shown.contains("secret-value") && !shown.contains("of-length"),
            "{shown}"
        );
    }
}
