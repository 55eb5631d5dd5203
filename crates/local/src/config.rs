//! `countersign-local` configuration, from environment variables with development defaults.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use countersign_api::auth::ApiKeys;
use countersign_api::service_hours::ServiceHours;
use countersign_domain::{ProviderRouting, Rules};
use countersign_provider::zigned::{ZignedConfig, DEFAULT_API_URL, DEFAULT_TOKEN_URL};
use secrecy::SecretString;
use std::path::PathBuf;

/// The documented development default: `Authorization: Bearer dev-key` is tenant `dev-tenant`.
pub const DEFAULT_API_KEYS: &str = "dev-key=dev-tenant";
/// The sandbox provider's development secret; set your own with COUNTERSIGN_WEBHOOK_SECRETS.
pub const DEFAULT_WEBHOOK_SECRET: &str = countersign_provider::sandbox::DEVELOPMENT_SECRET;

pub struct LocalConfig {
    pub addr: SocketAddr,
    pub api_keys: ApiKeys,
    pub api_keys_are_default: bool,
    /// The first one signs sandbox callbacks; all verify (rotation).
    pub webhook_secrets: Vec<Vec<u8>>,
    pub sandbox_enabled: bool,
    pub service_hours: Option<ServiceHours>,
    pub rules: Rules,
    pub sweep_interval: Duration,
    pub callback_max_receives: u32,
    pub event_bus: String,
    pub store: StoreChoice,
    /// Where `file://` documents are read from and signed documents are kept.
    pub documents_dir: PathBuf,
    pub zigned: ZignedSettings,
}

/// Zigned, when configured (SPEC section 9): the client when both credentials are set, the
/// callback route when webhook secrets are.
pub struct ZignedSettings {
    pub client: Option<ZignedConfig>,
    pub webhook_secrets: Vec<Vec<u8>>,
}

/// Where `countersign-local` keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded store: nothing to set up, gone when the process stops.
    Memory,
    /// A DynamoDB table, at the SDK's endpoint (`AWS_ENDPOINT_URL` for moto or DynamoDB Local).
    DynamoDb { table: String, create_table: bool },
}

/// One line per variable, shown by `--help` and in the README.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    ("COUNTERSIGN_HOST", "127.0.0.1", "address to listen on"),
    (
        "COUNTERSIGN_PORT",
        "8080",
        "port to listen on (0: any free port)",
    ),
    (
        "COUNTERSIGN_API_KEYS",
        DEFAULT_API_KEYS,
        "API keys and their tenants, `key=tenant,key=tenant` (default on loopback only)",
    ),
    (
        "COUNTERSIGN_WEBHOOK_SECRETS",
        DEFAULT_WEBHOOK_SECRET,
        "sandbox webhook secrets, comma-separated; the first signs (default on loopback only)",
    ),
    (
        "COUNTERSIGN_SANDBOX",
        "on",
        "sandbox routes and POST /v1/callbacks/sandbox: on or off",
    ),
    (
        "SERVICE_HOURS",
        "(unset: always open)",
        "consumer API hours, e.g. 07:30-22:00@Europe/Paris",
    ),
    (
        "COUNTERSIGN_DEFAULT_EXPIRY_DAYS",
        "120",
        "expires_in_days when an agreement sets none (1 to 365)",
    ),
    (
        "COUNTERSIGN_IDENTITY_CHECK_ATTEMPTS",
        "3",
        "failed identity checks before IDENTITY_CHECK_FAILED",
    ),
    (
        "COUNTERSIGN_SWEEP_INTERVAL_SECS",
        "60",
        "seconds between expiry sweeps",
    ),
    (
        "COUNTERSIGN_CALLBACK_MAX_RECEIVES",
        "5",
        "attempts at a provider event before it is set aside as dead-lettered",
    ),
    (
        "COUNTERSIGN_EVENT_BUS",
        "countersign",
        "bus name printed with each event",
    ),
    (
        "COUNTERSIGN_DOCUMENTS_DIR",
        "countersign-documents",
        "folder of the file:// documents sent to providers; signed documents are kept in its `signed/`",
    ),
    (
        "COUNTERSIGN_TEST_MODE_PROVIDER",
        "sandbox",
        "provider of test_mode agreements: sandbox, or zigned (Zigned's test client)",
    ),
    (
        "COUNTERSIGN_ZIGNED_API_URL",
        DEFAULT_API_URL,
        "Zigned's REST API v3",
    ),
    (
        "COUNTERSIGN_ZIGNED_TOKEN_URL",
        DEFAULT_TOKEN_URL,
        "Zigned's OAuth 2.0 token endpoint",
    ),
    (
        "COUNTERSIGN_ZIGNED_CLIENT_ID",
        "(unset: Zigned not configured)",
        "Zigned OAuth client id (with the secret: live agreements are sent to Zigned)",
    ),
    (
        "COUNTERSIGN_ZIGNED_CLIENT_SECRET",
        "(unset: Zigned not configured)",
        "Zigned OAuth client secret; never logged",
    ),
    (
        "COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS",
        "(unset: no Zigned callbacks)",
        "Zigned webhook secrets, comma-separated, newest first (rotation)",
    ),
];

fn secrets_list(value: &str) -> Vec<Vec<u8>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .map(|secret| secret.as_bytes().to_vec())
        .collect()
}

fn zigned_settings(
    get: &impl Fn(&str) -> Option<String>,
    loopback: bool,
) -> Result<ZignedSettings, String> {
    let set = |name: &str| get(name).filter(|value| !value.trim().is_empty());
    let client = match (
        set("COUNTERSIGN_ZIGNED_CLIENT_ID"),
        set("COUNTERSIGN_ZIGNED_CLIENT_SECRET"),
    ) {
        (None, None) => None,
        (Some(id), Some(secret)) => Some(
            ZignedConfig::new(id.trim(), SecretString::from(secret.trim().to_owned())).with_urls(
                set("COUNTERSIGN_ZIGNED_API_URL").unwrap_or_else(|| DEFAULT_API_URL.to_owned()),
                set("COUNTERSIGN_ZIGNED_TOKEN_URL").unwrap_or_else(|| DEFAULT_TOKEN_URL.to_owned()),
            ),
        ),
        (Some(_), None) => {
            return Err(
                "COUNTERSIGN_ZIGNED_CLIENT_ID: set without COUNTERSIGN_ZIGNED_CLIENT_SECRET"
                    .to_owned(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "COUNTERSIGN_ZIGNED_CLIENT_SECRET: set without COUNTERSIGN_ZIGNED_CLIENT_ID"
                    .to_owned(),
            )
        }
    };
    let webhook_secrets = set("COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS")
        .map(|value| secrets_list(&value))
        .unwrap_or_default();
    if !loopback && !webhook_secrets.is_empty() {
        countersign_provider::sandbox::check_deployment_secrets(&webhook_secrets)
            .map_err(|error| format!("COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS: {error}"))?;
    }
    Ok(ZignedSettings {
        client,
        webhook_secrets,
    })
}

impl LocalConfig {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let host: IpAddr = parse_or(&get, "COUNTERSIGN_HOST", IpAddr::V4(Ipv4Addr::LOCALHOST))?;
        let port: u16 = parse_or(&get, "COUNTERSIGN_PORT", 8080)?;
        let keys_spec = get("COUNTERSIGN_API_KEYS");
        let api_keys_are_default = keys_spec.is_none();
        let api_keys = ApiKeys::parse(keys_spec.as_deref().unwrap_or(DEFAULT_API_KEYS))
            .map_err(|error| format!("COUNTERSIGN_API_KEYS: {error}"))?;
        let webhook_secrets = secrets_list(
            &get("COUNTERSIGN_WEBHOOK_SECRETS")
                .unwrap_or_else(|| DEFAULT_WEBHOOK_SECRET.to_owned()),
        );
        if webhook_secrets.is_empty() {
            return Err("COUNTERSIGN_WEBHOOK_SECRETS: at least one secret".to_owned());
        }
        // Listening beyond this machine, the published development credentials would let anyone
        // in: they are for loopback only.
        if !host.is_loopback() {
            if api_keys_are_default {
                return Err(format!(
                    "COUNTERSIGN_API_KEYS: set API keys of your own to listen on {host} (the development key is for 127.0.0.1 only)"
                ));
            }
            countersign_provider::sandbox::check_deployment_secrets(&webhook_secrets).map_err(
                |error| format!("COUNTERSIGN_WEBHOOK_SECRETS: {error} to listen on {host}"),
            )?;
        }
        let sandbox_enabled = match get("COUNTERSIGN_SANDBOX").as_deref().map(str::trim) {
            None | Some("on" | "true" | "1") => true,
            Some("off" | "false" | "0") => false,
            Some(other) => return Err(format!("COUNTERSIGN_SANDBOX: `{other}` is not on or off")),
        };
        let service_hours = match get("SERVICE_HOURS").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(spec) => Some(
                spec.trim()
                    .parse::<ServiceHours>()
                    .map_err(|error| format!("SERVICE_HOURS: {error}"))?,
            ),
        };
        let default_expires_in_days: u16 = parse_or(&get, "COUNTERSIGN_DEFAULT_EXPIRY_DAYS", 120)?;
        if !(1..=365).contains(&default_expires_in_days) {
            return Err("COUNTERSIGN_DEFAULT_EXPIRY_DAYS: 1 to 365".to_owned());
        }
        let identity_check_attempts: u32 =
            parse_or(&get, "COUNTERSIGN_IDENTITY_CHECK_ATTEMPTS", 3)?;
        if identity_check_attempts == 0 {
            return Err("COUNTERSIGN_IDENTITY_CHECK_ATTEMPTS: at least 1".to_owned());
        }
        let sweep_secs: f64 = parse_or(&get, "COUNTERSIGN_SWEEP_INTERVAL_SECS", 60.0)?;
        if !(sweep_secs > 0.0 && sweep_secs <= 86_400.0) {
            return Err("COUNTERSIGN_SWEEP_INTERVAL_SECS: more than 0, at most 86400".to_owned());
        }
        let callback_max_receives: u32 = parse_or(&get, "COUNTERSIGN_CALLBACK_MAX_RECEIVES", 5)?;
        if callback_max_receives == 0 {
            return Err("COUNTERSIGN_CALLBACK_MAX_RECEIVES: at least 1".to_owned());
        }
        let zigned = zigned_settings(&get, host.is_loopback())?;
        let test_mode_provider = match get("COUNTERSIGN_TEST_MODE_PROVIDER").as_deref().map(str::trim) {
            None | Some("" | "sandbox") => countersign_provider::sandbox::PROVIDER_NAME,
            Some("zigned") if zigned.client.is_some() => countersign_provider::zigned::PROVIDER_NAME,
            Some("zigned") => {
                return Err("COUNTERSIGN_TEST_MODE_PROVIDER: `zigned` needs COUNTERSIGN_ZIGNED_CLIENT_ID and COUNTERSIGN_ZIGNED_CLIENT_SECRET (Zigned's test client)".to_owned())
            }
            Some(other) => {
                return Err(format!(
                    "COUNTERSIGN_TEST_MODE_PROVIDER: `{other}` is not sandbox or zigned"
                ))
            }
        };
        let documents_dir = PathBuf::from(
            get("COUNTERSIGN_DOCUMENTS_DIR")
                .filter(|dir| !dir.trim().is_empty())
                .unwrap_or_else(|| "countersign-documents".to_owned()),
        );
        Ok(LocalConfig {
            addr: SocketAddr::new(host, port),
            api_keys,
            api_keys_are_default,
            webhook_secrets,
            sandbox_enabled,
            service_hours,
            rules: Rules {
                identity_check_attempts,
                default_expires_in_days,
                providers: ProviderRouting {
                    test_mode: test_mode_provider.to_owned(),
                    live: countersign_provider::zigned::PROVIDER_NAME.to_owned(),
                },
            },
            sweep_interval: Duration::from_secs_f64(sweep_secs),
            callback_max_receives,
            event_bus: get("COUNTERSIGN_EVENT_BUS").unwrap_or_else(|| "countersign".to_owned()),
            store: store_choice(&get)?,
            documents_dir,
            zigned,
        })
    }
}

fn store_choice(get: &impl Fn(&str) -> Option<String>) -> Result<StoreChoice, String> {
    match get("COUNTERSIGN_STORE").as_deref().map(str::trim) {
        None | Some("memory") => Ok(StoreChoice::Memory),
        Some("dynamodb") => {
            let table =
                get("COUNTERSIGN_DYNAMODB_TABLE").unwrap_or_else(|| "countersign".to_owned());
            if table.trim().is_empty() {
                return Err("COUNTERSIGN_DYNAMODB_TABLE: a table name".to_owned());
            }
            let create_table = match get("COUNTERSIGN_DYNAMODB_CREATE_TABLE")
                .as_deref()
                .map(str::trim)
            {
                None | Some("false" | "0" | "off") => false,
                Some("true" | "1" | "on") => true,
                Some(other) => {
                    return Err(format!(
                        "COUNTERSIGN_DYNAMODB_CREATE_TABLE: `{other}` is not true or false"
                    ))
                }
            };
            Ok(StoreChoice::DynamoDb {
                table,
                create_table,
            })
        }
        Some(other) => Err(format!(
            "COUNTERSIGN_STORE: `{other}` is not memory or dynamodb"
        )),
    }
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match get(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name}: `{value}` is not valid")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<LocalConfig, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LocalConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = config(&[]).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:8080");
        assert!(config.api_keys_are_default);
        assert_eq!(
            config.api_keys.tenants().collect::<Vec<_>>(),
            vec![("dev-key", "dev-tenant")]
        );
        assert!(config.sandbox_enabled);
        assert!(config.service_hours.is_none());
        assert_eq!(config.rules, Rules::default());
        assert_eq!(config.sweep_interval, Duration::from_secs(60));
        assert_eq!(config.store, StoreChoice::Memory);
    }

    #[test]
    fn dynamodb_is_chosen_with_its_table() {
        let config = config(&[
            ("COUNTERSIGN_STORE", "dynamodb"),
            ("COUNTERSIGN_DYNAMODB_TABLE", "agreements"),
            ("COUNTERSIGN_DYNAMODB_CREATE_TABLE", "true"),
        ])
        .unwrap();
        assert_eq!(
            config.store,
            StoreChoice::DynamoDb {
                table: "agreements".into(),
                create_table: true
            }
        );
        let error = self::config(&[
            ("COUNTERSIGN_STORE", "dynamodb"),
            ("COUNTERSIGN_DYNAMODB_CREATE_TABLE", "maybe"),
        ])
        .err()
        .unwrap_or_default();
        assert!(
            error.starts_with("COUNTERSIGN_DYNAMODB_CREATE_TABLE"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        for (name, value) in [
            ("COUNTERSIGN_PORT", "eighty"),
            ("COUNTERSIGN_API_KEYS", "nokey"),
            ("COUNTERSIGN_SANDBOX", "maybe"),
            ("SERVICE_HOURS", "always"),
            ("COUNTERSIGN_DEFAULT_EXPIRY_DAYS", "400"),
            ("COUNTERSIGN_SWEEP_INTERVAL_SECS", "0"),
            ("COUNTERSIGN_IDENTITY_CHECK_ATTEMPTS", "0"),
            ("COUNTERSIGN_CALLBACK_MAX_RECEIVES", "0"),
            ("COUNTERSIGN_CALLBACK_MAX_RECEIVES", ""),
            ("COUNTERSIGN_STORE", "postgres"),
            ("COUNTERSIGN_TEST_MODE_PROVIDER", "docusign"),
            ("COUNTERSIGN_TEST_MODE_PROVIDER", "zigned"),
            ("COUNTERSIGN_ZIGNED_CLIENT_ID", "only-the-id"),
            ("COUNTERSIGN_ZIGNED_CLIENT_SECRET", "only-the-secret"),
        ] {
            let error = config(&[(name, value)]).err().unwrap_or_default();
            assert!(error.starts_with(name), "{name}={value}: {error}");
        }
    }

    #[test]
    fn settings_are_read() {
        let config = config(&[
            ("COUNTERSIGN_PORT", "0"),
            ("COUNTERSIGN_API_KEYS", "a=t1, b=t2"),
            ("COUNTERSIGN_SANDBOX", "off"),
            ("SERVICE_HOURS", "07:30-22:00@Europe/Paris"),
            ("COUNTERSIGN_WEBHOOK_SECRETS", "new,old"),
            ("COUNTERSIGN_SWEEP_INTERVAL_SECS", "0.5"),
        ])
        .unwrap();
        assert_eq!(config.addr.port(), 0);
        assert_eq!(config.api_keys.tenants().count(), 2);
        assert!(!config.sandbox_enabled);
        assert!(config.service_hours.is_some());
        assert_eq!(
            config.webhook_secrets,
            vec![b"new".to_vec(), b"old".to_vec()]
        );
        assert_eq!(config.sweep_interval, Duration::from_millis(500));
    }

    #[test]
    fn zigned_is_configured_by_its_credentials_and_never_shows_the_secret() {
        let config = config(&[]).unwrap();
        assert!(config.zigned.client.is_none() && config.zigned.webhook_secrets.is_empty());
        let config = self::config(&[
            ("COUNTERSIGN_ZIGNED_CLIENT_ID", "client-1"),
            ("COUNTERSIGN_ZIGNED_CLIENT_SECRET", "oauth-secret-value"),
            ("COUNTERSIGN_ZIGNED_API_URL", "http://127.0.0.1:4010"),
            (
                "COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS",
                "new-secret, old-secret",
            ),
            ("COUNTERSIGN_TEST_MODE_PROVIDER", "zigned"),
            ("COUNTERSIGN_DOCUMENTS_DIR", "/srv/documents"),
        ])
        .unwrap();
        let client = config.zigned.client.as_ref().unwrap();
        assert_eq!(client.api_url, "http://127.0.0.1:4010");
        assert_eq!(client.token_url, DEFAULT_TOKEN_URL);
        assert!(!format!("{client:?}").contains("oauth-secret-value"));
        assert_eq!(
            config.zigned.webhook_secrets,
            vec![b"new-secret".to_vec(), b"old-secret".to_vec()]
        );
        assert_eq!(config.rules.providers.test_mode, "zigned");
        assert_eq!(config.rules.providers.live, "zigned");
        assert_eq!(config.documents_dir, PathBuf::from("/srv/documents"));
    }

    #[test]
    fn beyond_loopback_the_development_credentials_are_refused() {
        let error = config(&[("COUNTERSIGN_HOST", "0.0.0.0")])
            .err()
            .unwrap_or_default();
        assert!(error.starts_with("COUNTERSIGN_API_KEYS"), "{error}");
        let keys = ("COUNTERSIGN_API_KEYS", "key-of-a-deployment=t1");
        let error = config(&[("COUNTERSIGN_HOST", "0.0.0.0"), keys])
            .err()
            .unwrap_or_default();
        assert!(error.starts_with("COUNTERSIGN_WEBHOOK_SECRETS"), "{error}");
        let error = config(&[
            ("COUNTERSIGN_HOST", "192.0.2.10"),
            keys,
            (
                "COUNTERSIGN_WEBHOOK_SECRETS",
                "a-long-enough-secret,sandbox-dev-secret",
            ),
        ])
        .err()
        .unwrap_or_default();
        assert!(
            error.contains("secret 2 is the published development secret"),
            "{error}"
        );
        let fine = config(&[
            ("COUNTERSIGN_HOST", "::"),
            keys,
            ("COUNTERSIGN_WEBHOOK_SECRETS", "a-long-enough-secret"),
        ])
        .unwrap();
        assert!(!fine.addr.ip().is_loopback());
        // On loopback the defaults stay: a developer's machine needs no setup.
        assert!(config(&[("COUNTERSIGN_HOST", "::1")]).is_ok());
    }
}

#[cfg(test)]
mod readme {
    use super::VARIABLES;

    /// The README's configuration table and `--help` come from the same list: every variable
    /// appears in a README table row that gives its default.
    #[test]
    fn every_variable_is_documented_in_the_readme() {
        let readme = include_str!("../../../README.md");
        for (name, default, _) in VARIABLES {
            let row = readme
                .lines()
                .find(|line| line.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("README.md has no configuration row for {name}"));
            let default = default
                .trim_start_matches('(')
                .split(':')
                .next()
                .unwrap_or(default);
            assert!(
                row.contains(default),
                "README row for {name} lacks its default `{default}`: {row}"
            );
        }
    }
}
