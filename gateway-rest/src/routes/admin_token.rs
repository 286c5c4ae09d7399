//! What the routes opened by the operator's admin token (`/api/promo` admin, `/api/billing`)
//! share: the token's presence is checked before a body is read, and the token travels as sent
//! to promo-service, which decides whether it is the right one.

use axum::body::Body;
use http::HeaderMap;
use iafactory::ErrorCode;
use serde::de::DeserializeOwned;

use crate::backend::{self, Forward};
use crate::error::ApiError;
use crate::extract::bearer;

/// Refuses a request without any `Authorization: Bearer …`. Whether the token is the right one
/// is promo-service's decision.
pub fn require_bearer(headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Jeton d'administration manquant (Authorization: Bearer …).",
        )),
    }
}

/// The JSON body of an admin write, read only once a token is present: an anonymous caller
/// learns nothing about the expected shape.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    require_bearer(headers)?;
    crate::extract::read_json(headers, body, limit).await
}

/// A promo-service request carrying the caller's token.
pub fn request<T>(message: T, headers: &HeaderMap) -> Result<tonic::Request<T>, ApiError> {
    backend::request(message, headers, &[Forward::Authorization])
}
