//! All SQL of the promo service. Handlers call these functions with validated domain values.
//!
//! The redemption rule — a limited code is never redeemed past its maximum, and a failed signup
//! consumes nothing — rests on one guarded statement inside the signup transaction:
//! `UPDATE promo_codes SET used = used + 1 WHERE code = $1 AND used < max_redemptions ...` whose
//! affected-row count is checked, with every other write of the signup in the same transaction.
//! PostgreSQL re-checks the guard after waiting for a concurrent writer's row lock, so replicas on
//! one database cannot oversell; a CHECK constraint on the table backs it up. Transactions that
//! hit a serialization failure (SERIALIZABLE databases such as CockroachDB) are retried whole.

use chrono::{DateTime, SecondsFormat, Utc};
use iafactory::db::{self, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::domain::{CodeName, CodeRules, Email, Percent, Refusal};
use crate::error::{PromoError, Result};
use crate::outbox::{self, NewMail};

/// How many times a transaction is re-run after a serialization failure or deadlock.
const MAX_TX_ATTEMPTS: u32 = 8;
/// Idempotency records older than this are forgotten (Stripe keeps them 24 h).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub fn rfc3339(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

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

fn package_from_row(row: &AnyRow, prefix: &str) -> Result<PackageRow> {
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

/// A code to create, already validated.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code: CodeName,
    pub description: String,
    pub max_redemptions: Option<u32>,
    pub duration_months: u32,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub discounts: Vec<(String, Percent)>,
}

pub async fn create_code(db: &Db, new: &NewCode) -> Result<CodeRow> {
    let now = db::now_millis();
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
    tx.commit().await?;
    find_code(db, &new.code)
        .await?
        .ok_or_else(|| PromoError::internal("code vanished after insert"))
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

/// A validated change to a code; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct CodeChange {
    pub active: Option<bool>,
    /// `Some(None)` removes the limit.
    pub max_redemptions: Option<Option<u32>>,
    pub description: Option<String>,
    pub valid_from: Option<i64>,
    /// `Some(None)` removes the end date.
    pub valid_until: Option<Option<i64>>,
    pub duration_months: Option<u32>,
    pub discounts: Option<Vec<(String, Percent)>>,
}

pub async fn update_code(db: &Db, code: &CodeName, change: &CodeChange) -> Result<CodeRow> {
    let mut tx = db.write.begin().await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        code_columns!(),
        " FROM promo_codes WHERE code = $1"
    ))
    .bind(code.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| PromoError::NotFound(format!("code promo inconnu : {}", code.as_str())))?;
    let current = code_from_row(&row, Vec::new())?;
    let valid_from = change
        .valid_from
        .unwrap_or_else(|| current.rules.valid_from.timestamp_millis());
    let valid_until = change
        .valid_until
        .unwrap_or_else(|| current.rules.valid_until.map(|d| d.timestamp_millis()));
    if valid_until.is_some_and(|u| u <= valid_from) {
        return Err(PromoError::InvalidArgument(
            "la fin de validité doit suivre le début".into(),
        ));
    }
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
    if let Some(discounts) = &change.discounts {
        sqlx::query("DELETE FROM promo_code_discounts WHERE code = $1")
            .bind(code.as_str())
            .execute(&mut *tx)
            .await?;
        insert_discounts(&mut tx, code.as_str(), discounts).await?;
    }
    tx.commit().await?;
    find_code(db, code)
        .await?
        .ok_or_else(|| PromoError::internal("code vanished after update"))
}

/// Everything a signup writes, computed and validated beforehand.
#[derive(Debug, Clone)]
pub struct SignupPlan {
    pub customer_id: String,
    pub signup_id: String,
    pub email: Email,
    pub package: PackageRow,
    pub price_dzd: u64,
    /// The code and its discount, when one is redeemed.
    pub promo: Option<PlannedRedemption>,
    pub api_key_id: String,
    pub api_key_hash: String,
    pub api_key_prefix: String,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct PlannedRedemption {
    pub code: CodeName,
    pub discount: Percent,
    pub ends_at: i64,
}

/// A stored idempotent answer.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub request_hash: String,
    pub sealed_response: String,
}

/// Idempotency-Key data for a signup.
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub key_hash: String,
    pub request_hash: String,
    /// Sealed answer, written in the signup transaction.
    pub sealed_response: String,
}

pub async fn find_idempotency(db: &Db, key_hash: &str) -> Result<Option<IdempotencyRecord>> {
    let cutoff = db::now_millis() - IDEMPOTENCY_TTL_MS;
    let row = sqlx::query(
        "SELECT request_hash, response FROM idempotency_keys WHERE key_hash = $1 AND created_at >= $2",
    )
    .bind(key_hash)
    .bind(cutoff)
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| {
        Ok(IdempotencyRecord {
            request_hash: r.try_get("request_hash")?,
            sealed_response: r.try_get("response")?,
        })
    })
    .transpose()
}

pub async fn purge_idempotency(db: &Db) -> Result<u64> {
    let cutoff = db::now_millis() - IDEMPOTENCY_TTL_MS;
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff)
        .execute(&db.write)
        .await?;
    Ok(done.rows_affected())
}

/// What a signup transaction ended with.
#[derive(Debug)]
pub enum SignupOutcome {
    Created,
    /// Another request holding the same Idempotency-Key committed first: replay its answer.
    IdempotencyKeyTaken,
}

/// Runs the signup transaction, retrying it whole on serialization failures.
pub async fn signup(
    db: &Db,
    plan: &SignupPlan,
    idempotency: Option<&IdempotencyClaim>,
    mails: &[NewMail],
) -> Result<SignupOutcome> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_signup(db, plan, idempotency, mails).await {
            Err(TxError::Sql(e)) if db::is_retryable(&e) && attempt < MAX_TX_ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "signup transaction conflict, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(
                    2u64.pow(attempt.min(6)) + u64::from(rand_jitter()),
                ))
                .await;
            }
            Err(TxError::Sql(e)) => return Err(e.into()),
            Err(TxError::Domain(e)) => return Err(e),
            Ok(outcome) => return Ok(outcome),
        }
    }
}

fn rand_jitter() -> u8 {
    rand::random::<u8>() % 8
}

enum TxError {
    Sql(sqlx::Error),
    Domain(PromoError),
}

impl From<sqlx::Error> for TxError {
    fn from(e: sqlx::Error) -> Self {
        TxError::Sql(e)
    }
}

async fn try_signup(
    db: &Db,
    plan: &SignupPlan,
    idempotency: Option<&IdempotencyClaim>,
    mails: &[NewMail],
) -> Result<SignupOutcome, TxError> {
    // Dropping `tx` on any early return rolls everything back: nothing is half-written.
    let mut tx = db.write.begin().await?;

    if let Some(claim) = idempotency {
        // Claims the key, or takes over a record past its time to live. A concurrent holder of
        // the same key makes this wait (PostgreSQL) until it commits; then we replay its answer.
        let claimed = sqlx::query(
            "INSERT INTO idempotency_keys (key_hash, request_hash, response, created_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key_hash) DO UPDATE SET request_hash = excluded.request_hash, \
             response = excluded.response, created_at = excluded.created_at \
             WHERE idempotency_keys.created_at < $5",
        )
        .bind(&claim.key_hash)
        .bind(&claim.request_hash)
        .bind(&claim.sealed_response)
        .bind(plan.now)
        .bind(plan.now - IDEMPOTENCY_TTL_MS)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            return Ok(SignupOutcome::IdempotencyKeyTaken);
        }
    }

    if let Some(promo) = &plan.promo {
        // Taken first: a refused signup then costs one statement, which matters when a thousand
        // people race for the last places. The row lock is held until commit by the winners only.
        let taken = sqlx::query(
            "UPDATE promo_codes SET used = used + 1 \
             WHERE code = $1 AND active = 1 \
             AND (max_redemptions IS NULL OR used < max_redemptions) \
             AND valid_from <= $2 AND (valid_until IS NULL OR valid_until > $2)",
        )
        .bind(promo.code.as_str())
        .bind(plan.now)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            drop(tx);
            let reason = refusal_now(db, &promo.code, &plan.package.id, plan.now)
                .await
                .map_err(TxError::Domain)?;
            return Err(TxError::Domain(PromoError::Refused(reason)));
        }
    }

    let customer = sqlx::query("INSERT INTO customers (id, email, created_at) VALUES ($1, $2, $3)")
        .bind(&plan.customer_id)
        .bind(plan.email.as_str())
        .bind(plan.now)
        .execute(&mut *tx)
        .await;
    match customer {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(TxError::Domain(PromoError::EmailTaken));
        }
        other => {
            other?;
        }
    }

    sqlx::query(
        "INSERT INTO signups (id, customer_id, package_id, base_price_dzd, price_dzd, discount_percent, \
         promo_code, discount_ends_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&plan.signup_id)
    .bind(&plan.customer_id)
    .bind(&plan.package.id)
    .bind(i64::try_from(plan.package.monthly_price_dzd).unwrap_or(i64::MAX))
    .bind(i64::try_from(plan.price_dzd).unwrap_or(i64::MAX))
    .bind(plan.promo.as_ref().map_or(0, |p| i64::from(p.discount.get())))
    .bind(plan.promo.as_ref().map(|p| p.code.as_str().to_owned()))
    .bind(plan.promo.as_ref().map(|p| p.ends_at))
    .bind(plan.now)
    .execute(&mut *tx)
    .await?;

    sqlx::query(
        "INSERT INTO api_keys (id, customer_id, key_hash, prefix, created_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, NULL)",
    )
    .bind(&plan.api_key_id)
    .bind(&plan.customer_id)
    .bind(&plan.api_key_hash)
    .bind(&plan.api_key_prefix)
    .bind(plan.now)
    .execute(&mut *tx)
    .await?;

    // The e-mails exist if and only if the signup commits.
    for mail in mails {
        outbox::insert_in_tx(&mut tx, mail, plan.now).await?;
    }

    if let Some(promo) = &plan.promo {
        let redeemed = sqlx::query(
            "INSERT INTO redemptions (code, email, customer_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(promo.code.as_str())
        .bind(plan.email.as_str())
        .bind(&plan.customer_id)
        .bind(plan.now)
        .execute(&mut *tx)
        .await;
        match redeemed {
            Err(e) if db::is_unique_violation(&e) => {
                return Err(TxError::Domain(PromoError::EmailTaken));
            }
            other => {
                other?;
            }
        }
    }

    tx.commit().await?;
    Ok(SignupOutcome::Created)
}

/// Why the guarded redemption found nothing to update, read after the fact.
async fn refusal_now(db: &Db, code: &CodeName, package: &str, now: i64) -> Result<Refusal> {
    Ok(match find_code(db, code).await? {
        None => Refusal::Unknown,
        // If the rules now say yes, a concurrent signup took the last place between our read and
        // our update and an operator raised the limit since: report the state we lost to.
        Some(row) => row
            .rules
            .check(Some(package), to_datetime(now))
            .err()
            .unwrap_or(Refusal::Exhausted),
    })
}

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

/// One row of the admin signup list.
#[derive(Debug, Clone)]
pub struct SignupRow {
    pub signup_id: String,
    pub user_id: String,
    pub email: String,
    pub package: String,
    pub base_price_dzd: u64,
    pub price_dzd: u64,
    pub discount_percent: u32,
    pub promo_code: Option<String>,
    pub discount_ends_at: Option<i64>,
    pub created_at: i64,
    pub api_key_prefix: String,
    pub api_key_revoked: bool,
}

/// Newest first, keyset-paginated on (created_at, id).
pub async fn list_signups(
    db: &Db,
    after: Option<(i64, String)>,
    limit: u32,
) -> Result<(Vec<SignupRow>, u64)> {
    let (before_ts, before_id) = after.unwrap_or((i64::MAX, String::new()));
    let unbounded = before_id.is_empty();
    let rows = sqlx::query(
        "SELECT s.id AS signup_id, c.id AS user_id, c.email, s.package_id, s.base_price_dzd, \
           s.price_dzd, s.discount_percent, s.promo_code, s.discount_ends_at, s.created_at, \
           COALESCE(k.prefix, '') AS prefix, \
           CASE WHEN k.id IS NULL OR k.revoked_at IS NOT NULL THEN 1 ELSE 0 END AS revoked \
         FROM signups s JOIN customers c ON c.id = s.customer_id \
         LEFT JOIN api_keys k ON k.customer_id = c.id \
         WHERE ($4 = 1 OR s.created_at < $1 OR (s.created_at = $1 AND s.id < $2)) \
         ORDER BY s.created_at DESC, s.id DESC LIMIT $3",
    )
    .bind(before_ts)
    .bind(&before_id)
    .bind(i64::from(limit))
    .bind(i64::from(unbounded))
    .fetch_all(&db.read)
    .await?;
    let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM signups")
        .fetch_one(&db.read)
        .await?
        .try_get("n")?;
    let list = rows
        .iter()
        .map(|r| {
            let revoked: i64 = r.try_get("revoked")?;
            Ok(SignupRow {
                signup_id: r.try_get("signup_id")?,
                user_id: r.try_get("user_id")?,
                email: r.try_get("email")?,
                package: r.try_get("package_id")?,
                base_price_dzd: u64_of(r.try_get("base_price_dzd")?),
                price_dzd: u64_of(r.try_get("price_dzd")?),
                discount_percent: u32_of(r.try_get("discount_percent")?),
                promo_code: r.try_get("promo_code")?,
                discount_ends_at: r.try_get("discount_ends_at")?,
                created_at: r.try_get("created_at")?,
                api_key_prefix: r.try_get("prefix")?,
                api_key_revoked: revoked != 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((list, u64_of(total)))
}

/// Revokes every live key of a customer. Ok(false) when none was live; NotFound for no customer.
pub async fn revoke_keys(db: &Db, user_id: &str) -> Result<bool> {
    let now = db::now_millis();
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $2 WHERE customer_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .bind(now)
    .execute(&db.write)
    .await?;
    if done.rows_affected() > 0 {
        return Ok(true);
    }
    let exists = sqlx::query("SELECT id FROM customers WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&db.read)
        .await?;
    if exists.is_none() {
        return Err(PromoError::NotFound(format!("client inconnu : {user_id}")));
    }
    Ok(false)
}

/// The live key with this hash, with its customer and package.
pub struct KeyOwner {
    pub key_id: String,
    pub user_id: String,
    pub email: String,
    pub package: PackageRow,
}

pub async fn find_live_key(db: &Db, key_hash: &str) -> Result<Option<KeyOwner>> {
    let row = sqlx::query(
        "SELECT k.id AS key_id, c.id AS user_id, c.email, p.id AS p_id, p.name AS p_name, \
           p.monthly_price_dzd AS p_monthly_price_dzd, p.tokens_per_month AS p_tokens_per_month, \
           p.requests_per_minute AS p_requests_per_minute, p.allowed_models AS p_allowed_models \
         FROM api_keys k JOIN customers c ON c.id = k.customer_id \
         JOIN signups s ON s.customer_id = c.id JOIN packages p ON p.id = s.package_id \
         WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(key_hash)
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| {
        Ok(KeyOwner {
            key_id: r.try_get("key_id")?,
            user_id: r.try_get("user_id")?,
            email: r.try_get("email")?,
            package: package_from_row(&r, "p_")?,
        })
    })
    .transpose()
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

/// What [`recanonicalise_emails`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EmailRewrite {
    /// Rows brought to the canonical form.
    pub rewritten: u64,
    /// Rows left as they were: their canonical form belongs to another account already (two
    /// accounts the old rule let in for one mailbox), or the address is now refused (a mixed-script
    /// look-alike). Both keep working; the operator decides (their ids are logged).
    pub left: u64,
}

/// Brings e-mails stored under the old rule (trim + lower-case) to today's canonical form
/// ([`Email::parse`]), so uniqueness keeps holding between old rows and new signups.
///
/// An address in plain ASCII without an `xn--` label is canonical under both rules, so only the
/// other rows are read (`length` counts characters, `octet_length` bytes, on SQLite and
/// PostgreSQL alike). Idempotent and safe with several replicas starting at once: each row is
/// rewritten only if it still holds the value read, in one transaction with its redemptions.
pub async fn recanonicalise_emails(db: &Db) -> Result<EmailRewrite> {
    let rows = sqlx::query(
        "SELECT id, email FROM customers \
         WHERE length(email) <> octet_length(email) OR email LIKE '%xn--%'",
    )
    .fetch_all(&db.read)
    .await?;
    let mut outcome = EmailRewrite::default();
    for row in rows {
        let id: String = row.try_get("id")?;
        let old: String = row.try_get("email")?;
        let new = match Email::parse(&old) {
            Ok(e) if e.as_str() == old => continue,
            Ok(e) => e,
            Err(e) => {
                // Logged by id: the address itself is customer data.
                tracing::warn!(customer_id = %id, reason = %e.code().as_str(),
                    "stored e-mail is refused by the current rule; left as is");
                outcome.left += 1;
                continue;
            }
        };
        let mut tx = db.write.begin().await?;
        let updated = sqlx::query("UPDATE customers SET email = $1 WHERE id = $2 AND email = $3")
            .bind(new.as_str())
            .bind(&id)
            .bind(&old)
            .execute(&mut *tx)
            .await;
        match updated {
            Ok(r) if r.rows_affected() == 0 => continue, // another replica did it
            Ok(_) => {}
            Err(e) if db::is_unique_violation(&e) => {
                tracing::warn!(customer_id = %id,
                    "two accounts share one mailbox under the current e-mail rule; this one is left as is");
                outcome.left += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let redemptions =
            sqlx::query("UPDATE redemptions SET email = $1 WHERE customer_id = $2 AND email = $3")
                .bind(new.as_str())
                .bind(&id)
                .bind(&old)
                .execute(&mut *tx)
                .await;
        match redemptions {
            Ok(_) => {}
            Err(e) if db::is_unique_violation(&e) => {
                tracing::warn!(customer_id = %id,
                    "a redemption of this mailbox exists under another account; this one is left as is");
                outcome.left += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        outcome.rewritten += 1;
    }
    Ok(outcome)
}
