//! Configuration: command-line flags, each with an environment variable, validated at start.

use std::net::SocketAddr;
use std::time::Duration;

use iafactory::db::PoolOptions;
use iafactory::grpc::ServeOptions;
use iafactory::telemetry::LogFormat;

use crate::domain::CodeName;
use crate::secrets::{self, AdminToken};
use iafactory::secret::InternalToken;

/// Flags and environment of the `promo-service` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "promo-service",
    version,
    about = "IAFactory promo codes, signups and API keys (gRPC)"
)]
pub struct Args {
    /// Address to listen on for gRPC.
    #[arg(
        long,
        global = true,
        env = "PROMO_SERVICE_ADDR",
        default_value = "0.0.0.0:50051"
    )]
    pub listen: SocketAddr,

    /// Address of the Prometheus `/metrics` endpoint (HTTP); unset: no endpoint.
    #[arg(long, env = "PROMO_METRICS_ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// `sqlite://PATH` (file created on first start) or `postgres://USER@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://data/promo.db")]
    pub database_url: String,

    /// Token required (as `authorization: Bearer …`) by admin RPCs. Required unless `--dev`.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Token the other services present (as `authorization: Bearer …`) on internal RPCs:
    /// llm-gateway's `AuthenticateKey` calls. Give the same value to llm-gateway and gateway-rest.
    /// Required unless `--dev`.
    #[arg(long, env = "INTERNAL_TOKEN", hide_env_values = true)]
    pub internal_token: Option<String>,

    /// Local development: generate and log an admin token and an internal token when none is
    /// given.
    #[arg(long, env = "IAF_DEV", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dev: bool,

    /// The launch code whose usage `GetStats` reports as `launch30_*`.
    #[arg(long, env = "LAUNCH_CODE", default_value = "LAUNCH30")]
    pub launch_code: String,

    /// How often (ms) the live counter re-reads the shared database while someone watches.
    #[arg(long, env = "LIVE_POLL_MS", default_value_t = 500)]
    pub live_poll_ms: u64,

    /// How long (ms) promo codes and packages read for validation are reused before re-reading
    /// the shared database (a replica's own changes apply at once; redemption never relies on it).
    #[arg(long, env = "READ_CACHE_MS", default_value_t = 1000)]
    pub read_cache_ms: u64,

    /// Largest database connection pool.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Deadline of a unary gRPC call, in seconds.
    #[arg(long, env = "GRPC_TIMEOUT_SECS", default_value_t = 30)]
    pub grpc_timeout_secs: u64,

    /// SMTP relay for signup e-mails: `smtp://HOST:PORT` (plain), `smtp://USER:PASS@HOST:587?tls=required`
    /// (STARTTLS) or `smtps://USER:PASS@HOST:465` (TLS). Unset: e-mails wait in the outbox.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of the e-mails.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "IAFactory <no-reply@iafactory.dz>"
    )]
    pub mail_from: String,

    /// Operator address notified of every signup; unset: no operator notice.
    #[arg(long, env = "OPERATOR_EMAIL")]
    pub operator_email: Option<String>,

    /// Public base URL of the REST API (`https://api.example.dz`), written into every signup
    /// e-mail's quick-start — e-mails already queued keep the URL they were written with.
    /// Required unless `--dev` (which uses `http://localhost:8180`).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Delivery attempts before an e-mail is marked dead.
    #[arg(long, env = "OUTBOX_MAX_ATTEMPTS", default_value_t = 8)]
    pub outbox_max_attempts: u32,

    /// First retry delay (ms); doubles at each attempt, capped at one hour.
    #[arg(long, env = "OUTBOX_RETRY_BASE_MS", default_value_t = 5000)]
    pub outbox_retry_base_ms: u64,

    /// How long (s) a worker owns a claimed e-mail before another replica may retry it.
    #[arg(long, env = "OUTBOX_LEASE_SECS", default_value_t = 60)]
    pub outbox_lease_secs: u64,

    /// How often (ms) the worker looks for due e-mails (a local signup wakes it at once).
    #[arg(long, env = "OUTBOX_POLL_MS", default_value_t = 1000)]
    pub outbox_poll_ms: u64,

    /// Campaign messages sent per minute at most, over every replica and campaign together
    /// (your SMTP relay's limit): each message is given its own sending slot.
    #[arg(long, env = "CAMPAIGN_RATE_PER_MIN", default_value_t = 60)]
    pub campaign_rate_per_min: u32,

    /// How often (ms) the campaign job looks for campaigns whose scheduled time has come.
    #[arg(long, env = "CAMPAIGN_POLL_MS", default_value_t = 5000)]
    pub campaign_poll_ms: u64,

    /// Secret (at least 32 characters) that signs the links of e-mails that act without a login
    /// (unsubscribe, waitlist confirmation); the same on every replica. Unset: derived from
    /// ADMIN_TOKEN (changing the admin token then invalidates the links already sent).
    #[arg(long, env = "LINK_SECRET", hide_env_values = true)]
    pub link_secret: Option<String>,

    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Invoices, tax, dunning and transfer details.
    #[command(flatten)]
    pub billing: crate::billing_config::BillingArgs,

    /// The seller's contact and publication facts (footer, legal pages, e-mails' Reply-To).
    #[command(flatten)]
    pub site: crate::site_config::SiteArgs,

    /// Without a subcommand: run the service.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of the `promo-service` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Container health check: exit 0 when the running service is SERVING, 1 otherwise.
    ///
    /// Asks the promo-service listening on `--listen` / `PROMO_SERVICE_ADDR` (`0.0.0.0` and `[::]` mean
    /// loopback) for its overall `grpc.health.v1` status within 3 s and prints one line; exit 1
    /// on NOT_SERVING (draining, database not accepting writes), nothing listening or no answer.
    /// In compose: `["CMD", "promo-service", "healthcheck"]`.
    Healthcheck,
}

/// Signup e-mail delivery.
#[derive(Clone)]
pub struct MailConfig {
    pub smtp_url: Option<String>,
    pub from: String,
    pub operator_email: Option<String>,
    pub public_url: String,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub batch_size: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            from: "IAFactory <no-reply@iafactory.dz>".into(),
            operator_email: None,
            public_url: DEV_PUBLIC_URL.into(),
            max_attempts: 8,
            retry_base: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            batch_size: 20,
        }
    }
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may hold a password.
        f.debug_struct("MailConfig")
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(iafactory::db::redact_url),
            )
            .field("from", &self.from)
            .field("operator_email", &self.operator_email)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

/// The launch campaign: pacing, the campaign job, the signing of links in e-mails.
#[derive(Clone)]
pub struct CampaignConfig {
    pub rate_per_min: u32,
    pub poll_interval: Duration,
    /// HMAC key of unsubscribe and confirmation links.
    pub link_secret: Vec<u8>,
}

impl CampaignConfig {
    /// The defaults, with the link secret derived from the admin token (domain-separated: the
    /// token itself never signs anything).
    pub fn derived_from(admin_token: &str) -> CampaignConfig {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"iaf-link-secret\0");
        h.update(admin_token.as_bytes());
        CampaignConfig {
            rate_per_min: 60,
            poll_interval: Duration::from_secs(5),
            link_secret: h.finalize().to_vec(),
        }
    }
}

impl std::fmt::Debug for CampaignConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignConfig")
            .field("rate_per_min", &self.rate_per_min)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// Tokens generated in dev mode, for the operator to read in the log.
#[derive(Default)]
pub struct GeneratedTokens {
    pub admin: Option<String>,
    pub internal: Option<String>,
}

impl std::fmt::Debug for GeneratedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GeneratedTokens(***)")
    }
}

/// The validated configuration the library runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where Prometheus `/metrics` is served over HTTP, bound by `start`; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    pub mail: MailConfig,
    /// Time to live of the read cache of codes and packages.
    pub read_cache_ttl: Duration,
    pub database_url: String,
    pub admin_token: AdminToken,
    /// Required by `AuthenticateKey` (which answers with the key owner's e-mail); `None`: only the
    /// admin token opens it.
    pub internal_token: Option<InternalToken>,
    pub launch_code: CodeName,
    pub live_poll_interval: Duration,
    pub pool: PoolOptions,
    pub grpc: ServeOptions,
    /// How often a probe write checks that the database accepts writes (health status).
    pub storage_probe_interval: Duration,
    /// "Now" for the date rules (sign-in links, sessions, periods, notices): the system clock,
    /// or a manual one that tests move. Not a flag.
    pub clock: crate::clock::Clock,
    /// How often the account jobs run (notices, due downgrades, purge). Not a flag: a minute
    /// keeps notices timely at one cheap query; tests shorten it.
    pub account_jobs_interval: Duration,
    /// Invoices, tax, dunning and transfer details.
    pub billing: crate::billing_config::BillingConfig,
    /// How often the billing job runs (invoices at period start, dunning): the binary's
    /// `BILLING_JOB_INTERVAL_SECS` (every minute by default); `None` (also the library default of
    /// [`Config::new`]) runs no job, so suites not about billing see no invoice e-mails.
    pub billing_jobs_interval: Option<Duration>,
    /// The seller's contact and publication facts; with `billing.seller`, what the footer, the
    /// legal pages and every e-mail show.
    pub site: crate::site_config::SiteConfig,
    /// Campaign pacing and link signing.
    pub campaigns: CampaignConfig,
}

/// A configuration mistake, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "ADMIN_TOKEN is not set: set it (at least 16 characters) or start with --dev / IAF_DEV=true for a generated one"
    )]
    MissingAdminToken,
    #[error("ADMIN_TOKEN is too short: use at least 16 characters")]
    WeakAdminToken,
    #[error(
        "INTERNAL_TOKEN is not set: set it (at least 16 characters, the same on llm-gateway and gateway-rest) or start with --dev / IAF_DEV=true for a generated one"
    )]
    MissingInternalToken,
    #[error("INTERNAL_TOKEN is too short: use at least 16 characters")]
    WeakInternalToken,
    #[error("LAUNCH_CODE is not a valid code: {0}")]
    LaunchCode(String),
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    #[error("OPERATOR_EMAIL is not a valid e-mail address: {0}")]
    OperatorEmail(String),
    #[error(
        "PUBLIC_URL is not set: set it to the public base URL of the REST API (e.g. https://api.iafactory.dz), written into every signup e-mail, or start with --dev / IAF_DEV=true for http://localhost:8180"
    )]
    MissingPublicUrl,
    #[error(transparent)]
    Billing(#[from] crate::billing_config::BillingConfigError),
    #[error(transparent)]
    Site(#[from] crate::site_config::SiteConfigError),
    #[error("LINK_SECRET is too short: use at least 32 characters")]
    WeakLinkSecret,
    #[error("PUBLIC_URL must be an http:// or https:// URL with a host: {0:?}")]
    BadPublicUrl(String),
}

/// The public URL of a local development run.
pub const DEV_PUBLIC_URL: &str = "http://localhost:8180";

impl Config {
    /// Defaults for tests and the all-in-one run: the given database and admin token.
    pub fn new(database_url: impl Into<String>, admin_token: impl Into<String>) -> Config {
        let admin_token = admin_token.into();
        Config {
            campaigns: CampaignConfig::derived_from(&admin_token),
            metrics_listen: None,
            database_url: database_url.into(),
            admin_token: AdminToken::new(admin_token),
            internal_token: None,
            launch_code: CodeName::launch30(),
            live_poll_interval: Duration::from_millis(500),
            pool: PoolOptions::default(),
            grpc: ServeOptions::default(),
            mail: MailConfig::default(),
            read_cache_ttl: Duration::from_secs(1),
            storage_probe_interval: Duration::from_secs(5),
            clock: crate::clock::Clock::system(),
            account_jobs_interval: Duration::from_secs(60),
            billing: crate::billing_config::BillingConfig::default(),
            billing_jobs_interval: None,
            site: crate::site_config::SiteConfig::default(),
        }
    }

    /// Validates the flags. Returns the config and, in dev mode, the tokens it generated.
    pub fn from_args(args: &Args) -> Result<(Config, GeneratedTokens), ConfigError> {
        let mut generated = GeneratedTokens::default();
        let token = match args.admin_token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => {
                if t.len() < 16 {
                    return Err(ConfigError::WeakAdminToken);
                }
                t.to_owned()
            }
            _ if args.dev => generated.admin.insert(secrets::random_token(24)).clone(),
            _ => return Err(ConfigError::MissingAdminToken),
        };
        let internal = match args.internal_token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => {
                if t.len() < 16 {
                    return Err(ConfigError::WeakInternalToken);
                }
                t.to_owned()
            }
            _ if args.dev => generated.internal.insert(secrets::random_token(24)).clone(),
            _ => return Err(ConfigError::MissingInternalToken),
        };
        if args.live_poll_ms == 0 {
            return Err(ConfigError::Zero("LIVE_POLL_MS"));
        }
        if args.db_max_connections == 0 {
            return Err(ConfigError::Zero("DB_MAX_CONNECTIONS"));
        }
        if args.grpc_timeout_secs == 0 {
            return Err(ConfigError::Zero("GRPC_TIMEOUT_SECS"));
        }
        if args.outbox_max_attempts == 0 {
            return Err(ConfigError::Zero("OUTBOX_MAX_ATTEMPTS"));
        }
        if args.outbox_lease_secs == 0 {
            return Err(ConfigError::Zero("OUTBOX_LEASE_SECS"));
        }
        if args.outbox_poll_ms == 0 {
            return Err(ConfigError::Zero("OUTBOX_POLL_MS"));
        }
        if args.campaign_rate_per_min == 0 {
            return Err(ConfigError::Zero("CAMPAIGN_RATE_PER_MIN"));
        }
        if args.campaign_poll_ms == 0 {
            return Err(ConfigError::Zero("CAMPAIGN_POLL_MS"));
        }
        let operator_email = match args.operator_email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(
                crate::domain::Email::parse(e)
                    .map_err(|_| ConfigError::OperatorEmail(e.to_owned()))?
                    .as_str()
                    .to_owned(),
            ),
        };
        let public_url = match args.public_url.as_deref().map(str::trim) {
            Some(u) if !u.is_empty() => public_url(u)?,
            _ if args.dev => DEV_PUBLIC_URL.to_owned(),
            _ => return Err(ConfigError::MissingPublicUrl),
        };
        let launch_code = CodeName::lookup(&args.launch_code)
            .map_err(|e| ConfigError::LaunchCode(e.to_string()))?;
        let billing = args.billing.validate()?;
        let site = args.site.validate()?;
        let mut config = Config::new(args.database_url.clone(), token);
        config.campaigns.rate_per_min = args.campaign_rate_per_min;
        config.campaigns.poll_interval = Duration::from_millis(args.campaign_poll_ms);
        match args.link_secret.as_deref().map(str::trim) {
            Some(secret) if !secret.is_empty() => {
                if secret.len() < 32 {
                    return Err(ConfigError::WeakLinkSecret);
                }
                config.campaigns.link_secret = secret.as_bytes().to_vec();
            }
            _ => {}
        }
        config.billing = billing;
        config.site = site;
        config.billing_jobs_interval = (args.billing.job_interval_secs > 0)
            .then(|| Duration::from_secs(args.billing.job_interval_secs));
        config.metrics_listen = args.metrics_listen;
        config.internal_token = Some(InternalToken::new(internal));
        config.launch_code = launch_code;
        config.live_poll_interval = Duration::from_millis(args.live_poll_ms);
        config.read_cache_ttl = Duration::from_millis(args.read_cache_ms);
        config.pool.max_connections = args.db_max_connections;
        config.grpc.request_timeout = Duration::from_secs(args.grpc_timeout_secs);
        config.mail = MailConfig {
            smtp_url: args.smtp_url.clone().filter(|u| !u.trim().is_empty()),
            from: args.mail_from.clone(),
            operator_email,
            public_url,
            max_attempts: args.outbox_max_attempts,
            retry_base: Duration::from_millis(args.outbox_retry_base_ms.max(1)),
            lease: Duration::from_secs(args.outbox_lease_secs),
            poll_interval: Duration::from_millis(args.outbox_poll_ms),
            batch_size: 20,
        };
        Ok((config, generated))
    }
}

/// Checks the public URL (`http(s)://host…`) and drops trailing slashes.
fn public_url(url: &str) -> Result<String, ConfigError> {
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    match host {
        Some(h) if !h.is_empty() && !url.chars().any(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::BadPublicUrl(url.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec![
            "promo-service",
            "--admin-token",
            "admin-token-0123456789",
            "--internal-token",
            "internal-token-0123456789",
        ];
        argv.extend_from_slice(extra);
        let args = Args::try_parse_from(argv).unwrap();
        Config::from_args(&args).map(|(c, _)| c)
    }

    #[test]
    fn public_url_is_required_unless_dev() {
        assert!(matches!(parse(&[]), Err(ConfigError::MissingPublicUrl)));
        assert!(matches!(
            parse(&["--public-url", " "]),
            Err(ConfigError::MissingPublicUrl)
        ));
        let dev = parse(&["--dev"]).map(|c| c.mail.public_url);
        assert_eq!(dev.ok().as_deref(), Some(DEV_PUBLIC_URL));
        let set = parse(&["--public-url", "https://api.iafactory.dz/"]).map(|c| c.mail.public_url);
        assert_eq!(set.ok().as_deref(), Some("https://api.iafactory.dz"));
        for bad in [
            "api.iafactory.dz",
            "ftp://x",
            "https://",
            "https:///x",
            "http://a b",
        ] {
            assert!(
                matches!(
                    parse(&["--public-url", bad]),
                    Err(ConfigError::BadPublicUrl(_))
                ),
                "{bad}"
            );
        }
        assert!(
            ConfigError::MissingPublicUrl
                .to_string()
                .contains("PUBLIC_URL"),
            "the error names the setting"
        );
    }
}
