//! The billing answers as the REST routes send them (customer and admin rooms share them):
//! money in integer dinars, instants in RFC 3339.

use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct InvoiceLine {
    /// "Forfait Dev — période du …" or "Remise LAUNCH30 −33 % (jusqu'au …)".
    label: String,
    /// Signed DZD: a discount is negative.
    amount_dzd: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Invoice {
    id: String,
    /// `2026-000123`: consecutive per year, to quote with a transfer.
    #[schema(examples("2026-000123"))]
    number: String,
    customer_id: String,
    email: String,
    /// `period` (a monthly period) or `proration` (an upgrade's prorated difference).
    kind: String,
    period_start: String,
    /// The next period's start: the interval is half-open.
    period_end: String,
    /// The last day the invoice covers, `2026-02-27`, as printed ("du 31 janvier au 27 février").
    period_last_day: String,
    package_id: String,
    lines: Vec<InvoiceLine>,
    net_dzd: u64,
    tax_dzd: u64,
    total_dzd: u64,
    /// Basis points: 1900 = 19 %.
    tax_rate_bp: u32,
    prices_include_tax: bool,
    issued_at: String,
    due_at: String,
    credited_dzd: u64,
    /// Left to pay; 0 when paid.
    balance_dzd: u64,
    /// `unpaid`, `partially_paid` or `paid`.
    status: String,
}

impl From<pb::Invoice> for Invoice {
    fn from(i: pb::Invoice) -> Self {
        Invoice {
            id: i.id,
            number: i.number,
            customer_id: i.customer_id,
            email: i.email,
            kind: i.kind,
            period_start: i.period_start,
            period_end: i.period_end,
            period_last_day: i.period_last_day,
            package_id: i.package_id,
            lines: i
                .lines
                .into_iter()
                .map(|l| InvoiceLine {
                    label: l.label,
                    amount_dzd: l.amount_dzd,
                })
                .collect(),
            net_dzd: i.net_dzd,
            tax_dzd: i.tax_dzd,
            total_dzd: i.total_dzd,
            tax_rate_bp: i.tax_rate_bp,
            prices_include_tax: i.prices_include_tax,
            issued_at: i.issued_at,
            due_at: i.due_at,
            credited_dzd: i.credited_dzd,
            balance_dzd: i.balance_dzd,
            status: i.status,
        }
    }
}

/// A subscription state's REST name.
pub fn state_name(state: i32) -> &'static str {
    match pb::SubscriptionState::try_from(state) {
        Ok(pb::SubscriptionState::PastDue) => "past_due",
        Ok(pb::SubscriptionState::Suspended) => "suspended",
        Ok(pb::SubscriptionState::Cancelled) => "cancelled",
        _ => "active",
    }
}

/// A PDF answer (`Content-Disposition: inline`, named after the invoice number), never cached
/// by a shared cache.
pub fn pdf_response(number: &str, pdf: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    // Numbers are `2026-000123` / `A2026-000001`: nothing to escape; anything else is dropped.
    let name: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (
        [
            (http::header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                http::header::CONTENT_DISPOSITION,
                format!("inline; filename=\"facture-{name}.pdf\""),
            ),
            (http::header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        pdf,
    )
        .into_response()
}
