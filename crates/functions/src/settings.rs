//! The functions' configuration, from their environment (set by template.yaml).

use countersign_api::service_hours::ServiceHours;
use countersign_domain::Rules;

/// Everything a function may read; each one requires only what it uses.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table_name: String,
    pub callback_queue_url: Option<String>,
    pub event_bus_name: Option<String>,
    /// SSM parameter (SecureString) holding the webhook secrets, comma-separated, newest first.
    pub webhook_secret_parameter: Option<String>,
    /// The JWT authorizer claim that names the caller's tenant.
    pub tenant_claim: String,
    pub service_hours: Option<ServiceHours>,
    pub rules: Rules,
    pub sandbox_enabled: bool,
    /// Agreements read per page of the expiry index.
    pub sweep_page_size: usize,
    /// The longest one sweep runs (it also stops before the invocation's deadline).
    pub sweep_budget: std::time::Duration,
    /// The documents bucket: signed documents are kept there (SPEC section 9).
    pub documents_bucket: Option<String>,
    pub zigned: ZignedSettings,
}

/// Where Zigned is and where its secrets are (names of SSM SecureString parameters; the values
/// are read at init by the functions that use them, never set in the template).
#[derive(Debug, Clone, Default)]
pub struct ZignedSettings {
    pub api_url: Option<String>,
    pub token_url: Option<String>,
    /// `{"client_id": "...", "client_secret": "..."}`; unset: Zigned is not configured to send.
    pub credentials_parameter: Option<String>,
    /// The webhook secrets, comma-separated, newest first; unset: no Zigned callback route.
    pub webhook_secret_parameter: Option<String>,
}

pub const TABLE_NAME: &str = "TABLE_NAME";
pub const CALLBACK_QUEUE_URL: &str = "CALLBACK_QUEUE_URL";
pub const EVENT_BUS_NAME: &str = "EVENT_BUS_NAME";
pub const WEBHOOK_SECRET_PARAMETER: &str = "WEBHOOK_SECRET_PARAMETER";
pub const TENANT_CLAIM: &str = "TENANT_CLAIM";
pub const SERVICE_HOURS: &str = "SERVICE_HOURS";
pub const DEFAULT_EXPIRY_DAYS: &str = "DEFAULT_EXPIRY_DAYS";
pub const IDENTITY_CHECK_ATTEMPTS: &str = "IDENTITY_CHECK_ATTEMPTS";
pub const SANDBOX_ENABLED: &str = "SANDBOX_ENABLED";
pub const SWEEP_PAGE_SIZE: &str = "SWEEP_PAGE_SIZE";
pub const SWEEP_MAX_SECONDS: &str = "SWEEP_MAX_SECONDS";
pub const DOCUMENTS_BUCKET: &str = "DOCUMENTS_BUCKET";
pub const TEST_MODE_PROVIDER: &str = "TEST_MODE_PROVIDER";
pub const ZIGNED_API_URL: &str = "ZIGNED_API_URL";
pub const ZIGNED_TOKEN_URL: &str = "ZIGNED_TOKEN_URL";
pub const ZIGNED_CREDENTIALS_PARAMETER: &str = "ZIGNED_CREDENTIALS_PARAMETER";
pub const ZIGNED_WEBHOOK_SECRET_PARAMETER: &str = "ZIGNED_WEBHOOK_SECRET_PARAMETER";

impl Settings {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        })
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let table_name = get(TABLE_NAME).ok_or_else(|| format!("{TABLE_NAME} is not set"))?;
        let service_hours = match get(SERVICE_HOURS) {
            None => None,
            Some(spec) => Some(
                spec.trim()
                    .parse::<ServiceHours>()
                    .map_err(|error| format!("{SERVICE_HOURS}: {error}"))?,
            ),
        };
        let defaults = Rules::default();
        let default_expires_in_days: u16 =
            parse_or(&get, DEFAULT_EXPIRY_DAYS, defaults.default_expires_in_days)?;
        if !(1..=365).contains(&default_expires_in_days) {
            return Err(format!("{DEFAULT_EXPIRY_DAYS}: 1 to 365"));
        }
        let identity_check_attempts: u32 = parse_or(
            &get,
            IDENTITY_CHECK_ATTEMPTS,
            defaults.identity_check_attempts,
        )?;
        if identity_check_attempts == 0 {
            return Err(format!("{IDENTITY_CHECK_ATTEMPTS}: at least 1"));
        }
        let sandbox_enabled = match get(SANDBOX_ENABLED).as_deref().map(str::trim) {
            None | Some("true" | "on" | "1") => true,
            Some("false" | "off" | "0") => false,
            Some(other) => {
                return Err(format!("{SANDBOX_ENABLED}: `{other}` is not true or false"))
            }
        };
        let sweep_page_size: usize = parse_or(&get, SWEEP_PAGE_SIZE, 100)?;
        if sweep_page_size == 0 {
            return Err(format!("{SWEEP_PAGE_SIZE}: at least 1"));
        }
        let sweep_max_seconds: u64 = parse_or(&get, SWEEP_MAX_SECONDS, 240)?;
        if sweep_max_seconds == 0 {
            return Err(format!("{SWEEP_MAX_SECONDS}: at least 1"));
        }
        let zigned = ZignedSettings {
            api_url: get(ZIGNED_API_URL),
            token_url: get(ZIGNED_TOKEN_URL),
            credentials_parameter: get(ZIGNED_CREDENTIALS_PARAMETER),
            webhook_secret_parameter: get(ZIGNED_WEBHOOK_SECRET_PARAMETER),
        };
        let test_mode_provider = match get(TEST_MODE_PROVIDER).as_deref().map(str::trim) {
            None | Some("sandbox") => countersign_provider::sandbox::PROVIDER_NAME,
            Some("zigned") if zigned.credentials_parameter.is_some() => {
                countersign_provider::zigned::PROVIDER_NAME
            }
            Some("zigned") => {
                return Err(format!(
                    "{TEST_MODE_PROVIDER}: `zigned` needs {ZIGNED_CREDENTIALS_PARAMETER}"
                ))
            }
            Some(other) => {
                return Err(format!(
                    "{TEST_MODE_PROVIDER}: `{other}` is not sandbox or zigned"
                ))
            }
        };
        Ok(Settings {
            table_name,
            callback_queue_url: get(CALLBACK_QUEUE_URL),
            event_bus_name: get(EVENT_BUS_NAME),
            webhook_secret_parameter: get(WEBHOOK_SECRET_PARAMETER),
            tenant_claim: get(TENANT_CLAIM).unwrap_or_else(|| "tenant".to_owned()),
            service_hours,
            rules: Rules {
                identity_check_attempts,
                default_expires_in_days,
                providers: countersign_domain::ProviderRouting {
                    test_mode: test_mode_provider.to_owned(),
                    live: countersign_provider::zigned::PROVIDER_NAME.to_owned(),
                },
            },
            sandbox_enabled,
            sweep_page_size,
            sweep_budget: std::time::Duration::from_secs(sweep_max_seconds),
            documents_bucket: get(DOCUMENTS_BUCKET),
            zigned,
        })
    }

    /// The providers this deployment can send through: the sandbox, and Zigned once its
    /// credentials are configured (read by the dispatcher, not here).
    pub fn sending_providers(&self) -> Vec<&'static str> {
        let mut names = vec![countersign_provider::sandbox::PROVIDER_NAME];
        if self.zigned.credentials_parameter.is_some() {
            names.push(countersign_provider::zigned::PROVIDER_NAME);
        }
        names
    }

    pub fn require<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, String> {
        value.as_deref().ok_or_else(|| format!("{name} is not set"))
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

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_table_is_required_and_the_rest_has_defaults() {
        assert_eq!(settings(&[]).unwrap_err(), "TABLE_NAME is not set");
        let settings = settings(&[(TABLE_NAME, "t")]).unwrap();
        assert_eq!(settings.rules, Rules::default());
        assert_eq!(settings.tenant_claim, "tenant");
        assert!(settings.sandbox_enabled);
        assert!(settings.service_hours.is_none());
        assert_eq!(
            Settings::require(&settings.callback_queue_url, CALLBACK_QUEUE_URL).unwrap_err(),
            "CALLBACK_QUEUE_URL is not set"
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            (SERVICE_HOURS, "sometimes"),
            (DEFAULT_EXPIRY_DAYS, "0"),
            (IDENTITY_CHECK_ATTEMPTS, "x"),
            (SANDBOX_ENABLED, "maybe"),
            (SWEEP_PAGE_SIZE, "0"),
            (SWEEP_MAX_SECONDS, "0"),
            (TEST_MODE_PROVIDER, "zigned"),
            (TEST_MODE_PROVIDER, "docusign"),
        ] {
            let error = settings(&[(TABLE_NAME, "t"), (name, value)]).unwrap_err();
            assert!(error.starts_with(name), "{name}: {error}");
        }
    }

    #[test]
    fn values_are_read() {
        let settings = settings(&[
            (TABLE_NAME, "t"),
            (SERVICE_HOURS, "07:30-22:00@Europe/Paris"),
            (DEFAULT_EXPIRY_DAYS, "30"),
            (IDENTITY_CHECK_ATTEMPTS, "5"),
            (SANDBOX_ENABLED, "false"),
            (TENANT_CLAIM, "custom:tenant"),
        ])
        .unwrap();
        assert!(settings.service_hours.is_some());
        assert_eq!(settings.rules.default_expires_in_days, 30);
        assert_eq!(settings.rules.identity_check_attempts, 5);
        assert!(!settings.sandbox_enabled);
        assert_eq!(settings.tenant_claim, "custom:tenant");
    }
}
