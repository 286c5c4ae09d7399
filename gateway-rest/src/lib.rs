//! gateway-rest: the public HTTP edge of the platform. Browser JSON (`/api/promo/*`) and the
//! OpenAI-compatible API (`/v1/*`) are decoded, sent to promo-service or llm-gateway over gRPC,
//! and encoded back; no business rule lives here.
//!
//! [`serve`] runs it on a listener until a shutdown signal; `main.rs` only parses flags, so tests,
//! the benchmark and the all-in-one run start the very same thing.
//!
//! Layout: [`edge`] (request ids, metrics, timeouts, shedding, JSON error bodies for everything),
//! [`promo`] and [`openai`] (route handlers), [`ops`] (health, metrics, OpenAPI, static files),
//! [`backend`] (one lazily connecting channel set per backend).

#![recursion_limit = "512"]

pub mod backend;
pub mod config;
pub mod conn;
pub mod edge;
pub mod error;
pub mod extract;
pub mod live;
pub mod metrics;
pub mod openai;
pub mod openapi;
pub mod ops;
pub mod promo;
pub mod ratelimit;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{MethodRouter, get, patch, post};
use http::{HeaderName, Method};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{AdminToken, Args, Config, ConfigError, InternalToken};

use crate::backend::Backend;
use crate::metrics::Metrics;
use crate::ratelimit::IpLimiter;

/// Why the gateway could not start. (Once serving, failures are per connection or per request:
/// logged and answered, never fatal.)
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{name} URL {url:?} is not usable: {source}")]
    BackendUrl {
        name: &'static str,
        url: String,
        source: tonic::transport::Error,
    },
    #[error(
        "STATIC_DIR {0:?} is not a folder (unset it to serve the landing page built into the binary)"
    )]
    StaticDir(std::path::PathBuf),
}

/// Everything a handler needs, shared by every connection.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub promo: Backend,
    pub llm: Backend,
    pub metrics: Metrics,
    pub validate_limiter: Option<IpLimiter>,
    pub signup_limiter: Option<IpLimiter>,
    pub auth_failures: Option<ratelimit::AuthFailures>,
    /// Turns true on shutdown: open event streams end so the server can drain.
    pub stop: watch::Receiver<bool>,
    pub openapi: bytes::Bytes,
    /// The live counters: one upstream stream per code, fanned out to viewers (and to polls of
    /// `/remaining` when `REMAINING_CACHE` is on).
    pub live: Arc<live::LiveCounters>,
    pub static_files: ops::StaticFiles,
    /// The cached verdict of `/readyz`.
    pub readiness: ops::Readiness,
    request_ids: edge::RequestIds,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// One route: method, path template (axum syntax, which is OpenAPI's) and handler.
type Endpoint = (Method, &'static str, MethodRouter<AppState>);

fn endpoints() -> Vec<Endpoint> {
    vec![
        (Method::GET, "/api/promo/health", get(promo::health)),
        (Method::GET, "/api/promo/packages", get(promo::packages)),
        (
            Method::GET,
            "/api/promo/{code}/remaining",
            get(promo::remaining),
        ),
        (
            Method::GET,
            "/api/promo/{code}/remaining/stream",
            get(promo::remaining_stream),
        ),
        (Method::POST, "/api/promo/validate", post(promo::validate)),
        (Method::POST, "/api/promo/signup", post(promo::signup)),
        (Method::GET, "/api/promo/stats", get(promo::stats)),
        (Method::GET, "/api/promo/codes", get(promo::list_codes)),
        (Method::POST, "/api/promo/codes", post(promo::create_code)),
        (
            Method::PATCH,
            "/api/promo/codes/{code}",
            patch(promo::update_code),
        ),
        (Method::GET, "/api/promo/signups", get(promo::list_signups)),
        (
            Method::POST,
            "/api/promo/signups/{user_id}/revoke-key",
            post(promo::revoke_key),
        ),
        (Method::GET, "/api/promo/outbox", get(promo::list_outbox)),
        (
            Method::POST,
            "/api/promo/outbox/{id}/retry",
            post(promo::retry_outbox),
        ),
        (
            Method::POST,
            "/v1/chat/completions",
            post(openai::chat_completions),
        ),
        (Method::GET, "/v1/models", get(openai::models)),
        (Method::GET, "/v1/usage", get(openai::usage)),
        (
            Method::GET,
            "/api/gateway/providers",
            get(openai::providers),
        ),
        (
            Method::GET,
            "/api/platform/status",
            get(openai::platform_status),
        ),
        (Method::GET, "/livez", get(ops::livez)),
        (Method::GET, "/readyz", get(ops::readyz)),
        (Method::GET, "/healthz", get(ops::healthz)),
        (Method::GET, "/metrics", get(ops::metrics)),
        (Method::GET, "/openapi.json", get(ops::openapi)),
    ]
}

/// Path of the landing page's static files.
pub const STATIC_PREFIX: &str = "/api-packages/";

/// Every (method, path template) served, for the OpenAPI consistency test. The static files are
/// listed as `/api-packages/` and `/api-packages/{path}`.
pub fn served_routes() -> Vec<(Method, &'static str)> {
    let mut routes: Vec<(Method, &'static str)> = endpoints()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    routes.push((Method::GET, "/api-packages/"));
    routes.push((Method::GET, "/api-packages/{path}"));
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
    let metrics = Metrics::new(
        served_routes()
            .into_iter()
            .map(|(_, path)| path)
            .chain([edge::STATIC_ROUTE_LABEL, "/api-packages"]),
    );
    Ok(AppState(Arc::new(Inner {
        validate_limiter: config.validate_rate.map(IpLimiter::new),
        signup_limiter: config.signup_rate.map(IpLimiter::new),
        auth_failures: config.auth_failure_rate.map(ratelimit::AuthFailures::new),
        openapi: openapi::document(),
        live: Arc::new(live::LiveCounters::new(
            promo.stream_channel(),
            stop.clone(),
            promo::encode_remaining,
        )),
        static_files: ops::static_files(&config)?,
        readiness: ops::Readiness::default(),
        config,
        promo,
        llm,
        metrics,
        stop,
        request_ids: edge::RequestIds::new(),
    })))
}

/// The full router: routes, static files, fallbacks and the edge layers.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    let mut grouped: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for (_, path, handler) in endpoints() {
        match grouped.iter_mut().find(|(p, _)| *p == path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => grouped.push((path, handler)),
        }
    }
    for (path, handler) in grouped {
        router = router.route(path, handler);
    }
    let cors = cors_layer(&state.config);
    let router = router
        .route("/api-packages", get(ops::static_redirect))
        .route("/api-packages/", get(ops::static_file))
        .route(edge::STATIC_ROUTE_LABEL, get(ops::static_file))
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

/// Serves until `shutdown` resolves, then ends open event streams and drains in-flight requests.
///
/// The accept loop is written out (rather than `axum::serve`) for what a public edge needs:
/// a time limit on reading request headers (slow-header clients would otherwise hold a connection
/// forever), TCP_NODELAY, HTTP/1.1 and HTTP/2 (h2c) on the same port, and a graceful drain.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt;

    let (stop_tx, stop_rx) = watch::channel(false);
    let state = state(config, stop_rx.clone())?;
    let janitor = tokio::spawn(shrink_limiters(state.clone(), stop_rx));
    let addr = listener.local_addr().ok();
    tracing::info!(
        ?addr,
        promo = %state.config.promo_url,
        llm = %state.config.llm_url,
        "gateway-rest listening"
    );
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(1024);
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
        for limiter in [&state.validate_limiter, &state.signup_limiter]
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
