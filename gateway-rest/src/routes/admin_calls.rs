//! The console's request log (`/api/admin/appels`, "Journal des appels") and providers page
//! (`/api/admin/fournisseurs`): the operator's session is checked with promo-service
//! (`WhoAmI`: any role may read), then llm-gateway's `RequestLog` and `ListProviders` answer
//! with the internal token. Costs are shown in dollars and, at `USD_DZD_RATE`, in dinars.

use axum::extract::{Query, State};
use http::HeaderMap;
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as llm;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, ok, signed_in};
use crate::error::ApiError;
use crate::exchange::{nano_usd_to_dzd_ceil, usd};
use crate::extract::query_param;
use crate::openapi::rest;
use crate::respond::non_empty;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(calls))
        .routes(routes!(providers))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallsQuery {
    /// Customer id (`usr_…`).
    #[serde(default)]
    client: Option<String>,
    /// Start of the key (`iaf_AbCd`, 4 to 10 characters).
    #[serde(default)]
    cle: Option<String>,
    /// Public model.
    #[serde(default)]
    modele: Option<String>,
    /// Provider.
    #[serde(default)]
    fournisseur: Option<String>,
    /// `ok`, `error` or an error code (`quota_exceeded`, `upstream_error`, …).
    #[serde(default)]
    statut: Option<String>,
    /// From this instant, Unix milliseconds (included).
    #[serde(default)]
    depuis: Option<i64>,
    /// Until this instant, Unix milliseconds (excluded).
    #[serde(default)]
    jusqua: Option<i64>,
    /// 1 to 200; absent: 50.
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    page_size: Option<u32>,
    #[serde(default)]
    page_token: Option<String>,
}

/// One call, as the request log holds it (never any prompt or completion text).
#[derive(Serialize, ToSchema)]
pub struct Call {
    id: String,
    /// RFC 3339 instant the call arrived.
    at: String,
    at_ms: i64,
    customer_id: String,
    key_prefix: String,
    /// `chat`, `chat_stream` or `embed`.
    kind: String,
    model: String,
    #[schema(required = true)]
    provider: Option<String>,
    #[schema(required = true)]
    upstream_model: Option<String>,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Upstream cost, US dollars.
    cost_usd: f64,
    latency_ms: u64,
    /// Streams only.
    #[schema(required = true)]
    ttft_ms: Option<u64>,
    attempts: u32,
    fallbacks: u32,
    /// `ok` or `error`.
    status: String,
    #[schema(required = true)]
    error_code: Option<String>,
}

pub(crate) fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub(crate) fn call(r: llm::LoggedRequest) -> Call {
    Call {
        at: rfc3339(r.at_ms),
        id: r.id,
        at_ms: r.at_ms,
        customer_id: r.customer_id,
        key_prefix: r.key_prefix,
        kind: r.kind,
        model: r.model,
        provider: non_empty(r.provider),
        upstream_model: non_empty(r.upstream_model),
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        cost_usd: usd(r.cost_nano_usd),
        latency_ms: r.latency_ms,
        ttft_ms: r.time_to_first_token_ms,
        attempts: r.attempts,
        fallbacks: r.fallbacks,
        status: r.status,
        error_code: non_empty(r.error_code),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Calls {
    /// Newest first.
    appels: Vec<Call>,
    #[schema(required = true)]
    next_page_token: Option<String>,
}

/// The request log, filtered and paged, newest first (operator, any role).
#[utoipa::path(
    get,
    path = "/api/admin/appels",
    tag = "console",
    params(CallsQuery),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "A page of calls.", body = Calls),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn calls(
    State(state): State<AppState>,
    query: Result<Query<CallsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    if q.page_size == Some(0) {
        return Err(bad("page_size va de 1 à 200."));
    }
    signed_in(&state, &headers).await?;
    let req = state.internal_llm_request(
        llm::ListRequestsRequest {
            customer_id: q.client.unwrap_or_default(),
            key_prefix: q.cle.unwrap_or_default(),
            model: q.modele.unwrap_or_default(),
            provider: q.fournisseur.unwrap_or_default(),
            status: q.statut.unwrap_or_default(),
            since_ms: q.depuis.unwrap_or(0),
            until_ms: q.jusqua.unwrap_or(0),
            page_size: q.page_size.unwrap_or(0),
            page_token: q.page_token.unwrap_or_default(),
        },
        &headers,
        "the request log",
    )?;
    let page = state
        .request_log_client()
        .list_requests(req)
        .await?
        .into_inner();
    ok(&Calls {
        appels: page.requests.into_iter().map(call).collect(),
        next_page_token: non_empty(page.next_page_token),
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProvidersQuery {
    /// Window of the figures in hours back from now, 1 to 720; absent: 24.
    #[serde(default)]
    #[param(minimum = 1, maximum = 720)]
    heures: Option<u32>,
}

/// One provider: its state on the replica that answered, its figures over the window.
#[derive(Serialize, ToSchema)]
pub struct Provider {
    name: String,
    /// Wire format (`openai`, `anthropic`, …).
    kind: String,
    configured: bool,
    /// `closed`, `open`, `half_open` (the circuit breaker, on the replica that answered).
    circuit: String,
    /// Calls over the window (every replica, from the request log).
    calls: u64,
    errors: u64,
    /// Errors per 100 calls, one decimal; 0 without calls.
    error_rate_percent: f64,
    /// Latency percentiles of successful calls, milliseconds (0 without any).
    p50_ms: u64,
    p95_ms: u64,
    cost_usd: f64,
    /// Rounded up to the dinar at `USD_DZD_RATE`.
    cost_dzd: u64,
}

/// One provider's cost on one day.
#[derive(Serialize, ToSchema)]
pub struct ProviderDay {
    provider: String,
    /// `2026-12-03` (UTC).
    day: String,
    calls: u64,
    cost_usd: f64,
    cost_dzd: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Providers {
    heures: u32,
    /// Dinars per dollar the DZD figures use.
    usd_dzd_rate: f64,
    /// The offline mock answers (no provider key configured).
    mock_active: bool,
    fournisseurs: Vec<Provider>,
    /// Per provider and day over the window.
    jours: Vec<ProviderDay>,
    /// The window held more calls than were read (the newest were used).
    truncated: bool,
}

fn circuit(state: i32) -> &'static str {
    match llm::CircuitState::try_from(state) {
        Ok(llm::CircuitState::Closed) => "closed",
        Ok(llm::CircuitState::Open) => "open",
        Ok(llm::CircuitState::HalfOpen) => "half_open",
        _ => "unknown",
    }
}

/// Providers: health and circuit state, latency percentiles, error rate and cost per day
/// (operator, any role).
#[utoipa::path(
    get,
    path = "/api/admin/fournisseurs",
    tag = "console",
    params(ProvidersQuery),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "Every provider with its figures.", body = Providers),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn providers(
    State(state): State<AppState>,
    query: Result<Query<ProvidersQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let q = query_param(query)?;
    let hours = q.heures.unwrap_or(24);
    if !(1..=720).contains(&hours) {
        return Err(bad("heures va de 1 à 720."));
    }
    signed_in(&state, &headers).await?;
    let list_req =
        state.internal_llm_request(llm::ListProvidersRequest {}, &headers, "the provider list")?;
    let stats_req = state.internal_llm_request(
        llm::ProviderStatsRequest { hours },
        &headers,
        "the provider statistics",
    )?;
    let mut llm_client = state.llm_client();
    let mut log_client = state.request_log_client();
    let (list, stats) = tokio::join!(
        llm_client.list_providers(list_req),
        log_client.provider_stats(stats_req)
    );
    let (list, stats) = (list?.into_inner(), stats?.into_inner());
    let rate = state.config.usd_dzd_rate_milli;
    let mut providers: Vec<Provider> = list
        .providers
        .into_iter()
        .map(|p| {
            let s = stats.providers.iter().find(|s| s.provider == p.name);
            let (calls, errors) = s.map_or((0, 0), |s| (s.calls, s.errors));
            let cost = s.map_or(0, |s| s.cost_nano_usd);
            Provider {
                kind: p.kind,
                configured: p.configured,
                circuit: circuit(p.circuit_state).to_owned(),
                calls,
                errors,
                error_rate_percent: if calls == 0 {
                    0.0
                } else {
                    (errors as f64 * 1000.0 / calls as f64).round() / 10.0
                },
                p50_ms: s.map_or(0, |s| s.p50_latency_ms),
                p95_ms: s.map_or(0, |s| s.p95_latency_ms),
                cost_usd: usd(cost),
                cost_dzd: nano_usd_to_dzd_ceil(cost, rate),
                name: p.name,
            }
        })
        .collect();
    // Providers no longer in this replica's catalogue but in the log (a changed catalogue).
    for s in &stats.providers {
        if !providers.iter().any(|p| p.name == s.provider) {
            providers.push(Provider {
                name: s.provider.clone(),
                kind: String::new(),
                configured: false,
                circuit: "unknown".to_owned(),
                calls: s.calls,
                errors: s.errors,
                error_rate_percent: if s.calls == 0 {
                    0.0
                } else {
                    (s.errors as f64 * 1000.0 / s.calls as f64).round() / 10.0
                },
                p50_ms: s.p50_latency_ms,
                p95_ms: s.p95_latency_ms,
                cost_usd: usd(s.cost_nano_usd),
                cost_dzd: nano_usd_to_dzd_ceil(s.cost_nano_usd, rate),
            });
        }
    }
    ok(&Providers {
        heures: stats.hours,
        usd_dzd_rate: rate as f64 / 1000.0,
        mock_active: list.mock_active,
        fournisseurs: providers,
        jours: stats
            .days
            .into_iter()
            .map(|d| ProviderDay {
                cost_usd: usd(d.cost_nano_usd),
                cost_dzd: nano_usd_to_dzd_ceil(d.cost_nano_usd, rate),
                provider: d.provider,
                day: d.day,
                calls: d.calls,
            })
            .collect(),
        truncated: stats.truncated,
    })
}
