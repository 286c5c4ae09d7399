//! Operational routes: `/livez` (the process serves), `/readyz` (both backends SERVING, else 503),
//! `/healthz` (backend reachability, always 200), `/metrics` (Prometheus), `/openapi.json`, and the
//! landing page's static files under `/api-packages/`.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode, Uri};
use serde::Serialize;
use tonic_health::pb::health_check_response::ServingStatus;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::error::ApiError;
use crate::promo::json;
use crate::{AppState, Config};
use iafactory::ErrorCode;

#[derive(Serialize, Clone)]
struct BackendHealth {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
struct Healthz {
    status: &'static str,
    backends: Backends,
}

#[derive(Serialize, Clone)]
struct Backends {
    #[serde(rename = "promo-service")]
    promo: BackendHealth,
    #[serde(rename = "llm-gateway")]
    llm: BackendHealth,
}

fn backend_health(result: Result<ServingStatus, String>) -> BackendHealth {
    match result {
        Ok(ServingStatus::Serving) => BackendHealth {
            status: "serving",
            detail: None,
        },
        Ok(other) => BackendHealth {
            status: "not_serving",
            detail: Some(other.as_str_name().to_ascii_lowercase()),
        },
        Err(detail) => BackendHealth {
            status: "unreachable",
            detail: Some(detail),
        },
    }
}

/// Time each backend has to answer `grpc.health.v1` for `/healthz` and `/readyz`.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a `/readyz` verdict is reused: a load balancer (or a crowd) polling it costs the
/// backends at most one health check each per this interval.
pub const READY_CACHE_TTL: Duration = Duration::from_secs(1);

async fn check_backends(state: &AppState) -> Backends {
    let (promo, llm) = tokio::join!(
        state.promo.health(HEALTH_CHECK_TIMEOUT),
        state.llm.health(HEALTH_CHECK_TIMEOUT)
    );
    Backends {
        promo: backend_health(promo),
        llm: backend_health(llm),
    }
}

/// `GET /livez`: 200 as long as the process serves HTTP; asks nothing of the backends (a
/// backend outage is no reason to restart the edge).
pub async fn livez() -> Response {
    no_store(json(StatusCode::OK, &serde_json::json!({"status": "ok"})))
}

/// The last `/readyz` verdict, reused for [`READY_CACHE_TTL`].
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Backends)>>,
}

impl Readiness {
    /// Both backends' state, checked at most once per [`READY_CACHE_TTL`]. The lock is held
    /// during a check, so concurrent requests wait for it (at most [`HEALTH_CHECK_TIMEOUT`])
    /// instead of each sending checks of their own.
    async fn backends(&self, state: &AppState) -> Backends {
        let mut last = self.last.lock().await;
        if let Some((at, backends)) = last.as_ref()
            && at.elapsed() < READY_CACHE_TTL
        {
            return backends.clone();
        }
        let backends = check_backends(state).await;
        *last = Some((Instant::now(), backends.clone()));
        backends
    }
}

/// `GET /readyz`: 200 `{"status":"ready","backends":…}` when both promo-service and llm-gateway
/// answer `grpc.health.v1` SERVING (within [`HEALTH_CHECK_TIMEOUT`]); otherwise 503 with the JSON
/// error body (`unavailable`), `Retry-After`, and each backend's state under `backends`. The
/// verdict is cached for [`READY_CACHE_TTL`]. The container health check
/// (`gateway-rest healthcheck`) asks this route.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let backends = state.readiness.backends(&state).await;
    let not_ready: Vec<&str> = [
        ("promo-service", &backends.promo),
        ("llm-gateway", &backends.llm),
    ]
    .into_iter()
    .filter(|(_, b)| b.status != "serving")
    .map(|(name, _)| name)
    .collect();
    if not_ready.is_empty() {
        return no_store(json(
            StatusCode::OK,
            &serde_json::json!({"status": "ready", "backends": backends}),
        ));
    }
    let error = ApiError::new(
        ErrorCode::Unavailable,
        format!("Service pas prêt : {} indisponible.", not_ready.join(", ")),
    )
    .with_retry_after(READY_CACHE_TTL.as_secs().max(1));
    let mut body = serde_json::from_slice::<serde_json::Value>(&error.body())
        .unwrap_or_else(|_| serde_json::json!({}));
    body["status"] = serde_json::json!("not_ready");
    body["backends"] = serde_json::to_value(&backends).unwrap_or_default();
    let mut response = no_store(json(StatusCode::SERVICE_UNAVAILABLE, &body));
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(READY_CACHE_TTL.as_secs().max(1)),
    );
    response
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /healthz`: gateway-rest itself is up (always 200 while it answers); `status` is `ok` when
/// every backend answers `grpc.health.v1` as SERVING, `degraded` otherwise, with each backend's
/// state. A load balancer should not take the edge out of rotation because one backend is down:
/// the routes of the other keep working, and the failing ones answer 503 with Retry-After.
/// Unchanged by `/livez` and `/readyz`, and not cached: a view for people and dashboards.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let backends = check_backends(&state).await;
    let ok = backends.promo.status == "serving" && backends.llm.status == "serving";
    let mut response = json(
        StatusCode::OK,
        &Healthz {
            status: if ok { "ok" } else { "degraded" },
            backends,
        },
    );
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /openapi.json`
pub async fn openapi(State(state): State<AppState>) -> Response {
    let mut response = state.openapi.clone().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The landing page, built into the binary (so a binary copied anywhere serves it).
#[derive(rust_embed::Embed)]
#[folder = "static/api-packages"]
struct Landing;

/// Where the landing page's files come from: the copy built into the binary, or a folder given
/// at start (`STATIC_DIR`).
///
/// From a folder, only the regular files found in it at start are served (paths as the URL
/// spells them): a symbolic link is never followed, so a link placed in the folder cannot expose
/// a file outside it; a request for anything else — an over-long name the file system would
/// refuse, a path with `..` or encoded characters — is a 404 without touching the file system.
#[derive(Clone)]
pub enum StaticFiles {
    Embedded,
    Folder {
        service: ServeDir,
        files: std::sync::Arc<std::collections::HashSet<String>>,
    },
}

/// The landing page's files for `config`; an override folder that is not a folder is an error.
pub fn static_files(config: &Config) -> Result<StaticFiles, crate::ServeError> {
    let Some(dir) = &config.static_dir else {
        return Ok(StaticFiles::Embedded);
    };
    if !dir.is_dir() {
        return Err(crate::ServeError::StaticDir(dir.clone()));
    }
    let mut files = std::collections::HashSet::new();
    collect_files(dir, "/", &mut files, 0);
    if !files.contains("/index.html") {
        tracing::warn!(dir = %dir.display(), "no index.html in the landing page folder");
    }
    tracing::info!(dir = %dir.display(), files = files.len(), "landing page served from a folder");
    Ok(StaticFiles::Folder {
        service: ServeDir::new(dir).append_index_html_on_directories(true),
        files: std::sync::Arc::new(files),
    })
}

/// Regular files under `dir`, as URL paths below `prefix` (a few levels deep at most).
fn collect_files(
    dir: &std::path::Path,
    prefix: &str,
    out: &mut std::collections::HashSet<String>,
    depth: u32,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let url_safe = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !url_safe || name.starts_with('.') {
            continue;
        }
        if kind.is_file() {
            out.insert(format!("{prefix}{name}"));
        } else if kind.is_dir() && depth < 4 {
            collect_files(&entry.path(), &format!("{prefix}{name}/"), out, depth + 1);
        }
    }
}

/// `/` and `…/` name their `index.html`.
fn file_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.ends_with('/') {
        format!("{path}index.html").into()
    } else {
        path.into()
    }
}

/// A file of the built-in page, with its type and a validator (304 when the browser has it).
fn embedded_file(path: &str, headers: &http::HeaderMap) -> Option<Response> {
    let file = Landing::get(file_path(path).trim_start_matches('/'))?;
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let etag = HeaderValue::from_str(&etag).ok()?;
    let fresh = headers
        .get(http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let h = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(file.metadata.mimetype()) {
        h.insert(CONTENT_TYPE, mime);
    }
    h.insert(http::header::ETAG, etag);
    // Revalidated on every visit (the ETag makes that cheap): a new binary's page shows at once.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}

/// `GET /api-packages` → `/api-packages/` (relative links of the page need the slash).
pub async fn static_redirect() -> Redirect {
    Redirect::permanent(crate::STATIC_PREFIX)
}

/// `GET /api-packages/{path}`: a file of the landing page folder (JSON 404 when absent).
pub async fn static_file(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let rest = parts
        .uri
        .path()
        .strip_prefix("/api-packages")
        .unwrap_or("/")
        .to_owned();
    let rest = if rest.is_empty() {
        "/".to_owned()
    } else {
        rest
    };
    let mut response = match &state.static_files {
        StaticFiles::Embedded => match embedded_file(&rest, &parts.headers) {
            Some(response) => response,
            None => return crate::edge::not_found(Request::from_parts(parts, body)).await,
        },
        StaticFiles::Folder { service, files } => {
            if !files.contains(file_path(&rest).as_ref()) {
                return crate::edge::not_found(Request::from_parts(parts, body)).await;
            }
            parts.uri = Uri::try_from(rest).unwrap_or_else(|_| Uri::from_static("/"));
            let req = Request::from_parts(parts, body);
            match service.clone().oneshot(req).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(never) => match never {},
            }
        }
    };
    // The page's own CSP meta tag cannot forbid framing (clickjacking of the signup form) nor
    // stop MIME sniffing: those need response headers.
    let h = response.headers_mut();
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(STATIC_CSP),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        http::HeaderValue::from_static("same-origin"),
    );
    response
}

/// Same policy as the page's meta tag, plus `frame-ancestors`, which only a header can carry.
const STATIC_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";
