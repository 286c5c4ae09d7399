//! promo-service: promo codes, packages, signups, API keys, launch statistics, and billing
//! (subscriptions, invoices, payments) over gRPC.
//!
//! [`start`] runs the service on a listener and returns a [`Handle`] that stops it; `main.rs` only
//! parses the configuration and calls it, so tests, the benchmark and the all-in-one local run
//! start the very same thing.

pub mod audit;
pub mod billing;
pub mod billing_config;
pub mod cache;
pub mod campaign_jobs;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod gauges;
pub mod idempotency;
pub mod live;
pub mod notices;
pub mod outbox;
pub mod repo;
pub mod secrets;
pub mod service;
pub mod site_config;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iafactory::db::{Db, DbError, Migrations};
// The lean servers: tonic's server path compiled once in iafactory, not once per method here.
use iafactory::servers::promo::v1::{
    BillingServer, CampaignsServer, OperatorAccountsServer, OperatorsServer, PromoServiceServer,
    SiteServer,
};
use iafactory::{grpc, lifecycle, metrics};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::service::Routes;

pub use config::Config;

/// The migrations, embedded as text. (Built by hand rather than with `sqlx::migrate!`: that macro
/// alone made sqlx, tokio and the bundled SQLite compile a second time, for the build host.) The
/// versions, descriptions and SQL are the files' own, so the checksums recorded by databases
/// migrated with the macro still match. Migration 6 has one file per backend (SQLite rebuilds
/// the invoices table to drop a constraint, outside the migrator's transaction; PostgreSQL
/// drops it in place); both give the same schema.
fn migrator(sixth: &'static str, sixth_in_tx: bool) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let migration = |version, description: &'static str, sql: &'static str, no_tx| {
        Migration::new(
            version,
            std::borrow::Cow::Borrowed(description),
            MigrationType::Simple,
            sqlx::SqlStr::from_static(sql),
            no_tx,
        )
    };
    Migrator::with_migrations(vec![
        migration(
            1,
            "init",
            include_str!("../migrations/0001_init.sql"),
            false,
        ),
        migration(
            2,
            "outbox",
            include_str!("../migrations/0002_outbox.sql"),
            false,
        ),
        migration(
            3,
            "accounts",
            include_str!("../migrations/0003_accounts.sql"),
            false,
        ),
        migration(
            4,
            "billing",
            include_str!("../migrations/0004_billing.sql"),
            false,
        ),
        migration(
            5,
            "operators",
            include_str!("../migrations/0005_operators.sql"),
            false,
        ),
        migration(6, "billing proration", sixth, !sixth_in_tx),
        migration(
            7,
            "campaigns",
            include_str!("../migrations/0007_campaigns.sql"),
            false,
        ),
        migration(
            8,
            "signup lang",
            include_str!("../migrations/0008_signup_lang.sql"),
            false,
        ),
        migration(
            9,
            "budgets and operator accounts",
            include_str!("../migrations/0009_budgets_and_operator_accounts.sql"),
            false,
        ),
        migration(
            10,
            "mail lang and campaign metrics",
            include_str!("../migrations/0010_mail_lang_and_campaign_metrics.sql"),
            false,
        ),
    ])
}

static SQLITE: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    migrator(
        include_str!("../migrations/0006_billing_proration.sqlite.sql"),
        false,
    )
});

static POSTGRES: std::sync::LazyLock<sqlx::migrate::Migrator> = std::sync::LazyLock::new(|| {
    migrator(
        include_str!("../migrations/0006_billing_proration.sql"),
        true,
    )
});

/// The schema, the same for both backends.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    }
}

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection_error::Error),
    #[error(transparent)]
    Mail(#[from] outbox::worker::WorkerError),
    #[error("cannot bring stored e-mails to the canonical form: {0}")]
    Emails(#[source] error::PromoError),
    #[error("cannot set up the Chargily client: {0}")]
    Chargily(#[source] error::PromoError),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("cannot read the listener's address: {0}")]
    Listen(#[source] std::io::Error),
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Task(#[from] lifecycle::TaskFailed),
}

/// Re-exported so the error type above names a stable path.
pub mod tonic_reflection_error {
    pub use tonic_reflection::server::Error;
}

/// A running promo-service (see [`iafactory::lifecycle`]).
pub type Handle = lifecycle::Handle<ServeError>;

/// Serves until `shutdown` resolves: kept for callers of the former entry point.
#[deprecated(note = "use `start(config, listener)`, then `Handle::run_until(shutdown)`")]
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    start(config, listener).await?.run_until(shutdown).await
}

/// Binds the metrics listener (`config.metrics_listen`), connects to the database (running
/// migrations), starts the background work and serves gRPC on `listener`; returns once it is
/// served. [`Handle::shutdown`] then ends open streams, lets in-flight calls finish, lets the
/// e-mail worker finish its message and closes the database.
pub fn start(config: Config, listener: TcpListener) -> lifecycle::Starting<Handle, ServeError> {
    // Boxed here so the start-up is compiled in this crate only (see `lifecycle::Starting`).
    Box::pin(start_serving(config, listener))
}

async fn start_serving(mut config: Config, listener: TcpListener) -> Result<Handle, ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Listen)?;
    let metrics_listener = match config.metrics_listen {
        None => None,
        Some(at) => Some(
            iafactory::net::bind(at)
                .map_err(|source| ServeError::MetricsListen { addr: at, source })?,
        ),
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let db = Db::connect(&config.database_url, &migrations(), &config.pool).await?;
    // Rows stored under an older e-mail rule join the canonical form before any signup is
    // served, or a new spelling of their mailbox would pass the uniqueness check.
    let rewrite = repo::recanonicalise_emails(&db)
        .await
        .map_err(ServeError::Emails)?;
    if rewrite != repo::EmailRewrite::default() {
        tracing::info!(
            rewritten = rewrite.rewritten,
            left = rewrite.left,
            "stored e-mails brought to the canonical form"
        );
    }
    let chargily = config
        .billing
        .chargily
        .clone()
        .map(billing::chargily::Client::new)
        .transpose()
        .map_err(ServeError::Chargily)?;
    let mut registry = metrics::Registry::new();
    config.grpc.metrics = Some(grpc::rpc_metrics(&mut registry));
    let gauges = Arc::new(gauges::BusinessGauges::register(&mut registry));
    let registry = Arc::new(registry);
    let (stop_tx, stop_rx) = watch::channel(false);

    let live = live::LiveCounts::new(db.clone(), config.live_poll_interval);
    let mail_wake = Arc::new(tokio::sync::Notify::new());
    let identity = outbox::MailIdentity::new(
        &config.billing.seller,
        &config.site,
        &config.mail.public_url,
    );
    let worker = outbox::worker::Worker::new(
        db.clone(),
        config.mail.clone(),
        identity,
        Arc::clone(&mail_wake),
    )?;
    let campaign_jobs = Arc::new(campaign_jobs::CampaignJobs {
        db: db.clone(),
        clock: config.clock.clone(),
        config: config.campaigns.clone(),
        public_url: config.mail.public_url.clone(),
        launch_code: config.launch_code.as_str().to_owned(),
        mail_wake: Arc::clone(&mail_wake),
    });
    let api = service::PromoApi::new(
        db.clone(),
        config.admin_token.clone(),
        config.launch_code.clone(),
        Arc::clone(&live),
        stop_rx.clone(),
        config.read_cache_ttl,
    )
    .with_mail(config.mail.clone(), Arc::clone(&mail_wake))
    .with_internal_token(config.internal_token.clone())
    .with_clock(config.clock.clone())
    .with_billing(config.billing.clone(), chargily)
    .with_campaigns(Arc::clone(&campaign_jobs));
    // One state serves the three services: the billing and console RPCs share the promo RPCs'
    // database, cache and clock.
    let api = Arc::new(api);
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<PromoServiceServer<service::PromoApi>>()
        .await;
    health
        .set_serving::<BillingServer<service::BillingApi>>()
        .await;
    health
        .set_serving::<OperatorsServer<service::PromoApi>>()
        .await;
    health
        .set_serving::<OperatorAccountsServer<service::PromoApi>>()
        .await;
    health.set_serving::<SiteServer<service::SiteApi>>().await;
    health
        .set_serving::<CampaignsServer<service::PromoApi>>()
        .await;
    let promo = PromoServiceServer::from_arc(Arc::clone(&api))
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let billing = BillingServer::new(service::BillingApi::new(Arc::clone(&api)))
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let operator_accounts = OperatorAccountsServer::from_arc(Arc::clone(&api))
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let campaigns = CampaignsServer::from_arc(Arc::clone(&api))
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let operators = OperatorsServer::from_arc(api)
        .max_decoding_message_size(grpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(grpc::MAX_MESSAGE_BYTES);
    let site = SiteServer::new(service::SiteApi::new(site_config::site_info(
        &config.site,
        &config.billing,
    )));
    let routes = grpc::add_reflection(
        Routes::new(health_service)
            .add_service(promo)
            .add_service(billing)
            .add_service(operators)
            .add_service(operator_accounts)
            .add_service(site)
            .add_service(campaigns),
    )?;

    // Nothing below fails: the background work starts with the serving task.
    let exporter = metrics_listener.map(|l| {
        tracing::info!(addr = ?metrics_addr, "metrics endpoint listening");
        let mut stop = stop_rx.clone();
        tokio::spawn(metrics::serve_metrics(
            l,
            Arc::clone(&registry),
            Some(gauges.refresh(db.clone(), config.launch_code.clone())),
            async move { iafactory::shutdown::stopped(&mut stop).await },
        ))
    });
    let poller = tokio::spawn(Arc::clone(&live).run(stop_rx.clone()));
    let janitor = tokio::spawn(idempotency::store::purge_hourly(
        db.clone(),
        stop_rx.clone(),
    ));
    let mailer = tokio::spawn(worker.run(stop_rx.clone()));
    let campaigner = tokio::spawn(Arc::clone(&campaign_jobs).run(stop_rx.clone()));
    let account_jobs = tokio::spawn(
        notices::AccountJobs {
            db: db.clone(),
            clock: config.clock.clone(),
            billing: config.billing.clone(),
            public_url: config.mail.public_url.clone(),
            mail_wake: Arc::clone(&mail_wake),
            interval: config.account_jobs_interval,
        }
        .run(stop_rx.clone()),
    );
    let billing_jobs = config.billing_jobs_interval.map(|interval| {
        tokio::spawn(
            billing::job::BillingJobs {
                db: db.clone(),
                clock: config.clock.clone(),
                config: config.billing.clone(),
                public_url: config.mail.public_url.clone(),
                mail_wake: Arc::clone(&mail_wake),
                interval,
            }
            .run(stop_rx.clone()),
        )
    });
    let prober = tokio::spawn(
        db.clone()
            .probe_writes(config.storage_probe_interval, stop_rx),
    );
    let storage_health = tokio::spawn(grpc::follow_storage_health(
        health.clone(),
        <PromoServiceServer<service::PromoApi> as tonic::server::NamedService>::NAME,
        db.watch_writable(),
    ));
    tracing::info!(%addr, backend = ?db.backend, "promo-service listening");
    let handle = Handle::spawn(addr, (), move |stop| async move {
        let signal = async move {
            stop.await;
            storage_health.abort();
            health
                .set_not_serving::<PromoServiceServer<service::PromoApi>>()
                .await;
            health
                .set_not_serving::<BillingServer<service::BillingApi>>()
                .await;
            health
                .set_not_serving::<OperatorsServer<service::PromoApi>>()
                .await;
            health
                .set_not_serving::<OperatorAccountsServer<service::PromoApi>>()
                .await;
            health
                .set_not_serving::<SiteServer<service::SiteApi>>()
                .await;
            health
                .set_not_serving::<CampaignsServer<service::PromoApi>>()
                .await;
            // Open WatchRemaining streams end now; unary calls in flight run to completion.
            let _ = stop_tx.send(true);
        };
        let served = grpc::serve(listener, routes, &config.grpc, signal).await;
        poller.abort();
        janitor.abort();
        account_jobs.abort();
        campaigner.abort();
        if let Some(j) = billing_jobs {
            j.abort();
        }
        prober.abort();
        if let Some(e) = exporter {
            e.abort();
        }
        // The worker finishes the e-mail it is sending (stop is checked between batches).
        let _ = tokio::time::timeout(Duration::from_secs(10), mailer).await;
        db.close().await;
        tracing::info!("promo-service stopped");
        served.map_err(ServeError::from)
    });
    Ok(handle.with_metrics_addr(metrics_addr))
}
