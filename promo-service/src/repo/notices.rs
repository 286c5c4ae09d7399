//! `notices`: e-mails the service writes on its own (discount ending, quota levels), each at most
//! once per customer and occasion. The primary key decides: of two replicas (or two runs) writing
//! the same notice, one insert fails and its transaction, e-mail included, rolls back.

use iafactory::db::{self, Db};
use sqlx::Row;

use super::u64_of;
use crate::error::Result;
use crate::outbox::{self, NewMail};

/// Writes the notice and its e-mail unless this occasion was already noticed. True if written.
pub async fn write_notice(
    db: &Db,
    customer_id: &str,
    kind: &str,
    occasion: &str,
    mail: &NewMail,
    now: i64,
) -> Result<bool> {
    let mut tx = db.write.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO notices (customer_id, kind, occasion, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(customer_id)
    .bind(kind)
    .bind(occasion)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => return Ok(false),
        other => {
            other?;
        }
    }
    outbox::store::insert_in_tx(&mut tx, mail, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// A discount that ends within the notice window and has not been noticed yet.
#[derive(Debug, Clone)]
pub struct EndingDiscount {
    pub customer_id: String,
    pub email: String,
    pub package_name: String,
    pub price_dzd: u64,
    pub base_price_dzd: u64,
    pub discount_percent: u32,
    pub ends_at: i64,
}

/// Discounts ending in `(now, until]` without a `discount_ending` notice for that end date, of
/// subscriptions not cancelled before it.
pub async fn ending_discounts(db: &Db, now: i64, until: i64) -> Result<Vec<EndingDiscount>> {
    let rows = sqlx::query(
        "SELECT c.id, c.email, p.name, s.price_dzd, s.base_price_dzd, s.discount_percent, \
           s.discount_ends_at FROM signups s JOIN customers c ON c.id = s.customer_id \
         JOIN packages p ON p.id = s.package_id \
         WHERE s.discount_ends_at > $1 AND s.discount_ends_at <= $2 AND s.discount_percent > 0 \
           AND (s.cancel_at IS NULL OR s.cancel_at > s.discount_ends_at) \
           AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.customer_id = c.id \
             AND n.kind = 'discount_ending' AND n.occasion = CAST(s.discount_ends_at AS TEXT)) \
         ORDER BY s.discount_ends_at LIMIT 500",
    )
    .bind(now)
    .bind(until)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|r| {
            let percent: i64 = r.try_get("discount_percent")?;
            Ok(EndingDiscount {
                customer_id: r.try_get("id")?,
                email: r.try_get("email")?,
                package_name: r.try_get("name")?,
                price_dzd: u64_of(r.try_get("price_dzd")?),
                base_price_dzd: u64_of(r.try_get("base_price_dzd")?),
                discount_percent: u32::try_from(percent).unwrap_or(0),
                ends_at: r.try_get("discount_ends_at")?,
            })
        })
        .collect()
}

/// The customer's e-mail and package name, for a quota notice. None for an unknown customer.
pub async fn customer_for_notice(db: &Db, customer_id: &str) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT c.email, p.name FROM customers c JOIN signups s ON s.customer_id = c.id \
         JOIN packages p ON p.id = s.package_id WHERE c.id = $1",
    )
    .bind(customer_id)
    .fetch_optional(&db.read)
    .await?;
    row.map(|r| Ok((r.try_get("email")?, r.try_get("name")?)))
        .transpose()
}
