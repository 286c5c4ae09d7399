//! The RED metrics every gRPC server of the platform exports: calls by method and status code,
//! and their latency by method (recorded by the serving layer of [`crate::grpc`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Counter, EncodeLabelSet, EncodeLabelValue, Family, Handle, Histogram, Registry};

/// gRPC status codes (`Ok` = 0 … `Unauthenticated` = 16).
const CODES: usize = 17;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: &'static str,
    code: GrpcCode,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

/// A gRPC status code as its name (`Ok`, `InvalidArgument`, …).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct GrpcCode(i32);

impl EncodeLabelValue for GrpcCode {
    fn encode(&self, encoder: &mut super::LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        write!(encoder, "{:?}", tonic::Code::from_i32(self.0))
    }
}

/// The series of one method, resolved on first use.
struct MethodSeries {
    method: &'static str,
    latency: Handle<Histogram>,
    calls: [Handle<Counter>; CODES],
}

impl MethodSeries {
    fn new(method: &'static str) -> MethodSeries {
        MethodSeries {
            method,
            latency: Handle::default(),
            calls: std::array::from_fn(|_| Handle::default()),
        }
    }
}

/// Per-RPC metrics of one server. The methods are fixed at start-up (the platform's contracts):
/// a call finds its method's series with one lookup of its path, then adds atomically.
pub struct RpcMetrics {
    calls: Family<CallLabels, Counter>,
    latency: Family<MethodLabels, Histogram>,
    /// Slot 0: every path outside the known methods.
    methods: Vec<MethodSeries>,
    index: HashMap<&'static str, usize>,
}

impl std::fmt::Debug for RpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcMetrics")
            .field("methods", &self.methods.len())
            .finish_non_exhaustive()
    }
}

impl RpcMetrics {
    /// Registers the families; `methods` are the paths counted under their own name, any other
    /// under `unknown`.
    pub fn register(
        registry: &mut Registry,
        methods: impl IntoIterator<Item = &'static str>,
        unknown: &'static str,
    ) -> Arc<RpcMetrics> {
        let calls = registry.register(
            "grpc_requests",
            "gRPC calls by method and status code.",
            Family::default(),
        );
        let latency = registry.register(
            "grpc_request_duration_seconds",
            "Time to the response headers of a gRPC call (whole call for unary RPCs; streams: until the first message), by method.",
            Family::default(),
        );
        let mut series = vec![MethodSeries::new(unknown)];
        let mut index = HashMap::new();
        for m in methods {
            index.entry(m).or_insert_with(|| {
                series.push(MethodSeries::new(m));
                series.len() - 1
            });
        }
        Arc::new(RpcMetrics {
            calls,
            latency,
            methods: series,
            index,
        })
    }

    /// The slot of a request path (0 for an unknown path).
    pub fn method_slot(&self, path: &str) -> usize {
        self.index.get(path).copied().unwrap_or(0)
    }

    /// Counts one call of the method in `slot` that ended with `code` after `elapsed`.
    pub fn record(&self, slot: usize, code: tonic::Code, elapsed: Duration) {
        let Some(m) = self.methods.get(slot) else {
            return;
        };
        let c = usize::try_from(code as i32)
            .ok()
            .filter(|c| *c < CODES)
            .unwrap_or(tonic::Code::Unknown as usize);
        m.calls[c]
            .get(&self.calls, || CallLabels {
                method: m.method,
                code: GrpcCode(c as i32),
            })
            .inc();
        m.latency
            .get(&self.latency, || MethodLabels { method: m.method })
            .observe(elapsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_known_method_and_code() {
        let mut r = Registry::new();
        let m = RpcMetrics::register(&mut r, ["/a.B/C"], "unknown");
        let c = m.method_slot("/a.B/C");
        m.record(c, tonic::Code::Ok, Duration::from_millis(1));
        m.record(c, tonic::Code::InvalidArgument, Duration::from_millis(1));
        m.record(c, tonic::Code::Ok, Duration::from_millis(1));
        m.record(
            m.method_slot("/bogus"),
            tonic::Code::Unimplemented,
            Duration::ZERO,
        );
        let text = r.render();
        for expected in [
            "iaf_grpc_requests_total{method=\"/a.B/C\",code=\"Ok\"} 2",
            "iaf_grpc_requests_total{method=\"/a.B/C\",code=\"InvalidArgument\"} 1",
            "iaf_grpc_requests_total{method=\"unknown\",code=\"Unimplemented\"} 1",
            "iaf_grpc_request_duration_seconds_count{method=\"/a.B/C\"} 3",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("bogus"));
    }
}
