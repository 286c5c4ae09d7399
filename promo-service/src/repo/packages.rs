//! The `packages` table: what is sold, at what price, with which quotas and models.

use iafactory::db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{u32_of, u64_of};
use crate::error::Result;

/// A package as sold.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageRow {
    pub id: String,
    pub name: String,
    pub monthly_price_dzd: u64,
    pub tokens_per_month: u64,
    pub requests_per_minute: u32,
    pub allowed_models: Vec<String>,
}

macro_rules! package_columns {
    () => {
        "id, name, monthly_price_dzd, tokens_per_month, requests_per_minute, allowed_models"
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
