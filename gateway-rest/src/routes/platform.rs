//! The platform's provider status, from llm-gateway: the operator's detailed view
//! (`/api/gateway/providers`, admin) and the landing page's public figures
//! (`/api/platform/status`).

use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::bearer;
use crate::openapi::{family, rest};
use crate::respond::json;
use crate::state::AppState;

type ApiResult = Result<Response, ApiError>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(providers))
        .routes(routes!(platform_status))
}

#[derive(Serialize, ToSchema)]
pub struct Providers {
    mock_active: bool,
    providers: Vec<Provider>,
}

#[derive(Serialize, ToSchema)]
pub struct Provider {
    name: String,
    kind: String,
    base_url: String,
    configured: bool,
    #[schema(inline)]
    circuit_state: CircuitState,
    ewma_latency_ms: f64,
    requests: u64,
    failures: u64,
    consecutive_failures: u32,
    last_error: Option<String>,
    last_error_at_ms: Option<i64>,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
    Unspecified,
}

impl From<i32> for CircuitState {
    fn from(c: i32) -> Self {
        match pb::CircuitState::try_from(c) {
            Ok(pb::CircuitState::Closed) => CircuitState::Closed,
            Ok(pb::CircuitState::Open) => CircuitState::Open,
            Ok(pb::CircuitState::HalfOpen) => CircuitState::HalfOpen,
            _ => CircuitState::Unspecified,
        }
    }
}

/// Provider status: configured, circuit state, recent latency, errors (admin).
#[utoipa::path(
    get,
    path = "/api/gateway/providers",
    tag = "admin",
    security(("adminToken" = [])),
    responses(
        (status = 200, description = "Providers.", body = Providers),
        family::AdminToken,
        (status = 403, response = inline(rest::Forbidden)),
    ),
)]
pub async fn providers(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    require_admin(&state, &headers)?;
    let list = list_providers(&state, &headers).await?;
    Ok(json(
        StatusCode::OK,
        &Providers {
            mock_active: list.mock_active,
            providers: list
                .providers
                .into_iter()
                .map(|p| Provider {
                    name: p.name,
                    kind: p.kind,
                    base_url: p.base_url,
                    configured: p.configured,
                    circuit_state: CircuitState::from(p.circuit_state),
                    ewma_latency_ms: p.ewma_latency_ms,
                    requests: p.requests,
                    failures: p.failures,
                    consecutive_failures: p.consecutive_failures,
                    last_error: (!p.last_error.is_empty()).then_some(p.last_error),
                    last_error_at_ms: (p.last_error_at_ms != 0).then_some(p.last_error_at_ms),
                })
                .collect(),
        },
    ))
}

#[derive(Serialize, ToSchema)]
pub struct PlatformStatus {
    providers_configured: usize,
    /// Null before any successful call.
    #[schema(required = true)]
    median_latency_ms: Option<f64>,
    mock_active: bool,
    /// The default routing policy of the available chat models (`fallback`, `lowest_latency`,
    /// `lowest_cost`), `mixed` when they differ; null when no chat model is available.
    #[schema(required = true)]
    routing_policy: Option<&'static str>,
    /// Makers (`owned_by`) of the available chat models, sorted, without duplicates.
    model_makers: Vec<String>,
}

/// Public figures for the landing page: real providers configured and their median recent latency.
//
// Aggregates only: no names, URLs or error details.
#[utoipa::path(
    get,
    path = "/api/platform/status",
    tag = "llm",
    responses((status = 200, description = "Figures.", body = PlatformStatus)),
)]
pub async fn platform_status(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    // The public catalogue only: a caller's key must not narrow what the page says.
    let mut anonymous = headers.clone();
    anonymous.remove(http::header::AUTHORIZATION);
    let (list, models) = tokio::try_join!(
        list_providers(&state, &headers),
        crate::routes::openai::list_models(&state, &anonymous),
    )?;
    let (routing_policy, model_makers) = catalogue_facts(&models);
    let real: Vec<&pb::ProviderStatus> = list
        .providers
        .iter()
        .filter(|p| p.configured && p.kind != "mock")
        .collect();
    // The gateway's median over its last real-provider calls (the mock is never counted).
    let median_latency_ms = list
        .median_latency_ms
        .filter(|m| m.is_finite() && list.recent_calls > 0);
    Ok(json(
        StatusCode::OK,
        &PlatformStatus {
            providers_configured: real.len(),
            median_latency_ms,
            mock_active: list.mock_active,
            routing_policy,
            model_makers,
        },
    ))
}

/// What the landing page may say about the catalogue: the routing policy its available chat
/// models share, and who makes them.
fn catalogue_facts(models: &[pb::Model]) -> (Option<&'static str>, Vec<String>) {
    let chat: Vec<&pb::Model> = models
        .iter()
        .filter(|m| m.available && m.kind == pb::ModelKind::Chat as i32)
        .collect();
    let mut policies: Vec<&'static str> = chat
        .iter()
        .map(|m| crate::routes::openai::policy_name(m.default_policy))
        .collect();
    policies.sort_unstable();
    policies.dedup();
    let policy = match policies.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => Some("mixed"),
    };
    let mut makers: Vec<String> = chat
        .iter()
        .map(|m| m.owned_by.clone())
        .filter(|o| !o.is_empty())
        .collect();
    makers.sort_unstable();
    makers.dedup();
    (policy, makers)
}

/// The sentence of the 503 when the provider list cannot be read.
const PROVIDERS_UNAVAILABLE: &str = "État des fournisseurs momentanément indisponible.";

/// llm-gateway's `ListProviders`, called with gateway-rest's internal token (llm-gateway answers
/// only the platform's services). A token missing here or refused there is gateway-rest's own
/// misconfiguration: a logged 503 for the caller, never a 401/403 that would read as theirs.
async fn list_providers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<pb::ListProvidersResponse, ApiError> {
    let unavailable = || ApiError::new(ErrorCode::Unavailable, PROVIDERS_UNAVAILABLE);
    let req = state.internal_request(
        pb::ListProvidersRequest {},
        headers,
        "llm-gateway's provider list cannot be read",
        PROVIDERS_UNAVAILABLE,
    )?;
    match state.llm_client().list_providers(req).await {
        Ok(list) => Ok(list.into_inner()),
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            tracing::error!(
                message = status.message(),
                "llm-gateway refused gateway-rest's INTERNAL_TOKEN"
            );
            Err(unavailable())
        }
        Err(status) => Err(status.into()),
    }
}

/// The provider list is operator information: it needs gateway-rest's admin token.
fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Jeton d'administration manquant (Authorization: Bearer …).",
        ));
    };
    match &state.config.admin_token {
        Some(expected) if expected.matches(token) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Jeton d'administration invalide.",
        )),
        None => Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "Route d'administration désactivée : ADMIN_TOKEN n'est pas configuré sur gateway-rest.",
        )),
    }
}
