//! Invoices, credit notes, payments and the subscription's dunning state. Every write is one
//! transaction holding the event, its ledger row (see `ledger`) and, when the state changes, the
//! state's ledger row. Numbers come from `billing_counters`, incremented inside the issuing
//! transaction, so they are consecutive per year across replicas and roll back with a failed
//! issue. Issued rows are never updated.

use iafactory::db::{self, Db};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::ledger::{self, Entry};
use super::u64_of;
use crate::audit::{self, Audit};
use crate::billing_config::{BillingConfig, Seller};
use crate::clock::french_date;
use crate::domain::Percent;
use crate::domain::billing::{
    self as rules, Dunning, InvoiceKind, InvoiceStatus, Line, Owed, PeriodBill, State, Terms,
    Unpaid,
};
use crate::error::{PromoError, Result};
use crate::outbox::{self, AccountMail, MailKind, NewMail};

const MAX_TX_ATTEMPTS: u32 = 8;

/// An invoice as issued, with what settled it.
#[derive(Debug, Clone)]
pub struct InvoiceRow {
    pub id: String,
    pub number: String,
    pub customer_id: String,
    pub email: String,
    /// A monthly period's invoice or an upgrade's prorated difference.
    pub kind: InvoiceKind,
    pub period_index: u32,
    pub period_start: i64,
    pub period_end: i64,
    pub package_id: String,
    pub lines: Vec<Line>,
    pub net_dzd: u64,
    pub tax_dzd: u64,
    pub total_dzd: u64,
    pub tax_rate_bp: u32,
    pub prices_include_tax: bool,
    pub seller: Seller,
    pub issued_at: i64,
    pub due_at: i64,
    /// Credit notes against it.
    pub credited_dzd: u64,
    /// Left to pay after the customer's payments, allocated oldest first.
    pub balance_dzd: u64,
    pub status: InvoiceStatus,
}

const INVOICE_COLUMNS: &str = "i.id, i.number, i.customer_id, i.email, i.kind, i.period_index, \
    i.period_start, i.period_end, i.package_id, i.lines, i.net_dzd, i.tax_dzd, i.total_dzd, \
    i.tax_rate_bp, i.prices_include_tax, i.seller, i.issued_at, i.due_at, \
    CAST(COALESCE((SELECT SUM(n.amount_dzd) FROM credit_notes n WHERE n.invoice_id = i.id), 0) AS BIGINT) AS credited";

fn invoice_from_row(r: &AnyRow) -> Result<InvoiceRow> {
    let lines: String = r.try_get("lines")?;
    let seller: String = r.try_get("seller")?;
    let index: i64 = r.try_get("period_index")?;
    let rate: i64 = r.try_get("tax_rate_bp")?;
    let incl: i64 = r.try_get("prices_include_tax")?;
    let total = u64_of(r.try_get("total_dzd")?);
    let credited = u64_of(r.try_get("credited")?);
    let kind: String = r.try_get("kind")?;
    Ok(InvoiceRow {
        id: r.try_get("id")?,
        number: r.try_get("number")?,
        customer_id: r.try_get("customer_id")?,
        email: r.try_get("email")?,
        kind: InvoiceKind::parse(&kind),
        period_index: u32::try_from(index).unwrap_or(0),
        period_start: r.try_get("period_start")?,
        period_end: r.try_get("period_end")?,
        package_id: r.try_get("package_id")?,
        lines: serde_json::from_str(&lines).map_err(PromoError::internal)?,
        net_dzd: u64_of(r.try_get("net_dzd")?),
        tax_dzd: u64_of(r.try_get("tax_dzd")?),
        total_dzd: total,
        tax_rate_bp: u32::try_from(rate).unwrap_or(0),
        prices_include_tax: incl != 0,
        seller: serde_json::from_str(&seller).map_err(PromoError::internal)?,
        issued_at: r.try_get("issued_at")?,
        due_at: r.try_get("due_at")?,
        credited_dzd: credited,
        // Filled by `settle`.
        balance_dzd: total.saturating_sub(credited),
        status: InvoiceStatus::Unpaid,
    })
}

/// Fills balances and statuses: the customer's payments settle the oldest invoices first.
/// Returns the account balance (positive: owed; negative: credit).
fn settle(invoices: &mut [InvoiceRow], paid: u64) -> i64 {
    let owed: Vec<Owed> = invoices
        .iter()
        .map(|i| Owed {
            total: i.total_dzd,
            credited: i.credited_dzd,
        })
        .collect();
    let (balances, account) = rules::allocate(&owed, paid);
    for (inv, balance) in invoices.iter_mut().zip(balances) {
        inv.balance_dzd = balance;
        inv.status = rules::invoice_status(inv.total_dzd, inv.credited_dzd, balance);
    }
    account
}

async fn paid_total<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
    customer_id: &str,
) -> Result<u64> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount_dzd), 0) AS BIGINT) AS paid FROM payments WHERE customer_id = $1",
    )
    .bind(customer_id)
    .fetch_one(ex)
    .await?;
    Ok(u64_of(r.try_get("paid")?))
}

/// A customer's invoices in period order with balances, and the account balance.
pub async fn customer_invoices(db: &Db, customer_id: &str) -> Result<(Vec<InvoiceRow>, i64)> {
    let mut conn = db.write.acquire().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices i WHERE i.customer_id = $1 ORDER BY i.period_start"
    )))
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut invoices = rows
        .iter()
        .map(invoice_from_row)
        .collect::<Result<Vec<_>>>()?;
    let paid = paid_total(&mut *conn, customer_id).await?;
    let balance = settle(&mut invoices, paid);
    Ok((invoices, balance))
}

/// Invoices newest first, optionally of one customer and one status, at most `limit`.
pub async fn list_invoices(
    db: &Db,
    customer_id: Option<&str>,
    status: Option<InvoiceStatus>,
    limit: usize,
) -> Result<Vec<InvoiceRow>> {
    let customers: Vec<String> = sqlx::query(
        "SELECT DISTINCT customer_id FROM invoices WHERE ($1 = '' OR customer_id = $1)",
    )
    .bind(customer_id.unwrap_or(""))
    .fetch_all(&db.write)
    .await?
    .iter()
    .map(|r| r.try_get("customer_id"))
    .collect::<Result<_, _>>()?;
    let mut all = Vec::new();
    for c in customers {
        let (invoices, _) = customer_invoices(db, &c).await?;
        all.extend(
            invoices
                .into_iter()
                .filter(|i| status.is_none_or(|s| s == i.status)),
        );
    }
    all.sort_by(|a, b| (b.issued_at, &b.number).cmp(&(a.issued_at, &a.number)));
    all.truncate(limit);
    Ok(all)
}

async fn invoice_by<'e, E: sqlx::Executor<'e, Database = Any>>(
    ex: E,
    column: &str,
    value: &str,
) -> Result<Option<InvoiceRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices i WHERE i.{column} = $1"
    )))
    .bind(value)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(invoice_from_row).transpose()
}

/// The invoice with this number, with its balance.
pub async fn find_invoice(db: &Db, number: &str) -> Result<InvoiceRow> {
    let inv = invoice_by(&db.write, "number", number.trim())
        .await?
        .ok_or_else(|| unknown_invoice(number))?;
    let (invoices, _) = customer_invoices(db, &inv.customer_id).await?;
    invoices
        .into_iter()
        .find(|i| i.id == inv.id)
        .ok_or_else(|| unknown_invoice(number))
}

fn unknown_invoice(number: &str) -> PromoError {
    PromoError::NotFound(format!(
        "facture inconnue : {:?}",
        number.chars().take(40).collect::<String>()
    ))
}

/// What billing needs of a subscription.
#[derive(Debug, Clone)]
pub struct BillingSubscription {
    pub customer_id: String,
    pub email: String,
    pub signed_up_at: i64,
    pub cancel_at: Option<i64>,
    pub state: State,
    current: Terms,
    pending: Option<(i64, Terms)>,
}

impl BillingSubscription {
    /// The terms in force at `at` (a pending downgrade from its date on).
    pub fn terms_at(&self, at: i64) -> &Terms {
        match &self.pending {
            Some((from, t)) if *from <= at => t,
            _ => &self.current,
        }
    }

    /// The subscription has ended by `at`.
    pub fn ended_by(&self, at: i64) -> bool {
        self.cancel_at.is_some_and(|c| c <= at)
    }
}

fn discount(percent: i64, ends: Option<i64>) -> Option<(Percent, i64)> {
    let p = Percent::new(u32::try_from(percent).ok()?).ok()?;
    Some((p, ends?))
}

const SUBSCRIPTION_QUERY: &str = "SELECT c.id, c.email, s.created_at, s.cancel_at, s.billing_state, \
       s.package_id, p.name AS p_name, s.base_price_dzd, s.discount_percent, s.discount_ends_at, \
       s.promo_code, s.pending_package_id, s.pending_from, s.pending_discount_percent, \
       s.pending_discount_ends_at, pp.name AS pp_name, pp.monthly_price_dzd AS pp_price \
     FROM customers c JOIN signups s ON s.customer_id = c.id \
     JOIN packages p ON p.id = s.package_id \
     LEFT JOIN packages pp ON pp.id = s.pending_package_id";

fn subscription_from_row(r: &AnyRow) -> Result<BillingSubscription> {
    let promo: Option<String> = r.try_get("promo_code")?;
    let state: String = r.try_get("billing_state")?;
    let current = Terms {
        package_id: r.try_get("package_id")?,
        package_name: r.try_get("p_name")?,
        base_price_dzd: u64_of(r.try_get("base_price_dzd")?),
        discount: discount(
            r.try_get("discount_percent")?,
            r.try_get("discount_ends_at")?,
        ),
        promo_code: promo.clone(),
    };
    let pending_id: Option<String> = r.try_get("pending_package_id")?;
    let pending_from: Option<i64> = r.try_get("pending_from")?;
    let pending = match (pending_id, pending_from) {
        (Some(id), Some(from)) => {
            let percent: Option<i64> = r.try_get("pending_discount_percent")?;
            let price: Option<i64> = r.try_get("pp_price")?;
            let name: Option<String> = r.try_get("pp_name")?;
            Some((
                from,
                Terms {
                    package_name: name.unwrap_or_else(|| id.clone()),
                    package_id: id,
                    base_price_dzd: u64_of(price.unwrap_or(0)),
                    discount: discount(
                        percent.unwrap_or(0),
                        r.try_get("pending_discount_ends_at")?,
                    ),
                    promo_code: promo,
                },
            ))
        }
        _ => None,
    };
    Ok(BillingSubscription {
        customer_id: r.try_get("id")?,
        email: r.try_get("email")?,
        signed_up_at: r.try_get("created_at")?,
        cancel_at: r.try_get("cancel_at")?,
        state: State::parse(&state),
        current,
        pending,
    })
}

pub async fn billing_subscription(db: &Db, customer_id: &str) -> Result<BillingSubscription> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SUBSCRIPTION_QUERY} WHERE c.id = $1"
    )))
    .bind(customer_id)
    .fetch_optional(&db.write)
    .await?
    .ok_or_else(|| PromoError::NotFound(format!("client inconnu : {customer_id}")))?;
    subscription_from_row(&r)
}

pub async fn billing_subscriptions(db: &Db) -> Result<Vec<BillingSubscription>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{SUBSCRIPTION_QUERY} ORDER BY s.created_at"
    )))
    .fetch_all(&db.write)
    .await?
    .iter()
    .map(subscription_from_row)
    .collect()
}

/// What the service passes to writes that may e-mail the customer.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub config: &'a BillingConfig,
    pub public_url: &'a str,
}

/// [`transfer_sentence`] in Arabic, for a customer who signed up in Arabic.
pub fn transfer_sentence_ar(config: &BillingConfig, number: &str) -> String {
    let t = &config.transfer;
    let mut parts = Vec::new();
    if !t.bank_account.is_empty() {
        parts.push(format!("تحويل بنكي (RIB {})", t.bank_account));
    }
    if !t.ccp_account.is_empty() {
        parts.push(format!("CCP {}", t.ccp_account));
    }
    if !t.baridimob_rip.is_empty() {
        parts.push(format!("بريدي موب (RIP {})", t.baridimob_rip));
    }
    let to = if t.beneficiary.is_empty() {
        String::new()
    } else {
        format!(" باسم {}", t.beneficiary)
    };
    if parts.is_empty() {
        format!("اذكر رقم الفاتورة {number} مع دفعتك.")
    } else {
        format!(
            "عبر {}{to}: اذكر رقم الفاتورة {number} كمرجع.",
            parts.join("، ")
        )
    }
}

/// The transfer-details sentence written into billing e-mails.
pub fn transfer_sentence(config: &BillingConfig, number: &str) -> String {
    let t = &config.transfer;
    let mut parts = Vec::new();
    if !t.bank_account.is_empty() {
        parts.push(format!("virement bancaire (RIB {})", t.bank_account));
    }
    if !t.ccp_account.is_empty() {
        parts.push(format!("CCP {}", t.ccp_account));
    }
    if !t.baridimob_rip.is_empty() {
        parts.push(format!("BaridiMob (RIP {})", t.baridimob_rip));
    }
    let to = if t.beneficiary.is_empty() {
        String::new()
    } else {
        format!(" au nom de {}", t.beneficiary)
    };
    if parts.is_empty() {
        format!("Indiquez le numéro de facture {number} avec votre paiement.")
    } else {
        format!(
            "Par {}{to} : indiquez le numéro de facture {number} en référence.",
            parts.join(", ")
        )
    }
}

/// Issues the invoice of the subscription's period containing `now`, unless it exists (the
/// operator's `IssueInvoice`). Ok((invoice, false)) when it existed (another replica or an
/// earlier run issued it). Refused before the billing start (`BILLING_START_DATE`).
pub async fn issue_current_invoice(
    db: &Db,
    customer_id: &str,
    now: i64,
    ctx: Ctx<'_>,
) -> Result<(InvoiceRow, bool)> {
    let sub = billing_subscription(db, customer_id).await?;
    let from = rules::billing_from(sub.signed_up_at, ctx.config.start_date);
    if now < from {
        return Err(PromoError::Conflict(format!(
            "la facturation de ce client commence le {} (BILLING_START_DATE) : aucune facture avant",
            french_date(from)
        )));
    }
    let index = rules::period_index(sub.signed_up_at, now);
    issue_period_invoice(db, &sub, index, now, ctx).await
}

/// Issues every invoice due by `now` that is missing: each period from the one containing the
/// billing start (billed from that start on, prorated) to the one in progress, oldest first —
/// so a period during which no replica ran the job is billed when one runs again, and a
/// customer who signed up before billing existed is billed from `BILLING_START_DATE`, never
/// before. Returns how many it issued.
pub async fn issue_due_invoices(
    db: &Db,
    sub: &BillingSubscription,
    now: i64,
    ctx: Ctx<'_>,
) -> Result<u32> {
    let periods = rules::billable_periods(sub.signed_up_at, ctx.config.start_date, now);
    if periods.is_empty() {
        return Ok(0);
    }
    let (invoices, _) = customer_invoices(db, &sub.customer_id).await?;
    let mut issued = 0;
    for index in periods {
        let start = rules::period_start(sub.signed_up_at, index);
        let done = invoices
            .iter()
            .any(|i| i.kind == InvoiceKind::Period && i.period_index == index);
        if done || sub.ended_by(start) {
            continue;
        }
        if issue_period_invoice(db, sub, index, now, ctx).await?.1 {
            issued += 1;
        }
    }
    Ok(issued)
}

/// Issues the invoice of period `index` unless it exists: the whole period, or, for the period
/// containing the billing start, the part from that start on.
async fn issue_period_invoice(
    db: &Db,
    sub: &BillingSubscription,
    index: u32,
    now: i64,
    ctx: Ctx<'_>,
) -> Result<(InvoiceRow, bool)> {
    let start = rules::period_start(sub.signed_up_at, index);
    let end = rules::period_start(sub.signed_up_at, index + 1);
    if let Some(existing) = existing_invoice(db, &sub.customer_id, index).await? {
        return Ok((existing, false));
    }
    if sub.ended_by(start) {
        return Err(PromoError::Conflict(
            "abonnement résilié : aucune facture pour cette période".into(),
        ));
    }
    let terms = sub.terms_at(start).clone();
    let from = rules::billing_from(sub.signed_up_at, ctx.config.start_date);
    let bill = rules::partial_bill(&terms, start, end, from);
    let new = NewInvoice::new(sub, InvoiceKind::Period, index, &terms, &bill, now, ctx)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = async {
            let mut tx = db.write.begin().await?;
            insert_invoice(&mut tx, &new, ctx).await?;
            tx.commit().await
        }
        .await;
        match outcome {
            Ok(()) => break,
            Err(e) if db::is_unique_violation(&e) => {
                // Issued meanwhile by another replica: its number stands, ours rolled back.
                if let Some(existing) = existing_invoice(db, &sub.customer_id, index).await? {
                    return Ok((existing, false));
                }
                return Err(e.into());
            }
            Err(e) if db::is_retryable(&e) && attempt < MAX_TX_ATTEMPTS => {
                tracing::debug!(attempt, error = %e, "invoice transaction conflict, retrying");
                tokio::time::sleep(std::time::Duration::from_millis(
                    2u64.pow(attempt.min(6)) + u64::from(rand::random::<u8>() % 8),
                ))
                .await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let invoice = existing_invoice(db, &sub.customer_id, index)
        .await?
        .ok_or_else(|| PromoError::internal("issued invoice not found"))?;
    Ok((invoice, true))
}

/// An invoice ready to be written by [`insert_invoice`].
pub struct NewInvoice {
    id: String,
    kind: InvoiceKind,
    customer_id: String,
    email: String,
    index: u32,
    start: i64,
    end: i64,
    package_id: String,
    package_name: String,
    lines: String,
    split: rules::Split,
    seller: String,
    now: i64,
    due_at: i64,
    year: i32,
    /// The package change a proration invoice bills.
    package_change_id: Option<String>,
}

impl NewInvoice {
    /// The invoice of `bill` (the tax rule and the seller's identity applied as configured now),
    /// due `BILLING_DUE_DAYS` after `now`, numbered in `now`'s year.
    pub fn new(
        sub: &BillingSubscription,
        kind: InvoiceKind,
        index: u32,
        terms: &Terms,
        bill: &PeriodBill,
        now: i64,
        ctx: Ctx<'_>,
    ) -> Result<NewInvoice> {
        Ok(NewInvoice {
            id: format!("inv_{}", uuid::Uuid::now_v7().simple()),
            kind,
            customer_id: sub.customer_id.clone(),
            email: sub.email.clone(),
            index,
            start: bill.start,
            end: bill.end,
            package_id: terms.package_id.clone(),
            package_name: terms.package_name.clone(),
            lines: serde_json::to_string(&bill.lines).map_err(PromoError::internal)?,
            split: ctx.config.tax.split(bill.price_dzd),
            seller: serde_json::to_string(&ctx.config.seller).map_err(PromoError::internal)?,
            now,
            due_at: now.saturating_add(ctx.config.dunning.due_ms),
            year: rules::numbering_year(now),
            package_change_id: None,
        })
    }

    /// Names the package change this invoice bills (a proration).
    pub fn for_change(mut self, change_id: &str) -> NewInvoice {
        self.package_change_id = Some(change_id.to_owned());
        self
    }

    /// What the invoice totals, tax included.
    pub fn total_dzd(&self) -> u64 {
        self.split.total
    }
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The next number of a series, inside the caller's transaction: the counter row is created if
/// missing, then incremented with a guarded UPDATE whose row lock (PostgreSQL) or write lock
/// (SQLite) holds until the transaction ends, so no two transactions get the same number and a
/// rollback gives it back.
async fn next_number(
    tx: &mut Transaction<'static, Any>,
    series: &str,
    year: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO billing_counters (series, year, last_number) VALUES ($1, $2, 0) \
         ON CONFLICT (series, year) DO NOTHING",
    )
    .bind(series)
    .bind(i64::from(year))
    .execute(&mut **tx)
    .await?;
    let r = sqlx::query(
        "UPDATE billing_counters SET last_number = last_number + 1 \
         WHERE series = $1 AND year = $2 RETURNING last_number",
    )
    .bind(series)
    .bind(i64::from(year))
    .fetch_one(&mut **tx)
    .await?;
    r.try_get("last_number")
}

/// Writes an invoice inside the caller's transaction: its number (the year's counter), the row,
/// its ledger row, its e-mail, and the subscription's state recomputed. The caller commits; a
/// rollback gives the number back.
pub(crate) async fn insert_invoice(
    tx: &mut Transaction<'static, Any>,
    new: &NewInvoice,
    ctx: Ctx<'_>,
) -> Result<(), sqlx::Error> {
    // The subscription row's lock before the counter's, as every billing write of a customer
    // takes them (a package change holds the row already): on PostgreSQL, an upgrade's invoice
    // and the job's period invoice of one customer then queue instead of deadlocking.
    sqlx::query("UPDATE signups SET billing_state = billing_state WHERE customer_id = $1")
        .bind(&new.customer_id)
        .execute(&mut **tx)
        .await?;
    let seq = next_number(tx, "F", new.year).await?;
    let number = rules::number("", new.year, seq);
    sqlx::query(
        "INSERT INTO invoices (id, number, year, seq, customer_id, email, period_index, \
           period_start, period_end, package_id, lines, net_dzd, tax_dzd, total_dzd, tax_rate_bp, \
           prices_include_tax, seller, issued_at, due_at, kind, package_change_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
           $19, $20, $21)",
    )
    .bind(&new.id)
    .bind(&number)
    .bind(i64::from(new.year))
    .bind(seq)
    .bind(&new.customer_id)
    .bind(&new.email)
    .bind(i64::from(new.index))
    .bind(new.start)
    .bind(new.end)
    .bind(&new.package_id)
    .bind(&new.lines)
    .bind(signed(new.split.net))
    .bind(signed(new.split.tax))
    .bind(signed(new.split.total))
    .bind(i64::from(ctx.config.tax.rate_bp))
    .bind(i64::from(ctx.config.tax.prices_include_tax))
    .bind(&new.seller)
    .bind(new.now)
    .bind(new.due_at)
    .bind(new.kind.as_str())
    .bind(new.package_change_id.as_deref())
    .execute(&mut **tx)
    .await?;
    ledger::append(
        tx,
        &new.customer_id,
        Entry::InvoiceIssued,
        &new.id,
        signed(new.split.total),
        &number,
        new.now,
    )
    .await
    .map_err(into_sqlx)?;
    let mail = NewMail::account(
        MailKind::InvoiceIssued,
        &new.customer_id,
        AccountMail {
            email: new.email.clone(),
            public_url: ctx.public_url.to_owned(),
            package_name: new.package_name.clone(),
            price_dzd: new.split.total,
            date_fr: french_date(new.due_at),
            date_ar: crate::clock::arabic_date(new.due_at),
            message: transfer_sentence(ctx.config, &number),
            message_ar: transfer_sentence_ar(ctx.config, &number),
            invoice_number: number.clone(),
            ..AccountMail::default()
        },
    );
    outbox::store::insert_in_tx(tx, &mail, new.now).await?;
    refresh_state_in_tx(tx, &new.customer_id, new.now, &ctx.config.dunning)
        .await
        .map_err(into_sqlx)?;
    Ok(())
}

/// Carries a repository error through a function that answers `sqlx::Error` (to keep the
/// retry and unique-violation decisions on the database's own error).
fn into_sqlx(e: PromoError) -> sqlx::Error {
    match e {
        PromoError::Unavailable(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// The invoice of period `index` (not an upgrade's), if issued.
async fn existing_invoice(db: &Db, customer_id: &str, index: u32) -> Result<Option<InvoiceRow>> {
    let (invoices, _) = customer_invoices(db, customer_id).await?;
    Ok(invoices
        .into_iter()
        .find(|i| i.kind == InvoiceKind::Period && i.period_index == index))
}

/// The state change made by [`refresh_state_in_tx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub from: State,
    pub to: State,
}

/// Recomputes the customer's dunning state inside the caller's transaction and, when it
/// changed, stores it with a guarded UPDATE (on the state read) and its ledger row. Of two
/// replicas making the same change, the second updates nothing and writes no ledger row.
pub async fn refresh_state_in_tx(
    tx: &mut Transaction<'static, Any>,
    customer_id: &str,
    now: i64,
    dunning: &Dunning,
) -> Result<Option<StateChange>> {
    // Takes the subscription row's lock first (a no-op write): billing writes of one customer
    // (an invoice and a payment committed at the same moment on two replicas) then compute the
    // state one after the other, the second seeing what the first committed, so the last state
    // stored accounts for both.
    sqlx::query("UPDATE signups SET billing_state = billing_state WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut **tx)
        .await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoices i WHERE i.customer_id = $1 ORDER BY i.period_start"
    )))
    .bind(customer_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut invoices = rows
        .iter()
        .map(invoice_from_row)
        .collect::<Result<Vec<_>>>()?;
    let paid = paid_total(&mut **tx, customer_id).await?;
    settle(&mut invoices, paid);
    let sub = sqlx::query("SELECT billing_state, cancel_at FROM signups WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| PromoError::NotFound(format!("client inconnu : {customer_id}")))?;
    let stored: String = sub.try_get("billing_state")?;
    let cancel_at: Option<i64> = sub.try_get("cancel_at")?;
    let oldest = invoices.iter().find(|i| i.balance_dzd > 0).map(|i| Unpaid {
        due_at: i.due_at,
        // The signup's own first invoice (`BILLING_FIRST_INVOICE_PREPAID`), not an upgrade's.
        first: i.period_index == 0 && i.kind == InvoiceKind::Period,
    });
    let from = State::parse(&stored);
    let to = rules::state_at(oldest, cancel_at.is_some_and(|c| c <= now), now, dunning);
    if from == to {
        return Ok(None);
    }
    let done = sqlx::query(
        "UPDATE signups SET billing_state = $3 WHERE customer_id = $1 AND billing_state = $2",
    )
    .bind(customer_id)
    .bind(&stored)
    .bind(to.as_str())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    ledger::append(
        tx,
        customer_id,
        Entry::StateChanged,
        to.as_str(),
        0,
        &format!("{} -> {}", from.as_str(), to.as_str()),
        now,
    )
    .await?;
    Ok(Some(StateChange { from, to }))
}

/// Recomputes one customer's state in its own transaction.
pub async fn refresh_state(
    db: &Db,
    customer_id: &str,
    now: i64,
    dunning: &Dunning,
) -> Result<Option<StateChange>> {
    let mut tx = db.write.begin().await?;
    let change = refresh_state_in_tx(&mut tx, customer_id, now, dunning).await?;
    tx.commit().await?;
    Ok(change)
}

/// A payment to record.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub invoice_number: &'a str,
    pub amount_dzd: i64,
    pub method: &'static str,
    pub reference: String,
    pub external_id: Option<String>,
    pub paid_at: i64,
}

/// Records an immutable payment against an invoice, with its ledger row, and recomputes the
/// subscription's state in the same transaction (paying reactivates at once). Ok(None) when a
/// payment with the same `external_id` exists (a provider's event delivered twice). A payment an
/// operator records (`audit`) writes its audit row in the same transaction; a card payment
/// confirmed by the provider's webhook has none (no one made it: the ledger holds it).
pub async fn record_payment(
    db: &Db,
    payment: &NewPayment<'_>,
    now: i64,
    dunning: &Dunning,
    audit: Option<&Audit<'_>>,
) -> Result<Option<(String, Option<StateChange>)>> {
    let invoice = invoice_by(&db.write, "number", payment.invoice_number.trim())
        .await?
        .ok_or_else(|| unknown_invoice(payment.invoice_number))?;
    let id = format!("pay_{}", uuid::Uuid::now_v7().simple());
    let mut tx = db.write.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO payments (id, invoice_id, customer_id, amount_dzd, method, reference, \
           external_id, paid_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&invoice.id)
    .bind(&invoice.customer_id)
    .bind(payment.amount_dzd)
    .bind(payment.method)
    .bind(&payment.reference)
    .bind(payment.external_id.as_deref())
    .bind(payment.paid_at)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) && payment.external_id.is_some() => return Ok(None),
        other => {
            other?;
        }
    }
    ledger::append(
        &mut tx,
        &invoice.customer_id,
        Entry::PaymentRecorded,
        &id,
        -payment.amount_dzd,
        &format!(
            "{} {} {}",
            invoice.number, payment.method, payment.reference
        ),
        now,
    )
    .await?;
    let change = refresh_state_in_tx(&mut tx, &invoice.customer_id, now, dunning).await?;
    if let Some(audit) = audit {
        audit::record(
            &mut tx,
            audit,
            &Value::Null,
            &json!({
                "payment": id, "invoice": invoice.number, "customer": invoice.customer_id,
                "amount_dzd": payment.amount_dzd, "method": payment.method,
                "reference": payment.reference, "paid_at": payment.paid_at,
            }),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Some((id, change)))
}

/// A credit note as issued.
#[derive(Debug, Clone)]
pub struct CreditNoteRow {
    pub id: String,
    pub number: String,
    pub invoice_number: String,
    pub amount_dzd: u64,
    pub reason: String,
    pub issued_at: i64,
}

/// Issues a credit note against an invoice: at most what the invoice carries after earlier
/// credit notes. The series counter is taken first, so concurrent credit notes on one database
/// run one after the other and the check sees the earlier ones.
pub async fn issue_credit_note(
    db: &Db,
    invoice_number: &str,
    amount_dzd: i64,
    reason: &str,
    now: i64,
    dunning: &Dunning,
    audit: &Audit<'_>,
) -> Result<CreditNoteRow> {
    let year = rules::numbering_year(now);
    let mut tx = db.write.begin().await?;
    let seq = next_number(&mut tx, "A", year).await?;
    let invoice = invoice_by(&mut *tx, "number", invoice_number.trim())
        .await?
        .ok_or_else(|| unknown_invoice(invoice_number))?;
    let left = invoice.total_dzd.saturating_sub(invoice.credited_dzd);
    if u64::try_from(amount_dzd).unwrap_or(u64::MAX) > left {
        return Err(PromoError::Conflict(format!(
            "un avoir sur la facture {} ne peut dépasser {left} DZD (total moins les avoirs déjà émis)",
            invoice.number
        )));
    }
    let id = format!("crn_{}", uuid::Uuid::now_v7().simple());
    let number = rules::number("A", year, seq);
    sqlx::query(
        "INSERT INTO credit_notes (id, number, invoice_id, customer_id, amount_dzd, reason, issued_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&number)
    .bind(&invoice.id)
    .bind(&invoice.customer_id)
    .bind(amount_dzd)
    .bind(reason)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    ledger::append(
        &mut tx,
        &invoice.customer_id,
        Entry::CreditNoteIssued,
        &id,
        -amount_dzd,
        &format!("{number} sur {}", invoice.number),
        now,
    )
    .await?;
    refresh_state_in_tx(&mut tx, &invoice.customer_id, now, dunning).await?;
    audit::record(
        &mut tx,
        audit,
        &json!({"invoice": invoice.number, "total_dzd": invoice.total_dzd, "credited_dzd": invoice.credited_dzd}),
        &json!({"credit_note": number, "invoice": invoice.number, "amount_dzd": amount_dzd, "reason": reason}),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(CreditNoteRow {
        id,
        number,
        invoice_number: invoice.number,
        amount_dzd: u64_of(amount_dzd),
        reason: reason.to_owned(),
        issued_at: now,
    })
}

/// The customer's billing state as stored.
pub async fn billing_state(db: &Db, customer_id: &str) -> Result<State> {
    let r = sqlx::query("SELECT billing_state FROM signups WHERE customer_id = $1")
        .bind(customer_id)
        .fetch_optional(&db.write)
        .await?
        .ok_or_else(|| PromoError::NotFound(format!("client inconnu : {customer_id}")))?;
    let s: String = r.try_get("billing_state")?;
    Ok(State::parse(&s))
}

/// What the subscription bills for the period after the one containing `now` (0 once it ends).
/// MRR, the launch's revenue KPI (one rule for the billing job's report, the console's figure and
/// its daily snapshots): what the subscriptions in force — active or past due; suspended ones
/// bring nothing until they pay, cancelled ones nothing at all — will bill for their next
/// period (the discounted price while the discount still covers it, the base price after, so the
/// step when discounts end shows a period ahead), and how many subscriptions that is.
pub async fn mrr(db: &Db, now: i64, config: &BillingConfig) -> Result<(u64, u64)> {
    let mut total = 0u64;
    let mut subscriptions = 0u64;
    for sub in billing_subscriptions(db).await? {
        if !matches!(sub.state, State::Active | State::PastDue) {
            continue;
        }
        let amount = next_amount(&sub, now, config);
        if amount > 0 {
            total = total.saturating_add(amount);
            subscriptions += 1;
        }
    }
    Ok((total, subscriptions))
}

pub fn next_amount(sub: &BillingSubscription, now: i64, config: &BillingConfig) -> u64 {
    let n = rules::period_index(sub.signed_up_at, now) + 1;
    let start = rules::period_start(sub.signed_up_at, n);
    if sub.ended_by(start) {
        return 0;
    }
    let end = rules::period_start(sub.signed_up_at, n + 1);
    let bill = rules::period_bill(sub.terms_at(start), start, end);
    config.tax.split(bill.price_dzd).total
}

/// Remembers a Chargily checkout created for an invoice.
pub async fn insert_checkout(
    db: &Db,
    checkout_id: &str,
    invoice: &InvoiceRow,
    amount_dzd: u64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO chargily_checkouts (id, invoice_id, customer_id, amount_dzd, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(checkout_id)
    .bind(&invoice.id)
    .bind(&invoice.customer_id)
    .bind(signed(amount_dzd))
    .bind(now)
    .execute(&db.write)
    .await?;
    Ok(())
}

/// A checkout this service created: the invoice number and the amount it must be paid for.
pub async fn find_checkout(db: &Db, checkout_id: &str) -> Result<Option<(String, u64)>> {
    let row = sqlx::query(
        "SELECT i.number, c.amount_dzd FROM chargily_checkouts c \
         JOIN invoices i ON i.id = c.invoice_id WHERE c.id = $1",
    )
    .bind(checkout_id)
    .fetch_optional(&db.write)
    .await?;
    row.map(|r| Ok((r.try_get("number")?, u64_of(r.try_get("amount_dzd")?))))
        .transpose()
}
