//! "Mes derniers appels" of the customer account (`/api/compte/appels`): the signed-in
//! customer's own calls from llm-gateway's request log, newest first, all their keys. The
//! upstream cost is left out unless `SHOW_UPSTREAM_COST` is on (customers see tokens).

use axum::extract::{Query, State};
use http::HeaderMap;
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as llm;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_calls::{Call, call};
use super::admin_session::{ApiResult, ok};
use super::compte::in_session;
use crate::error::ApiError;
use crate::extract::query_param;
use crate::openapi::rest;
use crate::respond::non_empty;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(my_calls))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MyCallsQuery {
    /// 1 to 100; absent: 20.
    #[serde(default)]
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MyCalls {
    /// Newest first; `cost_usd` is 0 unless the platform shows upstream costs.
    appels: Vec<Call>,
    #[schema(required = true)]
    next_page_token: Option<String>,
}

/// The signed-in customer's latest calls (session).
#[utoipa::path(
    get,
    path = "/api/compte/appels",
    tag = "compte",
    params(MyCallsQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of the customer's calls.", body = MyCalls),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn my_calls(
    State(state): State<AppState>,
    query: Result<Query<MyCallsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    let page_size = q.page_size.unwrap_or(20);
    if !(1..=100).contains(&page_size) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "page_size va de 1 à 100.",
        ));
    }
    let account = state
        .promo_client()
        .get_account(in_session(pb::GetAccountRequest {}, &headers, false)?)
        .await?
        .into_inner();
    let req = state.internal_llm_request(
        llm::ListRequestsRequest {
            customer_id: account.user_id,
            page_size,
            page_token: q.page_token.unwrap_or_default(),
            ..Default::default()
        },
        &headers,
        "the request log",
    )?;
    let page = state
        .request_log_client()
        .list_requests(req)
        .await?
        .into_inner();
    let show_cost = state.config.show_upstream_cost;
    ok(&MyCalls {
        appels: page
            .requests
            .into_iter()
            .map(|mut r| {
                if !show_cost {
                    r.cost_nano_usd = 0;
                }
                call(r)
            })
            .collect(),
        next_page_token: non_empty(page.next_page_token),
    })
}
