//! A latency histogram updated with atomics only. `prometheus-client`'s own histogram takes a
//! mutex on every observation; this one is what every request path records into, encoded by the
//! same library.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Bucket upper bounds in seconds (100 µs to 10 s), the same for every latency of the platform so
/// dashboards can compare them.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

#[derive(Debug, Default)]
struct Cells {
    /// Observations per bucket (not cumulative), the last one past the largest bound (+Inf).
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// A histogram of durations over [`LATENCY_BUCKETS`]; clones share their values.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    cells: Arc<Cells>,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.cells.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.cells.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0u64); LATENCY_BUCKETS.len() + 1];
        for (i, out) in buckets.iter_mut().enumerate() {
            // The encoder writes an infinite bound as `+Inf`.
            let bound = LATENCY_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY);
            *out = (bound, self.cells.buckets[i].load(Ordering::Relaxed));
        }
        // The count is the buckets' total, so that a scrape racing an observation stays
        // consistent (`+Inf` bucket = count).
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.cells.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
