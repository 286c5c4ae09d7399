//! The landing page's files under `/api-packages/` (see [`crate::static_files`] for where they
//! come from), with the security headers the page's own meta tag cannot give.

use axum::extract::{Request, State};
use axum::response::{Redirect, Response};
use axum::routing::get;
use http::Uri;
use tower::ServiceExt;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::edge::not_found;
use crate::layout;
use crate::openapi::{family, rest};
use crate::state::AppState;
use crate::static_files::{self, StaticFiles};

/// Path of the landing page's static files.
pub const PREFIX: &str = "/api-packages/";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // A redirect, not an operation: left out of the document.
        .route("/api-packages", get(static_redirect))
        .routes(routes!(landing_page))
        .routes(routes!(static_file))
}

/// `GET /api-packages` → `/api-packages/` (relative links of the page need the slash).
pub async fn static_redirect() -> Redirect {
    Redirect::permanent(PREFIX)
}

/// The landing page.
#[utoipa::path(
    get,
    path = "/api-packages/",
    tag = "site",
    responses(
        (status = 200, description = "HTML page.", content_type = "text/html", body = String),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn landing_page(state: State<AppState>, req: Request) -> Response {
    static_file(state, req).await
}

/// A static file of the landing page.
//
// A JSON 404 when absent. Axum's catch-all `{*path}` is written `{path}` in the document
// (OpenAPI has no multi-segment parameter).
#[utoipa::path(
    get,
    path = "/api-packages/{*path}",
    tag = "site",
    params(("path" = String, Path, description = "File path under the landing page folder.")),
    responses(
        (status = 200, description = "The file.", content_type = "*/*", body = String),
        family::PageFile,
    ),
)]
pub async fn static_file(state: State<AppState>, req: Request) -> Response {
    let rest = req
        .uri()
        .path()
        .strip_prefix("/api-packages")
        .unwrap_or("/")
        .to_owned();
    serve_path(state, req, rest).await
}

/// Serves the file the request's own path names: the pages kept in a folder of their own
/// (`/compte/`, `/admin/`), whose URL is their place in the landing page's folder.
pub async fn serve_own_path(state: State<AppState>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    serve_path(state, req, path).await
}

/// Serves the file at `path` of the landing page's folder (`/` and `…/` name their
/// `index.html`) with the security headers; a JSON 404 when absent. Also serves the account
/// pages, which live in its `compte/` folder so they share its style sheet and its checks.
pub async fn serve_path(State(state): State<AppState>, req: Request, path: String) -> Response {
    let (mut parts, body) = req.into_parts();
    let rest = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    let rendered = state
        .static_files
        .page(&rest)
        .and_then(|page| static_files::page_response(page, &parts.headers));
    let mut response = match (&state.static_files, rendered) {
        (_, Some(response)) => response,
        (StaticFiles::Embedded { .. }, None) => {
            match static_files::embedded_file(&rest, &parts.headers) {
                Some(response) => response,
                None => return not_found(Request::from_parts(parts, body)).await,
            }
        }
        (StaticFiles::Folder { service, files, .. }, None) => {
            if layout::is_layout(&rest) || !files.contains(static_files::file_path(&rest).as_ref())
            {
                return not_found(Request::from_parts(parts, body)).await;
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
