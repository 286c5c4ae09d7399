//! The landing page's public JSON under `/api/promo`: service figures, packages, code validation
//! and signup, translated to promo-service RPCs. Field names follow the REST contract in
//! PRODUCT.md; everything else (validation, French messages, idempotency) is promo-service's.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::{self, Forward};
use crate::error::ApiError;
use crate::extract::read_json;
use crate::openapi::{family, rest};
use crate::respond::{json, non_empty};
use crate::state::AppState;

type ApiResult = Result<Response, ApiError>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(packages))
        .routes(routes!(validate))
        .routes(routes!(signup))
}

/// Promo service health figures for the landing page (no customer data).
#[derive(Serialize, ToSchema)]
pub struct PromoHealth {
    #[schema(examples("healthy"))]
    status: String,
    promo_codes_active: u32,
    total_clients: u64,
}

/// Promo service health figures for the landing page (no customer data).
#[utoipa::path(
    get,
    path = "/api/promo/health",
    tag = "promo",
    responses((status = 200, description = "Summary.", body = PromoHealth)),
)]
pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::GetSummaryRequest {}, &headers, &[])?;
    let s = state.promo_client().get_summary(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &PromoHealth {
            status: s.status,
            promo_codes_active: s.promo_codes_active,
            total_clients: s.total_clients,
        },
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Packages {
    packages: Vec<Package>,
}

#[derive(Serialize, ToSchema)]
pub struct Package {
    id: String,
    name: String,
    monthly_price_dzd: u64,
    tokens_per_month: u64,
    requests_per_minute: u32,
    allowed_models: Vec<String>,
}

impl From<pb::Package> for Package {
    fn from(p: pb::Package) -> Self {
        Package {
            id: p.id,
            name: p.name,
            monthly_price_dzd: p.monthly_price_dzd,
            tokens_per_month: p.tokens_per_month,
            requests_per_minute: p.requests_per_minute,
            allowed_models: p.allowed_models,
        }
    }
}

/// The packages on sale, with prices and quotas.
#[utoipa::path(
    get,
    path = "/api/promo/packages",
    tag = "promo",
    responses((status = 200, description = "Packages.", body = Packages)),
)]
pub async fn packages(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::ListPackagesRequest {}, &headers, &[])?;
    let list = state.promo_client().list_packages(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &Packages {
            packages: list.packages.into_iter().map(Package::from).collect(),
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    #[schema(min_length = 1, max_length = 64, examples("LAUNCH30"))]
    code: String,
    #[serde(default)]
    #[schema(max_length = 64, examples("dev"))]
    package: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ValidateResponse {
    valid: bool,
    /// Why the code is refused (only when `valid` is false).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    reason: Option<RefusalReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_months: Option<u32>,
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(required = false)]
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<u32>,
}

/// The REST name of a refusal reason (the proto enum value without its prefix).
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    Unknown,
    Inactive,
    NotYetValid,
    Expired,
    Exhausted,
    NotForPackage,
    Unspecified,
}

impl From<i32> for RefusalReason {
    fn from(reason: i32) -> Self {
        match pb::RefusalReason::try_from(reason) {
            Ok(pb::RefusalReason::Unknown) => RefusalReason::Unknown,
            Ok(pb::RefusalReason::Inactive) => RefusalReason::Inactive,
            Ok(pb::RefusalReason::NotYetValid) => RefusalReason::NotYetValid,
            Ok(pb::RefusalReason::Expired) => RefusalReason::Expired,
            Ok(pb::RefusalReason::Exhausted) => RefusalReason::Exhausted,
            Ok(pb::RefusalReason::NotForPackage) => RefusalReason::NotForPackage,
            Ok(pb::RefusalReason::Unspecified) | Err(_) => RefusalReason::Unspecified,
        }
    }
}

/// Checks a promo code (optionally for a package). A refused code is a 200 with valid=false and a reason.
#[utoipa::path(
    post,
    path = "/api/promo/validate",
    tag = "promo",
    request_body = ValidateRequest,
    responses(
        (status = 200, description = "Validation result.", body = ValidateResponse),
        family::PublicJson,
    ),
)]
pub async fn validate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    state.check_rate(state.validate_limiter.as_ref(), peer, &headers)?;
    let input: ValidateRequest = read_json(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
        pb::ValidateCodeRequest {
            code: input.code,
            package: input.package.unwrap_or_default(),
        },
        &headers,
        &[],
    )?;
    let v = state.promo_client().validate_code(req).await?.into_inner();
    let out = if v.valid {
        ValidateResponse {
            valid: true,
            reason: None,
            discount_percent: Some(v.discount_percent),
            duration_months: Some(v.duration_months),
            message: v.message,
            code: v.code,
            remaining: v.remaining,
        }
    } else {
        ValidateResponse {
            valid: false,
            reason: Some(RefusalReason::from(v.reason)),
            discount_percent: None,
            duration_months: None,
            message: v.message,
            code: v.code,
            remaining: v.remaining,
        }
    };
    Ok(json(StatusCode::OK, &out))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(format = Email, max_length = 254, examples("a@b.dz"))]
    email: String,
    /// A package id; the operator may add others.
    #[schema(inline, value_type = KnownPackage)]
    package: String,
    #[serde(default)]
    #[schema(max_length = 64, examples("LAUNCH30"))]
    promo_code: Option<String>,
    /// Language of the customer's e-mails (default French).
    #[serde(default)]
    #[schema(inline, value_type = Option<SignupLang>)]
    lang: Option<String>,
}

// The languages the e-mails are written in (documentation only: the request carries a string,
// promo-service refuses any other with a 400).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SignupLang {
    Fr,
    Ar,
}

// The packages of a fresh installation (documentation only: the request carries a string).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum KnownPackage {
    Starter,
    Dev,
    Business,
    Premium,
}

#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    success: bool,
    user_id: String,
    email: String,
    package: String,
    base_price_dzd: u64,
    price_dzd: u64,
    discount_percent: u32,
    #[schema(required = true)]
    discount_ends_at: Option<String>,
    #[schema(required = true)]
    promo_code: Option<String>,
    /// Shown only here.
    api_key: String,
    created_at: String,
}

/// Creates the account and its API key (shown once), redeeming the promo code if given.
#[utoipa::path(
    post,
    path = "/api/promo/signup",
    tag = "promo",
    params((
        "Idempotency-Key" = Option<String>, Header,
        description = "8 to 255 visible ASCII characters; a retry with the same key and body returns the first answer."
    )),
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created.", body = SignupResponse),
        family::PublicJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    state.check_rate(state.signup_limiter.as_ref(), peer, &headers)?;
    let input: SignupRequest = read_json(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
        pb::SignupRequest {
            email: input.email,
            package: input.package,
            promo_code: input.promo_code.unwrap_or_default(),
            lang: input.lang.unwrap_or_default(),
        },
        &headers,
        &[Forward::IdempotencyKey],
    )?;
    let s = state.promo_client().signup(req).await?.into_inner();
    state.live.invalidate_code(&s.promo_code);
    Ok(json(
        StatusCode::CREATED,
        &SignupResponse {
            success: s.success,
            user_id: s.user_id,
            email: s.email,
            package: s.package,
            base_price_dzd: s.base_price_dzd,
            price_dzd: s.price_dzd,
            discount_percent: s.discount_percent,
            discount_ends_at: non_empty(s.discount_ends_at),
            promo_code: non_empty(s.promo_code),
            api_key: s.api_key,
            created_at: s.created_at,
        },
    ))
}
