//! Billing rules, without I/O: monthly periods and how they print, what a period costs, what an
//! upgrade's prorated invoice and the first period after `BILLING_START_DATE` cost (one rounding
//! rule, [`prorata`]), tax, how payments settle invoices, and the subscription's dunning state. Invariants: every amount is an integer number
//! of dinars; an invoice's `net + tax = total` exactly; payments are allocated to the oldest
//! invoices first, so an over-payment is the customer's credit and settles the next invoice as
//! soon as it is issued (nothing issued is ever rewritten for it).

use chrono::Datelike;

use super::code::{Percent, discount_end};
use crate::clock::{french_date, to_datetime};
use crate::error::{PromoError, Result};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Start of the `n`-th monthly period (0 = the signup instant): the signup plus `n` calendar
/// months, clamped to a shorter month's last day exactly like the discount's end (one rule:
/// [`discount_end`]), so a 6-month discount ends at the start of period 6 (the 7th).
pub fn period_start(signup_ms: i64, n: u32) -> i64 {
    discount_end(to_datetime(signup_ms), n).timestamp_millis()
}

/// Index of the period containing `now` (0 before the signup).
pub fn period_index(signup_ms: i64, now_ms: i64) -> u32 {
    let signup = to_datetime(signup_ms);
    let now = to_datetime(now_ms);
    let diff = (now.year() - signup.year()) * 12 + now.month() as i32 - signup.month() as i32;
    // The month count is the index or one too many (day of month not reached yet).
    let mut n = u32::try_from(diff.max(0)).unwrap_or(0);
    while n > 0 && period_start(signup_ms, n) > now_ms {
        n -= 1;
    }
    while period_start(signup_ms, n + 1) <= now_ms {
        n += 1;
    }
    n
}

/// The terms a period is billed on: the package in force at the period's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub package_id: String,
    pub package_name: String,
    pub base_price_dzd: u64,
    /// The code's discount and when it ends; None without a discount.
    pub discount: Option<(Percent, i64)>,
    pub promo_code: Option<String>,
}

/// One line of an invoice; a discount is a negative line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Line {
    pub label: String,
    pub amount_dzd: i64,
}

/// The tax settings: a rate in basis points (1900 = 19 %) and whether list prices include it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaxRule {
    pub rate_bp: u32,
    pub prices_include_tax: bool,
}

/// An amount split into net (hors taxes), tax and total (TTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    pub net: u64,
    pub tax: u64,
    pub total: u64,
}

impl TaxRule {
    /// Splits a price. Rounding rule (one per invoice, on its total, half up to the dinar):
    /// prices including tax keep the total the customer was quoted and derive
    /// `net = round(total × 10000 / (10000 + rate))`, `tax = total − net`; prices excluding tax
    /// keep the net and add `tax = round(net × rate / 10000)`. Either way `net + tax = total`.
    pub fn split(self, price: u64) -> Split {
        let rate = u128::from(self.rate_bp);
        let p = u128::from(price);
        let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        if self.prices_include_tax {
            let den = 10_000 + rate;
            // round half up of p·10000/den: floor((2·p·10000 + den) / (2·den)).
            let net = clamp((2 * p * 10_000 + den) / (2 * den));
            Split {
                net,
                tax: price - net.min(price),
                total: price,
            }
        } else {
            let tax = clamp((p * rate + 5_000) / 10_000);
            Split {
                net: price,
                tax,
                total: price.saturating_add(tax),
            }
        }
    }
}

/// What one period costs and its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodBill {
    pub start: i64,
    pub end: i64,
    /// Price before tax rules (the customer's quoted monthly price).
    pub price_dzd: u64,
    pub lines: Vec<Line>,
}

/// How a period prints: "du 31 janvier 2026 au 27 février 2026". Periods are stored half-open,
/// `[start, end)`, and the next one starts at `end`; the invoice prints the last day the period
/// covers, the day before `end`'s day (UTC dates, like every date the service prints), so two
/// consecutive invoices never show the same day twice.
pub fn period_text(start: i64, end: i64) -> String {
    format!(
        "du {} au {}",
        french_date(start),
        french_date(last_day(end))
    )
}

/// [`period_text`] in Arabic ("من 6 جوان 2026 إلى 5 جويلية 2026").
pub fn period_text_ar(start: i64, end: i64) -> String {
    format!(
        "من {} إلى {}",
        crate::clock::arabic_date(start),
        crate::clock::arabic_date(last_day(end))
    )
}

/// The last day a half-open interval ending at `end` covers: an instant on the day before
/// `end`'s (UTC) day. One rule for the PDF, the lines and the portal.
pub fn last_day(end: i64) -> i64 {
    end.saturating_sub(DAY_MS)
}

/// The last day as the portal's JSON carries it: `2026-02-27`.
pub fn last_day_iso(end: i64) -> String {
    to_datetime(last_day(end)).format("%Y-%m-%d").to_string()
}

/// Days of `[from, end)` counted for proration: whole days, the day in progress counting in
/// full (the customer has the new package for that day). Calendar-month periods hold a whole
/// number of days (both bounds fall at the signup's time of day, UTC has no DST).
pub fn days(from: i64, end: i64) -> u64 {
    let ms = u64::try_from(end.saturating_sub(from)).unwrap_or(0);
    let day = DAY_MS.unsigned_abs();
    ms.div_ceil(day)
}

/// THE rounding rule of every prorated amount: `amount × days_left / days_in_period`, rounded
/// half up to the dinar (integer arithmetic, no float). Used for the first invoice after
/// `BILLING_START_DATE` and for upgrades; each amount is rounded once, and the last line of a
/// prorated invoice takes what its other lines leave, so the lines always add up to the total.
pub fn prorata(amount: u64, days_left: u64, days_in: u64) -> u64 {
    if days_in == 0 {
        return 0;
    }
    let n = u128::from(amount) * u128::from(days_left.min(days_in));
    let d = u128::from(days_in);
    u64::try_from((2 * n + d) / (2 * d)).unwrap_or(u64::MAX)
}

/// The bill of the period `[start, end)`: the package's base price, less the discount while it
/// runs at the period's start (a discount ending mid-period does not cover that period's end —
/// periods are billed in advance at their start, as the signup quoted), rounded half up to the
/// dinar exactly like the signup's quoted price.
pub fn period_bill(terms: &Terms, start: i64, end: i64) -> PeriodBill {
    partial_bill(terms, start, end, start)
}

/// The price of the period `[start, end)` under `terms` (base price less a discount running at
/// the period's start), before tax rules.
pub fn period_price(terms: &Terms, start: i64) -> u64 {
    match terms.discount {
        Some((percent, ends)) if start < ends => percent.apply(terms.base_price_dzd),
        _ => terms.base_price_dzd,
    }
}

/// The bill of the part `[from, end)` of the period `[start, end)`: the whole period when
/// `from <= start`; otherwise the period's price [`prorata`] for the days left (the first
/// invoice when `BILLING_START_DATE` falls inside a period).
pub fn partial_bill(terms: &Terms, start: i64, end: i64, from: i64) -> PeriodBill {
    let from = from.max(start);
    let (left, total_days) = (days(from, end), days(start, end));
    let whole = from == start;
    let price = period_price(terms, start);
    let scale = |v: u64| {
        if whole {
            v
        } else {
            prorata(v, left, total_days)
        }
    };
    let share = if whole {
        String::new()
    } else {
        format!(" ({left} jours sur {total_days})")
    };
    let base = scale(terms.base_price_dzd);
    let mut lines = vec![Line {
        label: format!(
            "Forfait {} — période {}{share}",
            terms.package_name,
            period_text(from, end)
        ),
        amount_dzd: signed(base),
    }];
    let charged = scale(price);
    if let Some(line) = discount_line(terms, start, base, charged, &share) {
        lines.push(line);
    }
    PeriodBill {
        start: from,
        end,
        price_dzd: charged,
        lines,
    }
}

/// The discount's line when it runs at `start`: what the discounted amount leaves of the base.
fn discount_line(terms: &Terms, start: i64, base: u64, charged: u64, share: &str) -> Option<Line> {
    let (percent, ends) = terms.discount?;
    if start >= ends {
        return None;
    }
    let code = terms.promo_code.as_deref().unwrap_or("promotion");
    Some(Line {
        label: format!(
            "Remise {code} −{} % (jusqu'au {}){share}",
            percent.get(),
            french_date(ends)
        ),
        amount_dzd: signed(charged) - signed(base),
    })
}

/// The invoice of an upgrade at `at` inside the period `[start, end)` (Stripe's model: the
/// upgrade takes effect at once and the difference is invoiced now, for the days left):
/// `prorata(new period price − old period price, days left, days in the period)`, each period
/// price being what a regular invoice of this period charges under those terms (the launch
/// code's discount included the same way). Lines: the new package for the days left, its
/// discount, and the old package's share of those days already invoiced (the line that takes
/// what the others leave). None when the difference is not positive: a change never refunds
/// nor credits (a downgrade waits for the next period).
pub fn proration_bill(
    old: &Terms,
    new: &Terms,
    start: i64,
    end: i64,
    at: i64,
) -> Option<PeriodBill> {
    let at = at.max(start);
    let (old_price, new_price) = (period_price(old, start), period_price(new, start));
    let (left, total_days) = (days(at, end), days(start, end));
    let total = prorata(new_price.checked_sub(old_price)?, left, total_days);
    if total == 0 {
        return None;
    }
    let share = format!(" ({left} jours sur {total_days})");
    let base = prorata(new.base_price_dzd, left, total_days);
    let mut lines = vec![Line {
        label: format!(
            "Passage au forfait {} — {}{share}",
            new.package_name,
            period_text(at, end)
        ),
        amount_dzd: signed(base),
    }];
    if let Some(line) = discount_line(
        new,
        start,
        base,
        prorata(new_price, left, total_days),
        &share,
    ) {
        lines.push(line);
    }
    let so_far: i64 = lines.iter().map(|l| l.amount_dzd).sum();
    lines.push(Line {
        label: format!(
            "Forfait {} déjà facturé pour ces jours{share}",
            old.package_name
        ),
        amount_dzd: signed(total) - so_far,
    });
    Some(PeriodBill {
        start: at,
        end,
        price_dzd: total,
        lines,
    })
}

/// Where billing starts for a subscription: its signup, or the configured `BILLING_START_DATE`
/// when later. Nothing before it is ever billed; the period containing it is billed from it on
/// (prorated, [`partial_bill`]); every period after it is billed in full.
pub fn billing_from(signup_ms: i64, start_date: Option<i64>) -> i64 {
    start_date.map_or(signup_ms, |s| s.max(signup_ms))
}

/// The indexes of the periods that must be invoiced by `now`: from the one containing the
/// billing start to the one containing `now` (empty before the billing start).
pub fn billable_periods(signup_ms: i64, start_date: Option<i64>, now: i64) -> std::ops::Range<u32> {
    let from = billing_from(signup_ms, start_date);
    if now < from {
        return 0..0;
    }
    period_index(signup_ms, from)..period_index(signup_ms, now).saturating_add(1)
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What an invoice bills: a monthly period (one per period, issued at its start), or the
/// prorated difference of an upgrade (one per package change, issued when it happens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceKind {
    Period,
    Proration,
}

impl InvoiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceKind::Period => "period",
            InvoiceKind::Proration => "proration",
        }
    }

    pub fn parse(s: &str) -> InvoiceKind {
        match s {
            "proration" => InvoiceKind::Proration,
            _ => InvoiceKind::Period,
        }
    }
}

/// An invoice's status, derived from what settled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Unpaid,
    PartiallyPaid,
    Paid,
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Unpaid => "unpaid",
            InvoiceStatus::PartiallyPaid => "partially_paid",
            InvoiceStatus::Paid => "paid",
        }
    }

    pub fn parse(s: &str) -> Result<Option<InvoiceStatus>> {
        match s.trim() {
            "" => Ok(None),
            "unpaid" => Ok(Some(InvoiceStatus::Unpaid)),
            "partially_paid" => Ok(Some(InvoiceStatus::PartiallyPaid)),
            "paid" => Ok(Some(InvoiceStatus::Paid)),
            other => Err(PromoError::InvalidArgument(format!(
                "status vaut unpaid, partially_paid ou paid, reçu {:?}",
                other.chars().take(20).collect::<String>()
            ))),
        }
    }
}

/// What allocation needs of an invoice, in issue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owed {
    pub total: u64,
    pub credited: u64,
}

/// Allocates the customer's payments to the invoices, oldest first. Returns each invoice's
/// remaining balance and the account balance (positive: owed; negative: credit left over).
pub fn allocate(invoices: &[Owed], paid: u64) -> (Vec<u64>, i64) {
    let mut left = paid;
    let mut owed_total: i128 = 0;
    let balances = invoices
        .iter()
        .map(|i| {
            let due = i.total.saturating_sub(i.credited);
            owed_total += i128::from(due);
            let taken = due.min(left);
            left -= taken;
            due - taken
        })
        .collect();
    let balance = owed_total - i128::from(paid);
    (
        balances,
        i64::try_from(balance).unwrap_or(if balance > 0 { i64::MAX } else { i64::MIN }),
    )
}

/// The status of an invoice from its balance.
pub fn invoice_status(total: u64, credited: u64, balance: u64) -> InvoiceStatus {
    if balance == 0 {
        InvoiceStatus::Paid
    } else if balance < total.saturating_sub(credited) {
        InvoiceStatus::PartiallyPaid
    } else {
        InvoiceStatus::Unpaid
    }
}

/// A subscription's billing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Active,
    PastDue,
    Suspended,
    Cancelled,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::PastDue => "past_due",
            State::Suspended => "suspended",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> State {
        match s {
            "past_due" => State::PastDue,
            "suspended" => State::Suspended,
            "cancelled" => State::Cancelled,
            _ => State::Active,
        }
    }
}

/// The dunning settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dunning {
    /// An invoice is due this long after it is issued.
    pub due_ms: i64,
    /// After the due date, this long before the subscription is suspended.
    pub grace_ms: i64,
    /// The reminder goes out this long before the due date.
    pub remind_ms: i64,
    /// The first invoice must be paid before the keys work.
    pub first_invoice_prepaid: bool,
}

impl Default for Dunning {
    fn default() -> Self {
        Dunning {
            due_ms: 15 * DAY_MS,
            grace_ms: 7 * DAY_MS,
            remind_ms: 3 * DAY_MS,
            first_invoice_prepaid: false,
        }
    }
}

impl Dunning {
    /// Days as configured → the settings (each day count bounded to a year).
    pub fn from_days(due: u32, grace: u32, remind: u32, first_invoice_prepaid: bool) -> Dunning {
        let ms = |d: u32| i64::from(d.min(366)) * DAY_MS;
        Dunning {
            due_ms: ms(due),
            grace_ms: ms(grace),
            remind_ms: ms(remind),
            first_invoice_prepaid,
        }
    }
}

/// An unpaid invoice as dunning sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpaid {
    pub due_at: i64,
    /// The customer's first invoice (period 0).
    pub first: bool,
}

/// The state a subscription should be in at `now`, from its oldest unpaid invoice.
pub fn state_at(
    oldest_unpaid: Option<Unpaid>,
    cancelled: bool,
    now: i64,
    rules: &Dunning,
) -> State {
    if cancelled {
        return State::Cancelled;
    }
    let Some(u) = oldest_unpaid else {
        return State::Active;
    };
    if u.first && rules.first_invoice_prepaid {
        return State::Suspended;
    }
    if now < u.due_at {
        State::Active
    } else if now < u.due_at.saturating_add(rules.grace_ms) {
        State::PastDue
    } else {
        State::Suspended
    }
}

/// The invoice number: `2026-000123` (credit notes: `A2026-000004`).
pub fn number(prefix: &str, year: i32, seq: i64) -> String {
    format!("{prefix}{year}-{seq:06}")
}

/// The year an invoice issued at `ms` is numbered in (UTC).
pub fn numbering_year(ms: i64) -> i32 {
    to_datetime(ms).year()
}

/// A payment method as stored.
pub fn method_name(method: i32) -> Result<&'static str> {
    match method {
        1 => Ok("bank_transfer"),
        2 => Ok("ccp"),
        3 => Ok("baridimob"),
        4 => Ok("card"),
        _ => Err(PromoError::InvalidArgument(
            "method vaut BANK_TRANSFER, CCP, BARIDIMOB ou CARD".into(),
        )),
    }
}

/// A free-text field (payment reference, credit-note reason): trimmed, 1 to `max` characters,
/// no control character.
pub fn text_field(field: &str, raw: &str, max: usize) -> Result<String> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(PromoError::InvalidArgument(format!(
            "{field} fait 1 à {max} caractères, sans caractère de contrôle"
        )));
    }
    Ok(v.to_owned())
}

/// A positive amount in dinars that fits the database.
pub fn amount(field: &str, v: u64) -> Result<i64> {
    match i64::try_from(v) {
        Ok(a) if a > 0 && a <= 1_000_000_000_000 => Ok(a),
        _ => Err(PromoError::InvalidArgument(format!(
            "{field} est un nombre entier de dinars, de 1 à 1 000 000 000 000"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn launch30_dev(signup: i64) -> Terms {
        Terms {
            package_id: "dev".into(),
            package_name: "Dev".into(),
            base_price_dzd: 15_000,
            discount: Some((Percent::new(33).unwrap(), period_start(signup, 6))),
            promo_code: Some("LAUNCH30".into()),
        }
    }

    #[test]
    fn launch30_dev_pays_10050_for_six_periods_then_15000() {
        let signup = ms("2026-01-10T09:00:00Z");
        let terms = launch30_dev(signup);
        let amounts: Vec<u64> = (0..9)
            .map(|n| {
                period_bill(&terms, period_start(signup, n), period_start(signup, n + 1)).price_dzd
            })
            .collect();
        assert_eq!(
            amounts,
            [
                10_050, 10_050, 10_050, 10_050, 10_050, 10_050, 15_000, 15_000, 15_000
            ]
        );
        let first = period_bill(&terms, signup, period_start(signup, 1));
        assert_eq!(first.lines.len(), 2);
        assert_eq!(first.lines[1].amount_dzd, -4_950);
        assert!(
            first.lines[1].label.contains("jusqu'au 10 juillet 2026"),
            "{}",
            first.lines[1].label
        );
        let seventh = period_bill(&terms, period_start(signup, 6), period_start(signup, 7));
        assert_eq!(seventh.lines.len(), 1);
    }

    #[test]
    fn january_31_periods_end_on_shorter_months_last_day() {
        let signup = ms("2026-01-31T10:00:00Z");
        let starts: Vec<i64> = (0..5).map(|n| period_start(signup, n)).collect();
        assert_eq!(
            starts,
            [
                signup,
                ms("2026-02-28T10:00:00Z"),
                ms("2026-03-31T10:00:00Z"),
                ms("2026-04-30T10:00:00Z"),
                ms("2026-05-31T10:00:00Z"),
            ]
        );
        // A leap year: 29 February.
        assert_eq!(
            period_start(ms("2028-01-31T00:00:00Z"), 1),
            ms("2028-02-29T00:00:00Z")
        );
        assert_eq!(period_index(signup, ms("2026-02-28T09:59:59Z")), 0);
        assert_eq!(period_index(signup, ms("2026-02-28T10:00:00Z")), 1);
        assert_eq!(period_index(signup, ms("2026-03-31T10:00:00Z")), 2);
        assert_eq!(period_index(signup, signup - 1), 0);
    }

    #[test]
    fn printed_periods_end_on_their_last_day() {
        let signup = ms("2026-01-31T10:00:00Z");
        let (p0, p1, p2) = (
            period_start(signup, 0),
            period_start(signup, 1),
            period_start(signup, 2),
        );
        assert_eq!(period_text(p0, p1), "du 31 janvier 2026 au 27 février 2026");
        assert_eq!(period_text(p1, p2), "du 28 février 2026 au 30 mars 2026");
        assert_eq!(last_day_iso(p1), "2026-02-27");
        // A period ending at midnight prints the day before too.
        assert_eq!(last_day_iso(ms("2026-03-01T00:00:00Z")), "2026-02-28");
    }

    #[test]
    fn proration_of_an_upgrade_on_day_10_of_30() {
        // 2026-04-10 → 2026-05-10: 30 days; day 10 is 2026-04-19.
        let signup = ms("2026-04-10T09:00:00Z");
        let (start, end) = (period_start(signup, 0), period_start(signup, 1));
        assert_eq!(days(start, end), 30);
        let at = ms("2026-04-19T15:00:00Z");
        assert_eq!(days(at, end), 21, "day 10 counts as left");
        let dev = launch30_dev(signup);
        let business = Terms {
            package_id: "business".into(),
            package_name: "Business".into(),
            base_price_dzd: 100_000,
            discount: Some((Percent::new(25).unwrap(), period_start(signup, 6))),
            promo_code: Some("LAUNCH30".into()),
        };
        let bill = proration_bill(&dev, &business, start, end, at).unwrap();
        // (75 000 − 10 050) × 21 / 30 = 45 465.
        assert_eq!(bill.price_dzd, 45_465);
        let amounts: Vec<i64> = bill.lines.iter().map(|l| l.amount_dzd).collect();
        assert_eq!(amounts, [70_000, -17_500, -7_035]);
        assert_eq!(amounts.iter().sum::<i64>(), 45_465);
        assert!(
            bill.lines[0]
                .label
                .contains("du 19 avril 2026 au 9 mai 2026 (21 jours sur 30)"),
            "{:?}",
            bill.lines
        );
        // Without the discount: (100 000 − 15 000) × 21 / 30 = 59 500.
        let plain = |t: &Terms| Terms {
            discount: None,
            ..t.clone()
        };
        assert_eq!(
            proration_bill(&plain(&dev), &plain(&business), start, end, at)
                .unwrap()
                .price_dzd,
            59_500
        );
        // Half up: 1 × 15 / 30 = 0.5 → 1; nothing for a cheaper target.
        assert_eq!(prorata(1, 15, 30), 1);
        assert_eq!(prorata(1, 14, 30), 0);
        assert!(proration_bill(&business, &dev, start, end, at).is_none());
    }

    #[test]
    fn billing_starts_at_the_start_date_prorated_then_whole_periods() {
        let signup = ms("2026-01-10T09:00:00Z");
        let start_date = ms("2026-03-01T00:00:00Z");
        // Periods 0 and 1 end before it; period 2 (Mar 10 → Apr 10) comes after; the date falls
        // in period 1 (Feb 10 → Mar 10).
        assert_eq!(
            billable_periods(signup, Some(start_date), ms("2026-04-11T00:00:00Z")),
            1..4
        );
        assert!(billable_periods(signup, Some(start_date), start_date - 1).is_empty());
        assert_eq!(billable_periods(signup, None, signup), 0..1);
        let terms = launch30_dev(signup);
        let (p1, p2) = (period_start(signup, 1), period_start(signup, 2));
        let first = partial_bill(&terms, p1, p2, billing_from(signup, Some(start_date)));
        // 2026-03-01 00:00 → 2026-03-10 09:00: 10 days left of 28; 10 050 × 10 / 28 = 3 589.28.
        assert_eq!(first.price_dzd, 3_589);
        assert_eq!(first.start, start_date);
        let amounts: Vec<i64> = first.lines.iter().map(|l| l.amount_dzd).collect();
        // 15 000 × 10 / 28 = 5 357.14 → 5 357; the discount line takes the rest.
        assert_eq!(amounts, [5_357, -1_768]);
        // A start date before the signup changes nothing.
        assert_eq!(billing_from(signup, Some(signup - DAY_MS)), signup);
    }

    #[test]
    fn tax_split_rounds_half_up_and_adds_up() {
        let incl = TaxRule {
            rate_bp: 1900,
            prices_include_tax: true,
        };
        // 10050 / 1.19 = 8445.378… → 8445; tax 1605.
        assert_eq!(
            incl.split(10_050),
            Split {
                net: 8_445,
                tax: 1_605,
                total: 10_050
            }
        );
        // 119 / 1.19 = 100 exactly.
        assert_eq!(incl.split(119).net, 100);
        // Half up: 1 / 1.25 = 0.8 → 1; 3 / 2 (rate 100 %) = 1.5 → 2.
        let half = TaxRule {
            rate_bp: 10_000,
            prices_include_tax: true,
        };
        assert_eq!(
            half.split(3),
            Split {
                net: 2,
                tax: 1,
                total: 3
            }
        );
        let excl = TaxRule {
            rate_bp: 1900,
            prices_include_tax: false,
        };
        // 7500 × 19 % = 1425.
        assert_eq!(
            excl.split(7_500),
            Split {
                net: 7_500,
                tax: 1_425,
                total: 8_925
            }
        );
        // 10050 × 19 % = 1909.5 → 1910 (half up).
        assert_eq!(excl.split(10_050).tax, 1_910);
        for p in [0, 1, 2, 99, 10_050, 15_000, 199_999] {
            for rule in [incl, excl, half] {
                let s = rule.split(p);
                assert_eq!(s.net + s.tax, s.total, "{p} {rule:?}");
            }
        }
        let none = TaxRule {
            rate_bp: 0,
            prices_include_tax: true,
        };
        assert_eq!(none.split(10_050).tax, 0);
    }

    #[test]
    fn payments_settle_oldest_first_and_overpayment_is_credit() {
        let inv = |total| Owed { total, credited: 0 };
        let (b, bal) = allocate(&[inv(10_050), inv(10_050)], 12_000);
        assert_eq!(b, [0, 8_100]);
        assert_eq!(bal, 8_100);
        assert_eq!(
            invoice_status(10_050, 0, 8_100),
            InvoiceStatus::PartiallyPaid
        );
        let (b, bal) = allocate(&[inv(10_050)], 15_000);
        assert_eq!(b, [0]);
        assert_eq!(bal, -4_950, "an over-payment is the customer's credit");
        // The credit settles the next invoice when it comes.
        let (b, bal) = allocate(&[inv(10_050), inv(10_050)], 15_000);
        assert_eq!(b, [0, 5_100]);
        assert_eq!(bal, 5_100);
        // A credit note lowers what the invoice carries.
        let (b, _) = allocate(
            &[Owed {
                total: 10_050,
                credited: 10_050,
            }],
            0,
        );
        assert_eq!(b, [0]);
        assert_eq!(invoice_status(10_050, 0, 10_050), InvoiceStatus::Unpaid);
    }

    #[test]
    fn dunning_states() {
        let rules = Dunning::default();
        let due = ms("2026-02-01T00:00:00Z");
        let u = Some(Unpaid {
            due_at: due,
            first: false,
        });
        assert_eq!(state_at(None, false, due, &rules), State::Active);
        assert_eq!(state_at(u, false, due - 1, &rules), State::Active);
        assert_eq!(state_at(u, false, due, &rules), State::PastDue);
        assert_eq!(
            state_at(u, false, due + rules.grace_ms - 1, &rules),
            State::PastDue
        );
        assert_eq!(
            state_at(u, false, due + rules.grace_ms, &rules),
            State::Suspended
        );
        assert_eq!(state_at(u, true, due, &rules), State::Cancelled);
        let first = Some(Unpaid {
            due_at: due,
            first: true,
        });
        assert_eq!(state_at(first, false, due - 1, &rules), State::Active);
        let prepaid = Dunning {
            first_invoice_prepaid: true,
            ..rules
        };
        assert_eq!(state_at(first, false, 0, &prepaid), State::Suspended);
    }

    #[test]
    fn numbers_and_inputs() {
        assert_eq!(number("", 2026, 123), "2026-000123");
        assert_eq!(number("A", 2026, 4), "A2026-000004");
        assert!(method_name(0).is_err());
        assert_eq!(method_name(2).unwrap(), "ccp");
        assert!(text_field("reference", " ", 120).is_err());
        assert!(text_field("reference", "a\u{0}", 120).is_err());
        assert_eq!(text_field("reference", " VIR 42 ", 120).unwrap(), "VIR 42");
        assert!(amount("amount_dzd", 0).is_err());
        assert!(amount("amount_dzd", u64::MAX).is_err());
        assert_eq!(InvoiceStatus::parse("").unwrap(), None);
        assert!(InvoiceStatus::parse("void").is_err());
    }
}
