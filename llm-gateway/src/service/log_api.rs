//! `iafactory.llm.v1.RequestLog`: the request log's pages for the console (internal token),
//! a customer's own calls (their API key), and the providers' statistics drawn from it.

use std::sync::Arc;

use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;
use pb::request_log_server::RequestLog as RequestLogRpc;
use tonic::{Request, Response, Status};

use super::shared::Shared;
use crate::error::GatewayError;
use crate::request_log::query::{self, Cursor, Filter};
use crate::request_log::{KEY_PREFIX_LEN, LogRow};

/// Rows a page holds by default and at most.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;
/// Calls the providers' statistics read at most (the newest of the window).
const MAX_STAT_ROWS: usize = 200_000;
/// The statistics window, hours: default and at most (30 days).
const DEFAULT_HOURS: u32 = 24;
const MAX_HOURS: u32 = 720;

#[derive(Clone)]
pub struct RequestLogApi {
    pub shared: Arc<Shared>,
}

fn internal_only(shared: &Shared, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
    let allowed = iafactory::grpc::bearer_token(metadata)
        .zip(shared.internal.as_ref())
        .is_some_and(|(presented, token)| token.matches(presented));
    if allowed {
        Ok(())
    } else {
        Err(GatewayError::Forbidden(
            "this RequestLog RPC is internal: send authorization: Bearer <INTERNAL_TOKEN>",
        )
        .into())
    }
}

fn page_size(asked: u32) -> Result<usize, GatewayError> {
    match asked as usize {
        0 => Ok(DEFAULT_PAGE),
        n if n <= MAX_PAGE => Ok(n),
        _ => Err(GatewayError::param(
            "page_size",
            format!("page_size: at most {MAX_PAGE}"),
        )),
    }
}

fn cursor(token: &str) -> Result<Option<Cursor>, GatewayError> {
    if token.is_empty() {
        return Ok(None);
    }
    Cursor::parse(token).map(Some).ok_or_else(|| {
        GatewayError::param("page_token", "page_token: not a token from a previous page")
    })
}

/// A filter text: at most 128 printable characters.
fn text(field: &'static str, v: &str) -> Result<String, GatewayError> {
    if v.len() > 128 || v.chars().any(char::is_control) {
        return Err(GatewayError::param(
            field,
            format!("{field}: at most 128 printable characters"),
        ));
    }
    Ok(v.trim().to_owned())
}

fn range(since_ms: i64, until_ms: i64) -> Result<(), GatewayError> {
    if since_ms < 0 || until_ms < 0 || (until_ms > 0 && since_ms > until_ms) {
        return Err(GatewayError::param(
            "since_ms",
            "since_ms and until_ms: Unix milliseconds, since before until",
        ));
    }
    Ok(())
}

fn filter_of(r: &pb::ListRequestsRequest) -> Result<Filter, GatewayError> {
    range(r.since_ms, r.until_ms)?;
    let key_prefix = text("key_prefix", &r.key_prefix)?;
    let well_formed = (4..=KEY_PREFIX_LEN).contains(&key_prefix.len())
        && key_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !key_prefix.is_empty() && !well_formed {
        return Err(GatewayError::param(
            "key_prefix",
            format!("key_prefix: 4 to {KEY_PREFIX_LEN} characters of a key (`iaf_AbCdEf`)"),
        ));
    }
    let status = text("status", &r.status)?;
    if !status.is_empty() && !status.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(GatewayError::param(
            "status",
            "status: `ok`, `error` or an error code such as `quota_exceeded`",
        ));
    }
    Ok(Filter {
        user_id: text("customer_id", &r.customer_id)?,
        key_prefix,
        model: text("model", &r.model)?,
        provider: text("provider", &r.provider)?,
        status,
        since_ms: r.since_ms,
        until_ms: r.until_ms,
    })
}

fn to_pb(r: LogRow) -> pb::LoggedRequest {
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    pb::LoggedRequest {
        id: r.id,
        at_ms: r.at_ms,
        customer_id: r.user_id,
        key_prefix: r.key_prefix,
        kind: r.kind,
        model: r.model,
        provider: r.provider,
        upstream_model: r.upstream_model,
        prompt_tokens: u(r.prompt_tokens),
        completion_tokens: u(r.completion_tokens),
        cost_nano_usd: r.cost_nano_usd,
        latency_ms: u(r.latency_ms),
        time_to_first_token_ms: r.ttft_ms.map(u),
        attempts: u32::try_from(r.attempts).unwrap_or(0),
        fallbacks: u32::try_from(r.fallbacks).unwrap_or(0),
        status: r.status,
        error_code: r.error_code,
    }
}

impl RequestLogApi {
    async fn page(
        &self,
        filter: &Filter,
        size: u32,
        token: &str,
    ) -> Result<pb::ListRequestsResponse, GatewayError> {
        let size = page_size(size)?;
        let after = cursor(token)?;
        let (rows, next) = self
            .shared
            .usage
            .store()
            .list_request_log(filter, after.as_ref(), size)
            .await?;
        Ok(pb::ListRequestsResponse {
            requests: rows.into_iter().map(to_pb).collect(),
            next_page_token: next.map(|c| c.token()).unwrap_or_default(),
        })
    }
}

#[tonic::async_trait]
impl RequestLogRpc for RequestLogApi {
    async fn list_requests(
        &self,
        request: Request<pb::ListRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        internal_only(&self.shared, request.metadata())?;
        let r = request.get_ref();
        let filter = filter_of(r)?;
        Ok(Response::new(
            self.page(&filter, r.page_size, &r.page_token).await?,
        ))
    }

    async fn list_my_requests(
        &self,
        request: Request<pb::ListMyRequestsRequest>,
    ) -> Result<Response<pb::ListRequestsResponse>, Status> {
        let key = self.shared.auth.authenticate(request.metadata()).await?;
        let r = request.get_ref();
        range(r.since_ms, r.until_ms)?;
        let filter = Filter {
            user_id: key.quota_subject().to_owned(),
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            ..Filter::default()
        };
        let mut page = self.page(&filter, r.page_size, &r.page_token).await?;
        // Customers see tokens, not our cost price.
        for row in &mut page.requests {
            row.cost_nano_usd = 0;
        }
        Ok(Response::new(page))
    }

    async fn provider_stats(
        &self,
        request: Request<pb::ProviderStatsRequest>,
    ) -> Result<Response<pb::ProviderStatsResponse>, Status> {
        internal_only(&self.shared, request.metadata())?;
        let hours = match request.get_ref().hours {
            0 => DEFAULT_HOURS,
            h if h <= MAX_HOURS => h,
            _ => {
                return Err(
                    GatewayError::param("hours", format!("hours: 1 to {MAX_HOURS}")).into(),
                );
            }
        };
        let since = now_millis() - i64::from(hours) * 3_600_000;
        let rows = self
            .shared
            .usage
            .store()
            .request_log_stats_rows(since, MAX_STAT_ROWS + 1)
            .await
            .map_err(GatewayError::from)?;
        let truncated = rows.len() > MAX_STAT_ROWS;
        let rows = &rows[..rows.len().min(MAX_STAT_ROWS)];
        let (figures, days) = query::provider_figures(rows);
        Ok(Response::new(pb::ProviderStatsResponse {
            hours,
            providers: figures
                .into_iter()
                .map(|(provider, f)| pb::ProviderWindowStats {
                    provider,
                    calls: f.calls,
                    errors: f.errors,
                    p50_latency_ms: f.p50_ms,
                    p95_latency_ms: f.p95_ms,
                    cost_nano_usd: f.cost_nano_usd,
                })
                .collect(),
            days: days
                .into_iter()
                .map(|((provider, day), (calls, cost))| pb::ProviderDayCost {
                    provider,
                    day,
                    calls,
                    cost_nano_usd: cost,
                })
                .collect(),
            truncated,
        }))
    }
}
