//! Configuration: the library's [`Config`] and the binary's flags ([`Args`], each with an
//! environment variable), validated at start with errors that name the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use iafactory::telemetry::LogFormat;

use crate::ratelimit::RateSpec;

pub use iafactory::secret::{AdminToken, InternalToken};

/// What the library runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// gRPC URL of promo-service (`http://host:50051`).
    pub promo_url: String,
    /// gRPC URL of llm-gateway (`http://host:50052`).
    pub llm_url: String,
    /// Origins allowed by CORS (`https://iafactory.dz`); empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Time limit to produce a response head (every route but chat completions).
    pub request_timeout: Duration,
    /// Time limit of a chat completion (to the whole answer, or to the first streamed piece).
    pub chat_timeout: Duration,
    /// Time limit to open a connection to a backend; a dead backend is reported (503) this fast.
    pub backend_connect_timeout: Duration,
    /// HTTP/2 connections opened to each backend (calls are spread round-robin).
    pub backend_connections: usize,
    /// Per-IP limit of `POST /api/promo/validate`; `None`: unlimited.
    pub validate_rate: Option<RateSpec>,
    /// Per-IP limit of `POST /api/promo/signup`; `None`: unlimited.
    pub signup_rate: Option<RateSpec>,
    /// Per-IP limit of `POST /api/evenements` (the landing page's counted events); `None`:
    /// unlimited.
    pub event_rate: Option<RateSpec>,
    /// Per-IP budget of refused API keys on `/v1` (see `ratelimit::AuthFailures`); `None`: none.
    pub auth_failure_rate: Option<RateSpec>,
    /// Header holding the client address when behind a trusted proxy (`x-forwarded-for`).
    pub client_ip_header: Option<HeaderName>,
    /// Folder served at `/api-packages/` instead of the landing page built into the binary.
    pub static_dir: Option<PathBuf>,
    /// Token for `/api/gateway/providers` (promo admin routes are checked by promo-service).
    pub admin_token: Option<AdminToken>,
    /// Sent to llm-gateway's `ListProviders` (behind `/api/gateway/providers` and the public
    /// `/api/platform/status`); `None`: those two routes answer 503.
    pub internal_token: Option<InternalToken>,
    /// Requests served at once before new ones are shed with 503.
    pub max_in_flight: usize,
    /// Interval of keep-alive comments on server-sent event streams.
    pub sse_keep_alive: Duration,
    /// Time a client has to send a request's headers (slow-header attacks), and a new
    /// connection to start its first request (idle sockets, partial protocol prefaces).
    pub header_read_timeout: Duration,
    /// Server-sent event streams open at once (live counter, streamed chat) before new ones are
    /// refused with 503.
    pub max_event_streams: usize,
    /// Answer `/api/promo/{code}/remaining` from the live counters (see `live`).
    pub remaining_cache: bool,
    /// Show customers what a call cost us upstream (USD): `x-iaf-cost-usd`, `iaf.cost_usd`,
    /// `/v1/usage`'s `cost_usd` and `/v1/models`' route prices. Off: our cost price stays in the
    /// operator's views and metrics; customers see tokens against their quota.
    pub show_upstream_cost: bool,
    /// Dinars per US dollar, in thousandths (`135.5` → 135 500): converts upstream costs to DZD
    /// in the console (a customer's margin, the providers' cost).
    pub usd_dzd_rate_milli: u64,
    /// A connection with no request in progress for this long is closed (keep-alive idle).
    pub idle_timeout: Duration,
    /// Client connections open at once; past it new ones get a bare 503 and are closed.
    pub max_connections: usize,
}

impl Config {
    /// Defaults suited to tests and local runs, for the given backend URLs.
    pub fn new(promo_url: impl Into<String>, llm_url: impl Into<String>) -> Config {
        Config {
            promo_url: promo_url.into(),
            llm_url: llm_url.into(),
            cors_origins: Vec::new(),
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            chat_timeout: Duration::from_secs(120),
            backend_connect_timeout: Duration::from_secs(1),
            backend_connections: 2,
            validate_rate: RateSpec::new(60, 20),
            signup_rate: RateSpec::new(10, 5),
            event_rate: RateSpec::new(30, 10),
            auth_failure_rate: RateSpec::new(60, 30),
            client_ip_header: None,
            static_dir: None,
            admin_token: None,
            internal_token: None,
            max_in_flight: 10_000,
            sse_keep_alive: Duration::from_secs(15),
            remaining_cache: false,
            show_upstream_cost: false,
            usd_dzd_rate_milli: DEFAULT_USD_DZD_RATE_MILLI,
            max_event_streams: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 15_000,
        }
    }
}

/// `USD_DZD_RATE`'s default, thousandths of a dinar per dollar.
pub const DEFAULT_USD_DZD_RATE_MILLI: u64 = 135_000;

/// `135`, `135.5`, `135.125` → thousandths of a dinar (135 000, 135 500, 135 125); between 1
/// and 100 000 dinars per dollar.
fn parse_rate(s: &str) -> Result<u64, String> {
    let bad =
        || format!("{s:?}: dinars per dollar, a number such as 135 or 135.5 (at most 3 decimals)");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty()
        || frac.len() > 3
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
    let milli = whole
        .checked_mul(1000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if !(1000..=100_000_000).contains(&milli) {
        return Err(format!("{s:?}: between 1 and 100000 dinars per dollar"));
    }
    Ok(milli)
}

/// Flags and environment of the `gateway-rest` binary.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "gateway-rest",
    version,
    about = "IAFactory REST edge: browser JSON and the OpenAI-compatible API, over gRPC"
)]
pub struct Args {
    /// Address to listen on for HTTP.
    #[arg(
        long,
        global = true,
        env = "GATEWAY_REST_ADDR",
        default_value = "0.0.0.0:8180"
    )]
    pub listen: SocketAddr,

    /// gRPC URL of promo-service; several replicas: comma-separated URLs, balanced.
    #[arg(
        long,
        env = "PROMO_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub promo_service_url: String,

    /// gRPC URL of llm-gateway; several replicas: comma-separated URLs, balanced.
    #[arg(
        long,
        env = "LLM_GATEWAY_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub llm_gateway_url: String,

    /// Comma-separated origins allowed by CORS (the landing page's origin); empty: none.
    #[arg(long, env = "CORS_ORIGINS", default_value = "", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Time limit of a request (to its response head), in seconds.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,

    /// Time limit of a chat completion, in seconds.
    #[arg(long, env = "CHAT_TIMEOUT_SECS", default_value_t = 120)]
    pub chat_timeout_secs: u64,

    /// Time limit to connect to a backend, in milliseconds.
    #[arg(long, env = "BACKEND_CONNECT_TIMEOUT_MS", default_value_t = 1000)]
    pub backend_connect_timeout_ms: u64,

    /// HTTP/2 connections per backend.
    #[arg(long, env = "BACKEND_CONNECTIONS", default_value_t = 2)]
    pub backend_connections: usize,

    /// Per-IP requests per minute on POST /api/promo/validate (0: unlimited).
    #[arg(long, env = "RATE_VALIDATE_PER_MIN", default_value_t = 60)]
    pub rate_validate_per_min: u32,

    /// Burst allowed on POST /api/promo/validate.
    #[arg(long, env = "RATE_VALIDATE_BURST", default_value_t = 20)]
    pub rate_validate_burst: u32,

    /// Per-IP requests per minute on POST /api/promo/signup (0: unlimited).
    #[arg(long, env = "RATE_SIGNUP_PER_MIN", default_value_t = 10)]
    pub rate_signup_per_min: u32,

    /// Burst allowed on POST /api/promo/signup.
    #[arg(long, env = "RATE_SIGNUP_BURST", default_value_t = 5)]
    pub rate_signup_burst: u32,

    /// Per-IP counted page events per minute on POST /api/evenements (0: unlimited). A visit
    /// sends two or three; past the budget events are refused, so one client cannot inflate
    /// the funnel cheaply.
    #[arg(long, env = "RATE_EVENTS_PER_MIN", default_value_t = 30)]
    pub rate_events_per_min: u32,

    /// Burst allowed on POST /api/evenements.
    #[arg(long, env = "RATE_EVENTS_BURST", default_value_t = 10)]
    pub rate_events_burst: u32,

    /// Per-IP refused API keys per minute on /v1 before the client gets 429 (0: unlimited).
    #[arg(long, env = "RATE_AUTH_FAILURES_PER_MIN", default_value_t = 60)]
    pub rate_auth_failures_per_min: u32,

    /// Refused API keys allowed at once on /v1.
    #[arg(long, env = "RATE_AUTH_FAILURES_BURST", default_value_t = 30)]
    pub rate_auth_failures_burst: u32,

    /// Header carrying the client address, set by a trusted reverse proxy (`x-forwarded-for`).
    /// Leave empty when clients connect directly: the header would be theirs to forge.
    #[arg(long, env = "CLIENT_IP_HEADER", default_value = "")]
    pub client_ip_header: String,

    /// Folder to serve at /api-packages/ instead of the landing page built into the binary (to
    /// change the page without a rebuild); unset: the built-in page. A folder that does not exist
    /// stops the start.
    #[arg(long, env = "STATIC_DIR")]
    pub static_dir: Option<PathBuf>,

    /// Token required by /api/gateway/providers (the promo admin routes forward the caller's token
    /// to promo-service, which checks it). Unset: that route is refused.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Token shared by the platform's services (the same as promo-service's and llm-gateway's),
    /// sent to llm-gateway to read provider status. Unset: /api/gateway/providers and
    /// /api/platform/status answer 503.
    #[arg(long, env = "INTERNAL_TOKEN", hide_env_values = true)]
    pub internal_token: Option<String>,

    /// Requests served at once before shedding with 503.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 10_000)]
    pub max_in_flight: usize,

    /// Seconds a client has to send a request's headers before the connection is closed.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Server-sent event streams open at once before new ones are refused with 503.
    #[arg(long, env = "MAX_EVENT_STREAMS", default_value_t = 10_000)]
    pub max_event_streams: usize,

    /// Seconds a connection may stay open with no request in progress (keep-alive idle).
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 60)]
    pub idle_timeout_secs: u64,

    /// Client connections open at once; past it, new ones get a 503 and are closed (keep it
    /// below the open-files limit, which the process raises to its hard limit at start).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 15_000)]
    pub max_connections: usize,

    /// Answer /api/promo/{code}/remaining from memory, kept current by promo-service's live
    /// counter stream (as fresh as the SSE counter; writes through this gateway are read back).
    #[arg(long, env = "REMAINING_CACHE", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub remaining_cache: bool,

    /// Show customers the upstream cost of their calls in US dollars (x-iaf-cost-usd header,
    /// iaf.cost_usd, /v1/usage cost_usd, /v1/models route prices). Off by default: that is the
    /// platform's cost price, not what the customer pays.
    #[arg(long, env = "SHOW_UPSTREAM_COST", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub show_upstream_cost: bool,

    /// Dinars (DZD) per US dollar, up to 3 decimals (`135.5`): the console converts upstream
    /// costs, which providers bill in USD, at this rate (a customer's cost and margin, the
    /// providers' cost per day). Set it to the rate your bank actually charges.
    #[arg(long, env = "USD_DZD_RATE", default_value = "135", value_parser = parse_rate)]
    pub usd_dzd_rate: u64,

    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,

    /// Without a subcommand: run the service.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands of the `gateway-rest` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Container health check: exit 0 when the running service is ready (`/readyz` 200), 1 otherwise.
    ///
    /// Asks the gateway-rest listening on `--listen` / `GATEWAY_REST_ADDR` (`0.0.0.0` and `[::]` mean
    /// loopback) for `GET /readyz` within 3 s and prints one line; exit 1 on a 503 (a backend not
    /// SERVING), nothing listening or no answer. In compose: `["CMD", "gateway-rest", "healthcheck"]`.
    Healthcheck,
}

/// A configuration mistake, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("CORS_ORIGINS: {0:?} is not a valid origin (expected scheme://host[:port])")]
    CorsOrigin(String),
    #[error("CLIENT_IP_HEADER: {0:?} is not a valid header name")]
    ClientIpHeader(String),
    #[error("{0} must be greater than 0")]
    Zero(&'static str),
    #[error("ADMIN_TOKEN is too short: use at least 16 characters")]
    WeakAdminToken,
    #[error("INTERNAL_TOKEN is too short: use at least 16 characters")]
    WeakInternalToken,
}

impl Args {
    /// Validates the flags into a [`Config`].
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let mut config = Config::new(self.promo_service_url, self.llm_gateway_url);
        config.cors_origins = self
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| {
                let valid =
                    (o.starts_with("http://") || o.starts_with("https://")) && !o.ends_with('/');
                HeaderValue::from_str(o)
                    .ok()
                    .filter(|_| valid)
                    .ok_or_else(|| ConfigError::CorsOrigin(o.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        let nonzero = |v: u64, name| {
            if v == 0 {
                Err(ConfigError::Zero(name))
            } else {
                Ok(v)
            }
        };
        config.body_limit =
            usize::try_from(nonzero(self.body_limit_bytes as u64, "BODY_LIMIT_BYTES")?)
                .unwrap_or(usize::MAX);
        config.request_timeout =
            Duration::from_secs(nonzero(self.request_timeout_secs, "REQUEST_TIMEOUT_SECS")?);
        config.chat_timeout =
            Duration::from_secs(nonzero(self.chat_timeout_secs, "CHAT_TIMEOUT_SECS")?);
        config.backend_connect_timeout = Duration::from_millis(nonzero(
            self.backend_connect_timeout_ms,
            "BACKEND_CONNECT_TIMEOUT_MS",
        )?);
        config.backend_connections =
            nonzero(self.backend_connections as u64, "BACKEND_CONNECTIONS")? as usize;
        config.max_in_flight = nonzero(self.max_in_flight as u64, "MAX_IN_FLIGHT")? as usize;
        config.header_read_timeout = Duration::from_secs(nonzero(
            self.header_read_timeout_secs,
            "HEADER_READ_TIMEOUT_SECS",
        )?);
        config.max_event_streams =
            nonzero(self.max_event_streams as u64, "MAX_EVENT_STREAMS")? as usize;
        config.idle_timeout =
            Duration::from_secs(nonzero(self.idle_timeout_secs, "IDLE_TIMEOUT_SECS")?);
        config.max_connections = nonzero(self.max_connections as u64, "MAX_CONNECTIONS")? as usize;
        config.validate_rate = RateSpec::new(self.rate_validate_per_min, self.rate_validate_burst);
        config.signup_rate = RateSpec::new(self.rate_signup_per_min, self.rate_signup_burst);
        config.event_rate = RateSpec::new(self.rate_events_per_min, self.rate_events_burst);
        config.auth_failure_rate = RateSpec::new(
            self.rate_auth_failures_per_min,
            self.rate_auth_failures_burst,
        );
        let header = self.client_ip_header.trim();
        config.client_ip_header = if header.is_empty() {
            None
        } else {
            Some(
                HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes())
                    .map_err(|_| ConfigError::ClientIpHeader(header.to_owned()))?,
            )
        };
        config.static_dir = self.static_dir;
        config.remaining_cache = self.remaining_cache;
        config.show_upstream_cost = self.show_upstream_cost;
        config.usd_dzd_rate_milli = self.usd_dzd_rate;
        config.admin_token = match self.admin_token.filter(|t| !t.is_empty()) {
            Some(t) if t.len() < 16 => return Err(ConfigError::WeakAdminToken),
            Some(t) => Some(AdminToken::new(t)),
            None => None,
        };
        config.internal_token = match self.internal_token.filter(|t| !t.trim().is_empty()) {
            Some(t) if t.trim().len() < 16 => return Err(ConfigError::WeakInternalToken),
            Some(t) => Some(InternalToken::new(t.trim())),
            None => None,
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut all = vec!["gateway-rest"];
        all.extend_from_slice(args);
        Args::try_parse_from(all)
            .map_err(|_| ConfigError::Zero("parse"))?
            .into_config()
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse(&[]).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(c.cors_origins.is_empty());
        assert_eq!(c.body_limit, 1024 * 1024);
        assert!(c.validate_rate.is_some() && c.signup_rate.is_some());
        assert!(c.admin_token.is_none());
        assert!(!c.remaining_cache);
        let c = parse(&[
            "--cors-origins",
            "https://iafactory.dz, http://localhost:3000",
            "--rate-validate-per-min",
            "0",
            "--client-ip-header",
            "X-Forwarded-For",
            "--admin-token",
            "0123456789abcdef",
            "--remaining-cache",
        ])
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.cors_origins.len(), 2);
        assert!(c.validate_rate.is_none());
        assert_eq!(
            c.client_ip_header.as_ref().map(HeaderName::as_str),
            Some("x-forwarded-for")
        );
        assert!(
            c.admin_token
                .as_ref()
                .is_some_and(|t| t.matches("0123456789abcdef"))
        );
        assert!(
            !format!("{c:?}").contains("0123456789abcdef"),
            "token in Debug"
        );
        assert!(c.remaining_cache);
    }

    #[test]
    fn mistakes_name_the_setting() {
        let err = |args: &[&str]| parse(args).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(&["--cors-origins", "iafactory.dz"]).contains("CORS_ORIGINS"));
        assert!(err(&["--cors-origins", "https://iafactory.dz/"]).contains("CORS_ORIGINS"));
        assert!(err(&["--request-timeout-secs", "0"]).contains("REQUEST_TIMEOUT_SECS"));
        assert!(err(&["--client-ip-header", "bad header"]).contains("CLIENT_IP_HEADER"));
        assert!(err(&["--admin-token", "short"]).contains("ADMIN_TOKEN"));
        assert!(err(&["--internal-token", "short"]).contains("INTERNAL_TOKEN"));
        assert!(err(&["--max-event-streams", "0"]).contains("MAX_EVENT_STREAMS"));
    }

    #[test]
    fn the_dollar_rate_is_read_in_thousandths_of_a_dinar() {
        assert_eq!(parse_rate("135"), Ok(135_000));
        assert_eq!(parse_rate("135.5"), Ok(135_500));
        assert_eq!(parse_rate(" 240.125 "), Ok(240_125));
        for bad in [
            "", "abc", "1.2345", "-3", "0", "0.5", "1e3", "135,5", ".5", "200000",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        let c = parse(&["--usd-dzd-rate", "250.25"]).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.usd_dzd_rate_milli, 250_250);
        assert_eq!(
            parse(&[]).map(|c| c.usd_dzd_rate_milli).ok(),
            Some(DEFAULT_USD_DZD_RATE_MILLI)
        );
    }
}
