//! The `outbox` table: the signup transaction inserts, workers claim with a guarded single-row
//! `UPDATE` (one winner per row, on SQLite and PostgreSQL alike), then mark sent or failed; the
//! operator lists and re-queues.

use iafactory::db::{self, Db};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use super::{MailStatus, NewMail};
use crate::audit::Audit;
use crate::error::{PromoError, Result};

/// Writes one e-mail in the caller's (signup) transaction: it exists if and only if that commits.
pub async fn insert_in_tx(
    tx: &mut sqlx::Transaction<'static, Any>,
    mail: &NewMail,
    now: i64,
) -> Result<(), sqlx::Error> {
    insert_due_in_tx(tx, mail, now, now).await
}

/// As [`insert_in_tx`], not to be sent before `due_at` (a campaign message's pacing slot).
pub async fn insert_due_in_tx(
    tx: &mut sqlx::Transaction<'static, Any>,
    mail: &NewMail,
    now: i64,
    due_at: i64,
) -> Result<(), sqlx::Error> {
    let payload =
        serde_json::to_string(&mail.payload).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO outbox (id, kind, recipient, customer_id, payload, status, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7)",
    )
    .bind(&mail.id)
    .bind(mail.kind.as_str())
    .bind(&mail.recipient)
    .bind((!mail.customer_id.is_empty()).then_some(mail.customer_id.as_str()))
    .bind(payload)
    .bind(due_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The language `customer_id` signed up in (`signups.lang`); French for a customer without a
/// signup row.
pub async fn customer_lang(db: &Db, customer_id: &str) -> Result<crate::domain::Lang> {
    let lang: Option<String> = sqlx::query("SELECT lang FROM signups WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(&db.read)
        .await?
        .map(|r| r.try_get("lang"))
        .transpose()?;
    Ok(lang.map_or_else(Default::default, |l| crate::domain::Lang::from_stored(&l)))
}

/// A row as stored.
#[derive(Debug, Clone)]
pub struct MailRow {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    /// Empty for a campaign or waitlist e-mail.
    pub customer_id: String,
    pub payload: String,
    pub status: MailStatus,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub last_error: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

macro_rules! mail_columns {
    () => {
        "id, kind, recipient, customer_id, payload, status, attempts, next_attempt_at, last_error, \
         created_at, sent_at"
    };
}

fn mail_from_row(r: &AnyRow) -> Result<MailRow> {
    let status: String = r.try_get("status")?;
    let attempts: i64 = r.try_get("attempts")?;
    Ok(MailRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        customer_id: r
            .try_get::<Option<String>, _>("customer_id")?
            .unwrap_or_default(),
        payload: r.try_get("payload")?,
        status: MailStatus::parse(&status),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// Claims up to `limit` due rows for `worker` until `lease_until`. A row is claimed by whoever's
/// guarded update changes it; concurrent workers skip rows they lose.
pub async fn claim_due(
    db: &Db,
    worker: &str,
    now: i64,
    lease_until: i64,
    limit: u32,
) -> Result<Vec<MailRow>> {
    let candidates = sqlx::query(
        "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY next_attempt_at, id LIMIT $2",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&db.read)
    .await?;
    let mut claimed = Vec::new();
    for c in candidates {
        let id: String = c.try_get("id")?;
        let won = sqlx::query(
            "UPDATE outbox SET claimed_by = $2, claimed_until = $3, attempts = attempts + 1 \
             WHERE id = $1 AND status = 'pending' AND next_attempt_at <= $4 \
             AND (claimed_until IS NULL OR claimed_until < $4)",
        )
        .bind(&id)
        .bind(worker)
        .bind(lease_until)
        .bind(now)
        .execute(&db.write)
        .await?;
        if won.rows_affected() == 1 {
            let row = sqlx::query(concat!(
                "SELECT ",
                mail_columns!(),
                " FROM outbox WHERE id = $1"
            ))
            .bind(&id)
            .fetch_one(&db.read)
            .await?;
            claimed.push(mail_from_row(&row)?);
        }
    }
    Ok(claimed)
}

/// Marks a claimed row sent. Only its current claimant can.
pub async fn mark_sent(db: &Db, id: &str, worker: &str, now: i64) -> Result<()> {
    sqlx::query(
        // A sign-in link is a credential: once delivered, the row keeps no copy of it.
        "UPDATE outbox SET status = 'sent', sent_at = $3, claimed_until = NULL, last_error = '', \
         payload = CASE WHEN kind = 'sign_in_link' THEN '{}' ELSE payload END \
         WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(worker)
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Ends a claimed campaign row without sending it (the address was suppressed, or signed up
/// before a reminder), in the caller's transaction: `dead`, with the reason as its last error.
pub async fn skip_in_tx(
    tx: &mut sqlx::Transaction<'static, Any>,
    id: &str,
    worker: &str,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'dead', claimed_until = NULL, last_error = $3 \
         WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(worker)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt: back to pending at `retry_at`, or dead when `retry_at` is None.
pub async fn mark_failed(
    db: &Db,
    id: &str,
    worker: &str,
    error: &str,
    retry_at: Option<i64>,
) -> Result<()> {
    let error: String = error.chars().take(500).collect();
    sqlx::query(
        "UPDATE outbox SET status = $3, next_attempt_at = $4, claimed_until = NULL, last_error = $5 \
         WHERE id = $1 AND claimed_by = $2 AND status = 'pending'",
    )
    .bind(id)
    .bind(worker)
    .bind(if retry_at.is_some() { "pending" } else { "dead" })
    .bind(retry_at.unwrap_or_else(db::now_millis))
    .bind(error)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// Newest first, optionally one status only.
pub async fn list(db: &Db, status: Option<MailStatus>, limit: u32) -> Result<Vec<MailRow>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        mail_columns!(),
        " FROM outbox WHERE ($1 = '' OR status = $1) ORDER BY created_at DESC, id DESC LIMIT $2"
    ))
    .bind(status.map_or("", MailStatus::as_str))
    .bind(i64::from(limit))
    .fetch_all(&db.read)
    .await?;
    rows.iter().map(mail_from_row).collect()
}

/// Re-queues a dead or pending row now, with a fresh attempt budget, and writes the audit row
/// in the same transaction.
pub async fn retry(db: &Db, id: &str, audit: &Audit<'_>) -> Result<MailRow> {
    let now = db::now_millis();
    let mut tx = db.write.begin().await?;
    let done = sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $2, \
         claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status <> 'sent'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        mail_columns!(),
        " FROM outbox WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| PromoError::NotFound(format!("e-mail inconnu : {id}")))?;
    let row = mail_from_row(&row)?;
    if done.rows_affected() == 0 {
        return Err(PromoError::Conflict("cet e-mail a déjà été envoyé".into()));
    }
    crate::audit::record(
        &mut tx,
        audit,
        &serde_json::json!({ "kind": row.kind }),
        &serde_json::json!({ "kind": row.kind, "status": "pending" }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}
