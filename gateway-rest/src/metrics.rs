//! Prometheus metrics without a lock or an allocation on the request path.
//!
//! The routes are known when the router is built, so every counter exists from the start: a
//! request finds its route's slot with one hash lookup of the matched path template and bumps
//! atomics. `/metrics` renders the text exposition format.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::Method;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Statuses counted individually; anything else lands in the last slot ("other").
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

struct RouteMetrics {
    label: &'static str,
    counts: Vec<AtomicU64>,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl RouteMetrics {
    fn new(label: &'static str) -> RouteMetrics {
        RouteMetrics {
            label,
            counts: (0..METHODS.len() * STATUS_SLOTS)
                .map(|_| AtomicU64::new(0))
                .collect(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

/// The registry.
pub struct Metrics {
    routes: Vec<RouteMetrics>,
    by_path: HashMap<&'static str, usize>,
    /// Requests refused by the per-IP rate limiter.
    pub rate_limited: AtomicU64,
    /// Requests refused because too many were in flight.
    pub shed: AtomicU64,
    /// Calls to a backend that failed as unavailable.
    pub backend_unavailable: AtomicU64,
    /// Requests being served right now.
    pub in_flight: AtomicU64,
    /// Server-sent event streams open right now.
    pub event_streams: AtomicU64,
}

/// Label of requests that matched no route.
pub const UNMATCHED: &str = "unmatched";

impl Metrics {
    /// A registry with one slot per route template (plus one for unmatched requests).
    pub fn new(paths: impl IntoIterator<Item = &'static str>) -> Metrics {
        let mut routes = vec![RouteMetrics::new(UNMATCHED)];
        let mut by_path = HashMap::new();
        for path in paths {
            if !by_path.contains_key(path) {
                by_path.insert(path, routes.len());
                routes.push(RouteMetrics::new(path));
            }
        }
        Metrics {
            routes,
            by_path,
            rate_limited: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            backend_unavailable: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            event_streams: AtomicU64::new(0),
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
        let slot = method_slot(method) * STATUS_SLOTS + status_slot(status);
        if let Some(c) = r.counts.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            r.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        r.sum_micros.fetch_add(micros, Ordering::Relaxed);
        r.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        out.push_str(
            "# HELP gateway_http_requests_total HTTP requests answered, by route template, method and status.\n\
             # TYPE gateway_http_requests_total counter\n",
        );
        for r in &self.routes {
            for (m, method) in METHODS.iter().enumerate() {
                for s in 0..STATUS_SLOTS {
                    let n = r.counts[m * STATUS_SLOTS + s].load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let status = STATUSES
                        .get(s)
                        .map_or_else(|| "other".to_owned(), u16::to_string);
                    let _ = writeln!(
                        out,
                        "gateway_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}",
                        r.label
                    );
                }
            }
        }
        out.push_str(
            "# HELP gateway_http_request_duration_seconds Time to the response head, by route template.\n\
             # TYPE gateway_http_request_duration_seconds histogram\n",
        );
        for r in &self.routes {
            let count = r.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += r.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "gateway_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{le}\"}} {cumulative}",
                    r.label
                );
            }
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {count}",
                r.label
            );
            let sum = r.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_sum{{route=\"{}\"}} {sum}",
                r.label
            );
            let _ = writeln!(
                out,
                "gateway_http_request_duration_seconds_count{{route=\"{}\"}} {count}",
                r.label
            );
        }
        let gauges: [(&str, &str, &str, &AtomicU64); 5] = [
            (
                "gateway_rate_limited_total",
                "counter",
                "Requests refused by the per-IP rate limits.",
                &self.rate_limited,
            ),
            (
                "gateway_shed_total",
                "counter",
                "Requests refused because too many were in flight.",
                &self.shed,
            ),
            (
                "gateway_backend_unavailable_total",
                "counter",
                "Backend calls that failed as unavailable.",
                &self.backend_unavailable,
            ),
            (
                "gateway_http_in_flight",
                "gauge",
                "Requests being served.",
                &self.in_flight,
            ),
            (
                "gateway_event_streams_open",
                "gauge",
                "Server-sent event streams open.",
                &self.event_streams,
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
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
        let text = m.render();
        assert!(text.contains(
            "gateway_http_requests_total{route=\"/b/{x}\",method=\"GET\",status=\"200\"} 2"
        ));
        assert!(text.contains(
            "gateway_http_requests_total{route=\"unmatched\",method=\"OTHER\",status=\"other\"} 1"
        ));
        assert!(text.contains(
            "gateway_http_request_duration_seconds_bucket{route=\"/b/{x}\",le=\"0.0005\"} 1"
        ));
        assert!(text.contains("gateway_http_request_duration_seconds_count{route=\"/b/{x}\"} 2"));
    }
}
