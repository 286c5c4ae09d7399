//! The operator console's sign-in under `/api/admin/session` and `/api/admin/moi`, and the
//! plumbing every console route shares: the operator's session cookie (`iaf_operator`, with the
//! attributes of [`crate::web_session`]) carried to promo-service's `Operators` RPCs, which
//! check the session, the CSRF token and the role. A sign-in always gets a new token made by
//! promo-service (no fixation); the failed-attempt budget per e-mail and IP is promo-service's.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
pub(crate) use crate::error::ApiResult;
use crate::openapi::{family, rest};
use crate::respond::json;
use crate::state::AppState;
pub(crate) use crate::web_session::ok;
use crate::web_session::{self, OPERATOR, private, read_change};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in, sign_out))
        .routes(routes!(who_am_i))
        .routes(routes!(list_operators, create_operator))
}

/// A promo-service request in the operator's session; `change`: a state-changing call (same
/// origin and the CSRF token required).
pub(crate) fn operator_request<T>(
    message: T,
    headers: &HeaderMap,
    change: bool,
) -> Result<tonic::Request<T>, ApiError> {
    OPERATOR.request(message, headers, change)
}

/// Checks the operator's session (any role) before a read that promo-service does not guard
/// itself (llm-gateway's request log, the public package list with its budgets).
pub(crate) async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let req = operator_request(pb::WhoAmIRequest {}, headers, false)?;
    state.operators_client().who_am_i(req).await?;
    Ok(())
}

/// An operator as the console shows it.
#[derive(Serialize, ToSchema)]
pub struct OperatorInfo {
    id: String,
    email: String,
    display_name: String,
    /// `owner` (everything) or `support` (read-only, no export).
    role: String,
}

pub(crate) fn role_name(role: i32) -> &'static str {
    match pb::OperatorRole::try_from(role) {
        Ok(pb::OperatorRole::Owner) => "owner",
        Ok(pb::OperatorRole::Support) => "support",
        _ => "unknown",
    }
}

pub(crate) fn operator(o: pb::Operator) -> OperatorInfo {
    OperatorInfo {
        role: role_name(o.role).to_owned(),
        id: o.id,
        email: o.email,
        display_name: o.display_name,
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 1, max_length = 200)]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// Send it as `X-CSRF-Token` on state-changing calls.
    csrf_token: String,
    /// RFC 3339 absolute end of the session.
    expires_at: String,
    operator: Option<OperatorInfo>,
}

/// Signs an operator in with e-mail and password; sets the `iaf_operator` cookie.
#[utoipa::path(
    post,
    path = "/api/admin/session",
    tag = "console",
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the session cookie is set.", body = SignedIn),
        family::SessionJson,
        (status = 429, response = inline(rest::TooManyRequests)),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: SignIn = read_change(&headers, body, state.config.body_limit).await?;
    let mut req = state.internal_request(
        pb::OperatorSignInRequest {
            email: input.email,
            password: input.password,
        },
        &headers,
        "operators cannot sign in",
        "Connexion momentanément indisponible.",
    )?;
    state.tag_client_ip(&mut req, peer, &headers);
    let grant = state.operators_client().sign_in(req).await?.into_inner();
    let mut response = private(json(
        StatusCode::OK,
        &SignedIn {
            csrf_token: grant.csrf_token,
            expires_at: grant.expires_at.clone(),
            operator: grant.operator.map(operator),
        },
    ));
    if let Some(c) = OPERATOR.set_cookie(
        &headers,
        &grant.session_token,
        web_session::max_age(&grant.expires_at),
    ) {
        response.headers_mut().insert(SET_COOKIE, c);
    }
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct SignedOut {
    ended: u32,
}

/// Ends the operator's session and clears the cookie.
#[utoipa::path(
    delete,
    path = "/api/admin/session",
    tag = "console",
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Signed out.", body = SignedOut),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 403, response = inline(rest::Forbidden)),
    ),
)]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = operator_request(pb::OperatorSignOutRequest {}, &headers, true)?;
    let out = state.operators_client().sign_out(req).await?.into_inner();
    let mut response = private(json(StatusCode::OK, &SignedOut { ended: out.ended }));
    if let Some(c) = OPERATOR.set_cookie(&headers, "", 0) {
        response.headers_mut().insert(SET_COOKIE, c);
    }
    Ok(response)
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    operator: Option<OperatorInfo>,
    /// The role the session acts with.
    role: String,
    /// Send it as `X-CSRF-Token` on state-changing calls.
    csrf_token: String,
}

/// The signed-in operator, their role and the session's CSRF token.
#[utoipa::path(
    get,
    path = "/api/admin/moi",
    tag = "console",
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The operator.", body = Me),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn who_am_i(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = operator_request(pb::WhoAmIRequest {}, &headers, false)?;
    let me = state.operators_client().who_am_i(req).await?.into_inner();
    ok(&Me {
        operator: me.operator.map(operator),
        role: role_name(me.role).to_owned(),
        csrf_token: me.csrf_token,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Operators {
    operators: Vec<OperatorInfo>,
}

/// The operators, oldest first (operator).
#[utoipa::path(
    get,
    path = "/api/admin/operateurs",
    tag = "console",
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Operators.", body = Operators),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_operators(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = operator_request(pb::ListOperatorsRequest {}, &headers, false)?;
    let list = state
        .operators_client()
        .list_operators(req)
        .await?
        .into_inner();
    ok(&Operators {
        operators: list.operators.into_iter().map(operator).collect(),
    })
}

/// A role as the console names it.
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum RoleName {
    Owner,
    Support,
}

impl From<RoleName> for pb::OperatorRole {
    fn from(role: RoleName) -> Self {
        match role {
            RoleName::Owner => pb::OperatorRole::Owner,
            RoleName::Support => pb::OperatorRole::Support,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 1, max_length = 80)]
    display_name: String,
    #[schema(inline)]
    role: RoleName,
    /// 12 to 200 characters; stored only as an argon2id hash.
    #[schema(min_length = 12, max_length = 200)]
    password: String,
}

/// Adds an operator (owner).
#[utoipa::path(
    post,
    path = "/api/admin/operateurs",
    tag = "console",
    request_body = NewOperator,
    security(("operatorSession" = [])),
    responses(
        (status = 201, description = "The operator.", body = OperatorInfo),
        family::SessionJson,
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn create_operator(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: NewOperator = read_change(&headers, body, state.config.body_limit).await?;
    let req = operator_request(
        pb::CreateOperatorRequest {
            email: input.email,
            display_name: input.display_name,
            role: pb::OperatorRole::from(input.role).into(),
            password: input.password,
        },
        &headers,
        true,
    )?;
    let o = state
        .operators_client()
        .create_operator(req)
        .await?
        .into_inner();
    Ok(private(json(StatusCode::CREATED, &operator(o))))
}
