//! The `audit_log` table: one row per admin change, inserted in the transaction of the change
//! itself (so a change without its row, or a row without its change, cannot exist), and listed
//! newest first for the console. The service never updates or deletes a row.

use iafactory::db::Db;
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use crate::domain::operator::Actor;
use crate::error::Result;

/// What an admin change is, and who made it; the repository adds the before and after states.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub actor: &'a Actor,
    /// `code.create`, `code.update`, `package.update`, `customer.suspend`, `key.revoke`, …
    pub action: &'static str,
    pub target: String,
}

impl<'a> Audit<'a> {
    pub fn new(actor: &'a Actor, action: &'static str, target: impl Into<String>) -> Audit<'a> {
        Audit {
            actor,
            action,
            target: target.into(),
        }
    }
}

/// Writes the row in `tx` (committed, or rolled back, with the change).
pub async fn record(
    tx: &mut Transaction<'static, Any>,
    audit: &Audit<'_>,
    before: &Value,
    after: &Value,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, operator_id, actor, action, target, before_json, after_json) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(format!("aud_{}", uuid::Uuid::now_v7().simple()))
    .bind(now)
    .bind(audit.actor.operator_id())
    .bind(audit.actor.label())
    .bind(audit.action)
    .bind(&audit.target)
    .bind(before.to_string())
    .bind(after.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A row as stored.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub operator_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before_json: String,
    pub after_json: String,
}

/// Newest first, `limit` rows after the `(at, id)` cursor.
pub async fn list_audit(
    db: &Db,
    before: Option<(i64, String)>,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let (at, id) = before.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(
        "SELECT id, at, operator_id, actor, action, target, before_json, after_json FROM audit_log \
         WHERE ($1 = 0 OR at < $2 OR (at = $2 AND id < $3)) ORDER BY at DESC, id DESC LIMIT $4",
    )
    .bind(i64::from(at != i64::MAX))
    .bind(at)
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                operator_id: r.try_get("operator_id")?,
                actor: r.try_get("actor")?,
                action: r.try_get("action")?,
                target: r.try_get("target")?,
                before_json: r.try_get("before_json")?,
                after_json: r.try_get("after_json")?,
            })
        })
        .collect()
}
