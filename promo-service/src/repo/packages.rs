//! The `packages` table: what is sold, at what price, with which quotas and models.

use iafactory::db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{u32_of, u64_of};
use crate::audit::{self, Audit};
use crate::error::{PromoError, Result};

/// A package as sold.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRow {
    pub id: String,
    pub name: String,
    pub monthly_price_dzd: u64,
    pub tokens_per_month: u64,
    pub requests_per_minute: u32,
    pub allowed_models: Vec<String>,
    /// Upstream cost allowed per customer and month, nano-USD; `None`: no budget.
    pub monthly_cost_budget_nano_usd: Option<u64>,
}

macro_rules! package_columns {
    () => {
        "id, name, monthly_price_dzd, tokens_per_month, requests_per_minute, allowed_models, \
         monthly_cost_budget_nano_usd"
    };
}

/// Reads a package from `row`, its columns named with `prefix` (a join uses `p_`).
pub(super) fn package_from_row(row: &AnyRow, prefix: &str) -> Result<PackageRow> {
    let col = |c: &str| format!("{prefix}{c}");
    let models: String = row.try_get(col("allowed_models").as_str())?;
    Ok(PackageRow {
        id: row.try_get(col("id").as_str())?,
        name: row.try_get(col("name").as_str())?,
        monthly_price_dzd: u64_of(row.try_get(col("monthly_price_dzd").as_str())?),
        tokens_per_month: u64_of(row.try_get(col("tokens_per_month").as_str())?),
        requests_per_minute: u32_of(row.try_get(col("requests_per_minute").as_str())?),
        allowed_models: models
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
        monthly_cost_budget_nano_usd: row
            .try_get::<Option<i64>, _>(col("monthly_cost_budget_nano_usd").as_str())?
            .map(u64_of),
    })
}

pub async fn list_packages(db: &Db) -> Result<Vec<PackageRow>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        package_columns!(),
        " FROM packages ORDER BY sort_order, id"
    ))
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(|r| package_from_row(r, "")).collect()
}

pub async fn find_package(db: &Db, id: &str) -> Result<Option<PackageRow>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        package_columns!(),
        " FROM packages WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| package_from_row(&r, "")).transpose()
}

/// A package change: only the present fields change.
#[derive(Debug, Clone, Default)]
pub struct PackageChange {
    pub name: Option<String>,
    pub monthly_price_dzd: Option<u64>,
    pub tokens_per_month: Option<u64>,
    pub requests_per_minute: Option<u32>,
    pub allowed_models: Option<Vec<String>>,
    /// `Some(None)` removes the budget.
    pub monthly_cost_budget_nano_usd: Option<Option<u64>>,
}

fn package_json(p: &PackageRow) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "name": p.name,
        "monthly_price_dzd": p.monthly_price_dzd,
        "tokens_per_month": p.tokens_per_month,
        "requests_per_minute": p.requests_per_minute,
        "allowed_models": p.allowed_models,
        "monthly_cost_budget_nano_usd": p.monthly_cost_budget_nano_usd,
    })
}

fn db_int(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| PromoError::InvalidArgument("valeur trop grande".into()))
}

/// Merges `change` into the package, with the audit row (before and after) in the same
/// transaction. Prices already agreed with customers stay on their signup rows: a new price
/// applies to new signups.
pub async fn update_package(
    db: &Db,
    id: &str,
    change: &PackageChange,
    audit: &Audit<'_>,
    now: i64,
) -> Result<PackageRow> {
    let select = concat!(
        "SELECT ",
        package_columns!(),
        " FROM packages WHERE id = $1"
    );
    let mut tx = db.write.begin().await?;
    let row = sqlx::query(select)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| PromoError::UnknownPackage(id.to_owned()))?;
    let before = package_from_row(&row, "")?;
    let after = PackageRow {
        id: before.id.clone(),
        name: change.name.clone().unwrap_or_else(|| before.name.clone()),
        monthly_price_dzd: change.monthly_price_dzd.unwrap_or(before.monthly_price_dzd),
        tokens_per_month: change.tokens_per_month.unwrap_or(before.tokens_per_month),
        requests_per_minute: change
            .requests_per_minute
            .unwrap_or(before.requests_per_minute),
        allowed_models: change
            .allowed_models
            .clone()
            .unwrap_or_else(|| before.allowed_models.clone()),
        monthly_cost_budget_nano_usd: change
            .monthly_cost_budget_nano_usd
            .unwrap_or(before.monthly_cost_budget_nano_usd),
    };
    sqlx::query(
        "UPDATE packages SET name = $2, monthly_price_dzd = $3, tokens_per_month = $4, \
         requests_per_minute = $5, allowed_models = $6, monthly_cost_budget_nano_usd = $7 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&after.name)
    .bind(db_int(after.monthly_price_dzd)?)
    .bind(db_int(after.tokens_per_month)?)
    .bind(i64::from(after.requests_per_minute))
    .bind(after.allowed_models.join(","))
    .bind(after.monthly_cost_budget_nano_usd.map(db_int).transpose()?)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit,
        &package_json(&before),
        &package_json(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
