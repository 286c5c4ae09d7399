//! The `api_keys` table: the lookup llm-gateway makes on every call (by SHA-256 of the key,
//! joined to the customer and the package in force), revocation by the operator, and the
//! customer's own keys (list, create, revoke, rotate). A key works while `revoked_at` is NULL or
//! in the future (a rotation's grace).

use iafactory::db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::packages::{PackageRow, package_from_row};
use crate::audit::{self, Audit};
use crate::domain::account::MAX_LIVE_KEYS;
use crate::error::{PromoError, Result};
use crate::outbox::{self, NewMail};

/// Revokes every live key of a customer (keys in a rotation grace too), with the audit row in
/// the same transaction. Ok(false) when none was live; NotFound for no customer.
pub async fn revoke_keys(db: &Db, user_id: &str, audit: &Audit<'_>, now: i64) -> Result<bool> {
    let mut tx = db.write.begin().await?;
    customer_exists(&mut tx, user_id).await?;
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $2, revoked_by = 'operator' \
         WHERE customer_id = $1 AND (revoked_at IS NULL OR revoked_at > $2)",
    )
    .bind(user_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let revoked = done.rows_affected();
    if revoked > 0 {
        audit::record(
            &mut tx,
            audit,
            &serde_json::json!({ "live_keys": revoked }),
            &serde_json::json!({ "live_keys": 0 }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(revoked > 0)
}

/// NotFound unless the customer exists.
async fn customer_exists(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
) -> Result<()> {
    let exists = sqlx::query("SELECT id FROM customers WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?;
    match exists {
        Some(_) => Ok(()),
        None => Err(PromoError::NotFound(format!("client inconnu : {user_id}"))),
    }
}

/// Suspends (`suspend`) or reactivates a customer's account, with the audit row in the same
/// transaction. Ok(false) when it was already in that state (nothing written); NotFound for no
/// customer. One guarded UPDATE each way, so the first suspension's instant is kept.
pub async fn set_suspended(
    db: &Db,
    user_id: &str,
    suspend: bool,
    audit: &Audit<'_>,
    now: i64,
) -> Result<bool> {
    let mut tx = db.write.begin().await?;
    customer_exists(&mut tx, user_id).await?;
    let done = if suspend {
        sqlx::query("UPDATE customers SET suspended_at = $2 WHERE id = $1 AND suspended_at IS NULL")
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
    } else {
        sqlx::query(
            "UPDATE customers SET suspended_at = NULL WHERE id = $1 AND suspended_at IS NOT NULL",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await?
    };
    let changed = done.rows_affected() > 0;
    if changed {
        audit::record(
            &mut tx,
            audit,
            &serde_json::json!({ "suspended": !suspend }),
            &serde_json::json!({ "suspended": suspend }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// The operator revokes one key of a customer now, with the audit row in the same transaction.
/// NotFound for an unknown key or one of another customer; Conflict when already revoked.
pub async fn revoke_key_by_operator(
    db: &Db,
    customer_id: &str,
    key_id: &str,
    audit: &Audit<'_>,
    now: i64,
) -> Result<KeyRow> {
    let mut tx = db.write.begin().await?;
    let Some(row) = end_key(&mut tx, customer_id, key_id, now, "operator", false, now).await?
    else {
        return Err(no_such_live_key(&mut tx, customer_id, key_id).await?);
    };
    audit::record(
        &mut tx,
        audit,
        &serde_json::json!({ "key": row.prefix, "revoked": false }),
        &serde_json::json!({ "key": row.prefix, "revoked": true }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The live key with this hash, with its customer and package; none for a suspended customer.
pub struct KeyOwner {
    pub key_id: String,
    pub user_id: String,
    pub email: String,
    pub package: PackageRow,
    /// The subscription's dunning state (`suspended`: the key answers payment_required).
    pub billing_state: String,
}

/// The package in force is the pending downgrade's once its date has come, even before the
/// periodic job moves it onto the row; a subscription cancelled for a past date has no live key.
pub async fn find_live_key(db: &Db, key_hash: &str, now: i64) -> Result<Option<KeyOwner>> {
    let row = sqlx::query(
        "SELECT k.id AS key_id, c.id AS user_id, c.email, s.billing_state, p.id AS p_id, p.name AS p_name, \
           p.monthly_price_dzd AS p_monthly_price_dzd, p.tokens_per_month AS p_tokens_per_month, \
           p.requests_per_minute AS p_requests_per_minute, p.allowed_models AS p_allowed_models, \
           p.monthly_cost_budget_nano_usd AS p_monthly_cost_budget_nano_usd \
         FROM api_keys k JOIN customers c ON c.id = k.customer_id \
         JOIN signups s ON s.customer_id = c.id \
         JOIN packages p ON p.id = (CASE WHEN s.pending_from IS NOT NULL AND s.pending_from <= $2 \
           THEN s.pending_package_id ELSE s.package_id END) \
         WHERE k.key_hash = $1 AND (k.revoked_at IS NULL OR k.revoked_at > $2) \
           AND (s.cancel_at IS NULL OR s.cancel_at > $2) AND c.suspended_at IS NULL",
    )
    .bind(key_hash)
    .bind(now)
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| {
        Ok(KeyOwner {
            key_id: r.try_get("key_id")?,
            user_id: r.try_get("user_id")?,
            email: r.try_get("email")?,
            package: package_from_row(&r, "p_")?,
            billing_state: r.try_get("billing_state")?,
        })
    })
    .transpose()
}

/// A key as its owner sees it (never the key).
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub id: String,
    pub prefix: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_by: Option<String>,
}

fn key_from_row(r: &AnyRow) -> Result<KeyRow> {
    Ok(KeyRow {
        id: r.try_get("id")?,
        prefix: r.try_get("prefix")?,
        name: r.try_get("name")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        revoked_by: r.try_get("revoked_by")?,
    })
}

macro_rules! key_columns {
    () => {
        "id, prefix, name, created_at, revoked_at, revoked_by"
    };
}

/// The customer's keys, newest first.
pub async fn list_keys(db: &Db, customer_id: &str) -> Result<Vec<KeyRow>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        key_columns!(),
        " FROM api_keys WHERE customer_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(customer_id)
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(key_from_row).collect()
}

/// A key to store: its id, SHA-256 and display prefix, never the key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub hash: String,
    pub prefix: String,
    pub name: String,
}

/// In `tx`: refuses a suspended account and one holding [`MAX_LIVE_KEYS`] live keys (the
/// count is read in the transaction; two concurrent creations may both pass it, which the
/// limit tolerates: it bounds clutter, it guards no money).
async fn check_may_create(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    customer_id: &str,
    now: i64,
) -> Result<()> {
    let row = sqlx::query(
        "SELECT c.suspended_at, (SELECT COUNT(*) FROM api_keys k WHERE k.customer_id = c.id \
           AND (k.revoked_at IS NULL OR k.revoked_at > $2)) AS live \
         FROM customers c WHERE c.id = $1",
    )
    .bind(customer_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| PromoError::NotFound("compte inconnu".into()))?;
    let suspended: Option<i64> = row.try_get("suspended_at")?;
    if suspended.is_some() {
        return Err(PromoError::Suspended);
    }
    let live: i64 = row.try_get("live")?;
    if live >= MAX_LIVE_KEYS {
        return Err(PromoError::Conflict(format!(
            "vous avez déjà {MAX_LIVE_KEYS} clés actives : révoquez-en une avant d'en créer une autre"
        )));
    }
    Ok(())
}

async fn insert_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    customer_id: &str,
    key: &NewKey,
    now: i64,
) -> Result<KeyRow> {
    sqlx::query(
        "INSERT INTO api_keys (id, customer_id, key_hash, prefix, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(customer_id)
    .bind(&key.hash)
    .bind(&key.prefix)
    .bind(&key.name)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(KeyRow {
        id: key.id.clone(),
        prefix: key.prefix.clone(),
        name: key.name.clone(),
        created_at: now,
        revoked_at: None,
        revoked_by: None,
    })
}

/// Creates a key and its security notice, in one transaction.
pub async fn create_key(
    db: &Db,
    customer_id: &str,
    key: &NewKey,
    mail: impl FnOnce(&KeyRow) -> NewMail,
    now: i64,
) -> Result<KeyRow> {
    let mut tx = db.write.begin().await?;
    check_may_create(&mut tx, customer_id, now).await?;
    let row = insert_key(&mut tx, customer_id, key, now).await?;
    outbox::store::insert_in_tx(&mut tx, &mail(&row), now).await?;
    tx.commit().await?;
    Ok(row)
}

/// Sets `revoked_at` on one of the customer's keys that still works (`only_active`: not one
/// already in a grace). None when no such key: unknown, another customer's, or already revoked;
/// the caller tells the first two apart from the third without revealing another's key.
async fn end_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    customer_id: &str,
    key_id: &str,
    at: i64,
    by: &str,
    only_active: bool,
    now: i64,
) -> Result<Option<KeyRow>> {
    let row = sqlx::query(concat!(
        "UPDATE api_keys SET revoked_at = $3, revoked_by = $4 \
         WHERE id = $1 AND customer_id = $2 AND (revoked_at IS NULL OR ($6 = 0 AND revoked_at > $5)) \
         RETURNING ",
        key_columns!()
    ))
    .bind(key_id)
    .bind(customer_id)
    .bind(at)
    .bind(by)
    .bind(now)
    .bind(i64::from(only_active))
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|r| key_from_row(&r)).transpose()
}

/// Why [`end_key`] changed nothing: NotFound for an unknown key or another customer's (the same
/// answer, so ids of other accounts cannot be probed), Conflict for one of the caller's that
/// is already revoked.
async fn no_such_live_key(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    customer_id: &str,
    key_id: &str,
) -> Result<PromoError> {
    let mine = sqlx::query("SELECT id FROM api_keys WHERE id = $1 AND customer_id = $2")
        .bind(key_id)
        .bind(customer_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if mine.is_some() {
        PromoError::Conflict("cette clé est déjà révoquée ou en cours de remplacement".into())
    } else {
        PromoError::NotFound("clé inconnue".into())
    })
}

/// Revokes one of the customer's keys now, with its security notice.
pub async fn revoke_key(
    db: &Db,
    customer_id: &str,
    key_id: &str,
    mail: impl FnOnce(&KeyRow) -> NewMail,
    now: i64,
) -> Result<KeyRow> {
    let mut tx = db.write.begin().await?;
    let Some(row) = end_key(&mut tx, customer_id, key_id, now, "customer", false, now).await?
    else {
        return Err(no_such_live_key(&mut tx, customer_id, key_id).await?);
    };
    outbox::store::insert_in_tx(&mut tx, &mail(&row), now).await?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces an active key: the new one (same name) works at once, the old one until
/// `now + grace_ms`. Both notices in the same transaction.
pub async fn rotate_key(
    db: &Db,
    customer_id: &str,
    key_id: &str,
    grace_ms: i64,
    new: &NewKey,
    mails: impl FnOnce(&KeyRow, &KeyRow) -> Vec<NewMail>,
    now: i64,
) -> Result<(KeyRow, KeyRow)> {
    let mut tx = db.write.begin().await?;
    check_may_create(&mut tx, customer_id, now)
        .await
        .or_else(|e| match e {
            // The old key leaves the count as the new one joins it: rotation is allowed at the limit.
            PromoError::Conflict(_) => Ok(()),
            other => Err(other),
        })?;
    let Some(old) = end_key(
        &mut tx,
        customer_id,
        key_id,
        now + grace_ms,
        "rotation",
        true,
        now,
    )
    .await?
    else {
        return Err(no_such_live_key(&mut tx, customer_id, key_id).await?);
    };
    let new_key = NewKey {
        name: old.name.clone(),
        ..new.clone()
    };
    let created = insert_key(&mut tx, customer_id, &new_key, now).await?;
    for mail in mails(&created, &old) {
        outbox::store::insert_in_tx(&mut tx, &mail, now).await?;
    }
    tx.commit().await?;
    Ok((created, old))
}
