//! Usage accounting off the request path: calls add to an in-memory aggregate (one short lock),
//! a background task writes the aggregate to the store in one transaction per interval, and a
//! failed write is merged back and retried at the next tick. Reports add what is not yet written,
//! so a key's usage seen through this replica is always complete; other replicas' unwritten
//! usage shows up within one flush interval.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{Store, UsageKey, UsageSums};

/// Nano-dollars from dollars, rounded.
pub fn to_nano_usd(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round() as i64
    } else {
        0
    }
}

pub struct UsageRecorder {
    store: Store,
    pending: Mutex<HashMap<UsageKey, UsageSums>>,
    /// Serialises flushes (the periodic task, the final one at shutdown) and reports, so a report
    /// never sees a batch both in the store and in memory, nor in neither.
    flush_lock: tokio::sync::Mutex<()>,
}

impl UsageRecorder {
    pub fn new(store: Store) -> Self {
        UsageRecorder {
            store,
            pending: Mutex::new(HashMap::new()),
            flush_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds one call.
    pub fn record(&self, key: UsageKey, sums: UsageSums) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.entry(key).or_default().add(&sums);
    }

    /// Writes everything pending. On failure the batch is kept for the next flush.
    pub async fn flush(&self) -> Result<usize, sqlx::Error> {
        let _guard = self.flush_lock.lock().await;
        let batch: Vec<(UsageKey, UsageSums)> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.store.add_usage(&batch).await {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in batch {
                p.entry(k).or_default().add(&v);
            }
            return Err(e);
        }
        Ok(batch.len())
    }

    /// Usage of `key_id` in `period` per (model, provider): stored plus not yet written.
    pub async fn report(
        &self,
        key_id: &str,
        period: &str,
    ) -> Result<Vec<(UsageKey, UsageSums)>, sqlx::Error> {
        let _guard = self.flush_lock.lock().await;
        let mut rows: HashMap<UsageKey, UsageSums> = self
            .store
            .usage(key_id, period)
            .await?
            .into_iter()
            .collect();
        let local: Vec<(UsageKey, UsageSums)> = {
            let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.iter()
                .filter(|(k, _)| k.key_id == key_id && k.period == period)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        for (k, v) in local {
            rows.entry(k).or_default().add(&v);
        }
        let mut out: Vec<_> = rows.into_iter().collect();
        out.sort_by(|a, b| (&a.0.model, &a.0.provider).cmp(&(&b.0.model, &b.0.provider)));
        Ok(out)
    }
}
