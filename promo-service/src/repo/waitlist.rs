//! The waitlist (`waitlist`): a visitor's request writes (or refreshes) an unconfirmed row and
//! the confirmation e-mail in one transaction; the signed link confirms it. Only confirmed rows
//! are an audience.

use iafactory::db::Db;
use sqlx::Row;

use super::u32_of;
use crate::domain::{Email, Lang};
use crate::error::Result;
use crate::outbox::NewMail;
use crate::outbox::store::insert_in_tx;

/// At most one confirmation e-mail per address in this time (a form posted again does not turn
/// into a stream of e-mails to someone else's mailbox).
pub const RESEND_AFTER_MS: i64 = 3_600_000;

/// Records the request in the visitor's language (a later request in another language changes
/// it: the e-mails follow the page last used); writes the confirmation e-mail (made by `mail`) when the address is
/// neither confirmed, nor suppressed, nor mailed within [`RESEND_AFTER_MS`]. True when an
/// e-mail was written. The caller answers the same either way.
pub async fn join(
    db: &Db,
    email: &Email,
    lang: Lang,
    now: i64,
    mail: impl FnOnce() -> NewMail,
) -> Result<bool> {
    let mut tx = db.write.begin().await?;
    let suppressed = sqlx::query("SELECT 1 AS one FROM suppressions WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
    if suppressed {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "INSERT INTO waitlist (email, consent_at, confirmed_at, last_mailed_at, created_at, lang) \
         VALUES ($1, $2, NULL, $2, $2, $3) ON CONFLICT (email) DO NOTHING",
    )
    .bind(email.as_str())
    .bind(now)
    .bind(lang.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !inserted {
        sqlx::query("UPDATE waitlist SET lang = $2 WHERE email = $1")
            .bind(email.as_str())
            .bind(lang.as_str())
            .execute(&mut *tx)
            .await?;
    }
    let send = inserted
        || sqlx::query(
            "UPDATE waitlist SET last_mailed_at = $2, consent_at = $2 \
             WHERE email = $1 AND confirmed_at IS NULL AND last_mailed_at <= $3",
        )
        .bind(email.as_str())
        .bind(now)
        .bind(now - RESEND_AFTER_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
    if send {
        insert_in_tx(&mut tx, &mail(), now).await?;
    }
    tx.commit().await?;
    Ok(send)
}

/// Confirms the address (the first confirmation date stands; a row missing since the link was
/// sent is written confirmed).
pub async fn confirm(db: &Db, email: &Email, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO waitlist (email, consent_at, confirmed_at, last_mailed_at, created_at) \
         VALUES ($1, $2, $2, $2, $2) ON CONFLICT (email) DO UPDATE SET \
         confirmed_at = COALESCE(waitlist.confirmed_at, excluded.confirmed_at)",
    )
    .bind(email.as_str())
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// A waitlist entry.
#[derive(Debug, Clone)]
pub struct WaitlistRow {
    pub email: String,
    pub confirmed_at: Option<i64>,
    pub created_at: i64,
    pub lang: Lang,
}

/// Confirmed entries, newest first, with the counts of confirmed and unconfirmed.
pub async fn list(db: &Db, limit: u32) -> Result<(Vec<WaitlistRow>, u32, u32)> {
    let rows = sqlx::query(
        "SELECT email, confirmed_at, created_at, lang FROM waitlist WHERE confirmed_at IS NOT NULL \
         ORDER BY confirmed_at DESC, email LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&db.read)
    .await?
    .iter()
    .map(|r| {
        Ok(WaitlistRow {
            email: r.try_get("email")?,
            confirmed_at: r.try_get("confirmed_at")?,
            created_at: r.try_get("created_at")?,
            lang: Lang::from_stored(&r.try_get::<String, _>("lang")?),
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let c = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN confirmed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS confirmed, \
         COALESCE(SUM(CASE WHEN confirmed_at IS NULL THEN 1 ELSE 0 END), 0) AS unconfirmed \
         FROM waitlist",
    )
    .fetch_one(&db.read)
    .await?;
    Ok((
        rows,
        u32_of(c.try_get("confirmed")?),
        u32_of(c.try_get("unconfirmed")?),
    ))
}
