//! gateway-rest's HTTP metrics, in the platform's registry ([`iafactory::metrics`]), without a
//! lock or an allocation on the request path.
//!
//! The routes are known when the router is built, so every series has its slot from the start: a
//! request finds its route with one hash lookup of the matched path template, and its series
//! (route × method × status) is a handle resolved on its first use, bumped with an atomic add
//! afterwards. `/metrics` renders the registry.

use std::collections::HashMap;
use std::time::Duration;

use http::Method;
use iafactory::metrics::{
    CountGauge, Counter, EncodeLabelSet, EncodeLabelValue, Family, Handle, Histogram,
    LabelValueEncoder, Registry,
};

/// Statuses counted individually; anything else is labelled `other`.
const STATUSES: [u16; 22] = [
    200, 201, 204, 206, 301, 304, 307, 308, 400, 401, 403, 404, 405, 409, 413, 415, 429, 499, 500,
    502, 503, 504,
];
const STATUS_SLOTS: usize = STATUSES.len() + 1;

const METHODS: [&str; 6] = ["GET", "POST", "PATCH", "HEAD", "OPTIONS", "OTHER"];

fn method_slot(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::POST => 1,
        Method::PATCH => 2,
        Method::HEAD => 3,
        Method::OPTIONS => 4,
        _ => 5,
    }
}

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|&s| s == status)
        .unwrap_or(STATUSES.len())
}

/// A status label: one of [`STATUSES`], or `other`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Status(usize);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        match STATUSES.get(self.0) {
            Some(s) => write!(encoder, "{s}"),
            None => encoder.write_str("other"),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: Status,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

struct RouteSeries {
    label: &'static str,
    /// One per method × status slot.
    requests: Vec<Handle<Counter>>,
    latency: Handle<Histogram>,
}

impl RouteSeries {
    fn new(label: &'static str) -> RouteSeries {
        RouteSeries {
            label,
            requests: (0..METHODS.len() * STATUS_SLOTS)
                .map(|_| Handle::default())
                .collect(),
            latency: Handle::default(),
        }
    }
}

/// The registry of gateway-rest and its series.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    routes: Vec<RouteSeries>,
    by_path: HashMap<&'static str, usize>,
    /// Requests refused by the per-IP rate limiter.
    pub rate_limited: Counter,
    /// Requests refused because too many were in flight.
    pub shed: Counter,
    /// Calls to a backend that failed as unavailable.
    pub backend_unavailable: Counter,
    /// Requests being served right now.
    pub in_flight: CountGauge,
    /// Server-sent event streams open right now.
    pub event_streams: CountGauge,
}

/// Label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

impl Metrics {
    /// A registry with one slot per route template (plus one for unmatched requests).
    pub fn new(paths: impl IntoIterator<Item = &'static str>) -> Metrics {
        let mut registry = Registry::new();
        let requests = registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status.",
            Family::default(),
        );
        let latency = registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template.",
            Family::default(),
        );
        let rate_limited = registry.register(
            "http_rate_limited",
            "Requests refused by the per-IP rate limits.",
            Counter::default(),
        );
        let shed = registry.register(
            "http_shed",
            "Requests refused because too many were in flight.",
            Counter::default(),
        );
        let backend_unavailable = registry.register(
            "http_backend_unavailable",
            "Backend calls that failed as unavailable.",
            Counter::default(),
        );
        let in_flight = registry.register(
            "http_in_flight",
            "Requests being served.",
            CountGauge::default(),
        );
        let event_streams = registry.register(
            "http_event_streams_open",
            "Server-sent event streams open.",
            CountGauge::default(),
        );
        let mut routes = vec![RouteSeries::new(UNMATCHED)];
        let mut by_path = HashMap::new();
        for path in paths {
            by_path.entry(path).or_insert_with(|| {
                routes.push(RouteSeries::new(path));
                routes.len() - 1
            });
        }
        Metrics {
            registry,
            requests,
            latency,
            routes,
            by_path,
            rate_limited,
            shed,
            backend_unavailable,
            in_flight,
            event_streams,
        }
    }

    /// The slot of a matched path template (0 = unmatched).
    pub fn route_index(&self, matched: Option<&str>) -> usize {
        matched
            .and_then(|p| self.by_path.get(p).copied())
            .unwrap_or(0)
    }

    /// Counts one answered request.
    pub fn record(&self, route: usize, method: &Method, status: u16, elapsed: Duration) {
        let Some(r) = self.routes.get(route) else {
            return;
        };
        let (m, s) = (method_slot(method), status_slot(status));
        if let Some(handle) = r.requests.get(m * STATUS_SLOTS + s) {
            handle
                .get(&self.requests, || RequestLabels {
                    route: r.label,
                    method: METHODS[m],
                    status: Status(s),
                })
                .inc();
        }
        r.latency
            .get(&self.latency, || RouteLabels { route: r.label })
            .observe(elapsed);
    }

    /// The exposition (OpenMetrics text, which the Prometheus text parser also reads).
    pub fn render(&self) -> String {
        self.registry.render()
    }

    /// The names this registry exports (see [`Registry::exported_names`]).
    pub fn exported_names(&self) -> &[String] {
        self.registry.exported_names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_renders() {
        let m = Metrics::new(["/a", "/b/{x}"]);
        let i = m.route_index(Some("/b/{x}"));
        assert_eq!(i, 2);
        assert_eq!(m.route_index(Some("/nope")), 0);
        m.record(i, &Method::GET, 200, Duration::from_micros(300));
        m.record(i, &Method::GET, 200, Duration::from_millis(30));
        m.record(0, &Method::POST, 404, Duration::from_micros(10));
        m.record(0, &Method::DELETE, 599, Duration::from_micros(10));
        m.rate_limited.inc();
        let text = m.render();
        for expected in [
            "iaf_http_requests_total{route=\"/b/{x}\",method=\"GET\",status=\"200\"} 2",
            "iaf_http_requests_total{route=\"unmatched\",method=\"POST\",status=\"404\"} 1",
            "iaf_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"other\"} 1",
            "iaf_http_request_duration_seconds_bucket{le=\"0.0005\",route=\"/b/{x}\"} 1",
            "iaf_http_request_duration_seconds_count{route=\"/b/{x}\"} 2",
            "iaf_http_rate_limited_total 1",
            "iaf_http_in_flight 0",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(
            !text.contains("route=\"/a\""),
            "unobserved routes are not listed"
        );
    }
}
