//! Imported contacts (`contacts`) and the suppression list (`suppressions`). An import is one
//! transaction: every good row of the file is merged, or none is (a database error mid-way
//! leaves the table as it was). A suppression is only ever added, never lifted by a campaign.

use iafactory::db::Db;
use sqlx::{Any, Row, Transaction};

use super::u32_of;
use crate::audit::{self, Audit};
use crate::domain::Email;
use crate::domain::contacts_csv::ContactRow;
use crate::error::Result;

/// What an import changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub created: u32,
    pub merged: u32,
}

/// Merges the rows by canonical address: a new address is created; a known one keeps its
/// name and source unless the row brings non-empty ones, and keeps its first recorded consent
/// (the proof of consent is its earliest date). One transaction with its audit row.
pub async fn import(
    db: &Db,
    rows: &[ContactRow],
    problems: u32,
    audit: &Audit<'_>,
    now: i64,
) -> Result<Imported> {
    let mut tx = db.write.begin().await?;
    let mut done = Imported::default();
    for row in rows {
        let known = sqlx::query("SELECT 1 AS one FROM contacts WHERE email = $1")
            .bind(row.email.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        sqlx::query(
            "INSERT INTO contacts (email, name, source, consent_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email) DO UPDATE SET \
             name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE contacts.name END, \
             source = CASE WHEN excluded.source <> '' THEN excluded.source ELSE contacts.source END, \
             consent_at = COALESCE(contacts.consent_at, excluded.consent_at), \
             updated_at = excluded.updated_at",
        )
        .bind(row.email.as_str())
        .bind(&row.name)
        .bind(&row.source)
        .bind(row.consent_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if known {
            done.merged += 1;
        } else {
            done.created += 1;
        }
    }
    audit::record(
        &mut tx,
        audit,
        &serde_json::Value::Null,
        &serde_json::json!({
            "created": done.created, "merged": done.merged, "refused_rows": problems
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// A contact as listed.
#[derive(Debug, Clone)]
pub struct ContactListRow {
    pub email: String,
    pub name: String,
    pub source: String,
    pub consent_at: Option<i64>,
    pub created_at: i64,
    pub suppressed: bool,
    pub customer: bool,
}

/// Totals of the contact list.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContactTotals {
    pub total: u32,
    pub with_consent: u32,
    pub suppressed: u32,
}

/// Newest first, with the totals.
pub async fn list(db: &Db, limit: u32) -> Result<(Vec<ContactListRow>, ContactTotals)> {
    let rows = sqlx::query(
        "SELECT c.email, c.name, c.source, c.consent_at, c.created_at, \
         (SELECT COUNT(*) FROM suppressions s WHERE s.email = c.email) AS suppressed, \
         (SELECT COUNT(*) FROM customers u WHERE u.email = c.email) AS customer \
         FROM contacts c ORDER BY c.created_at DESC, c.email LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&db.read)
    .await?;
    let list = rows
        .iter()
        .map(|r| {
            Ok(ContactListRow {
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                source: r.try_get("source")?,
                consent_at: r.try_get("consent_at")?,
                created_at: r.try_get("created_at")?,
                suppressed: r.try_get::<i64, _>("suppressed")? > 0,
                customer: r.try_get::<i64, _>("customer")? > 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let t = sqlx::query(
        "SELECT COUNT(*) AS total, \
         COALESCE(SUM(CASE WHEN consent_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS with_consent, \
         (SELECT COUNT(*) FROM contacts c JOIN suppressions s ON s.email = c.email) AS suppressed \
         FROM contacts",
    )
    .fetch_one(&db.read)
    .await?;
    Ok((
        list,
        ContactTotals {
            total: u32_of(t.try_get("total")?),
            with_consent: u32_of(t.try_get("with_consent")?),
            suppressed: u32_of(t.try_get("suppressed")?),
        },
    ))
}

/// Why an address is suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionReason {
    Unsubscribed,
    Bounced,
    Complained,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Unsubscribed => "unsubscribed",
            SuppressionReason::Bounced => "bounced",
            SuppressionReason::Complained => "complained",
        }
    }

    pub fn parse(s: &str) -> Option<SuppressionReason> {
        match s.trim() {
            "unsubscribed" => Some(SuppressionReason::Unsubscribed),
            "bounced" => Some(SuppressionReason::Bounced),
            "complained" => Some(SuppressionReason::Complained),
            _ => None,
        }
    }
}

/// Adds the address (kept as first recorded when already there: the first reason and date
/// stand). True when it was added now.
pub async fn suppress_in_tx(
    tx: &mut Transaction<'static, Any>,
    email: &Email,
    reason: SuppressionReason,
    note: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO suppressions (email, reason, note, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(email.as_str())
    .bind(reason.as_str())
    .bind(note)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The one-click unsubscribe: the address joins the suppression list as `unsubscribed`, with
/// the campaign whose link it used (its metrics count it). An address already on the list keeps
/// its first row. True when it was added.
pub async fn unsubscribe(db: &Db, email: &Email, campaign: Option<&str>, now: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO suppressions (email, reason, note, created_at, campaign_id) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
    )
    .bind(email.as_str())
    .bind(SuppressionReason::Unsubscribed.as_str())
    .bind("lien de désinscription")
    .bind(now)
    .bind(campaign)
    .execute(&db.write)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An operator's suppression, with its audit row.
pub async fn suppress_by_operator(
    db: &Db,
    email: &Email,
    reason: SuppressionReason,
    note: &str,
    audit: &Audit<'_>,
    now: i64,
) -> Result<SuppressionRow> {
    let mut tx = db.write.begin().await?;
    suppress_in_tx(&mut tx, email, reason, note, now).await?;
    let row = find_suppression_in_tx(&mut tx, email).await?;
    audit::record(
        &mut tx,
        audit,
        &serde_json::Value::Null,
        &serde_json::json!({ "reason": row.reason, "note": row.note }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// A suppression as stored.
#[derive(Debug, Clone)]
pub struct SuppressionRow {
    pub email: String,
    pub reason: String,
    pub note: String,
    pub created_at: i64,
}

fn suppression_of(r: &sqlx::any::AnyRow) -> Result<SuppressionRow> {
    Ok(SuppressionRow {
        email: r.try_get("email")?,
        reason: r.try_get("reason")?,
        note: r.try_get("note")?,
        created_at: r.try_get("created_at")?,
    })
}

async fn find_suppression_in_tx(
    tx: &mut Transaction<'static, Any>,
    email: &Email,
) -> Result<SuppressionRow> {
    let r =
        sqlx::query("SELECT email, reason, note, created_at FROM suppressions WHERE email = $1")
            .bind(email.as_str())
            .fetch_one(&mut **tx)
            .await?;
    suppression_of(&r)
}

/// Whether the address is on the suppression list.
pub async fn is_suppressed(db: &Db, email: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM suppressions WHERE email = $1")
            .bind(email)
            .fetch_optional(&db.write)
            .await?
            .is_some(),
    )
}

/// Newest first.
pub async fn list_suppressions(db: &Db, limit: u32) -> Result<Vec<SuppressionRow>> {
    sqlx::query(
        "SELECT email, reason, note, created_at FROM suppressions \
         ORDER BY created_at DESC, email LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&db.read)
    .await?
    .iter()
    .map(suppression_of)
    .collect()
}
