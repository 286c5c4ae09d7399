//! How every room writes its answers: JSON bodies, event streams, and the proto convention that
//! an empty string means "none" (JSON `null`).

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use iafactory::ErrorCode;
use serde::Serialize;

use crate::error::ApiError;

/// Serializes `value` as the JSON answer.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    // Only the encoding depends on `T`; the answer around it is built once for every type (this
    // is called for some seventy types: keeping it small keeps the crate's build short).
    encoded_json(status, serde_json::to_vec(value))
}

fn encoded_json(status: StatusCode, encoded: serde_json::Result<Vec<u8>>) -> Response {
    match encoded {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a response");
            ApiError::new(ErrorCode::Internal, "Erreur interne.").into_response()
        }
    }
}

/// An SSE answer with keep-alive comments and proxy buffering disabled.
pub fn sse<S>(events: S, keep_alive: Duration) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Marks a server-rendered HTML page answered with an error status (an e-mail link that does
/// not work): the edge keeps it as it is instead of rewriting it as a JSON error, since a person
/// reads it in a browser.
#[derive(Clone, Copy)]
pub struct HtmlPage;

/// A French HTML page with the landing page's security headers (no script; forms post to the
/// same origin only).
pub fn html_page(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response.extensions_mut().insert(HtmlPage);
    response
}

/// proto3 has no absent string: an empty one is answered as `null`.
pub fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}
