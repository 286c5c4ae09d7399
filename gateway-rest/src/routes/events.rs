//! First-party, cookie-less event counting for the launch funnel: the landing page posts the
//! name of what happened (`landing_view`, `cta_click`, `code_check`) to `/api/evenements`, and
//! promo-service adds one to that day's count. Nothing about the visitor is sent on or stored —
//! no cookie, no IP, no user agent: the IP only draws from a per-IP budget held in this
//! process's memory, so one client cannot inflate the counts cheaply.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::read_json;
use crate::openapi::{family, rest};
use crate::state::AppState;
use crate::web_session::same_origin;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record))
}

/// The events counted (anything else is refused with 400).
#[derive(Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    LandingView,
    CtaClick,
    CodeCheck,
}

impl EventName {
    fn as_str(self) -> &'static str {
        match self {
            EventName::LandingView => "landing_view",
            EventName::CtaClick => "cta_click",
            EventName::CodeCheck => "code_check",
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[schema(inline)]
    event: EventName,
}

/// Counts one landing page event (no cookie, no personal data; per-IP rate limited).
#[utoipa::path(
    post,
    path = "/api/evenements",
    tag = "promo",
    request_body = Event,
    responses(
        (status = 204, description = "Counted."),
        family::PublicJson,
        (status = 403, response = inline(rest::Forbidden)),
    ),
)]
pub async fn record(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    state.check_rate(state.event_limiter.as_ref(), peer, &headers)?;
    let input: Event = read_json(&headers, body, state.config.body_limit).await?;
    let req = state.internal_request(
        pb::RecordEventRequest {
            event: input.event.as_str().to_owned(),
        },
        &headers,
        "page events cannot be counted",
        "Comptage momentanément indisponible.",
    )?;
    state.operators_client().record_event(req).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
