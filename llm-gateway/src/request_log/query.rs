//! The request log's SQL: batch insert, keyset pages (newest first) with filters, the rows behind
//! the providers' statistics, and pruning by age. Portable between SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use iafactory::db::Backend;
use sqlx::Row;

use super::LogRow;
use crate::store::Store;

/// The columns of a row and their SQL types, in the order of [`Wire`]: one list for the
/// selects' column list and the batch insert's casts.
const COLUMN_TYPES: [(&str, &str); 18] = [
    ("id", "TEXT"),
    ("at_ms", "BIGINT"),
    ("user_id", "TEXT"),
    ("key_id", "TEXT"),
    ("key_prefix", "TEXT"),
    ("kind", "TEXT"),
    ("model", "TEXT"),
    ("provider", "TEXT"),
    ("upstream_model", "TEXT"),
    ("prompt_tokens", "BIGINT"),
    ("completion_tokens", "BIGINT"),
    ("cost_nano_usd", "BIGINT"),
    ("latency_ms", "BIGINT"),
    ("ttft_ms", "BIGINT"),
    ("attempts", "BIGINT"),
    ("fallbacks", "BIGINT"),
    ("status", "TEXT"),
    ("error_code", "TEXT"),
];

/// `id, at_ms, …`: the columns of [`COLUMN_TYPES`], comma-separated.
static COLUMNS: LazyLock<String> = LazyLock::new(|| {
    COLUMN_TYPES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
});

/// One row as the JSON array the batch insert reads (see [`insert_sql`]).
#[derive(serde::Serialize)]
struct Wire<'a>(
    &'a str,
    i64,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    i64,
    i64,
    &'a str,
    &'a str,
);

impl<'a> From<&'a LogRow> for Wire<'a> {
    fn from(r: &'a LogRow) -> Self {
        Wire(
            &r.id,
            r.at_ms,
            &r.user_id,
            &r.key_id,
            &r.key_prefix,
            &r.kind,
            &r.model,
            &r.provider,
            &r.upstream_model,
            r.prompt_tokens,
            r.completion_tokens,
            r.cost_nano_usd,
            r.latency_ms,
            r.ttft_ms,
            r.attempts,
            r.fallbacks,
            &r.status,
            &r.error_code,
        )
    }
}

/// The batch insert: the whole batch travels as **one** parameter, a JSON array of rows, that
/// the database unpacks itself (`json_each` / `json_array_elements`). Binding each value
/// instead (18 per row) made the log the largest cost of a chat call under load: sqlx converts
/// and binds every argument one by one, and its SQLite driver looks each one up by name among
/// the statement's parameters (`sqlite3_bind_parameter_name` was 8.5 % of llm-gateway's CPU at
/// 50 rows per statement). SQLite's `jsonb_each` hands each row over as binary JSON, which
/// `->>` reads without parsing it again (`json_each` gave each row back as text, parsed once
/// more per row). `ON CONFLICT DO NOTHING`: a batch retried after a commit whose answer was
/// lost is not written twice (the conflict is on the primary key, `id` on PostgreSQL and
/// `(at_ms, id)` in SQLite's file). (SQLite needs the `WHERE true` to parse an upsert after a
/// `SELECT`.)
fn insert_sql(backend: Backend) -> &'static str {
    static SQL: LazyLock<[String; 2]> = LazyLock::new(|| {
        let columns = COLUMNS.as_str();
        let select: Vec<String> = COLUMN_TYPES
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("CAST(value ->> {i} AS {t})"))
            .collect();
        let select = select.join(", ");
        let with = |rows: &str| {
            format!(
                "INSERT INTO llm_request_log ({columns}) SELECT {select} FROM {rows} \
                 WHERE true ON CONFLICT DO NOTHING"
            )
        };
        [
            with("jsonb_each($1)"),
            with("json_array_elements($1::json) AS rows(value)"),
        ]
    });
    match backend {
        Backend::Sqlite => &SQL[0],
        Backend::Postgres => &SQL[1],
    }
}

/// Filters of a page (exact matches; empty: no filter).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user_id: String,
    /// A prefix of the key's display prefix (validated: 4 to 10 characters).
    pub key_prefix: String,
    pub model: String,
    pub provider: String,
    /// `ok`, `error` or an error code.
    pub status: String,
    /// Unix ms, since included; 0: open.
    pub since_ms: i64,
    /// Unix ms, until excluded; 0: open.
    pub until_ms: i64,
}

/// Where a page starts: after the row `(at_ms, id)` (newest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at_ms: i64,
    pub id: String,
}

impl Cursor {
    pub fn token(&self) -> String {
        format!("{}.{}", self.at_ms, self.id)
    }

    /// `None` for a token this gateway did not give.
    pub fn parse(token: &str) -> Option<Cursor> {
        let (at, id) = token.split_once('.')?;
        let at_ms = at.parse().ok()?;
        let ok = id.len() <= 64
            && id.starts_with("req_")
            && id[4..].bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Cursor {
            at_ms,
            id: id.to_owned(),
        })
    }
}

/// A provider's calls in a window, newest first (for percentiles and per-day cost).
#[derive(Debug, Clone)]
pub struct StatRow {
    pub provider: String,
    pub at_ms: i64,
    pub latency_ms: i64,
    pub ok: bool,
    pub cost_nano_usd: i64,
}

fn row_of(r: &sqlx::any::AnyRow) -> Result<LogRow, sqlx::Error> {
    Ok(LogRow {
        id: r.try_get("id")?,
        at_ms: r.try_get("at_ms")?,
        user_id: r.try_get("user_id")?,
        key_id: r.try_get("key_id")?,
        key_prefix: r.try_get("key_prefix")?,
        kind: r.try_get("kind")?,
        model: r.try_get("model")?,
        provider: r.try_get("provider")?,
        upstream_model: r.try_get("upstream_model")?,
        prompt_tokens: r.try_get("prompt_tokens")?,
        completion_tokens: r.try_get("completion_tokens")?,
        cost_nano_usd: r.try_get("cost_nano_usd")?,
        latency_ms: r.try_get("latency_ms")?,
        ttft_ms: r.try_get("ttft_ms")?,
        attempts: r.try_get("attempts")?,
        fallbacks: r.try_get("fallbacks")?,
        status: r.try_get("status")?,
        error_code: r.try_get("error_code")?,
    })
}

impl Store {
    /// Inserts a batch of rows in one statement (see [`insert_sql`]).
    pub async fn insert_request_log(&self, rows: &[LogRow]) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let wire: Vec<Wire<'_>> = rows.iter().map(Wire::from).collect();
        let json = serde_json::to_string(&wire).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query(insert_sql(self.log.backend))
            .bind(json)
            .execute(&self.log.write)
            .await?;
        Ok(())
    }

    /// One page of rows matching `filter`, newest first, after `after`; the cursor of the next
    /// page when there is one.
    pub async fn list_request_log(
        &self,
        filter: &Filter,
        after: Option<&Cursor>,
        page_size: usize,
    ) -> Result<(Vec<LogRow>, Option<Cursor>), sqlx::Error> {
        let mut sql = format!("SELECT {} FROM llm_request_log WHERE 1 = 1", *COLUMNS);
        let mut binds: Vec<Bind> = Vec::new();
        let param = |binds: &mut Vec<Bind>, b: Bind| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if !filter.user_id.is_empty() {
            let p = param(&mut binds, Bind::Text(filter.user_id.clone()));
            sql.push_str(&format!(" AND user_id = {p}"));
        }
        if !filter.key_prefix.is_empty() {
            // SUBSTR rather than LIKE: the prefix holds `_`, a LIKE wildcard. The length is a
            // validated count of ASCII characters (at most 10), written into the SQL.
            let n = filter.key_prefix.len();
            let p = param(&mut binds, Bind::Text(filter.key_prefix.clone()));
            sql.push_str(&format!(" AND SUBSTR(key_prefix, 1, {n}) = {p}"));
        }
        if !filter.model.is_empty() {
            let p = param(&mut binds, Bind::Text(filter.model.clone()));
            sql.push_str(&format!(" AND model = {p}"));
        }
        if !filter.provider.is_empty() {
            let p = param(&mut binds, Bind::Text(filter.provider.clone()));
            sql.push_str(&format!(" AND provider = {p}"));
        }
        match filter.status.as_str() {
            "" => {}
            "ok" | "error" => {
                let p = param(&mut binds, Bind::Text(filter.status.clone()));
                sql.push_str(&format!(" AND status = {p}"));
            }
            code => {
                let p = param(&mut binds, Bind::Text(code.to_owned()));
                sql.push_str(&format!(" AND error_code = {p}"));
            }
        }
        if filter.since_ms > 0 {
            let p = param(&mut binds, Bind::Int(filter.since_ms));
            sql.push_str(&format!(" AND at_ms >= {p}"));
        }
        if filter.until_ms > 0 {
            let p = param(&mut binds, Bind::Int(filter.until_ms));
            sql.push_str(&format!(" AND at_ms < {p}"));
        }
        if let Some(c) = after {
            let a = param(&mut binds, Bind::Int(c.at_ms));
            let b = param(&mut binds, Bind::Int(c.at_ms));
            let i = param(&mut binds, Bind::Text(c.id.clone()));
            sql.push_str(&format!(" AND (at_ms < {a} OR (at_ms = {b} AND id < {i}))"));
        }
        // One more than the page tells whether there is a next page.
        sql.push_str(&format!(
            " ORDER BY at_ms DESC, id DESC LIMIT {}",
            page_size + 1
        ));
        // Audited: the text holds only this function's constants, `$n` placeholders and
        // validated numbers (the key prefix's length, the page size); every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let fetched = q.fetch_all(&self.log.read).await?;
        let mut rows = Vec::with_capacity(fetched.len().min(page_size));
        for r in fetched.iter().take(page_size) {
            rows.push(row_of(r)?);
        }
        let next = (fetched.len() > page_size)
            .then(|| rows.last())
            .flatten()
            .map(|r| Cursor {
                at_ms: r.at_ms,
                id: r.id.clone(),
            });
        Ok((rows, next))
    }

    /// Calls that reached a provider since `since_ms`, newest first, at most `limit`.
    pub async fn request_log_stats_rows(
        &self,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<StatRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT provider, at_ms, latency_ms, status, cost_nano_usd FROM llm_request_log \
             WHERE at_ms >= $1 AND provider <> '' ORDER BY at_ms DESC LIMIT $2",
        )
        .bind(since_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.log.read)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(StatRow {
                provider: r.try_get(0)?,
                at_ms: r.try_get(1)?,
                latency_ms: r.try_get(2)?,
                ok: r.try_get::<String, _>(3)? == "ok",
                cost_nano_usd: r.try_get(4)?,
            });
        }
        Ok(out)
    }

    /// Deletes rows older than `before_ms` (retention); returns how many.
    pub async fn prune_request_log(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let r = sqlx::query("DELETE FROM llm_request_log WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.log.write)
            .await?;
        Ok(r.rows_affected())
    }

    /// SQLite: moves the rows an older version wrote into the gateway's own file over to the
    /// log's file (see [`crate::store::request_log_url`]), a batch at a time. Each batch is
    /// inserted before it is deleted, and the insert skips rows already there, so a crash midway
    /// loses and duplicates nothing: the next start goes on. Nothing to do once moved.
    pub(crate) async fn move_request_log_rows(&self) -> Result<(), sqlx::Error> {
        const BATCH: i64 = 2000;
        let select = format!(
            "SELECT {} FROM llm_request_log ORDER BY at_ms, id LIMIT $1",
            COLUMNS.as_str()
        );
        let mut moved = 0usize;
        loop {
            let rows = sqlx::query(sqlx::AssertSqlSafe(select.as_str()))
                .bind(BATCH)
                .fetch_all(&self.db.write)
                .await?
                .iter()
                .map(row_of)
                .collect::<Result<Vec<_>, _>>()?;
            if rows.is_empty() {
                break;
            }
            self.insert_request_log(&rows).await?;
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            let ids = serde_json::to_string(&ids).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            sqlx::query(
                "DELETE FROM llm_request_log WHERE id IN (SELECT value FROM json_each($1))",
            )
            .bind(ids)
            .execute(&self.db.write)
            .await?;
            moved += rows.len();
        }
        if moved > 0 {
            tracing::info!(rows = moved, "request log moved to its own SQLite file");
        }
        Ok(())
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// One provider's figures over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFigures {
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: u64,
    pub p95_ms: u64,
    pub cost_nano_usd: i64,
}

/// Per provider (by name) and per (provider, day): calls and cost per day.
pub type DayCosts = BTreeMap<(String, String), (u64, i64)>;

/// Percentile `p` (0..=100) of sorted values, nearest rank; 0 for none.
fn percentile(sorted: &[i64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    u64::try_from(sorted[rank - 1]).unwrap_or(0)
}

/// Figures per provider and cost per provider and day from the rows of a window. Latency
/// percentiles are over successful calls only (a refused call's latency says nothing of the
/// provider's speed); errors count every failed call that reached it.
pub fn provider_figures(rows: &[StatRow]) -> (BTreeMap<String, ProviderFigures>, DayCosts) {
    let mut latencies: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut figures: BTreeMap<String, ProviderFigures> = BTreeMap::new();
    let mut days: DayCosts = BTreeMap::new();
    for r in rows {
        let f = figures.entry(r.provider.clone()).or_default();
        f.calls += 1;
        f.cost_nano_usd += r.cost_nano_usd;
        if r.ok {
            latencies
                .entry(r.provider.clone())
                .or_default()
                .push(r.latency_ms);
        } else {
            f.errors += 1;
        }
        let d = days
            .entry((r.provider.clone(), crate::quota::day_of(r.at_ms)))
            .or_default();
        d.0 += 1;
        d.1 += r.cost_nano_usd;
    }
    for (p, mut l) in latencies {
        l.sort_unstable();
        if let Some(f) = figures.get_mut(&p) {
            f.p50_ms = percentile(&l, 50);
            f.p95_ms = percentile(&l, 95);
        }
    }
    (figures, days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles_and_cursor_tokens() {
        let v: Vec<i64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), 10);
        assert_eq!(percentile(&v, 95), 19);
        assert_eq!(percentile(&[7], 95), 7);
        assert_eq!(percentile(&[], 50), 0);
        let c = Cursor {
            at_ms: 1_700_000_000_000,
            id: "req_0190abc".into(),
        };
        assert_eq!(Cursor::parse(&c.token()), Some(c));
        for bad in ["", "x", "12.", "12.req_a'b", "a.req_1", "12.abc"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn figures_count_errors_and_split_cost_by_day() {
        let row = |p: &str, day: i64, ms: i64, ok: bool, cost: i64| StatRow {
            provider: p.into(),
            at_ms: 1_764_720_000_000 + day * 86_400_000,
            latency_ms: ms,
            ok,
            cost_nano_usd: cost,
        };
        let rows = vec![
            row("a", 0, 10, true, 5),
            row("a", 0, 30, true, 5),
            row("a", 1, 500, false, 0),
            row("b", 1, 20, true, 7),
        ];
        let (f, d) = provider_figures(&rows);
        assert_eq!(
            f["a"],
            ProviderFigures {
                calls: 3,
                errors: 1,
                p50_ms: 10,
                p95_ms: 30,
                cost_nano_usd: 10
            }
        );
        assert_eq!(f["b"].p50_ms, 20);
        assert_eq!(d.len(), 3);
        assert_eq!(d[&("a".to_owned(), "2025-12-03".to_owned())], (2, 10));
    }
}
