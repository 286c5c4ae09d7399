//! The customer account (`/compte/`): its JSON under `/api/compte` and its pages. Every
//! operation is a promo-service RPC (the rules, the session store and the CSRF check are
//! there); this room only carries the session between the browser's cookie and the RPC's
//! metadata.
//!
//! The cookie: `iaf_session`, with the attributes of [`crate::web_session`]. A successful
//! sign-in always sets a new session token made by promo-service: a cookie planted beforehand
//! never becomes a session (no fixation).
//!
//! CSRF: every state-changing call needs `X-CSRF-Token` (the session's token, read by the page
//! from `GET /api/compte`), checked by promo-service; and a request whose `Origin` names
//! another host is refused here before any RPC (this also covers sign-in, where no session
//! exists yet).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::response::Response;
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend;
use crate::error::{ApiError, ApiResult};
use crate::extract::{path_param, query_param};
use crate::openapi::{family, rest};
use crate::respond::{json, non_empty};
use crate::routes::site;
use crate::state::AppState;
pub(crate) use crate::web_session::ok;
use crate::web_session::{self, CUSTOMER, private, read_change};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link))
        .routes(routes!(open_session, close_session))
        .routes(routes!(get_account))
        .routes(routes!(usage))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(rotate_key))
        .routes(routes!(preview_change))
        .routes(routes!(change_package))
        .routes(routes!(cancel))
        // A redirect, not an operation: left out of the document.
        .route("/compte", axum::routing::get(page_redirect))
        .routes(routes!(page))
        .routes(routes!(sign_in_page))
        .routes(routes!(page_file))
}

/// A promo-service request in the customer's session; `change`: with the CSRF token too.
pub(crate) fn in_session<T>(
    message: T,
    headers: &HeaderMap,
    change: bool,
) -> Result<tonic::Request<T>, ApiError> {
    CUSTOMER.request(message, headers, change)
}

// ---------------------------------------------------------------------------------------------
// Sign-in and sessions.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    #[schema(format = Email, max_length = 254, examples("a@b.dz"))]
    email: String,
}

#[derive(Serialize, ToSchema)]
pub struct Message {
    /// The same sentence whether or not an account exists for the address.
    message: String,
}

/// Sends a one-time sign-in link to the address if it has an account (same answer either way).
#[utoipa::path(
    post,
    path = "/api/compte/lien",
    tag = "compte",
    request_body = LinkRequest,
    responses(
        (status = 202, description = "Link sent if the account exists.", body = Message),
        family::PublicJson,
        (status = 403, response = inline(rest::Forbidden)),
    ),
)]
pub async fn request_link(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: LinkRequest = read_change(&headers, body, state.config.body_limit).await?;
    let mut req = state.internal_request(
        pb::RequestSignInLinkRequest { email: input.email },
        &headers,
        "sign-in links cannot be sent",
        "Connexion momentanément indisponible.",
    )?;
    state.tag_client_ip(&mut req, peer, &headers);
    let answer = state
        .promo_client()
        .request_sign_in_link(req)
        .await?
        .into_inner();
    Ok(private(json(
        StatusCode::ACCEPTED,
        &Message {
            message: answer.message,
        },
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSession {
    /// The `jeton` of the e-mailed link.
    #[schema(max_length = 64)]
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionOpened {
    /// Send it as `X-CSRF-Token` on state-changing calls.
    csrf_token: String,
    /// RFC 3339 absolute end of the session.
    expires_at: String,
}

/// Trades a sign-in link's token for a session cookie (a new one, whatever cookie was sent).
#[utoipa::path(
    post,
    path = "/api/compte/session",
    tag = "compte",
    request_body = OpenSession,
    responses(
        (status = 200, description = "Signed in; the session cookie is set.", body = SessionOpened),
        family::SessionJson,
    ),
)]
pub async fn open_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: OpenSession = read_change(&headers, body, state.config.body_limit).await?;
    let req = backend::request(
        pb::ConsumeSignInLinkRequest { token: input.token },
        &headers,
        &[],
    )?;
    let grant = state
        .promo_client()
        .consume_sign_in_link(req)
        .await?
        .into_inner();
    let max_age = web_session::max_age(&grant.expires_at);
    let mut response = private(json(
        StatusCode::OK,
        &SessionOpened {
            csrf_token: grant.csrf_token,
            expires_at: grant.expires_at,
        },
    ));
    if let Some(c) = CUSTOMER.set_cookie(&headers, &grant.session_token, max_age) {
        response.headers_mut().insert(SET_COOKIE, c);
    }
    Ok(response)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CloseQuery {
    /// `true`: end every session of the account, on every device.
    #[serde(default)]
    partout: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Closed {
    ended: u32,
}

/// Signs out (this session, or everywhere with `partout=true`) and clears the cookie.
#[utoipa::path(
    delete,
    path = "/api/compte/session",
    tag = "compte",
    params(CloseQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "Signed out.", body = Closed),
        family::Session,
    ),
)]
pub async fn close_session(
    State(state): State<AppState>,
    query: Result<Query<CloseQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    let req = in_session(
        pb::SignOutRequest {
            everywhere: q.partout,
        },
        &headers,
        true,
    )?;
    let out = state.promo_client().sign_out(req).await?.into_inner();
    let mut response = private(json(StatusCode::OK, &Closed { ended: out.ended }));
    if let Some(c) = CUSTOMER.set_cookie(&headers, "", 0) {
        response.headers_mut().insert(SET_COOKIE, c);
    }
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// The dashboard's facts.

#[derive(Serialize, ToSchema)]
pub struct PackageInfo {
    id: String,
    name: String,
    monthly_price_dzd: u64,
    tokens_per_month: u64,
    requests_per_minute: u32,
}

fn package(p: pb::Package) -> PackageInfo {
    PackageInfo {
        id: p.id,
        name: p.name,
        monthly_price_dzd: p.monthly_price_dzd,
        tokens_per_month: p.tokens_per_month,
        requests_per_minute: p.requests_per_minute,
    }
}

#[derive(Serialize, ToSchema)]
pub struct Account {
    user_id: String,
    email: String,
    package: Option<PackageInfo>,
    /// Monthly price now (discount applied while it lasts).
    price_dzd: u64,
    /// The price once the discount ends.
    base_price_dzd: u64,
    discount_percent: u32,
    promo_code: Option<String>,
    discount_ends_at: Option<String>,
    period_start: String,
    /// Start of the next period (the current one is half-open).
    period_end: String,
    /// The current period's last day, `2026-02-27`, as pages print it.
    period_last_day: String,
    pending_package: Option<String>,
    pending_from: Option<String>,
    cancel_at: Option<String>,
    suspended: bool,
    /// Send it as `X-CSRF-Token` on state-changing calls.
    csrf_token: String,
    created_at: String,
    /// The packages on sale, for the change form.
    packages: Vec<PackageInfo>,
}

fn account(a: pb::Account) -> Account {
    Account {
        user_id: a.user_id,
        email: a.email,
        package: a.package.map(package),
        price_dzd: a.price_dzd,
        base_price_dzd: a.base_price_dzd,
        discount_percent: a.discount_percent,
        promo_code: non_empty(a.promo_code),
        discount_ends_at: non_empty(a.discount_ends_at),
        period_start: a.period_start,
        period_end: a.period_end,
        period_last_day: a.period_last_day,
        pending_package: non_empty(a.pending_package),
        pending_from: non_empty(a.pending_from),
        cancel_at: non_empty(a.cancel_at),
        suspended: a.suspended,
        csrf_token: a.csrf_token,
        created_at: a.created_at,
        packages: a.packages.into_iter().map(package).collect(),
    }
}

/// The signed-in customer's account: package, prices now and after the discount, period.
#[utoipa::path(
    get,
    path = "/api/compte",
    tag = "compte",
    security(("session" = [])),
    responses(
        (status = 200, description = "The account.", body = Account),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn get_account(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = in_session(pb::GetAccountRequest {}, &headers, false)?;
    ok(&account(
        state.promo_client().get_account(req).await?.into_inner(),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ModelUsage {
    model: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// One calendar day's usage (UTC) over the account's keys.
#[derive(Serialize, ToSchema)]
pub struct DayUsage {
    /// `2026-11-30`.
    day: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize, ToSchema)]
pub struct KeyUsage {
    id: String,
    prefix: String,
    name: String,
    requests: u64,
    total_tokens: u64,
    /// RFC 3339 instant of the key's last charged call; null if never used.
    last_used_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Usage {
    /// Calendar month counted, UTC (`2026-11`).
    period: String,
    /// When the monthly token quota resets (first day of next month, 00:00 UTC).
    resets_at: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    /// The package's monthly tokens.
    tokens_per_month: u64,
    tokens_remaining: u64,
    models: Vec<ModelUsage>,
    keys: Vec<KeyUsage>,
    /// Every day of the month from the 1st to today (UTC), in order, zeros included; a call
    /// counts on the day it started. The days add up to the month's figures.
    days: Vec<DayUsage>,
}

/// This month's usage of the account's keys (from llm-gateway), against the package's quota.
//
// The customer's keys come from promo-service in the session (so only the caller's own keys are
// ever asked about); llm-gateway answers for them on gateway-rest's internal token.
#[utoipa::path(
    get,
    path = "/api/compte/consommation",
    tag = "compte",
    security(("session" = [])),
    responses(
        (status = 200, description = "Usage this month.", body = Usage),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn usage(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let mut promo = state.promo_client();
    let account = promo
        .get_account(in_session(pb::GetAccountRequest {}, &headers, false)?)
        .await?
        .into_inner();
    let keys = promo
        .list_keys(in_session(pb::ListKeysRequest {}, &headers, false)?)
        .await?
        .into_inner()
        .keys;
    let u = state
        .keys_usage(&headers, keys.iter().map(|k| k.id.clone()).collect())
        .await?;
    let quota = account.package.map_or(0, |p| p.tokens_per_month);
    ok(&Usage {
        period: u.period,
        resets_at: u.resets_at,
        requests: u.requests,
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.total_tokens,
        tokens_per_month: quota,
        tokens_remaining: quota.saturating_sub(u.total_tokens),
        models: u
            .models
            .into_iter()
            .map(|m| ModelUsage {
                model: m.model,
                requests: m.requests,
                prompt_tokens: m.prompt_tokens,
                completion_tokens: m.completion_tokens,
            })
            .collect(),
        days: u
            .days
            .into_iter()
            .map(|d| DayUsage {
                day: d.day,
                requests: d.requests,
                prompt_tokens: d.prompt_tokens,
                completion_tokens: d.completion_tokens,
                total_tokens: d.total_tokens,
            })
            .collect(),
        keys: keys
            .into_iter()
            .zip(u.keys)
            .map(|(k, used)| KeyUsage {
                id: k.id,
                prefix: k.prefix,
                name: k.name,
                requests: used.requests,
                total_tokens: used.total_tokens,
                last_used_at: non_empty(used.last_used_at),
            })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Keys.

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Grace,
    Revoked,
    Unspecified,
}

#[derive(Serialize, ToSchema)]
pub struct KeyInfo {
    id: String,
    /// First characters of the key, to recognise it.
    prefix: String,
    name: String,
    created_at: String,
    #[schema(inline)]
    status: KeyStatus,
    revoked_at: Option<String>,
    revoked_by: Option<String>,
}

fn key(k: pb::ApiKeyInfo) -> KeyInfo {
    let status = match pb::KeyStatus::try_from(k.status) {
        Ok(pb::KeyStatus::Active) => KeyStatus::Active,
        Ok(pb::KeyStatus::Grace) => KeyStatus::Grace,
        Ok(pb::KeyStatus::Revoked) => KeyStatus::Revoked,
        _ => KeyStatus::Unspecified,
    };
    KeyInfo {
        id: k.id,
        prefix: k.prefix,
        name: k.name,
        created_at: k.created_at,
        status,
        revoked_at: non_empty(k.revoked_at),
        revoked_by: non_empty(k.revoked_by),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Keys {
    keys: Vec<KeyInfo>,
}

/// The account's API keys, newest first (never the keys themselves).
#[utoipa::path(
    get,
    path = "/api/compte/cles",
    tag = "compte",
    security(("session" = [])),
    responses(
        (status = 200, description = "Keys.", body = Keys),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_keys(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = in_session(pb::ListKeysRequest {}, &headers, false)?;
    let list = state.promo_client().list_keys(req).await?.into_inner();
    ok(&Keys {
        keys: list.keys.into_iter().map(key).collect(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[schema(min_length = 1, max_length = 64, examples("production"))]
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key: shown only in this answer.
    api_key: String,
    key: Option<KeyInfo>,
    /// After a rotation: the old key, working until its `revoked_at`.
    replaced: Option<KeyInfo>,
}

fn created(c: pb::CreatedKey) -> CreatedKey {
    CreatedKey {
        api_key: c.api_key,
        key: c.key.map(key),
        replaced: c.replaced.map(key),
    }
}

/// Creates a named key, shown once (also how access comes back after all keys were revoked).
#[utoipa::path(
    post,
    path = "/api/compte/cles",
    tag = "compte",
    request_body = NewKey,
    security(("session" = [])),
    responses(
        (status = 201, description = "The new key.", body = CreatedKey),
        family::SessionJson,
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: NewKey = read_change(&headers, body, state.config.body_limit).await?;
    let req = in_session(pb::CreateKeyRequest { name: input.name }, &headers, true)?;
    let c = state.promo_client().create_key(req).await?.into_inner();
    Ok(private(json(StatusCode::CREATED, &created(c))))
}

/// Revokes one of the account's keys at once.
#[utoipa::path(
    post,
    path = "/api/compte/cles/{id}/revocation",
    tag = "compte",
    params(("id" = String, Path, description = "Key id (`key_…`).")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The revoked key.", body = KeyInfo),
        family::Session,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let key_id = path_param(id)?;
    let req = in_session(pb::RevokeKeyRequest { key_id }, &headers, true)?;
    ok(&key(state
        .promo_client()
        .revoke_key(req)
        .await?
        .into_inner()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the old key keeps working, 0 to 604800 seconds (7 days).
    #[schema(maximum = 604800)]
    grace_seconds: u32,
}

/// Replaces a key: a new one now, the old one revoked after the grace period.
#[utoipa::path(
    post,
    path = "/api/compte/cles/{id}/rotation",
    tag = "compte",
    params(("id" = String, Path, description = "Key id (`key_…`).")),
    request_body = Rotation,
    security(("session" = [])),
    responses(
        (status = 201, description = "The new key, and the old one in its grace.", body = CreatedKey),
        family::SessionJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let key_id = path_param(id)?;
    let input: Rotation = read_change(&headers, body, state.config.body_limit).await?;
    let req = in_session(
        pb::RotateKeyRequest {
            key_id,
            grace_seconds: input.grace_seconds,
        },
        &headers,
        true,
    )?;
    let c = state.promo_client().rotate_key(req).await?.into_inner();
    Ok(private(json(StatusCode::CREATED, &created(c))))
}

// ---------------------------------------------------------------------------------------------
// Package changes.

#[derive(Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PackageChoice {
    /// Target package id.
    #[schema(max_length = 64, examples("business"))]
    package: String,
}

#[derive(Serialize, ToSchema)]
pub struct ChangePlan {
    from_package: String,
    to_package: String,
    /// `upgrade` (now) or `downgrade` (next monthly period).
    kind: String,
    effective_at: String,
    price_dzd: u64,
    base_price_dzd: u64,
    discount_percent: u32,
    discount_ends_at: Option<String>,
    /// True when the promo discount ends because its code does not cover the new package.
    discount_lost: bool,
    /// The French sentence to show before confirming.
    message: String,
    /// An upgrade's prorated invoice (DZD, tax included), issued when confirmed; 0 if none.
    prorated_dzd: u64,
}

fn plan(p: pb::PackageChangePlan) -> ChangePlan {
    ChangePlan {
        from_package: p.from_package,
        to_package: p.to_package,
        kind: p.kind,
        effective_at: p.effective_at,
        price_dzd: p.price_dzd,
        base_price_dzd: p.base_price_dzd,
        discount_percent: p.discount_percent,
        discount_ends_at: non_empty(p.discount_ends_at),
        discount_lost: p.discount_lost,
        message: p.message,
        prorated_dzd: p.prorated_dzd,
    }
}

/// What changing to `package` would do (to show before confirming).
#[utoipa::path(
    get,
    path = "/api/compte/forfait/apercu",
    tag = "compte",
    params(PackageChoice),
    security(("session" = [])),
    responses(
        (status = 200, description = "The plan.", body = ChangePlan),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn preview_change(
    State(state): State<AppState>,
    query: Result<Query<PackageChoice>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    let req = in_session(
        pb::PreviewPackageChangeRequest { package: q.package },
        &headers,
        false,
    )?;
    ok(&plan(
        state
            .promo_client()
            .preview_package_change(req)
            .await?
            .into_inner(),
    ))
}

/// Changes the package: an upgrade now, a downgrade at the next monthly period.
#[utoipa::path(
    post,
    path = "/api/compte/forfait",
    tag = "compte",
    request_body = PackageChoice,
    security(("session" = [])),
    responses(
        (status = 200, description = "The applied plan.", body = ChangePlan),
        family::SessionJson,
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn change_package(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: PackageChoice = read_change(&headers, body, state.config.body_limit).await?;
    let req = in_session(
        pb::ChangePackageRequest {
            package: input.package,
        },
        &headers,
        true,
    )?;
    ok(&plan(
        state.promo_client().change_package(req).await?.into_inner(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancellation {
    /// `true` withdraws a pending cancellation.
    #[serde(default)]
    undo: bool,
}

/// Cancels the subscription at the end of the current period (or withdraws that).
#[utoipa::path(
    post,
    path = "/api/compte/resiliation",
    tag = "compte",
    request_body = Cancellation,
    security(("session" = [])),
    responses(
        (status = 200, description = "The account after the change.", body = Account),
        family::SessionJson,
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn cancel(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult {
    let input: Cancellation = read_change(&headers, body, state.config.body_limit).await?;
    let req = in_session(
        pb::CancelSubscriptionRequest { undo: input.undo },
        &headers,
        true,
    )?;
    ok(&account(
        state
            .promo_client()
            .cancel_subscription(req)
            .await?
            .into_inner(),
    ))
}

// ---------------------------------------------------------------------------------------------
// The pages.

/// `GET /compte` → `/compte/` (the page's relative links need the slash).
pub async fn page_redirect() -> axum::response::Redirect {
    axum::response::Redirect::permanent("/compte/")
}

/// The account page (sign-in form, then the dashboard).
#[utoipa::path(
    get,
    path = "/compte/",
    tag = "site",
    responses(
        (status = 200, description = "HTML page.", content_type = "text/html", body = String),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn page(state: State<AppState>, req: Request) -> Response {
    site::serve_path(state, req, "/compte/".to_owned()).await
}

/// Where the e-mailed link lands: the same page, which reads the token from the URL fragment
/// (never sent to the server) and opens the session.
#[utoipa::path(
    get,
    path = "/compte/connexion",
    tag = "site",
    responses(
        (status = 200, description = "HTML page.", content_type = "text/html", body = String),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn sign_in_page(state: State<AppState>, req: Request) -> Response {
    site::serve_path(state, req, "/compte/".to_owned()).await
}

/// A file of the account page (script, style sheet).
#[utoipa::path(
    get,
    path = "/compte/{*path}",
    tag = "site",
    params(("path" = String, Path, description = "File path under the account page folder.")),
    responses(
        (status = 200, description = "The file.", content_type = "*/*", body = String),
        family::PageFile,
    ),
)]
pub async fn page_file(state: State<AppState>, req: Request) -> Response {
    site::serve_own_path(state, req).await
}
