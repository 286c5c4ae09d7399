//! Sign-in and sessions: `sign_in_requests` (the shared per-address and per-IP limits),
//! `sign_in_links` (one-time, hashed) and `sessions` (hashed, idle and absolute expiry). Every
//! replica reads the same rows, so any of them serves any session.

use iafactory::db::Db;
use sqlx::Row;

use crate::domain::Email;
use crate::domain::account::{
    LINK_RATE_WINDOW_MS, LINK_TTL_MS, LINKS_PER_ADDRESS, LINKS_PER_IP, SESSION_ABSOLUTE_MS,
    SESSION_IDLE_MS, SESSION_TOUCH_MS,
};
use crate::error::{PromoError, Result};
use crate::outbox::{self, NewMail};
use crate::secrets;

/// What a sign-in request did. The caller answers `Sent` and `NoAccount` identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRequest {
    Sent,
    NoAccount,
    /// Over a limit; `retry_after_ms` until the oldest counted request leaves the window.
    RateLimited {
        retry_after_ms: i64,
    },
}

/// Counts the request against the address's and the IP's limits, then, if the address has an
/// account, stores the link's hash and its e-mail, all in one transaction. Both buckets are
/// charged for known and unknown addresses alike, so the limits tell nothing either. Refused
/// requests are not counted: a stranger cannot keep a customer locked out by asking on and on.
/// (Two concurrent requests may both pass the count; the limit is a bound on abuse, not a quota.)
pub async fn request_link(
    db: &Db,
    email: &Email,
    ip: Option<&str>,
    token_hash: &str,
    mail: impl FnOnce(&str) -> NewMail,
    now: i64,
) -> Result<LinkRequest> {
    let since = now - LINK_RATE_WINDOW_MS;
    let mut buckets = vec![(
        format!("email:{}", secrets::hash_token(email.as_str())),
        LINKS_PER_ADDRESS,
    )];
    if let Some(ip) = ip {
        buckets.push((format!("ip:{ip}"), LINKS_PER_IP));
    }
    let mut tx = db.write.begin().await?;
    for (bucket, limit) in &buckets {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM sign_in_requests \
             WHERE bucket = $1 AND created_at > $2",
        )
        .bind(bucket)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        let n: i64 = row.try_get("n")?;
        if n >= *limit {
            let oldest: Option<i64> = row.try_get("oldest")?;
            let retry_after_ms =
                oldest.map_or(LINK_RATE_WINDOW_MS, |o| o + LINK_RATE_WINDOW_MS - now);
            return Ok(LinkRequest::RateLimited {
                retry_after_ms: retry_after_ms.max(1000),
            });
        }
    }
    for (bucket, _) in &buckets {
        sqlx::query("INSERT INTO sign_in_requests (bucket, created_at) VALUES ($1, $2)")
            .bind(bucket)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    let customer = sqlx::query("SELECT id FROM customers WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let outcome = match customer {
        None => LinkRequest::NoAccount,
        Some(row) => {
            let customer_id: String = row.try_get("id")?;
            sqlx::query(
                "INSERT INTO sign_in_links (token_hash, customer_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(&customer_id)
            .bind(now)
            .bind(now + LINK_TTL_MS)
            .execute(&mut *tx)
            .await?;
            outbox::store::insert_in_tx(&mut tx, &mail(&customer_id), now).await?;
            LinkRequest::Sent
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// A session just opened.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub customer_id: String,
    pub expires_at: i64,
}

/// Uses the link (one guarded UPDATE: a second use, or one past expiry, changes no row) and
/// opens a session under `session_hash`, in one transaction. None: unknown, used or expired.
pub async fn consume_link(
    db: &Db,
    token_hash: &str,
    session_hash: &str,
    now: i64,
) -> Result<Option<OpenedSession>> {
    let mut tx = db.write.begin().await?;
    let used = sqlx::query(
        "UPDATE sign_in_links SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING customer_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = used else {
        return Ok(None);
    };
    let customer_id: String = row.try_get("customer_id")?;
    let expires_at = now + SESSION_ABSOLUTE_MS;
    sqlx::query(
        "INSERT INTO sessions (token_hash, customer_id, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(session_hash)
    .bind(&customer_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(OpenedSession {
        customer_id,
        expires_at,
    }))
}

/// The customer of a live session, refreshing its idle timer (at most once a minute).
pub async fn session_customer(db: &Db, session_hash: &str, now: i64) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT customer_id, last_seen_at FROM sessions WHERE token_hash = $1 \
         AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3",
    )
    .bind(session_hash)
    .bind(now)
    .bind(now - SESSION_IDLE_MS)
    .fetch_optional(&db.read)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let last_seen: i64 = row.try_get("last_seen_at")?;
    if now - last_seen >= SESSION_TOUCH_MS {
        sqlx::query(
            "UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2",
        )
        .bind(session_hash)
        .bind(now)
        .execute(&db.write)
        .await?;
    }
    Ok(Some(row.try_get("customer_id")?))
}

/// Ends this session, or every live session of its customer. Returns how many ended.
pub async fn sign_out(db: &Db, session_hash: &str, everywhere: bool, now: i64) -> Result<u32> {
    let done = if everywhere {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE revoked_at IS NULL AND customer_id = \
             (SELECT customer_id FROM sessions WHERE token_hash = $1)",
        )
        .bind(session_hash)
        .bind(now)
        .execute(&db.write)
        .await?
    } else {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(session_hash)
        .bind(now)
        .execute(&db.write)
        .await?
    };
    Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
}

/// Deletes what can no longer serve: counted requests out of the window, links and sessions
/// past their end for [`crate::domain::account::EXPIRED_KEPT_MS`].
pub async fn purge_expired(db: &Db, now: i64) -> Result<u64> {
    let day = crate::domain::account::EXPIRED_KEPT_MS;
    let mut n = 0;
    for (sql, cutoff) in [
        (
            "DELETE FROM sign_in_requests WHERE created_at < $1",
            now - LINK_RATE_WINDOW_MS,
        ),
        ("DELETE FROM sign_in_links WHERE expires_at < $1", now - day),
        ("DELETE FROM sessions WHERE expires_at < $1", now - day),
    ] {
        n += sqlx::query(sql)
            .bind(cutoff)
            .execute(&db.write)
            .await?
            .rows_affected();
    }
    Ok(n)
}

/// The one refusal of a missing, unknown, signed-out or expired session (which it was is not
/// told).
pub fn session_refused() -> PromoError {
    PromoError::Unauthenticated("session inconnue ou expirée : reconnectez-vous")
}
