//! The `idempotency_keys` table: one row per key hash, holding the request's fingerprint and the
//! sealed answer, written in the signup's own transaction and forgotten after 24 hours.

use std::time::Duration;

use iafactory::db::{self, Db};
use sqlx::{Any, Row, Transaction};
use tokio::sync::watch;

use crate::error::Result;

/// Idempotency records older than this are forgotten (Stripe keeps them 24 h).
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

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

/// Claims the key inside the caller's transaction, or takes over a record past its time to live;
/// false when another request holds it. A concurrent holder of the same key makes this wait
/// (PostgreSQL) until it commits; the caller then replays its answer.
pub async fn claim_in_tx(
    tx: &mut Transaction<'static, Any>,
    claim: &IdempotencyClaim,
    now: i64,
) -> Result<bool, sqlx::Error> {
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
    .bind(now)
    .bind(now - IDEMPOTENCY_TTL_MS)
    .execute(&mut **tx)
    .await?;
    Ok(claimed.rows_affected() != 0)
}

pub async fn purge_idempotency(db: &Db) -> Result<u64> {
    let cutoff = db::now_millis() - IDEMPOTENCY_TTL_MS;
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff)
        .execute(&db.write)
        .await?;
    Ok(done.rows_affected())
}

/// Forgets idempotency records past their 24 h lifetime, hourly, until `stop` turns true.
pub async fn purge_hourly(db: Db, mut stop: watch::Receiver<bool>) {
    loop {
        match purge_idempotency(&db).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency records removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            () = iafactory::shutdown::stopped(&mut stop) => return,
        }
    }
}
