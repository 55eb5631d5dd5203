//! Who is calling: the tenant of the request. On AWS a claim of the API Gateway JWT authorizer;
//! locally a bearer API key mapped to a tenant by configuration.

use std::collections::HashMap;

use http::header::AUTHORIZATION;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use subtle::ConstantTimeEq;

pub trait Authenticator: Send + Sync {
    /// The caller's tenant, or `None` when the request carries no valid credentials.
    fn tenant(&self, request: &Request) -> Option<String>;
}

/// `Authorization: Bearer <api key>`, keys mapped to tenants.
pub struct ApiKeys {
    keys: Vec<(String, String)>,
}

impl ApiKeys {
    pub fn new(keys: HashMap<String, String>) -> Self {
        ApiKeys {
            keys: keys.into_iter().collect(),
        }
    }

    /// `key=tenant,key=tenant`; an entry without `=` or with an empty side is refused.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.split_once('=') {
                Some((key, tenant)) if !key.trim().is_empty() && !tenant.trim().is_empty() => {
                    keys.insert(key.trim().to_owned(), tenant.trim().to_owned());
                }
                _ => return Err(format!("`{entry}` is not `api_key=tenant`")),
            }
        }
        if keys.is_empty() {
            return Err("no API key configured".to_owned());
        }
        Ok(ApiKeys::new(keys))
    }

    pub fn tenants(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keys.iter().map(|(k, t)| (k.as_str(), t.as_str()))
    }
}

impl Authenticator for ApiKeys {
    fn tenant(&self, request: &Request) -> Option<String> {
        let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
        let presented = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))?
            .trim();
        // Compare against every key in constant time so timing tells nothing about the keys.
        let mut found = None;
        for (key, tenant) in &self.keys {
            if bool::from(key.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(tenant.clone());
            }
        }
        found
    }
}

/// The tenant from a claim of the API Gateway (HTTP API) JWT authorizer, which has already
/// verified the token.
pub struct JwtClaim {
    pub claim: String,
}

impl Authenticator for JwtClaim {
    fn tenant(&self, request: &Request) -> Option<String> {
        match request.request_context_ref()? {
            RequestContext::ApiGatewayV2(context) => context
                .authorizer
                .as_ref()?
                .jwt
                .as_ref()?
                .claims
                .get(&self.claim)
                .filter(|tenant| !tenant.is_empty())
                .cloned(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}
