//! `GET /api/site`: the seller's identity, contact, terms of sale and retention periods, as
//! promo-service's configuration gives them. The footer of every page, the legal notice, the
//! terms of sale and the privacy page read it, so no page carries a name, number or address of
//! its own.

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::clients::promo::v1::SiteClient;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend;
use crate::error::ApiError;
use crate::openapi::rest;
use crate::respond::{json, non_empty};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(site_info))
}

/// Who sells: identity and contact (null when not configured).
#[derive(Serialize, ToSchema)]
pub struct Seller {
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true)]
    address: Option<String>,
    /// Legal form and share capital.
    #[schema(required = true)]
    legal_form: Option<String>,
    #[schema(required = true)]
    nif: Option<String>,
    #[schema(required = true)]
    nis: Option<String>,
    #[schema(required = true)]
    rc: Option<String>,
    #[schema(required = true)]
    article: Option<String>,
    /// Contact address (also the Reply-To of the e-mails).
    #[schema(required = true)]
    email: Option<String>,
    #[schema(required = true)]
    phone: Option<String>,
    #[schema(required = true)]
    publication_director: Option<String>,
    #[schema(required = true)]
    data_protection_receipt: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Hosting {
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true)]
    address: Option<String>,
}

/// The facts the terms of sale quote, from the billing configuration.
#[derive(Serialize, ToSchema)]
pub struct Terms {
    /// Tax rate in basis points (1900 = 19 %).
    tax_rate_bp: u32,
    prices_include_tax: bool,
    invoice_due_days: u32,
    suspension_grace_days: u32,
    /// The API key works only once the first invoice is paid.
    first_invoice_prepaid: bool,
    card_payment: bool,
    bank_transfer: bool,
    ccp_transfer: bool,
    baridimob_transfer: bool,
    /// The discount-ending e-mail goes out this many days before the end.
    discount_notice_days: u32,
}

/// How long the service keeps what it keeps (as the code does it).
#[derive(Serialize, ToSchema)]
pub struct Retention {
    sign_in_link_minutes: u32,
    session_max_days: u32,
    idempotency_hours: u32,
    sign_in_rate_window_minutes: u32,
    session_idle_hours: u32,
    /// Expired links and sessions are deleted this long after their end.
    expired_kept_hours: u32,
}

#[derive(Serialize, ToSchema)]
pub struct SiteInfo {
    seller: Seller,
    hosting: Hosting,
    terms: Terms,
    retention: Retention,
}

impl From<pb::SiteInfo> for SiteInfo {
    fn from(s: pb::SiteInfo) -> Self {
        SiteInfo {
            seller: Seller {
                name: non_empty(s.seller_name),
                address: non_empty(s.seller_address),
                legal_form: non_empty(s.seller_legal_form),
                nif: non_empty(s.seller_nif),
                nis: non_empty(s.seller_nis),
                rc: non_empty(s.seller_rc),
                article: non_empty(s.seller_article),
                email: non_empty(s.contact_email),
                phone: non_empty(s.contact_phone),
                publication_director: non_empty(s.publication_director),
                data_protection_receipt: non_empty(s.data_protection_receipt),
            },
            hosting: Hosting {
                name: non_empty(s.hosting_name),
                address: non_empty(s.hosting_address),
            },
            terms: Terms {
                tax_rate_bp: s.tax_rate_bp,
                prices_include_tax: s.prices_include_tax,
                invoice_due_days: s.invoice_due_days,
                suspension_grace_days: s.suspension_grace_days,
                first_invoice_prepaid: s.first_invoice_prepaid,
                card_payment: s.card_payment,
                bank_transfer: s.bank_transfer,
                ccp_transfer: s.ccp_transfer,
                baridimob_transfer: s.baridimob_transfer,
                discount_notice_days: s.discount_notice_days,
            },
            retention: Retention {
                sign_in_link_minutes: s.sign_in_link_minutes,
                session_max_days: s.session_max_days,
                idempotency_hours: s.idempotency_hours,
                sign_in_rate_window_minutes: s.sign_in_rate_window_minutes,
                session_idle_hours: s.session_idle_hours,
                expired_kept_hours: s.expired_kept_hours,
            },
        }
    }
}

/// The seller's identity and contact, the terms of sale and the retention periods (public: what
/// the footer and the legal pages show).
#[utoipa::path(
    get,
    path = "/api/site",
    tag = "site",
    responses(
        (status = 200, description = "Seller, hosting, terms, retention.", body = SiteInfo),
        (status = 400, response = inline(rest::BadRequest)),
    ),
)]
pub async fn site_info(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let req = backend::request(pb::GetSiteInfoRequest {}, &headers, &[])?;
    let info = SiteClient::new(state.promo.channel())
        .get_site_info(req)
        .await?
        .into_inner();
    let mut response = json(StatusCode::OK, &SiteInfo::from(info));
    // Changes only when promo-service restarts with another configuration.
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
