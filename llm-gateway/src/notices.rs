//! Quota notices: tells promo-service (`ReportQuotaLevel`) when a customer's tokens this month
//! reach 80 % and 100 % of their package's monthly quota, so the customer gets the e-mail, and
//! when their upstream cost this month reaches 80 % of their package's cost budget
//! ([`BUDGET_ALERT`], measure `cost`) and when the budget is spent ([`BUDGET_SPENT`]: the spend
//! reaches it, or a call is refused `budget_exceeded`), so the operator gets one e-mail per level
//! (margin protection).
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
//! the customer's next written charge). A `budget_exceeded` refusal is handed here too
//! ([`QuotaNotices::budget_refused`]): the leases admit a call only if the budget left covers its
//! whole cost hold, so the spend itself usually stops short of 100 %, and the refusal is what
//! tells that the budget is spent. A customer's month is read at most once per
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

/// The percentage of the cost budget that alerts the operator (once per customer and month).
pub const BUDGET_ALERT: u32 = 80;

/// The level reported when the cost budget is spent (once per customer and month).
pub const BUDGET_SPENT: u32 = 100;

/// Whether a customer's `used` nano-USD reach [`BUDGET_ALERT`] % of `budget` (never for no
/// budget).
pub fn budget_alert(used: u64, budget: u64) -> bool {
    budget > 0 && u128::from(used) * 100 >= u128::from(BUDGET_ALERT) * u128::from(budget)
}

/// The budget level of a customer's month: [`BUDGET_SPENT`] once `used` reaches `budget` or a
/// call was `refused` for it, [`BUDGET_ALERT`] from 80 %, else 0 (always 0 without a budget).
pub fn budget_level(used: u64, budget: u64, refused: bool) -> u32 {
    if budget == 0 {
        0
    } else if refused || used >= budget {
        BUDGET_SPENT
    } else if budget_alert(used, budget) {
        BUDGET_ALERT
    } else {
        0
    }
}

/// What a customer's month is measured against: the monthly token quota and the cost budget
/// (nano-USD, 0: none); `refused`: a call was refused `budget_exceeded`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Measures {
    tokens: u64,
    budget: u64,
    refused: bool,
}

impl Measures {
    fn merge(&mut self, o: Measures) {
        self.tokens = self.tokens.max(o.tokens);
        self.budget = self.budget.max(o.budget);
        self.refused |= o.refused;
    }
}

/// Customers whose month changed: (user id, period) → what it is measured against.
type Touched = HashMap<(String, String), Measures>;

/// What was reported of a customer's month: the highest token level and budget level.
#[derive(Debug, Clone, Copy, Default)]
struct Reported {
    level: u32,
    budget_level: u32,
}

impl Reported {
    /// Nothing more can be reported for that month.
    fn complete(self, m: Measures) -> bool {
        (m.tokens == 0 || self.level >= LEVELS[LEVELS.len() - 1])
            && (m.budget == 0 || self.budget_level >= BUDGET_SPENT)
    }
}

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
                if s.user_id.is_empty() || (k.tokens_per_month == 0 && k.cost_budget_nano_usd == 0)
                {
                    continue;
                }
                // The package may change within a batch: the latest admission's quota is not
                // known here, the larger one errs towards not warning early.
                pending
                    .entry((s.user_id.clone(), k.period.clone()))
                    .or_default()
                    .merge(Measures {
                        tokens: k.tokens_per_month,
                        budget: k.cost_budget_nano_usd,
                        refused: false,
                    });
                any = true;
            }
        }
        if any {
            self.wake.notify_one();
        }
    }

    /// Records that a call of `user_id` was refused `budget_exceeded` in `period` (called on the
    /// request path: a short lock, no I/O; refusals from memory repeat it harmlessly).
    pub fn budget_refused(&self, user_id: &str, period: String, budget: u64) {
        if user_id.is_empty() || budget == 0 {
            return;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((user_id.to_owned(), period))
            .or_default()
            .merge(Measures {
                tokens: 0,
                budget,
                refused: true,
            });
        self.wake.notify_one();
    }

    /// Reports levels until `stop` turns true.
    pub async fn run(&self, store: Store, auth: Authenticator, mut stop: watch::Receiver<bool>) {
        // (user id, period) → what promo-service acknowledged.
        let mut reported: HashMap<(String, String), Reported> = HashMap::new();
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
            let now = Instant::now();
            for (k, m) in touched {
                // A refusal comes while the calls admitted before it still run: their cost is
                // charged when they end. Read the month one interval later, so the "budget
                // spent" e-mail states what was spent, not what was charged so far. Once: the
                // refusals that follow (a client retrying) must not keep postponing it.
                let entry = deferred.entry(k.clone()).or_default();
                if m.refused
                    && !entry.refused
                    && reported
                        .get(&k)
                        .is_none_or(|r| r.budget_level < BUDGET_SPENT)
                {
                    checked.insert(k, now);
                }
                entry.merge(m);
            }
            // Only the latest month matters: earlier months' entries are dropped.
            if let Some(latest) = deferred.keys().map(|(_, p)| p.clone()).max() {
                reported.retain(|(_, p), _| *p >= latest);
                checked.retain(|(_, p), _| *p >= latest);
            }
            let now = Instant::now();
            let ready: Vec<((String, String), Measures)> = deferred
                .iter()
                .filter(|(k, _)| checked.get(*k).is_none_or(|at| now >= *at + CHECK_EVERY))
                .map(|(k, q)| (k.clone(), *q))
                .collect();
            for (key, m) in ready {
                deferred.remove(&key);
                let known = reported.get(&key).copied().unwrap_or_default();
                if known.complete(m) {
                    continue;
                }
                checked.insert(key.clone(), Instant::now());
                if m.tokens > 0 && known.level < LEVELS[LEVELS.len() - 1] {
                    self.check(
                        &store,
                        &auth,
                        key.clone(),
                        m.tokens,
                        known.level,
                        &mut reported,
                    )
                    .await;
                }
                if m.budget > 0 && known.budget_level < BUDGET_SPENT {
                    check_budget(&store, &auth, key, m, known.budget_level, &mut reported).await;
                }
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
        reported: &mut HashMap<(String, String), Reported>,
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
            ..ReportQuotaLevelRequest::default()
        };
        match auth.report_quota_level(req).await {
            Ok(queued) => {
                tracing::info!(user_id = %key.0, period = %key.1, percent, queued, "quota level reported");
                reported.entry(key).or_default().level = percent;
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), user_id = %key.0, percent, "quota level not reported; retried at the next charge");
            }
        }
    }
}

/// Reads one customer's upstream cost this month and reports each budget level crossed above
/// `known` (80 % then spent, in that order, so the operator reads them in order).
/// promo-service writes one operator e-mail per customer, month and level whatever the number
/// of reports (replicas, restarts).
async fn check_budget(
    store: &Store,
    auth: &Authenticator,
    key: (String, String),
    m: Measures,
    known: u32,
    reported: &mut HashMap<(String, String), Reported>,
) {
    let used = match store.customer_cost(&key.0, &key.1).await {
        Ok(c) => u64::try_from(c).unwrap_or(0),
        Err(e) => {
            tracing::warn!(error = %e, user_id = %key.0, "budget alert: cost not readable; retried at the next charge");
            return;
        }
    };
    let reached = budget_level(used, m.budget, m.refused);
    for percent in [BUDGET_ALERT, BUDGET_SPENT] {
        if percent <= known || percent > reached {
            continue;
        }
        let req = ReportQuotaLevelRequest {
            user_id: key.0.clone(),
            period: key.1.clone(),
            percent,
            measure: "cost".into(),
            cost_used_nano_usd: used,
            cost_budget_nano_usd: m.budget,
            ..ReportQuotaLevelRequest::default()
        };
        match auth.report_quota_level(req).await {
            Ok(queued) => {
                tracing::info!(user_id = %key.0, period = %key.1, percent, queued, "cost budget level reported");
                reported.entry(key.clone()).or_default().budget_level = percent;
            }
            Err(status) => {
                // A refusal is remembered only until reported: the next refusal or charge
                // brings it back.
                tracing::warn!(code = ?status.code(), message = status.message(), user_id = %key.0, percent, "cost budget level not reported; retried at the next charge or refusal");
                return;
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
    use super::{budget_alert, budget_level, level};

    #[test]
    fn the_budget_is_spent_at_100_percent_or_at_a_refusal() {
        assert_eq!(budget_level(799, 1000, false), 0);
        assert_eq!(budget_level(800, 1000, false), 80);
        assert_eq!(budget_level(999, 1000, false), 80);
        assert_eq!(budget_level(1000, 1000, false), 100);
        assert_eq!(budget_level(920, 1000, true), 100);
        assert_eq!(budget_level(0, 1000, true), 100);
        assert_eq!(budget_level(10, 0, true), 0);
    }

    #[test]
    fn the_budget_alert_is_at_80_percent() {
        assert!(!budget_alert(799, 1000));
        assert!(budget_alert(800, 1000));
        assert!(budget_alert(5000, 1000));
        assert!(!budget_alert(10, 0));
        assert!(budget_alert(u64::MAX, u64::MAX));
    }

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
