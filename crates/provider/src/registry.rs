//! The providers the callback route knows, by the name in its path.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use http::HeaderMap;

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

/// Verifiers by name.
#[derive(Default)]
pub struct ProviderRegistry {
    verifiers: BTreeMap<String, Box<dyn WebhookVerifier>>,
}

impl ProviderRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a verifier under its own name, replacing any verifier registered under that name.
    pub fn register(&mut self, verifier: Box<dyn WebhookVerifier>) {
        self.verifiers.insert(verifier.name().to_owned(), verifier);
    }

    pub fn get(&self, name: &str) -> Option<&dyn WebhookVerifier> {
        self.verifiers.get(name).map(|verifier| verifier.as_ref())
    }

    /// Registered names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.verifiers.keys().map(String::as_str)
    }
}

// Verifiers hold secrets: show only their names.
impl fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("providers", &self.names().collect::<Vec<_>>())
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
        let mut registry = ProviderRegistry::new();
        registry.register(Box::new(Fixed {
            name: "sandbox",
            instance: "a",
        }));
        registry.register(Box::new(Fixed {
            name: "other",
            instance: "b",
        }));

        let verifier = registry.get("sandbox").unwrap();
        assert_eq!(verifier.name(), "sandbox");
        assert!(registry.get("docusign").is_none());
        assert!(registry.get("Sandbox").is_none());
        assert_eq!(registry.names().collect::<Vec<_>>(), ["other", "sandbox"]);
        assert_eq!(
            format!("{registry:?}"),
            r#"ProviderRegistry { providers: ["other", "sandbox"] }"#
        );
    }

    #[test]
    fn registering_a_name_again_replaces_the_verifier() {
        let mut registry = ProviderRegistry::new();
        registry.register(Box::new(Fixed {
            name: "sandbox",
            instance: "first",
        }));
        registry.register(Box::new(Fixed {
            name: "sandbox",
            instance: "second",
        }));
        assert_eq!(registry.names().count(), 1);
        let error = registry
            .get("sandbox")
            .unwrap()
            .verify(&HeaderMap::new(), b"", Utc::now())
            .unwrap_err();
        assert_eq!(
            error,
            WebhookError::MalformedPayload(vec![PayloadProblem::of_body("second")])
        );
    }
}
