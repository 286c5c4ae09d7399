//! The console's catalogue: packages (`/api/admin/forfaits`) and promo codes
//! (`/api/admin/codes`), changed with merge semantics — only the fields sent change. The
//! landing page reads both from the public API, so a change here shows there at once (within
//! promo-service's read cache and the live counter's refresh). The console's package list
//! (`GET /api/admin/forfaits`) adds what the public one never shows: the monthly upstream-cost
//! budget, our cost price.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use http::HeaderMap;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, ok, operator_request, signed_in};
use super::promo_admin::{PromoCode, UpdateCodeRequest};
use crate::extract::path_param;
use crate::openapi::{family, rest};
use crate::state::AppState;
use crate::web_session::read_change;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_packages))
        .routes(routes!(update_package))
        .routes(routes!(list_codes))
        .routes(routes!(update_code))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PackageUpdate {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 40)]
    name: Option<String>,
    #[serde(default)]
    #[schema(maximum = 100000000)]
    monthly_price_dzd: Option<u64>,
    #[serde(default)]
    tokens_per_month: Option<u64>,
    #[serde(default)]
    #[schema(maximum = 1000000)]
    requests_per_minute: Option<u32>,
    /// Replaces the list; `[]`: every model.
    #[serde(default)]
    allowed_models: Option<Vec<String>>,
    /// Monthly upstream-cost budget per customer in nano-USD (1 USD = 1 000 000 000);
    /// `null` removes it; absent: unchanged.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, minimum = 1)]
    monthly_cost_budget_nano_usd: Option<Option<u64>>,
}

/// A field that may be absent (outer `None`), `null` (`Some(None)`) or a value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// A package as the console shows it: the public fields and the cost budget.
#[derive(Serialize, ToSchema)]
pub struct AdminPackage {
    id: String,
    name: String,
    monthly_price_dzd: u64,
    tokens_per_month: u64,
    requests_per_minute: u32,
    /// Empty: every model.
    allowed_models: Vec<String>,
    /// Monthly upstream-cost budget per customer, nano-USD; null: none.
    monthly_cost_budget_nano_usd: Option<u64>,
}

impl From<pb::Package> for AdminPackage {
    fn from(p: pb::Package) -> Self {
        AdminPackage {
            id: p.id,
            name: p.name,
            monthly_price_dzd: p.monthly_price_dzd,
            tokens_per_month: p.tokens_per_month,
            requests_per_minute: p.requests_per_minute,
            allowed_models: p.allowed_models,
            monthly_cost_budget_nano_usd: p.monthly_cost_budget_nano_usd,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminPackages {
    packages: Vec<AdminPackage>,
}

/// The packages with their cost budgets (operator).
#[utoipa::path(
    get,
    path = "/api/admin/forfaits",
    tag = "console",
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Packages.", body = AdminPackages),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_packages(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    // The package list is a public RPC; the budget is not public: the caller must be an
    // operator (checked by promo-service) before it is read.
    signed_in(&state, &headers).await?;
    let req = operator_request(pb::ListPackagesRequest {}, &headers, false)?;
    let list = state.promo_client().list_packages(req).await?.into_inner();
    ok(&AdminPackages {
        packages: list.packages.into_iter().map(AdminPackage::from).collect(),
    })
}

/// Changes a package; only the fields sent change (owner). New prices apply to new signups.
#[utoipa::path(
    patch,
    path = "/api/admin/forfaits/{id}",
    tag = "console",
    params(("id" = String, Path, description = "Package id (`starter`).")),
    request_body = PackageUpdate,
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The package.", body = AdminPackage),
        family::SessionJson,
    ),
)]
pub async fn update_package(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_param(id)?;
    let input: PackageUpdate = read_change(&headers, body, state.config.body_limit).await?;
    let req = operator_request(
        pb::UpdatePackageRequest {
            id,
            name: input.name,
            monthly_price_dzd: input.monthly_price_dzd,
            tokens_per_month: input.tokens_per_month,
            requests_per_minute: input.requests_per_minute,
            set_allowed_models: input.allowed_models.is_some(),
            allowed_models: input.allowed_models.unwrap_or_default(),
            monthly_cost_budget_nano_usd: input.monthly_cost_budget_nano_usd.flatten(),
            clear_monthly_cost_budget: matches!(input.monthly_cost_budget_nano_usd, Some(None)),
        },
        &headers,
        true,
    )?;
    let p = state
        .operators_client()
        .update_package(req)
        .await?
        .into_inner();
    ok(&AdminPackage::from(p))
}

#[derive(Serialize, ToSchema)]
pub struct Codes {
    codes: Vec<PromoCode>,
}

/// Every promo code with its usage (operator).
#[utoipa::path(
    get,
    path = "/api/admin/codes",
    tag = "console",
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Codes.", body = Codes),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_codes(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = operator_request(pb::ListCodesRequest {}, &headers, false)?;
    let list = state.operators_client().list_codes(req).await?.into_inner();
    ok(&Codes {
        codes: list.codes.into_iter().map(PromoCode::from).collect(),
    })
}

/// Changes a promo code; only the fields sent change, discounts are merged (owner).
#[utoipa::path(
    patch,
    path = "/api/admin/codes/{code}",
    tag = "console",
    params(("code" = String, Path, description = "Promo code, any case.")),
    request_body = UpdateCodeRequest,
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The code.", body = PromoCode),
        family::SessionJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn update_code(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let code = path_param(code)?;
    let input: UpdateCodeRequest = read_change(&headers, body, state.config.body_limit).await?;
    let req = operator_request(input.into_message(code), &headers, true)?;
    let c = state
        .operators_client()
        .update_code(req)
        .await?
        .into_inner();
    state.live.invalidate_code(&c.code);
    ok(&PromoCode::from(c))
}
