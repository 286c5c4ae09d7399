//! Prometheus metrics, rendered as text by [`Metrics::render`] (the REST shim serves them at
//! `/metrics`): requests by RPC and outcome code, upstream attempts by provider and outcome,
//! latency histograms, tokens, cost and circuit state.
//!
//! Counters sit behind short mutex sections (a map update); at the gateway's request rates that
//! costs far less than the upstream call and keeps the code dependency-free.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::router::{CircuitState, Router};

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct Inner {
    /// (metric name, rendered labels) → value
    counters: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape(v));
    }
    s
}

impl Metrics {
    fn add(&self, name: &'static str, l: String, v: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *m.counters.entry((name, l)).or_default() += v;
    }

    fn observe(&self, name: &'static str, l: String, d: Duration) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.histograms
            .entry((name, l))
            .or_default()
            .observe(d.as_secs_f64());
    }

    /// One finished RPC: its outcome code (`ok` or an error code) and duration.
    pub fn request(&self, rpc: &str, code: &str, elapsed: Duration) {
        self.add(
            "llm_gateway_requests_total",
            labels(&[("rpc", rpc), ("code", code)]),
            1.0,
        );
        self.observe(
            "llm_gateway_request_duration_seconds",
            labels(&[("rpc", rpc)]),
            elapsed,
        );
    }

    /// One upstream attempt (`outcome` is `ok` or an error kind such as `http_503`).
    pub fn attempt(&self, provider: &str, outcome: &str, elapsed: Duration) {
        self.add(
            "llm_gateway_upstream_attempts_total",
            labels(&[("provider", provider), ("outcome", outcome)]),
            1.0,
        );
        if outcome == "ok" {
            self.observe(
                "llm_gateway_upstream_latency_seconds",
                labels(&[("provider", provider)]),
                elapsed,
            );
        }
    }

    /// Tokens and cost of an answer.
    pub fn usage(&self, provider: &str, model: &str, prompt: u64, completion: u64, cost: f64) {
        self.add(
            "llm_gateway_tokens_total",
            labels(&[("provider", provider), ("model", model), ("kind", "prompt")]),
            prompt as f64,
        );
        self.add(
            "llm_gateway_tokens_total",
            labels(&[
                ("provider", provider),
                ("model", model),
                ("kind", "completion"),
            ]),
            completion as f64,
        );
        self.add(
            "llm_gateway_cost_usd_total",
            labels(&[("provider", provider), ("model", model)]),
            cost,
        );
    }

    /// The Prometheus text exposition.
    pub fn render(&self, router: &Router) -> String {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut last = "";
        for ((name, l), v) in &m.counters {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{{l}}} {v}");
        }
        last = "";
        for ((name, l), h) in &m.histograms {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} histogram");
                last = name;
            }
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{{{l},le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(out, "{name}_bucket{{{l},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{l}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{l}}} {}", h.count);
        }
        drop(m);
        let _ = writeln!(
            out,
            "# HELP llm_gateway_circuit_state 0 closed, 1 half-open, 2 open\n# TYPE llm_gateway_circuit_state gauge"
        );
        let _ = writeln!(out, "# TYPE llm_gateway_provider_configured gauge");
        for p in router.providers.iter().chain(router.mock.iter()) {
            let state = match p.health.snapshot().state {
                CircuitState::Closed => 0,
                CircuitState::HalfOpen => 1,
                CircuitState::Open => 2,
            };
            let l = labels(&[("provider", &p.name)]);
            let _ = writeln!(out, "llm_gateway_circuit_state{{{l}}} {state}");
            let _ = writeln!(
                out,
                "llm_gateway_provider_configured{{{l}}} {}",
                u8::from(p.configured)
            );
        }
        out
    }
}
