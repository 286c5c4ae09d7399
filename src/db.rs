//! The storage handle: one binary, two backends chosen from `DATABASE_URL`.
//!
//! SQLite (the embedded default, a file created on first start) and PostgreSQL (production, and
//! several replicas sharing one database) are both reached through sqlx's `Any` driver, so the
//! repositories hold one set of SQL. The SQL sticks to what both accept — `$n` placeholders,
//! BIGINT epoch-millisecond timestamps, single-statement guarded updates — which also keeps it
//! portable to PostgreSQL-wire distributed databases.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection, Executor};
use tokio::sync::watch;

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, DbError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(DbError::BadUrl(format!(
                "{} (expected sqlite://PATH or postgres://...)",
                redact_url(url)
            ))),
        }
    }
}

/// Startup and infrastructure errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not usable: {0}")]
    BadUrl(String),
    #[error("cannot create the folder for the SQLite file {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed on {url}: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
}

/// Migrations for each backend, embedded by the service that owns the schema.
pub struct Migrations {
    pub sqlite: &'static Migrator,
    pub postgres: &'static Migrator,
}

/// A connected database.
///
/// On SQLite, writes go through a single-connection pool: SQLite has one writer at a time anyway,
/// and queuing in-process avoids `SQLITE_BUSY` on lock upgrades. On PostgreSQL both handles are the
/// same pool.
///
/// A pooled connection is never handed out inside a transaction: when a COMMIT or ROLLBACK fails
/// (disk full, I/O error), SQLite may keep the transaction open while sqlx's own depth count stays
/// above zero, and every later `begin()` on that connection would become a SAVEPOINT of a
/// transaction that never commits — answers would succeed and nothing would be saved. Every
/// connection released to the write pool is therefore checked ([`release_check`]) and closed
/// unless it is back in autocommit mode; the pool opens a fresh one.
#[derive(Clone, Debug)]
pub struct Db {
    pub backend: Backend,
    pub read: AnyPool,
    pub write: AnyPool,
    /// Whether the database accepted the last probe write (see [`Db::watch_writable`]).
    writable: Arc<watch::Sender<bool>>,
}

/// Pool sizing.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Db {
    /// Connects (creating the SQLite file and its folder if needed) and runs the migrations.
    pub async fn connect(
        url: &str,
        migrations: &Migrations,
        options: &PoolOptions,
    ) -> Result<Db, DbError> {
        install_default_drivers();
        let backend = Backend::from_url(url)?;
        let shown = redact_url(url);
        let connect_err = |source| DbError::Connect {
            url: shown.clone(),
            source,
        };
        let db = match backend {
            Backend::Sqlite => {
                let url = prepare_sqlite_url(url)?;
                let write = sqlite_pool(1, options.acquire_timeout.max(Duration::from_secs(30)))
                    .after_release(|conn, _meta| Box::pin(release_check(conn)))
                    .connect(&url)
                    .await
                    .map_err(connect_err)?;
                // WAL lets readers run beside the writer; it is a property of the file.
                write
                    .execute("PRAGMA journal_mode = WAL")
                    .await
                    .map_err(connect_err)?;
                let read = sqlite_pool(options.max_connections, options.acquire_timeout)
                    .connect(&url)
                    .await
                    .map_err(connect_err)?;
                Db {
                    backend,
                    read,
                    write,
                    writable: Arc::new(watch::Sender::new(true)),
                }
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .after_release(|conn, _meta| Box::pin(release_check(conn)))
                    .connect(url)
                    .await
                    .map_err(connect_err)?;
                Db {
                    backend,
                    read: pool.clone(),
                    write: pool,
                    writable: Arc::new(watch::Sender::new(true)),
                }
            }
        };
        let migrator = match backend {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        migrator
            .run(&db.write)
            .await
            .map_err(|source| DbError::Migrate { url: shown, source })?;
        Ok(db)
    }

    /// Follows whether the database accepts writes: `true` while the last probe write succeeded.
    /// The value changes only while [`Db::probe_writes`] runs.
    pub fn watch_writable(&self) -> watch::Receiver<bool> {
        self.writable.subscribe()
    }

    /// Writes a small probe row every `interval` (every second while writes fail) until `stop`
    /// turns true, publishing the outcome to [`Db::watch_writable`]. A disk that filled up, a file
    /// or server turned read-only, a database that went away: health turns NOT_SERVING, and back
    /// to SERVING by itself once a write succeeds again.
    pub async fn probe_writes(self, interval: Duration, mut stop: watch::Receiver<bool>) {
        let limit = self.probe_timeout();
        loop {
            let outcome = match tokio::time::timeout(limit, self.probe_once()).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {limit:?}")),
            };
            let ok = match outcome {
                Ok(()) => true,
                Err(e) => {
                    if *self.writable.borrow() {
                        tracing::error!(error = %e, "the database does not accept writes");
                    }
                    false
                }
            };
            let changed = self
                .writable
                .send_if_modified(|w| std::mem::replace(w, ok) != ok);
            if changed && ok {
                tracing::info!("the database accepts writes again");
            }
            let wait = if ok {
                interval
            } else {
                interval.min(Duration::from_secs(1))
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = crate::shutdown::stopped(&mut stop) => return,
            }
        }
    }

    /// How long one probe may take before the database counts as not accepting writes.
    ///
    /// PostgreSQL: [`PROBE_TIMEOUT_POSTGRES`], so that a server that went away (connections
    /// refused, or packets silently dropped) turns health NOT_SERVING within a few seconds rather
    /// than after the pool's acquire timeout — several of them, as a failed probe retries once.
    /// SQLite: [`PROBE_TIMEOUT_SQLITE`]: the file cannot be unreachable, and its writes queue behind
    /// one writer connection, so a short limit would report a busy file as a broken one.
    fn probe_timeout(&self) -> Duration {
        match self.backend {
            Backend::Postgres => PROBE_TIMEOUT_POSTGRES,
            Backend::Sqlite => PROBE_TIMEOUT_SQLITE,
        }
    }

    /// One probe: a row with a few pages of padding, so that a disk with room for a one-page
    /// change but not for a real transaction is not reported as healthy.
    async fn probe_once(&self) -> Result<(), sqlx::Error> {
        if self.probe_write().await.is_ok() {
            return Ok(());
        }
        // The first probe creates its table. (Not at connect: replicas starting together would
        // race on PostgreSQL's catalog; here a lost race just means the next write succeeds.)
        let table = match self.backend {
            Backend::Sqlite => PROBE_TABLE_SQLITE,
            Backend::Postgres => PROBE_TABLE_POSTGRES,
        };
        let _ = self.write.execute(table).await;
        self.probe_write().await
    }

    async fn probe_write(&self) -> Result<(), sqlx::Error> {
        let pad = vec![0u8; PROBE_PAD_BYTES];
        sqlx::query(
            "INSERT INTO iaf_storage_probe (id, at, pad) VALUES (1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
        )
        .bind(now_millis())
        .bind(pad)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Closes both pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// The probe's table: not part of any service's migrations (every service's database has one).
const PROBE_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS iaf_storage_probe \
     (id INTEGER PRIMARY KEY, at BIGINT NOT NULL, pad BLOB)";
const PROBE_TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS iaf_storage_probe \
     (id INTEGER PRIMARY KEY, at BIGINT NOT NULL, pad BYTEA)";
/// Time limit of one probe on PostgreSQL (see [`Db::probe_timeout`]).
pub const PROBE_TIMEOUT_POSTGRES: Duration = Duration::from_secs(3);
/// Time limit of one probe on SQLite (the write pool's own acquire timeout).
pub const PROBE_TIMEOUT_SQLITE: Duration = Duration::from_secs(30);
/// Padding written by each probe (four SQLite pages).
const PROBE_PAD_BYTES: usize = 16 * 1024;

/// Decides whether a connection released to the pool may be reused: only outside any
/// transaction as sqlx counts it. A COMMIT or ROLLBACK that failed leaves that count above zero
/// (sqlx lowers it only on success), and dropping a `Transaction` queues a ROLLBACK that lowers
/// it once the connection processes it — so a count above zero is first given one round trip
/// to settle, then the connection is closed if it is still inside a transaction. The common
/// case (committed, count zero) costs no round trip. (PostgreSQL ends a transaction whose
/// COMMIT failed, and a connection that broke mid-transaction fails the pool's own ping.)
async fn release_check(conn: &mut sqlx::AnyConnection) -> Result<bool, sqlx::Error> {
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a pooled connection was left inside a transaction; closed");
        return Ok(false);
    }
    Ok(true)
}

fn sqlite_pool(max: u32, acquire_timeout: Duration) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max.max(1))
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
}

/// The file path and the query of a SQLite URL (`sqlite://PATH?QUERY` or `sqlite:PATH`); `None`
/// for another scheme.
fn sqlite_path_and_query(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split_once('?').unwrap_or((rest, "")))
}

/// Makes sure the SQLite file can be created: adds `mode=rwc` and creates the parent folder.
fn prepare_sqlite_url(url: &str) -> Result<String, DbError> {
    let (path, query) =
        sqlite_path_and_query(url).ok_or_else(|| DbError::BadUrl(url.to_owned()))?;
    if path.is_empty() {
        return Err(DbError::BadUrl(format!("{url} names no file")));
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| path != ":memory:" && !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|source| DbError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
    }
    let query = if query.split('&').any(|kv| kv.starts_with("mode=")) {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The URL of a second SQLite file beside the one `url` names, `-suffix` added to the file's
/// stem: `sqlite:///data/llm.db?mode=rwc` and `requests` give `sqlite:///data/llm-requests.db?mode=rwc`.
/// For a store that writes a lot off the request path (the request log): SQLite has one writer
/// per file, so a file of its own keeps those writes from queueing the request path's.
/// `None` for PostgreSQL, where writers do not exclude each other and one database holds all.
pub fn sqlite_sibling_url(url: &str, suffix: &str) -> Option<String> {
    let (path, query) = sqlite_path_and_query(url)?;
    if path == ":memory:" {
        return Some(url.to_owned());
    }
    // The folder (with its last `/`) stays; the suffix goes before the file's extension.
    let (dir, file) = path.split_at(path.rfind('/').map_or(0, |i| i + 1));
    let path = match file.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{dir}{stem}-{suffix}.{ext}"),
        _ => format!("{dir}{file}-{suffix}"),
    };
    Some(if query.is_empty() {
        format!("sqlite://{path}")
    } else {
        format!("sqlite://{path}?{query}")
    })
}

/// The URL with any password replaced, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// True for errors worth retrying the whole transaction: serialization failures and deadlocks
/// (PostgreSQL and its distributed cousins) and a busy SQLite file.
pub fn is_retryable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some("40001" | "40P01" | "5" | "6" | "517" | "261")
        ),
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => false,
        _ => false,
    }
}

/// True when the error means the database cannot do the work now, through no fault of the request:
/// unreachable or restarting, out of disk space, read-only, an I/O error. Such errors are answered
/// `unavailable` (503 with `Retry-After`): retrying later can succeed.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // PostgreSQL: connection exceptions (08), insufficient resources such as a full
                // disk (53), operator intervention such as a shutdown (57P0x), and a read-only
                // transaction on a standby (25006).
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "25006"
            } else {
                // SQLite (extended codes keep the primary code in their low byte): BUSY and
                // LOCKED left after the retries, READONLY, IOERR, FULL, CANTOPEN.
                code.parse::<i32>()
                    .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
            }
        }
        _ => false,
    }
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl FromStr for Backend {
    type Err = DbError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::from_url(s)
    }
}

/// Milliseconds since the Unix epoch, the storage format of every timestamp.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Backend::from_url("sqlite://data/x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgresql://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
        assert_eq!(
            redact_url("postgres://bob:secret@h:5432/db"),
            "postgres://bob:***@h:5432/db"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite://x.db").ok().as_deref(),
            Some("sqlite://x.db?mode=rwc")
        );
        assert_eq!(
            prepare_sqlite_url("sqlite:x.db?mode=ro").ok().as_deref(),
            Some("sqlite://x.db?mode=ro")
        );
    }

    /// The bundled SQLite is built as `.cargo/config.toml` says: without the modules the platform
    /// does not use (they were two fifths of its compile time), with libsqlite3-sys's other options.
    #[tokio::test]
    async fn embedded_sqlite_is_built_without_unused_modules() {
        use sqlx::Row as _;
        install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let options: Vec<String> = sqlx::query("PRAGMA compile_options")
            .fetch_all(&mut conn)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        for kept in [
            "THREADSAFE=1",
            "ENABLE_STAT4",
            "DEFAULT_FOREIGN_KEYS",
            "ENABLE_API_ARMOR",
        ] {
            assert!(options.iter().any(|o| o == kept), "{kept} in {options:?}");
        }
        for dropped in [
            "ENABLE_FTS3",
            "ENABLE_FTS5",
            "ENABLE_RTREE",
            "ENABLE_DBSTAT_VTAB",
            "SOUNDEX",
        ] {
            assert!(
                !options.iter().any(|o| o.starts_with(dropped)),
                "{dropped} in {options:?}"
            );
        }
        let fts = sqlx::query("CREATE VIRTUAL TABLE t USING fts5(body)")
            .execute(&mut conn)
            .await;
        assert!(fts.is_err(), "fts5 is not built in");
    }

    #[test]
    fn sibling_files() {
        let sib = |u| sqlite_sibling_url(u, "requests");
        assert_eq!(
            sib("sqlite:///data/llm.db?mode=rwc").as_deref(),
            Some("sqlite:///data/llm-requests.db?mode=rwc")
        );
        assert_eq!(
            sib("sqlite://data.v1/llm").as_deref(),
            Some("sqlite://data.v1/llm-requests")
        );
        assert_eq!(
            sib("sqlite:x.db").as_deref(),
            Some("sqlite://x-requests.db")
        );
        assert_eq!(
            sib("sqlite://dir/.hidden").as_deref(),
            Some("sqlite://dir/.hidden-requests")
        );
        assert_eq!(sib("sqlite::memory:").as_deref(), Some("sqlite::memory:"));
        assert_eq!(sib("postgres://u@h/db"), None);
    }
}
