//! Prometheus metrics of the gateway, kept in the platform's shared registry
//! ([`iafactory::metrics::Registry`], which also receives the per-RPC RED metrics of the gRPC
//! server): requests by RPC and outcome code (errors by kind), upstream attempts by provider and
//! outcome, upstream latency histograms, tokens, cost, and circuit state / configuration per
//! provider (set at scrape time). Served over HTTP at `/metrics` when `--metrics-listen` is set;
//! [`crate::GatewayHandle::metrics_text`] renders it in-process.

use std::sync::Arc;
use std::time::Duration;

use iafactory::metrics::Registry;

use crate::routing::{CircuitState, Router};

pub const REQUESTS: &str = "llm_gateway_requests_total";
pub const REQUEST_DURATION: &str = "llm_gateway_request_duration_seconds";
pub const ATTEMPTS: &str = "llm_gateway_upstream_attempts_total";
pub const UPSTREAM_LATENCY: &str = "llm_gateway_upstream_latency_seconds";
pub const TOKENS: &str = "llm_gateway_tokens_total";
pub const COST: &str = "llm_gateway_cost_usd_total";
pub const CIRCUIT: &str = "llm_gateway_circuit_state";
pub const CONFIGURED: &str = "llm_gateway_provider_configured";

pub struct Metrics {
    pub registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Registry::new())
    }
}

impl Metrics {
    pub fn new(registry: Arc<Registry>) -> Self {
        registry.describe(
            REQUESTS,
            "counter",
            "Gateway RPCs by outcome (`ok` or the stable error code).",
        );
        registry.describe(
            REQUEST_DURATION,
            "histogram",
            "Gateway RPC duration (streams: until the first event).",
        );
        registry.describe(
            ATTEMPTS,
            "counter",
            "Upstream attempts by provider and outcome (`ok`, `http_503`, `timeout`, ...).",
        );
        registry.describe(
            UPSTREAM_LATENCY,
            "histogram",
            "Latency of successful upstream attempts (streams: to the first token).",
        );
        registry.describe(
            TOKENS,
            "counter",
            "Tokens by provider, public model and kind (prompt, completion).",
        );
        registry.describe(
            COST,
            "counter",
            "Cost in US dollars by provider and public model.",
        );
        registry.describe(
            CIRCUIT,
            "gauge",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
        );
        registry.describe(
            CONFIGURED,
            "gauge",
            "1 when the provider has a key (or needs none).",
        );
        Metrics { registry }
    }

    /// One finished RPC: its outcome code (`ok` or an error code) and duration.
    pub fn request(&self, rpc: &str, code: &str, elapsed: Duration) {
        self.registry
            .inc(REQUESTS, &[("rpc", rpc), ("code", code)], 1.0);
        self.registry
            .observe(REQUEST_DURATION, &[("rpc", rpc)], elapsed);
    }

    /// One upstream attempt (`outcome` is `ok` or an error kind such as `http_503`).
    pub fn attempt(&self, provider: &str, outcome: &str, elapsed: Duration) {
        self.registry.inc(
            ATTEMPTS,
            &[("provider", provider), ("outcome", outcome)],
            1.0,
        );
        if outcome == "ok" {
            self.registry
                .observe(UPSTREAM_LATENCY, &[("provider", provider)], elapsed);
        }
    }

    /// Tokens and cost of an answer.
    pub fn usage(&self, provider: &str, model: &str, prompt: u64, completion: u64, cost: f64) {
        let r = &self.registry;
        r.inc(
            TOKENS,
            &[("provider", provider), ("model", model), ("kind", "prompt")],
            prompt as f64,
        );
        r.inc(
            TOKENS,
            &[
                ("provider", provider),
                ("model", model),
                ("kind", "completion"),
            ],
            completion as f64,
        );
        r.inc(COST, &[("provider", provider), ("model", model)], cost);
    }

    /// Sets the per-provider gauges from the router's current state.
    pub fn refresh(&self, router: &Router) {
        for p in router.providers.iter().chain(router.mock.iter()) {
            let state = match p.health.snapshot().state {
                CircuitState::Closed => 0.0,
                CircuitState::HalfOpen => 1.0,
                CircuitState::Open => 2.0,
            };
            let l = [("provider", p.name.as_str())];
            self.registry.set(CIRCUIT, &l, state);
            self.registry
                .set(CONFIGURED, &l, if p.configured { 1.0 } else { 0.0 });
        }
    }

    /// The Prometheus text exposition (gauges refreshed first).
    pub fn render(&self, router: &Router) -> String {
        self.refresh(router);
        self.registry.render()
    }
}
