//! `/api/promo/*`: the landing page's JSON and the operator's admin routes, translated to
//! promo-service RPCs. Field names follow the REST contract in PRODUCT.md; everything else
//! (validation, French messages, admin token check, idempotency) is promo-service's.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::AppState;
use crate::backend::{self, Forward};
use crate::edge::StreamSlot;
use crate::error::ApiError;
use crate::extract::read_json;
use crate::live;
use crate::ratelimit::{IpLimiter, client_ip};

type ApiResult = Result<Response, ApiError>;

fn client(state: &AppState) -> PromoServiceClient<Channel> {
    PromoServiceClient::new(state.promo.channel())
        .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
}

/// Serializes `value` as the JSON answer.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a response");
            ApiError::new(ErrorCode::Internal, "Erreur interne.").into_response()
        }
    }
}

fn check_rate(
    state: &AppState,
    limiter: Option<&IpLimiter>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    let ip = client_ip(peer, headers, state.config.client_ip_header.as_ref());
    limiter.check(ip).map_err(|wait| {
        state.metrics.rate_limited.inc();
        ApiError::new(
            ErrorCode::RateLimited,
            format!("Trop de requêtes, réessayez dans {wait} s."),
        )
        .with_retry_after(wait.max(1))
    })
}

fn path_param(
    param: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    param
        .map(|Path(p)| p)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))
}

// ---------------------------------------------------------------------------------------------
// Public routes

#[derive(Serialize)]
struct HealthOut {
    status: String,
    promo_codes_active: u32,
    total_clients: u64,
}

/// `GET /api/promo/health`
pub async fn health(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::GetSummaryRequest {}, &headers, &[])?;
    let s = client(&state).get_summary(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &HealthOut {
            status: s.status,
            promo_codes_active: s.promo_codes_active,
            total_clients: s.total_clients,
        },
    ))
}

#[derive(Serialize)]
struct PackageOut {
    id: String,
    name: String,
    monthly_price_dzd: u64,
    tokens_per_month: u64,
    requests_per_minute: u32,
    allowed_models: Vec<String>,
}

/// `GET /api/promo/packages`
pub async fn packages(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::ListPackagesRequest {}, &headers, &[])?;
    let list = client(&state).list_packages(req).await?.into_inner();
    #[derive(Serialize)]
    struct Out {
        packages: Vec<PackageOut>,
    }
    Ok(json(
        StatusCode::OK,
        &Out {
            packages: list
                .packages
                .into_iter()
                .map(|p| PackageOut {
                    id: p.id,
                    name: p.name,
                    monthly_price_dzd: p.monthly_price_dzd,
                    tokens_per_month: p.tokens_per_month,
                    requests_per_minute: p.requests_per_minute,
                    allowed_models: p.allowed_models,
                })
                .collect(),
        },
    ))
}

#[derive(Serialize)]
struct RemainingOut {
    code: String,
    remaining: u32,
    total: u32,
    percent_filled: f64,
    unlimited: bool,
}

impl From<pb::Remaining> for RemainingOut {
    fn from(r: pb::Remaining) -> Self {
        RemainingOut {
            code: r.code,
            remaining: r.remaining,
            total: r.total,
            percent_filled: r.percent_filled,
            unlimited: r.unlimited,
        }
    }
}

/// `GET /api/promo/{code}/remaining`
pub async fn remaining(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let code = path_param(code)?;
    let cached = state.config.remaining_cache;
    if cached && let Some(body) = state.live.get(&live::key(&code)) {
        return Ok(cached_json(body));
    }
    let req = backend::request(pb::GetRemainingRequest { code }, &headers, &[])?;
    let r = match client(&state).get_remaining(req).await {
        Ok(r) => r.into_inner(),
        Err(status) => return Err(probe_refusal(&state, peer, &headers, status.into())),
    };
    if cached {
        // Watch under the canonical name promo-service answered with.
        state.live.watch(live::key(&r.code));
    }
    Ok(json(StatusCode::OK, &RemainingOut::from(r)))
}

/// An unknown code answered to `/remaining` (or its stream) counts against the client's
/// code-guessing budget, the one `validate` draws from: past it, the client learns nothing more
/// about which codes exist (429 instead of 404). Known codes cost nothing, so polling the
/// counter is never limited.
fn probe_refusal(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    err: ApiError,
) -> ApiError {
    if err.error.code != ErrorCode::PromoUnknown {
        return err;
    }
    match check_rate(state, state.validate_limiter.as_ref(), peer, headers) {
        Ok(()) => err,
        Err(limited) => limited,
    }
}

pub(crate) fn encode_remaining(r: pb::Remaining) -> bytes::Bytes {
    serde_json::to_vec(&RemainingOut::from(r))
        .unwrap_or_default()
        .into()
}

fn cached_json(body: bytes::Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-iaf-cache", HeaderValue::from_static("hit"));
    response
}

/// A write through this gateway changed a code's count or limit: polls of it bypass the cache
/// for a moment (see `live`).
fn invalidate_remaining(state: &AppState, code: &str) {
    if !code.is_empty() {
        state.live.invalidate(&live::key(code));
    }
}

/// `GET /api/promo/{code}/remaining/stream`: one `remaining` event now, then one per change.
///
/// Every viewer of a code shares the gateway's one upstream stream of it (see `live`). The first
/// value is awaited before answering, so an unknown code is a plain 404 rather than an event
/// stream that fails. The stream ends when the client goes away, when the upstream stream ends
/// (the browser reconnects after the `retry:` delay the first event announced, jittered per
/// viewer so a crowd does not come back at once), or on shutdown.
pub async fn remaining_stream(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let code = path_param(code)?;
    let slot = StreamSlot::acquire(&state, crate::error::Flavor::Rest)?;
    let mut rx = state
        .live
        .subscribe(live::key(&code), state.config.request_timeout)
        .await
        .map_err(|e| probe_refusal(&state, peer, &headers, e))?;
    let mut stop = state.stop.clone();
    let retry = reconnect_delay();
    let events = async_stream::stream! {
        let _slot = slot;
        let mut last: Option<bytes::Bytes> = None;
        let mut retry = Some(retry);
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let feed = rx.borrow_and_update().clone();
                    if let live::Feed::Value(body) = feed
                        && last.as_ref() != Some(&body)
                    {
                        let mut event = Event::default()
                            .event("remaining")
                            .data(String::from_utf8_lossy(&body));
                        if let Some(retry) = retry.take() {
                            event = event.retry(retry);
                        }
                        last = Some(body);
                        yield Ok::<Event, Infallible>(event);
                    }
                }
                () = iafactory::shutdown::stopped(&mut stop) => break,
            }
        }
    };
    let mut response = sse(events, state.config.sse_keep_alive);
    response
        .headers_mut()
        .insert("x-iaf-cache", HeaderValue::from_static("shared"));
    Ok(response)
}

/// The reconnection delay announced to one viewer: 2 to 12 s, spread at random so that viewers
/// whose streams end together (a restart) come back spread over ten seconds.
fn reconnect_delay() -> Duration {
    Duration::from_millis(rand::random_range(2_000..12_000))
}

/// An SSE answer with keep-alive comments and proxy buffering disabled.
pub fn sse<S>(events: S, keep_alive: Duration) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateIn {
    code: String,
    #[serde(default)]
    package: Option<String>,
}

#[derive(Serialize)]
struct ValidateOut {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_months: Option<u32>,
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<u32>,
}

/// The REST name of a refusal reason (the enum value without its prefix, in snake_case).
pub fn reason_name(reason: i32) -> &'static str {
    match pb::RefusalReason::try_from(reason) {
        Ok(pb::RefusalReason::Unknown) => "unknown",
        Ok(pb::RefusalReason::Inactive) => "inactive",
        Ok(pb::RefusalReason::NotYetValid) => "not_yet_valid",
        Ok(pb::RefusalReason::Expired) => "expired",
        Ok(pb::RefusalReason::Exhausted) => "exhausted",
        Ok(pb::RefusalReason::NotForPackage) => "not_for_package",
        Ok(pb::RefusalReason::Unspecified) | Err(_) => "unspecified",
    }
}

/// `POST /api/promo/validate` — a refused code is data (200, `valid:false`, `reason`).
pub async fn validate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    check_rate(&state, state.validate_limiter.as_ref(), peer, &headers)?;
    let input: ValidateIn = read_json(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
        pb::ValidateCodeRequest {
            code: input.code,
            package: input.package.unwrap_or_default(),
        },
        &headers,
        &[],
    )?;
    let v = client(&state).validate_code(req).await?.into_inner();
    let out = if v.valid {
        ValidateOut {
            valid: true,
            reason: None,
            discount_percent: Some(v.discount_percent),
            duration_months: Some(v.duration_months),
            message: v.message,
            code: v.code,
            remaining: v.remaining,
        }
    } else {
        ValidateOut {
            valid: false,
            reason: Some(reason_name(v.reason)),
            discount_percent: None,
            duration_months: None,
            message: v.message,
            code: v.code,
            remaining: v.remaining,
        }
    };
    Ok(json(StatusCode::OK, &out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupIn {
    email: String,
    package: String,
    #[serde(default)]
    promo_code: Option<String>,
}

#[derive(Serialize)]
struct SignupOut {
    success: bool,
    user_id: String,
    email: String,
    package: String,
    base_price_dzd: u64,
    price_dzd: u64,
    discount_percent: u32,
    discount_ends_at: Option<String>,
    promo_code: Option<String>,
    api_key: String,
    created_at: String,
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// `POST /api/promo/signup` — 201; `Idempotency-Key` is passed through to promo-service.
pub async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    check_rate(&state, state.signup_limiter.as_ref(), peer, &headers)?;
    let input: SignupIn = read_json(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
        pb::SignupRequest {
            email: input.email,
            package: input.package,
            promo_code: input.promo_code.unwrap_or_default(),
        },
        &headers,
        &[Forward::IdempotencyKey],
    )?;
    let s = client(&state).signup(req).await?.into_inner();
    invalidate_remaining(&state, &s.promo_code);
    Ok(json(
        StatusCode::CREATED,
        &SignupOut {
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

// ---------------------------------------------------------------------------------------------
// Admin routes: the caller's `Authorization` is forwarded; promo-service checks it.

#[derive(Serialize)]
struct CodeOut {
    code: String,
    description: String,
    active: bool,
    max_redemptions: Option<u32>,
    used: u32,
    remaining: Option<u32>,
    duration_months: u32,
    valid_from: String,
    valid_until: Option<String>,
    discounts: BTreeMap<String, u32>,
    created_at: String,
}

impl From<pb::PromoCode> for CodeOut {
    fn from(c: pb::PromoCode) -> Self {
        CodeOut {
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

#[derive(Serialize)]
struct StatsOut {
    total_signups: u64,
    launch30_used: u32,
    launch30_remaining: u32,
    revenue_monthly_dzd: u64,
    breakdown: BTreeMap<String, u64>,
    clients: Vec<String>,
    codes: Vec<CodeOut>,
}

/// `GET /api/promo/stats` (admin)
pub async fn stats(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::GetStatsRequest {}, &headers, &[Forward::Authorization])?;
    let s = client(&state).get_stats(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &StatsOut {
            total_signups: s.total_signups,
            launch30_used: s.launch30_used,
            launch30_remaining: s.launch30_remaining,
            revenue_monthly_dzd: s.revenue_monthly_dzd,
            breakdown: s.breakdown.into_iter().collect(),
            clients: s.clients,
            codes: s.codes.into_iter().map(CodeOut::from).collect(),
        },
    ))
}

#[derive(Serialize)]
struct CodesOut {
    codes: Vec<CodeOut>,
}

/// `GET /api/promo/codes` (admin)
pub async fn list_codes(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::ListCodesRequest {}, &headers, &[Forward::Authorization])?;
    let list = client(&state).list_codes(req).await?.into_inner();
    Ok(json(
        StatusCode::OK,
        &CodesOut {
            codes: list.codes.into_iter().map(CodeOut::from).collect(),
        },
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCodeIn {
    code: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    max_redemptions: Option<u32>,
    duration_months: u32,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_until: Option<String>,
    discounts: BTreeMap<String, u32>,
}

/// `POST /api/promo/codes` (admin) — 201 with the code.
pub async fn create_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    // The token is checked before the body is even decoded: an anonymous caller learns nothing
    // about the expected shape. promo-service checks it again (it is the authority).
    require_bearer(&headers)?;
    let input: CreateCodeIn = read_json(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
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
        &[Forward::Authorization],
    )?;
    let c = client(&state).create_code(req).await?.into_inner();
    Ok(json(StatusCode::CREATED, &CodeOut::from(c)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCodeIn {
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
    #[serde(default)]
    valid_until: Option<String>,
    #[serde(default)]
    discounts: Option<BTreeMap<String, u32>>,
    #[serde(default)]
    duration_months: Option<u32>,
}

/// `PATCH /api/promo/codes/{code}` (admin) — deactivate, change the limit, dates or discounts.
pub async fn update_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> ApiResult {
    let code = path_param(code)?;
    require_bearer(&headers)?;
    let input: UpdateCodeIn = read_json(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
        pb::UpdateCodeRequest {
            code,
            active: input.active,
            max_redemptions: input.max_redemptions,
            unlimited: input.unlimited,
            description: input.description,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            discounts: input.discounts.unwrap_or_default().into_iter().collect(),
            duration_months: input.duration_months,
        },
        &headers,
        &[Forward::Authorization],
    )?;
    let c = client(&state).update_code(req).await?.into_inner();
    invalidate_remaining(&state, &c.code);
    Ok(json(StatusCode::OK, &CodeOut::from(c)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupsQuery {
    #[serde(default)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
}

#[derive(Serialize)]
struct SignupRow {
    user_id: String,
    email: String,
    package: String,
    base_price_dzd: u64,
    price_dzd: u64,
    discount_percent: u32,
    promo_code: Option<String>,
    discount_ends_at: Option<String>,
    created_at: String,
    api_key_prefix: String,
    api_key_revoked: bool,
}

/// `GET /api/promo/signups?page_size=&page_token=` (admin)
pub async fn list_signups(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<SignupsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))?;
    let req = backend::request(
        pb::ListSignupsRequest {
            page_size: q.page_size.unwrap_or(0),
            page_token: q.page_token.unwrap_or_default(),
        },
        &headers,
        &[Forward::Authorization],
    )?;
    let list = client(&state).list_signups(req).await?.into_inner();
    #[derive(Serialize)]
    struct Out {
        signups: Vec<SignupRow>,
        next_page_token: Option<String>,
        total: u64,
    }
    Ok(json(
        StatusCode::OK,
        &Out {
            signups: list
                .signups
                .into_iter()
                .map(|s| SignupRow {
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

/// `POST /api/promo/signups/{user_id}/revoke-key` (admin)
pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    user_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let user_id = path_param(user_id)?;
    let req = backend::request(
        pb::RevokeApiKeyRequest { user_id },
        &headers,
        &[Forward::Authorization],
    )?;
    let r = client(&state).revoke_api_key(req).await?.into_inner();
    #[derive(Serialize)]
    struct Out {
        revoked: bool,
    }
    Ok(json(StatusCode::OK, &Out { revoked: r.revoked }))
}

#[derive(Deserialize)]
pub struct OutboxQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Serialize)]
struct OutboxRow {
    id: String,
    kind: String,
    recipient: String,
    status: &'static str,
    attempts: u32,
    last_error: Option<String>,
    created_at: String,
    next_attempt_at: Option<String>,
    sent_at: Option<String>,
    user_id: String,
}

fn outbox_row(m: pb::OutboxMessage) -> OutboxRow {
    let status = match m.status() {
        pb::OutboxStatus::Pending => "pending",
        pb::OutboxStatus::Sent => "sent",
        pb::OutboxStatus::Dead => "dead",
        pb::OutboxStatus::Unspecified => "unknown",
    };
    OutboxRow {
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

/// `GET /api/promo/outbox?status=dead&limit=50` (admin): signup e-mails and their delivery state.
pub async fn list_outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<OutboxQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = query.map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))?;
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
    let req = backend::request(
        pb::ListOutboxRequest {
            status: status.into(),
            limit: q.limit.unwrap_or(0),
        },
        &headers,
        &[Forward::Authorization],
    )?;
    let list = client(&state).list_outbox(req).await?.into_inner();
    #[derive(Serialize)]
    struct Out {
        messages: Vec<OutboxRow>,
    }
    Ok(json(
        StatusCode::OK,
        &Out {
            messages: list.messages.into_iter().map(outbox_row).collect(),
        },
    ))
}

/// `POST /api/promo/outbox/{id}/retry` (admin): re-queues a dead e-mail for immediate delivery.
pub async fn retry_outbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let id = path_param(id)?;
    let req = backend::request(
        pb::RetryOutboxRequest { id },
        &headers,
        &[Forward::Authorization],
    )?;
    let m = client(&state).retry_outbox(req).await?.into_inner();
    Ok(json(StatusCode::OK, &outbox_row(m)))
}

/// Refuses a request without any `Authorization: Bearer …` before reading its body. Whether the
/// token is the right one is promo-service's decision.
fn require_bearer(headers: &HeaderMap) -> Result<(), ApiError> {
    let present = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
        });
    if present {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Jeton d'administration manquant (Authorization: Bearer …).",
        ))
    }
}
