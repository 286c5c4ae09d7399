//! The catalogue as the router uses it: one handle per provider (client, breaker) and, per
//! public model, its routes (provider, upstream model, prices, measured latency).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::breaker::Health;
use crate::catalog::{Capabilities, ModelKind, Policy};
use crate::metrics::{ProviderSeries, UsageSeries};
use crate::providers::Provider;

/// One provider as the router sees it.
pub struct ProviderHandle {
    pub name: String,
    /// Wire format label (`openai`, `anthropic`, `gemini`, `cohere`, `mock`).
    pub kind: &'static str,
    pub base_url: String,
    pub configured: bool,
    pub client: Arc<dyn Provider>,
    pub health: Health,
    /// Its attempt counts and latency.
    pub metrics: ProviderSeries,
}

/// One way to serve a public model.
pub struct Route {
    pub provider: Arc<ProviderHandle>,
    pub upstream_model: String,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    /// What the catalogue states this route can do (see [`super::capabilities`]).
    pub capabilities: Capabilities,
    /// Tokens and cost of the answers it served.
    pub usage: UsageSeries,
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
        capabilities: Capabilities,
        usage: UsageSeries,
    ) -> Route {
        Route {
            provider,
            upstream_model,
            input_usd_per_mtok,
            output_usd_per_mtok,
            capabilities,
            usage,
            ewma_ms_bits: AtomicU64::new(0),
        }
    }

    /// The route's latency moving average in ms (0 before its first success).
    pub fn ewma_latency_ms(&self) -> f64 {
        f64::from_bits(self.ewma_ms_bits.load(Ordering::Relaxed))
    }

    pub(super) fn observe_latency(&self, latency: Duration, alpha: f64) {
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
    pub kind: ModelKind,
    pub created: i64,
    pub owned_by: String,
    /// Every route in catalogue order, configured or not.
    pub routes: Vec<Arc<Route>>,
    /// The route of the offline mock, when it serves every model.
    pub mock_route: Option<Arc<Route>>,
}
