//! The customer's billing under `/api/compte/facturation`: subscription state, invoices with
//! balances, the transfer details to quote. A promo-service `Billing` RPC in the account session
//! (the cookie carried as in `compte`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use http::HeaderMap;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::path_param;
use crate::openapi::{family, rest};
use crate::routes::billing_dto::{Invoice, pdf_response, state_name};
use crate::routes::compte::{in_session, ok};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(pay_by_card))
        .routes(routes!(invoice_pdf))
}

#[derive(Serialize, ToSchema)]
pub struct PaymentDetails {
    /// Empty fields: that way of paying is not offered.
    beneficiary: String,
    bank_account: String,
    ccp_account: String,
    baridimob_rip: String,
    instructions: String,
}

#[derive(Serialize, ToSchema)]
pub struct Billing {
    /// `active`, `past_due`, `suspended` or `cancelled`.
    state: &'static str,
    /// What the next period will cost, DZD.
    next_amount_dzd: u64,
    /// Positive: owed; negative: credit from an over-payment.
    balance_dzd: i64,
    /// Newest first.
    invoices: Vec<Invoice>,
    payment_details: PaymentDetails,
    /// A French sentence on the state: what is owed, by when.
    message: String,
}

/// The signed-in customer's subscription state, invoices and how to pay.
#[utoipa::path(
    get,
    path = "/api/compte/facturation",
    tag = "compte",
    security(("session" = [])),
    responses(
        (status = 200, description = "The customer's billing.", body = Billing),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let req = in_session(pb::GetBillingRequest {}, &headers, false)?;
    let b = state.billing_client().get_billing(req).await?.into_inner();
    let d = b.payment_details.unwrap_or_default();
    ok(&Billing {
        state: state_name(b.state),
        next_amount_dzd: b.next_amount_dzd,
        balance_dzd: b.balance_dzd,
        invoices: b.invoices.into_iter().map(Invoice::from).collect(),
        payment_details: PaymentDetails {
            beneficiary: d.beneficiary,
            bank_account: d.bank_account,
            ccp_account: d.ccp_account,
            baridimob_rip: d.baridimob_rip,
            instructions: d.instructions,
        },
        message: b.message,
    })
}

#[derive(Serialize, ToSchema)]
pub struct CardCheckout {
    checkout_id: String,
    /// Chargily's payment page: send the customer there.
    checkout_url: String,
    /// DZD to pay: what remains on the invoice.
    amount_dzd: u64,
}

/// Starts a card payment (Edahabia / CIB through Chargily Pay) of what remains on one of the
/// customer's invoices. The invoice is marked paid only when Chargily's signed webhook says so,
/// never on the customer's return.
#[utoipa::path(
    post,
    path = "/api/compte/factures/{number}/paiement-carte",
    tag = "compte",
    params(("number" = String, Path, description = "Invoice number (`2026-000123`).")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The checkout to send the customer to.", body = CardCheckout),
        family::Session,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn pay_by_card(
    State(state): State<AppState>,
    number: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let invoice_number = path_param(number)?;
    let req = in_session(
        pb::PayInvoiceByCardRequest { invoice_number },
        &headers,
        true,
    )?;
    let c = state
        .billing_client()
        .pay_invoice_by_card(req)
        .await?
        .into_inner();
    ok(&CardCheckout {
        checkout_id: c.checkout_id,
        checkout_url: c.checkout_url,
        amount_dzd: c.amount_dzd,
    })
}

/// One of the customer's invoices as a PDF.
#[utoipa::path(
    get,
    path = "/api/compte/factures/{number}/pdf",
    tag = "compte",
    params(("number" = String, Path, description = "Invoice number (`2026-000123`).")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The invoice (PDF).", content_type = "application/pdf", body = Vec<u8>),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn invoice_pdf(
    State(state): State<AppState>,
    number: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let invoice_number = path_param(number)?;
    let req = in_session(pb::GetInvoicePdfRequest { invoice_number }, &headers, false)?;
    let r = state
        .billing_client()
        .get_invoice_pdf(req)
        .await?
        .into_inner();
    Ok(pdf_response(&r.invoice_number, r.pdf))
}
