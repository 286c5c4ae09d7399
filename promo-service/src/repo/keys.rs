//! The `api_keys` table: revocation by the operator, and the lookup llm-gateway makes on every
//! call (by SHA-256 of the key, joined to the customer and the package).

use iafactory::db::{self, Db};
use sqlx::Row;

use super::packages::{PackageRow, package_from_row};
use crate::error::{PromoError, Result};

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
