//! The AWS clients' HTTP client: the SDK's own (hyper 1, rustls on aws-lc-rs), built on the first
//! request instead of at init, and trusting the Mozilla roots compiled into the package
//! (`webpki-root-certs`) instead of the system's. The SDK's default client builds its TLS
//! connector when each service client is made, reading every file of `/etc/ssl/certs`: most of a
//! function's init, for clients that may not even be used in that invocation.

use std::sync::OnceLock;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode, TlsContext, TrustStore};
use aws_smithy_http_client::Builder;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use base64::Engine;

/// Hand it to `SdkConfig::builder().http_client(..)`: every client made from that configuration
/// shares it (one connection pool, one set of roots).
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(OnFirstRequest::default())
}

/// The SDK's HTTPS client, made when the first request needs a connector. It does not forward
/// `validate_base_client_config`, where the SDK's client builds its connector ahead of time.
#[derive(Debug, Default)]
struct OnFirstRequest {
    client: OnceLock<SharedHttpClient>,
}

impl OnFirstRequest {
    fn client(&self) -> &SharedHttpClient {
        self.client.get_or_init(|| {
            Builder::new()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(compiled_in_roots())
                .build_https()
        })
    }
}

impl HttpClient for OnFirstRequest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.client().http_connector(settings, components)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.client().connector_metadata()
    }
}

/// The Mozilla roots, in the trust store the SDK takes; the system's are not read.
fn compiled_in_roots() -> TlsContext {
    TlsContext::builder()
        .with_trust_store(
            TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(roots_pem().into_bytes()),
        )
        .build()
        // Only an invalid extra server name fails to build; none is given.
        .unwrap_or_default()
}

/// The compiled-in roots as PEM, the only form the SDK's trust store takes.
fn roots_pem() -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = engine.encode(certificate.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            // Base64 is ASCII: every chunk is a str.
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    use super::*;

    #[test]
    fn the_pem_holds_every_compiled_in_root_exactly() {
        let pem = roots_pem();
        let parsed: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(parsed, webpki_root_certs::TLS_SERVER_ROOT_CERTS);
        assert!(parsed.len() > 100, "{} roots", parsed.len());
        // Every root is one a rustls trust store takes.
        let mut store = rustls::RootCertStore::empty();
        let (added, refused) = store.add_parsable_certificates(parsed);
        assert_eq!(
            (added, refused),
            (webpki_root_certs::TLS_SERVER_ROOT_CERTS.len(), 0)
        );
    }
}
