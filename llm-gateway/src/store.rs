//! The gateway's own storage (SQLite by default, PostgreSQL for several replicas): usage per key,
//! and the quota leases (per customer) that let replicas enforce package limits without a database round trip
//! per request (see [`crate::quota`]).
//!
//! All SQL is portable between SQLite and PostgreSQL (and PostgreSQL-wire distributed databases):
//! `$n` placeholders, BIGINT counters, `INSERT .. ON CONFLICT`, single-statement guarded
//! updates with `RETURNING`. The migrations table is the gateway's own
//! (`_llm_gateway_migrations`), so the gateway may share one database with promo-service.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use iafactory::db::{Backend, Db, DbError, Migrations, PoolOptions, now_millis, redact_url};
use sqlx::Row;
use sqlx::migrate::{Migration, MigrationType, Migrator};

static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let migration = |version, description, sql| {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(sql),
            false,
        )
    };
    let mut m = Migrator::with_migrations(vec![
        migration(
            1,
            "usage and quota leases",
            include_str!("../migrations/0001_usage_and_quota_leases.sql"),
        ),
        migration(
            2,
            "quota per customer",
            include_str!("../migrations/0002_quota_per_customer.sql"),
        ),
        migration(
            3,
            "usage per day",
            include_str!("../migrations/0003_usage_daily.sql"),
        ),
        migration(
            4,
            "usage one row per day",
            include_str!("../migrations/0004_usage_one_row_per_day.sql"),
        ),
        migration(
            5,
            "request log",
            include_str!("../migrations/0005_request_log.sql"),
        ),
    ]);
    m.dangerous_set_table_name("_llm_gateway_migrations");
    m
});

/// The request log's own SQLite file (see [`request_log_url`]): its table, stored in keyset
/// order, under a migrations table of its own. (On PostgreSQL the log is in the gateway's
/// database, created by migration 5.)
static LOG_MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = Migrator::with_migrations(vec![Migration::new(
        1,
        Cow::Borrowed("request log"),
        MigrationType::Simple,
        sqlx::SqlStr::from_static(include_str!("../migrations/request_log_sqlite.sql")),
        false,
    )]);
    m.dangerous_set_table_name("_llm_request_log_migrations");
    m
});

/// Where the request log lives for the gateway database `url`: on SQLite a file of its own
/// beside it (`llm-gateway.db` → `llm-gateway-requests.db`), so that the log's batches never hold
/// the single write connection the usage writer (on the request path) waits for; on PostgreSQL
/// the same database.
pub fn request_log_url(url: &str) -> String {
    iafactory::db::sqlite_sibling_url(url, "requests").unwrap_or_else(|| url.to_owned())
}

/// The gateway's migrations (to migrate a database by hand, or only up to a version with
/// `run_to`, as the upgrade tests do).
pub fn migrator() -> &'static Migrator {
    &MIGRATOR
}

/// Rows per `INSERT … VALUES (…), (…) ON CONFLICT …` statement: 10 parameters a row keeps a
/// statement well below every SQLite build's parameter limit (999 for the oldest).
pub const ROWS_PER_STATEMENT: usize = 50;

/// `INSERT … VALUES` with `n` rows, for `n` in `1..=ROWS_PER_STATEMENT` (index `n - 1`): built
/// once, so the statement text — and the statement prepared and cached per connection — is
/// reused. Deltas add to the row (usage is charged in additive steps, see [`crate::usage`]).
static UPSERTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    (1..=ROWS_PER_STATEMENT)
        .map(|n| {
            let values: Vec<String> = (0..n)
                .map(|r| {
                    let p: Vec<String> = (1..=10).map(|c| format!("${}", r * 10 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO llm_usage (key_id, day, model, provider, user_id, requests, \
                   prompt_tokens, completion_tokens, cost_nano_usd, updated_at) VALUES {} \
                 ON CONFLICT (key_id, day, model, provider) DO UPDATE SET \
                   requests = llm_usage.requests + excluded.requests, \
                   prompt_tokens = llm_usage.prompt_tokens + excluded.prompt_tokens, \
                   completion_tokens = llm_usage.completion_tokens + excluded.completion_tokens, \
                   cost_nano_usd = llm_usage.cost_nano_usd + excluded.cost_nano_usd, \
                   updated_at = excluded.updated_at",
                values.join(", ")
            )
        })
        .collect()
});

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// The upsert of `rows` (1 to [`ROWS_PER_STATEMENT`] of them), `None` for another count.
fn upsert(rows: &[(&RowKey<'_>, UsageSums)], now: i64) -> Option<AnyQuery<'static>> {
    let sql: &'static str = UPSERTS.get(rows.len().checked_sub(1)?)?.as_str();
    let mut q = sqlx::query(sql);
    for ((key_id, day, model, provider), s) in rows {
        q = q
            .bind(key_id.to_string())
            .bind(day.to_string())
            .bind(model.to_string())
            .bind(provider.to_string())
            .bind(s.user_id.clone())
            .bind(s.requests)
            .bind(s.prompt_tokens)
            .bind(s.completion_tokens)
            .bind(s.cost_nano_usd)
            .bind(now);
    }
    Some(q)
}

/// A usage row's primary key: (key_id, day, model, provider).
type RowKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The first and last day of a period (`2026-11` → `2026-11-01`, `2026-11-31`): a month's rows
/// of a key are the primary key's range between them (days are `YYYY-MM-DD` text).
fn days_of(period: &str) -> (String, String) {
    (format!("{period}-01"), format!("{period}-31"))
}

/// What a charge is counted under: the row `(key_id, day, model, provider)` of `llm_usage`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub key_id: String,
    /// Calendar month (UTC) the call started in, `2026-11`.
    pub period: String,
    /// Calendar day (UTC) the call started in, `2026-11-30`: inside `period`, so a month's
    /// days add up to the month. Empty in rows read back per month.
    pub day: String,
    pub model: String,
    pub provider: String,
    /// The monthly token quota of the key's package when the call was admitted: not stored,
    /// it tells the quota notices what the customer's month is measured against (0 in rows
    /// read back).
    pub tokens_per_month: u64,
    /// The package's monthly upstream-cost budget (nano-USD) when the call was admitted, 0 for
    /// none: not stored either, it tells the budget alert what to measure against.
    pub cost_budget_nano_usd: u64,
}

/// Sums for one [`UsageKey`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageSums {
    pub user_id: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nano_usd: i64,
}

impl UsageSums {
    pub fn add(&mut self, o: &UsageSums) {
        if self.user_id.is_empty() {
            self.user_id.clone_from(&o.user_id);
        }
        self.requests += o.requests;
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cost_nano_usd += o.cost_nano_usd;
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    /// Usage and quota leases.
    pub db: Db,
    /// The request log: on SQLite its own file ([`request_log_url`]), on PostgreSQL `db` again.
    pub log: Db,
}

impl Store {
    /// Connects (creating the SQLite files if needed) and migrates.
    pub async fn connect(url: &str) -> Result<Store, DbError> {
        let migrations = Migrations {
            sqlite: &MIGRATOR,
            postgres: &MIGRATOR,
        };
        let db = Db::connect(url, &migrations, &PoolOptions::default()).await?;
        if db.backend == Backend::Postgres {
            return Ok(Store {
                log: db.clone(),
                db,
            });
        }
        let log_migrations = Migrations {
            sqlite: &LOG_MIGRATOR,
            postgres: &LOG_MIGRATOR,
        };
        let log_url = request_log_url(url);
        let log = Db::connect(&log_url, &log_migrations, &PoolOptions::default()).await?;
        let store = Store { db, log };
        store
            .move_request_log_rows()
            .await
            .map_err(|source| DbError::Connect {
                url: redact_url(&log_url),
                source,
            })?;
        Ok(store)
    }

    /// Closes the database and the request log's file (on PostgreSQL the same pool: closing
    /// a closed pool returns at once).
    pub async fn close(&self) {
        self.db.close().await;
        self.log.close().await;
    }

    /// Reserves up to `want` units of a quota window for this replica, never letting the total
    /// reserved across replicas exceed `limit`. Returns what was granted (0 when exhausted).
    ///
    /// Two statements, each atomic on its own: create the row if missing, then one guarded
    /// UPDATE whose right-hand sides all read the row as it was before the update (standard SQL,
    /// on both backends), so concurrent reservations from any number of replicas serialise on
    /// the row lock and can never over-grant.
    pub async fn reserve(
        &self,
        subject: &str,
        kind: &str,
        window: &str,
        want: i64,
        limit: i64,
    ) -> Result<i64, sqlx::Error> {
        if want <= 0 || limit <= 0 {
            return Ok(0);
        }
        let now = now_millis();
        sqlx::query(
            "INSERT INTO llm_quota_leases (subject, kind, window_id, reserved, last_grant, updated_at) \
             VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (subject, kind, window_id) DO NOTHING",
        )
        .bind(subject)
        .bind(kind)
        .bind(window)
        .bind(now)
        .execute(&self.db.write)
        .await?;
        let row = sqlx::query(
            "UPDATE llm_quota_leases SET \
               last_grant = CASE WHEN reserved + $4 <= $5 THEN $4 ELSE $5 - reserved END, \
               reserved = CASE WHEN reserved + $4 <= $5 THEN reserved + $4 ELSE $5 END, \
               updated_at = $6 \
             WHERE subject = $1 AND kind = $2 AND window_id = $3 AND reserved < $5 \
             RETURNING last_grant",
        )
        .bind(subject)
        .bind(kind)
        .bind(window)
        .bind(want)
        .bind(limit)
        .bind(now)
        .fetch_optional(&self.db.write)
        .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)?.max(0),
            None => 0,
        })
    }

    /// Gives back an unused part of a lease (graceful shutdown, idle keys).
    pub async fn release(
        &self,
        subject: &str,
        kind: &str,
        window: &str,
        amount: i64,
    ) -> Result<(), sqlx::Error> {
        if amount <= 0 {
            return Ok(());
        }
        sqlx::query(
            "UPDATE llm_quota_leases SET \
               reserved = CASE WHEN reserved > $4 THEN reserved - $4 ELSE 0 END, updated_at = $5 \
             WHERE subject = $1 AND kind = $2 AND window_id = $3",
        )
        .bind(subject)
        .bind(kind)
        .bind(window)
        .bind(amount)
        .bind(now_millis())
        .execute(&self.db.write)
        .await?;
        Ok(())
    }

    /// Total reserved for a window (tests and diagnostics).
    pub async fn reserved(
        &self,
        subject: &str,
        kind: &str,
        window: &str,
    ) -> Result<i64, sqlx::Error> {
        let row = sqlx::query(
            "SELECT reserved FROM llm_quota_leases WHERE subject = $1 AND kind = $2 AND window_id = $3",
        )
        .bind(subject)
        .bind(kind)
        .bind(window)
        .fetch_optional(&self.db.read)
        .await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)?,
            None => 0,
        })
    }

    /// Deletes request-rate windows older than `before_ms` (they can no longer matter).
    pub async fn prune_request_windows(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let r =
            sqlx::query("DELETE FROM llm_quota_leases WHERE kind = 'requests' AND updated_at < $1")
                .bind(before_ms)
                .execute(&self.db.write)
                .await?;
        Ok(r.rows_affected())
    }

    /// Adds a batch of usage to its rows (see [`Store::add_usage_on`]).
    pub async fn add_usage(&self, rows: &[(UsageKey, UsageSums)]) -> Result<(), sqlx::Error> {
        let mut conn = self.db.write.acquire().await?;
        Store::add_usage_on(&mut conn, rows).await
    }

    /// [`Store::add_usage`] on a connection the caller holds (the usage writer keeps one
    /// between close batches). Up to [`ROWS_PER_STATEMENT`] rows — every batch at one call at a
    /// time, and most under load — are one statement, atomic on its own: one round trip, no
    /// transaction to open and commit. A larger batch is several statements in one transaction.
    pub async fn add_usage_on(
        conn: &mut sqlx::AnyConnection,
        rows: &[(UsageKey, UsageSums)],
    ) -> Result<(), sqlx::Error> {
        // Charges differing only by the quota they were admitted under share a row: merged here,
        // as one `ON CONFLICT DO UPDATE` may touch a row once.
        let mut merged: HashMap<RowKey<'_>, UsageSums> = HashMap::new();
        for (k, s) in rows {
            merged
                .entry((&k.key_id, &k.day, &k.model, &k.provider))
                .or_default()
                .add(s);
        }
        let merged: Vec<(&RowKey<'_>, UsageSums)> =
            merged.iter().map(|(k, s)| (k, s.clone())).collect();
        let now = now_millis();
        if merged.len() <= ROWS_PER_STATEMENT {
            if let Some(q) = upsert(&merged, now) {
                q.execute(&mut *conn).await?;
            }
            return Ok(());
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for chunk in merged.chunks(ROWS_PER_STATEMENT) {
            if let Some(q) = upsert(chunk, now) {
                q.execute(&mut *tx).await?;
            }
        }
        tx.commit().await
    }

    /// Usage of a key in a period, per (model, provider).
    pub async fn usage(
        &self,
        key_id: &str,
        period: &str,
    ) -> Result<Vec<(UsageKey, UsageSums)>, sqlx::Error> {
        let (first, last) = days_of(period);
        let rows = sqlx::query(
            "SELECT model, provider, MAX(user_id), CAST(SUM(requests) AS BIGINT), \
               CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT), \
               CAST(SUM(cost_nano_usd) AS BIGINT) \
             FROM llm_usage WHERE key_id = $1 AND day >= $2 AND day <= $3 \
             GROUP BY model, provider ORDER BY model, provider",
        )
        .bind(key_id)
        .bind(first)
        .bind(last)
        .fetch_all(&self.db.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                UsageKey {
                    key_id: key_id.to_owned(),
                    period: period.to_owned(),
                    day: String::new(),
                    model: r.try_get(0)?,
                    provider: r.try_get(1)?,
                    tokens_per_month: 0,
                    cost_budget_nano_usd: 0,
                },
                UsageSums {
                    user_id: r.try_get(2)?,
                    requests: r.try_get(3)?,
                    prompt_tokens: r.try_get(4)?,
                    completion_tokens: r.try_get(5)?,
                    cost_nano_usd: r.try_get(6)?,
                },
            ));
        }
        Ok(out)
    }

    /// Usage of a key per day of a period (`2026-11`), in day order; days without usage are
    /// absent. Reads the key's rows by the primary key's prefix.
    pub async fn usage_by_day(
        &self,
        key_id: &str,
        period: &str,
    ) -> Result<Vec<(String, UsageSums)>, sqlx::Error> {
        let (first, last) = days_of(period);
        let rows = sqlx::query(
            "SELECT day, MAX(user_id), CAST(SUM(requests) AS BIGINT), \
               CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT), \
               CAST(SUM(cost_nano_usd) AS BIGINT) \
             FROM llm_usage WHERE key_id = $1 AND day >= $2 AND day <= $3 \
             GROUP BY day ORDER BY day",
        )
        .bind(key_id)
        .bind(first)
        .bind(last)
        .fetch_all(&self.db.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                r.try_get(0)?,
                UsageSums {
                    user_id: r.try_get(1)?,
                    requests: r.try_get(2)?,
                    prompt_tokens: r.try_get(3)?,
                    completion_tokens: r.try_get(4)?,
                    cost_nano_usd: r.try_get(5)?,
                },
            ));
        }
        Ok(out)
    }

    /// Tokens (prompt + completion) a customer used in a period, over all their keys: what
    /// their package's monthly quota is spent by.
    pub async fn customer_tokens(&self, user_id: &str, period: &str) -> Result<i64, sqlx::Error> {
        let (first, last) = days_of(period);
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS BIGINT) \
             FROM llm_usage WHERE user_id = $1 AND day >= $2 AND day <= $3",
        )
        .bind(user_id)
        .bind(first)
        .bind(last)
        .fetch_one(&self.db.read)
        .await?;
        row.try_get::<i64, _>(0)
    }

    /// Upstream cost (nano-USD) a customer's calls made in a period, over all their keys: what
    /// their package's monthly cost budget is spent by.
    pub async fn customer_cost(&self, user_id: &str, period: &str) -> Result<i64, sqlx::Error> {
        let (first, last) = days_of(period);
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(cost_nano_usd), 0) AS BIGINT) \
             FROM llm_usage WHERE user_id = $1 AND day >= $2 AND day <= $3",
        )
        .bind(user_id)
        .bind(first)
        .bind(last)
        .fetch_one(&self.db.read)
        .await?;
        row.try_get::<i64, _>(0)
    }

    /// When the key was last charged (any month), from the rows' `updated_at`.
    pub async fn last_used(&self, key_id: &str) -> Result<Option<i64>, sqlx::Error> {
        let row = sqlx::query("SELECT MAX(updated_at) FROM llm_usage WHERE key_id = $1")
            .bind(key_id)
            .fetch_one(&self.db.read)
            .await?;
        row.try_get(0)
    }
}
