//! The `promo_codes` and `promo_code_discounts` tables: codes, their limits, windows and
//! discounts per package. Counting redemptions is the signup's business (see `signups`).

use iafactory::db::{self, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::u32_of;
use crate::audit::{self, Audit};
use crate::clock::{rfc3339, to_datetime};
use crate::domain::{CodeChange, CodeName, CodeRules, NewCode, Percent};
use crate::error::{PromoError, Result};

/// A promo code with everything the rules and the admin views need.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code: String,
    pub description: String,
    pub rules: CodeRules,
    pub created_at: i64,
}

macro_rules! code_columns {
    () => {
        "code, description, active, max_redemptions, used, duration_months, valid_from, valid_until, created_at"
    };
}

async fn discounts_of<'e, E>(exec: E, code: &str) -> Result<Vec<(String, Percent)>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let rows = sqlx::query(
        "SELECT package_id, discount_percent FROM promo_code_discounts WHERE code = $1 ORDER BY package_id",
    )
    .bind(code)
    .fetch_all(exec)
    .await?;
    rows.iter()
        .map(|r| {
            let pct: i64 = r.try_get("discount_percent")?;
            let pct = Percent::new(u32_of(pct)).map_err(PromoError::internal)?;
            Ok((r.try_get("package_id")?, pct))
        })
        .collect()
}

fn code_from_row(row: &AnyRow, discounts: Vec<(String, Percent)>) -> Result<CodeRow> {
    let max: Option<i64> = row.try_get("max_redemptions")?;
    let until: Option<i64> = row.try_get("valid_until")?;
    let active: i64 = row.try_get("active")?;
    Ok(CodeRow {
        code: row.try_get("code")?,
        description: row.try_get("description")?,
        created_at: row.try_get("created_at")?,
        rules: CodeRules {
            active: active != 0,
            max_redemptions: max.map(u32_of),
            used: u32_of(row.try_get("used")?),
            valid_from: to_datetime(row.try_get("valid_from")?),
            valid_until: until.map(to_datetime),
            duration_months: u32_of(row.try_get("duration_months")?),
            discounts,
        },
    })
}

pub async fn find_code(db: &Db, code: &CodeName) -> Result<Option<CodeRow>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        code_columns!(),
        " FROM promo_codes WHERE code = $1"
    ))
    .bind(code.as_str())
    .fetch_optional(&db.read)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let discounts = discounts_of(&db.read, code.as_str()).await?;
            code_from_row(&row, discounts).map(Some)
        }
    }
}

pub async fn list_codes(db: &Db) -> Result<Vec<CodeRow>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        code_columns!(),
        " FROM promo_codes ORDER BY created_at, code"
    ))
    .fetch_all(&db.read)
    .await?;
    let all_discounts = sqlx::query(
        "SELECT code, package_id, discount_percent FROM promo_code_discounts ORDER BY code, package_id",
    )
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|row| {
            let code: String = row.try_get("code")?;
            let mut discounts = Vec::new();
            for d in all_discounts.iter() {
                let c: String = d.try_get("code")?;
                if c == code {
                    let pct: i64 = d.try_get("discount_percent")?;
                    discounts.push((
                        d.try_get("package_id")?,
                        Percent::new(u32_of(pct)).map_err(PromoError::internal)?,
                    ));
                }
            }
            code_from_row(row, discounts)
        })
        .collect()
}

/// Places used and maximum of every limited code, for the live counter.
pub async fn code_counts(db: &Db) -> Result<Vec<(String, u32, Option<u32>)>> {
    let rows = sqlx::query("SELECT code, used, max_redemptions FROM promo_codes")
        .fetch_all(&db.read)
        .await?;
    rows.iter()
        .map(|r| {
            let max: Option<i64> = r.try_get("max_redemptions")?;
            Ok((
                r.try_get("code")?,
                u32_of(r.try_get("used")?),
                max.map(u32_of),
            ))
        })
        .collect()
}

/// What the audit log keeps of a code.
fn code_json(row: &CodeRow) -> serde_json::Value {
    let r = &row.rules;
    serde_json::json!({
        "code": row.code,
        "description": row.description,
        "active": r.active,
        "max_redemptions": r.max_redemptions,
        "used": r.used,
        "duration_months": r.duration_months,
        "valid_from": rfc3339(r.valid_from.timestamp_millis()),
        "valid_until": r.valid_until.map(|t| rfc3339(t.timestamp_millis())),
        "discounts": r.discounts.iter().map(|(p, pct)| (p.clone(), pct.get())).collect::<std::collections::BTreeMap<_, _>>(),
    })
}

/// The code as `tx` sees it.
async fn code_in_tx(tx: &mut Transaction<'static, Any>, code: &str) -> Result<Option<CodeRow>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        code_columns!(),
        " FROM promo_codes WHERE code = $1"
    ))
    .bind(code)
    .fetch_optional(&mut **tx)
    .await?;
    match row {
        None => Ok(None),
        Some(row) => {
            let discounts = discounts_of(&mut **tx, code).await?;
            code_from_row(&row, discounts).map(Some)
        }
    }
}

/// Creates the code at `now` (the service's clock), with its audit row in the same transaction.
pub async fn create_code(db: &Db, new: &NewCode, audit: &Audit<'_>, now: i64) -> Result<CodeRow> {
    let mut tx = db.write.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO promo_codes (code, description, active, max_redemptions, used, duration_months, \
         valid_from, valid_until, created_at) VALUES ($1, $2, 1, $3, 0, $4, $5, $6, $7)",
    )
    .bind(new.code.as_str())
    .bind(&new.description)
    .bind(new.max_redemptions.map(i64::from))
    .bind(i64::from(new.duration_months))
    .bind(new.valid_from)
    .bind(new.valid_until)
    .bind(now)
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        return Err(if db::is_unique_violation(&e) {
            PromoError::CodeExists(new.code.as_str().to_owned())
        } else {
            e.into()
        });
    }
    insert_discounts(&mut tx, new.code.as_str(), &new.discounts).await?;
    let row = code_in_tx(&mut tx, new.code.as_str())
        .await?
        .ok_or_else(|| PromoError::internal("code vanished after insert"))?;
    audit::record(
        &mut tx,
        audit,
        &serde_json::Value::Null,
        &code_json(&row),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

async fn insert_discounts(
    tx: &mut Transaction<'static, Any>,
    code: &str,
    discounts: &[(String, Percent)],
) -> Result<()> {
    for (package, pct) in discounts {
        sqlx::query(
            "INSERT INTO promo_code_discounts (code, package_id, discount_percent) VALUES ($1, $2, $3)",
        )
        .bind(code)
        .bind(package)
        .bind(i64::from(pct.get()))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Applies the change (a merge: absent fields keep their value), with its audit row (the code
/// before and after) in the same transaction.
pub async fn update_code(
    db: &Db,
    code: &CodeName,
    change: &CodeChange,
    audit: &Audit<'_>,
    now: i64,
) -> Result<CodeRow> {
    let mut tx = db.write.begin().await?;
    let current = code_in_tx(&mut tx, code.as_str())
        .await?
        .ok_or_else(|| PromoError::NotFound(format!("code promo inconnu : {}", code.as_str())))?;
    let (valid_from, valid_until) = change.window(&current.rules)?;
    let max = change
        .max_redemptions
        .unwrap_or(current.rules.max_redemptions);
    // The guard on `used` makes a concurrent redemption and a lowered limit unable to cross.
    let updated = sqlx::query(
        "UPDATE promo_codes SET active = $2, max_redemptions = $3, description = $4, valid_from = $5, \
         valid_until = $6, duration_months = $7 \
         WHERE code = $1 AND ($3 IS NULL OR used <= $3)",
    )
    .bind(code.as_str())
    .bind(i64::from(change.active.unwrap_or(current.rules.active)))
    .bind(max.map(i64::from))
    .bind(change.description.as_deref().unwrap_or(&current.description))
    .bind(valid_from)
    .bind(valid_until)
    .bind(i64::from(
        change
            .duration_months
            .unwrap_or(current.rules.duration_months),
    ))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(PromoError::Conflict(format!(
            "impossible de fixer le maximum sous les {} places déjà utilisées",
            current.rules.used
        )));
    }
    if !change.discounts.is_empty() {
        // A merge: each set or removed package's row goes, the set ones come back with their new
        // percentage; the other packages' rows are not touched. Removing a discount the code
        // does not have is refused (a mistyped package id must not pass for done); dropping
        // `tx` on the way out rolls the whole update back.
        let delete = "DELETE FROM promo_code_discounts WHERE code = $1 AND package_id = $2";
        for (package, _) in &change.discounts.set {
            sqlx::query(delete)
                .bind(code.as_str())
                .bind(package)
                .execute(&mut *tx)
                .await?;
        }
        for package in &change.discounts.remove {
            let gone = sqlx::query(delete)
                .bind(code.as_str())
                .bind(package)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() == 0 {
                return Err(PromoError::InvalidArgument(format!(
                    "le code {} n'a pas de réduction pour le forfait {package}",
                    code.as_str()
                )));
            }
        }
        insert_discounts(&mut tx, code.as_str(), &change.discounts.set).await?;
        let left: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM promo_code_discounts WHERE code = $1")
                .bind(code.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if left == 0 {
            // Dropping `tx` rolls the whole update back.
            return Err(PromoError::InvalidArgument(
                "un code doit garder la réduction d'au moins un forfait".into(),
            ));
        }
    }
    let row = code_in_tx(&mut tx, code.as_str())
        .await?
        .ok_or_else(|| PromoError::internal("code vanished after update"))?;
    audit::record(&mut tx, audit, &code_json(&current), &code_json(&row), now).await?;
    tx.commit().await?;
    Ok(row)
}
