//! Stored e-mails brought to today's canonical form at start-up (`customers` and `redemptions`).

use iafactory::db::{self, Db};
use sqlx::Row;

use crate::domain::Email;
use crate::error::Result;

/// What [`recanonicalise_emails`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EmailRewrite {
    /// Rows brought to the canonical form.
    pub rewritten: u64,
    /// Rows left as they were: their canonical form belongs to another account already (two
    /// accounts the old rule let in for one mailbox), or the address is now refused (a mixed-script
    /// look-alike). Both keep working; the operator decides (their ids are logged).
    pub left: u64,
}

/// Brings e-mails stored under the old rule (trim + lower-case) to today's canonical form
/// ([`Email::parse`]), so uniqueness keeps holding between old rows and new signups.
///
/// An address in plain ASCII without an `xn--` label is canonical under both rules, so only the
/// other rows are read (`length` counts characters, `octet_length` bytes, on SQLite and
/// PostgreSQL alike). Idempotent and safe with several replicas starting at once: each row is
/// rewritten only if it still holds the value read, in one transaction with its redemptions.
pub async fn recanonicalise_emails(db: &Db) -> Result<EmailRewrite> {
    let rows = sqlx::query(
        "SELECT id, email FROM customers \
         WHERE length(email) <> octet_length(email) OR email LIKE '%xn--%'",
    )
    .fetch_all(&db.read)
    .await?;
    let mut outcome = EmailRewrite::default();
    for row in rows {
        let id: String = row.try_get("id")?;
        let old: String = row.try_get("email")?;
        let new = match Email::parse(&old) {
            Ok(e) if e.as_str() == old => continue,
            Ok(e) => e,
            Err(e) => {
                // Logged by id: the address itself is customer data.
                tracing::warn!(customer_id = %id, reason = %e.code().as_str(),
                    "stored e-mail is refused by the current rule; left as is");
                outcome.left += 1;
                continue;
            }
        };
        let mut tx = db.write.begin().await?;
        let updated = sqlx::query("UPDATE customers SET email = $1 WHERE id = $2 AND email = $3")
            .bind(new.as_str())
            .bind(&id)
            .bind(&old)
            .execute(&mut *tx)
            .await;
        match updated {
            Ok(r) if r.rows_affected() == 0 => continue, // another replica did it
            Ok(_) => {}
            Err(e) if db::is_unique_violation(&e) => {
                tracing::warn!(customer_id = %id,
                    "two accounts share one mailbox under the current e-mail rule; this one is left as is");
                outcome.left += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let redemptions =
            sqlx::query("UPDATE redemptions SET email = $1 WHERE customer_id = $2 AND email = $3")
                .bind(new.as_str())
                .bind(&id)
                .bind(&old)
                .execute(&mut *tx)
                .await;
        match redemptions {
            Ok(_) => {}
            Err(e) if db::is_unique_violation(&e) => {
                tracing::warn!(customer_id = %id,
                    "a redemption of this mailbox exists under another account; this one is left as is");
                outcome.left += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        outcome.rewritten += 1;
    }
    Ok(outcome)
}
