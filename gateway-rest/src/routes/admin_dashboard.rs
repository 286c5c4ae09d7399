//! The console's launch dashboard (`/api/admin/tableau-de-bord`), its marketing spend entries
//! (`/api/admin/depenses`) and the audit log (`/api/admin/journal`). Figures come from
//! promo-service's `Operators` RPCs in the operator's session; this room only shapes them.

use axum::body::Body;
use axum::extract::{Query, State};
use http::{HeaderMap, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, ok, operator_request};
use crate::error::ApiError;
use crate::extract::query_param;
use crate::openapi::{family, rest};
use crate::respond::{json, non_empty};
use crate::state::AppState;
use crate::web_session::{private, read_change};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dashboard))
        .routes(routes!(add_spend))
        .routes(routes!(audit))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// Days shown, ending today (UTC): 1 to 366; absent: 30.
    #[serde(default)]
    #[param(minimum = 1, maximum = 366)]
    jours: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DayCount {
    /// `2026-11-30` (UTC).
    day: String,
    count: u64,
}

fn days(list: Vec<pb::DayCount>) -> Vec<DayCount> {
    list.into_iter()
        .map(|d| DayCount {
            day: d.day,
            count: d.count,
        })
        .collect()
}

#[derive(Serialize, ToSchema)]
pub struct MrrPoint {
    day: String,
    mrr_dzd: u64,
    customers: u64,
}

#[derive(Serialize, ToSchema)]
pub struct PackageRevenue {
    package: String,
    name: String,
    customers: u64,
    revenue_monthly_dzd: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Funnel {
    landing_views: u64,
    cta_clicks: u64,
    code_checks: u64,
    signups: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Spend {
    id: String,
    day: String,
    channel: String,
    amount_dzd: u64,
    created_by: String,
}

fn spend(s: pb::SpendEntry) -> Spend {
    Spend {
        id: s.id,
        day: s.day,
        channel: s.channel,
        amount_dzd: s.amount_dzd,
        created_by: s.created_by,
    }
}

#[derive(Serialize, ToSchema)]
pub struct Cac {
    /// `2026-11`.
    month: String,
    spend_dzd: u64,
    signups: u64,
    /// Spend per signup, rounded to the dinar; null without signup.
    #[schema(required = true)]
    cac_dzd: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct Dashboard {
    launch_code: String,
    launch_used: u32,
    /// Null for an unlimited code.
    #[schema(required = true)]
    launch_total: Option<u32>,
    launch_remaining: u32,
    total_customers: u64,
    from_day: String,
    to_day: String,
    signups_per_day: Vec<DayCount>,
    landing_views_per_day: Vec<DayCount>,
    /// Daily snapshots of the monthly revenue being paid (days without one are absent).
    mrr: Vec<MrrPoint>,
    mrr_now_dzd: u64,
    revenue_by_package: Vec<PackageRevenue>,
    funnel: Funnel,
    spend: Vec<Spend>,
    cac: Vec<Cac>,
}

/// The launch dashboard over the last `jours` days (operator).
#[utoipa::path(
    get,
    path = "/api/admin/tableau-de-bord",
    tag = "console",
    params(DashboardQuery),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "The figures.", body = Dashboard),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn dashboard(
    State(state): State<AppState>,
    query: Result<Query<DashboardQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    // 0 would mean "the default" to promo-service: refused here, where it was typed.
    if q.jours == Some(0) {
        return Err(ApiError::new(
            ErrorCode::InvalidArgument,
            "jours va de 1 à 366.",
        ));
    }
    let req = operator_request(
        pb::GetDashboardRequest {
            days: q.jours.unwrap_or(0),
        },
        &headers,
        false,
    )?;
    let d = state
        .operators_client()
        .get_dashboard(req)
        .await?
        .into_inner();
    let funnel = d.funnel.unwrap_or_default();
    ok(&Dashboard {
        launch_code: d.launch_code,
        launch_used: d.launch_used,
        launch_total: d.launch_total,
        launch_remaining: d.launch_remaining,
        total_customers: d.total_customers,
        from_day: d.from_day,
        to_day: d.to_day,
        signups_per_day: days(d.signups_per_day),
        landing_views_per_day: days(d.landing_views_per_day),
        mrr: d
            .mrr
            .into_iter()
            .map(|m| MrrPoint {
                day: m.day,
                mrr_dzd: m.mrr_dzd,
                customers: m.active_customers,
            })
            .collect(),
        mrr_now_dzd: d.mrr_now_dzd,
        revenue_by_package: d
            .revenue_by_package
            .into_iter()
            .map(|p| PackageRevenue {
                package: p.package,
                name: p.name,
                customers: p.customers,
                revenue_monthly_dzd: p.revenue_monthly_dzd,
            })
            .collect(),
        funnel: Funnel {
            landing_views: funnel.landing_views,
            cta_clicks: funnel.cta_clicks,
            code_checks: funnel.code_checks,
            signups: funnel.signups,
        },
        spend: d.spend.into_iter().map(spend).collect(),
        cac: d
            .cac
            .into_iter()
            .map(|c| Cac {
                month: c.month,
                spend_dzd: c.spend_dzd,
                signups: c.signups,
                cac_dzd: c.cac_dzd,
            })
            .collect(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSpend {
    /// `2026-11-30`.
    #[schema(examples("2026-11-30"))]
    day: String,
    #[schema(min_length = 1, max_length = 60, examples("facebook"))]
    channel: String,
    #[schema(minimum = 1, maximum = 1000000000)]
    amount_dzd: u64,
}

/// Records a marketing spend (owner).
#[utoipa::path(
    post,
    path = "/api/admin/depenses",
    tag = "console",
    request_body = NewSpend,
    security(("operatorSession" = [])),
    responses(
        (status = 201, description = "Recorded.", body = Spend),
        family::SessionJson,
    ),
)]
pub async fn add_spend(State(state): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult {
    let input: NewSpend = read_change(&headers, body, state.config.body_limit).await?;
    let req = operator_request(
        pb::AddSpendRequest {
            day: input.day,
            channel: input.channel,
            amount_dzd: input.amount_dzd,
        },
        &headers,
        true,
    )?;
    let s = state.operators_client().add_spend(req).await?.into_inner();
    Ok(private(json(StatusCode::CREATED, &spend(s))))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// 1 to 500; absent: 50.
    #[serde(default)]
    #[param(minimum = 1, maximum = 500)]
    page_size: Option<u32>,
    /// next_page_token of the previous page.
    #[serde(default)]
    page_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    id: String,
    /// RFC 3339.
    at: String,
    /// The operator's name and e-mail, or `admin-token`.
    actor: String,
    action: String,
    target: String,
    /// The state before and after, as JSON (null when there was none).
    #[schema(value_type = Object)]
    before: serde_json::Value,
    #[schema(value_type = Object)]
    after: serde_json::Value,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    entries: Vec<AuditEntry>,
    #[schema(required = true)]
    next_page_token: Option<String>,
}

/// The audit log of admin changes, newest first (operator).
#[utoipa::path(
    get,
    path = "/api/admin/journal",
    tag = "console",
    params(AuditQuery),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "A page of the log.", body = AuditPage),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn audit(
    State(state): State<AppState>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    let req = operator_request(
        pb::ListAuditRequest {
            page_size: q.page_size.unwrap_or(0),
            page_token: q.page_token.unwrap_or_default(),
        },
        &headers,
        false,
    )?;
    let page = state.operators_client().list_audit(req).await?.into_inner();
    let parse = |s: &str| serde_json::from_str(s).unwrap_or(serde_json::Value::Null);
    ok(&AuditPage {
        entries: page
            .entries
            .into_iter()
            .map(|e| AuditEntry {
                before: parse(&e.before_json),
                after: parse(&e.after_json),
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                target: e.target,
            })
            .collect(),
        next_page_token: non_empty(page.next_page_token),
    })
}
