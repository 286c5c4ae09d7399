//! Test harness: the real promo-service (SQLite file in a temp folder) and the real gateway-rest,
//! both in-process on random loopback ports, driven over HTTP with reqwest.

use std::net::SocketAddr;
use std::time::Duration;

use gateway_rest::Config;
use iafactory_testkit::{Backend, ScratchDb};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Shared by the three services, as `INTERNAL_TOKEN` is in production.
pub(crate) const INTERNAL_TOKEN: &str = "test-internal-token-0123456789";

/// A loopback URL where nothing listens (connections are refused at once).
pub(crate) async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A running promo-service on its own SQLite file (or its own PostgreSQL database).
pub(crate) struct Promo {
    pub addr: SocketAddr,
    /// Its database.
    db_url: String,
    handle: Option<promo_service::Handle>,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database, dropped with the test's `Promo`.
    pg: Option<ScratchDb>,
    /// Applied to its configuration at every (re)start.
    tweak: Option<PromoTweak>,
}

/// A change to promo-service's configuration, applied at every (re)start.
pub(crate) type PromoTweak = std::sync::Arc<dyn Fn(&mut promo_service::Config) + Send + Sync>;

impl Promo {
    pub(crate) async fn spawn() -> Promo {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/promo.db", dir.path().display());
        Promo::spawn_on(url, dir, None, None).await
    }

    /// With a tweak of its configuration (billing settings...).
    pub(crate) async fn spawn_tweaked(
        tweak: impl Fn(&mut promo_service::Config) + Send + Sync + 'static,
    ) -> Promo {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/promo.db", dir.path().display());
        Promo::spawn_on(url, dir, None, Some(std::sync::Arc::new(tweak))).await
    }

    /// On `backend`, with a tweak of its configuration.
    pub(crate) async fn spawn_on_backend(
        backend: Backend,
        tweak: impl Fn(&mut promo_service::Config) + Send + Sync + 'static,
    ) -> Promo {
        let tweak: PromoTweak = std::sync::Arc::new(tweak);
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}/promo.db", dir.path().display());
                Promo::spawn_on(url, dir, None, Some(tweak)).await
            }
            Backend::Postgres => {
                let pg = ScratchDb::new(Backend::Postgres, "iaf_gwrest").await;
                Promo::spawn_on(
                    pg.url.clone(),
                    tempfile::tempdir().unwrap(),
                    Some(pg),
                    Some(tweak),
                )
                .await
            }
        }
    }

    /// A second replica on the same database and configuration (stopped when dropped; the
    /// database stays with the first).
    pub(crate) async fn replica(&self) -> Promo {
        Promo::spawn_on(
            self.db_url.clone(),
            tempfile::tempdir().unwrap(),
            None,
            self.tweak.clone(),
        )
        .await
    }

    /// On a new database of the PostgreSQL server the suite requires
    /// (`TEST_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test).
    pub(crate) async fn spawn_postgres() -> Promo {
        let pg = ScratchDb::new(Backend::Postgres, "iaf_gwrest").await;
        Promo::spawn_on(pg.url.clone(), tempfile::tempdir().unwrap(), Some(pg), None).await
    }

    async fn spawn_on(
        url: String,
        dir: tempfile::TempDir,
        pg: Option<ScratchDb>,
        tweak: Option<PromoTweak>,
    ) -> Promo {
        iafactory::telemetry::init_for_tests();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut promo = Promo {
            addr,
            db_url: url,
            handle: None,
            _dir: dir,
            pg,
            tweak,
        };
        promo.serve(listener).await;
        promo
    }

    async fn serve(&mut self, listener: tokio::net::TcpListener) {
        let mut config = promo_service::Config::new(self.db_url.clone(), ADMIN_TOKEN);
        config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        config.live_poll_interval = Duration::from_millis(100);
        if let Some(tweak) = &self.tweak {
            tweak(&mut config);
        }
        self.handle = Some(promo_service::start(config, listener).await.unwrap());
        self.open_packages().await;
    }

    /// Opens every package to every model: the seeded allowed-model lists name the default
    /// catalogue's models, and these tests route their own (`m`, `e`, `iaf-clients`...). The
    /// seeded lists themselves are tested in llm-gateway's `budget.rs`.
    async fn open_packages(&self) {
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&self.db_url)
            .await
            .unwrap();
        sqlx::query("UPDATE packages SET allowed_models = ''")
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// Stops it gracefully (as on SIGTERM) and waits until it has let go of its port.
    pub(crate) async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(15), handle.shutdown())
                .await
                .expect("promo-service did not stop")
                .unwrap();
        }
    }

    /// Starts it again on the same port and database (after [`Promo::stop`]).
    pub(crate) async fn restart(&mut self) {
        assert!(self.handle.is_none(), "stop it first");
        let mut listener = None;
        for _ in 0..100 {
            match iafactory::net::bind(self.addr) {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        self.serve(listener.expect("the port of promo-service stayed taken"))
            .await;
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its database (tests read what it stored, e.g. the sign-in link of an unsent e-mail).
    pub(crate) fn db_url(&self) -> &str {
        &self.db_url
    }

    pub(crate) fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

/// A running gateway-rest.
pub(crate) struct Gateway {
    pub base: String,
    pub http: reqwest::Client,
    handle: gateway_rest::Handle,
}

impl Gateway {
    pub(crate) async fn spawn(config: Config) -> Gateway {
        iafactory::telemetry::init_for_tests();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = gateway_rest::start(config, listener).await.unwrap();
        Gateway {
            base: format!("http://{}", handle.addr),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            handle,
        }
    }

    /// Graceful stop; returns how serving went.
    pub(crate) async fn stop(self) -> Result<(), gateway_rest::ServeError> {
        self.handle.shutdown().await
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path))
    }
}

/// promo-service + gateway-rest (llm-gateway absent unless a test adds it).
pub(crate) struct Stack {
    pub promo: Promo,
    pub gw: Gateway,
}

impl Stack {
    pub(crate) async fn spawn() -> Stack {
        Stack::spawn_with(|_| {}).await
    }

    /// With a tweak of the gateway's configuration (rate limits are off unless the tweak sets them,
    /// since every test client comes from 127.0.0.1).
    pub(crate) async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Stack {
        Stack::spawn_on(Promo::spawn().await, tweak).await
    }

    /// promo-service on PostgreSQL.
    pub(crate) async fn spawn_postgres() -> Stack {
        Stack::spawn_on(Promo::spawn_postgres().await, |_| {}).await
    }

    /// On a promo-service the test started itself.
    pub(crate) async fn spawn_on(promo: Promo, tweak: impl FnOnce(&mut Config)) -> Stack {
        let mut config = Config::new(promo.url(), dead_url().await);
        config.validate_rate = None;
        config.signup_rate = None;
        config.auth_failure_rate = None;
        config.admin_token = Some(gateway_rest::AdminToken::new(ADMIN_TOKEN));
        config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
        tweak(&mut config);
        let gw = Gateway::spawn(config).await;
        Stack::from_parts(promo, gw).await
    }

    /// A stack from a running promo-service and gateway, once promo-service answers.
    /// gateway-rest (as [`Stack::spawn`] makes it) in front of `promo`.
    pub(crate) async fn from_promo(promo: Promo) -> Stack {
        Stack::spawn_on(promo, |_| {}).await
    }

    pub(crate) async fn from_parts(promo: Promo, gw: Gateway) -> Stack {
        let stack = Stack { promo, gw };
        stack.wait_ready().await;
        stack
    }

    /// Waits until promo-service answers through the gateway (it migrates its database first).
    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self
                .gw
                .request(Method::GET, "/api/promo/health")
                .send()
                .await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("promo-service did not come up behind the gateway");
    }

    pub(crate) async fn get(&self, path: &str) -> Answer {
        Answer::of(self.gw.request(Method::GET, path).send().await.unwrap()).await
    }

    pub(crate) async fn admin_get(&self, path: &str) -> Answer {
        Answer::of(
            self.gw
                .request(Method::GET, path)
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Answer {
        Answer::of(
            self.gw
                .request(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn signup(&self, email: &str, package: &str, code: &str) -> Answer {
        self.post(
            "/api/promo/signup",
            json!({"email": email, "package": package, "promo_code": code}),
        )
        .await
    }

    /// The admin statistics (to check what was or was not written).
    pub(crate) async fn stats(&self) -> Value {
        let a = self.admin_get("/api/promo/stats").await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        a.body
    }
}

/// A decoded answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub(crate) async fn of(r: reqwest::Response) -> Answer {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// The `error.code` of a JSON error body.
    pub(crate) fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts a JSON error answer with this status and code.
    #[track_caller]
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.error_code(), code, "{self:?}");
        assert!(
            self.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{self:?}"
        );
        assert!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json")),
            "{self:?}"
        );
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}
