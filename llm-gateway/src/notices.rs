//! Quota notices: tells promo-service (`ReportQuotaLevel`) when a customer's tokens this month
//! reach 80 % and 100 % of their package's monthly quota, so the customer gets the e-mail.
//!
//! The usage writer hands every written batch's customers here ([`QuotaNotices::touched`], a
//! short lock, no I/O); one task then reads each touched customer's month from the store
//! (summed over ALL their keys, [`crate::store::Store::customer_tokens`]) and reports the
//! highest level crossed, measured against the quota of the package the calls were admitted
//! under. What was reported is remembered in memory, so a customer already told is not asked
//! about again at every flush; across replicas (or after a restart) a repeat is harmless:
//! promo-service writes one e-mail per customer, month and level.
//!
//! Off the request path on purpose: a notice is late by one store read and one RPC (and at most
//! [`CHECK_EVERY`]), and promo-service being down never fails a call (the report is retried at
//! the customer's next written charge). A customer's month is read at most once per
//! [`CHECK_EVERY`] however often they are charged, so the reads grow with the customers active
//! in a second, not with the call rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use iafactory::proto::iafactory::promo::v1::ReportQuotaLevelRequest;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::auth::Authenticator;
use crate::store::{Store, UsageKey, UsageSums};

/// Shortest interval between two reads of one customer's month.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The levels reported, in percent of the monthly tokens, highest last.
pub const LEVELS: [u32; 2] = [80, 100];

/// The highest of [`LEVELS`] that `used` tokens reach out of `quota` (0: none; a zero quota
/// has no levels).
pub fn level(used: u64, quota: u64) -> u32 {
    if quota == 0 {
        return 0;
    }
    let used = u128::from(used) * 100;
    LEVELS
        .iter()
        .rev()
        .copied()
        .find(|l| used >= u128::from(*l) * u128::from(quota))
        .unwrap_or(0)
}

/// Customers whose month changed: (user id, period) → the monthly token quota.
type Touched = HashMap<(String, String), u64>;

/// See the module docs.
pub struct QuotaNotices {
    pending: Mutex<Touched>,
    wake: Notify,
}

impl Default for QuotaNotices {
    fn default() -> Self {
        QuotaNotices {
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }
}

impl QuotaNotices {
    /// Records the customers a written batch charged (called by the usage writer).
    pub fn touched(&self, rows: &[(UsageKey, UsageSums)]) {
        let mut any = false;
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (k, s) in rows {
                // A key without a customer (never in practice) has no quota of its own to report.
                if s.user_id.is_empty() || k.tokens_per_month == 0 {
                    continue;
                }
                let quota = pending
                    .entry((s.user_id.clone(), k.period.clone()))
                    .or_default();
                // The package may change within a batch: the latest admission's quota is not
                // known here, the larger one errs towards not warning early.
                *quota = (*quota).max(k.tokens_per_month);
                any = true;
            }
        }
        if any {
            self.wake.notify_one();
        }
    }

    /// Reports levels until `stop` turns true.
    pub async fn run(&self, store: Store, auth: Authenticator, mut stop: watch::Receiver<bool>) {
        // (user id, period) → highest level promo-service acknowledged.
        let mut reported: HashMap<(String, String), u32> = HashMap::new();
        // When each customer's month was last read.
        let mut checked: HashMap<(String, String), Instant> = HashMap::new();
        // Customers touched but read too recently: checked once their interval is over.
        let mut deferred: Touched = HashMap::new();
        loop {
            let due = deferred
                .keys()
                .filter_map(|k| checked.get(k))
                .min()
                .map(|at| *at + CHECK_EVERY);
            tokio::select! {
                () = self.wake.notified() => {}
                () = sleep_until(due) => {}
                r = stop.changed() => {
                    if r.is_err() || *stop.borrow() {
                        return;
                    }
                }
            }
            let touched =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
            for (k, quota) in touched {
                let q = deferred.entry(k).or_default();
                *q = (*q).max(quota);
            }
            // Only the latest month matters: earlier months' entries are dropped.
            if let Some(latest) = deferred.keys().map(|(_, p)| p.clone()).max() {
                reported.retain(|(_, p), _| *p >= latest);
                checked.retain(|(_, p), _| *p >= latest);
            }
            let now = Instant::now();
            let ready: Vec<((String, String), u64)> = deferred
                .iter()
                .filter(|(k, _)| checked.get(*k).is_none_or(|at| now >= *at + CHECK_EVERY))
                .map(|(k, q)| (k.clone(), *q))
                .collect();
            for (key, quota) in ready {
                deferred.remove(&key);
                let known = reported.get(&key).copied().unwrap_or(0);
                if known >= LEVELS[LEVELS.len() - 1] {
                    continue;
                }
                checked.insert(key.clone(), Instant::now());
                self.check(&store, &auth, key, quota, known, &mut reported)
                    .await;
            }
        }
    }

    /// Reads one customer's month and reports a level crossed above `known`.
    async fn check(
        &self,
        store: &Store,
        auth: &Authenticator,
        key: (String, String),
        quota: u64,
        known: u32,
        reported: &mut HashMap<(String, String), u32>,
    ) {
        let used = match store.customer_tokens(&key.0, &key.1).await {
            Ok(t) => u64::try_from(t).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, user_id = %key.0, "quota notice: usage not readable; retried at the next charge");
                return;
            }
        };
        let percent = level(used, quota);
        if percent <= known {
            return;
        }
        let req = ReportQuotaLevelRequest {
            user_id: key.0.clone(),
            period: key.1.clone(),
            percent,
            tokens_used: used,
            tokens_per_month: quota,
        };
        match auth.report_quota_level(req).await {
            Ok(queued) => {
                tracing::info!(user_id = %key.0, period = %key.1, percent, queued, "quota level reported");
                reported.insert(key, percent);
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), user_id = %key.0, percent, "quota level not reported; retried at the next charge");
            }
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::level;

    #[test]
    fn levels_are_crossed_at_80_and_100_percent() {
        assert_eq!(level(0, 1000), 0);
        assert_eq!(level(799, 1000), 0);
        assert_eq!(level(800, 1000), 80);
        assert_eq!(level(999, 1000), 80);
        assert_eq!(level(1000, 1000), 100);
        assert_eq!(level(5000, 1000), 100);
        assert_eq!(level(u64::MAX, u64::MAX), 100);
        assert_eq!(level(10, 0), 0);
    }
}
