//! The console's operator accounts: an operator changes their own password
//! (`PUT /api/admin/moi/mot-de-passe`); an owner changes another operator's role or deactivates
//! them (`PATCH /api/admin/operateurs/{id}`); everyone sees who is active
//! (`GET /api/admin/operateurs/comptes`). promo-service's `OperatorAccounts` checks the session,
//! the CSRF token, the role and the last-owner rule; this module only translates.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use http::HeaderMap;
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, OperatorInfo, RoleName, ok, operator, operator_request};
use crate::error::ApiError;
use crate::extract::path_param;
use crate::openapi::{family, rest};
use crate::state::AppState;
use crate::web_session::read_change;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(change_own_password))
        .routes(routes!(list_accounts))
        .routes(routes!(change_account))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(min_length = 1, max_length = 800)]
    current_password: String,
    /// 12 to 200 characters.
    #[schema(min_length = 12, max_length = 200)]
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// The operator's other sessions that ended (this one stays).
    sessions_ended: u32,
}

/// Changes the signed-in operator's own password; the current one is required. Their other
/// sessions end.
#[utoipa::path(
    put,
    path = "/api/admin/moi/mot-de-passe",
    tag = "console",
    request_body = PasswordChange,
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Changed.", body = PasswordChanged),
        family::SessionJson,
        (status = 429, response = inline(rest::TooManyRequests)),
    ),
)]
pub async fn change_own_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: PasswordChange = read_change(&headers, body, state.config.body_limit).await?;
    let req = operator_request(
        pb::ChangeOwnPasswordRequest {
            current_password: input.current_password,
            new_password: input.new_password,
        },
        &headers,
        true,
    )?;
    let r = state
        .operator_accounts_client()
        .change_own_password(req)
        .await?
        .into_inner();
    ok(&PasswordChanged {
        sessions_ended: r.sessions_ended,
    })
}

/// An operator account as the console shows it.
#[derive(Serialize, ToSchema)]
pub struct OperatorAccount {
    operator: OperatorInfo,
    /// False once deactivated: no sign-in, no session.
    active: bool,
    /// RFC 3339; null while active.
    deactivated_at: Option<String>,
}

fn account(a: pb::OperatorAccount) -> OperatorAccount {
    OperatorAccount {
        operator: operator(a.operator.unwrap_or_default()),
        active: a.active,
        deactivated_at: Some(a.deactivated_at).filter(|d| !d.is_empty()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct OperatorAccounts {
    operators: Vec<OperatorAccount>,
}

/// The operators with their state, oldest first (operator).
#[utoipa::path(
    get,
    path = "/api/admin/operateurs/comptes",
    tag = "console",
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Operators.", body = OperatorAccounts),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_accounts(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = operator_request(pb::ListOperatorAccountsRequest {}, &headers, false)?;
    let list = state
        .operator_accounts_client()
        .list_operator_accounts(req)
        .await?
        .into_inner();
    ok(&OperatorAccounts {
        operators: list.operators.into_iter().map(account).collect(),
    })
}

/// One change at a time: a new role, or active / inactive.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    #[serde(default)]
    #[schema(inline)]
    role: Option<RoleName>,
    #[serde(default)]
    active: Option<bool>,
}

/// Changes an operator's role, or deactivates / reactivates them (owner). Deactivation ends
/// their sessions at once; the last active owner can be neither demoted nor deactivated (409).
#[utoipa::path(
    patch,
    path = "/api/admin/operateurs/{id}",
    tag = "console",
    params(("id" = String, Path, description = "Operator id (`op_…`).")),
    request_body = AccountChange,
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The operator.", body = OperatorAccount),
        family::SessionJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn change_account(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_param(id)?;
    let input: AccountChange = read_change(&headers, body, state.config.body_limit).await?;
    let mut client = state.operator_accounts_client();
    let a = match (input.role, input.active) {
        (Some(role), None) => {
            let req = operator_request(
                pb::SetOperatorRoleRequest {
                    operator_id: id,
                    role: pb::OperatorRole::from(role).into(),
                },
                &headers,
                true,
            )?;
            client.set_operator_role(req).await?.into_inner()
        }
        (None, Some(active)) => {
            let req = operator_request(
                pb::SetOperatorActiveRequest {
                    operator_id: id,
                    active,
                },
                &headers,
                true,
            )?;
            client.set_operator_active(req).await?.into_inner()
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidArgument,
                "envoyez soit « role », soit « active » (un changement à la fois)",
            ));
        }
    };
    ok(&account(a))
}
