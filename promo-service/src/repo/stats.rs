//! Figures read across tables: the public summary, the admin statistics and the gauges
//! scraped by Prometheus.

use iafactory::db::Db;
use sqlx::Row;

use super::{u32_of, u64_of};
use crate::error::Result;

/// Public liveness figures.
pub async fn summary(db: &Db, now: i64) -> Result<(u32, u64)> {
    let row = sqlx::query(
        "SELECT \
           (SELECT COUNT(*) FROM promo_codes WHERE active = 1 AND valid_from <= $1 \
              AND (valid_until IS NULL OR valid_until > $1) \
              AND (max_redemptions IS NULL OR used < max_redemptions)) AS active_codes, \
           (SELECT COUNT(*) FROM customers) AS customers",
    )
    .bind(now)
    .fetch_one(&db.read)
    .await?;
    Ok((
        u32_of(row.try_get("active_codes")?),
        u64_of(row.try_get("customers")?),
    ))
}

/// Admin figures: per-package signup counts and current monthly revenue, and e-mails.
pub struct StatsRows {
    pub total_signups: u64,
    pub revenue_monthly_dzd: u64,
    pub breakdown: Vec<(String, u64)>,
    pub clients: Vec<String>,
}

pub async fn stats(db: &Db, now: i64) -> Result<StatsRows> {
    // Revenue counts the discounted price only while the discount lasts.
    let rows = sqlx::query(
        "SELECT package_id, COUNT(*) AS n, \
           CAST(COALESCE(SUM(CASE WHEN discount_ends_at IS NULL OR discount_ends_at > $1 \
                THEN price_dzd ELSE base_price_dzd END), 0) AS BIGINT) AS revenue \
         FROM signups GROUP BY package_id ORDER BY package_id",
    )
    .bind(now)
    .fetch_all(&db.read)
    .await?;
    let mut total = 0;
    let mut revenue = 0u64;
    let mut breakdown = Vec::new();
    for r in &rows {
        let n = u64_of(r.try_get("n")?);
        total += n;
        revenue = revenue.saturating_add(u64_of(r.try_get("revenue")?));
        breakdown.push((r.try_get("package_id")?, n));
    }
    let clients = sqlx::query("SELECT email FROM customers ORDER BY created_at, id")
        .fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| r.try_get("email"))
        .collect::<Result<Vec<String>, _>>()?;
    Ok(StatsRows {
        total_signups: total,
        revenue_monthly_dzd: revenue,
        breakdown,
        clients,
    })
}

/// Scrape-time business figures: customers, current monthly revenue, outbox rows by status.
pub struct Gauges {
    pub customers: u64,
    pub revenue_monthly_dzd: u64,
    pub outbox: Vec<(String, u64)>,
}

pub async fn gauges(db: &Db, now: i64) -> Result<Gauges> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM customers) AS customers, \
           (SELECT CAST(COALESCE(SUM(CASE WHEN discount_ends_at IS NULL OR discount_ends_at > $1 \
              THEN price_dzd ELSE base_price_dzd END), 0) AS BIGINT) FROM signups) AS revenue",
    )
    .bind(now)
    .fetch_one(&db.read)
    .await?;
    let outbox = sqlx::query("SELECT status, COUNT(*) AS n FROM outbox GROUP BY status")
        .fetch_all(&db.read)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("status")?, u64_of(r.try_get("n")?))))
        .collect::<Result<Vec<_>>>()?;
    Ok(Gauges {
        customers: u64_of(row.try_get("customers")?),
        revenue_monthly_dzd: u64_of(row.try_get("revenue")?),
        outbox,
    })
}
