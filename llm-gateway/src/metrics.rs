//! The gateway's own Prometheus families, in the platform's registry ([`iafactory::metrics`]),
//! which also holds the per-RPC calls and latencies of the gRPC server (`iaf_grpc_*`, the
//! gateway's request counts): upstream attempts by provider and outcome, upstream latency,
//! tokens and cost by provider and public model, circuit state and configuration per provider.
//! Served over HTTP at `/metrics` when `--metrics-listen` is set;
//! [`crate::GatewayHandle::metrics_text`] renders it in-process.
//!
//! Providers and routes are known at start-up: the router keeps their series ([`ProviderSeries`],
//! [`UsageSeries`]), each resolved on its first use, and a call records with atomic adds. Only a
//! failed attempt looks its series up in the family (its outcome is one of many HTTP statuses).
//! The state gauges (circuit, configured) exist from the start.

use std::sync::Arc;
use std::time::Duration;

use iafactory::metrics::{
    Counter, EncodeLabelSet, EncodeLabelValue, Family, FloatCounter, Gauge, Handle, Histogram,
    LabelValueEncoder, Registry, resolve,
};

use crate::providers::{ErrorKind, ProviderError};

/// A provider or model name from the configuration, shared by the series that carry it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Name(Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, &self.0)
    }
}

/// `ok`, or the kind of a failed attempt (`http_503`, `timeout`, ...).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Outcome {
    Ok,
    Failed(ErrorKind),
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        match self {
            Outcome::Ok => encoder.write_str("ok"),
            Outcome::Failed(kind) => write!(encoder, "{kind}"),
        }
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum TokenKind {
    Prompt,
    Completion,
}

impl EncodeLabelValue for TokenKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(
            encoder,
            match self {
                TokenKind::Prompt => "prompt",
                TokenKind::Completion => "completion",
            },
        )
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    provider: Name,
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    provider: Name,
    model: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: Name,
    model: Name,
    kind: TokenKind,
}

/// The gateway's families, registered at start-up.
pub struct Metrics {
    attempts: Family<AttemptLabels, Counter>,
    upstream_latency: Family<ProviderLabels, Histogram>,
    tokens: Family<TokenLabels, Counter>,
    cost: Family<ModelLabels, FloatCounter>,
    circuit: Family<ProviderLabels, Gauge>,
    configured: Family<ProviderLabels, Gauge>,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Metrics {
        Metrics {
            attempts: registry.register(
                "llm_upstream_attempts",
                "Upstream attempts by provider and outcome (`ok`, `http_503`, `timeout`, ...).",
                Family::default(),
            ),
            upstream_latency: registry.register(
                "llm_upstream_latency_seconds",
                "Latency of successful upstream attempts (streams: to the first token).",
                Family::default(),
            ),
            tokens: registry.register(
                "llm_tokens",
                "Tokens by provider, public model and kind (prompt, completion).",
                Family::default(),
            ),
            cost: registry.register(
                "llm_cost_usd",
                "Cost in US dollars by provider and public model.",
                Family::default(),
            ),
            circuit: registry.register(
                "llm_circuit_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
                Family::default(),
            ),
            configured: registry.register(
                "llm_provider_configured",
                "1 when the provider has a key (or needs none).",
                Family::default(),
            ),
        }
    }

    /// The series of a provider (its circuit gauge starts closed).
    pub fn provider(&self, name: &str, configured: bool) -> ProviderSeries {
        let name = Name(Arc::from(name));
        let labels = ProviderLabels {
            provider: name.clone(),
        };
        resolve(&self.configured, &labels).set(i64::from(configured));
        ProviderSeries {
            circuit: resolve(&self.circuit, &labels),
            attempts: self.attempts.clone(),
            upstream_latency: self.upstream_latency.clone(),
            ok: Handle::default(),
            latency: Handle::default(),
            name,
        }
    }

    /// The usage series of calls to public model `model` served by `provider`.
    pub fn usage(&self, provider: &ProviderSeries, model: &str) -> UsageSeries {
        UsageSeries {
            provider: provider.name.clone(),
            model: Name(Arc::from(model)),
            tokens: self.tokens.clone(),
            costs: self.cost.clone(),
            prompt: Handle::default(),
            completion: Handle::default(),
            cost: Handle::default(),
        }
    }
}

/// The series of one provider.
#[derive(Debug)]
pub struct ProviderSeries {
    name: Name,
    /// Set by the provider's breaker on every change of state.
    pub circuit: Gauge,
    attempts: Family<AttemptLabels, Counter>,
    upstream_latency: Family<ProviderLabels, Histogram>,
    ok: Handle<Counter>,
    latency: Handle<Histogram>,
}

impl ProviderSeries {
    /// A successful attempt and its latency.
    pub fn success(&self, elapsed: Duration) {
        self.ok
            .get(&self.attempts, || AttemptLabels {
                provider: self.name.clone(),
                outcome: Outcome::Ok,
            })
            .inc();
        self.latency
            .get(&self.upstream_latency, || ProviderLabels {
                provider: self.name.clone(),
            })
            .observe(elapsed);
    }

    /// A failed attempt (off the hot path: looked up in the family by its outcome).
    pub fn failure(&self, err: &ProviderError) {
        self.attempts
            .get_or_create(&AttemptLabels {
                provider: self.name.clone(),
                outcome: Outcome::Failed(err.kind()),
            })
            .inc();
    }
}

/// Tokens and cost of one route (provider × public model).
#[derive(Debug)]
pub struct UsageSeries {
    provider: Name,
    model: Name,
    tokens: Family<TokenLabels, Counter>,
    costs: Family<ModelLabels, FloatCounter>,
    prompt: Handle<Counter>,
    completion: Handle<Counter>,
    cost: Handle<FloatCounter>,
}

impl UsageSeries {
    /// Tokens and cost of an answer.
    pub fn record(&self, prompt: u64, completion: u64, cost_usd: f64) {
        let tokens = |kind| TokenLabels {
            provider: self.provider.clone(),
            model: self.model.clone(),
            kind,
        };
        self.prompt
            .get(&self.tokens, || tokens(TokenKind::Prompt))
            .inc_by(prompt);
        self.completion
            .get(&self.tokens, || tokens(TokenKind::Completion))
            .inc_by(completion);
        self.cost
            .get(&self.costs, || ModelLabels {
                provider: self.provider.clone(),
                model: self.model.clone(),
            })
            .inc_by(cost_usd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_tokens_cost_and_provider_state() {
        let mut registry = Registry::new();
        let m = Metrics::register(&mut registry);
        let p = m.provider("groq", true);
        let off = m.provider("openai", false);
        p.success(Duration::from_millis(20));
        p.failure(&ProviderError::Http {
            status: 503,
            retry_after: None,
            message: String::new(),
        });
        p.failure(&ProviderError::Timeout);
        m.usage(&p, "llama").record(110, 55, 0.5);
        off.circuit.set(2);
        let text = registry.render();
        for expected in [
            "iaf_llm_upstream_attempts_total{provider=\"groq\",outcome=\"ok\"} 1",
            "iaf_llm_upstream_attempts_total{provider=\"groq\",outcome=\"http_503\"} 1",
            "iaf_llm_upstream_attempts_total{provider=\"groq\",outcome=\"timeout\"} 1",
            "iaf_llm_upstream_latency_seconds_count{provider=\"groq\"} 1",
            "iaf_llm_tokens_total{provider=\"groq\",model=\"llama\",kind=\"prompt\"} 110",
            "iaf_llm_tokens_total{provider=\"groq\",model=\"llama\",kind=\"completion\"} 55",
            "iaf_llm_cost_usd_total{provider=\"groq\",model=\"llama\"} 0.5",
            "iaf_llm_circuit_state{provider=\"groq\"} 0",
            "iaf_llm_circuit_state{provider=\"openai\"} 2",
            "iaf_llm_provider_configured{provider=\"openai\"} 0",
            "iaf_llm_provider_configured{provider=\"groq\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}
