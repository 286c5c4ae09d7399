//! Pages written inside a layout. The legal pages, the customer account and the operator
//! console share their head, header and footer: each page's file holds only what is its own
//! (`{% extends "_layout/…" %}` and its blocks, minijinja's template inheritance) and the
//! frame lives once in the landing page's `_layout/` folder. Every such page is rendered once,
//! at start, from the same files that are served (built into the binary or `STATIC_DIR`), so a
//! browser still receives one plain HTML file under the page's own URL with the page's own
//! security policy; a layout that does not render stops the start instead of serving a broken
//! page. The layouts themselves are never served.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Folder of the layouts, relative to the landing page's folder.
const LAYOUTS: &str = "_layout/";

/// What a page written inside a layout starts with.
const EXTENDS: &str = "{% extends ";

/// The rendered pages, by URL path below the landing page's folder (`/cgv/index.html`).
#[derive(Clone, Default)]
pub struct Pages(Arc<HashMap<String, Page>>);

/// One rendered page and its validator.
pub struct Page {
    pub html: bytes::Bytes,
    /// Quoted SHA-256 of `html`, like the built-in files' `ETag`.
    pub etag: String,
}

/// Why a page could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("page {page} does not render: {source:#}")]
pub struct LayoutError {
    page: String,
    source: minijinja::Error,
}

impl Pages {
    /// Renders every `.html` file among `paths` (URL paths, `/cgv/index.html`) that extends a
    /// layout; `read` gives a file's text by its path without the leading slash.
    pub fn render<'a, R>(
        paths: impl IntoIterator<Item = &'a str>,
        read: R,
    ) -> Result<Pages, LayoutError>
    where
        R: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        let read = Arc::new(read);
        let mut env = minijinja::Environment::new();
        // Tags alone on their line leave no blank line, so the rendered page reads as if written
        // by hand; the last newline of a file is kept.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        let loader = Arc::clone(&read);
        env.set_loader(move |name| Ok(loader(name)));
        let mut pages = HashMap::new();
        for path in paths {
            let name = path.trim_start_matches('/');
            if !name.ends_with(".html") || name.starts_with(LAYOUTS) {
                continue;
            }
            let Some(source) = read(name) else { continue };
            if !source.starts_with(EXTENDS) {
                continue;
            }
            let error = |source| LayoutError {
                page: name.to_owned(),
                source,
            };
            let html = env
                .get_template(name)
                .and_then(|t| t.render(()))
                .map_err(error)?;
            let etag = format!("\"{}\"", hex::encode(Sha256::digest(html.as_bytes())));
            pages.insert(
                path.to_owned(),
                Page {
                    html: html.into(),
                    etag,
                },
            );
        }
        Ok(Pages(Arc::new(pages)))
    }

    /// The rendered page at `path` (`/cgv/index.html`), if it is one.
    pub fn get(&self, path: &str) -> Option<&Page> {
        self.0.get(path)
    }

    /// How many pages were rendered.
    pub fn count(&self) -> usize {
        self.0.len()
    }
}

/// True for a layout's path (`/_layout/…`): rendered into pages, never served itself.
pub fn is_layout(path: &str) -> bool {
    path.trim_start_matches('/').starts_with(LAYOUTS)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::Pages;

    fn render(files: &[(&'static str, &'static str)]) -> Result<Pages, super::LayoutError> {
        let map: HashMap<String, String> = files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let paths: Vec<String> = files.iter().map(|(k, _)| format!("/{k}")).collect();
        Pages::render(paths.iter().map(String::as_str), move |name| {
            map.get(name).cloned()
        })
    }

    #[test]
    fn a_page_is_its_layout_with_its_blocks_filled_in() {
        let pages = render(&[
            (
                "_layout/page.html",
                "<title>{% block title %}{% endblock %}</title>\n<main>\n{% block main %}{% endblock %}\n</main>\n",
            ),
            (
                "a/index.html",
                "{% extends \"_layout/page.html\" %}\n{% block title %}A & B{% endblock %}\n{% block main %}\n  <p>a</p>\n{% endblock %}\n",
            ),
            ("plain.html", "<p>{{ not a template }}</p>\n"),
        ])
        .unwrap();
        let page = pages.get("/a/index.html").unwrap();
        assert_eq!(
            page.html,
            "<title>A & B</title>\n<main>\n  <p>a</p>\n</main>\n"
        );
        assert!(page.etag.starts_with('"') && page.etag.len() == 66);
        // A file that extends nothing is served as it is, and a layout is no page.
        assert!(pages.get("/plain.html").is_none());
        assert!(pages.get("/_layout/page.html").is_none());
        assert!(super::is_layout("/_layout/page.html"));
    }

    #[test]
    fn a_page_whose_layout_is_missing_is_an_error_naming_it() {
        let err = render(&[(
            "b/index.html",
            "{% extends \"_layout/gone.html\" %}{% block main %}{% endblock %}",
        )])
        .err()
        .unwrap();
        assert!(err.to_string().contains("b/index.html"), "{err}");
    }
}
