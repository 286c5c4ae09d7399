//! The delivery worker's last check of a campaign message, right before sending: the address
//! may have been suppressed, or (for a reminder) signed up, since the campaign was queued. Here
//! rather than in `repo` because the worker calls it (the outbox room owns the SQL it runs).

use iafactory::db::Db;
use sqlx::Row;

use super::MailRow;
use super::store::skip_in_tx;
use crate::error::Result;

/// Right before a campaign message is sent: if its address is now suppressed, or the campaign
/// goes to prospects and the address has an account, the row ends unsent (`dead`, reason
/// recorded) and its recipient counts as suppressed. True when it was ended so.
pub async fn skip_if_ineligible(
    db: &Db,
    row: &MailRow,
    worker: &str,
    campaign_id: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM suppressions WHERE email = $1) AS suppressed, \
         (SELECT COUNT(*) FROM customers WHERE email = $1) AS customer, \
         (SELECT audience FROM campaigns WHERE id = $2) AS audience",
    )
    .bind(&row.recipient)
    .bind(campaign_id)
    .fetch_one(&db.write)
    .await?;
    let suppressed = r.try_get::<i64, _>("suppressed")? > 0;
    let signed_up = r.try_get::<i64, _>("customer")? > 0
        && r.try_get::<Option<String>, _>("audience")?.as_deref() == Some("prospects");
    if !suppressed && !signed_up {
        return Ok(false);
    }
    let reason = if suppressed {
        "not sent: address on the suppression list"
    } else {
        "not sent: signed up before the reminder"
    };
    let mut tx = db.write.begin().await?;
    if skip_in_tx(&mut tx, &row.id, worker, reason).await? {
        sqlx::query(
            "UPDATE campaign_recipients SET status = 'suppressed' \
             WHERE campaign_id = $1 AND email = $2",
        )
        .bind(campaign_id)
        .bind(&row.recipient)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}
