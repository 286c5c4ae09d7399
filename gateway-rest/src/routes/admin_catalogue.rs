//! The console's catalogue: packages (`/api/admin/forfaits`) and promo codes
//! (`/api/admin/codes`), changed with merge semantics — only the fields sent change. The
//! landing page reads both from the public API, so a change here shows there at once (within
//! promo-service's read cache and the live counter's refresh).

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use http::HeaderMap;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, ok, operator_request};
use super::promo_admin::{PromoCode, UpdateCodeRequest};
use super::promo_public::Package;
use crate::extract::{path_param, read_json};
use crate::openapi::rest;
use crate::state::AppState;
use crate::web_session::same_origin;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
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
        (status = 200, description = "The package.", body = Package),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 403, response = inline(rest::Forbidden)),
        (status = 413, response = inline(rest::PayloadTooLarge)),
        (status = 415, response = inline(rest::UnsupportedMediaType)),
    ),
)]
pub async fn update_package(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_param(id)?;
    same_origin(&headers)?;
    let input: PackageUpdate = read_json(&headers, body, state.config.body_limit).await?;
    let req = operator_request(
        pb::UpdatePackageRequest {
            id,
            name: input.name,
            monthly_price_dzd: input.monthly_price_dzd,
            tokens_per_month: input.tokens_per_month,
            requests_per_minute: input.requests_per_minute,
            set_allowed_models: input.allowed_models.is_some(),
            allowed_models: input.allowed_models.unwrap_or_default(),
        },
        &headers,
        true,
    )?;
    let p = state
        .operators_client()
        .update_package(req)
        .await?
        .into_inner();
    ok(&Package::from(p))
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
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 403, response = inline(rest::Forbidden)),
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
        (status = 413, response = inline(rest::PayloadTooLarge)),
        (status = 415, response = inline(rest::UnsupportedMediaType)),
    ),
)]
pub async fn update_code(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let code = path_param(code)?;
    same_origin(&headers)?;
    let input: UpdateCodeRequest = read_json(&headers, body, state.config.body_limit).await?;
    let req = operator_request(input.into_message(code), &headers, true)?;
    let c = state
        .operators_client()
        .update_code(req)
        .await?
        .into_inner();
    state.live.invalidate_code(&c.code);
    ok(&PromoCode::from(c))
}
