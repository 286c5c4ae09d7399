//! The live counter of a promo code: `GET /api/promo/{code}/remaining` and its event stream,
//! served from the shared upstream streams of [`crate::live`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend;
use crate::edge::StreamSlot;
use crate::error::{ApiError, Flavor};
use crate::extract::path_param;
use crate::live;
use crate::openapi::rest;
use crate::respond::{json, sse};
use crate::state::AppState;

type ApiResult = Result<Response, ApiError>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(remaining))
        .routes(routes!(remaining_stream))
}

/// Places left on a promo code.
#[derive(Serialize, ToSchema)]
pub struct Remaining {
    code: String,
    remaining: u32,
    total: u32,
    percent_filled: f64,
    unlimited: bool,
}

impl From<pb::Remaining> for Remaining {
    fn from(r: pb::Remaining) -> Self {
        Remaining {
            code: r.code,
            remaining: r.remaining,
            total: r.total,
            percent_filled: r.percent_filled,
            unlimited: r.unlimited,
        }
    }
}

/// One server-sent event of the live counter.
// Documentation only: axum's `Event` writes it.
#[derive(ToSchema)]
pub struct RemainingEvent {
    /// `remaining`.
    pub event: Option<String>,
    /// JSON of a `Remaining`.
    pub data: String,
    pub id: Option<String>,
    /// Reconnection delay in milliseconds (first event only).
    pub retry: Option<u64>,
}

/// The JSON of `GET /remaining`, encoded once per change for every viewer.
pub fn encode_remaining(r: pb::Remaining) -> bytes::Bytes {
    serde_json::to_vec(&Remaining::from(r))
        .unwrap_or_default()
        .into()
}

/// Places left on a promo code.
#[utoipa::path(
    get,
    path = "/api/promo/{code}/remaining",
    tag = "promo",
    params(("code" = String, Path, description = "Promo code, any case (`launch30` = `LAUNCH30`).")),
    responses(
        (status = 200, description = "Places left.", body = Remaining),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
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
    let r = match state.promo_client().get_remaining(req).await {
        Ok(r) => r.into_inner(),
        Err(status) => return Err(probe_refusal(&state, peer, &headers, status.into())),
    };
    if cached {
        // Watch under the canonical name promo-service answered with.
        state.live.watch(live::key(&r.code));
    }
    Ok(json(StatusCode::OK, &Remaining::from(r)))
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
    match state.check_rate(state.validate_limiter.as_ref(), peer, headers) {
        Ok(()) => err,
        Err(limited) => limited,
    }
}

fn cached_json(body: bytes::Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("x-iaf-cache", HeaderValue::from_static("hit"));
    response
}

/// Places left as server-sent events: `remaining` events (JSON like /remaining) now and on every change, keep-alive comments in between.
//
// Every viewer of a code shares the gateway's one upstream stream of it (see `live`). The first
// value is awaited before answering, so an unknown code is a plain 404 rather than an event
// stream that fails. The stream ends when the client goes away, when the upstream stream ends
// (the browser reconnects after the `retry:` delay the first event announced, jittered per
// viewer so a crowd does not come back at once), or on shutdown.
#[utoipa::path(
    get,
    path = "/api/promo/{code}/remaining/stream",
    tag = "promo",
    params(("code" = String, Path, description = "Promo code, any case (`launch30` = `LAUNCH30`).")),
    responses(
        (status = 200, description = "Event stream.", content_type = "text/event-stream", body = RemainingEvent),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn remaining_stream(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    code: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let code = path_param(code)?;
    let slot = StreamSlot::acquire(&state, Flavor::Rest)?;
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
