//! gateway-rest: the public HTTP edge of the platform. Browser JSON (`/api/promo/*`) and the
//! OpenAI-compatible API (`/v1/*`) are decoded, sent to promo-service or llm-gateway over gRPC,
//! and encoded back; no business rule lives here.
//!
//! [`start`] runs it on a listener and returns a [`Handle`] that stops it; `main.rs` only parses
//! flags, so tests, the benchmark and the all-in-one run start the very same thing.
//!
//! Layout: [`routes`] (one room per resource, each with its router and its OpenAPI operations),
//! [`respond`] (how answers are written), [`edge`] (request ids, metrics, timeouts, shedding,
//! JSON error bodies for everything), [`state`] (what handlers share), [`backend`] (one lazily
//! connecting channel set per backend), [`openapi`] (what every documented operation shares),
//! [`static_files`] and [`layout`] (the pages' files, and the pages rendered inside a layout).
//! This file only assembles them.

pub mod backend;
pub mod config;
pub mod conn;
pub mod edge;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod health;
pub mod layout;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod request_id;
pub mod respond;
pub mod routes;
pub mod schema;
pub mod state;
pub mod static_files;
pub mod web_session;

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use http::{HeaderName, Method};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{AdminToken, Args, Config, ConfigError, InternalToken};
pub use error::ServeError;
pub use state::AppState;

use crate::backend::Backend;
use crate::metrics::Metrics;
use crate::ratelimit::IpLimiter;
use crate::state::Inner;

/// The route templates as axum matches them (`{*path}` for the catch-all), with the served
/// document: both generated once per process from [`routes::api`].
struct Api {
    templates: Vec<String>,
    document: utoipa::openapi::OpenApi,
    json: bytes::Bytes,
}

fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let raw = routes::api().into_openapi();
        let templates = raw.paths.paths.keys().cloned().collect();
        let document = openapi::finish(raw);
        let json = serde_json::to_vec(&document).unwrap_or_default().into();
        Api {
            templates,
            document,
            json,
        }
    })
}

/// The OpenAPI document served at `/openapi.json`.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    &api().document
}

/// Every (method, path template) the router serves through [`routes::api`], in the document's
/// spelling, for the OpenAPI consistency test. The router and the document are built from the
/// same definitions, so this is also the document's list; the test checks the served
/// `/openapi.json` against it and that each entry really answers.
pub fn served_routes() -> Vec<(Method, String)> {
    let mut routes = Vec::new();
    for (path, item) in &document().paths.paths {
        for (method, op) in [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::OPTIONS, &item.options),
            (Method::HEAD, &item.head),
            (Method::PATCH, &item.patch),
            (Method::TRACE, &item.trace),
        ] {
            if op.is_some() {
                routes.push((method.clone(), path.clone()));
            }
        }
    }
    routes
}

/// Builds the state: lazily connecting backends (a backend that is down does not stop the start),
/// limiters, metrics.
pub fn state(config: Config, stop: watch::Receiver<bool>) -> Result<AppState, ServeError> {
    let promo = Backend::new(
        "promo-service",
        &config.promo_url,
        &config,
        config.request_timeout,
    )?;
    let llm = Backend::new("llm-gateway", &config.llm_url, &config, config.chat_timeout)?;
    let api = api();
    // One metrics slot per route template axum reports, plus the redirect that is not documented.
    let metrics = Metrics::new(
        api.templates
            .iter()
            .map(String::as_str)
            .chain(["/api-packages", "/compte"]),
    );
    Ok(AppState(Arc::new(Inner {
        validate_limiter: config.validate_rate.map(IpLimiter::new),
        signup_limiter: config.signup_rate.map(IpLimiter::new),
        event_limiter: config.event_rate.map(IpLimiter::new),
        auth_failures: config.auth_failure_rate.map(ratelimit::AuthFailures::new),
        openapi: api.json.clone(),
        live: Arc::new(live::LiveCounters::new(
            promo.stream_channel(),
            stop.clone(),
            routes::live::encode_remaining,
        )),
        static_files: static_files::static_files(&config)?,
        readiness: health::Readiness::default(),
        config,
        promo,
        llm,
        metrics,
        stop,
        request_ids: request_id::RequestIds::new(),
    })))
}

/// The full router: routes, fallbacks and the edge layers.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes::api().split_for_parts();
    let cors = cors_layer(&state.config);
    let router = router
        .fallback(edge::not_found)
        // Runs after routing (so it sees the matched route template), for every route and the
        // fallback: request id, metrics, timeout, shedding, JSON bodies on every error.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            edge::edge,
        ));
    // CORS outermost: it answers preflight requests itself, before any route logic.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router.with_state(state)
}

fn cors_layer(config: &Config) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(config.cors_origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
            .allow_headers([
                http::header::CONTENT_TYPE,
                http::header::AUTHORIZATION,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                http::header::RETRY_AFTER,
                HeaderName::from_static("x-iaf-provider"),
                HeaderName::from_static("x-iaf-latency-ms"),
                HeaderName::from_static("x-iaf-cost-usd"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

/// A running gateway-rest (see [`iafactory::lifecycle`]).
pub type Handle = iafactory::lifecycle::Handle<ServeError>;

/// Serves until `shutdown` resolves: kept for callers of the former entry point.
#[deprecated(note = "use `start(config, listener)`, then `Handle::run_until(shutdown)`")]
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    start(config, listener).await?.run_until(shutdown).await
}

/// Builds the state (backends connect lazily: one that is down does not stop the start) and
/// serves `listener`; returns once it is served. [`Handle::shutdown`] stops accepting, ends open
/// event streams and lets requests in flight finish.
///
/// The accept loop is written out (rather than `axum::serve`) for what a public edge needs:
/// a time limit on reading request headers (slow-header clients would otherwise hold a connection
/// forever), TCP_NODELAY, HTTP/1.1 and HTTP/2 (h2c) on the same port, and a graceful drain.
pub fn start(
    config: Config,
    listener: TcpListener,
) -> iafactory::lifecycle::Starting<Handle, ServeError> {
    // Nothing here awaits; the future keeps the call shape of the other services' `start` and
    // runs the start-up when first polled, inside the caller's runtime.
    Box::pin(async move { start_serving(config, listener) })
}

fn start_serving(config: Config, listener: TcpListener) -> Result<Handle, ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Listen)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let state = state(config, stop_rx.clone())?;
    let janitor = tokio::spawn(shrink_limiters(state.clone(), stop_rx));
    tracing::info!(
        %addr,
        promo = %state.config.promo_url,
        llm = %state.config.llm_url,
        "gateway-rest listening"
    );
    Ok(Handle::spawn(addr, (), move |stop| {
        accept_loop(state, listener, stop, stop_tx, janitor)
    }))
}

/// How each client connection is served: HTTP/1.1 with a time limit on reading request headers,
/// and HTTP/2 (h2c) on the same port with keep-alive pings.
pub fn connection_builder(
    config: &Config,
) -> hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor> {
    use hyper_util::rt::{TokioExecutor, TokioTimer};
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(1024);
    builder
}

async fn accept_loop(
    state: AppState,
    listener: TcpListener,
    shutdown: iafactory::lifecycle::Stop,
    stop_tx: watch::Sender<bool>,
    janitor: tokio::task::JoinHandle<()>,
) -> Result<(), ServeError> {
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let builder = connection_builder(&state.config);
    let first_request = state.config.header_read_timeout;
    let idle = state.config.idle_timeout;
    let open = conn::OpenConnections::new(state.config.max_connections);
    let app = router(state);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = open.try_open() else {
            tracing::debug!(%peer, open = open.open(), "connection cap reached; refused");
            tokio::spawn(conn::refuse(tcp));
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let activity = conn::Activity::new();
        let requests = Arc::clone(&activity);
        let service = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            // In progress until the response body is done (or dropped with the connection).
            let guard = requests.begin();
            let response = app.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _ = &guard;
                        frame
                    }))
                }))
            }
        });
        let conn = builder
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                ended = conn => if let Err(e) = ended {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                },
                // Dropping the connection closes the socket.
                () = activity.idle(first_request, idle) => {
                    tracing::debug!(%peer, "idle connection closed");
                }
            }
        });
    }
    // Phase 1: stop accepting. Phase 2: end event streams, let requests in flight finish.
    drop(listener);
    let _ = stop_tx.send(true);
    graceful.shutdown().await;
    janitor.abort();
    tracing::info!("gateway-rest stopped");
    Ok(())
}

/// Forgets idle rate-limit buckets every minute so memory stays bounded.
async fn shrink_limiters(state: AppState, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            () = iafactory::shutdown::stopped(&mut stop) => return,
        }
        for limiter in [
            &state.validate_limiter,
            &state.signup_limiter,
            &state.event_limiter,
        ]
        .into_iter()
        .flatten()
        {
            limiter.shrink();
        }
        if let Some(failures) = &state.auth_failures {
            failures.shrink();
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::openapi::RefOr;

    /// An annotation's error type must match its status (`(status = 404, response =
    /// inline(rest::Conflict))` would compile), and `/v1` answers in OpenAI's shape.
    #[test]
    fn every_error_answer_matches_its_status_and_flavor() {
        let doc = super::document();
        let mut seen = 0;
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.post, &item.patch, &item.put, &item.delete];
            for op in ops.into_iter().flatten() {
                for (status, response) in &op.responses.responses {
                    let code: u16 = status.parse().unwrap();
                    // The e-mail link pages answer a bad link with an HTML page (a person reads it).
                    let html_page = crate::routes::mail_links::HTML_PAGES.contains(&path.as_str())
                        && code == 400;
                    if code < 400 || (path == "/readyz" && code == 503) || html_page {
                        continue;
                    }
                    let RefOr::T(response) = response else {
                        panic!("{path} {status}: a reference")
                    };
                    let body = serde_json::to_value(response).unwrap();
                    let expected = serde_json::to_value(super::openapi::error_response(
                        code,
                        crate::error::Flavor::of_path(path),
                    ))
                    .unwrap();
                    assert_eq!(body, expected, "{path} {status}");
                    seen += 1;
                }
            }
        }
        assert!(seen > 50, "{seen}");
    }

    #[test]
    fn catch_all_is_written_as_a_plain_parameter() {
        let paths = &super::document().paths.paths;
        assert!(paths.contains_key("/api-packages/{path}"));
        assert!(
            paths.keys().all(|p| !p.contains("{*")),
            "{:?}",
            paths.keys()
        );
    }
}
