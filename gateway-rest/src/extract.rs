//! Reading requests: bodies (content-type check 415, size limit 413, JSON decoding 400), path
//! parameters, and the bearer token.
//!
//! An oversized body is read and thrown away (up to [`DRAIN_CAP`]) before answering 413: a server
//! that answers early and closes a socket with unread data makes the kernel send a reset, and the
//! client then often loses the 413 itself and sees "connection reset" instead.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;
use iafactory::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest body read (and discarded) to answer 413 cleanly; past it the connection is dropped.
pub const DRAIN_CAP: usize = 32 * 1024 * 1024;

/// True for `application/json` and `application/*+json`, with any parameters.
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Reads the whole body, at most `limit` bytes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ApiError::bilingual(
            ErrorCode::PayloadTooLarge,
            format!("Corps de requête trop volumineux (maximum {limit} octets)."),
            format!("Request body too large (at most {limit} bytes)."),
        )
    };
    if declared.is_some_and(|n| n > DRAIN_CAP as u64) {
        return Err(too_large());
    }
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bilingual(
                ErrorCode::InvalidArgument,
                format!("Corps de requête illisible : {e}"),
                format!("Unreadable request body: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            if seen > DRAIN_CAP {
                break;
            }
            continue;
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(f), None) => {
                let mut buf = BytesMut::with_capacity(
                    declared
                        .and_then(|n| usize::try_from(n).ok())
                        .unwrap_or(0)
                        .clamp(f.len() + data.len(), limit),
                );
                buf.extend_from_slice(f);
                buf.extend_from_slice(&data);
                rest = Some(buf);
            }
            (Some(_), Some(buf)) => buf.extend_from_slice(&data),
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(match rest {
        Some(buf) => buf.freeze(),
        None => first.unwrap_or_default(),
    })
}

/// Reads a JSON body into `T`.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = read_json_bytes(headers, body, limit).await?;
    parse_json(&bytes)
}

/// Reads a body that must be JSON (415 otherwise), without decoding it.
pub async fn read_json_bytes(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if !is_json(headers) {
        // Read what was sent so the 415 reaches the client (see the module doc).
        let _ = read_body(headers, body, limit).await;
        return Err(ApiError::bilingual(
            ErrorCode::UnsupportedMediaType,
            "Le corps doit être du JSON (Content-Type: application/json).",
            "The body must be JSON (Content-Type: application/json).",
        ));
    }
    read_body(headers, body, limit).await
}

/// Decodes JSON, telling a syntax error (`malformed_json`) from a well-formed document with wrong
/// types or missing fields (`invalid_argument`).
///
/// Every body of this API is a JSON object. serde would also fill a struct from an array
/// (`["LAUNCH30"]` as `{"code":"LAUNCH30"}`), so anything but an object is refused first.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Empty or not JSON at all: serde describes the syntax error below.
    if is_json_non_object(bytes) {
        return Err(not_an_object());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                ApiError::new(ErrorCode::InvalidArgument, format!("Champ invalide : {e}"))
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::new(ErrorCode::MalformedJson, format!("JSON invalide : {e}"))
            }
        }
    })
}

/// The refusal of a body that is JSON but not an object.
pub fn not_an_object() -> ApiError {
    ApiError::bilingual(
        ErrorCode::InvalidArgument,
        "Le corps doit être un objet JSON.",
        "The body must be a JSON object.",
    )
}

/// True when a body, once its leading whitespace is skipped, cannot be a JSON object although
/// it may be valid JSON (an array, a string, a number, a literal).
pub fn is_json_non_object(bytes: &[u8]) -> bool {
    matches!(
        bytes.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    )
}

/// A path parameter; a malformed one (bad percent-encoding, not UTF-8) is a 400 in our error
/// shape rather than axum's plain-text rejection.
pub fn path_param<T>(
    param: Result<axum::extract::Path<T>, axum::extract::rejection::PathRejection>,
) -> Result<T, ApiError> {
    param
        .map(|axum::extract::Path(p)| p)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))
}

/// A query string; a malformed one (wrong types, unknown fields) is a 400 in our error shape
/// rather than axum's plain-text rejection.
pub fn query_param<T>(
    query: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    query
        .map(|axum::extract::Query(q)| q)
        .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))
}

/// The token of an `Authorization: Bearer …` header, if there is a non-empty one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ct(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&ct("application/json")));
        assert!(is_json(&ct("Application/JSON; charset=utf-8")));
        assert!(is_json(&ct("application/merge-patch+json")));
        assert!(!is_json(&ct("text/plain")));
        assert!(!is_json(&ct("application/jsonx")));
        assert!(!is_json(&ct("+json")));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn limits_and_errors() {
        let h = ct("application/json");
        let ok: Result<serde_json::Value, _> = read_json(&h, Body::from("{\"a\":1}"), 1024).await;
        assert!(ok.is_ok());
        let big: Result<serde_json::Value, _> =
            read_json(&h, Body::from(vec![b' '; 2048]), 1024).await;
        assert_eq!(
            big.err().map(|e| e.error.code),
            Some(ErrorCode::PayloadTooLarge)
        );
        let bad: Result<serde_json::Value, _> = read_json(&h, Body::from("{"), 1024).await;
        assert_eq!(
            bad.err().map(|e| e.error.code),
            Some(ErrorCode::MalformedJson)
        );
        #[derive(serde::Deserialize, Debug)]
        #[expect(
            dead_code,
            reason = "only its type matters: the body must not deserialize"
        )]
        struct T {
            a: u32,
        }
        let wrong: Result<T, _> = read_json(&h, Body::from("{\"a\":\"x\"}"), 1024).await;
        assert_eq!(
            wrong.err().map(|e| e.error.code),
            Some(ErrorCode::InvalidArgument)
        );
        let array: Result<T, _> = read_json(&h, Body::from("[1]"), 1024).await;
        assert_eq!(
            array.err().map(|e| e.error.code),
            Some(ErrorCode::InvalidArgument)
        );
        let wrong: Result<T, _> = read_json(&h, Body::from("{\"a\":\"x\"}"), 1024).await;
        assert_eq!(
            wrong.err().map(|e| e.error.code),
            Some(ErrorCode::InvalidArgument)
        );
    }
}
