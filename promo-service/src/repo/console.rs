//! What the operator's console reads and writes besides operators and audit: first-party page
//! events counted per day (`daily_events`), daily MRR snapshots (`mrr_snapshots`), marketing
//! spend (`marketing_spend`), the customer list with its filters, and the per-day figures of the
//! launch dashboard. Counts only: nothing here knows a visitor.

use iafactory::db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{u32_of, u64_of};
use crate::audit::{self, Audit};
use crate::error::Result;

/// Adds one to the day's count of `event` (one upsert: concurrent replicas add, never overwrite).
pub async fn record_event(db: &Db, day: &str, event: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO daily_events (day, event, count) VALUES ($1, $2, 1) \
         ON CONFLICT (day, event) DO UPDATE SET count = daily_events.count + 1",
    )
    .bind(day)
    .bind(event)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// `(day, event, count)` from `from_day` on.
pub async fn events_since(db: &Db, from_day: &str) -> Result<Vec<(String, String, u64)>> {
    sqlx::query("SELECT day, event, count FROM daily_events WHERE day >= $1 ORDER BY day, event")
        .bind(from_day)
        .fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("day")?,
                r.try_get("event")?,
                u64_of(r.try_get("count")?),
            ))
        })
        .collect()
}

/// Signup instants from `from` on (the dashboard buckets them into days).
pub async fn signup_times(db: &Db, from: i64) -> Result<Vec<i64>> {
    sqlx::query("SELECT created_at FROM signups WHERE created_at >= $1 ORDER BY created_at")
        .bind(from)
        .fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| Ok(r.try_get("created_at")?))
        .collect()
}

/// Per package (every package, in display order): customers and the monthly revenue they pay
/// now (the discounted price while the discount lasts, as in the statistics).
pub struct PackageRevenueRow {
    pub id: String,
    pub name: String,
    pub customers: u64,
    pub revenue_monthly_dzd: u64,
}

pub async fn revenue_by_package(db: &Db, now: i64) -> Result<Vec<PackageRevenueRow>> {
    sqlx::query(
        "SELECT p.id, p.name, COUNT(s.id) AS n, \
           CAST(COALESCE(SUM(CASE WHEN s.discount_ends_at IS NULL OR s.discount_ends_at > $1 \
                THEN s.price_dzd ELSE s.base_price_dzd END), 0) AS BIGINT) AS revenue \
         FROM packages p LEFT JOIN signups s ON s.package_id = p.id \
         GROUP BY p.id, p.name, p.sort_order ORDER BY p.sort_order, p.id",
    )
    .bind(now)
    .fetch_all(&db.read)
    .await?
    .iter()
    .map(|r| {
        Ok(PackageRevenueRow {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            customers: u64_of(r.try_get("n")?),
            revenue_monthly_dzd: u64_of(r.try_get("revenue")?),
        })
    })
    .collect()
}

/// Writes (or rewrites) the day's MRR snapshot.
pub async fn write_mrr_snapshot(
    db: &Db,
    day: &str,
    mrr_dzd: u64,
    customers: u64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO mrr_snapshots (day, mrr_dzd, active_customers, taken_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (day) DO UPDATE SET mrr_dzd = excluded.mrr_dzd, \
           active_customers = excluded.active_customers, taken_at = excluded.taken_at",
    )
    .bind(day)
    .bind(i64::try_from(mrr_dzd).unwrap_or(i64::MAX))
    .bind(i64::try_from(customers).unwrap_or(i64::MAX))
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// `(day, mrr, customers)` from `from_day` on.
pub async fn mrr_since(db: &Db, from_day: &str) -> Result<Vec<(String, u64, u64)>> {
    sqlx::query(
        "SELECT day, mrr_dzd, active_customers FROM mrr_snapshots WHERE day >= $1 ORDER BY day",
    )
    .bind(from_day)
    .fetch_all(&db.read)
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("day")?,
            u64_of(r.try_get("mrr_dzd")?),
            u64_of(r.try_get("active_customers")?),
        ))
    })
    .collect()
}

/// A marketing spend entry.
#[derive(Debug, Clone)]
pub struct SpendRow {
    pub id: String,
    pub day: String,
    pub channel: String,
    pub amount_dzd: u64,
    pub created_by: String,
}

/// Adds the entry with its audit row, in one transaction.
pub async fn add_spend(db: &Db, row: &SpendRow, audit: &Audit<'_>, now: i64) -> Result<()> {
    let mut tx = db.write.begin().await?;
    sqlx::query(
        "INSERT INTO marketing_spend (id, day, channel, amount_dzd, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&row.id)
    .bind(&row.day)
    .bind(&row.channel)
    .bind(i64::try_from(row.amount_dzd).unwrap_or(i64::MAX))
    .bind(&row.created_by)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit,
        &serde_json::Value::Null,
        &serde_json::json!({ "day": row.day, "channel": row.channel, "amount_dzd": row.amount_dzd }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Entries from `from_day` on, oldest first.
pub async fn spend_since(db: &Db, from_day: &str) -> Result<Vec<SpendRow>> {
    sqlx::query(
        "SELECT id, day, channel, amount_dzd, created_by FROM marketing_spend WHERE day >= $1 \
         ORDER BY day, created_at, id",
    )
    .bind(from_day)
    .fetch_all(&db.read)
    .await?
    .iter()
    .map(|r| {
        Ok(SpendRow {
            id: r.try_get("id")?,
            day: r.try_get("day")?,
            channel: r.try_get("channel")?,
            amount_dzd: u64_of(r.try_get("amount_dzd")?),
            created_by: r.try_get("created_by")?,
        })
    })
    .collect()
}

/// Which customers a list shows.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    /// Lower-case part of the e-mail; empty: any.
    pub search: String,
    /// Package id; empty: any.
    pub package: String,
    /// `active`, `suspended`; empty: any.
    pub status: String,
    /// One customer only.
    pub user_id: Option<String>,
}

/// A customer with the subscription in force.
#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub user_id: String,
    pub email: String,
    pub package: String,
    pub price_dzd: u64,
    pub base_price_dzd: u64,
    pub discount_percent: u32,
    pub promo_code: Option<String>,
    pub discount_ends_at: Option<i64>,
    pub suspended: bool,
    pub created_at: i64,
    pub live_keys: u32,
}

fn customer_from_row(r: &AnyRow) -> Result<CustomerRow> {
    let suspended: Option<i64> = r.try_get("suspended_at")?;
    Ok(CustomerRow {
        user_id: r.try_get("id")?,
        email: r.try_get("email")?,
        package: r.try_get("package_id")?,
        price_dzd: u64_of(r.try_get("price_dzd")?),
        base_price_dzd: u64_of(r.try_get("base_price_dzd")?),
        discount_percent: u32_of(r.try_get("discount_percent")?),
        promo_code: r.try_get("promo_code")?,
        discount_ends_at: r.try_get("discount_ends_at")?,
        suspended: suspended.is_some(),
        created_at: r.try_get("created_at")?,
        live_keys: u32_of(r.try_get("live_keys")?),
    })
}

/// `%…%` pattern of a search, with LIKE's wildcards escaped (searched literally).
fn like_pattern(search: &str) -> String {
    let mut p = String::from("%");
    for c in search.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

const CUSTOMER_WHERE: &str = "($1 = '' OR c.email LIKE $2 ESCAPE '\\') AND ($3 = '' OR s.package_id = $3) \
     AND ($4 = '' OR ($4 = 'suspended' AND c.suspended_at IS NOT NULL) \
       OR ($4 = 'active' AND c.suspended_at IS NULL)) AND ($5 = '' OR c.id = $5)";

/// Matching customers, newest first, after the `(created_at, id)` cursor; `limit` None: all.
/// Also the number of matching customers.
pub async fn list_customers(
    db: &Db,
    filter: &CustomerFilter,
    after: Option<(i64, String)>,
    limit: Option<u32>,
    now: i64,
) -> Result<(Vec<CustomerRow>, u64)> {
    let pattern = like_pattern(&filter.search);
    let user_id = filter.user_id.clone().unwrap_or_default();
    let (cursor_on, at, id) = match after {
        Some((at, id)) => (1i64, at, id),
        None => (0, 0, String::new()),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT c.id, c.email, c.created_at, c.suspended_at, s.package_id, s.price_dzd, \
           s.base_price_dzd, s.discount_percent, s.promo_code, s.discount_ends_at, \
           (SELECT COUNT(*) FROM api_keys k WHERE k.customer_id = c.id \
              AND (k.revoked_at IS NULL OR k.revoked_at > $6)) AS live_keys \
         FROM customers c JOIN signups s ON s.customer_id = c.id \
         WHERE {CUSTOMER_WHERE} AND ($7 = 0 OR c.created_at < $8 OR (c.created_at = $8 AND c.id < $9)) \
         ORDER BY c.created_at DESC, c.id DESC LIMIT $10"
    )))
    .bind(&filter.search)
    .bind(&pattern)
    .bind(&filter.package)
    .bind(&filter.status)
    .bind(&user_id)
    .bind(now)
    .bind(cursor_on)
    .bind(at)
    .bind(&id)
    .bind(limit.map_or(i64::MAX, i64::from))
    .fetch_all(&db.read)
    .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM customers c JOIN signups s ON s.customer_id = c.id WHERE {CUSTOMER_WHERE}"
    )))
    .bind(&filter.search)
    .bind(&pattern)
    .bind(&filter.package)
    .bind(&filter.status)
    .bind(&user_id)
    .fetch_one(&db.read)
    .await?;
    let rows = rows.iter().map(customer_from_row).collect::<Result<_>>()?;
    Ok((rows, u64_of(total)))
}
