//! The `operators` and `operator_sessions` tables, and the failed sign-in budget (kept in the
//! customers' `sign_in_requests` table under `op-fail-…` buckets, so the same purge clears it).
//! Sessions follow the customer portal's rules (hashed token, idle and absolute expiry, see
//! `domain::account`); every replica reads the same rows.

use iafactory::db::{self, Db};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, Audit};
use crate::domain::account::{
    LINK_RATE_WINDOW_MS, SESSION_ABSOLUTE_MS, SESSION_IDLE_MS, SESSION_TOUCH_MS,
};
use crate::domain::operator::Role;
use crate::error::{PromoError, Result};

/// An operator as stored (the hash stays in this module's callers: never sent).
#[derive(Debug, Clone)]
pub struct OperatorRow {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: i64,
    /// When the operator was deactivated; `None` while active.
    pub deactivated_at: Option<i64>,
}

const COLUMNS: &str =
    "o.id, o.email, o.display_name, o.role, o.password_hash, o.created_at, o.deactivated_at";

fn operator_from_row(r: &AnyRow) -> Result<OperatorRow> {
    let role: String = r.try_get("role")?;
    Ok(OperatorRow {
        id: r.try_get("id")?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        role: Role::parse(&role)
            .ok_or_else(|| PromoError::internal(format!("unknown role {role:?}")))?,
        password_hash: r.try_get("password_hash")?,
        created_at: r.try_get("created_at")?,
        deactivated_at: r.try_get("deactivated_at")?,
    })
}

/// Inserts the operator and its audit row in one transaction; `CodeExists`-like conflict for a
/// taken e-mail.
pub async fn create_operator(db: &Db, op: &OperatorRow, audit: &Audit<'_>) -> Result<()> {
    let mut tx = db.write.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO operators (id, email, display_name, role, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&op.id)
    .bind(&op.email)
    .bind(&op.display_name)
    .bind(op.role.as_str())
    .bind(&op.password_hash)
    .bind(op.created_at)
    .execute(&mut *tx)
    .await;
    if let Err(e) = inserted {
        return Err(if db::is_unique_violation(&e) {
            PromoError::Conflict("un opérateur existe déjà pour cette adresse e-mail".into())
        } else {
            e.into()
        });
    }
    audit::record(
        &mut tx,
        audit,
        &serde_json::Value::Null,
        &serde_json::json!({
            "email": op.email, "display_name": op.display_name, "role": op.role.as_str(),
        }),
        op.created_at,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn list_operators(db: &Db) -> Result<Vec<OperatorRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM operators o ORDER BY o.created_at, o.id"
    )))
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(operator_from_row).collect()
}

pub async fn find_operator_by_email(db: &Db, email: &str) -> Result<Option<OperatorRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM operators o WHERE o.email = $1"
    )))
    .bind(email)
    .fetch_optional(&db.read)
    .await?;
    row.as_ref().map(operator_from_row).transpose()
}

/// The buckets a failed sign-in is charged to.
fn failure_buckets(email_hash: &str, ip: Option<&str>) -> Vec<String> {
    let mut b = vec![format!("op-fail-email:{email_hash}")];
    if let Some(ip) = ip {
        b.push(format!("op-fail-ip:{ip}"));
    }
    b
}

/// Seconds until a sign-in may be tried again when the e-mail's or the IP's failures in the
/// window reached their limit; None while within budget.
pub async fn sign_in_blocked(
    db: &Db,
    email_hash: &str,
    ip: Option<&str>,
    limits: (i64, i64),
    now: i64,
) -> Result<Option<u64>> {
    for (bucket, limit) in failure_buckets(email_hash, ip)
        .into_iter()
        .zip([limits.0, limits.1])
    {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM sign_in_requests \
             WHERE bucket = $1 AND created_at > $2",
        )
        .bind(&bucket)
        .bind(now - LINK_RATE_WINDOW_MS)
        .fetch_one(&db.read)
        .await?;
        let n: i64 = row.try_get("n")?;
        if n >= limit {
            let oldest: Option<i64> = row.try_get("oldest")?;
            let wait = oldest.map_or(LINK_RATE_WINDOW_MS, |o| o + LINK_RATE_WINDOW_MS - now);
            return Ok(Some(u64::try_from(wait.max(1000) / 1000).unwrap_or(1)));
        }
    }
    Ok(None)
}

/// Counts a failed sign-in against the e-mail and the IP.
pub async fn record_sign_in_failure(
    db: &Db,
    email_hash: &str,
    ip: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut tx = db.write.begin().await?;
    for bucket in failure_buckets(email_hash, ip) {
        sqlx::query("INSERT INTO sign_in_requests (bucket, created_at) VALUES ($1, $2)")
            .bind(bucket)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Opens a session under `session_hash`; returns its absolute end.
pub async fn open_operator_session(
    db: &Db,
    operator_id: &str,
    session_hash: &str,
    now: i64,
) -> Result<i64> {
    let expires_at = now + SESSION_ABSOLUTE_MS;
    sqlx::query(
        "INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at, expires_at) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(session_hash)
    .bind(operator_id)
    .bind(now)
    .bind(expires_at)
    .execute(&db.write)
    .await?;
    Ok(expires_at)
}

/// The operator of a live session, refreshing its idle timer (at most once a minute).
pub async fn session_operator(
    db: &Db,
    session_hash: &str,
    now: i64,
) -> Result<Option<OperatorRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, s.last_seen_at FROM operator_sessions s \
         JOIN operators o ON o.id = s.operator_id WHERE s.token_hash = $1 \
         AND s.revoked_at IS NULL AND s.expires_at > $2 AND s.last_seen_at > $3 \
         AND o.deactivated_at IS NULL"
    )))
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
            "UPDATE operator_sessions SET last_seen_at = $2 WHERE token_hash = $1 AND last_seen_at < $2",
        )
        .bind(session_hash)
        .bind(now)
        .execute(&db.write)
        .await?;
    }
    operator_from_row(&row).map(Some)
}

/// Ends the session; how many ended (0 or 1).
pub async fn end_operator_session(db: &Db, session_hash: &str, now: i64) -> Result<u32> {
    let done = sqlx::query(
        "UPDATE operator_sessions SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(session_hash)
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
}

/// Deletes operator sessions past their end for a day (kept that long for an operator looking
/// into a sign-in). Returns how many went.
pub async fn purge_operator_sessions(db: &Db, now: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM operator_sessions WHERE expires_at < $1")
        .bind(now - 24 * 3_600_000)
        .execute(&db.write)
        .await?;
    Ok(done.rows_affected())
}

pub async fn find_operator(db: &Db, id: &str) -> Result<Option<OperatorRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM operators o WHERE o.id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.read)
    .await?;
    row.as_ref().map(operator_from_row).transpose()
}

/// What the audit log shows of an operator (never the password hash).
fn operator_json(o: &OperatorRow) -> serde_json::Value {
    serde_json::json!({
        "email": o.email,
        "display_name": o.display_name,
        "role": o.role.as_str(),
        "active": o.deactivated_at.is_none(),
    })
}

/// Replaces the operator's password hash and ends every other session of theirs (all but
/// `keep_session_hash`), with the audit row, in one transaction. Returns the sessions ended.
pub async fn change_password(
    db: &Db,
    operator_id: &str,
    new_hash: &str,
    keep_session_hash: &str,
    audit: &Audit<'_>,
    now: i64,
) -> Result<u32> {
    let mut tx = db.write.begin().await?;
    let changed = sqlx::query(
        "UPDATE operators SET password_hash = $2 WHERE id = $1 AND deactivated_at IS NULL",
    )
    .bind(operator_id)
    .bind(new_hash)
    .execute(&mut *tx)
    .await?;
    if changed.rows_affected() != 1 {
        return Err(PromoError::Unauthenticated(
            "session d'opérateur inconnue ou expirée : reconnectez-vous",
        ));
    }
    let ended = sqlx::query(
        "UPDATE operator_sessions SET revoked_at = $3 WHERE operator_id = $1 \
         AND revoked_at IS NULL AND token_hash <> $2",
    )
    .bind(operator_id)
    .bind(keep_session_hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit,
        &serde_json::json!({ "password": "(ancien)" }),
        &serde_json::json!({ "password": "(changé)", "other_sessions_ended": ended.rows_affected() }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(u32::try_from(ended.rows_affected()).unwrap_or(u32::MAX))
}

/// A change to an operator's account by an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    Role(Role),
    Active(bool),
}

/// Applies `change` to the operator, refusing to leave no active owner; when it deactivates,
/// every session of theirs ends in the same transaction. The audit row (before/after) too.
///
/// The last-owner rule is a read (how many other active owners) followed by a write, which two
/// owners demoting each other at once on two replicas could both pass. So the transaction first
/// writes every active owner's row (`SET role = role`): on PostgreSQL that takes their row locks,
/// so a concurrent change waits, then re-reads the committed state; SQLite has one writer at a
/// time anyway. Portable SQL, no advisory lock.
pub async fn change_account(
    db: &Db,
    operator_id: &str,
    change: AccountChange,
    audit: &Audit<'_>,
    now: i64,
) -> Result<OperatorRow> {
    let mut tx = db.write.begin().await?;
    sqlx::query("UPDATE operators SET role = role WHERE role = 'owner' AND deactivated_at IS NULL")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM operators o WHERE o.id = $1"
    )))
    .bind(operator_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| PromoError::NotFound(format!("opérateur inconnu : {operator_id}")))?;
    let before = operator_from_row(&row)?;
    let mut after = before.clone();
    match change {
        AccountChange::Role(role) => after.role = role,
        AccountChange::Active(true) => after.deactivated_at = None,
        AccountChange::Active(false) => {
            after.deactivated_at = Some(before.deactivated_at.unwrap_or(now));
        }
    }
    let was_active_owner = before.role == Role::Owner && before.deactivated_at.is_none();
    let is_active_owner = after.role == Role::Owner && after.deactivated_at.is_none();
    if was_active_owner && !is_active_owner {
        let others: i64 = sqlx::query(
            "SELECT COUNT(*) FROM operators WHERE role = 'owner' AND deactivated_at IS NULL \
             AND id <> $1",
        )
        .bind(operator_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if others == 0 {
            return Err(PromoError::Conflict(
                "c'est le dernier propriétaire actif : nommez d'abord un autre propriétaire".into(),
            ));
        }
    }
    sqlx::query("UPDATE operators SET role = $2, deactivated_at = $3 WHERE id = $1")
        .bind(operator_id)
        .bind(after.role.as_str())
        .bind(after.deactivated_at)
        .execute(&mut *tx)
        .await?;
    if after.deactivated_at.is_some() {
        sqlx::query(
            "UPDATE operator_sessions SET revoked_at = $2 WHERE operator_id = $1 \
             AND revoked_at IS NULL",
        )
        .bind(operator_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        audit,
        &operator_json(&before),
        &operator_json(&after),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
