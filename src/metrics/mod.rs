//! Prometheus metrics of every service, on the `prometheus-client` crate, and the HTTP endpoint
//! that exposes them.
//!
//! Rules every service follows through this module:
//! - one prefix: [`Registry`] registers every family under `iaf_` (a counter named `x` is exposed
//!   as `iaf_x_total`);
//! - families are registered at start-up, before the registry is shared: a scrape never meets a
//!   family that appears later, and the exported names are known ([`Registry::exported_names`]);
//! - label values come from typed label sets (`#[derive(EncodeLabelSet)]`, enums for fixed sets)
//!   or from names fixed at start-up, never from text a client sent;
//! - on request paths, a series is a pre-resolved handle ([`Handle`], or a clone taken from its
//!   family at start-up): an observation is an atomic add, with no lock and no allocation (a
//!   family's own lookup takes a lock and hashes its labels, so it is only for cold paths).
//!
//! Gauges that mirror shared state (places left, revenue, queue sizes) are set at scrape time by
//! a [`Refresh`] callback, so every replica reports the database's truth rather than its own view.

mod histogram;
pub mod rpc;
mod server;

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Metric;

pub use histogram::{Histogram, LATENCY_BUCKETS};
pub use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::gauge::Gauge;
pub use server::{Refresh, serve_metrics};

/// The prefix of every metric of the platform.
pub const PREFIX: &str = "iaf";

/// A counter of fractional amounts (US dollars).
pub type FloatCounter = Counter<f64, AtomicU64>;

/// A gauge of non-negative counts.
pub type CountGauge = Gauge<u64, AtomicU64>;

/// Content type of the Prometheus text format (what `/metrics` answers by default).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of the OpenMetrics text format (answered to scrapers that ask for it, as
/// Prometheus does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type to answer a scrape with, given its `Accept` header. The body is the same:
/// OpenMetrics text, which the Prometheus text parser also reads (its `# EOF` is a comment).
pub fn content_type(accept: Option<&str>) -> &'static str {
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        OPENMETRICS_CONTENT_TYPE
    } else {
        TEXT_CONTENT_TYPE
    }
}

/// The metrics of one process: every family registered at start-up under the `iaf_` prefix.
pub struct Registry {
    inner: prometheus_client::registry::Registry,
    exported: Vec<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("exported", &self.exported)
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            inner: prometheus_client::registry::Registry::with_prefix(PREFIX),
            exported: Vec::new(),
        }
    }
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a metric (or family) as `iaf_<name>` and returns it, a handle sharing its
    /// values. `name` carries the unit (`_seconds`) but not the `_total` counters receive.
    pub fn register<M: Metric + Clone>(&mut self, name: &str, help: &str, metric: M) -> M {
        let full = format!("{PREFIX}_{name}");
        self.exported.push(match metric.metric_type() {
            MetricType::Counter => format!("{full}_total"),
            _ => full,
        });
        // The library ends every help text with a period.
        let help = help.strip_suffix('.').unwrap_or(help);
        self.inner.register(name, help, metric.clone());
        metric
    }

    /// The names under which samples appear (counters with their `_total`; histograms by their
    /// base name, sampled as `_bucket`, `_sum` and `_count`), in registration order.
    pub fn exported_names(&self) -> &[String] {
        &self.exported
    }

    /// The exposition (OpenMetrics text, ending with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; an encoder error would only truncate the text.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner);
        out
    }
}

/// One series of a family, resolved on its first observation and lock-free afterwards: the
/// family lists the series only once it has been observed (as a hand-made table of atomics
/// would), without a lookup in the family on every observation.
pub struct Handle<M> {
    cell: OnceLock<M>,
}

impl<M> Default for Handle<M> {
    fn default() -> Self {
        Handle {
            cell: OnceLock::new(),
        }
    }
}

impl<M> std::fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.cell.get().is_some() {
            "Handle(resolved)"
        } else {
            "Handle(unresolved)"
        })
    }
}

impl<M: Clone> Handle<M> {
    /// The series of `family` labelled `labels()` (called only on the first use).
    pub fn get<S, C>(&self, family: &Family<S, M, C>, labels: impl FnOnce() -> S) -> &M
    where
        S: Clone + std::hash::Hash + Eq,
        C: prometheus_client::metrics::family::MetricConstructor<M>,
    {
        self.cell
            .get_or_init(|| family.get_or_create_owned(&labels()))
    }
}

/// Handles resolved at start-up for every value of a fixed label (a provider name, a route): one
/// clone of the family's series each, read without the family's lock.
pub fn resolve<S, M, C>(family: &Family<S, M, C>, labels: &S) -> M
where
    S: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    family.get_or_create_owned(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Labels {
        method: &'static str,
        code: Code,
    }

    #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
    enum Code {
        Ok,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Place {
        code: String,
    }

    #[test]
    fn renders_prefixed_families_with_typed_labels() {
        let mut r = Registry::new();
        let requests = r.register(
            "requests",
            "Requests.",
            Family::<Labels, Counter>::default(),
        );
        let places = r.register("places", "Places.", Family::<Place, Gauge>::default());
        let latency = r.register(
            "latency_seconds",
            "Latency.",
            Family::<Labels, Histogram>::default(),
        );
        let labels = Labels {
            method: "/a.B/C",
            code: Code::Ok,
        };
        let handle = Handle::default();
        handle.get(&requests, || labels.clone()).inc();
        handle
            .get(&requests, || unreachable!("resolved once"))
            .inc_by(2);
        places
            .get_or_create(&Place {
                code: "LAUNCH\"30".into(),
            })
            .set(29);
        resolve(&latency, &labels).observe(Duration::from_millis(3));
        let text = r.render();
        for expected in [
            "# TYPE iaf_requests counter",
            "iaf_requests_total{method=\"/a.B/C\",code=\"Ok\"} 3",
            "iaf_places{code=\"LAUNCH\\\"30\"} 29",
            "# TYPE iaf_latency_seconds histogram",
            "iaf_latency_seconds_bucket{le=\"0.0025\",method=\"/a.B/C\",code=\"Ok\"} 0",
            "iaf_latency_seconds_bucket{le=\"0.005\",method=\"/a.B/C\",code=\"Ok\"} 1",
            "iaf_latency_seconds_bucket{le=\"+Inf\",method=\"/a.B/C\",code=\"Ok\"} 1",
            "iaf_latency_seconds_count{method=\"/a.B/C\",code=\"Ok\"} 1",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert_eq!(
            r.exported_names(),
            ["iaf_requests_total", "iaf_places", "iaf_latency_seconds"]
        );
    }

    #[test]
    fn unobserved_series_are_not_listed() {
        let mut r = Registry::new();
        let requests = r.register(
            "requests",
            "Requests.",
            Family::<Labels, Counter>::default(),
        );
        let _unused: Handle<Counter> = Handle::default();
        assert!(!r.render().contains("iaf_requests_total"));
        drop(requests);
    }

    #[test]
    fn scrapers_asking_for_openmetrics_get_it() {
        assert_eq!(content_type(None), TEXT_CONTENT_TYPE);
        assert_eq!(content_type(Some("text/plain")), TEXT_CONTENT_TYPE);
        assert_eq!(
            content_type(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            OPENMETRICS_CONTENT_TYPE
        );
    }
}
