//! Test harness: a fresh database per test (a SQLite file in a temp folder, or a new PostgreSQL
//! database), the real service on a random loopback port, and typed gRPC helpers.

use std::net::SocketAddr;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use promo_service::Config;
use sqlx::Row;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suite runs against. It must be reachable: the suite fails rather
/// than skip, so CI cannot pass without having tested PostgreSQL.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database owned by one test.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/promo.db", dir.path().display());
                TestDb {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("iaf_promo_{}", uuid::Uuid::new_v4().simple());
                let admin = pg_admin_url();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {admin} is required by the suite: {e}")
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
                TestDb {
                    url: format!("{base}/{name}"),
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// A plain connection for assertions on what was (not) written.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
    }

    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>(0).unwrap())
            .collect()
    }

    pub async fn drop(self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut conn) =
                <sqlx::AnyConnection as sqlx::Connection>::connect(&pg_admin_url()).await
            {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        }
    }
}

/// A running promo-service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: PromoServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), promo_service::ServeError>>>,
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> TestApp {
        Self::spawn_with(db, |_| {}).await
    }

    /// With a configuration tweak (SMTP relay, timings...).
    pub async fn spawn_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        iafactory::telemetry::init_for_tests();
        let mut config = Config::new(db.url.clone(), ADMIN_TOKEN);
        config.live_poll_interval = std::time::Duration::from_millis(100);
        config.mail.poll_interval = std::time::Duration::from_millis(100);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(promo_service::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        let client = connect(addr).await;
        TestApp {
            addr,
            client,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop; returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), promo_service::ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().unwrap().await.unwrap()
    }
}

pub async fn connect(addr: SocketAddr) -> PromoServiceClient<Channel> {
    for _ in 0..100 {
        if let Ok(c) = PromoServiceClient::connect(format!("http://{addr}")).await {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("promo-service did not come up on {addr}");
}

/// A request carrying the admin token.
pub fn admin<T>(msg: T) -> Request<T> {
    with_token(msg, ADMIN_TOKEN)
}

pub fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

pub fn signup_req(email: &str, package: &str, code: &str) -> pb::SignupRequest {
    pb::SignupRequest {
        email: email.into(),
        package: package.into(),
        promo_code: code.into(),
    }
}

/// The stable error code carried by a status.
pub fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("x-iaf-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn assert_status(result: Result<impl std::fmt::Debug, Status>, code: Code, error: &str) {
    match result {
        Ok(v) => panic!("expected {code:?}/{error}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert_eq!(error_code(&s), error, "{s:?}");
        }
    }
}

pub async fn remaining(client: &mut PromoServiceClient<Channel>, code: &str) -> u32 {
    client
        .get_remaining(pb::GetRemainingRequest { code: code.into() })
        .await
        .unwrap()
        .into_inner()
        .remaining
}

/// Creates a limited code valid on every seeded package.
pub async fn create_code(
    client: &mut PromoServiceClient<Channel>,
    code: &str,
    max: u32,
) -> pb::PromoCode {
    client
        .create_code(admin(pb::CreateCodeRequest {
            code: code.into(),
            description: "test".into(),
            max_redemptions: Some(max),
            duration_months: 6,
            valid_from: String::new(),
            valid_until: String::new(),
            discounts: [
                ("starter", 25),
                ("dev", 33),
                ("business", 25),
                ("premium", 30),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        }))
        .await
        .unwrap()
        .into_inner()
}

/// Runs each listed `async fn name(Backend)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name($crate::helpers::Backend::Postgres).await }
            )*
        }
    };
}
