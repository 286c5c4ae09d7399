//! Operational routes: `/livez` (the process serves), `/readyz` (both backends SERVING, else
//! 503), `/healthz` (backend reachability, always 200), `/metrics` (Prometheus) and
//! `/openapi.json`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use iafactory::ErrorCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorDetail};
use crate::health::{self, Backends, READY_CACHE_TTL};
use crate::respond::json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(livez))
        .routes(routes!(readyz))
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
}

#[derive(Serialize, ToSchema)]
pub struct Livez {
    #[schema(inline)]
    status: Alive,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Alive {
    Ok,
}

/// Liveness: 200 while gateway-rest serves HTTP; asks nothing of the backends.
//
// A backend outage is no reason to restart the edge.
#[utoipa::path(
    get,
    path = "/livez",
    tag = "ops",
    responses((status = 200, description = "Alive.", body = Livez)),
)]
pub async fn livez() -> Response {
    no_store(json(StatusCode::OK, &Livez { status: Alive::Ok }))
}

#[derive(Serialize, ToSchema)]
pub struct Readyz {
    #[schema(inline)]
    status: Ready,
    backends: Backends,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Ready {
    Ready,
}

/// The error body (`unavailable`) with each backend's state.
#[derive(Serialize, ToSchema)]
pub struct NotReady<'a> {
    error: ErrorDetail<'a>,
    #[schema(inline)]
    status: NotReadyStatus,
    backends: &'a Backends,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum NotReadyStatus {
    NotReady,
}

/// Readiness: 200 when promo-service and llm-gateway both answer grpc.health.v1 SERVING, else 503 (`unavailable`, Retry-After) naming the backends that are not; the verdict is cached 1 s.
//
// The container health check (`gateway-rest healthcheck`) asks this route.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready.", body = Readyz),
        (status = 503, description = "A backend is not SERVING (or does not answer within 1 s); see Retry-After.", body = NotReady),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let backends = state.readiness.backends(&state.promo, &state.llm).await;
    let not_ready = backends.not_serving();
    if not_ready.is_empty() {
        return no_store(json(
            StatusCode::OK,
            &Readyz {
                status: Ready::Ready,
                backends,
            },
        ));
    }
    let error = ApiError::new(
        ErrorCode::Unavailable,
        format!("Service pas prêt : {} indisponible.", not_ready.join(", ")),
    )
    .with_retry_after(READY_CACHE_TTL.as_secs().max(1));
    let mut response = no_store(json(
        StatusCode::SERVICE_UNAVAILABLE,
        &NotReady {
            error: error.detail(),
            status: NotReadyStatus::NotReady,
            backends: &backends,
        },
    ));
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(READY_CACHE_TTL.as_secs().max(1)),
    );
    response
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Serialize, ToSchema)]
pub struct Healthz {
    #[schema(inline)]
    status: Health,
    backends: Backends,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Health {
    Ok,
    Degraded,
}

/// gateway-rest is up (always 200); status `ok` when every backend is SERVING, else `degraded`.
//
// A load balancer should not take the edge out of rotation because one backend is down: the
// routes of the other keep working, and the failing ones answer 503 with Retry-After.
// Unchanged by `/livez` and `/readyz`, and not cached: a view for people and dashboards.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses((status = 200, description = "Health.", body = Healthz)),
)]
pub async fn healthz(State(state): State<AppState>) -> Response {
    let backends = health::check(&state.promo, &state.llm).await;
    let ok = backends.not_serving().is_empty();
    no_store(json(
        StatusCode::OK,
        &Healthz {
            status: if ok { Health::Ok } else { Health::Degraded },
            backends,
        },
    ))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Metrics.", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1.", body = Object)),
)]
pub async fn openapi(State(state): State<AppState>) -> Response {
    let mut response = state.openapi.clone().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
