//! Who is calling: the tenant of the request. On AWS a claim of the API Gateway JWT authorizer;
//! locally a bearer API key mapped to a tenant by configuration.

use std::collections::HashMap;

use http::header::AUTHORIZATION;
use http::request::Parts;
use http::StatusCode;
use lambda_http::request::RequestContext;
use subtle::ConstantTimeEq;

use crate::response::ApiError;

/// The realm of the consumer API's `WWW-Authenticate: Bearer` challenge.
pub const REALM: &str = "countersign";

/// Why a request has no tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// No credentials at all: 401.
    Missing,
    /// Credentials that are not accepted (unknown key, other scheme, no tenant claim): 401.
    Invalid,
    /// More than one `Authorization` header: 400, since which one counts is anybody's guess and
    /// "the first one wins" lets a proxy and this service disagree on who is calling.
    Ambiguous,
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            // RFC 6750 section 3.1: no error code when the request carried no credentials.
            Rejection::Missing => ApiError::unauthorized("credentials are required")
                .with_challenge(format!("Bearer realm=\"{REALM}\"")),
            Rejection::Invalid => ApiError::unauthorized("the credentials are not valid")
                .with_challenge(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")),
            Rejection::Ambiguous => ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "send exactly one Authorization header",
            ),
        }
    }
}

pub trait Authenticator: Send + Sync {
    /// The caller's tenant, or why there is none, from the request's head.
    fn tenant(&self, request: &Parts) -> Result<String, Rejection>;
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
        let entries = spec.split(',').map(str::trim).filter(|e| !e.is_empty());
        for (number, entry) in entries.enumerate() {
            match entry.split_once('=') {
                Some((key, tenant)) if !key.trim().is_empty() && !tenant.trim().is_empty() => {
                    keys.insert(key.trim().to_owned(), tenant.trim().to_owned());
                }
                // The entry may be a key: it is not repeated in the error.
                _ => return Err(format!("entry {} is not `api_key=tenant`", number + 1)),
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

/// The token of `Bearer <token>` (RFC 6750 section 2.1; the scheme is case-insensitive, RFC 9110
/// section 11.1). Spaces around the token are tolerated; a token with spaces inside is not one.
fn bearer_token(credentials: &str) -> Option<&str> {
    let (scheme, token) = credentials.split_once(' ')?;
    let token = token.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
        .then_some(token)
}

impl Authenticator for ApiKeys {
    fn tenant(&self, request: &Parts) -> Result<String, Rejection> {
        let mut headers = request.headers.get_all(AUTHORIZATION).iter();
        let header = headers.next().ok_or(Rejection::Missing)?;
        if headers.next().is_some() {
            return Err(Rejection::Ambiguous);
        }
        let credentials = header.to_str().map_err(|_| Rejection::Invalid)?;
        let presented = bearer_token(credentials).ok_or(Rejection::Invalid)?;
        // Compare against every key in constant time so timing tells nothing about the keys.
        let mut found = None;
        for (key, tenant) in &self.keys {
            if bool::from(key.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(tenant.clone());
            }
        }
        found.ok_or(Rejection::Invalid)
    }
}

/// The tenant from a claim of the API Gateway (HTTP API) JWT authorizer, which has already
/// verified the token (and refused requests without one before they reach the function).
pub struct JwtClaim {
    pub claim: String,
}

impl Authenticator for JwtClaim {
    fn tenant(&self, request: &Parts) -> Result<String, Rejection> {
        // lambda_http puts API Gateway's request context, authorizer and all, in the extensions.
        match request.extensions.get::<RequestContext>() {
            Some(RequestContext::ApiGatewayV2(context)) => {
                let jwt = context
                    .authorizer
                    .as_ref()
                    .and_then(|authorizer| authorizer.jwt.as_ref())
                    .ok_or(Rejection::Missing)?;
                jwt.claims
                    .get(&self.claim)
                    .filter(|tenant| !tenant.is_empty())
                    .cloned()
                    .ok_or(Rejection::Invalid)
            }
            #[allow(unreachable_patterns)]
            _ => Err(Rejection::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use lambda_http::aws_lambda_events::apigw::{
        ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
        ApiGatewayV2httpRequestContext,
    };
    use lambda_http::request::RequestContext;

    use super::*;

    fn with_claims(claims: Option<&[(&str, &str)]>) -> Parts {
        let mut context = ApiGatewayV2httpRequestContext::default();
        if let Some(claims) = claims {
            let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
            jwt.claims = claims
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>();
            let mut authorizer = ApiGatewayRequestAuthorizer::default();
            authorizer.jwt = Some(jwt);
            context.authorizer = Some(authorizer);
        }
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts
            .extensions
            .insert(RequestContext::ApiGatewayV2(context));
        parts
    }

    #[test]
    fn the_jwt_claim_names_the_tenant() {
        let auth = JwtClaim {
            claim: "tenant".to_owned(),
        };
        assert_eq!(
            auth.tenant(&with_claims(Some(&[("tenant", "acme"), ("sub", "u1")]))),
            Ok("acme".to_owned())
        );
        assert_eq!(
            auth.tenant(&with_claims(Some(&[("sub", "u1")]))),
            Err(Rejection::Invalid)
        );
        assert_eq!(
            auth.tenant(&with_claims(Some(&[("tenant", "")]))),
            Err(Rejection::Invalid)
        );
        assert_eq!(auth.tenant(&with_claims(None)), Err(Rejection::Missing));
        assert_eq!(
            auth.tenant(&http::Request::new(()).into_parts().0),
            Err(Rejection::Missing)
        );
    }

    #[test]
    fn bearer_tokens_are_read_by_the_rfc_grammar() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc  "), Some("abc"));
        for refused in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearerabc",
            "Basic abc",
            "abc",
        ] {
            assert_eq!(bearer_token(refused), None, "{refused:?}");
        }
    }
}
