//! Configuration: built-in defaults → catalogue file → flags and environment, validated at start
//! with errors that name the setting. Provider keys come from the environment names the
//! prototype used (`OPENAI_API_KEY`, `GROQ_API_KEY`, ...; see `default_catalog.toml`) and base
//! URLs from `<PROVIDER>_BASE_URL`. Keys never appear in logs or `Debug` output.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use iafactory::secret::InternalToken;
use iafactory::telemetry::LogFormat;

use crate::catalog::{Catalog, CatalogError};
use crate::routing::RoutingSettings;

/// The validated configuration the library runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where Prometheus `/metrics` is served over HTTP, bound by `start`; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// `sqlite://PATH` or `postgres://...` for usage and quota leases.
    pub database_url: String,
    /// promo-service gRPC URL, for API key checks.
    pub promo_service_url: String,
    /// Presented to promo-service's `AuthenticateKey` and required from callers of
    /// `ListProviders` (gateway-rest). `None`: key checks are refused by promo-service and
    /// `ListProviders` answers nobody.
    pub internal_token: Option<InternalToken>,
    /// Providers (with keys resolved) and models.
    pub catalog: Catalog,
    pub routing: RoutingSettings,
    /// How long a valid key's check is reused (a revoked key works at most this long).
    pub auth_cache_ttl: Duration,
    /// How long an invalid key's refusal is reused.
    pub auth_negative_ttl: Duration,
    /// How often idle token leases and old rate windows are looked at (usage itself is
    /// charged before each answer, see [`crate::usage`]).
    pub usage_flush_interval: Duration,
    /// TCP connect timeout towards providers.
    pub connect_timeout: Duration,
    /// Request log rows waiting for the writer at most; more are dropped and counted.
    pub request_log_buffer: usize,
    /// How long request log rows are kept (pruned by the housekeeping pass).
    pub request_log_retention: Duration,
}

impl Config {
    /// Defaults around a database, promo-service and a catalogue.
    pub fn new(
        database_url: impl Into<String>,
        promo_service_url: impl Into<String>,
        catalog: Catalog,
    ) -> Config {
        Config {
            metrics_listen: None,
            database_url: database_url.into(),
            promo_service_url: promo_service_url.into(),
            internal_token: None,
            catalog,
            routing: RoutingSettings::default(),
            auth_cache_ttl: Duration::from_secs(5),
            auth_negative_ttl: Duration::from_secs(1),
            usage_flush_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            request_log_buffer: 20_000,
            request_log_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// Flags and environment of the `llm-gateway` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "llm-gateway",
    version,
    about = "IAFactory LLM gateway: providers, routing, streaming, usage and quotas (gRPC)"
)]
pub struct Args {
    /// Address to listen on for gRPC.
    #[arg(
        long,
        global = true,
        env = "LLM_GATEWAY_ADDR",
        default_value = "0.0.0.0:50052"
    )]
    pub listen: SocketAddr,

    /// Address of the Prometheus `/metrics` endpoint (HTTP); unset: no endpoint.
    #[arg(long, env = "LLM_GATEWAY_METRICS_ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// `sqlite://PATH` (file created on first start; the request log goes in a second file
    /// beside it, `NAME-requests.db` for `NAME.db`) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/llm-gateway.db"
    )]
    pub database_url: String,

    /// promo-service gRPC URL, used to check API keys; several replicas: comma-separated URLs,
    /// balanced.
    #[arg(
        long,
        env = "PROMO_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub promo_service_url: String,

    /// Token shared by the platform's services (the same on promo-service and gateway-rest): sent to
    /// promo-service to check API keys, and required (as `authorization: Bearer …`) by
    /// `ListProviders`. Required; with promo-service in dev mode, use the value it logs.
    #[arg(long, env = "INTERNAL_TOKEN", hide_env_values = true)]
    pub internal_token: Option<String>,

    /// Model catalogue file (TOML) applied over the built-in one.
    #[arg(long, env = "LLM_GATEWAY_CATALOG")]
    pub catalog: Option<PathBuf>,

    /// Milliseconds a valid API key check is cached (a revoked key works at most this long).
    #[arg(long, env = "AUTH_CACHE_TTL_MS", default_value_t = 5000)]
    pub auth_cache_ttl_ms: u64,

    /// Tries per provider for transient failures (429, 5xx, connection errors).
    #[arg(long, env = "LLM_MAX_ATTEMPTS_PER_PROVIDER", default_value_t = 2)]
    pub max_attempts_per_provider: u32,

    /// Seconds one upstream attempt may take (for streams: until the first token).
    #[arg(long, env = "LLM_ATTEMPT_TIMEOUT_SECS", default_value_t = 60)]
    pub attempt_timeout_secs: u64,

    /// Seconds a whole call may take, retries and fallbacks included.
    #[arg(long, env = "LLM_OVERALL_TIMEOUT_SECS", default_value_t = 120)]
    pub overall_timeout_secs: u64,

    /// Consecutive failures that open a provider's circuit breaker.
    #[arg(long, env = "LLM_BREAKER_THRESHOLD", default_value_t = 5)]
    pub breaker_threshold: u32,

    /// Seconds an open circuit waits before a trial call.
    #[arg(long, env = "LLM_BREAKER_COOLDOWN_SECS", default_value_t = 30)]
    pub breaker_cooldown_secs: u64,

    /// Milliseconds between housekeeping passes (usage itself is written before each answer).
    #[arg(long, env = "USAGE_FLUSH_MS", default_value_t = 1000)]
    pub usage_flush_ms: u64,

    /// Days the request log keeps its rows (one per call, no prompt or completion text); older
    /// rows are deleted by the housekeeping pass about once a minute.
    #[arg(long, env = "REQUEST_LOG_RETENTION_DAYS", default_value_t = 30)]
    pub request_log_retention_days: u32,

    /// Request log rows that may wait for the database writer. Calls never wait for the log:
    /// when this many rows are waiting (the database cannot keep up), further rows are dropped
    /// and counted in `iaf_llm_request_log_dropped_total`.
    #[arg(long, env = "REQUEST_LOG_BUFFER", default_value_t = 20_000)]
    pub request_log_buffer: usize,

    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Without a subcommand: run the service.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of the `llm-gateway` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Container health check: exit 0 when the running service is SERVING, 1 otherwise.
    ///
    /// Asks the llm-gateway listening on `--listen` / `LLM_GATEWAY_ADDR` (`0.0.0.0` and `[::]` mean
    /// loopback) for its overall `grpc.health.v1` status within 3 s and prints one line; exit 1
    /// on NOT_SERVING (draining, database not accepting writes), nothing listening or no answer.
    /// In compose: `["CMD", "llm-gateway", "healthcheck"]`.
    Healthcheck,
}

/// A configuration mistake, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("LLM_GATEWAY_CATALOG: cannot read {path}: {source}")]
    ReadCatalog {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    #[error("{0}")]
    Invalid(String),
}

impl Args {
    /// Validates and resolves keys and base URLs through `env` (the process environment in
    /// `main`).
    pub fn into_config(self, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut catalog = match &self.catalog {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadCatalog {
                        path: path.display().to_string(),
                        source,
                    })?;
                Catalog::with_overrides(&path.display().to_string(), &text)?
            }
            None => Catalog::builtin()?,
        };
        catalog.resolve_env(env)?;
        let nonzero = |v: u64, name: &'static str| {
            if v == 0 {
                Err(ConfigError::Zero(name))
            } else {
                Ok(v)
            }
        };
        nonzero(self.auth_cache_ttl_ms, "AUTH_CACHE_TTL_MS")?;
        nonzero(
            u64::from(self.max_attempts_per_provider),
            "LLM_MAX_ATTEMPTS_PER_PROVIDER",
        )?;
        nonzero(self.attempt_timeout_secs, "LLM_ATTEMPT_TIMEOUT_SECS")?;
        nonzero(self.overall_timeout_secs, "LLM_OVERALL_TIMEOUT_SECS")?;
        nonzero(u64::from(self.breaker_threshold), "LLM_BREAKER_THRESHOLD")?;
        nonzero(self.usage_flush_ms, "USAGE_FLUSH_MS")?;
        nonzero(
            u64::from(self.request_log_retention_days),
            "REQUEST_LOG_RETENTION_DAYS",
        )?;
        nonzero(self.request_log_buffer as u64, "REQUEST_LOG_BUFFER")?;
        if self.request_log_retention_days > 3650 || self.request_log_buffer > 1_000_000 {
            return Err(ConfigError::Invalid(
                "REQUEST_LOG_RETENTION_DAYS must be at most 3650 and REQUEST_LOG_BUFFER at most 1000000".into(),
            ));
        }
        if self.overall_timeout_secs > 3600 || self.attempt_timeout_secs > 3600 {
            return Err(ConfigError::Invalid(
                "LLM_ATTEMPT_TIMEOUT_SECS and LLM_OVERALL_TIMEOUT_SECS must be at most 3600".into(),
            ));
        }
        if let Some(bad) = self
            .promo_service_url
            .split(',')
            .map(str::trim)
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(ConfigError::Invalid(format!(
                "PROMO_SERVICE_URL {bad:?} must start with http:// or https:// (several replicas: comma-separated)"
            )));
        }
        iafactory::db::Backend::from_url(&self.database_url)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let internal = match self.internal_token.as_deref().map(str::trim) {
            Some(t) if t.len() >= 16 => InternalToken::new(t),
            Some(t) if !t.is_empty() => {
                return Err(ConfigError::Invalid(
                    "INTERNAL_TOKEN is too short: use at least 16 characters".into(),
                ));
            }
            _ => {
                return Err(ConfigError::Invalid(
                    "INTERNAL_TOKEN is not set: give llm-gateway the same value as promo-service (which checks it on API key lookups)".into(),
                ));
            }
        };
        let mut config = Config::new(self.database_url, self.promo_service_url, catalog);
        config.metrics_listen = self.metrics_listen;
        config.internal_token = Some(internal);
        config.auth_cache_ttl = Duration::from_millis(self.auth_cache_ttl_ms);
        config.usage_flush_interval = Duration::from_millis(self.usage_flush_ms);
        config.request_log_buffer = self.request_log_buffer;
        config.request_log_retention =
            Duration::from_secs(u64::from(self.request_log_retention_days) * 86_400);
        config.routing = RoutingSettings {
            max_attempts_per_provider: self.max_attempts_per_provider,
            attempt_timeout: Duration::from_secs(self.attempt_timeout_secs),
            overall_timeout: Duration::from_secs(self.overall_timeout_secs),
            breaker_failure_threshold: self.breaker_threshold,
            breaker_cooldown: Duration::from_secs(self.breaker_cooldown_secs),
            ..RoutingSettings::default()
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_resolve_and_errors_name_the_setting() {
        let missing = Args::try_parse_from(["llm-gateway"])
            .ok()
            .and_then(|a| a.into_config(|_| None).err())
            .map(|e| e.to_string());
        assert!(missing.is_some_and(|e| e.contains("INTERNAL_TOKEN")));
        let args = Args::try_parse_from(["llm-gateway", "--internal-token", "internal-0123456789"]);
        assert!(args.is_ok());
        let Ok(args) = args else { return };
        assert_eq!(args.listen.port(), 50052);
        let config = args
            .clone()
            .into_config(|v| (v == "ANTHROPIC_API_KEY").then(|| "sk-ant".to_owned()));
        assert!(config.is_ok());
        let Ok(config) = config else { return };
        assert!(!config.catalog.nothing_configured());
        assert!(!format!("{config:?}").contains("sk-ant"));

        let mut bad = args.clone();
        bad.usage_flush_ms = 0;
        let err = bad.into_config(|_| None).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("USAGE_FLUSH_MS")));

        let err = args
            .into_config(|v| (v == "GROQ_BASE_URL").then(|| "not a url".to_owned()))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.is_some_and(|e| e.contains("GROQ_BASE_URL")),
            "names the variable"
        );
    }
}
