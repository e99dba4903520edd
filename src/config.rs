//! Settings: the defaults in `config/orgsync.toml` (built in), then `--config FILE`, then
//! `ORGSYNC__SECTION__KEY` environment variables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

const DEFAULTS: &str = include_str!("../config/orgsync.toml");

/// Why `store.events_url` cannot be used by a build without the `kurrentdb` feature.
pub const WITHOUT_KURRENTDB: &str = "store.events_url is set, but this orgsync was built \
    without the KurrentDB backend: build it with `cargo build --release --features kurrentdb`";

/// Every setting of the daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The HTTP server.
    pub server: ServerSettings,
    /// Where state lives on disk.
    pub state: StateSettings,
    /// The event store and read tables.
    pub store: StoreSettings,
    /// How the daemon reaches AWS.
    pub aws: AwsSettings,
    /// When and how hard organizations are harvested.
    pub harvest: HarvestSettings,
    /// The sealing key.
    pub crypto: CryptoSettings,
    /// Logging.
    pub log: LogSettings,
}

/// The HTTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub listen: String,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Most subscriptions one WebSocket carries at once.
    pub max_subscriptions_per_socket: usize,
    /// Most WebSockets one token holds open on one instance.
    pub max_sockets_per_token: usize,
}

/// Where state lives on disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSettings {
    /// The state directory.
    pub dir: PathBuf,
}

/// The event store and read tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `sqlite://…` or `postgres://…`; empty for SQLite in the state directory.
    pub url: String,
    /// The event log in KurrentDB, `esdb://…` or `kurrentdb://…`; empty keeps the events
    /// with the read tables at `url`.
    pub events_url: String,
    /// What the KurrentDB streams' names start with, `<prefix>-account-<id>`, so that
    /// several installations can share one server.
    pub events_prefix: String,
    /// Most connections opened to the store, all pools and locks together.
    pub max_connections: u32,
    /// Longest a statement may run on PostgreSQL before it is cancelled.
    #[serde(deserialize_with = "duration")]
    pub statement_timeout: Duration,
}

/// How the daemon reaches AWS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Region for STS.
    pub region: String,
    /// Endpoint override for every AWS API; empty for AWS's own.
    pub endpoint_url: String,
    /// The role or user the daemon runs as, filled into the role templates; empty for none.
    pub trusted_principal_arn: String,
    /// Attempts per AWS call.
    pub max_attempts: u32,
    /// Longest one AWS call may take, all attempts included.
    #[serde(deserialize_with = "duration")]
    pub operation_timeout: Duration,
}

/// When and how hard organizations are harvested.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarvestSettings {
    /// Time between harvests of one organization.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// Most AWS calls one harvest makes at a time.
    pub concurrency: usize,
    /// How often the scheduler looks for due organizations.
    #[serde(deserialize_with = "duration")]
    pub tick: Duration,
    /// Longest a harvest may spend reading AWS.
    #[serde(deserialize_with = "duration")]
    pub deadline: Duration,
    /// How long one read of an events queue waits for a message (R16).
    #[serde(deserialize_with = "duration")]
    pub queue_wait: Duration,
}

/// The sealing key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptoSettings {
    /// The key file; empty for the systemd credential or the state directory.
    pub key_file: String,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// EnvFilter directives.
    pub level: String,
    /// `json` or `text`.
    pub format: String,
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "expected a duration such as 30s, 15m or 1h, got {text:?} ({e})"
        ))
    })
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads the defaults, then `file` when given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let settings: Self = builder
            .add_source(
                config::Environment::with_prefix("ORGSYNC")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let fail = |msg: String| Err(ConfigError(msg));
        if self.aws.max_attempts == 0 {
            return fail("aws.max_attempts must be at least 1".into());
        }
        if self.harvest.concurrency == 0 {
            return fail("harvest.concurrency must be at least 1".into());
        }
        if self.harvest.interval < Duration::from_secs(60) {
            return fail("harvest.interval must be at least 1m".into());
        }
        if self.aws.operation_timeout < Duration::from_secs(1) {
            return fail("aws.operation_timeout must be at least 1s".into());
        }
        if self.harvest.deadline < Duration::from_secs(1) {
            return fail("harvest.deadline must be at least 1s".into());
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(20)).contains(&self.harvest.queue_wait) {
            return fail("harvest.queue_wait must be 1s to 20s, as SQS waits".into());
        }
        if self.harvest.tick.is_zero() {
            return fail("harvest.tick must be more than 0s".into());
        }
        if self.store.max_connections < 4 {
            return fail("store.max_connections must be at least 4".into());
        }
        if self.store.statement_timeout < Duration::from_secs(1) {
            return fail("store.statement_timeout must be at least 1s".into());
        }
        let url = self.store_url();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return fail(format!(
                "store.url must start with sqlite: or postgres:, got {url:?}"
            ));
        }
        let events = &self.store.events_url;
        if !(events.is_empty() || events.starts_with("esdb:") || events.starts_with("kurrentdb:")) {
            return fail(format!(
                "store.events_url must be empty or start with esdb: or kurrentdb:, got {events:?}"
            ));
        }
        if !events.is_empty() && !cfg!(feature = "kurrentdb") {
            return fail(WITHOUT_KURRENTDB.into());
        }
        let prefix = &self.store.events_prefix;
        if prefix.is_empty() || prefix.starts_with('$') || prefix.chars().any(char::is_control) {
            return fail(format!(
                "store.events_prefix must be printable and not start with $, got {prefix:?}"
            ));
        }
        if !["json", "text"].contains(&self.log.format.as_str()) {
            return fail(format!(
                "log.format must be json or text, got {:?}",
                self.log.format
            ));
        }
        if let Some(arn) = self.aws_trusted_principal() {
            let iam = arn.split(':').nth(2) == Some("iam") && arn.starts_with("arn:");
            if !iam || !(arn.contains(":role/") || arn.contains(":user/")) {
                return fail(format!(
                    "aws.trusted_principal_arn must be an IAM role or user ARN, got {arn:?}"
                ));
            }
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return fail(format!(
                "server.listen must be an address and port such as 127.0.0.1:8080, got {:?}",
                self.server.listen
            ));
        }
        Ok(())
    }

    /// The store URL, with the SQLite default filled in.
    pub fn store_url(&self) -> String {
        if self.store.url.is_empty() {
            format!("sqlite://{}", self.state.dir.join("orgsync.db").display())
        } else {
            self.store.url.clone()
        }
    }

    /// Where the first admin token is written, until another admin token exists.
    pub fn admin_token_file(&self) -> PathBuf {
        self.state.dir.join("admin.token")
    }

    /// The key file: the setting, else the systemd credential, else the state directory.
    pub fn key_file(&self) -> PathBuf {
        if !self.crypto.key_file.is_empty() {
            return PathBuf::from(&self.crypto.key_file);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let credential = Path::new(&dir).join("orgsync.key");
            if credential.exists() {
                return credential;
            }
        }
        self.state.dir.join("orgsync.key")
    }

    /// The principal the role templates trust, if configured.
    pub fn aws_trusted_principal(&self) -> Option<&str> {
        Some(self.aws.trusted_principal_arn.as_str()).filter(|arn| !arn.is_empty())
    }

    /// The AWS endpoint override, if any.
    pub fn aws_endpoint(&self) -> Option<&str> {
        Some(self.aws.endpoint_url.as_str()).filter(|url| !url.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_load() {
        let settings = Settings::load(None).unwrap();
        assert_eq!(settings.server.listen, "127.0.0.1:8080");
        assert_eq!(settings.state.dir, PathBuf::from("./data"));
        assert_eq!(settings.store_url(), "sqlite://./data/orgsync.db");
        assert_eq!(settings.harvest.interval, Duration::from_secs(3600));
    }

    #[test]
    fn a_file_overrides_the_defaults_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("o.toml");
        std::fs::write(&file, "[harvest]\ninterval = \"15m\"\n").unwrap();
        let settings = Settings::load(Some(&file)).unwrap();
        assert_eq!(settings.harvest.interval, Duration::from_secs(900));

        std::fs::write(&file, "[harvest]\ninterval = \"soon\"\n").unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("soon"), "{err}");

        std::fs::write(&file, "[server]\nlisten = \"nowhere\"\n").unwrap();
        let err = Settings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");

        std::fs::write(&file, "[serve]\nlisten = \"127.0.0.1:1\"\n").unwrap();
        assert!(Settings::load(Some(&file)).is_err());
    }
}
