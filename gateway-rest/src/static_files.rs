//! Where the landing page's files come from: the copy built into the binary, or a folder given
//! at start (`STATIC_DIR`), and the pages rendered from them at start ([`crate::layout`]). The
//! routes that serve them are in `routes::site`.

use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use tower_http::services::ServeDir;

use crate::config::Config;
use crate::error::ServeError;
use crate::layout::{self, Page, Pages};

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
///
/// Either way, the pages written inside a layout are rendered once, at start, from those files.
#[derive(Clone)]
pub enum StaticFiles {
    Embedded {
        pages: Pages,
    },
    Folder {
        service: ServeDir,
        files: std::sync::Arc<std::collections::HashSet<String>>,
        pages: Pages,
    },
}

impl StaticFiles {
    /// The rendered page at `path` (`/cgv/` or `/cgv/index.html`), if it is one.
    pub fn page(&self, path: &str) -> Option<&Page> {
        let (StaticFiles::Embedded { pages } | StaticFiles::Folder { pages, .. }) = self;
        pages.get(file_path(path).as_ref())
    }
}

/// The landing page's files for `config`; an override folder that is not a folder, or a page
/// whose layout does not render, is an error.
pub fn static_files(config: &Config) -> Result<StaticFiles, ServeError> {
    let Some(dir) = &config.static_dir else {
        let paths: Vec<String> = Landing::iter().map(|p| format!("/{p}")).collect();
        let pages = Pages::render(paths.iter().map(String::as_str), |name| {
            Landing::get(name).map(|f| String::from_utf8_lossy(&f.data).into_owned())
        })?;
        return Ok(StaticFiles::Embedded { pages });
    };
    if !dir.is_dir() {
        return Err(ServeError::StaticDir(dir.clone()));
    }
    let mut files = std::collections::HashSet::new();
    collect_files(dir, "/", &mut files, 0);
    if !files.contains("/index.html") {
        tracing::warn!(dir = %dir.display(), "no index.html in the landing page folder");
    }
    let files = std::sync::Arc::new(files);
    // Only the files listed at start are read (a link in the folder is never followed).
    let (root, listed) = (dir.clone(), std::sync::Arc::clone(&files));
    let pages = Pages::render(files.iter().map(String::as_str), move |name| {
        listed
            .contains(&format!("/{name}"))
            .then(|| std::fs::read_to_string(root.join(name)).ok())
            .flatten()
    })?;
    tracing::info!(dir = %dir.display(), files = files.len(), pages = pages.count(), "landing page served from a folder");
    Ok(StaticFiles::Folder {
        service: ServeDir::new(dir).append_index_html_on_directories(true),
        files,
        pages,
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
pub fn file_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.ends_with('/') {
        format!("{path}index.html").into()
    } else {
        path.into()
    }
}

/// A file of the built-in page, with its type and a validator (304 when the browser has it).
/// The layouts are not files of the page.
pub fn embedded_file(path: &str, headers: &http::HeaderMap) -> Option<Response> {
    if layout::is_layout(path) {
        return None;
    }
    let file = Landing::get(file_path(path).trim_start_matches('/'))?;
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    validated(
        file.data.into_owned(),
        file.metadata.mimetype(),
        &etag,
        headers,
    )
}

/// A rendered page, served like a built-in file.
pub fn page_response(page: &Page, headers: &http::HeaderMap) -> Option<Response> {
    validated(page.html.clone(), "text/html", &page.etag, headers)
}

/// `body` with its type and validator; 304 without a body when the browser has it already.
fn validated(
    body: impl Into<axum::body::Body>,
    mime: &str,
    etag: &str,
    headers: &http::HeaderMap,
) -> Option<Response> {
    let etag = HeaderValue::from_str(etag).ok()?;
    let fresh = headers
        .get(http::header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body.into()).into_response()
    };
    let h = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(mime) {
        h.insert(CONTENT_TYPE, mime);
    }
    h.insert(http::header::ETAG, etag);
    // Revalidated on every visit (the ETag makes that cheap): a new binary's page shows at once.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(response)
}
