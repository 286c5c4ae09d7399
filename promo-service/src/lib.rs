//! promo-service: promo codes, packages, signups, API keys and launch statistics over gRPC.
//!
//! [`serve`] runs the service on a listener until a shutdown signal; `main.rs` only parses the
//! configuration and calls it, so tests and the all-in-one local run start the very same thing.

pub mod config;
pub mod domain;
pub mod error;
pub mod live;
pub mod outbox;
pub mod repo;
pub mod secrets;
pub mod service;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iafactory::db::{Db, DbError, Migrations};
use iafactory::grpc;
use iafactory::proto::iafactory::promo::v1::promo_service_server::PromoServiceServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;

pub use config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema, the same for both backends.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &MIGRATOR,
    postgres: &MIGRATOR,
};

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection_error::Error),
    #[error(transparent)]
    Mail(#[from] outbox::worker::WorkerError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Re-exported so the error type above names a stable path.
pub mod tonic_reflection_error {
    pub use tonic_reflection::server::Error;
}

/// Connects to the database (running migrations) and serves until `shutdown` resolves, then
/// ends open streams, lets in-flight calls finish and closes the database.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let db = Db::connect(&config.database_url, &MIGRATIONS, &config.pool).await?;
    serve_with_db(config, db, listener, shutdown).await
}

/// As [`serve`], on an already connected database.
pub async fn serve_with_db(
    config: Config,
    db: Db,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let live = live::LiveCounts::new(db.clone(), config.live_poll_interval);
    let poller = tokio::spawn(Arc::clone(&live).run(stop_rx.clone()));
    let janitor = tokio::spawn(purge_idempotency_records(db.clone(), stop_rx.clone()));
    let mail_wake = Arc::new(tokio::sync::Notify::new());
    let worker =
        outbox::worker::Worker::new(db.clone(), config.mail.clone(), Arc::clone(&mail_wake))?;
    let mailer = tokio::spawn(worker.run(stop_rx.clone()));

    let api = service::PromoApi::new(
        db.clone(),
        config.admin_token.clone(),
        config.launch_code.clone(),
        live,
        stop_rx,
    )
    .with_mail(config.mail.clone(), mail_wake);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<PromoServiceServer<service::PromoApi>>()
        .await;
    let promo = PromoServiceServer::new(api)
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let routes = grpc::add_reflection(Routes::new(health_service).add_service(promo))?;

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, backend = ?db.backend, "promo-service listening");
    let signal = async move {
        shutdown.await;
        health
            .set_not_serving::<PromoServiceServer<service::PromoApi>>()
            .await;
        // Open WatchRemaining streams end now; unary calls in flight run to completion.
        let _ = stop_tx.send(true);
    };
    let served = grpc::serve(listener, routes, &config.grpc, signal).await;
    poller.abort();
    janitor.abort();
    // The worker finishes the e-mail it is sending (stop is checked between batches).
    let _ = tokio::time::timeout(Duration::from_secs(10), mailer).await;
    db.close().await;
    tracing::info!("promo-service stopped");
    served.map_err(ServeError::from)
}

/// Forgets idempotency records past their 24 h lifetime, hourly.
async fn purge_idempotency_records(db: Db, mut stop: watch::Receiver<bool>) {
    loop {
        match repo::purge_idempotency(&db).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency records removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            () = iafactory::shutdown::stopped(&mut stop) => return,
        }
    }
}
