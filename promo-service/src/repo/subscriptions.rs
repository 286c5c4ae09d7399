//! The subscription in force, kept on the customer's `signups` row: package, price, discount, a
//! downgrade waiting for the next period, a cancellation date; and `package_changes`, the
//! history. Every change is one guarded UPDATE (on the package read when it was planned) with
//! its history row and e-mail in the same transaction, so two tabs cannot both apply a change
//! planned on the same state.

use iafactory::db::Db;
use sqlx::Row;

use super::billing::{self as bill, Ctx, NewInvoice};
use super::packages::{PackageRow, package_from_row};
use super::u64_of;
use crate::domain::account::{ChangeKind, ChangePlan};
use crate::error::{PromoError, Result};
use crate::outbox::{self, NewMail};

/// A customer's account and subscription as stored.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    pub customer_id: String,
    pub email: String,
    pub signed_up_at: i64,
    pub package: PackageRow,
    pub base_price_dzd: u64,
    pub price_dzd: u64,
    pub discount_percent: u32,
    pub promo_code: Option<String>,
    pub discount_ends_at: Option<i64>,
    pub pending_package_id: Option<String>,
    pub pending_from: Option<i64>,
    pub cancel_at: Option<i64>,
    pub suspended: bool,
}

/// Moves downgrades whose date has come onto their rows (one customer, or all). Keys already
/// see the pending package from its date on (see `find_live_key`); this makes the row, the
/// statistics and the dashboard agree with them.
pub async fn apply_due_changes(db: &Db, customer_id: Option<&str>, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE signups SET package_id = pending_package_id, price_dzd = pending_price_dzd, \
           discount_percent = pending_discount_percent, discount_ends_at = pending_discount_ends_at, \
           base_price_dzd = (SELECT monthly_price_dzd FROM packages WHERE id = signups.pending_package_id), \
           pending_package_id = NULL, pending_from = NULL, pending_price_dzd = NULL, \
           pending_discount_percent = NULL, pending_discount_ends_at = NULL \
         WHERE pending_from IS NOT NULL AND pending_from <= $1 AND ($2 = '' OR customer_id = $2)",
    )
    .bind(now)
    .bind(customer_id.unwrap_or(""))
    .execute(&db.write)
    .await?;
    Ok(done.rows_affected())
}

pub async fn find_subscription(db: &Db, customer_id: &str) -> Result<SubscriptionRow> {
    let r = sqlx::query(
        "SELECT c.id AS customer_id, c.email, c.suspended_at, s.created_at, s.base_price_dzd, \
           s.price_dzd, s.discount_percent, s.promo_code, s.discount_ends_at, s.pending_package_id, \
           s.pending_from, s.cancel_at, p.id AS p_id, p.name AS p_name, \
           p.monthly_price_dzd AS p_monthly_price_dzd, p.tokens_per_month AS p_tokens_per_month, \
           p.requests_per_minute AS p_requests_per_minute, p.allowed_models AS p_allowed_models, \
           p.monthly_cost_budget_nano_usd AS p_monthly_cost_budget_nano_usd \
         FROM customers c JOIN signups s ON s.customer_id = c.id \
         JOIN packages p ON p.id = s.package_id WHERE c.id = $1",
    )
    .bind(customer_id)
    .fetch_optional(&db.write)
    .await?
    .ok_or_else(|| PromoError::NotFound("compte inconnu".into()))?;
    let suspended: Option<i64> = r.try_get("suspended_at")?;
    let discount: i64 = r.try_get("discount_percent")?;
    Ok(SubscriptionRow {
        customer_id: r.try_get("customer_id")?,
        email: r.try_get("email")?,
        signed_up_at: r.try_get("created_at")?,
        package: package_from_row(&r, "p_")?,
        base_price_dzd: u64_of(r.try_get("base_price_dzd")?),
        price_dzd: u64_of(r.try_get("price_dzd")?),
        discount_percent: u32::try_from(discount).unwrap_or(0),
        promo_code: r.try_get("promo_code")?,
        discount_ends_at: r.try_get("discount_ends_at")?,
        pending_package_id: r.try_get("pending_package_id")?,
        pending_from: r.try_get("pending_from")?,
        cancel_at: r.try_get("cancel_at")?,
        suspended: suspended.is_some(),
    })
}

fn price(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Applies a planned change if the package is still the one it was planned from. An upgrade
/// rewrites the row now; a downgrade is stored as pending. Either clears a pending downgrade
/// and a pending cancellation (the customer chose to stay on another package). An upgrade's
/// prorated invoice (`proration`) is issued in the same transaction, after the guarded UPDATE:
/// of two upgrades planned on the same state only the one whose UPDATE matched issues it, and
/// no change is stored without its invoice or the other way round.
#[expect(
    clippy::too_many_arguments,
    reason = "one transaction's inputs; each is a distinct part of the change"
)]
pub async fn change_package(
    db: &Db,
    customer_id: &str,
    from: &str,
    to: &str,
    plan: &ChangePlan,
    mail: NewMail,
    proration: Option<(NewInvoice, Ctx<'_>)>,
    now: i64,
) -> Result<()> {
    let mut tx = db.write.begin().await?;
    let discount = plan.discount.map_or(0, |p| i64::from(p.get()));
    let done = match plan.kind {
        ChangeKind::Upgrade => {
            sqlx::query(
                "UPDATE signups SET package_id = $3, base_price_dzd = $4, price_dzd = $5, \
                   discount_percent = $6, discount_ends_at = $7, pending_package_id = NULL, \
                   pending_from = NULL, pending_price_dzd = NULL, pending_discount_percent = NULL, \
                   pending_discount_ends_at = NULL, cancel_at = NULL \
                 WHERE customer_id = $1 AND package_id = $2",
            )
            .bind(customer_id)
            .bind(from)
            .bind(to)
            .bind(price(plan.base_price_dzd))
            .bind(price(plan.price_dzd))
            .bind(discount)
            .bind(plan.discount_ends_at)
            .execute(&mut *tx)
            .await?
        }
        ChangeKind::Downgrade => {
            sqlx::query(
                "UPDATE signups SET pending_package_id = $3, pending_from = $4, \
                   pending_price_dzd = $5, pending_discount_percent = $6, \
                   pending_discount_ends_at = $7, cancel_at = NULL \
                 WHERE customer_id = $1 AND package_id = $2",
            )
            .bind(customer_id)
            .bind(from)
            .bind(to)
            .bind(plan.effective_at)
            .bind(price(plan.price_dzd))
            .bind(discount)
            .bind(plan.discount_ends_at)
            .execute(&mut *tx)
            .await?
        }
    };
    if done.rows_affected() != 1 {
        return Err(PromoError::Conflict(
            "votre forfait a changé entre-temps : rechargez la page".into(),
        ));
    }
    let change_id = format!("chg_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(
        "INSERT INTO package_changes (id, customer_id, from_package, to_package, kind, effective_at, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&change_id)
    .bind(customer_id)
    .bind(from)
    .bind(to)
    .bind(plan.kind.as_str())
    .bind(plan.effective_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if let Some((invoice, ctx)) = proration {
        bill::insert_invoice(&mut tx, &invoice.for_change(&change_id), ctx).await?;
    }
    outbox::store::insert_in_tx(&mut tx, &mail, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets (or, with None, withdraws) the cancellation date, with its e-mail. Refused when there is
/// nothing to withdraw, or the subscription already ended.
pub async fn set_cancellation(
    db: &Db,
    customer_id: &str,
    cancel_at: Option<i64>,
    mail: NewMail,
    now: i64,
) -> Result<()> {
    let mut tx = db.write.begin().await?;
    let done = match cancel_at {
        Some(at) => sqlx::query(
            "UPDATE signups SET cancel_at = $2, pending_package_id = NULL, pending_from = NULL, \
               pending_price_dzd = NULL, pending_discount_percent = NULL, \
               pending_discount_ends_at = NULL \
             WHERE customer_id = $1 AND (cancel_at IS NULL OR cancel_at > $3)",
        )
        .bind(customer_id)
        .bind(at)
        .bind(now),
        None => sqlx::query(
            "UPDATE signups SET cancel_at = NULL WHERE customer_id = $1 AND cancel_at > $3 \
             AND $2 = 0",
        )
        .bind(customer_id)
        .bind(0i64)
        .bind(now),
    }
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(PromoError::Conflict(match cancel_at {
            Some(_) => "votre abonnement a déjà pris fin".into(),
            None => "aucune résiliation en attente".into(),
        }));
    }
    outbox::store::insert_in_tx(&mut tx, &mail, now).await?;
    tx.commit().await?;
    Ok(())
}
