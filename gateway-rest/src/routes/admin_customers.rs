//! The console's customers (`/api/admin/clients`): search and filters, one customer with their
//! keys and this month's usage in tokens (from llm-gateway's `GetKeysUsage`), their upstream
//! cost in dinars at `USD_DZD_RATE` and the month's margin, the CSV export
//! (owners only: promo-service refuses support), key revocation and suspension. Roles, CSRF
//! and the audit log are promo-service's.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, ok, operator_request};
use crate::error::ApiError;
use crate::extract::{path_param, query_param};
use crate::openapi::{family, rest};
use crate::respond::non_empty;
use crate::state::AppState;
use crate::web_session::{private, read_change};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(export))
        .routes(routes!(detail))
        .routes(routes!(revoke_key))
        .routes(routes!(suspension))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// Part of the e-mail (case-insensitive).
    #[serde(default)]
    #[param(max_length = 254)]
    recherche: Option<String>,
    /// Package id.
    #[serde(default)]
    forfait: Option<String>,
    /// `active` or `suspended`.
    #[serde(default)]
    statut: Option<String>,
    /// 1 to 500; absent: 50.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
}

impl CustomersQuery {
    fn request(self) -> pb::ListCustomersRequest {
        pb::ListCustomersRequest {
            search: self.recherche.unwrap_or_default(),
            package: self.forfait.unwrap_or_default(),
            status: self.statut.unwrap_or_default(),
            page_size: self.page_size.unwrap_or(0),
            page_token: self.page_token.unwrap_or_default(),
        }
    }
}

fn query_of(
    query: Result<Query<CustomersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<CustomersQuery, ApiError> {
    let q = query_param(query)?;
    if q.page_size == Some(0) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "page_size va de 1 à 500.",
        ));
    }
    Ok(q)
}

#[derive(Serialize, ToSchema)]
pub struct Customer {
    user_id: String,
    email: String,
    package: String,
    /// Monthly price now (discount applied while it lasts).
    price_dzd: u64,
    base_price_dzd: u64,
    discount_percent: u32,
    #[schema(required = true)]
    promo_code: Option<String>,
    #[schema(required = true)]
    discount_ends_at: Option<String>,
    suspended: bool,
    created_at: String,
    live_keys: u32,
}

fn customer(c: pb::CustomerSummary) -> Customer {
    Customer {
        user_id: c.user_id,
        email: c.email,
        package: c.package,
        price_dzd: c.price_dzd,
        base_price_dzd: c.base_price_dzd,
        discount_percent: c.discount_percent,
        promo_code: non_empty(c.promo_code),
        discount_ends_at: non_empty(c.discount_ends_at),
        suspended: c.suspended,
        created_at: c.created_at,
        live_keys: c.live_keys,
    }
}

#[derive(Serialize, ToSchema)]
pub struct Customers {
    customers: Vec<Customer>,
    #[schema(required = true)]
    next_page_token: Option<String>,
    /// Matching customers.
    total: u64,
}

/// Customers, newest first, filtered (operator).
#[utoipa::path(
    get,
    path = "/api/admin/clients",
    tag = "console",
    params(CustomersQuery),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "A page of customers.", body = Customers),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<CustomersQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_of(query)?;
    let req = operator_request(q.request(), &headers, false)?;
    let page = state
        .operators_client()
        .list_customers(req)
        .await?
        .into_inner();
    ok(&Customers {
        customers: page.customers.into_iter().map(customer).collect(),
        next_page_token: non_empty(page.next_page_token),
        total: page.total,
    })
}

/// Every matching customer as CSV (owner only: support is refused with 403).
#[utoipa::path(
    get,
    path = "/api/admin/clients/export.csv",
    tag = "console",
    params(CustomersQuery),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "CSV, one customer per line.", content_type = "text/csv", body = String),
        family::Session,
    ),
)]
pub async fn export(
    State(state): State<AppState>,
    query: Result<Query<CustomersQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let q = query_of(query)?;
    let req = operator_request(q.request(), &headers, false)?;
    let csv = state
        .operators_client()
        .export_customers(req)
        .await?
        .into_inner();
    let mut response = (StatusCode::OK, csv.csv).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"clients.csv\""),
    );
    Ok(private(response))
}

#[derive(Serialize, ToSchema)]
pub struct KeyUsage {
    id: String,
    prefix: String,
    name: String,
    /// `active`, `grace` or `revoked`.
    status: String,
    created_at: String,
    #[schema(required = true)]
    revoked_at: Option<String>,
    /// This month (UTC).
    requests: u64,
    total_tokens: u64,
    #[schema(required = true)]
    last_used_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerDetail {
    customer: Option<Customer>,
    /// Calendar month counted, UTC (`2026-11`).
    period: String,
    /// This month's tokens over every key of the customer.
    total_tokens: u64,
    requests: u64,
    /// The package's monthly tokens.
    tokens_per_month: u64,
    keys: Vec<KeyUsage>,
    /// This month's upstream cost and margin (see [`Margin`]).
    margin: Margin,
}

/// What the customer costs upstream this month against what their subscription bills for it,
/// in integer dinars.
#[derive(Serialize, ToSchema)]
pub struct Margin {
    /// Upstream cost of the customer's calls this month (UTC), US dollars.
    cost_usd: f64,
    /// Dinars per dollar applied (`USD_DZD_RATE`).
    usd_dzd_rate: f64,
    /// `cost_usd` × rate, rounded **up** to the dinar (a margin is never overstated).
    cost_dzd: u64,
    /// What the subscription bills for a month now: the discounted price while the promotion
    /// lasts, the package's price after.
    revenue_dzd: u64,
    /// `revenue_dzd − cost_dzd`; negative when the customer costs more than they pay.
    margin_dzd: i64,
}

impl Margin {
    fn of(cost_usd: f64, revenue_dzd: u64, rate_milli: u64) -> Margin {
        // llm-gateway counts nano-dollars; its report's dollars are those divided by 1e9.
        let nano = (cost_usd * 1e9).round() as i64;
        let cost_dzd = crate::exchange::nano_usd_to_dzd_ceil(nano, rate_milli);
        Margin {
            cost_usd,
            usd_dzd_rate: rate_milli as f64 / 1000.0,
            cost_dzd,
            revenue_dzd,
            margin_dzd: i64::try_from(revenue_dzd)
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(cost_dzd).unwrap_or(i64::MAX)),
        }
    }
}

fn key_status(status: i32) -> &'static str {
    match pb::KeyStatus::try_from(status) {
        Ok(pb::KeyStatus::Active) => "active",
        Ok(pb::KeyStatus::Grace) => "grace",
        Ok(pb::KeyStatus::Revoked) => "revoked",
        _ => "unknown",
    }
}

/// One customer: subscription, keys, this month's usage in tokens (operator).
#[utoipa::path(
    get,
    path = "/api/admin/clients/{user_id}",
    tag = "console",
    params(("user_id" = String, Path, description = "Customer id (`usr_…`).")),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The customer.", body = CustomerDetail),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn detail(
    State(state): State<AppState>,
    user_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let user_id = path_param(user_id)?;
    let req = operator_request(pb::GetCustomerRequest { user_id }, &headers, false)?;
    let d = state
        .operators_client()
        .get_customer(req)
        .await?
        .into_inner();
    let u = state
        .keys_usage(&headers, d.keys.iter().map(|k| k.id.clone()).collect())
        .await?;
    let revenue = d.customer.as_ref().map_or(0, |c| c.price_dzd);
    ok(&CustomerDetail {
        margin: Margin::of(u.cost_usd, revenue, state.config.usd_dzd_rate_milli),
        customer: d.customer.map(customer),
        period: u.period,
        total_tokens: u.total_tokens,
        requests: u.requests,
        tokens_per_month: d.tokens_per_month,
        keys: d
            .keys
            .into_iter()
            .zip(u.keys)
            .map(|(k, used)| KeyUsage {
                status: key_status(k.status).to_owned(),
                id: k.id,
                prefix: k.prefix,
                name: k.name,
                created_at: k.created_at,
                revoked_at: non_empty(k.revoked_at),
                requests: used.requests,
                total_tokens: used.total_tokens,
                last_used_at: non_empty(used.last_used_at),
            })
            .collect(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct RevokedKey {
    id: String,
    prefix: String,
    status: String,
}

/// Revokes one of the customer's keys now (owner).
#[utoipa::path(
    post,
    path = "/api/admin/clients/{user_id}/cles/{key_id}/revocation",
    tag = "console",
    params(
        ("user_id" = String, Path, description = "Customer id (`usr_…`)."),
        ("key_id" = String, Path, description = "Key id (`key_…`)."),
    ),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The revoked key.", body = RevokedKey),
        family::Session,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    ids: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let (user_id, key_id) = path_param(ids)?;
    let req = operator_request(
        pb::RevokeCustomerKeyRequest { user_id, key_id },
        &headers,
        true,
    )?;
    let k = state
        .operators_client()
        .revoke_customer_key(req)
        .await?
        .into_inner();
    ok(&RevokedKey {
        status: key_status(k.status).to_owned(),
        id: k.id,
        prefix: k.prefix,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionRequest {
    suspended: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Suspension {
    suspended: bool,
    /// False when the account already was in that state.
    changed: bool,
}

/// Suspends or reactivates a customer (owner).
#[utoipa::path(
    put,
    path = "/api/admin/clients/{user_id}/suspension",
    tag = "console",
    params(("user_id" = String, Path, description = "Customer id (`usr_…`).")),
    request_body = SuspensionRequest,
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The account's state.", body = Suspension),
        family::SessionJson,
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn suspension(
    State(state): State<AppState>,
    user_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let user_id = path_param(user_id)?;
    let input: SuspensionRequest = read_change(&headers, body, state.config.body_limit).await?;
    let req = operator_request(
        pb::SetAccountSuspendedRequest {
            user_id,
            suspended: input.suspended,
        },
        &headers,
        true,
    )?;
    let r = state
        .operators_client()
        .set_customer_suspended(req)
        .await?
        .into_inner();
    ok(&Suspension {
        suspended: r.suspended,
        changed: r.changed,
    })
}
