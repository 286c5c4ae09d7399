//! Test and benchmark support: local upstream LLM servers speaking each provider's wire format
//! ([`upstream`]), a local Chargily Pay server ([`chargily`]), an SMTP relay recording what it receives ([`smtp_sink`]), a disk that fills up ([`disk`]), and scratch
//! databases — a SQLite file in a temporary folder, or a fresh database on the PostgreSQL server
//! the suites require (`TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! dropped when the value is dropped, also when a test fails half-way. Every test owns its data;
//! nothing is skipped when PostgreSQL is missing.
#![expect(
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test support: a failed setup must stop the test with a clear message"
)]

pub mod chargily;
pub mod disk;
pub mod health;
pub mod smtp_sink;
pub mod upstream;

/// Runs each listed `async fn name(Backend)` once on SQLite and once on PostgreSQL, as tests
/// named `sqlite::name` and `postgres::name` (the invoking crate depends on tokio).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name($crate::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name($crate::Backend::Postgres).await }
            )*
        }
    };
}

use sqlx::{AnyConnection, Connection, Row};

/// Which database a scratch database lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the suites run against.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A database owned by one test (or one benchmark run).
pub struct ScratchDb {
    pub url: String,
    /// The PostgreSQL server's admin URL and the database's name, to drop it.
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl ScratchDb {
    /// Creates it; `prefix` names the PostgreSQL database (`<prefix>_<uuid>`).
    pub async fn create(backend: Backend, prefix: &str) -> Result<ScratchDb, String> {
        ScratchDb::create_on(backend, prefix, &pg_admin_url()).await
    }

    /// As [`ScratchDb::create`], on the PostgreSQL server at `admin` (for benchmarks).
    pub async fn create_on(
        backend: Backend,
        prefix: &str,
        admin: &str,
    ) -> Result<ScratchDb, String> {
        sqlx::any::install_default_drivers();
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                Ok(ScratchDb {
                    url: format!("sqlite://{}/{prefix}.db", dir.path().display()),
                    pg: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
                let mut conn = AnyConnection::connect(admin)
                    .await
                    .map_err(|e| format!("PostgreSQL at {admin} is required: {e}"))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
                let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
                Ok(ScratchDb {
                    url: format!("{base}/{name}"),
                    pg: Some((admin.to_owned(), name)),
                    _dir: None,
                })
            }
        }
    }

    /// As [`ScratchDb::create`], failing the test on error.
    pub async fn new(backend: Backend, prefix: &str) -> ScratchDb {
        ScratchDb::create(backend, prefix)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn conn(&self) -> AnyConnection {
        AnyConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url))
    }

    /// Runs one statement.
    pub async fn exec(&self, sql: &str) {
        let mut conn = self.conn().await;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &str) -> i64 {
        let mut conn = self.conn().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table}"
        )))
        .fetch_one(&mut conn)
        .await
        .and_then(|r| r.try_get::<i64, _>("n"))
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
    }

    /// The first column of every row, as text.
    pub async fn query_strings(&self, sql: &str) -> Vec<String> {
        let mut conn = self.conn().await;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&mut conn)
            .await
            .and_then(|rows| rows.iter().map(|r| r.try_get::<String, _>(0)).collect())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Drops the PostgreSQL database now (also done on drop).
    pub async fn close(mut self) {
        if let Some((admin, name)) = self.pg.take() {
            drop_database(&admin, &name).await;
        }
    }
}

async fn drop_database(admin: &str, name: &str) {
    if let Ok(mut conn) = AnyConnection::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Off the caller's runtime, which may be shutting down (a failed test).
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_database(&admin, &name));
            }
        })
        .join();
    }
}
