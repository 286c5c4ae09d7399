//! Operational routes: `/healthz` (backend reachability), `/metrics` (Prometheus), `/openapi.json`,
//! and the landing page's static files under `/api-packages/`.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode, Uri};
use serde::Serialize;
use tonic_health::pb::health_check_response::ServingStatus;
use tower::ServiceExt;
use tower_http::services::ServeDir;

use crate::promo::json;
use crate::{AppState, Config};

#[derive(Serialize)]
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

#[derive(Serialize)]
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

/// `GET /healthz`: gateway-rest itself is up (always 200 while it answers); `status` is `ok` when
/// every backend answers `grpc.health.v1` as SERVING, `degraded` otherwise, with each backend's
/// state. A load balancer should not take the edge out of rotation because one backend is down:
/// the routes of the other keep working, and the failing ones answer 503 with Retry-After.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let timeout = Duration::from_secs(1);
    let (promo, llm) = tokio::join!(state.promo.health(timeout), state.llm.health(timeout));
    let backends = Backends {
        promo: backend_health(promo),
        llm: backend_health(llm),
    };
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

/// The landing page folder: the file service, and the files it may serve.
///
/// Only the regular files found in the folder at start are served (paths as the URL spells them,
/// `/` and `…/` meaning their `index.html`): a symbolic link is never followed, so a link placed
/// in the folder cannot expose a file outside it; a request for anything else — an over-long
/// name the file system would refuse, a path with `..` or encoded characters — is a 404 without
/// touching the file system.
#[derive(Clone)]
pub struct StaticFiles {
    service: ServeDir,
    files: std::sync::Arc<std::collections::HashSet<String>>,
}

pub fn static_files(config: &Config) -> StaticFiles {
    let mut files = std::collections::HashSet::new();
    collect_files(&config.static_dir, "/", &mut files, 0);
    if !files.contains("/index.html") {
        tracing::warn!(dir = %config.static_dir.display(), "no index.html in the landing page folder");
    }
    StaticFiles {
        service: ServeDir::new(&config.static_dir).append_index_html_on_directories(true),
        files: std::sync::Arc::new(files),
    }
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

impl StaticFiles {
    /// Whether `path` (below the prefix, starting with `/`) names a file that may be served.
    fn serves(&self, path: &str) -> bool {
        if path.ends_with('/') {
            self.files.contains(&format!("{path}index.html"))
        } else {
            self.files.contains(path)
        }
    }
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
    if !state.static_files.serves(&rest) {
        return crate::edge::not_found(Request::from_parts(parts, body)).await;
    }
    parts.uri = Uri::try_from(rest).unwrap_or_else(|_| Uri::from_static("/"));
    let req = Request::from_parts(parts, body);
    let mut response = match state.static_files.service.clone().oneshot(req).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
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
