//! Usage accounting. Invariant: **no answer leaves before the usage it reports is durably in
//! the store.** A SIGKILL of the process at any instant loses no answered call: every answered
//! call — and every chunk of a stream that reached its client — is already committed.
//!
//! # Design: group commit
//! A call hands its usage to [`UsageRecorder::charge`] and awaits it before its answer (or its
//! next stream chunk) leaves. Charges go into the *open batch* (an in-memory aggregate per
//! `(key, month, day, model, provider)`, one short lock); one writer task takes the whole open
//! batch, writes it (the rows `(key, day, model, provider)` of `llm_usage`: one statement for up
//! to [`crate::store::ROWS_PER_STATEMENT`] rows, else one transaction), then wakes every call of
//! that batch and tells the quota notices ([`crate::notices`]) which customers it touched. While it writes, new charges gather in the next
//! batch, so under load many calls share one commit (and one fsync on PostgreSQL) and the
//! writes per second stay bounded by the database's commit latency, not by the call rate: under
//! load a call pays one lock, one wake-up and the wait for a commit it shares. A call alone
//! pays a commit of its own (there is nothing to share it with; see the README's figures).
//! Calls on the same key in one batch are merged into one row upsert.
//!
//! Charges are *additive deltas* into `llm_usage` (`requests`, tokens, nano-dollars), so a call
//! may be charged in several steps with no settlement and no orphan to sweep after a crash:
//! - a unary call is charged once, when the provider has answered, before the answer is sent;
//! - a stream is charged, before each chunk leaves, for everything received from the provider
//!   so far (one request, the prompt estimate and the completion estimated from the characters
//!   received; chunks already buffered are drained first so one write covers them all); at its
//!   end, before the final event, the difference to the provider's own token count is charged
//!   (possibly negative). A stream cut by a crash is thus charged at least what its client
//!   received and never more than the provider produced; a call is charged to the month it
//!   started in, so a correction never lands in another month's row.
//!
//! # When the store is unavailable
//! A charge whose batch cannot be written fails with [`GatewayError::Unavailable`] and the call
//! fails with `UNAVAILABLE` instead of answering: the upstream work is then not delivered and
//! not charged. Busy/serialisation errors (which guarantee that nothing was committed) are
//! retried a few times first; any other error is not retried (the commit may have happened,
//! and a retry could charge twice). An error on the commit itself may leave the batch charged
//! for answers that were never sent: the store errs towards charging work the provider did,
//! never towards answering uncharged work.
//!
//! Durability is the database's: PostgreSQL commits are fsynced; SQLite runs in WAL mode with
//! `synchronous = NORMAL`, durable across a crash of the process (what SIGKILL is), not across
//! a power cut of the machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;

use tokio::sync::{Notify, watch};

use crate::error::GatewayError;
use crate::notices::QuotaNotices;
use crate::store::{Store, UsageKey, UsageSums};

/// Nano-dollars from dollars, rounded.
pub fn to_nano_usd(usd: f64) -> i64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).round() as i64
    } else {
        0
    }
}

/// Attempts for a batch failing with a retryable (nothing-committed) error.
const WRITE_ATTEMPTS: u32 = 3;

/// The state of one batch, as seen by the calls waiting for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchState {
    Open,
    Written,
    Failed,
}

struct Open {
    rows: HashMap<UsageKey, UsageSums>,
    /// Where the writer announces the open batch's outcome.
    done: watch::Sender<BatchState>,
    /// The batch being written, if any (for [`UsageRecorder::flush`]).
    in_flight: Option<watch::Receiver<BatchState>>,
    /// Set at shutdown: later charges fail, the writer exits once the open batch is written.
    closed: bool,
}

struct Inner {
    open: Mutex<Open>,
    wake: Notify,
}

/// Charges usage durably, in group commits (see the module docs).
pub struct UsageRecorder {
    store: Store,
    inner: Arc<Inner>,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn unavailable() -> GatewayError {
    GatewayError::Unavailable(
        "usage store unavailable: the call could not be charged and was not answered; retry".into(),
    )
}

impl UsageRecorder {
    /// Starts the writer task on the current Tokio runtime. With `notices`, every written
    /// batch tells it which customers it charged (the 80 % / 100 % quota e-mails).
    pub fn start(store: Store, notices: Option<Arc<QuotaNotices>>) -> Self {
        let (done, _) = watch::channel(BatchState::Open);
        let inner = Arc::new(Inner {
            open: Mutex::new(Open {
                rows: HashMap::new(),
                done,
                in_flight: None,
                closed: false,
            }),
            wake: Notify::new(),
        });
        let writer = tokio::spawn(write_batches(store.clone(), inner.clone(), notices));
        UsageRecorder {
            store,
            inner,
            writer: Mutex::new(Some(writer)),
        }
    }

    /// Adds `sums` to the open batch and waits until that batch is committed. `Ok` means the
    /// charge is durable; an error means the caller must not deliver the work it charges.
    ///
    /// Cancel-safe in the direction that matters: once this is called, the charge is written
    /// with its batch even if the caller stops waiting.
    pub async fn charge(&self, key: UsageKey, sums: UsageSums) -> Result<(), GatewayError> {
        let mut done = {
            let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
            if open.closed {
                return Err(unavailable());
            }
            open.rows.entry(key).or_default().add(&sums);
            open.done.subscribe()
        };
        self.inner.wake.notify_one();
        match done.wait_for(|s| *s != BatchState::Open).await {
            Ok(s) if *s == BatchState::Written => Ok(()),
            _ => Err(unavailable()),
        }
    }

    /// Waits until everything charged so far is written (or failed). Returns how many rows
    /// were waiting. Charges are written before answers anyway: this is for tests and
    /// diagnostics that look at the store directly.
    pub async fn flush(&self) -> Result<usize, GatewayError> {
        let (pending, open, in_flight) = {
            let open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
            (
                open.rows.len(),
                (!open.rows.is_empty()).then(|| open.done.subscribe()),
                open.in_flight.clone(),
            )
        };
        for mut rx in [in_flight, open].into_iter().flatten() {
            if !matches!(
                rx.wait_for(|s| *s != BatchState::Open).await.map(|s| *s),
                Ok(BatchState::Written)
            ) {
                return Err(unavailable());
            }
        }
        Ok(pending)
    }

    /// Refuses new charges, writes what is open and stops the writer (graceful shutdown, after
    /// in-flight calls have drained).
    pub async fn close(&self) {
        {
            let mut open = self.inner.open.lock().unwrap_or_else(|e| e.into_inner());
            open.closed = true;
        }
        self.inner.wake.notify_one();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = writer
            && let Err(e) = w.await
        {
            tracing::error!(error = %e, "usage writer task failed");
        }
    }

    /// The store the usage is written to (the request log's reads share it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Usage of `key_id` in `period` per (model, provider). Everything answered is in the store.
    pub async fn report(
        &self,
        key_id: &str,
        period: &str,
    ) -> Result<Vec<(UsageKey, UsageSums)>, sqlx::Error> {
        self.store.usage(key_id, period).await
    }

    /// Usage of `key_id` per day of `period`, days in order (days without usage absent).
    pub async fn report_by_day(
        &self,
        key_id: &str,
        period: &str,
    ) -> Result<Vec<(String, UsageSums)>, sqlx::Error> {
        self.store.usage_by_day(key_id, period).await
    }

    /// Tokens a customer used in `period` over all their keys.
    pub async fn customer_tokens(&self, user_id: &str, period: &str) -> Result<u64, sqlx::Error> {
        let used = self.store.customer_tokens(user_id, period).await?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    /// When the key was last charged, if ever.
    pub async fn last_used(&self, key_id: &str) -> Result<Option<i64>, sqlx::Error> {
        self.store.last_used(key_id).await
    }
}

/// How long the writer keeps its database connection across batches. Returning a connection
/// to the pool costs a ping (for SQLite, one more round trip to its thread per batch, as much
/// as the write itself); kept briefly, a steady stream of batches pays it once per `HOLD`. Other
/// users of SQLite's single write connection (quota leases) wait at most this long for it.
const HOLD: Duration = Duration::from_millis(5);

/// The writer: takes the open batch, writes it, announces the outcome, until closed.
async fn write_batches(store: Store, inner: Arc<Inner>, notices: Option<Arc<QuotaNotices>>) {
    // The connection kept between batches, and since when.
    let mut held: Option<(PoolConnection<sqlx::Any>, Instant)> = None;
    loop {
        let taken = {
            let mut open = inner.open.lock().unwrap_or_else(|e| e.into_inner());
            if open.rows.is_empty() {
                if open.closed {
                    return;
                }
                None
            } else {
                // The next batch's waiters subscribe to the new sender; no receiver is kept.
                let (next, _) = watch::channel(BatchState::Open);
                let done = std::mem::replace(&mut open.done, next);
                open.in_flight = Some(done.subscribe());
                Some((std::mem::take(&mut open.rows), done))
            }
        };
        let Some((rows, done)) = taken else {
            // `notify_one` keeps a permit when nobody waits, so a charge made between the
            // check above and this wait still wakes the writer.
            let left = held.as_ref().map_or(Duration::ZERO, |(_, since)| {
                HOLD.saturating_sub(since.elapsed())
            });
            if left.is_zero() {
                held = None;
                inner.wake.notified().await;
            } else if tokio::time::timeout(left, inner.wake.notified())
                .await
                .is_err()
            {
                held = None;
            }
            continue;
        };
        if held
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= HOLD)
        {
            held = None;
        }
        let conn = match held.take() {
            Some(c) => Ok(c),
            None => store.db.write.acquire().await.map(|c| (c, Instant::now())),
        };
        let rows: Vec<(UsageKey, UsageSums)> = rows.into_iter().collect();
        let written = match conn {
            Ok((mut c, since)) => {
                let r = write(&mut c, &rows).await;
                // A connection that failed goes back to the pool, which tests it.
                if r.is_ok() {
                    held = Some((c, since));
                }
                r
            }
            Err(e) => Err(e),
        };
        let state = match written {
            Ok(()) => {
                if let Some(n) = &notices {
                    n.touched(&rows);
                }
                BatchState::Written
            }
            Err(e) => {
                tracing::error!(error = %e, rows = rows.len(), "usage batch not written; its calls fail as unavailable");
                BatchState::Failed
            }
        };
        done.send_replace(state);
    }
}

/// Writes one batch, retrying only errors that guarantee nothing was committed.
async fn write(
    conn: &mut sqlx::AnyConnection,
    rows: &[(UsageKey, UsageSums)],
) -> Result<(), sqlx::Error> {
    let mut attempt = 1;
    loop {
        match Store::add_usage_on(conn, rows).await {
            Err(e) if attempt < WRITE_ATTEMPTS && iafactory::db::is_retryable(&e) => {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> UsageKey {
        UsageKey {
            key_id: k.into(),
            period: "2026-12".into(),
            day: "2026-12-02".into(),
            model: "m".into(),
            provider: "p".into(),
            tokens_per_month: 0,
            cost_budget_nano_usd: 0,
        }
    }

    fn one_call() -> UsageSums {
        UsageSums {
            user_id: "u".into(),
            requests: 1,
            prompt_tokens: 3,
            completion_tokens: 2,
            cost_nano_usd: 7,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_charge_is_in_the_store_and_a_dead_store_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}/u.db", dir.path().display()))
            .await
            .unwrap();
        let usage = Arc::new(UsageRecorder::start(store.clone(), None));
        // 400 concurrent charges on 60 keys: batches of many calls, some beyond one
        // statement's rows (a transaction), negative deltas included.
        let mut tasks = Vec::new();
        for i in 0..400 {
            let usage = usage.clone();
            tasks.push(tokio::spawn(async move {
                let mut sums = one_call();
                if i % 4 == 0 {
                    sums.completion_tokens = -1;
                }
                usage.charge(key(&format!("k{}", i % 60)), sums).await
            }));
        }
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        let mut requests = 0;
        let mut completion = 0;
        for k in 0..60 {
            for (_, s) in usage.report(&format!("k{k}"), "2026-12").await.unwrap() {
                requests += s.requests;
                completion += s.completion_tokens;
            }
        }
        assert_eq!(requests, 400);
        assert_eq!(completion, 300 * 2 - 100);

        // The store goes away: a charge is refused, not acknowledged.
        store.close().await;
        let r = usage.charge(key("k0"), one_call()).await;
        assert!(matches!(r, Err(GatewayError::Unavailable(_))), "{r:?}");
        usage.close().await;
        let r = usage.charge(key("k0"), one_call()).await;
        assert!(
            matches!(r, Err(GatewayError::Unavailable(_))),
            "closed: {r:?}"
        );
    }
}
