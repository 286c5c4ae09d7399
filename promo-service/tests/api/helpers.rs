//! Test harness: a fresh database per test (a SQLite file in a temp folder, or a new PostgreSQL
//! database), the real service on a random loopback port, and typed gRPC helpers.

use std::net::SocketAddr;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use promo_service::Config;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// What llm-gateway presents on `AuthenticateKey`.
pub(crate) const INTERNAL_TOKEN: &str = "test-internal-token-0123456789";

pub(crate) use iafactory_testkit::{Backend, ScratchDb};

/// A database owned by one test.
pub(crate) type TestDb = ScratchDb;

/// A fresh database for promo-service on `backend`.
pub(crate) async fn test_db(backend: Backend) -> TestDb {
    ScratchDb::new(backend, "iaf_promo").await
}

/// A running promo-service.
pub(crate) struct TestApp {
    pub addr: SocketAddr,
    pub client: PromoServiceClient<Channel>,
    /// Dropped with the app: the service then stops (see `iafactory::lifecycle`).
    handle: promo_service::Handle,
}

impl TestApp {
    pub(crate) async fn spawn(db: &TestDb) -> TestApp {
        Self::spawn_with(db, |_| {}).await
    }

    /// With a configuration tweak (SMTP relay, timings...).
    pub(crate) async fn spawn_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_on(&db.url, tweak).await
    }

    /// On the database at `url` (one the test made itself).
    pub(crate) async fn spawn_on(url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
        iafactory::telemetry::init_for_tests();
        let mut config = Config::new(url, ADMIN_TOKEN);
        config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        config.live_poll_interval = std::time::Duration::from_millis(100);
        config.mail.poll_interval = std::time::Duration::from_millis(100);
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = promo_service::start(config, listener).await.unwrap();
        let addr = handle.addr;
        let client = connect(addr).await;
        TestApp {
            addr,
            client,
            handle,
        }
    }

    /// Graceful stop; returns how serving went.
    pub(crate) async fn stop(self) -> Result<(), promo_service::ServeError> {
        self.handle.shutdown().await
    }
}

pub(crate) async fn connect(addr: SocketAddr) -> PromoServiceClient<Channel> {
    for _ in 0..100 {
        if let Ok(c) = PromoServiceClient::connect(format!("http://{addr}")).await {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("promo-service did not come up on {addr}");
}

/// A request carrying the admin token.
pub(crate) fn admin<T>(msg: T) -> Request<T> {
    with_token(msg, ADMIN_TOKEN)
}

/// A request carrying the internal token (llm-gateway's credential).
pub(crate) fn internal<T>(msg: T) -> Request<T> {
    with_token(msg, INTERNAL_TOKEN)
}

pub(crate) fn with_token<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    req
}

pub(crate) fn signup_req(email: &str, package: &str, code: &str) -> pb::SignupRequest {
    pb::SignupRequest {
        email: email.into(),
        package: package.into(),
        promo_code: code.into(),
        ..Default::default()
    }
}

/// The stable error code carried by a status.
pub(crate) fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("x-iaf-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub(crate) fn assert_status(result: Result<impl std::fmt::Debug, Status>, code: Code, error: &str) {
    match result {
        Ok(v) => panic!("expected {code:?}/{error}, got Ok({v:?})"),
        Err(s) => {
            assert_eq!(s.code(), code, "{s:?}");
            assert_eq!(error_code(&s), error, "{s:?}");
        }
    }
}

pub(crate) async fn remaining(client: &mut PromoServiceClient<Channel>, code: &str) -> u32 {
    client
        .get_remaining(pb::GetRemainingRequest { code: code.into() })
        .await
        .unwrap()
        .into_inner()
        .remaining
}

/// Creates a limited code valid on every seeded package.
pub(crate) async fn create_code(
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
