//! Routing: from a public model name to an answer, across the providers that serve it.
//!
//! For each call the router orders the model's configured routes by [`policy`] (catalogue order,
//! lowest moving-average latency of the route — provider and model —, lowest price), then tries
//! them in turn:
//! - a provider whose circuit [`breaker`] is open is skipped;
//! - a transient failure (429, 5xx, connection error) is [`retry`]-ed on the same provider with
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
//! [`table`] holds the catalogue as the router uses it (providers, routes, models).

pub mod breaker;
pub mod capabilities;
pub mod policy;
pub mod retry;
pub mod settings;
pub mod table;
pub mod trace;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use tracing::Instrument;

use crate::catalog::{Capabilities, Catalog, Policy};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::providers::{
    self, ChatInput, Chunk, ChunkStream, Completion, EmbedInput, Embeddings, FailureClass,
    Provider, ProviderError,
    mock::{MOCK_PROVIDER, Mock},
};

use crate::chat::OutputLimit;
pub use breaker::{CircuitState, Health, HealthSnapshot};
pub use capabilities::Requirement;
pub use retry::AfterFailure;
pub use settings::{RoutingSettings, deadline_after};
pub use table::{ModelEntry, ProviderHandle, Route};

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
}

impl Router {
    /// Builds clients for every configured provider. `http` is shared (one connection pool).
    pub fn new(
        catalog: &Catalog,
        settings: RoutingSettings,
        http: reqwest::Client,
        metrics: &Metrics,
    ) -> Router {
        let handle = |name: String,
                      kind: &'static str,
                      base_url: String,
                      configured: bool,
                      client: Arc<dyn Provider>| {
            let series = metrics.provider(&name, configured);
            Arc::new(ProviderHandle {
                health: Health::new(series.circuit.clone()),
                metrics: series,
                name,
                kind,
                base_url,
                configured,
                client,
            })
        };
        let providers: Vec<Arc<ProviderHandle>> = catalog
            .providers
            .iter()
            .map(|p| {
                handle(
                    p.name.clone(),
                    p.kind.as_str(),
                    p.base_url.clone(),
                    p.configured(),
                    providers::build(p, http.clone()),
                )
            })
            .collect();
        let mock = catalog.nothing_configured().then(|| {
            handle(
                MOCK_PROVIDER.to_owned(),
                "mock",
                "offline".to_owned(),
                true,
                Arc::new(Mock),
            )
        });
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
                            m.route_capabilities(r),
                            metrics.usage(&p.metrics, &m.name),
                        ))
                    })
                })
                .collect();
            // The mock shortens vectors only for a model that can (some route states it), so
            // an offline trial refuses what the real routes would.
            let mock_caps = Capabilities {
                dimensions: m.routes.iter().any(|r| m.route_capabilities(r).dimensions),
                ..capabilities::MOCK_CAPABILITIES
            };
            let mock_route = mock.as_ref().map(|mock| {
                Arc::new(Route::new(
                    mock.clone(),
                    format!("mock/{}", m.name),
                    0.0,
                    0.0,
                    mock_caps,
                    metrics.usage(&mock.metrics, &m.name),
                ))
            });
            model_order.push(m.name.clone());
            models.insert(
                m.name.clone(),
                Arc::new(ModelEntry {
                    name: m.name.clone(),
                    policy: m.policy,
                    kind: m.kind,
                    created: m.created,
                    owned_by: m.owned_by.clone(),
                    routes,
                    mock_route,
                }),
            );
        }
        Router {
            providers,
            models,
            model_order,
            mock,
            settings,
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
        if let Some(mock) = &model.mock_route {
            return vec![mock.clone()];
        }
        let routes: Vec<Arc<Route>> = model
            .routes
            .iter()
            .filter(|r| r.provider.configured)
            .cloned()
            .collect();
        policy::order(routes, policy.unwrap_or(model.policy))
    }

    /// Runs `attempt` over the plan with retries, fallbacks, breakers and timeouts.
    async fn run<'a, T>(
        &self,
        model: &ModelEntry,
        policy: Option<Policy>,
        reqs: &[Requirement],
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
        // Only routes that can carry everything the request asks for.
        let plan = if reqs.is_empty() {
            plan
        } else {
            let fit: Vec<Arc<Route>> = plan
                .iter()
                .filter(|r| {
                    capabilities::first_unmet(r.provider.kind, &r.capabilities, reqs).is_none()
                })
                .cloned()
                .collect();
            if fit.is_empty() {
                return Err(capabilities::refusal(
                    &model.name,
                    plan.iter()
                        .map(|r| (r.provider.kind, r.provider.name.as_str(), r.capabilities)),
                    reqs,
                ));
            }
            fit
        };
        let mut attempts = 0u32;
        let mut errors: Vec<String> = Vec::new();
        let mut only_timeouts = true;
        let mut skipped_open = 0usize;
        let mut reopen_in: Option<Duration> = None;
        // The first field a route's wire format could not carry (native providers): another
        // route may carry it; when none did, the client is told which field.
        let mut unsupported: Option<providers::native::Unsupported> = None;
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
                trace::attempted(&route, try_no == 0);
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
                        p.metrics.success(started.elapsed());
                        return Ok(Served {
                            value,
                            route,
                            attempts,
                        });
                    }
                    Ok(Err(ProviderError::Unsupported(u))) => {
                        // Refused while translating, before any network call: not an attempt,
                        // says nothing of the provider's health.
                        attempts -= 1;
                        trace::untried(try_no == 0);
                        p.health.release_untried();
                        tracing::debug!(provider = %p.name, param = %u.param, "route cannot carry a field");
                        unsupported.get_or_insert(u);
                        continue 'routes;
                    }
                    Ok(Err(e)) => e,
                    Err(_) => ProviderError::Timeout,
                };
                p.metrics.failure(&err);
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
                match retry::after_failure(&err, try_no, s, deadline) {
                    AfterFailure::Retry(wait) => tokio::time::sleep(wait).await,
                    AfterFailure::NextRoute => continue 'routes,
                }
            }
        }
        if errors.is_empty()
            && let Some(u) = unsupported
        {
            return Err(GatewayError::Unsupported {
                message: format!("{} (model {:?})", u.message, model.name),
                param: u.param,
            });
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
        let reqs = capabilities::requirements(input);
        self.run(model, policy, &reqs, |route: Arc<Route>| {
            Box::pin(async move {
                let input = for_route(&route, input);
                route
                    .provider
                    .client
                    .chat(&route.upstream_model, &input)
                    .await
            })
        })
        .await
    }

    /// Embedding vectors, over the model's routes like a chat call (no routing policy in the
    /// request: the model's own). An answer whose vectors do not match the request (count, or
    /// size when `dimensions` was sent) is a malformed answer: the next route is tried.
    pub async fn embed(
        &self,
        model: &ModelEntry,
        input: &EmbedInput,
    ) -> Result<Served<Embeddings>, GatewayError> {
        let reqs = capabilities::embed_requirements(input);
        self.run(model, None, &reqs, |route: Arc<Route>| {
            Box::pin(async move {
                let answer = route
                    .provider
                    .client
                    .embed(&route.upstream_model, input)
                    .await?;
                answer.checked(input).map_err(ProviderError::Malformed)
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
        let reqs = capabilities::requirements(input);
        self.run(model, policy, &reqs, |route: Arc<Route>| {
            Box::pin(async move {
                let input = for_route(&route, input);
                let mut rest = route
                    .provider
                    .client
                    .stream(&route.upstream_model, &input)
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

/// The request as `route` receives it. Anthropic requires an output bound: when the client set
/// none, the route's `max_output_tokens` from the catalogue (the model's documented maximum) is
/// sent rather than an arbitrary small default; a route without one keeps the client's request
/// as is (its client then refuses it, naming `max_tokens`, and the next route is tried).
fn for_route<'i>(route: &Route, input: &'i ChatInput) -> Cow<'i, ChatInput> {
    if route.provider.kind == "anthropic"
        && input.output_limit.is_none()
        && route.capabilities.max_output_tokens > 0
    {
        let mut owned = input.clone();
        owned.output_limit = Some(OutputLimit::MaxTokens(route.capabilities.max_output_tokens));
        return Cow::Owned(owned);
    }
    Cow::Borrowed(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iafactory::metrics::Registry;

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
            &Metrics::register(&mut Registry::new()),
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
            &Metrics::register(&mut Registry::new()),
        );
        for m in router.models() {
            let plan = router.plan(m, None);
            assert_eq!(plan.len(), 1);
            assert_eq!(plan[0].provider.name, "mock");
            assert_eq!(plan[0].cost_usd(1000, 1000), 0.0);
        }
    }
}
