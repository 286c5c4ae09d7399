//! `billing_ledger`: the append-only record of every billing event, written in the same
//! transaction as the event itself (invoice, payment, credit note, state change), and
//! [`reconcile`], the check that it agrees with the tables it summarises. Nothing here updates
//! or deletes a ledger row.

use iafactory::db::Db;
use sqlx::{Any, Row, Transaction};

use crate::error::Result;

/// What a ledger row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// + the invoice's total.
    InvoiceIssued,
    /// − the amount paid.
    PaymentRecorded,
    /// − the amount credited.
    CreditNoteIssued,
    /// 0; `subject` is the new state.
    StateChanged,
}

impl Entry {
    fn as_str(self) -> &'static str {
        match self {
            Entry::InvoiceIssued => "invoice_issued",
            Entry::PaymentRecorded => "payment_recorded",
            Entry::CreditNoteIssued => "credit_note_issued",
            Entry::StateChanged => "state_changed",
        }
    }
}

/// Appends one row inside the event's transaction.
pub async fn append(
    tx: &mut Transaction<'static, Any>,
    customer_id: &str,
    entry: Entry,
    subject: &str,
    amount_dzd: i64,
    detail: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing_ledger (id, customer_id, kind, subject, amount_dzd, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(format!("led_{}", uuid::Uuid::now_v7().simple()))
    .bind(customer_id)
    .bind(entry.as_str())
    .bind(subject)
    .bind(amount_dzd)
    .bind(detail)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Checks the ledger against the billing tables; returns every disagreement found (empty: the
/// books reconcile). Per customer, the ledger's sum equals invoices − credit notes − payments;
/// every invoice, payment and credit note has exactly one ledger row of its kind with its amount.
pub async fn reconcile(db: &Db) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let sums = sqlx::query(
        "SELECT c.id, \
           CAST(COALESCE((SELECT SUM(l.amount_dzd) FROM billing_ledger l WHERE l.customer_id = c.id), 0) AS BIGINT) AS ledger, \
           CAST(COALESCE((SELECT SUM(i.total_dzd) FROM invoices i WHERE i.customer_id = c.id), 0) AS BIGINT) AS invoiced, \
           CAST(COALESCE((SELECT SUM(n.amount_dzd) FROM credit_notes n WHERE n.customer_id = c.id), 0) AS BIGINT) AS credited, \
           CAST(COALESCE((SELECT SUM(p.amount_dzd) FROM payments p WHERE p.customer_id = c.id), 0) AS BIGINT) AS paid \
         FROM customers c",
    )
    .fetch_all(&db.write)
    .await?;
    for r in &sums {
        let id: String = r.try_get("id")?;
        let ledger: i64 = r.try_get("ledger")?;
        let invoiced: i64 = r.try_get("invoiced")?;
        let credited: i64 = r.try_get("credited")?;
        let paid: i64 = r.try_get("paid")?;
        if ledger != invoiced - credited - paid {
            problems.push(format!(
                "{id}: ledger {ledger} != invoices {invoiced} - credit notes {credited} - payments {paid}"
            ));
        }
    }
    for (table, kind, sign) in [
        ("invoices", "invoice_issued", "i.total_dzd"),
        ("payments", "payment_recorded", "-i.amount_dzd"),
        ("credit_notes", "credit_note_issued", "-i.amount_dzd"),
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT i.id, (SELECT COUNT(*) FROM billing_ledger l WHERE l.subject = i.id \
               AND l.kind = '{kind}' AND l.amount_dzd = {sign} AND l.customer_id = i.customer_id) AS n \
             FROM {table} i"
        )))
        .fetch_all(&db.write)
        .await?;
        for r in &rows {
            let n: i64 = r.try_get("n")?;
            if n != 1 {
                let id: String = r.try_get("id")?;
                problems.push(format!(
                    "{table} {id}: {n} matching ledger rows (expected 1)"
                ));
            }
        }
    }
    // A state recorded on the subscription is the last state the ledger recorded (or the
    // initial `active` when the ledger recorded none).
    let states = sqlx::query(
        "SELECT s.customer_id, s.billing_state, (SELECT l.subject FROM billing_ledger l \
           WHERE l.customer_id = s.customer_id AND l.kind = 'state_changed' \
           ORDER BY l.created_at DESC, l.id DESC LIMIT 1) AS last_state FROM signups s",
    )
    .fetch_all(&db.write)
    .await?;
    for r in &states {
        let state: String = r.try_get("billing_state")?;
        let last: Option<String> = r.try_get("last_state")?;
        if state != last.as_deref().unwrap_or("active") {
            let id: String = r.try_get("customer_id")?;
            problems.push(format!(
                "{id}: state {state} but the ledger's last state is {last:?}"
            ));
        }
    }
    Ok(problems)
}
