//! Package quotas (requests per minute, tokens per month), exact across replicas without a
//! database round trip per request. Quotas belong to the customer (the package is theirs), so
//! every key of a customer spends one budget: the ledger's subject is the customer id
//! ([`crate::auth::KeyInfo::quota_subject`]).
//!
//! # Design: leases
//! The shared store ([`crate::store::Store::reserve`]) holds, per customer and window, how much of the
//! limit has been *granted* to replicas. A replica reserves a block (a lease) with one guarded
//! UPDATE that can never take the total past the limit, then admits requests from memory until
//! the block is spent. So:
//! - **never more than the limit is admitted**, whatever the number of replicas (each admission
//!   spends a unit that the database granted exactly once);
//! - the database is touched once per block, not per request (blocks are a fraction of the limit,
//!   capped: [`request_block`], [`token_block`]), and the next block is reserved in the
//!   background when a lease falls below half a block, so busy customers do not wait for it (a call
//!   that finds the lease empty while such a refill is in flight waits for it rather than being
//!   refused, otherwise the refill's units could go unused);
//! - the price is possible *under*-admission near the limit: units leased by one replica and
//!   unused cannot serve another. Request leases die with their minute; token leases are given
//!   back on graceful shutdown and when a customer has been idle for [`IDLE_RELEASE`]. A replica
//!   that crashes loses at most one token block per customer for the month.
//!
//! Requests per minute use fixed windows of calendar minutes (UTC, the wall clock every replica
//! shares); a refusal says when the next minute starts. Tokens per month are counted per
//! calendar month (UTC). Token usage is only known after the answer: admission needs a positive
//! local balance and *holds* an estimate (prompt size / 4 + `max_tokens`, or 256 without it) so
//! that concurrent calls cannot all pass on the last units; the settlement replaces the hold by
//! the real count, possibly driving the balance negative (a debt repaid from the next block).
//! The overshoot past the monthly limit is therefore bounded by what the last admitted calls
//! generate beyond their estimate, the usual bound for post-paid token metering.
//!
//! # Monthly upstream-cost budget (margin protection)
//! A package may carry a monthly budget of upstream cost, in nano-USD (the unit the usage rows
//! record, so the gateway compares like with like and no exchange rate enters enforcement). It
//! is leased exactly like the tokens (kind `cost`, window = the calendar month, subject = the
//! customer), with one difference that makes it strict: a call is admitted only when the local
//! balance covers its whole cost *hold* (its token hold priced at the model's dearest rate,
//! [`Hold`]), not merely when the balance is positive. The hold is an upper bound of what the
//! call can cost (unless the provider counts more prompt tokens than the estimate), so the spend
//! of all replicas together never passes what the store granted, which never passes the budget.
//! The under-admission price is the same as for tokens: at most one block per replica left
//! unused near the end of the month.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{Datelike, TimeZone, Utc};

use crate::error::{GatewayError, QuotaLimit};
use crate::store::Store;

/// A customer unseen for this long gives their token lease back.
pub const IDLE_RELEASE: Duration = Duration::from_secs(300);

/// The limits of a customer's package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub requests_per_minute: u32,
    pub tokens_per_month: u64,
    /// Upstream cost allowed per calendar month, nano-USD; `None`: no budget.
    pub cost_budget_nano_usd: Option<u64>,
}

/// What a running call holds from its customer's leases until it is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hold {
    /// Tokens: the prompt estimate plus the answer's bound.
    pub tokens: u64,
    /// Upstream cost, nano-USD: [`Hold::tokens`] priced at the model's dearest rate. Zero when
    /// the package has no budget (nothing is held, and the settlement charges no cost).
    pub cost_nano_usd: u64,
    /// The call was admitted under a cost budget: its settlement charges the cost lease.
    pub budgeted: bool,
}

/// Upstream cost leased at a time: 2 % of the monthly budget, at least 1 nano-USD, at most one
/// dollar (a replica that crashes loses at most that much of a customer's month).
pub fn cost_block(limit: u64) -> i64 {
    i64::try_from((limit / 50).clamp(1, 1_000_000_000)).unwrap_or(1_000_000_000)
}

/// Requests leased at a time: a tenth of the limit, at least 1, at most 1 000.
pub fn request_block(limit: u32) -> i64 {
    i64::from((limit / 10).clamp(1, 1000))
}

/// Tokens leased at a time: 2 % of the monthly limit, at least 1, at most 200 000.
pub fn token_block(limit: u64) -> i64 {
    i64::try_from((limit / 50).clamp(1, 200_000)).unwrap_or(200_000)
}

/// Calendar month (UTC) of an epoch-ms instant: `2026-11`.
pub fn period_of(ms: i64) -> String {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    format!("{:04}-{:02}", t.year(), t.month())
}

/// Calendar day (UTC) of an epoch-ms instant: `2026-11-30` (inside [`period_of`]'s month).
pub fn day_of(ms: i64) -> String {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

/// Epoch ms of the first instant of the month after the one containing `ms`.
pub fn next_period_start_ms(ms: i64) -> i64 {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map(|d| d.timestamp_millis())
        .unwrap_or(ms + 31 * 86_400_000)
}

/// Whole seconds from `now_ms` to `until_ms`, at least 1.
fn secs_until(now_ms: i64, until_ms: i64) -> u64 {
    u64::try_from((until_ms - now_ms + 999) / 1000)
        .unwrap_or(1)
        .max(1)
}

#[derive(Debug)]
struct KeyLease {
    minute: i64,
    requests_left: i64,
    period: String,
    tokens_left: i64,
    last_used: Instant,
    /// `period` as a number (months since year 0), the window id of token refills.
    period_idx: i64,
    /// Background reservations (at most one in flight per kind), delivered without the lock.
    request_refill: Arc<Refill>,
    token_refill: Arc<Refill>,
    /// The store granted nothing for this minute at this limit: refuse from memory until the
    /// minute ends (a refused client hammering the gateway must not cost a write per call).
    requests_exhausted: Option<(i64, u32)>,
    /// The store granted nothing for this month at this limit, at that instant: refuse from
    /// memory for [`EXHAUSTED_RECHECK`] (other replicas may give leases back meanwhile).
    tokens_exhausted: Option<(Instant, u64)>,
    /// Upstream cost (nano-USD) leased for `period` and not yet spent or held.
    cost_left: i64,
    cost_refill: Arc<Refill>,
    /// As `tokens_exhausted`, for the cost budget.
    cost_exhausted: Option<(Instant, u64)>,
}

/// Units reserved by a background task for a window, handed over without the lease's lock (the
/// lease may be locked by calls waiting for exactly these units).
#[derive(Debug, Default)]
struct Refill {
    busy: AtomicBool,
    /// (window, units delivered for it and not yet taken)
    delivered: Mutex<(i64, i64)>,
    done: tokio::sync::Notify,
}

impl Refill {
    fn deliver(&self, window: i64, units: i64) {
        let mut d = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
        if d.0 != window {
            // Units of an earlier window that nobody took are void: never count them twice.
            *d = (window, 0);
        }
        d.1 += units;
    }

    /// The delivered units of `window` (units of another window are dropped).
    fn take(&self, window: i64) -> i64 {
        let mut d = self.delivered.lock().unwrap_or_else(|e| e.into_inner());
        let units = if d.0 == window { d.1 } else { 0 };
        d.1 = 0;
        units
    }

    /// Waits for a refill in flight, then takes what it delivered: a call must not be refused
    /// while units reserved for this replica are on their way (they would go unused).
    async fn wait_take(&self, window: i64) -> i64 {
        let notified = self.done.notified();
        if self.busy.load(Ordering::Acquire) {
            notified.await;
        }
        self.take(window)
    }

    /// Claims the right to start a refill.
    fn start(&self) -> bool {
        self.busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn finish(&self) {
        self.busy.store(false, Ordering::Release);
        self.done.notify_waiters();
    }
}

/// Months since year 0 of an epoch-ms instant (the token window id).
fn period_index(ms: i64) -> i64 {
    let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

/// How long a replica trusts "no tokens left this month" before asking the store again.
pub const EXHAUSTED_RECHECK: Duration = Duration::from_secs(2);

/// Admission control and token charging for every customer seen by this replica.
pub struct QuotaManager {
    store: Store,
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<KeyLease>>>>,
}

impl QuotaManager {
    pub fn new(store: Store) -> Self {
        QuotaManager {
            store,
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn lease(&self, subject: &str) -> Arc<tokio::sync::Mutex<KeyLease>> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = keys.get(subject) {
            return l.clone();
        }
        let l = Arc::new(tokio::sync::Mutex::new(KeyLease {
            minute: -1,
            requests_left: 0,
            period: String::new(),
            tokens_left: 0,
            last_used: Instant::now(),
            period_idx: -1,
            request_refill: Arc::default(),
            token_refill: Arc::default(),
            requests_exhausted: None,
            tokens_exhausted: None,
            cost_left: 0,
            cost_refill: Arc::default(),
            cost_exhausted: None,
        }));
        keys.insert(subject.to_owned(), l.clone());
        l
    }

    /// Admits one request for `subject` or says which limit refuses it and for how long.
    /// The `hold` (tokens: prompt estimate + max_tokens; cost: those priced at the model's
    /// dearest rate) is taken from the leases until [`QuotaManager::settle`], so concurrent calls
    /// cannot all slip through on the last units. Returns what was actually held (no cost
    /// without a budget), to be given to [`QuotaManager::settle`].
    pub async fn admit(
        &self,
        subject: &str,
        limits: Limits,
        hold: Hold,
    ) -> Result<Hold, GatewayError> {
        self.admit_at(subject, limits, hold, iafactory::db::now_millis())
            .await
    }

    /// [`QuotaManager::admit`] at a given wall-clock instant (tests).
    pub async fn admit_at(
        &self,
        subject: &str,
        limits: Limits,
        hold: Hold,
        now_ms: i64,
    ) -> Result<Hold, GatewayError> {
        let estimate = hold.tokens;
        let lease = self.lease(subject);
        let mut l = lease.lock().await;
        l.last_used = Instant::now();

        // Tokens first: checking them consumes nothing, so a refusal costs no request slot.
        let period = period_of(now_ms);
        if l.period != period {
            l.period = period;
            l.period_idx = period_index(now_ms);
            l.tokens_left = 0;
            l.tokens_exhausted = None;
            l.cost_left = 0;
            l.cost_exhausted = None;
        }
        let pidx = l.period_idx;
        l.tokens_left += l.token_refill.take(pidx);
        if l.tokens_left <= 0 {
            let refill = l.token_refill.clone();
            l.tokens_left += refill.wait_take(pidx).await;
        }
        let tokens_refused = || GatewayError::Quota {
            limit: QuotaLimit::TokensPerMonth,
            limit_value: limits.tokens_per_month,
            retry_after_secs: secs_until(now_ms, next_period_start_ms(now_ms)),
        };
        if l.tokens_left <= 0
            && l.tokens_exhausted.is_some_and(|(at, lim)| {
                lim == limits.tokens_per_month && at.elapsed() < EXHAUSTED_RECHECK
            })
        {
            return Err(tokens_refused());
        }
        if l.tokens_left <= 0 {
            let limit = i64::try_from(limits.tokens_per_month).unwrap_or(i64::MAX);
            let want = token_block(limits.tokens_per_month).saturating_add(-l.tokens_left);
            let granted = self
                .store
                .reserve(subject, "tokens", &l.period, want, limit)
                .await?;
            l.tokens_left += granted;
            if l.tokens_left <= 0 {
                l.tokens_exhausted = Some((Instant::now(), limits.tokens_per_month));
                return Err(tokens_refused());
            }
            l.tokens_exhausted = None;
        }

        // The cost budget, checked before the request slot for the same reason.
        let held = match limits.cost_budget_nano_usd {
            Some(budget) => {
                self.admit_cost(subject, &mut l, budget, hold.cost_nano_usd, now_ms)
                    .await?;
                Hold {
                    budgeted: true,
                    ..hold
                }
            }
            None => Hold {
                tokens: hold.tokens,
                cost_nano_usd: 0,
                budgeted: false,
            },
        };

        let minute = now_ms.div_euclid(60_000);
        if l.minute != minute {
            l.minute = minute;
            l.requests_left = 0;
        }
        l.requests_left += l.request_refill.take(minute);
        if l.requests_left <= 0 {
            let refill = l.request_refill.clone();
            l.requests_left += refill.wait_take(minute).await;
        }
        let requests_refused = || GatewayError::Quota {
            limit: QuotaLimit::RequestsPerMinute,
            limit_value: u64::from(limits.requests_per_minute),
            retry_after_secs: secs_until(now_ms, (minute + 1) * 60_000),
        };
        if l.requests_left <= 0
            && l.requests_exhausted == Some((minute, limits.requests_per_minute))
        {
            return Err(requests_refused());
        }
        if l.requests_left <= 0 {
            let granted = self
                .store
                .reserve(
                    subject,
                    "requests",
                    &minute.to_string(),
                    request_block(limits.requests_per_minute),
                    i64::from(limits.requests_per_minute),
                )
                .await?;
            l.requests_left += granted;
            if l.requests_left <= 0 {
                l.requests_exhausted = Some((minute, limits.requests_per_minute));
                return Err(requests_refused());
            }
        }
        l.requests_left -= 1;
        l.tokens_left = l
            .tokens_left
            .saturating_sub(i64::try_from(estimate).unwrap_or(i64::MAX));
        l.cost_left = l
            .cost_left
            .saturating_sub(i64::try_from(held.cost_nano_usd).unwrap_or(i64::MAX));
        self.prefetch(subject, &mut l, limits, minute);
        Ok(held)
    }

    /// Makes sure the cost lease covers `hold` nano-USD (reserving from the store what it
    /// lacks), or refuses with `budget_exceeded` until the next month. Takes nothing: the
    /// caller subtracts the hold once every limit admitted the call.
    async fn admit_cost(
        &self,
        subject: &str,
        l: &mut KeyLease,
        budget: u64,
        hold: u64,
        now_ms: i64,
    ) -> Result<(), GatewayError> {
        let refused = || GatewayError::Budget {
            retry_after_secs: secs_until(now_ms, next_period_start_ms(now_ms)),
        };
        let hold = i64::try_from(hold).unwrap_or(i64::MAX);
        let pidx = l.period_idx;
        l.cost_left += l.cost_refill.take(pidx);
        if l.cost_left < hold.max(1) {
            let refill = l.cost_refill.clone();
            l.cost_left += refill.wait_take(pidx).await;
        }
        if l.cost_left >= hold.max(1) {
            return Ok(());
        }
        if l.cost_exhausted
            .is_some_and(|(at, lim)| lim == budget && at.elapsed() < EXHAUSTED_RECHECK)
        {
            return Err(refused());
        }
        let limit = i64::try_from(budget).unwrap_or(i64::MAX);
        // What the lease lacks for this call, plus a block for the next ones (so that calls
        // whose hold exceeds a block do not each go to the store).
        let want = cost_block(budget).saturating_add(hold.max(1).saturating_sub(l.cost_left));
        let granted = self
            .store
            .reserve(subject, "cost", &l.period, want, limit)
            .await?;
        l.cost_left += granted;
        if l.cost_left >= hold.max(1) {
            l.cost_exhausted = None;
            return Ok(());
        }
        // The budget cannot cover this call: what was granted stays leased for smaller calls
        // (or is given back when the customer goes idle).
        l.cost_exhausted = Some((Instant::now(), budget));
        Err(refused())
    }

    /// When a lease runs below half a block, reserves the next block in the background so that
    /// busy customers (almost) never wait for the database on the request path.
    fn prefetch(&self, subject: &str, l: &mut KeyLease, limits: Limits, minute: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let rblock = request_block(limits.requests_per_minute);
        if rblock > 1 && l.requests_left < rblock / 2 && l.request_refill.start() {
            let (store, refill, key) = (
                self.store.clone(),
                l.request_refill.clone(),
                subject.to_owned(),
            );
            let limit = i64::from(limits.requests_per_minute);
            runtime.spawn(async move {
                match store
                    .reserve(&key, "requests", &minute.to_string(), rblock, limit)
                    .await
                {
                    Ok(g) => refill.deliver(minute, g),
                    Err(e) => tracing::warn!(error = %e, "background request lease failed"),
                }
                refill.finish();
            });
        }
        let tblock = token_block(limits.tokens_per_month);
        if tblock > 1 && l.tokens_left < tblock / 2 && l.token_refill.start() {
            let (store, refill, key) = (
                self.store.clone(),
                l.token_refill.clone(),
                subject.to_owned(),
            );
            let (period, pidx) = (l.period.clone(), l.period_idx);
            let limit = i64::try_from(limits.tokens_per_month).unwrap_or(i64::MAX);
            runtime.spawn(async move {
                match store.reserve(&key, "tokens", &period, tblock, limit).await {
                    // Delivered for its month: if the month has turned, nobody takes them.
                    Ok(g) => refill.deliver(pidx, g),
                    Err(e) => tracing::warn!(error = %e, "background token lease failed"),
                }
                refill.finish();
            });
        }
        let Some(budget) = limits.cost_budget_nano_usd else {
            return;
        };
        let cblock = cost_block(budget);
        if cblock > 1 && l.cost_left < cblock / 2 && l.cost_refill.start() {
            let (store, refill, key) = (
                self.store.clone(),
                l.cost_refill.clone(),
                subject.to_owned(),
            );
            let (period, pidx) = (l.period.clone(), l.period_idx);
            let limit = i64::try_from(budget).unwrap_or(i64::MAX);
            runtime.spawn(async move {
                match store.reserve(&key, "cost", &period, cblock, limit).await {
                    Ok(g) => refill.deliver(pidx, g),
                    Err(e) => tracing::warn!(error = %e, "background cost lease failed"),
                }
                refill.finish();
            });
        }
    }

    /// Settles an admitted call: gives back the `held` estimate and charges the `actual` tokens
    /// and cost (0 for a call that produced nothing). The balance may go negative: a debt repaid
    /// from the next block (see the module docs). Cost is charged only to a call admitted under
    /// a budget (`held.budgeted`).
    pub async fn settle(&self, subject: &str, held: Hold, actual: Hold, now_ms: i64) {
        let lease = self.lease(subject);
        let mut l = lease.lock().await;
        let period = period_of(now_ms);
        let (held_tokens, held_cost) = if l.period != period {
            // The month turned during the call: the hold belonged to the old month's lease;
            // charge the new month.
            l.period = period;
            l.period_idx = period_index(now_ms);
            l.tokens_left = 0;
            l.cost_left = 0;
            (0, 0)
        } else {
            (
                i64::try_from(held.tokens).unwrap_or(i64::MAX),
                i64::try_from(held.cost_nano_usd).unwrap_or(i64::MAX),
            )
        };
        l.tokens_left = l
            .tokens_left
            .saturating_add(held_tokens)
            .saturating_sub(i64::try_from(actual.tokens).unwrap_or(i64::MAX));
        if held.budgeted {
            l.cost_left = l
                .cost_left
                .saturating_add(held_cost)
                .saturating_sub(i64::try_from(actual.cost_nano_usd).unwrap_or(i64::MAX));
        }
    }

    /// Gives back the token leases of customers idle for `idle` (all of them with `Duration::ZERO`).
    pub async fn release_idle(&self, idle: Duration) {
        let candidates: Vec<(String, Arc<tokio::sync::Mutex<KeyLease>>)> = {
            let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (subject, lease) in candidates {
            let mut l = lease.lock().await;
            if l.last_used.elapsed() < idle {
                continue;
            }
            let refilling = l.token_refill.busy.load(Ordering::Acquire)
                || l.request_refill.busy.load(Ordering::Acquire)
                || l.cost_refill.busy.load(Ordering::Acquire);
            if refilling && !idle.is_zero() {
                continue;
            }
            if refilling {
                // Shutdown: a block still on its way must be given back too, or it stays
                // reserved for the rest of the month. The refill tasks never take the lease's
                // lock, so waiting for them here cannot deadlock.
                let (tokens, requests) = (l.token_refill.clone(), l.request_refill.clone());
                let (pidx, minute) = (l.period_idx, l.minute);
                l.tokens_left += tokens.wait_take(pidx).await;
                let cost = l.cost_refill.clone();
                l.cost_left += cost.wait_take(pidx).await;
                // Request units die with their minute: nothing to give back.
                let _ = requests.wait_take(minute).await;
            }
            let pidx = l.period_idx;
            l.tokens_left += l.token_refill.take(pidx);
            l.cost_left += l.cost_refill.take(pidx);
            if l.cost_left > 0 {
                if let Err(e) = self
                    .store
                    .release(&subject, "cost", &l.period, l.cost_left)
                    .await
                {
                    tracing::warn!(error = %e, "cannot give a cost lease back; kept");
                    continue;
                }
                l.cost_left = 0;
            }
            if l.tokens_left > 0 {
                if let Err(e) = self
                    .store
                    .release(&subject, "tokens", &l.period, l.tokens_left)
                    .await
                {
                    tracing::warn!(error = %e, "cannot give a token lease back; kept");
                    continue;
                }
                l.tokens_left = 0;
            }
            if l.tokens_left == 0 && l.cost_left == 0 {
                drop(l);
                let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
                // Only forget the entry if nobody picked it up meanwhile.
                if keys
                    .get(&subject)
                    .is_some_and(|v| Arc::strong_count(v) <= 2)
                {
                    keys.remove(&subject);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(n: u64) -> Hold {
        Hold {
            tokens: n,
            ..Hold::default()
        }
    }

    async fn scratch_store() -> Option<(tempfile::TempDir, Store)> {
        let dir = tempfile::tempdir().ok()?;
        let store = Store::connect(&format!("sqlite://{}/q.db", dir.path().display()))
            .await
            .ok()?;
        Some((dir, store))
    }

    #[tokio::test]
    async fn a_cost_budget_admits_only_calls_it_covers_and_settles_the_real_cost() {
        let scratch = scratch_store().await;
        assert!(scratch.is_some());
        let Some((_dir, store)) = scratch else { return };
        let q = QuotaManager::new(store.clone());
        let limits = Limits {
            requests_per_minute: 1_000,
            tokens_per_month: 1_000_000,
            cost_budget_nano_usd: Some(1_000),
        };
        let t = 1_800_000_030_000;
        let hold = Hold {
            tokens: 10,
            cost_nano_usd: 400,
            budgeted: false,
        };
        // Two holds of 400 fit in 1 000; a third does not, even though 200 are left.
        let a = q.admit_at("k", limits, hold, t).await;
        assert!(matches!(a, Ok(h) if h.budgeted && h.cost_nano_usd == 400));
        assert!(q.admit_at("k", limits, hold, t).await.is_ok());
        let third = q.admit_at("k", limits, hold, t).await;
        assert!(
            matches!(third, Err(GatewayError::Budget { .. })),
            "{third:?}"
        );
        assert_eq!(
            store.reserved("k", "cost", &period_of(t)).await.ok(),
            Some(1_000)
        );
        // One call cost 100, not 400: 300 come back and a hold of 400 fits again (200 + 300).
        let spent = Hold {
            tokens: 10,
            cost_nano_usd: 100,
            budgeted: true,
        };
        q.settle(
            "k",
            Hold {
                budgeted: true,
                ..hold
            },
            spent,
            t,
        )
        .await;
        assert!(q.admit_at("k", limits, hold, t).await.is_ok());
        // Without a budget nothing is held or charged.
        let free = Limits {
            cost_budget_nano_usd: None,
            ..limits
        };
        let h = q.admit_at("other", free, hold, t).await;
        assert!(matches!(h, Ok(h) if !h.budgeted && h.cost_nano_usd == 0));
        assert_eq!(
            store.reserved("other", "cost", &period_of(t)).await.ok(),
            Some(0)
        );
    }

    #[test]
    fn periods_and_resets() {
        // 2026-11-24T06:00:00Z
        let t = Utc
            .with_ymd_and_hms(2026, 11, 24, 6, 0, 0)
            .single()
            .map(|d| d.timestamp_millis())
            .unwrap_or_default();
        assert_eq!(period_of(t), "2026-11");
        let next = next_period_start_ms(t);
        assert_eq!(period_of(next), "2026-12");
        assert_eq!(period_of(next - 1), "2026-11");
        let dec = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .map(|d| d.timestamp_millis())
            .unwrap_or_default();
        assert_eq!(period_of(next_period_start_ms(dec)), "2027-01");
        assert_eq!(secs_until(0, 1), 1);
        assert_eq!(secs_until(0, 60_000), 60);
    }

    #[tokio::test]
    async fn exhausted_limits_are_refused_from_memory_without_the_store() {
        let dir = tempfile::tempdir();
        assert!(dir.is_ok());
        let Ok(dir) = dir else { return };
        let store = Store::connect(&format!("sqlite://{}/q.db", dir.path().display())).await;
        assert!(store.is_ok());
        let Ok(store) = store else { return };
        let q = QuotaManager::new(store.clone());
        let limits = Limits {
            requests_per_minute: 2,
            tokens_per_month: 1_000,
            cost_budget_nano_usd: None,
        };
        // 30 s into a minute, so the three calls share it.
        let t = 1_800_000_030_000;
        assert!(q.admit_at("k", limits, tokens(10), t).await.is_ok());
        assert!(q.admit_at("k", limits, tokens(10), t).await.is_ok());
        let third = q.admit_at("k", limits, tokens(10), t).await;
        assert!(matches!(
            third,
            Err(GatewayError::Quota {
                limit: QuotaLimit::RequestsPerMinute,
                retry_after_secs: 30,
                ..
            })
        ));
        // With the store gone, the refusal still comes from memory (no write per refused call).
        store.close().await;
        let again = q.admit_at("k", limits, tokens(10), t).await;
        assert!(matches!(
            again,
            Err(GatewayError::Quota {
                limit: QuotaLimit::RequestsPerMinute,
                ..
            })
        ));
        // A new minute needs the store: it is gone, so that is an error, not an admission.
        assert!(
            q.admit_at("k", limits, tokens(10), t + 60_000)
                .await
                .is_err()
        );
    }

    #[test]
    fn blocks_are_fractions_of_the_limit() {
        assert_eq!(request_block(30), 3);
        assert_eq!(request_block(5), 1);
        assert_eq!(request_block(1_000_000), 1000);
        assert_eq!(token_block(1_000_000), 20_000);
        assert_eq!(token_block(10), 1);
        assert_eq!(token_block(u64::MAX), 200_000);
        assert_eq!(cost_block(1_000), 20);
        assert_eq!(cost_block(10), 1);
        assert_eq!(cost_block(u64::MAX), 1_000_000_000);
    }
}
