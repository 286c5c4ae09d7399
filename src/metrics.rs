//! A small Prometheus registry shared by every service, and the HTTP endpoint that exposes it.
//!
//! Counters and histograms are keyed by metric name and rendered label set; gauges that mirror
//! shared state (places left, revenue, queue sizes) are computed at scrape time by a callback, so
//! every replica reports the database's truth rather than its own view.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;

/// Latency bucket bounds in seconds (100 µs to 10 s).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Clone, Default)]
struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    help: BTreeMap<&'static str, (&'static str, &'static str)>,
    counters: BTreeMap<(&'static str, String), f64>,
    gauges: BTreeMap<(&'static str, String), f64>,
    histograms: BTreeMap<(&'static str, String), Histogram>,
}

/// Metrics of one process.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

/// Renders `{k="v",...}` with Prometheus escaping; empty for no labels.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s.push('}');
    s
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Declares a metric's HELP text and TYPE (`counter`, `gauge`, `histogram`).
    pub fn describe(&self, name: &'static str, kind: &'static str, help: &'static str) {
        self.lock().help.insert(name, (kind, help));
    }

    pub fn inc(&self, name: &'static str, labels_: &[(&str, &str)], by: f64) {
        *self
            .lock()
            .counters
            .entry((name, labels(labels_)))
            .or_default() += by;
    }

    pub fn set(&self, name: &'static str, labels_: &[(&str, &str)], value: f64) {
        self.lock().gauges.insert((name, labels(labels_)), value);
    }

    pub fn observe(&self, name: &'static str, labels_: &[(&str, &str)], value: Duration) {
        let secs = value.as_secs_f64();
        let mut inner = self.lock();
        let h = inner.histograms.entry((name, labels(labels_))).or_default();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
        h.sum += secs;
        h.count += 1;
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let mut described = std::collections::BTreeSet::new();
        let mut header = |out: &mut String, name: &'static str| {
            if described.insert(name)
                && let Some((kind, help)) = inner.help.get(name)
            {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            }
        };
        for ((name, l), v) in &inner.counters {
            header(&mut out, name);
            let _ = writeln!(out, "{name}{l} {v}");
        }
        for ((name, l), v) in &inner.gauges {
            header(&mut out, name);
            let _ = writeln!(out, "{name}{l} {v}");
        }
        for ((name, l), h) in &inner.histograms {
            header(&mut out, name);
            let inner_labels = l.trim_start_matches('{').trim_end_matches('}');
            let sep = if inner_labels.is_empty() { "" } else { "," };
            let mut cumulative = 0;
            for (b, c) in LATENCY_BUCKETS.iter().zip(h.counts.iter()) {
                cumulative += c;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{{inner_labels}{sep}le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{{inner_labels}{sep}le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{l} {}", h.sum);
            let _ = writeln!(out, "{name}_count{l} {}", h.count);
        }
        out
    }
}

/// Refreshes scrape-time gauges before a render.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Serves `GET /metrics` (any other path: 404) on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    refresh: Option<Refresh>,
    shutdown: impl Future<Output = ()> + Send,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let registry = Arc::clone(&registry);
        let refresh = refresh.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let registry = Arc::clone(&registry);
                let refresh = refresh.clone();
                async move {
                    let (status, body) = if req.uri().path() == "/metrics" {
                        if let Some(r) = refresh {
                            r().await;
                        }
                        (StatusCode::OK, registry.render())
                    } else {
                        (StatusCode::NOT_FOUND, "not found\n".to_owned())
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "text/plain; version=0.0.4; charset=utf-8",
                        ),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let r = Registry::default();
        r.describe("iaf_requests_total", "counter", "Requests.");
        r.inc(
            "iaf_requests_total",
            &[("method", "/a.B/C"), ("code", "OK")],
            1.0,
        );
        r.inc(
            "iaf_requests_total",
            &[("method", "/a.B/C"), ("code", "OK")],
            2.0,
        );
        r.set("iaf_places", &[("code", "LAUNCH30")], 29.0);
        r.observe(
            "iaf_latency_seconds",
            &[("m", "x")],
            Duration::from_millis(3),
        );
        let text = r.render();
        assert!(text.contains("# TYPE iaf_requests_total counter"));
        assert!(text.contains("iaf_requests_total{method=\"/a.B/C\",code=\"OK\"} 3"));
        assert!(text.contains("iaf_places{code=\"LAUNCH30\"} 29"));
        assert!(text.contains("iaf_latency_seconds_bucket{m=\"x\",le=\"0.0025\"} 0"));
        assert!(text.contains("iaf_latency_seconds_bucket{m=\"x\",le=\"0.005\"} 1"));
        assert!(text.contains("iaf_latency_seconds_bucket{m=\"x\",le=\"+Inf\"} 1"));
        assert!(text.contains("iaf_latency_seconds_count{m=\"x\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
    }
}
