//! Chargily Pay's webhook, `POST /api/billing/chargily/webhook`: the raw body and its
//! `signature` header are handed unchanged to promo-service (internal token), which verifies the
//! signature over those exact bytes and records the payment once. Nothing is parsed here: a
//! re-serialised body would no longer match its signature.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::extract::read_body;
use crate::openapi::rest;
use crate::respond::json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhook))
}

#[derive(Serialize, ToSchema)]
pub struct Received {
    /// `paid`, `duplicate` (already recorded), `failed` or `ignored`.
    outcome: String,
}

/// Receives Chargily Pay's events (signed with the merchant's secret key).
#[utoipa::path(
    post,
    path = "/api/billing/chargily/webhook",
    tag = "billing",
    params(("signature" = String, Header, description = "Hex HMAC-SHA256 of the raw body with the Chargily secret key.")),
    request_body(content = String, content_type = "application/json", description = "Chargily's event, as sent."),
    responses(
        (status = 200, description = "Processed (or already processed).", body = Received),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 403, response = inline(rest::Forbidden)),
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
        (status = 413, response = inline(rest::PayloadTooLarge)),
    ),
)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let signature = headers
        .get("signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if signature.is_empty() {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "Signature manquante (en-tête signature).",
        ));
    }
    let raw = read_body(&headers, body, state.config.body_limit).await?;
    let req = state.internal_request(
        pb::ChargilyWebhookRequest {
            raw_body: raw.to_vec(),
            signature,
        },
        &headers,
        "Chargily webhooks cannot be processed",
        "Service momentanément indisponible.",
    )?;
    let r = state
        .billing_client()
        .handle_chargily_webhook(req)
        .await?
        .into_inner();
    Ok(json(StatusCode::OK, &Received { outcome: r.outcome }))
}
