//! Browser sessions held in a cookie, shared by the customer account (`/compte/`) and the
//! operator console (`/admin/`): reading the cookie, setting and clearing it with the same
//! attributes, refusing cross-site writes, and keeping session answers out of caches. Each room
//! names its own cookie; the session store and the CSRF check are promo-service's.
//!
//! The cookie is `HttpOnly` (scripts never read it), `SameSite=Strict` (no other site's page
//! sends it), `Path=/`, `Secure` when the request came over HTTPS (`X-Forwarded-Proto: https`
//! from the TLS proxy), with a `Max-Age` equal to the session's absolute lifetime.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, COOKIE, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::AsciiMetadataValue;

use crate::error::{ApiError, ApiResult};
use crate::extract::read_json;
use crate::respond::json;

/// The pages' header carrying the session's CSRF token (both kinds of session).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A kind of browser session: the cookie that holds it and the gRPC metadata promo-service reads
/// it from. The two kinds differ only in these names; everything else is this module's.
pub struct Session {
    /// Name of the cookie.
    pub cookie: &'static str,
    /// Metadata key carrying the cookie's token to promo-service.
    metadata: &'static str,
}

/// The customer account's session (`/compte/`).
pub const CUSTOMER: Session = Session {
    cookie: "iaf_session",
    metadata: "x-iaf-session",
};

/// The operator console's session (`/admin/`).
pub const OPERATOR: Session = Session {
    cookie: "iaf_operator",
    metadata: "x-iaf-operator-session",
};

impl Session {
    /// A promo-service request in the caller's session; `change`: a state-changing call (same
    /// origin required, and the CSRF token carried for promo-service to check).
    pub fn request<T>(
        &self,
        message: T,
        headers: &HeaderMap,
        change: bool,
    ) -> Result<tonic::Request<T>, ApiError> {
        if change {
            same_origin(headers)?;
        }
        Ok(tonic::Request::from_parts(
            self.call_metadata(headers, change)?,
            http::Extensions::default(),
            message,
        ))
    }

    /// A call's metadata with the session's cookie (and CSRF token on a change); not generic,
    /// like most of a request's making.
    fn call_metadata(
        &self,
        headers: &HeaderMap,
        change: bool,
    ) -> Result<tonic::metadata::MetadataMap, ApiError> {
        let mut md = crate::backend::metadata(headers, &[])?;
        if let Some(token) = session_cookie(headers, self.cookie) {
            md.insert(self.metadata, ascii(token)?);
        }
        if change
            && let Some(csrf) = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
            && let Ok(v) = AsciiMetadataValue::try_from(csrf)
        {
            md.insert("x-iaf-csrf", v);
        }
        Ok(md)
    }

    /// The `Set-Cookie` value giving this session's cookie `value` (empty with 0: clears it).
    pub fn set_cookie(
        &self,
        headers: &HeaderMap,
        value: &str,
        max_age_secs: i64,
    ) -> Option<HeaderValue> {
        cookie(headers, self.cookie, value, max_age_secs)
    }
}

/// The JSON body of a state-changing call in a browser session. A cross-site request is refused
/// before the body is read: another site's page learns nothing about the expected shape.
pub async fn read_change<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    same_origin(headers)?;
    read_json(headers, body, limit).await
}

/// A 200 JSON answer of session data (kept out of caches, see [`private`]).
pub fn ok<T: Serialize>(value: &T) -> ApiResult {
    Ok(private(json(StatusCode::OK, value)))
}

/// The value of the cookie `name` in the request, if any.
pub fn session_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// A session token as gRPC metadata (a cookie that is not ASCII is no session of ours).
pub fn ascii(value: &str) -> Result<AsciiMetadataValue, ApiError> {
    AsciiMetadataValue::try_from(value).map_err(|_| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "Session invalide : reconnectez-vous.",
        )
    })
}

/// Refuses a cross-site request: an `Origin` whose host is not the `Host` asked for. (Browsers
/// send `Origin` on every POST; its absence means a non-browser client, which carries no
/// ambient cookie of a victim.)
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.trim_end_matches('/'));
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::CsrfFailed,
            "Requête refusée : elle vient d'un autre site.",
        ))
    }
}

/// True when the browser reached the platform over HTTPS (through the TLS proxy).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value giving cookie `name` the `value` (empty with 0: clears it).
pub fn cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age_secs: i64,
) -> Option<HeaderValue> {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .ok()
}

/// Seconds from now until the RFC 3339 instant `expires_at` (0 if unreadable or past).
pub fn max_age(expires_at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(expires_at)
        .map(|t| (t.timestamp() - chrono::Utc::now().timestamp()).max(0))
        .unwrap_or(0)
}

/// Session data is the signed-in person's own: never stored by a shared cache or the browser's.
pub fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
