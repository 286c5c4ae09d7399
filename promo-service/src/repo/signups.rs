//! The signup transaction and what it writes: `customers`, `signups`, `api_keys`,
//! `redemptions`, the code's `used` counter, the outbox e-mails and the idempotency record; and
//! the admin list of signups.
//!
//! The redemption rule — a limited code is never redeemed past its maximum, and a failed signup
//! consumes nothing — rests on one guarded statement inside the signup transaction:
//! `UPDATE promo_codes SET used = used + 1 WHERE code = $1 AND used < max_redemptions ...` whose
//! affected-row count is checked, with every other write of the signup in the same transaction.
//! PostgreSQL re-checks the guard after waiting for a concurrent writer's row lock, so replicas on
//! one database cannot oversell; a CHECK constraint on the table backs it up. Transactions that
//! hit a serialization failure (SERIALIZABLE databases such as CockroachDB) are retried whole.

use iafactory::db::{self, Db};
use sqlx::Row;

use super::codes::find_code;
use super::packages::PackageRow;
use super::{u32_of, u64_of};
use crate::clock::to_datetime;
use crate::domain::{CodeName, Email, Percent};
use crate::error::{PromoError, Refusal, Result};
use crate::idempotency::store::{IdempotencyClaim, claim_in_tx};
use crate::outbox::{self, NewMail};

/// How many times a transaction is re-run after a serialization failure or deadlock.
const MAX_TX_ATTEMPTS: u32 = 8;

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
    /// The language of the customer's e-mails, stored on the signup.
    pub lang: crate::domain::Lang,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub struct PlannedRedemption {
    pub code: CodeName,
    pub discount: Percent,
    pub ends_at: i64,
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

    if let Some(claim) = idempotency
        && !claim_in_tx(&mut tx, claim, plan.now).await?
    {
        return Ok(SignupOutcome::IdempotencyKeyTaken);
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
         promo_code, discount_ends_at, created_at, lang) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
    .bind(plan.lang.as_str())
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
        outbox::store::insert_in_tx(&mut tx, mail, plan.now).await?;
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
    /// The signup key's prefix (a customer may have created more since).
    pub api_key_prefix: String,
    /// True when none of the customer's keys works any more.
    pub api_key_revoked: bool,
}

/// Newest first, keyset-paginated on (created_at, id).
pub async fn list_signups(
    db: &Db,
    after: Option<(i64, String)>,
    limit: u32,
    now: i64,
) -> Result<(Vec<SignupRow>, u64)> {
    let (before_ts, before_id) = after.unwrap_or((i64::MAX, String::new()));
    let unbounded = before_id.is_empty();
    let rows = sqlx::query(
        "SELECT s.id AS signup_id, c.id AS user_id, c.email, s.package_id, s.base_price_dzd, \
           s.price_dzd, s.discount_percent, s.promo_code, s.discount_ends_at, s.created_at, \
           COALESCE((SELECT k.prefix FROM api_keys k WHERE k.customer_id = c.id \
             ORDER BY k.created_at, k.id LIMIT 1), '') AS prefix, \
           CASE WHEN EXISTS (SELECT 1 FROM api_keys k WHERE k.customer_id = c.id \
             AND (k.revoked_at IS NULL OR k.revoked_at > $5)) THEN 0 ELSE 1 END AS revoked \
         FROM signups s JOIN customers c ON c.id = s.customer_id \
         WHERE ($4 = 1 OR s.created_at < $1 OR (s.created_at = $1 AND s.id < $2)) \
         ORDER BY s.created_at DESC, s.id DESC LIMIT $3",
    )
    .bind(before_ts)
    .bind(&before_id)
    .bind(i64::from(limit))
    .bind(i64::from(unbounded))
    .bind(now)
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
