//! The request log as CSV (`/api/admin/appels/export.csv`, the "Exporter en CSV" button of the
//! console's "Journal des appels"): the page's filters, every matching call, owner only.
//!
//! Streamed, never built in memory: the log can hold millions of rows, so the answer is written
//! page by page ([`PAGE`] rows, llm-gateway's keyset pages, newest first) as the client reads
//! it; a slow reader slows the paging down, it does not pile rows up here. Rows arriving during
//! the export are newer than its first page and are left out (the keyset walks down from where
//! it started), so the file is one consistent walk, not a mix.
//!
//! The first page is read before the answer starts: a refused filter, an unreachable
//! llm-gateway or a support operator get their 4xx/503 with a JSON body. A failure after the
//! first bytes cannot change the status any more; the body is then cut (the chunked transfer
//! ends without its last chunk), which every HTTP client reports as an error, so a partial file
//! is never taken for a whole one.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::csv;
use iafactory::proto::iafactory::llm::v1 as llm;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_calls::rfc3339;
use super::admin_session::operator_request;
use crate::error::ApiError;
use crate::openapi::rest;
use crate::state::AppState;
use crate::web_session::private;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(export))
}

/// Rows read from llm-gateway at a time (its largest page).
pub const PAGE: u32 = 200;

/// The header row; each call's line has these cells in this order.
pub const HEADER: [&str; 17] = [
    "id",
    "at",
    "customer_id",
    "key_prefix",
    "kind",
    "model",
    "provider",
    "upstream_model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "attempts",
    "fallbacks",
    "status",
    "error_code",
];

/// The filters of "Journal des appels" (the same names as `/api/admin/appels`, without paging).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallsFilter {
    /// Customer id (`usr_…`).
    #[serde(default)]
    client: Option<String>,
    /// Start of the key (`iaf_AbCd`, 4 to 10 characters).
    #[serde(default)]
    cle: Option<String>,
    /// Public model.
    #[serde(default)]
    modele: Option<String>,
    /// Provider.
    #[serde(default)]
    fournisseur: Option<String>,
    /// `ok`, `error` or an error code (`quota_exceeded`, `upstream_error`, …).
    #[serde(default)]
    statut: Option<String>,
    /// From this instant, Unix milliseconds (included).
    #[serde(default)]
    depuis: Option<i64>,
    /// Until this instant, Unix milliseconds (excluded).
    #[serde(default)]
    jusqua: Option<i64>,
}

impl CallsFilter {
    fn page(&self, page_token: String) -> llm::ListRequestsRequest {
        llm::ListRequestsRequest {
            customer_id: self.client.clone().unwrap_or_default(),
            key_prefix: self.cle.clone().unwrap_or_default(),
            model: self.modele.clone().unwrap_or_default(),
            provider: self.fournisseur.clone().unwrap_or_default(),
            status: self.statut.clone().unwrap_or_default(),
            since_ms: self.depuis.unwrap_or(0),
            until_ms: self.jusqua.unwrap_or(0),
            page_size: PAGE,
            page_token,
        }
    }
}

/// Nano-dollars as an exact decimal number of dollars (`0.000140000`): the CSV is for
/// spreadsheets and accounting, where a float's rounding would not add up.
fn usd_exact(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let n = nano.unsigned_abs();
    format!("{sign}{}.{:09}", n / 1_000_000_000, n % 1_000_000_000)
}

fn line(r: &llm::LoggedRequest) -> String {
    csv::line(&[
        r.id.clone(),
        rfc3339(r.at_ms),
        r.customer_id.clone(),
        r.key_prefix.clone(),
        r.kind.clone(),
        r.model.clone(),
        r.provider.clone(),
        r.upstream_model.clone(),
        r.prompt_tokens.to_string(),
        r.completion_tokens.to_string(),
        usd_exact(r.cost_nano_usd),
        r.latency_ms.to_string(),
        r.time_to_first_token_ms
            .map(|t| t.to_string())
            .unwrap_or_default(),
        r.attempts.to_string(),
        r.fallbacks.to_string(),
        r.status.clone(),
        r.error_code.clone(),
    ])
}

fn chunk(rows: &[llm::LoggedRequest], header: bool) -> Bytes {
    let mut out = String::with_capacity(rows.len() * 160 + 200);
    if header {
        out.push_str(&csv::line(&HEADER));
    }
    for r in rows {
        out.push_str(&line(r));
    }
    Bytes::from(out)
}

/// Every call matching the filters of "Journal des appels", as CSV (UTF-8, a header row,
/// newest first; owner only: support is refused with 403). Streamed page by page.
#[utoipa::path(
    get,
    path = "/api/admin/appels/export.csv",
    tag = "console",
    params(CallsFilter),
    security(("operatorSession" = [])),
    responses(
        (status = 200, description = "CSV, one call per line after the header row.", content_type = "text/csv", body = String),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 403, response = inline(rest::Forbidden)),
    ),
)]
pub async fn export(
    State(state): State<AppState>,
    query: Result<Query<CallsFilter>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(filter) =
        query.map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e.body_text()))?;
    // A read, but of every customer's activity in bulk: owners only, like the customers' export.
    let who = state
        .operators_client()
        .who_am_i(operator_request(pb::WhoAmIRequest {}, &headers, false)?)
        .await?
        .into_inner();
    if who.role != i32::from(pb::OperatorRole::Owner) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "L'export du journal des appels est réservé aux opérateurs « propriétaire » (le rôle support est en lecture seule).",
        ));
    }
    let mut client = state.request_log_client();
    let first = client
        .list_requests(state.internal_llm_request(
            filter.page(String::new()),
            &headers,
            "the request log",
        )?)
        .await?
        .into_inner();
    let body = async_stream::stream! {
        yield Ok::<Bytes, std::io::Error>(chunk(&first.requests, true));
        let mut next = first.next_page_token;
        while !next.is_empty() {
            let req = match state.internal_llm_request(
                filter.page(std::mem::take(&mut next)),
                &headers,
                "the request log",
            ) {
                Ok(req) => req,
                Err(_) => {
                    yield Err(std::io::Error::other("request log export: no internal token"));
                    return;
                }
            };
            match client.list_requests(req).await {
                Ok(page) => {
                    let page = page.into_inner();
                    yield Ok(chunk(&page.requests, false));
                    next = page.next_page_token;
                }
                Err(status) => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "request log export cut short: a page could not be read");
                    yield Err(std::io::Error::other("request log export: a page could not be read"));
                    return;
                }
            }
        }
    };
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"appels.csv\""),
    );
    Ok(private(response))
}

#[cfg(test)]
mod tests {
    use super::usd_exact;

    #[test]
    fn dollars_are_exact_decimals() {
        assert_eq!(usd_exact(0), "0.000000000");
        assert_eq!(usd_exact(140_000), "0.000140000");
        assert_eq!(usd_exact(1_234_567_890_123), "1234.567890123");
        assert_eq!(usd_exact(-5), "-0.000000005");
    }
}
