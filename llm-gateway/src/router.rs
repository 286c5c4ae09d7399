//! Routing: from a public model name to an answer, across the providers that serve it.
//!
//! For each call the router orders the model's configured routes by policy (catalogue order,
//! lowest moving-average latency of the route — provider and model —, lowest price), then tries
//! them in turn:
//! - a provider whose circuit breaker is open is skipped;
//! - a transient failure (429, 5xx, connection error) is retried on the same provider with
//!   exponential backoff and full jitter, waiting at least the provider's `Retry-After` (a longer
//!   `Retry-After` than [`RoutingSettings::max_retry_after`] sends the call to the next provider
//!   instead of making the customer wait);
//! - a provider-level failure (wrong key, unknown model, malformed answer, timeout) goes to the
//!   next provider at once;
//! - a rejection of the request itself (upstream 400/413/422) is returned to the caller: another
//!   provider would reject it too, and it says nothing about the provider's health.
//!
//! Every attempt has its own timeout, and the whole call an overall deadline. Streams commit to
//! a provider at their first content token: before it, failures are retried like unary calls;
//! after it, nothing is retried (the client already holds part of an answer).
//!
//! The circuit breaker of each provider opens after `breaker_failure_threshold` consecutive
//! failures, lets one trial call through after `breaker_cooldown` (half-open), and closes on its
//! success or reopens on its failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use rand::Rng;
use tracing::Instrument;

use crate::catalog::{Catalog, Policy};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::providers::{
    self, ChatInput, Chunk, ChunkStream, Completion, FailureClass, Provider, ProviderError,
    mock::{MOCK_PROVIDER, Mock},
};

/// Retry, timeout and breaker knobs.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Tries per provider for transient failures (1 = no retry).
    pub max_attempts_per_provider: u32,
    /// First backoff delay; doubles on each retry.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// A provider asking to wait longer than this (`Retry-After`) is left for the next one.
    pub max_retry_after: Duration,
    /// Budget of one upstream attempt (for streams: until the first token).
    pub attempt_timeout: Duration,
    /// Budget of the whole call, retries and fallbacks included (for streams: until the first
    /// token).
    pub overall_timeout: Duration,
    /// Longest silence allowed between two chunks of a committed stream.
    pub stream_idle_timeout: Duration,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_failure_threshold: u32,
    /// How long an open circuit stays open before a trial call.
    pub breaker_cooldown: Duration,
    /// Weight of the newest sample in the latency moving average (0..1).
    pub ewma_alpha: f64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings {
            max_attempts_per_provider: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(60),
            overall_timeout: Duration::from_secs(120),
            stream_idle_timeout: Duration::from_secs(60),
            breaker_failure_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            ewma_alpha: 0.2,
        }
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

/// Circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// A snapshot of a provider's health for status pages and metrics.
#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    pub state: CircuitState,
    pub ewma_latency_ms: f64,
    pub requests: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub last_error: String,
    pub last_error_at_ms: i64,
}

#[derive(Debug)]
struct HealthState {
    state: CircuitState,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
    consecutive_failures: u32,
    requests: u64,
    failures: u64,
    ewma_ms: f64,
    last_error: String,
    last_error_at_ms: i64,
}

/// Breaker and statistics of one provider (shared by every call in this process).
#[derive(Debug)]
pub struct Health {
    inner: Mutex<HealthState>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            inner: Mutex::new(HealthState {
                state: CircuitState::Closed,
                opened_at: None,
                probe_started: None,
                consecutive_failures: 0,
                requests: 0,
                failures: 0,
                ewma_ms: 0.0,
                last_error: String::new(),
                last_error_at_ms: 0,
            }),
        }
    }
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, HealthState> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May a call go to this provider now? Open → no until the cool-down ends, then one trial
    /// call (half-open). A trial that never reported back is replaced after another cool-down.
    pub fn try_acquire(&self, s: &RoutingSettings) -> bool {
        let mut h = self.lock();
        let now = Instant::now();
        match h.state {
            CircuitState::Closed => true,
            CircuitState::Open => {
                if h.opened_at
                    .is_none_or(|t| now.duration_since(t) >= s.breaker_cooldown)
                {
                    h.state = CircuitState::HalfOpen;
                    h.probe_started = Some(now);
                    true
                } else {
                    false
                }
            }
            CircuitState::HalfOpen => {
                if h.probe_started
                    .is_none_or(|t| now.duration_since(t) >= s.breaker_cooldown)
                {
                    h.probe_started = Some(now);
                    true
                } else {
                    false
                }
            }
        }
    }

    pub fn on_success(&self, latency: Duration, s: &RoutingSettings) {
        let mut h = self.lock();
        h.requests += 1;
        h.consecutive_failures = 0;
        h.state = CircuitState::Closed;
        h.opened_at = None;
        h.probe_started = None;
        let ms = latency.as_secs_f64() * 1000.0;
        h.ewma_ms = if h.ewma_ms == 0.0 {
            ms
        } else {
            s.ewma_alpha * ms + (1.0 - s.ewma_alpha) * h.ewma_ms
        };
    }

    /// The provider answered but refused the request (client error): alive, no latency sample.
    pub fn on_neutral(&self) {
        let mut h = self.lock();
        h.requests += 1;
        h.consecutive_failures = 0;
        if h.state == CircuitState::HalfOpen {
            h.state = CircuitState::Closed;
            h.opened_at = None;
            h.probe_started = None;
        }
    }

    pub fn on_failure(&self, err: &ProviderError, s: &RoutingSettings) {
        let mut h = self.lock();
        h.requests += 1;
        h.failures += 1;
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.last_error = err.kind_label();
        h.last_error_at_ms = iafactory::db::now_millis();
        let trip = h.state == CircuitState::HalfOpen
            || (h.state == CircuitState::Closed
                && h.consecutive_failures >= s.breaker_failure_threshold.max(1));
        if trip {
            if h.state != CircuitState::Open {
                tracing::warn!(
                    failures = h.consecutive_failures,
                    "circuit opened after consecutive failures"
                );
            }
            h.state = CircuitState::Open;
            h.opened_at = Some(Instant::now());
            h.probe_started = None;
        }
    }

    /// Time until an open circuit lets a trial call through (None when not open).
    pub fn open_remaining(&self, s: &RoutingSettings) -> Option<Duration> {
        let h = self.lock();
        match (h.state, h.opened_at) {
            (CircuitState::Open, Some(t)) => Some(s.breaker_cooldown.saturating_sub(t.elapsed())),
            _ => None,
        }
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let h = self.lock();
        HealthSnapshot {
            state: h.state,
            ewma_latency_ms: h.ewma_ms,
            requests: h.requests,
            failures: h.failures,
            consecutive_failures: h.consecutive_failures,
            last_error: h.last_error.clone(),
            last_error_at_ms: h.last_error_at_ms,
        }
    }
}

/// One provider as the router sees it.
pub struct ProviderHandle {
    pub name: String,
    /// Wire format label (`openai`, `anthropic`, `gemini`, `cohere`, `mock`).
    pub kind: &'static str,
    pub base_url: String,
    pub configured: bool,
    pub client: Arc<dyn Provider>,
    pub health: Health,
}

/// One way to serve a public model.
pub struct Route {
    pub provider: Arc<ProviderHandle>,
    pub upstream_model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    /// Moving average of this route's successful latency in ms (bits of an f64; 0 = unmeasured).
    /// Per route rather than per provider: one provider can be fast for a small model and slow
    /// for a large one.
    ewma_ms_bits: AtomicU64,
}

impl Route {
    pub fn new(
        provider: Arc<ProviderHandle>,
        upstream_model: String,
        input_usd_per_mtok: f64,
        output_usd_per_mtok: f64,
    ) -> Route {
        Route {
            provider,
            upstream_model,
            input_usd_per_mtok,
            output_usd_per_mtok,
            ewma_ms_bits: AtomicU64::new(0),
        }
    }

    /// The route's latency moving average in ms (0 before its first success).
    pub fn ewma_latency_ms(&self) -> f64 {
        f64::from_bits(self.ewma_ms_bits.load(Ordering::Relaxed))
    }

    fn observe_latency(&self, latency: Duration, alpha: f64) {
        let ms = latency.as_secs_f64() * 1000.0;
        // A lost update under a race only drops one sample of a moving average.
        let old = self.ewma_latency_ms();
        let new = if old == 0.0 {
            ms
        } else {
            alpha * ms + (1.0 - alpha) * old
        };
        self.ewma_ms_bits.store(new.to_bits(), Ordering::Relaxed);
    }

    /// Cost of `prompt` + `completion` tokens in US dollars.
    pub fn cost_usd(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.input_usd_per_mtok + completion as f64 * self.output_usd_per_mtok)
            / 1_000_000.0
    }
}

/// A public model.
pub struct ModelEntry {
    pub name: String,
    pub policy: Policy,
    /// Every route in catalogue order, configured or not.
    pub routes: Vec<Arc<Route>>,
}

/// A successful call and where it was served.
pub struct Served<T> {
    pub value: T,
    pub route: Arc<Route>,
    pub attempts: u32,
}

/// A stream committed to one provider: the chunks read before committing, then the rest.
pub struct CommittedStream {
    pub first: Vec<Chunk>,
    pub rest: ChunkStream,
}

pub struct Router {
    pub providers: Vec<Arc<ProviderHandle>>,
    models: HashMap<String, Arc<ModelEntry>>,
    model_order: Vec<String>,
    /// Set when no provider is configured: the offline mock serves every model.
    pub mock: Option<Arc<ProviderHandle>>,
    pub settings: RoutingSettings,
    pub metrics: Arc<Metrics>,
}

impl Router {
    /// Builds clients for every configured provider. `http` is shared (one connection pool).
    pub fn new(
        catalog: &Catalog,
        settings: RoutingSettings,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
    ) -> Router {
        let providers: Vec<Arc<ProviderHandle>> = catalog
            .providers
            .iter()
            .map(|p| {
                Arc::new(ProviderHandle {
                    name: p.name.clone(),
                    kind: p.kind.as_str(),
                    base_url: p.base_url.clone(),
                    configured: p.configured(),
                    client: providers::build(p, http.clone()),
                    health: Health::default(),
                })
            })
            .collect();
        let by_name: HashMap<&str, Arc<ProviderHandle>> = providers
            .iter()
            .map(|p| (p.name.as_str(), p.clone()))
            .collect();
        let mut models = HashMap::new();
        let mut model_order = Vec::new();
        for m in &catalog.models {
            let routes = m
                .routes
                .iter()
                .filter_map(|r| {
                    by_name.get(r.provider.as_str()).map(|p| {
                        Arc::new(Route::new(
                            p.clone(),
                            r.model.clone(),
                            r.input_usd_per_mtok,
                            r.output_usd_per_mtok,
                        ))
                    })
                })
                .collect();
            model_order.push(m.name.clone());
            models.insert(
                m.name.clone(),
                Arc::new(ModelEntry {
                    name: m.name.clone(),
                    policy: m.policy,
                    routes,
                }),
            );
        }
        let mock = catalog.nothing_configured().then(|| {
            Arc::new(ProviderHandle {
                name: MOCK_PROVIDER.to_owned(),
                kind: "mock",
                base_url: "offline".to_owned(),
                configured: true,
                client: Arc::new(Mock),
                health: Health::default(),
            })
        });
        Router {
            providers,
            models,
            model_order,
            mock,
            settings,
            metrics,
        }
    }

    pub fn model(&self, name: &str) -> Option<&Arc<ModelEntry>> {
        self.models.get(name)
    }

    /// Models in catalogue order.
    pub fn models(&self) -> impl Iterator<Item = &Arc<ModelEntry>> {
        self.model_order.iter().filter_map(|n| self.models.get(n))
    }

    /// The routes to try, in order.
    pub fn plan(&self, model: &ModelEntry, policy: Option<Policy>) -> Vec<Arc<Route>> {
        if let Some(mock) = &self.mock {
            return vec![Arc::new(Route::new(
                mock.clone(),
                format!("mock/{}", model.name),
                0.0,
                0.0,
            ))];
        }
        let mut routes: Vec<Arc<Route>> = model
            .routes
            .iter()
            .filter(|r| r.provider.configured)
            .cloned()
            .collect();
        match policy.unwrap_or(model.policy) {
            Policy::Fallback => {}
            Policy::LowestCost => routes.sort_by(|a, b| {
                (a.input_usd_per_mtok + a.output_usd_per_mtok)
                    .total_cmp(&(b.input_usd_per_mtok + b.output_usd_per_mtok))
            }),
            Policy::LowestLatency => {
                // Unmeasured routes (0) come first so that each gets measured.
                let mut keyed: Vec<(f64, Arc<Route>)> = routes
                    .into_iter()
                    .map(|r| (r.ewma_latency_ms(), r))
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                routes = keyed.into_iter().map(|(_, r)| r).collect();
            }
        }
        routes
    }

    fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let s = &self.settings;
        let exp = s
            .backoff_base
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
            .min(s.backoff_max);
        // Full jitter over the upper half keeps retries of many clients apart.
        let half = exp / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_micros(
                rand::rng().random_range(0..=u64::try_from(half.as_micros()).unwrap_or(u64::MAX)),
            )
        };
        (half + jitter).max(retry_after.unwrap_or(Duration::ZERO))
    }

    /// Runs `attempt` over the plan with retries, fallbacks, breakers and timeouts.
    async fn run<'a, T>(
        &self,
        model: &ModelEntry,
        policy: Option<Policy>,
        attempt: impl Fn(Arc<Route>) -> BoxFuture<'a, Result<T, ProviderError>>,
    ) -> Result<Served<T>, GatewayError> {
        let s = &self.settings;
        let deadline = deadline_after(s.overall_timeout);
        let plan = self.plan(model, policy);
        if plan.is_empty() {
            return Err(GatewayError::Unavailable(format!(
                "no configured provider serves model {:?}",
                model.name
            )));
        }
        let mut attempts = 0u32;
        let mut errors: Vec<String> = Vec::new();
        let mut only_timeouts = true;
        let mut skipped_open = 0usize;
        let mut reopen_in: Option<Duration> = None;
        'routes: for route in plan {
            let p = &route.provider;
            for try_no in 0..s.max_attempts_per_provider.max(1) {
                if !p.health.try_acquire(s) {
                    if try_no == 0 {
                        skipped_open += 1;
                        if let Some(d) = p.health.open_remaining(s) {
                            reopen_in = Some(reopen_in.map_or(d, |r| r.min(d)));
                        }
                        tracing::debug!(provider = %p.name, "circuit open, skipped");
                    }
                    continue 'routes;
                }
                let now = Instant::now();
                if now >= deadline {
                    break 'routes;
                }
                attempts += 1;
                let budget = s.attempt_timeout.min(deadline - now);
                let span = tracing::info_span!(
                    "upstream",
                    provider = %p.name,
                    model = %route.upstream_model,
                    attempt = attempts
                );
                let started = Instant::now();
                let result = tokio::time::timeout(budget, attempt(route.clone()))
                    .instrument(span)
                    .await;
                let err = match result {
                    Ok(Ok(value)) => {
                        p.health.on_success(started.elapsed(), s);
                        route.observe_latency(started.elapsed(), s.ewma_alpha);
                        self.metrics.attempt(&p.name, "ok", started.elapsed());
                        return Ok(Served {
                            value,
                            route,
                            attempts,
                        });
                    }
                    Ok(Err(e)) => e,
                    Err(_) => ProviderError::Timeout,
                };
                self.metrics
                    .attempt(&p.name, &err.kind_label(), started.elapsed());
                let class = err.class();
                if class == FailureClass::Client {
                    p.health.on_neutral();
                    let refusal = match &err {
                        ProviderError::Http { message, .. } => {
                            providers::UpstreamRefusal::parse(message)
                        }
                        other => providers::UpstreamRefusal {
                            message: other.to_string(),
                            code: None,
                            param: None,
                        },
                    };
                    return Err(GatewayError::UpstreamRejected {
                        message: refusal.message.chars().take(1000).collect(),
                        upstream_code: refusal.code,
                        param: refusal.param,
                    });
                }
                p.health.on_failure(&err, s);
                tracing::warn!(
                    provider = %p.name,
                    model = %route.upstream_model,
                    attempt = attempts,
                    error = %err,
                    "upstream attempt failed"
                );
                only_timeouts &= matches!(err, ProviderError::Timeout);
                errors.push(format!("{}: {}", p.name, err.kind_label()));
                if class == FailureClass::Fallback || try_no + 1 >= s.max_attempts_per_provider {
                    continue 'routes;
                }
                let retry_after = err.retry_after();
                if retry_after.is_some_and(|ra| ra > s.max_retry_after) {
                    continue 'routes;
                }
                let wait = self.backoff(try_no, retry_after);
                if Instant::now() + wait >= deadline {
                    continue 'routes;
                }
                tokio::time::sleep(wait).await;
            }
        }
        if errors.is_empty() && skipped_open > 0 {
            return Err(GatewayError::CircuitOpen {
                model: model.name.clone(),
                retry_after_secs: reopen_in.map_or(1, |d| d.as_secs().max(1)),
            });
        }
        if Instant::now() >= deadline || (only_timeouts && !errors.is_empty()) {
            return Err(GatewayError::UpstreamTimeout(errors.join("; ")));
        }
        Err(GatewayError::Upstream(errors.join("; ")))
    }

    /// A whole answer.
    pub async fn chat(
        &self,
        model: &ModelEntry,
        policy: Option<Policy>,
        input: &ChatInput,
    ) -> Result<Served<Completion>, GatewayError> {
        self.run(model, policy, |route: Arc<Route>| {
            Box::pin(async move {
                route
                    .provider
                    .client
                    .chat(&route.upstream_model, input)
                    .await
            })
        })
        .await
    }

    /// A stream, committed to a provider once its first content arrived.
    pub async fn stream(
        &self,
        model: &ModelEntry,
        policy: Option<Policy>,
        input: &ChatInput,
    ) -> Result<Served<CommittedStream>, GatewayError> {
        self.run(model, policy, |route: Arc<Route>| {
            Box::pin(async move {
                let mut rest = route
                    .provider
                    .client
                    .stream(&route.upstream_model, input)
                    .await?;
                let mut first = Vec::new();
                loop {
                    match rest.next().await {
                        Some(Ok(chunk)) => {
                            let commit = chunk.has_content() || chunk.finish_reason.is_some();
                            first.push(chunk);
                            if commit {
                                return Ok(CommittedStream { first, rest });
                            }
                        }
                        Some(Err(e)) => return Err(e),
                        None => {
                            return Err(ProviderError::StreamBroken(
                                "stream ended before any content".into(),
                            ));
                        }
                    }
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: u32, cooldown_ms: u64) -> RoutingSettings {
        RoutingSettings {
            breaker_failure_threshold: threshold,
            breaker_cooldown: Duration::from_millis(cooldown_ms),
            ..RoutingSettings::default()
        }
    }

    #[test]
    fn breaker_opens_half_opens_with_one_probe_and_reopens() {
        let s = settings(3, 40);
        let h = Health::default();
        let err = ProviderError::Http {
            status: 503,
            retry_after: None,
            message: String::new(),
        };
        for _ in 0..2 {
            assert!(h.try_acquire(&s));
            h.on_failure(&err, &s);
        }
        assert_eq!(h.snapshot().state, CircuitState::Closed);
        h.on_failure(&err, &s);
        assert_eq!(h.snapshot().state, CircuitState::Open);
        assert!(!h.try_acquire(&s), "open: refused");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.try_acquire(&s), "cool-down over: one probe");
        assert_eq!(h.snapshot().state, CircuitState::HalfOpen);
        assert!(!h.try_acquire(&s), "only one probe at a time");
        h.on_failure(&err, &s);
        assert_eq!(
            h.snapshot().state,
            CircuitState::Open,
            "failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.try_acquire(&s));
        h.on_success(Duration::from_millis(10), &s);
        let snap = h.snapshot();
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.consecutive_failures, 0);
        assert_eq!((snap.requests, snap.failures), (5, 4));
        assert_eq!(snap.last_error, "http_503");
    }

    #[test]
    fn success_resets_the_failure_run_and_client_errors_are_neutral() {
        let s = settings(2, 1000);
        let h = Health::default();
        h.on_failure(&ProviderError::Timeout, &s);
        h.on_success(Duration::from_millis(100), &s);
        h.on_failure(&ProviderError::Timeout, &s);
        h.on_neutral();
        h.on_failure(&ProviderError::Timeout, &s);
        assert_eq!(h.snapshot().state, CircuitState::Closed);
        assert!((h.snapshot().ewma_latency_ms - 100.0).abs() < 1e-9);
    }

    #[test]
    fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
        let catalog = Catalog::from_toml("t", "");
        assert!(catalog.is_ok());
        let Ok(catalog) = catalog else { return };
        let router = Router::new(
            &catalog,
            RoutingSettings {
                backoff_base: Duration::from_millis(100),
                backoff_max: Duration::from_millis(800),
                ..RoutingSettings::default()
            },
            reqwest::Client::new(),
            Arc::new(Metrics::default()),
        );
        for retry in 0..10 {
            let d = router.backoff(retry, None);
            let exp =
                Duration::from_millis(100 * (1u64 << retry.min(3))).min(Duration::from_millis(800));
            assert!(d >= exp / 2 && d <= exp, "retry {retry}: {d:?}");
        }
        assert!(router.backoff(0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn plans_follow_the_policy_and_skip_unconfigured_providers() {
        let text = r#"
[providers.a]
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
[providers.b]
kind = "openai"
base_url = "http://127.0.0.1:2/v1"
[providers.c]
kind = "openai"
base_url = "http://127.0.0.1:3/v1"
[[models]]
name = "m"
routes = [
  { provider = "a", model = "a1", input_usd_per_mtok = 5.0, output_usd_per_mtok = 5.0 },
  { provider = "b", model = "b1", input_usd_per_mtok = 1.0, output_usd_per_mtok = 1.0 },
  { provider = "c", model = "c1", input_usd_per_mtok = 0.1, output_usd_per_mtok = 0.1 },
]
"#;
        let catalog = Catalog::from_toml("t", text);
        assert!(catalog.is_ok());
        let Ok(mut catalog) = catalog else { return };
        catalog.set_key("a", "k");
        catalog.set_key("b", "k");
        let router = Router::new(
            &catalog,
            RoutingSettings::default(),
            reqwest::Client::new(),
            Arc::new(Metrics::default()),
        );
        assert!(router.mock.is_none());
        let Some(m) = router.model("m") else {
            return;
        };
        let names = |p: Option<Policy>| -> Vec<String> {
            router
                .plan(m, p)
                .iter()
                .map(|r| r.provider.name.clone())
                .collect()
        };
        assert_eq!(names(None), ["a", "b"], "c has no key");
        assert_eq!(names(Some(Policy::LowestCost)), ["b", "a"]);
        m.routes[0].observe_latency(Duration::from_millis(50), 0.5);
        m.routes[1].observe_latency(Duration::from_millis(5), 0.5);
        assert_eq!(names(Some(Policy::LowestLatency)), ["b", "a"]);
        m.routes[1].observe_latency(Duration::from_millis(500), 0.5);
        assert_eq!(names(Some(Policy::LowestLatency)), ["a", "b"]);
        let route = &router.plan(m, None)[0];
        assert!((route.cost_usd(1_000_000, 2_000_000) - 15.0).abs() < 1e-9);
    }

    #[test]
    fn nothing_configured_means_the_mock_serves_every_model() {
        let catalog = Catalog::builtin();
        assert!(catalog.is_ok());
        let Ok(catalog) = catalog else { return };
        let router = Router::new(
            &catalog,
            RoutingSettings::default(),
            reqwest::Client::new(),
            Arc::new(Metrics::default()),
        );
        for m in router.models() {
            let plan = router.plan(m, None);
            assert_eq!(plan.len(), 1);
            assert_eq!(plan[0].provider.name, "mock");
            assert_eq!(plan[0].cost_usd(1000, 1000), 0.0);
        }
    }
}
