//! The operator's admin routes under `/api/promo`: statistics, promo codes, signups, the e-mail
//! outbox. The caller's `Authorization` is forwarded; promo-service checks it.

use std::collections::{BTreeMap, HashMap};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use http::{HeaderMap, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_token::{self, require_bearer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{path_param, query_param, read_json};
use crate::openapi::{family, rest};
use crate::respond::{json, non_empty};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(list_codes, create_code))
        .routes(routes!(update_code))
        .routes(routes!(list_signups))
        .routes(routes!(revoke_key))
        .routes(routes!(set_suspension))
        .routes(routes!(list_outbox))
        .routes(routes!(retry_outbox))
}

#[derive(Serialize, ToSchema)]
pub struct PromoCode {
    code: String,
    description: String,
    active: bool,
    #[schema(required = true)]
    max_redemptions: Option<u32>,
    used: u32,
    #[schema(required = true)]
    remaining: Option<u32>,
    duration_months: u32,
    valid_from: String,
    #[schema(required = true)]
    valid_until: Option<String>,
    discounts: BTreeMap<String, u32>,
    created_at: String,
}

impl From<pb::PromoCode> for PromoCode {
    fn from(c: pb::PromoCode) -> Self {
        PromoCode {
            remaining: c.max_redemptions.map(|m| m.saturating_sub(c.used)),
            code: c.code,
            description: c.description,
            active: c.active,
            max_redemptions: c.max_redemptions,
            used: c.used,
            duration_months: c.duration_months,
            valid_from: c.valid_from,
            valid_until: c.valid_until,
            discounts: c.discounts.into_iter().collect(),
            created_at: c.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Stats {
    total_signups: u64,
    launch30_used: u32,
    launch30_remaining: u32,
    revenue_monthly_dzd: u64,
    breakdown: BTreeMap<String, u64>,
    clients: Vec<String>,
    codes: Vec<PromoCode>,
}

/// Signups, revenue, breakdown, customer e-mails and code usage (admin).
#[utoipa::path(
    get,
    path = "/api/promo/stats",
    tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Statistics.", body = Stats),
        family::AdminToken,
    ),
)]
pub async fn stats(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = admin_token::request(pb::GetStatsRequest {}, &headers)?;
    let s = state.promo_client().get_stats(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &Stats {
            total_signups: s.total_signups,
            launch30_used: s.launch30_used,
            launch30_remaining: s.launch30_remaining,
            revenue_monthly_dzd: s.revenue_monthly_dzd,
            breakdown: s.breakdown.into_iter().collect(),
            clients: s.clients,
            codes: s.codes.into_iter().map(PromoCode::from).collect(),
        },
    ))
}

#[derive(Serialize, ToSchema)]
pub struct Codes {
    codes: Vec<PromoCode>,
}

/// Every promo code with its usage (admin).
#[utoipa::path(
    get,
    path = "/api/promo/codes",
    tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Codes.", body = Codes),
        family::AdminToken,
    ),
)]
pub async fn list_codes(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = admin_token::request(pb::ListCodesRequest {}, &headers)?;
    let list = state.promo_client().list_codes(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &Codes {
            codes: list.codes.into_iter().map(PromoCode::from).collect(),
        },
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCodeRequest {
    #[schema(pattern = "^[A-Za-z0-9_-]{3,32}$")]
    code: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    max_redemptions: Option<u32>,
    #[schema(minimum = 1, maximum = 120)]
    duration_months: u32,
    /// RFC 3339; empty or absent: now.
    #[serde(default)]
    valid_from: Option<String>,
    /// RFC 3339; empty or absent: never.
    #[serde(default)]
    valid_until: Option<String>,
    discounts: BTreeMap<String, u32>,
}

/// Creates a promo code (admin).
#[utoipa::path(
    post,
    path = "/api/promo/codes",
    tag = "admin",
    security(("adminToken" = [])),
    request_body = CreateCodeRequest,
    responses(
        (status = 201, description = "Created.", body = PromoCode),
        family::AdminJson,
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn create_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    // The token is checked before the body is even decoded: an anonymous caller learns nothing
    // about the expected shape. promo-service checks it again (it is the authority).
    let input: CreateCodeRequest =
        admin_token::read_json(&headers, body, state.config.body_limit).await?;
    let req = admin_token::request(
        pb::CreateCodeRequest {
            code: input.code,
            description: input.description.unwrap_or_default(),
            max_redemptions: input.max_redemptions,
            duration_months: input.duration_months,
            valid_from: input.valid_from.unwrap_or_default(),
            valid_until: input.valid_until.unwrap_or_default(),
            discounts: input.discounts.into_iter().collect(),
        },
        &headers,
    )?;
    let c = state.promo_client().create_code(req).await?.into_inner();
    Ok(json(StatusCode::CREATED, &PromoCode::from(c)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCodeRequest {
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    max_redemptions: Option<u32>,
    #[serde(default)]
    unlimited: Option<bool>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    valid_from: Option<String>,
    /// Empty string removes the end date.
    #[serde(default)]
    valid_until: Option<String>,
    /// A merge: each listed package gets the given percentage, `null` removes its discount,
    /// packages not listed keep theirs (a code keeps at least one discount).
    #[serde(default)]
    discounts: Option<BTreeMap<String, Option<u32>>>,
    #[serde(default)]
    duration_months: Option<u32>,
}

impl UpdateCodeRequest {
    /// The RPC's message for `code`: discounts set to a percentage go to `discounts`, those
    /// set to null to `remove_discounts` (the merge is promo-service's).
    pub(crate) fn into_message(self, code: String) -> pb::UpdateCodeRequest {
        let (mut discounts, mut remove_discounts) = (HashMap::new(), Vec::new());
        for (package, percent) in self.discounts.unwrap_or_default() {
            match percent {
                Some(p) => {
                    discounts.insert(package, p);
                }
                None => remove_discounts.push(package),
            }
        }
        pb::UpdateCodeRequest {
            code,
            active: self.active,
            max_redemptions: self.max_redemptions,
            unlimited: self.unlimited,
            description: self.description,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            discounts,
            duration_months: self.duration_months,
            remove_discounts,
        }
    }
}

/// Changes a promo code: activate/deactivate, limit, dates, discounts (admin).
#[utoipa::path(
    patch,
    path = "/api/promo/codes/{code}",
    tag = "admin",
    security(("adminToken" = [])),
    params(("code" = String, Path, description = "Promo code, any case (`launch30` = `LAUNCH30`).")),
    request_body = UpdateCodeRequest,
    responses(
        (status = 200, description = "Updated.", body = PromoCode),
        family::AdminJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn update_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> ApiResult {
    let code = path_param(code)?;
    let input: UpdateCodeRequest =
        admin_token::read_json(&headers, body, state.config.body_limit).await?;
    let req = admin_token::request(input.into_message(code), &headers)?;
    let c = state.promo_client().update_code(req).await?.into_inner();
    state.live.invalidate_code(&c.code);
    Ok(json(StatusCode::OK, &PromoCode::from(c)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SignupsQuery {
    /// 1 to 500; 0 or absent: 50.
    #[serde(default)]
    #[param(minimum = 0, maximum = 500)]
    page_size: Option<u32>,
    /// next_page_token of the previous page.
    #[serde(default)]
    page_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Signups {
    signups: Vec<Signup>,
    #[schema(required = true)]
    next_page_token: Option<String>,
    total: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Signup {
    user_id: String,
    email: String,
    package: String,
    base_price_dzd: u64,
    price_dzd: u64,
    discount_percent: u32,
    #[schema(required = true)]
    promo_code: Option<String>,
    #[schema(required = true)]
    discount_ends_at: Option<String>,
    created_at: String,
    api_key_prefix: String,
    api_key_revoked: bool,
}

/// Signups, newest first, paginated (admin). Never shows API keys.
#[utoipa::path(
    get,
    path = "/api/promo/signups",
    tag = "admin",
    security(("adminToken" = [])),
    params(SignupsQuery),
    responses(
        (status = 200, description = "A page of signups.", body = Signups),
        family::AdminToken,
    ),
)]
pub async fn list_signups(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SignupsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query_param(query)?;
    let req = admin_token::request(
        pb::ListSignupsRequest {
            page_size: q.page_size.unwrap_or(0),
            page_token: q.page_token.unwrap_or_default(),
        },
        &headers,
    )?;
    let list = state.promo_client().list_signups(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &Signups {
            signups: list
                .signups
                .into_iter()
                .map(|s| Signup {
                    user_id: s.user_id,
                    email: s.email,
                    package: s.package,
                    base_price_dzd: s.base_price_dzd,
                    price_dzd: s.price_dzd,
                    discount_percent: s.discount_percent,
                    promo_code: non_empty(s.promo_code),
                    discount_ends_at: non_empty(s.discount_ends_at),
                    created_at: s.created_at,
                    api_key_prefix: s.api_key_prefix,
                    api_key_revoked: s.api_key_revoked,
                })
                .collect(),
            next_page_token: non_empty(list.next_page_token),
            total: list.total,
        },
    ))
}

/// `revoked` is false when the key was already revoked.
#[derive(Serialize, ToSchema)]
pub struct Revoked {
    revoked: bool,
}

/// Revokes a customer's API key (admin).
#[utoipa::path(
    post,
    path = "/api/promo/signups/{user_id}/revoke-key",
    tag = "admin",
    security(("adminToken" = [])),
    params(("user_id" = String, Path, description = "Customer id (`usr_…`).")),
    responses(
        (status = 200, description = "revoked is false when the key was already revoked.", body = Revoked),
        family::AdminToken,
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    user_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let user_id = path_param(user_id)?;
    let req = admin_token::request(pb::RevokeApiKeyRequest { user_id }, &headers)?;
    let r = state.promo_client().revoke_api_key(req).await?.into_inner();
    Ok(json(StatusCode::OK, &Revoked { revoked: r.revoked }))
}

/// Suspends (`true`) or reactivates (`false`) an account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionRequest {
    suspended: bool,
}

/// The account's state now; `changed` is false when it already was in that state.
#[derive(Serialize, ToSchema)]
pub struct Suspension {
    suspended: bool,
    changed: bool,
}

/// Suspends or reactivates a customer's account (admin). While suspended, none of the customer's
/// keys authenticates (refused on `/v1` within llm-gateway's key cache window) and no key can be
/// created or rotated; the customer can still sign in and sees the suspension.
#[utoipa::path(
    put,
    path = "/api/promo/signups/{user_id}/suspension",
    tag = "admin",
    security(("adminToken" = [])),
    params(("user_id" = String, Path, description = "Customer id (`usr_…`).")),
    request_body = SuspensionRequest,
    responses(
        (status = 200, description = "changed is false when the account already was in that state.", body = Suspension),
        family::AdminJson,
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn set_suspension(
    State(state): State<AppState>,
    headers: HeaderMap,
    user_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> ApiResult {
    // As for every admin write: the token before the body is decoded.
    require_bearer(&headers)?;
    let user_id = path_param(user_id)?;
    let input: SuspensionRequest = read_json(&headers, body, state.config.body_limit).await?;
    let req = admin_token::request(
        pb::SetAccountSuspendedRequest {
            user_id,
            suspended: input.suspended,
        },
        &headers,
    )?;
    let r = state
        .promo_client()
        .set_account_suspended(req)
        .await?
        .into_inner();
    Ok(json(
        StatusCode::OK,
        &Suspension {
            suspended: r.suspended,
            changed: r.changed,
        },
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// pending, sent or dead; absent: all.
    #[serde(default)]
    #[param(inline, value_type = Option<OutboxStatusFilter>)]
    status: Option<String>,
    /// 1 to 500; 0 or absent: 50.
    #[serde(default)]
    #[param(minimum = 0, maximum = 500)]
    limit: Option<u32>,
}

// The states a list can be filtered on (documentation only: the parameter is read as a string
// so a wrong one gets its own message).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OutboxStatusFilter {
    Pending,
    Sent,
    Dead,
}

/// An e-mail's delivery state (`unknown` only if promo-service answers a state this gateway
/// does not know).
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Dead,
    Unknown,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxMessages {
    messages: Vec<OutboxMessage>,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxMessage {
    id: String,
    #[schema(inline, value_type = OutboxKind)]
    kind: String,
    recipient: String,
    #[schema(inline)]
    status: OutboxStatus,
    attempts: u32,
    #[schema(required = true)]
    last_error: Option<String>,
    created_at: String,
    #[schema(required = true)]
    next_attempt_at: Option<String>,
    #[schema(required = true)]
    sent_at: Option<String>,
    user_id: String,
}

// The kinds of e-mail promo-service sends (documentation only: the field is its string). A copy
// of promo-service's `outbox::ALL_KINDS` (gateway-rest does not link promo-service): the test
// below fails when the two lists differ.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OutboxKind {
    CustomerConfirmation,
    OperatorNotification,
    SignInLink,
    KeyCreated,
    KeyRevoked,
    PackageChanged,
    DiscountEnding,
    QuotaLevel,
    InvoiceIssued,
    PaymentReminder,
    PaymentOverdue,
    SubscriptionSuspended,
    BudgetAlert,
    Campaign,
    WaitlistConfirm,
}

fn outbox_message(m: pb::OutboxMessage) -> OutboxMessage {
    let status = match m.status() {
        pb::OutboxStatus::Pending => OutboxStatus::Pending,
        pb::OutboxStatus::Sent => OutboxStatus::Sent,
        pb::OutboxStatus::Dead => OutboxStatus::Dead,
        pb::OutboxStatus::Unspecified => OutboxStatus::Unknown,
    };
    OutboxMessage {
        id: m.id,
        kind: m.kind,
        recipient: m.recipient,
        status,
        attempts: m.attempts,
        last_error: non_empty(m.last_error),
        created_at: m.created_at,
        next_attempt_at: non_empty(m.next_attempt_at),
        sent_at: non_empty(m.sent_at),
        user_id: m.user_id,
    }
}

/// Signup e-mails of the transactional outbox and their delivery state, newest first (admin).
#[utoipa::path(
    get,
    path = "/api/promo/outbox",
    tag = "admin",
    security(("adminToken" = [])),
    params(OutboxQuery),
    responses(
        (status = 200, description = "E-mails.", body = OutboxMessages),
        family::AdminToken,
    ),
)]
pub async fn list_outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let q = query_param(query)?;
    let status = match q.status.as_deref() {
        None | Some("") => pb::OutboxStatus::Unspecified,
        Some("pending") => pb::OutboxStatus::Pending,
        Some("sent") => pb::OutboxStatus::Sent,
        Some("dead") => pb::OutboxStatus::Dead,
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "status vaut pending, sent ou dead.",
            ));
        }
    };
    let req = admin_token::request(
        pb::ListOutboxRequest {
            status: status.into(),
            limit: q.limit.unwrap_or(0),
        },
        &headers,
    )?;
    let list = state.promo_client().list_outbox(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &OutboxMessages {
            messages: list.messages.into_iter().map(outbox_message).collect(),
        },
    ))
}

/// Re-queues a dead e-mail for immediate delivery with a fresh attempt budget (admin).
#[utoipa::path(
    post,
    path = "/api/promo/outbox/{id}/retry",
    tag = "admin",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "E-mail id (`msg_…`).")),
    responses(
        (status = 200, description = "Re-queued.", body = OutboxMessage),
        family::AdminToken,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn retry_outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let id = path_param(id)?;
    let req = admin_token::request(pb::RetryOutboxRequest { id }, &headers)?;
    let m = state.promo_client().retry_outbox(req).await?.into_inner();
    Ok(json(StatusCode::OK, &outbox_message(m)))
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    /// The documented outbox kinds are exactly the ones promo-service writes: a kind added there
    /// and not here would make every answer listing it violate the document.
    #[test]
    fn documented_outbox_kinds_are_promo_services() {
        let RefOr::T(Schema::Object(schema)) = super::OutboxKind::schema() else {
            panic!("OutboxKind is documented as a string enum")
        };
        let documented: Vec<String> = schema
            .enum_values
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect();
        let written: Vec<String> = promo_service::outbox::ALL_KINDS
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        assert_eq!(documented, written);
    }
}
