//! `countersign-local` configuration: one [`Args`] definition (clap, each setting a flag and an
//! environment variable) from which `--help`, the README's table ([`markdown_table`]) and the
//! parsing all come.
//!
//! One rule for every value: an environment variable that is set but blank counts as unset (so
//! `FOO=` in a shell or a compose file means "the default"); anything else that does not parse,
//! or is out of range, stops the process at start with the variable named; nothing is clamped.
//! Secrets are [`SecretString`]s from the moment they are read, hidden from `--help` and from
//! error messages.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use secrecy::{ExposeSecret, SecretString};

use countersign_api::auth::ApiKeys;
use countersign_api::service_hours::ServiceHours;
use countersign_domain::{ProviderRouting, Rules};
use countersign_provider::zigned::{ZignedConfig, DEFAULT_API_URL, DEFAULT_TOKEN_URL};

/// The documented development default: `Authorization: Bearer dev-key` is tenant `dev-tenant`.
pub const DEFAULT_API_KEYS: &str = "dev-key=dev-tenant";
/// The sandbox provider's development secret; set your own with COUNTERSIGN_WEBHOOK_SECRETS.
pub const DEFAULT_WEBHOOK_SECRET: &str = countersign_provider::sandbox::DEVELOPMENT_SECRET;

/// countersign-local: the whole countersign API on one machine (127.0.0.1 unless told
/// otherwise). Every setting is a flag or an environment variable; a flag wins. Set secrets in
/// the environment: a flag shows in the process list.
#[derive(Parser)]
#[command(name = "countersign-local", version, max_term_width = 100)]
pub struct Args {
    /// Address to listen on
    #[arg(long, env = "COUNTERSIGN_HOST", default_value = "127.0.0.1")]
    host: IpAddr,

    /// Port to listen on (`0`: any free port, printed at start)
    #[arg(long, env = "COUNTERSIGN_PORT", default_value_t = 8080)]
    port: u16,

    /// API keys and their tenants, `key=tenant,key=tenant`; `Authorization: Bearer <key>`. Unset:
    /// `dev-key=dev-tenant`, on a loopback host only
    #[arg(long, env = "COUNTERSIGN_API_KEYS", hide_env_values = true, value_parser = secret)]
    api_keys: Option<SecretString>,

    /// Sandbox provider webhook secrets, comma-separated; the first signs, all verify (rotation).
    /// Unset: the development secret, on a loopback host only; elsewhere at least 16 bytes each
    #[arg(long, env = "COUNTERSIGN_WEBHOOK_SECRETS", hide_env_values = true, value_parser = secret)]
    webhook_secrets: Option<SecretString>,

    /// Sandbox routes and the sandbox provider's `POST /v1/callbacks/sandbox`: `on` or `off` (off:
    /// they answer 404)
    #[arg(long, env = "COUNTERSIGN_SANDBOX", default_value = "on", action = ArgAction::Set, value_parser = on_off)]
    sandbox: bool,

    /// Consumer API hours, e.g. `07:30-22:00@Europe/Paris` (daylight-saving aware); outside them
    /// 503 with `Retry-After`; callbacks and the sweeper never close. Unset: always open
    #[arg(long, env = "SERVICE_HOURS", value_parser = service_hours)]
    service_hours: Option<ServiceHours>,

    /// `expires_in_days` of an agreement that sets none (1 to 365)
    #[arg(long, env = "COUNTERSIGN_DEFAULT_EXPIRY_DAYS", default_value_t = 120,
        value_parser = clap::value_parser!(u16).range(1..=365))]
    default_expiry_days: u16,

    /// Failed identity checks before a participant is `IDENTITY_CHECK_FAILED` (at least 1)
    #[arg(long, env = "COUNTERSIGN_IDENTITY_CHECK_ATTEMPTS", default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..))]
    identity_check_attempts: u32,

    /// Seconds between expiry sweeps (fractions allowed; more than 0, at most 86400)
    #[arg(long, env = "COUNTERSIGN_SWEEP_INTERVAL_SECS", default_value = "60", value_parser = sweep_interval)]
    sweep_interval_secs: Duration,

    /// Attempts at a provider event before it is dead-lettered (logged, and set aside in the
    /// store's inbox; at least 1)
    #[arg(long, env = "COUNTERSIGN_CALLBACK_MAX_RECEIVES", default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(1..))]
    callback_max_receives: u32,

    /// Bus name printed with each event
    #[arg(long, env = "COUNTERSIGN_EVENT_BUS", default_value = "countersign")]
    event_bus: String,

    /// `memory` (embedded), or `dynamodb`: the endpoint, region and credentials come from the
    /// usual `AWS_*` variables (`AWS_ENDPOINT_URL` for moto)
    #[arg(long, env = "COUNTERSIGN_STORE", default_value = "memory", value_parser = ["memory", "dynamodb"])]
    store: String,

    /// The table, with `COUNTERSIGN_STORE=dynamodb`
    #[arg(
        long,
        env = "COUNTERSIGN_DYNAMODB_TABLE",
        default_value = "countersign"
    )]
    dynamodb_table: String,

    /// `true`: create the table (keys, indexes, stream, time-to-live: `infra/table.json`; not its
    /// recovery and deletion protection, which are for the deployed table) at start if it does
    /// not exist
    #[arg(long, env = "COUNTERSIGN_DYNAMODB_CREATE_TABLE", default_value = "false", action = ArgAction::Set, value_parser = on_off)]
    dynamodb_create_table: bool,

    /// Folder of the `file://` documents sent to a live provider (a `uri` outside it is
    /// refused); signed documents are kept in its `signed/`
    #[arg(
        long,
        env = "COUNTERSIGN_DOCUMENTS_DIR",
        default_value = "countersign-documents"
    )]
    documents_dir: PathBuf,

    /// Provider of `test_mode` agreements: `sandbox`, or `zigned` (Zigned's test client; needs
    /// the Zigned credentials)
    #[arg(long, env = "COUNTERSIGN_TEST_MODE_PROVIDER", default_value = "sandbox", value_parser = ["sandbox", "zigned"])]
    test_mode_provider: String,

    /// Zigned's REST API v3
    #[arg(long, env = "COUNTERSIGN_ZIGNED_API_URL", default_value = DEFAULT_API_URL)]
    zigned_api_url: String,

    /// Zigned's OAuth 2.0 token endpoint
    #[arg(long, env = "COUNTERSIGN_ZIGNED_TOKEN_URL", default_value = DEFAULT_TOKEN_URL)]
    zigned_token_url: String,

    /// Zigned OAuth client id; with the secret, live agreements are sent to Zigned (without:
    /// `pending` on a live agreement is 422 `PROVIDER_NOT_CONFIGURED`). Unset: Zigned not
    /// configured
    #[arg(long, env = "COUNTERSIGN_ZIGNED_CLIENT_ID")]
    zigned_client_id: Option<String>,

    /// Zigned OAuth client secret; never logged. Unset: Zigned not configured
    #[arg(long, env = "COUNTERSIGN_ZIGNED_CLIENT_SECRET", hide_env_values = true, value_parser = secret)]
    zigned_client_secret: Option<SecretString>,

    /// Zigned webhook secrets, comma-separated, newest first (rotation). Unset: no Zigned
    /// callbacks (`POST /v1/callbacks/zigned` is 404)
    #[arg(long, env = "COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS", hide_env_values = true, value_parser = secret)]
    zigned_webhook_secrets: Option<SecretString>,
}

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

/// Why the process does not start: asked for help (or its version), or a setting is wrong.
pub enum NotStarted {
    /// `--help` or `--version`: print this on standard output and exit 0.
    Asked(String),
    /// A setting that does not parse or does not fit: print it and exit 2.
    Refused(String),
}

fn secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_owned()))
}

fn on_off(value: &str) -> Result<bool, String> {
    match value.trim() {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => Err(format!("`{other}` is not on or off (true or false)")),
    }
}

fn service_hours(value: &str) -> Result<ServiceHours, String> {
    value
        .trim()
        .parse::<ServiceHours>()
        .map_err(|error| error.to_string())
}

fn sweep_interval(value: &str) -> Result<Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a number of seconds"))?;
    if seconds > 0.0 && seconds <= 86_400.0 {
        Ok(Duration::from_secs_f64(seconds))
    } else {
        Err("more than 0, at most 86400".to_owned())
    }
}

fn secrets_list(value: &str) -> Vec<Vec<u8>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .map(|secret| secret.as_bytes().to_vec())
        .collect()
}

/// The command line and environment as clap reads them, blank variables counted as unset.
fn command() -> clap::Command {
    let mut command = Args::command();
    let blank: Vec<clap::Id> = command
        .get_arguments()
        .filter(|arg| {
            arg.get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.to_string_lossy().trim().is_empty())
        })
        .map(|arg| arg.get_id().clone())
        .collect();
    for id in blank {
        command = command.mut_arg(id, |arg| arg.env(None::<&str>));
    }
    command
}

/// The variable (and flag) a clap error is about, leading its message.
fn refusal(error: &clap::Error, command: &clap::Command) -> String {
    use clap::error::{ContextKind, ContextValue};
    let rendered = error.render().to_string();
    let first_line = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    let named = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(shown)) => command.get_arguments().find(|arg| {
            arg.get_long().is_some_and(|long| {
                shown.starts_with(&format!("--{long} ")) || *shown == format!("--{long}")
            })
        }),
        _ => None,
    };
    match named.and_then(|arg| arg.get_env()) {
        Some(env) => format!("{}: {first_line}", env.to_string_lossy()),
        None => first_line,
    }
}

impl LocalConfig {
    /// From the process's command line and environment.
    pub fn from_env() -> Result<Self, NotStarted> {
        Self::parse(std::env::args_os())
    }

    /// From `argv` (the program name first) and the process's environment.
    pub fn parse<I, T>(argv: I) -> Result<Self, NotStarted>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = command();
        let matches = command
            .clone()
            .try_get_matches_from(argv)
            .map_err(|error| match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    NotStarted::Asked(error.render().to_string())
                }
                _ => NotStarted::Refused(refusal(&error, &command)),
            })?;
        let args = Args::from_arg_matches(&matches)
            .map_err(|error| NotStarted::Refused(refusal(&error, &command)))?;
        Self::from_args(args).map_err(NotStarted::Refused)
    }

    /// What the settings say together: the checks one value alone cannot make.
    fn from_args(args: Args) -> Result<Self, String> {
        let loopback = args.host.is_loopback();
        let api_keys_are_default = args.api_keys.is_none();
        let api_keys = ApiKeys::parse(
            args.api_keys
                .as_ref()
                .map_or(DEFAULT_API_KEYS, |keys| keys.expose_secret()),
        )
        .map_err(|error| format!("COUNTERSIGN_API_KEYS: {error}"))?;
        let webhook_secrets = secrets_list(
            args.webhook_secrets
                .as_ref()
                .map_or(DEFAULT_WEBHOOK_SECRET, |secrets| secrets.expose_secret()),
        );
        if webhook_secrets.is_empty() {
            return Err("COUNTERSIGN_WEBHOOK_SECRETS: at least one secret".to_owned());
        }
        // Listening beyond this machine, the published development credentials would let anyone
        // in: they are for loopback only.
        if !loopback {
            let host = args.host;
            if api_keys_are_default {
                return Err(format!(
                    "COUNTERSIGN_API_KEYS: set API keys of your own to listen on {host} (the development key is for 127.0.0.1 only)"
                ));
            }
            countersign_provider::sandbox::check_deployment_secrets(&webhook_secrets).map_err(
                |error| format!("COUNTERSIGN_WEBHOOK_SECRETS: {error} to listen on {host}"),
            )?;
        }
        let client =
            match (args.zigned_client_id, args.zigned_client_secret) {
                (None, None) => None,
                (Some(id), Some(secret)) => Some(
                    ZignedConfig::new(
                        id.trim(),
                        SecretString::from(secret.expose_secret().trim().to_owned()),
                    )
                    .with_urls(args.zigned_api_url, args.zigned_token_url),
                ),
                (Some(_), None) => return Err(
                    "COUNTERSIGN_ZIGNED_CLIENT_ID: set without COUNTERSIGN_ZIGNED_CLIENT_SECRET"
                        .to_owned(),
                ),
                (None, Some(_)) => return Err(
                    "COUNTERSIGN_ZIGNED_CLIENT_SECRET: set without COUNTERSIGN_ZIGNED_CLIENT_ID"
                        .to_owned(),
                ),
            };
        let zigned_webhook_secrets = args
            .zigned_webhook_secrets
            .as_ref()
            .map(|secrets| secrets_list(secrets.expose_secret()))
            .unwrap_or_default();
        if !loopback && !zigned_webhook_secrets.is_empty() {
            countersign_provider::sandbox::check_deployment_secrets(&zigned_webhook_secrets)
                .map_err(|error| format!("COUNTERSIGN_ZIGNED_WEBHOOK_SECRETS: {error}"))?;
        }
        let test_mode_provider = match args.test_mode_provider.as_str() {
            "zigned" if client.is_some() => countersign_provider::zigned::PROVIDER_NAME,
            "zigned" => {
                return Err("COUNTERSIGN_TEST_MODE_PROVIDER: `zigned` needs COUNTERSIGN_ZIGNED_CLIENT_ID and COUNTERSIGN_ZIGNED_CLIENT_SECRET (Zigned's test client)".to_owned())
            }
            _ => countersign_provider::sandbox::PROVIDER_NAME,
        };
        let store = match args.store.as_str() {
            "dynamodb" => StoreChoice::DynamoDb {
                table: args.dynamodb_table,
                create_table: args.dynamodb_create_table,
            },
            _ => StoreChoice::Memory,
        };
        Ok(LocalConfig {
            addr: SocketAddr::new(args.host, args.port),
            api_keys,
            api_keys_are_default,
            webhook_secrets,
            sandbox_enabled: args.sandbox,
            service_hours: args.service_hours,
            rules: Rules {
                identity_check_attempts: args.identity_check_attempts,
                default_expires_in_days: args.default_expiry_days,
                providers: ProviderRouting {
                    test_mode: test_mode_provider.to_owned(),
                    live: countersign_provider::zigned::PROVIDER_NAME.to_owned(),
                },
            },
            sweep_interval: args.sweep_interval_secs,
            callback_max_receives: args.callback_max_receives,
            event_bus: args.event_bus,
            store,
            documents_dir: args.documents_dir,
            zigned: ZignedSettings {
                client,
                webhook_secrets: zigned_webhook_secrets,
            },
        })
    }
}

/// The README's configuration table, from the same definitions as `--help` (its test prints the
/// table to paste when they change).
#[cfg(test)]
fn markdown_table() -> String {
    let command = Args::command();
    let mut table = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
    for arg in command.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| format!("`{}`", value.to_string_lossy()))
            .collect();
        let default = if defaults.is_empty() {
            "unset".to_owned()
        } else {
            defaults.join(", ")
        };
        let meaning = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|help| {
                help.to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        table.push_str(&format!(
            "| `{}` | `--{long}` | {default} | {meaning} |\n",
            env.to_string_lossy()
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The settings named by their variables, given as the flags of those variables (the tests
    /// run in one process: its environment is not theirs to change).
    fn config(vars: &[(&str, &str)]) -> Result<LocalConfig, String> {
        let flags: HashMap<String, String> = Args::command()
            .get_arguments()
            .filter_map(|arg| {
                Some((
                    arg.get_env()?.to_string_lossy().into_owned(),
                    arg.get_long()?.to_owned(),
                ))
            })
            .collect();
        let mut argv = vec!["countersign-local".to_owned()];
        for (name, value) in vars {
            let flag = flags
                .get(*name)
                .unwrap_or_else(|| panic!("no flag for {name}"));
            argv.push(format!("--{flag}={value}"));
        }
        match LocalConfig::parse(argv) {
            Ok(config) => Ok(config),
            Err(NotStarted::Refused(error)) => Err(error),
            Err(NotStarted::Asked(text)) => panic!("asked for help: {text}"),
        }
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

    #[test]
    fn help_lists_every_variable_and_never_a_secret_value() {
        let help = Args::command().render_long_help().to_string();
        for arg in Args::command().get_arguments() {
            if let Some(env) = arg.get_env() {
                assert!(help.contains(&*env.to_string_lossy()), "{env:?} in --help");
            }
        }
        let Err(NotStarted::Asked(text)) = LocalConfig::parse(["countersign-local", "--help"])
        else {
            panic!("--help is an answer, not a configuration");
        };
        assert!(text.contains("COUNTERSIGN_ZIGNED_CLIENT_SECRET"), "{text}");
    }

    #[test]
    fn a_refused_api_key_entry_is_not_echoed() {
        let error = config(&[("COUNTERSIGN_API_KEYS", "good=t1,sk_live_0123456789")])
            .err()
            .unwrap_or_default();
        assert!(error.starts_with("COUNTERSIGN_API_KEYS"), "{error}");
        assert!(!error.contains("sk_live_0123456789"), "{error}");
    }
}

#[cfg(test)]
mod readme {
    use super::markdown_table;

    /// The README's configuration table is the one `--help` is made from, word for word.
    #[test]
    fn the_readme_table_is_generated_from_the_definitions() {
        let readme = include_str!("../../../README.md");
        let table = markdown_table();
        assert!(
            readme.contains(&table),
            "README.md's configuration table is not the generated one; replace it with:\n\n{table}"
        );
    }
}
