//! The operator's billing routes under `/api/billing`: invoices (list, issue now), payments
//! received by transfer, credit notes, a billing pass. The caller's `Authorization` is
//! forwarded; promo-service checks it.

use axum::body::Body;
use axum::extract::{Query, State};
use http::{HeaderMap, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_token::{self, require_bearer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{path_param, query_param};
use crate::openapi::{family, rest};
use crate::respond::json;
use crate::routes::billing_dto::{Invoice, pdf_response, state_name};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invoices, issue_invoice))
        .routes(routes!(record_payment))
        .routes(routes!(issue_credit_note))
        .routes(routes!(run_billing))
        .routes(routes!(invoice_pdf))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoicesQuery {
    /// Only this customer's (`usr_…`).
    customer_id: Option<String>,
    /// `unpaid`, `partially_paid` or `paid`.
    status: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct Invoices {
    /// Newest first.
    invoices: Vec<Invoice>,
}

/// Invoices, newest first, with their balances (admin).
#[utoipa::path(
    get,
    path = "/api/billing/invoices",
    tag = "admin",
    security(("adminToken" = [])),
    params(InvoicesQuery),
    responses(
        (status = 200, description = "Invoices.", body = Invoices),
        family::AdminToken,
    ),
)]
pub async fn list_invoices(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<InvoicesQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query_param(query)?;
    if q.limit.is_some_and(|l| l > 1000) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "limit va de 0 à 1000.",
        ));
    }
    let req = admin_token::request(
        pb::ListInvoicesRequest {
            customer_id: q.customer_id.unwrap_or_default(),
            status: q.status.unwrap_or_default(),
            limit: q.limit.unwrap_or(0),
        },
        &headers,
    )?;
    let list = state
        .billing_client()
        .list_invoices(req)
        .await?
        .into_inner();
    Ok(json(
        StatusCode::OK,
        &Invoices {
            invoices: list.invoices.into_iter().map(Invoice::from).collect(),
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// `usr_…`.
    customer_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Issued {
    invoice: Invoice,
    /// False when this period's invoice existed already.
    created: bool,
}

/// Issues the customer's current-period invoice now (idempotent) (admin).
#[utoipa::path(
    post,
    path = "/api/billing/invoices",
    tag = "admin",
    security(("adminToken" = [])),
    request_body = IssueRequest,
    responses(
        (status = 200, description = "The period's invoice.", body = Issued),
        family::AdminJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn issue_invoice(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: IssueRequest =
        admin_token::read_json(&headers, body, state.config.body_limit).await?;
    let req = admin_token::request(
        pb::IssueInvoiceRequest {
            customer_id: input.customer_id,
        },
        &headers,
    )?;
    let r = state
        .billing_client()
        .issue_invoice(req)
        .await?
        .into_inner();
    let invoice = r
        .invoice
        .map(Invoice::from)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "erreur interne"))?;
    Ok(json(
        StatusCode::OK,
        &Issued {
            invoice,
            created: r.created,
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    /// The invoice number the customer quoted.
    #[schema(examples("2026-000123"))]
    invoice_number: String,
    /// DZD received, > 0.
    amount_dzd: u64,
    /// `bank_transfer`, `ccp` or `baridimob`.
    method: String,
    /// The bank's or the customer's reference, 1 to 120 characters.
    reference: String,
    /// RFC 3339 date of the payment; absent: now.
    paid_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RecordedPayment {
    id: String,
    invoice: Invoice,
    /// The subscription's state after the payment.
    state: &'static str,
    /// The customer's balance: positive owed, negative credit.
    balance_dzd: i64,
}

/// Records a payment received by transfer (admin). Settling the balance reactivates a
/// suspended subscription at once.
#[utoipa::path(
    post,
    path = "/api/billing/payments",
    tag = "admin",
    security(("adminToken" = [])),
    request_body = PaymentRequest,
    responses(
        (status = 201, description = "Recorded.", body = RecordedPayment),
        family::AdminJson,
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn record_payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: PaymentRequest =
        admin_token::read_json(&headers, body, state.config.body_limit).await?;
    let method = match input.method.as_str() {
        "bank_transfer" => pb::PaymentMethod::BankTransfer,
        "ccp" => pb::PaymentMethod::Ccp,
        "baridimob" => pb::PaymentMethod::Baridimob,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "method vaut bank_transfer, ccp ou baridimob.",
            ));
        }
    };
    let req = admin_token::request(
        pb::RecordPaymentRequest {
            invoice_number: input.invoice_number,
            amount_dzd: input.amount_dzd,
            method: method as i32,
            reference: input.reference,
            paid_at: input.paid_at.unwrap_or_default(),
        },
        &headers,
    )?;
    let r = state
        .billing_client()
        .record_payment(req)
        .await?
        .into_inner();
    let invoice = r
        .invoice
        .map(Invoice::from)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "erreur interne"))?;
    Ok(json(
        StatusCode::CREATED,
        &RecordedPayment {
            id: r.id,
            invoice,
            state: state_name(r.state),
            balance_dzd: r.balance_dzd,
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteRequest {
    invoice_number: String,
    /// DZD, > 0, at most what the invoice still carries.
    amount_dzd: u64,
    /// 1 to 300 characters.
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreditNote {
    id: String,
    /// `A2026-000001`.
    number: String,
    invoice_number: String,
    amount_dzd: u64,
    reason: String,
    issued_at: String,
}

/// Issues a credit note (avoir) against an invoice (admin).
#[utoipa::path(
    post,
    path = "/api/billing/credit-notes",
    tag = "admin",
    security(("adminToken" = [])),
    request_body = CreditNoteRequest,
    responses(
        (status = 201, description = "Issued.", body = CreditNote),
        family::AdminJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn issue_credit_note(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: CreditNoteRequest =
        admin_token::read_json(&headers, body, state.config.body_limit).await?;
    let req = admin_token::request(
        pb::IssueCreditNoteRequest {
            invoice_number: input.invoice_number,
            amount_dzd: input.amount_dzd,
            reason: input.reason,
        },
        &headers,
    )?;
    let n = state
        .billing_client()
        .issue_credit_note(req)
        .await?
        .into_inner();
    Ok(json(
        StatusCode::CREATED,
        &CreditNote {
            id: n.id,
            number: n.number,
            invoice_number: n.invoice_number,
            amount_dzd: n.amount_dzd,
            reason: n.reason,
            issued_at: n.issued_at,
        },
    ))
}

#[derive(Serialize, ToSchema)]
pub struct BillingRun {
    issued: u32,
    state_changes: u32,
    /// What active and past-due subscriptions bill for their next period, DZD.
    mrr_dzd: u64,
}

/// Runs one billing pass now (invoices due, dunning) and answers MRR (admin).
#[utoipa::path(
    post,
    path = "/api/billing/run",
    tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The pass.", body = BillingRun),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn run_billing(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    require_bearer(&headers)?;
    let req = admin_token::request(pb::RunBillingRequest {}, &headers)?;
    let r = state.billing_client().run_billing(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &BillingRun {
            issued: r.issued,
            state_changes: r.state_changes,
            mrr_dzd: r.mrr_dzd,
        },
    ))
}

/// Any invoice as a PDF (admin).
#[utoipa::path(
    get,
    path = "/api/billing/invoices/{number}/pdf",
    tag = "admin",
    params(("number" = String, Path, description = "Invoice number (`2026-000123`).")),
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "The invoice (PDF).", content_type = "application/pdf", body = Vec<u8>),
        family::AdminToken,
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn invoice_pdf(
    State(state): State<AppState>,
    number: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    require_bearer(&headers)?;
    let invoice_number = path_param(number)?;
    let req = admin_token::request(pb::GetInvoicePdfRequest { invoice_number }, &headers)?;
    let r = state
        .billing_client()
        .get_invoice_pdf(req)
        .await?
        .into_inner();
    Ok(pdf_response(&r.invoice_number, r.pdf))
}
