//! llm-gateway: one chat API (gRPC, `iafactory.llm.v1.LlmGateway`) in front of many LLM
//! providers, with routing and fallbacks, streaming, cost and latency, usage and quotas.
//!
//! Modules, in the order a call meets them:
//! - [`auth`]: the caller's `iaf_...` key checked with promo-service, cached a few seconds;
//! - [`service`]: validation, package model restrictions, translation to and from protobuf;
//! - [`quota`]: requests/minute and tokens/month admitted from leases reserved in the shared
//!   store, exact across replicas without a database round trip per call;
//! - [`routing`]: model catalogue → ordered routes ([`routing::policy`]), retries with backoff
//!   ([`routing::retry`]), circuit breakers ([`routing::breaker`]),
//!   timeouts; [`providers`]: one HTTP client per wire format; [`sse`]: stream parsing;
//! - [`usage`] / [`store`]: usage per key, month and day, charged durably before each answer
//!   leaves, many concurrent calls sharing one commit (group commit); [`notices`]: the 80 % /
//!   100 % quota e-mails reported to promo-service after the writes;
//! - [`request_log`]: one row per authenticated call (no prompt or completion text), written in
//!   batches off the request path, served by the `RequestLog` RPCs;
//! - [`metrics`]: the gateway's Prometheus families (the router records into them).
//!
//! [`start`] runs it all on a listener and returns a [`Handle`] that stops it; `main.rs` only
//! parses configuration.

pub mod auth;
pub mod catalog;
pub mod chat;
pub mod config;
pub mod embed;
pub mod error;
pub mod keys_usage;
pub mod metrics;
pub mod notices;
pub mod providers;
pub mod quota;
pub mod request_log;
pub mod routing;
pub mod service;
pub mod sse;
pub mod store;
pub mod usage;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iafactory::metrics::Registry;
// The lean servers: tonic's server path compiled once in iafactory, not once per method here.
use iafactory::servers::llm::v1::{LlmGatewayServer, RequestLogServer};
use iafactory::{grpc, lifecycle};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;

pub use config::Config;

use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::notices::QuotaNotices;
use crate::quota::{IDLE_RELEASE, QuotaManager};
use crate::request_log::RequestLog;
use crate::routing::Router;
use crate::service::{GatewayApi, RequestLogApi, Shared};
use crate::store::Store;
use crate::usage::UsageRecorder;

/// Why the gateway could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] iafactory::db::DbError),
    #[error("PROMO_SERVICE_URL is not a usable URL: {0}")]
    PromoUrl(tonic::transport::Error),
    #[error("cannot build the HTTP client for providers: {0}")]
    HttpClient(reqwest::Error),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(String),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot read the listener's address: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot listen on {addr} (LLM_GATEWAY_METRICS_ADDR): {source}")]
    MetricsListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Task(#[from] lifecycle::TaskFailed),
}

/// What a running gateway exposes besides stopping, reached through its [`Handle`].
pub struct Running {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
}

impl Running {
    /// Prometheus text of this instance.
    pub fn metrics_text(&self) -> String {
        self.registry.render()
    }

    /// Waits until every usage charge made so far is written (tests, diagnostics: answers wait
    /// for their charge anyway).
    pub async fn flush_usage(&self) -> Result<usize, crate::error::GatewayError> {
        self.shared.usage.flush().await
    }

    /// Waits until every request log row sent so far is written (tests, diagnostics).
    pub async fn flush_request_log(&self) {
        self.shared.log.flush().await;
    }
}

/// A running gateway (see [`iafactory::lifecycle`]); its [`Running`] methods are reached
/// directly (`handle.flush_usage()`).
pub type Handle = lifecycle::Handle<ServeError, Running>;

/// The former name of [`Handle`].
#[deprecated(note = "renamed `llm_gateway::Handle`")]
pub type GatewayHandle = Handle;

/// Binds the metrics listener (`config.metrics_listen`), connects to the store, builds
/// providers and starts serving on `listener`. Startup errors (database, URLs, metrics address)
/// are returned here. [`Handle::shutdown`] stops accepting, lets in-flight calls finish (each
/// charged before it answers), stops the usage writer, gives unused token leases back and closes
/// the database.
pub fn start(config: Config, listener: TcpListener) -> lifecycle::Starting<Handle, ServeError> {
    // Boxed here so the start-up is compiled in this crate only (see `lifecycle::Starting`).
    Box::pin(start_serving(config, listener))
}

async fn start_serving(config: Config, listener: TcpListener) -> Result<Handle, ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Listen)?;
    let metrics_listener = match config.metrics_listen {
        None => None,
        Some(at) => Some(
            iafactory::net::bind(at)
                .map_err(|source| ServeError::MetricsListen { addr: at, source })?,
        ),
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let store = Store::connect(&config.database_url).await?;
    let http = providers::http_client(config.connect_timeout).map_err(ServeError::HttpClient)?;
    // Every family is registered before the registry is shared.
    let mut registry = Registry::new();
    let rpc_metrics = grpc::rpc_metrics(&mut registry);
    let router = Router::new(
        &config.catalog,
        config.routing.clone(),
        http,
        &Metrics::register(&mut registry),
    );
    let (log, log_writer) =
        RequestLog::start(store.clone(), config.request_log_buffer, &mut registry);
    let registry = Arc::new(registry);
    if router.mock.is_some() {
        tracing::warn!(
            "no provider key configured: the offline `mock` provider answers every model (answers are labelled provider=mock)"
        );
    }
    for p in &router.providers {
        tracing::info!(provider = %p.name, kind = p.kind, configured = p.configured, base_url = %p.base_url, "provider");
    }
    let auth = Authenticator::new(
        &config.promo_service_url,
        config.internal_token.clone(),
        config.auth_cache_ttl,
        config.auth_negative_ttl,
    )
    .map_err(ServeError::PromoUrl)?;
    let notices = Arc::new(QuotaNotices::default());
    let shared = Arc::new(Shared {
        router,
        quotas: QuotaManager::new(store.clone()),
        usage: UsageRecorder::start(store.clone(), Some(notices.clone())),
        auth: auth.clone(),
        recent: Default::default(),
        log,
        notices: notices.clone(),
        internal: config.internal_token.clone(),
    });

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LlmGatewayServer<GatewayApi>>().await;
    // Calls are charged before they are answered: while the usage store refuses writes, the
    // gateway cannot serve, and says so.
    let storage_health = tokio::spawn(grpc::follow_storage_health(
        health.clone(),
        <LlmGatewayServer<GatewayApi> as tonic::server::NamedService>::NAME,
        store.db.watch_writable(),
    ));
    let api = LlmGatewayServer::new(GatewayApi {
        shared: shared.clone(),
    })
    // Room for inline images (data URIs) on top of the text limit.
    .max_decoding_message_size(
        grpc::MAX_MESSAGE_BYTES + crate::service::MAX_IMAGE_BYTES + 64 * 1024,
    )
    // Embeddings answers are the large ones: 2048 vectors of 3072 floats (the largest OpenAI
    // model, unshortened) are 25 MB; 16 MB would fail such an answer after it was charged.
    .max_encoding_message_size(crate::service::MAX_ANSWER_BYTES);
    let log_api = RequestLogServer::new(RequestLogApi {
        shared: shared.clone(),
    });
    let routes = grpc::add_reflection(
        Routes::new(health_service)
            .add_service(api)
            .add_service(log_api),
    )
    .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let (bg_stop_tx, bg_stop_rx) = watch::channel(false);
    let prober = tokio::spawn(
        store
            .db
            .clone()
            .probe_writes(STORAGE_PROBE_INTERVAL, bg_stop_rx.clone()),
    );
    let notifier = {
        let (store, stop) = (store.clone(), bg_stop_rx.clone());
        tokio::spawn(async move { notices.run(store, auth, stop).await })
    };
    let background = tokio::spawn(background(
        shared.clone(),
        store.clone(),
        config.usage_flush_interval,
        config.request_log_retention,
        bg_stop_rx,
    ));
    let options = grpc::ServeOptions {
        request_timeout: config
            .routing
            .overall_timeout
            .saturating_add(Duration::from_secs(5)),
        metrics: Some(rpc_metrics),
        ..grpc::ServeOptions::default()
    };
    let exporter = metrics_listener.map(|l| {
        tracing::info!(addr = ?metrics_addr, "metrics endpoint listening");
        let mut stop = bg_stop_tx.subscribe();
        tokio::spawn(iafactory::metrics::serve_metrics(
            l,
            registry.clone(),
            None,
            async move {
                let _ = stop.wait_for(|v| *v).await;
            },
        ))
    });
    let task_shared = shared.clone();
    tracing::info!(%addr, backend = ?store.db.backend, "llm-gateway listening");
    let running = Running { shared, registry };
    let handle = Handle::spawn(addr, running, move |stop| async move {
        // Phase 1: the signal; phase 2: stop accepting and drain in-flight calls.
        let signal = async move {
            stop.await;
            storage_health.abort();
            health
                .set_not_serving::<LlmGatewayServer<GatewayApi>>()
                .await;
        };
        let served = grpc::serve(listener, routes, &options, signal).await;
        // Phase 3: background work stops, usage is flushed, leases go back.
        let _ = bg_stop_tx.send(true);
        let _ = background.await;
        let _ = notifier.await;
        let _ = prober.await;
        if let Some(e) = exporter {
            let _ = e.await;
        }
        // Every answered call is already charged; this writes the charges of calls cut by
        // the drain (abandoned streams) and stops the writer.
        task_shared.usage.close().await;
        // The log rows of the drained calls.
        task_shared.log.close(log_writer).await;
        task_shared.quotas.release_idle(Duration::ZERO).await;
        // Phase 4: close the store.
        store.close().await;
        tracing::info!("llm-gateway stopped");
        served.map_err(ServeError::from)
    });
    Ok(handle.with_metrics_addr(metrics_addr))
}

/// How often a probe write checks that the usage store accepts writes (health status).
const STORAGE_PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// Periodic work off the request path: idle lease returns, old window pruning, the request
/// log's retention (usage is not here: it is written before each answer, see [`usage`]).
async fn background(
    shared: Arc<Shared>,
    store: Store,
    tick_every: Duration,
    log_retention: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks: u64 = 0;
    let per_minute = (60_000 / tick_every.as_millis().max(1)).max(1) as u64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(tick_every) => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
        ticks += 1;
        if ticks.is_multiple_of(per_minute) {
            shared.quotas.release_idle(IDLE_RELEASE).await;
            let hour_ago = iafactory::db::now_millis() - 3_600_000;
            if let Err(e) = store.prune_request_windows(hour_ago).await {
                tracing::warn!(error = %e, "pruning old rate windows failed");
            }
            let keep_ms = i64::try_from(log_retention.as_millis()).unwrap_or(i64::MAX);
            match store
                .prune_request_log(iafactory::db::now_millis().saturating_sub(keep_ms))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "request log rows past retention deleted"),
                Err(e) => tracing::warn!(error = %e, "pruning the request log failed"),
            }
        }
    }
}
