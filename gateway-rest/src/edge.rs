//! The one middleware every request goes through, written as a single function rather than a
//! stack of layers so the hot path stays short: request id, load shedding, time limit, metrics,
//! and JSON error bodies for answers produced outside our handlers (axum's 405, the static file
//! service's 404, extractor rejections).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use http_body_util::BodyExt;
use iafactory::ErrorCode;
use iafactory::metrics::CountGauge;

use crate::error::{ApiError, BackendUnreachable, Flavor, X_REQUEST_ID, code_for_status};
use crate::request_id::caller_request_id;
use crate::state::AppState;

/// Decrements the in-flight gauge however the request ends (including a client going away).
struct InFlight<'a>(&'a CountGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>();
    let route = state.metrics.route_index(matched.map(MatchedPath::as_str));
    let is_chat = matched.is_some_and(|m| m.as_str() == "/v1/chat/completions");
    let flavor = Flavor::of_path(req.uri().path());
    let request_id = caller_request_id(req.headers()).unwrap_or_else(|| state.request_ids.next());
    req.headers_mut().insert(&X_REQUEST_ID, request_id.clone());

    // Clients whose API keys keep being refused are stopped here, before any backend call.
    let auth_client = match (&state.auth_failures, flavor) {
        (Some(failures), Flavor::OpenAi) => Some((failures, client_ip_of(&state, &req))),
        _ => None,
    };
    let blocked = auth_client.and_then(|(failures, ip)| failures.blocked(ip));

    let in_flight = state.metrics.in_flight.inc();
    let guard = InFlight(&state.metrics.in_flight);
    let mut response = if let Some(wait) = blocked {
        state.metrics.rate_limited.inc();
        ApiError::new(
            ErrorCode::RateLimited,
            format!("Too many requests with invalid API keys; retry in {wait} s."),
        )
        .with_flavor(flavor)
        .with_retry_after(wait)
        .into_response()
    } else if in_flight >= state.config.max_in_flight as u64 {
        state.metrics.shed.inc();
        ApiError::bilingual(
            ErrorCode::Unavailable,
            "Trop de requêtes en cours, veuillez réessayer.",
            "Too many requests in progress, please retry.",
        )
        .with_flavor(flavor)
        .with_retry_after(1)
        .into_response()
    } else {
        let limit = if is_chat {
            state.config.chat_timeout
        } else {
            state.config.request_timeout
        };
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::bilingual(
                ErrorCode::Timeout,
                "La requête a pris trop de temps.",
                "The request took too long.",
            )
            .with_flavor(flavor)
            .into_response(),
        }
    };
    drop(guard);

    let status = response.status();
    if status == http::StatusCode::UNAUTHORIZED
        && let Some((failures, ip)) = auth_client
    {
        failures.failed(ip);
    }
    if status.as_u16() >= 400
        && !is_json_response(response.headers())
        && response
            .extensions()
            .get::<crate::respond::HtmlPage>()
            .is_none()
    {
        response = as_json_error(response, flavor).await;
    }
    response.headers_mut().insert(&X_REQUEST_ID, request_id);
    state
        .metrics
        .record(route, &method, status.as_u16(), start.elapsed());
    if response.extensions().get::<BackendUnreachable>().is_some() {
        state.metrics.backend_unavailable.inc();
    }
    response
}

/// The client address of a request (the peer, or the trusted proxy's header).
fn client_ip_of(state: &AppState, req: &Request) -> std::net::IpAddr {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    crate::ratelimit::client_ip(peer, req.headers(), state.config.client_ip_header.as_ref())
}

fn is_json_response(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// Rewrites a non-JSON error answer as the JSON error body, keeping its status and headers.
async fn as_json_error(response: Response, flavor: Flavor) -> Response {
    let (mut parts, body) = response.into_parts();
    let status = parts.status;
    let code = code_for_status(status);
    let text = match body.collect().await {
        Ok(collected) => {
            let bytes = collected.to_bytes();
            String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned()
        }
        Err(_) => String::new(),
    };
    let json = match code {
        ErrorCode::RouteNotFound => not_found_error(),
        ErrorCode::MethodNotAllowed => ApiError::bilingual(
            code,
            "Méthode non autorisée sur cette route.",
            "Method not allowed on this route.",
        ),
        _ if !text.trim().is_empty() => ApiError::new(code, text.trim()),
        _ => ApiError::bilingual(
            code,
            status.canonical_reason().unwrap_or("Requête refusée"),
            status.canonical_reason().unwrap_or("Request refused"),
        ),
    }
    .with_flavor(flavor)
    .into_response();
    let (json_parts, json_body) = json.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    for (name, value) in &json_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, json_body)
}

/// Fallback for paths no route serves.
pub async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    match Flavor::of_path(path) {
        Flavor::OpenAi => unknown_endpoint(req.method(), path),
        Flavor::Rest => not_found_error(),
    }
    .with_flavor(Flavor::of_path(path))
    .into_response()
}

/// An OpenAI client library pointed at `/v1` may call an endpoint the platform does not serve
/// (the Vercel AI SDK's default model calls `/v1/responses`): its user must read which endpoint
/// failed and what to use instead, not a bare "no resource".
fn unknown_endpoint(method: &http::Method, path: &str) -> ApiError {
    // The path comes from the client: bounded, so the message stays readable.
    let shown: String = path.chars().take(120).collect();
    let served = "POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, GET /v1/models/{id}, GET /v1/usage";
    ApiError::bilingual(
        ErrorCode::RouteNotFound,
        format!(
            "Aucune ressource à cette adresse : {method} {shown} n'est pas un point d'accès de cette API, qui sert {served}."
        ),
        format!(
            "No resource at this address: {method} {shown} is not an endpoint of this API, which serves {served}."
        ),
    )
}

fn not_found_error() -> ApiError {
    ApiError::bilingual(
        ErrorCode::RouteNotFound,
        "Aucune ressource à cette adresse.",
        "No resource at this address.",
    )
}

/// One open server-sent event stream, counted until the stream is dropped (client gone, end,
/// shutdown). Streams outlive the request's in-flight accounting, so they have their own cap.
pub struct StreamSlot(AppState);

impl StreamSlot {
    pub fn acquire(state: &AppState, flavor: Flavor) -> Result<StreamSlot, ApiError> {
        let open = state.metrics.event_streams.inc();
        let slot = StreamSlot(state.clone());
        if open >= state.config.max_event_streams as u64 {
            state.metrics.shed.inc();
            return Err(ApiError::bilingual(
                ErrorCode::Unavailable,
                "Trop de flux ouverts, veuillez réessayer.",
                "Too many open streams, please retry.",
            )
            .with_flavor(flavor)
            .with_retry_after(5));
        }
        Ok(slot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.metrics.event_streams.dec();
    }
}
