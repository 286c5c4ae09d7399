//! The operator console's pages under `/admin/`. They live in the landing page's folder
//! (`admin/`), like the account pages, so they share its style sheet, its security headers and
//! the checks that keep every page free of outside resources.

use axum::extract::{Request, State};
use axum::response::{Redirect, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{family, rest};
use crate::routes::site;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        // A redirect, not an operation: left out of the document.
        .route("/admin", axum::routing::get(page_redirect))
        .routes(routes!(page))
        .routes(routes!(page_file))
}

/// `GET /admin` → `/admin/` (the page's relative links need the slash).
pub async fn page_redirect() -> Redirect {
    Redirect::permanent("/admin/")
}

/// The console (sign-in form, then the dashboard, customers, catalogue and audit log).
#[utoipa::path(
    get,
    path = "/admin/",
    tag = "site",
    responses(
        (status = 200, description = "HTML page.", content_type = "text/html", body = String),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn page(state: State<AppState>, req: Request) -> Response {
    site::serve_path(state, req, "/admin/".to_owned()).await
}

/// A file of the console (script, style sheet).
#[utoipa::path(
    get,
    path = "/admin/{*path}",
    tag = "site",
    params(("path" = String, Path, description = "File path under the console folder.")),
    responses(
        (status = 200, description = "The file.", content_type = "*/*", body = String),
        family::PageFile,
    ),
)]
pub async fn page_file(state: State<AppState>, req: Request) -> Response {
    site::serve_own_path(state, req).await
}
