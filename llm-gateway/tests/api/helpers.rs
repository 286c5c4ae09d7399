//! Test harness: the real promo-service (in-process, its own SQLite file) for API keys and
//! packages, the real gateway on a random loopback port with its own database (SQLite file or a
//! fresh PostgreSQL database), local upstreams speaking the providers' wire formats, and typed
//! gRPC helpers.
#![expect(dead_code, reason = "shared by several test files, each using a part")]

use std::net::SocketAddr;
use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use iafactory::proto::iafactory::promo::v1 as promo_pb;
use llm_gateway::catalog::Catalog;
use llm_gateway::routing::RoutingSettings;
use llm_gateway::{Config, Handle};
use pb::llm_gateway_client::LlmGatewayClient;
use promo_pb::promo_service_client::PromoServiceClient;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Shared by promo-service and the gateway, as `INTERNAL_TOKEN` is in production.
pub(crate) const INTERNAL_TOKEN: &str = "test-internal-token-0123456789";

pub(crate) use iafactory_testkit::{Backend, ScratchDb};

/// A database owned by one test.
pub(crate) type TestDb = ScratchDb;

/// A fresh database for llm-gateway on `backend`.
pub(crate) async fn test_db(backend: Backend) -> TestDb {
    ScratchDb::new(backend, "iaf_llm").await
}

/// Migrates `db` only up to `version` of the gateway's migrations: the schema an older version
/// left, for the upgrade tests.
pub(crate) async fn migrate_to(db: &TestDb, backend: Backend, version: i64) {
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    llm_gateway::store::migrator()
        .run_to(version, &mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
}

/// The real promo-service, in-process on a random port.
pub(crate) struct Promo {
    pub addr: SocketAddr,
    pub db: TestDb,
    pub client: PromoServiceClient<Channel>,
    handle: promo_service::Handle,
}

impl Promo {
    pub(crate) async fn start() -> Promo {
        Promo::start_on(Backend::Sqlite).await
    }

    /// promo-service on its own database on `backend`.
    pub(crate) async fn start_on(backend: Backend) -> Promo {
        Promo::start_with(backend, |_| {}).await
    }

    /// With a tweak of promo-service's configuration (SMTP sink, operator address...).
    ///
    /// Every package is opened to every model: the seeded allowed-model lists name the
    /// default catalogue's models, and these tests route their own (`m`, `cheap`...). The
    /// seeded lists are tested with the default catalogue's names in `budget.rs`.
    pub(crate) async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut promo_service::Config),
    ) -> Promo {
        let promo = Promo::start_seeded(backend, tweak).await;
        promo
            .db
            .exec("UPDATE packages SET allowed_models = ''")
            .await;
        promo
    }

    /// promo-service with the packages exactly as its migrations seed them.
    pub(crate) async fn start_seeded(
        backend: Backend,
        tweak: impl FnOnce(&mut promo_service::Config),
    ) -> Promo {
        iafactory::telemetry::init_for_tests();
        let db = test_db(backend).await;
        let mut config = promo_service::Config::new(db.url.clone(), ADMIN_TOKEN);
        config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // Returns once migrated and served.
        let handle = promo_service::start(config, listener).await.unwrap();
        let addr = handle.addr;
        let client = PromoServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        Promo {
            addr,
            db,
            client,
            handle,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Signs a customer up; returns (user_id, api_key).
    pub(crate) async fn signup(&mut self, package: &str) -> (String, String) {
        let email = format!("{}@test.dz", uuid::Uuid::new_v4().simple());
        let r = self
            .client
            .signup(promo_pb::SignupRequest {
                email,
                package: package.into(),
                promo_code: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        (r.user_id, r.api_key)
    }

    /// Signs a customer up and gives them a second, named key the way a customer does on
    /// `/compte/` (sign-in link from the outbox, session, CSRF); returns (user_id, first key,
    /// second key).
    pub(crate) async fn signup_with_two_keys(&mut self, package: &str) -> (String, String, String) {
        let email = format!("{}@test.dz", uuid::Uuid::new_v4().simple());
        let r = self
            .client
            .signup(promo_pb::SignupRequest {
                email: email.clone(),
                package: package.into(),
                promo_code: String::new(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        self.client
            .request_sign_in_link(internal(promo_pb::RequestSignInLinkRequest {
                email: email.clone(),
            }))
            .await
            .unwrap();
        let payload = self
            .db
            .query_strings(&format!(
                "SELECT payload FROM outbox WHERE kind = 'sign_in_link' AND recipient = '{email}'"
            ))
            .await
            .remove(0);
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        let token = payload["link"]
            .as_str()
            .unwrap()
            .split("#jeton=")
            .nth(1)
            .unwrap();
        let grant = self
            .client
            .consume_sign_in_link(promo_pb::ConsumeSignInLinkRequest {
                token: token.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let mut req = Request::new(promo_pb::CreateKeyRequest {
            name: "second".into(),
        });
        let md = req.metadata_mut();
        md.insert("x-iaf-session", grant.session_token.parse().unwrap());
        md.insert("x-iaf-csrf", grant.csrf_token.parse().unwrap());
        let second = self.client.create_key(req).await.unwrap().into_inner();
        (r.user_id, r.api_key, second.api_key)
    }

    /// The operator changes a package's quotas (in promo-service's own database).
    pub(crate) async fn set_package(&self, id: &str, rpm: u32, tokens: u64, allowed_models: &str) {
        self.db
            .exec(&format!(
                "UPDATE packages SET requests_per_minute = {rpm}, tokens_per_month = {tokens}, \
                 allowed_models = '{allowed_models}' WHERE id = '{id}'"
            ))
            .await;
    }

    /// The operator sets (or removes) a package's monthly upstream-cost budget, nano-USD,
    /// through the console's RPC (as an operator does; the change is audited).
    pub(crate) async fn set_budget(&mut self, id: &str, budget: Option<u64>) {
        let mut client = promo_pb::operators_client::OperatorsClient::connect(self.url())
            .await
            .unwrap();
        let p = client
            .update_package(authed(
                promo_pb::UpdatePackageRequest {
                    id: id.into(),
                    monthly_cost_budget_nano_usd: budget,
                    clear_monthly_cost_budget: budget.is_none(),
                    ..Default::default()
                },
                ADMIN_TOKEN,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.monthly_cost_budget_nano_usd, budget);
    }

    pub(crate) async fn revoke(&mut self, user_id: &str) {
        let mut req = Request::new(promo_pb::RevokeApiKeyRequest {
            user_id: user_id.into(),
        });
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
        );
        let r = self.client.revoke_api_key(req).await.unwrap().into_inner();
        assert!(r.revoked);
    }

    /// The operator suspends (or reactivates) a customer's account.
    pub(crate) async fn set_suspended(&mut self, user_id: &str, suspended: bool) {
        let mut req = Request::new(promo_pb::SetAccountSuspendedRequest {
            user_id: user_id.into(),
            suspended,
        });
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
        );
        let r = self
            .client
            .set_account_suspended(req)
            .await
            .unwrap()
            .into_inner();
        assert!(r.changed);
    }

    pub(crate) async fn stop(self) {
        let _ = self.handle.shutdown().await;
    }
}

/// Routing knobs for tests: tiny backoffs, breaker out of the way unless a test sets it.
pub(crate) fn test_routing() -> RoutingSettings {
    RoutingSettings {
        max_attempts_per_provider: 2,
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        attempt_timeout: Duration::from_secs(5),
        overall_timeout: Duration::from_secs(20),
        stream_idle_timeout: Duration::from_secs(5),
        breaker_failure_threshold: 1000,
        breaker_cooldown: Duration::from_secs(60),
        ewma_alpha: 0.5,
    }
}

/// A catalogue TOML provider entry pointing at a local upstream.
pub(crate) fn provider(name: &str, kind: &str, base_url: &str) -> String {
    format!(
        "[providers.{name}]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\napi_key_env = \"{}_KEY\"\n",
        name.to_ascii_uppercase()
    )
}

/// A model entry with routes (provider, upstream model, price in, price out).
pub(crate) fn model(name: &str, routes: &[(&str, &str, f64, f64)]) -> String {
    let routes: Vec<String> = routes
        .iter()
        .map(|(p, m, i, o)| {
            format!("{{ provider = \"{p}\", model = \"{m}\", input_usd_per_mtok = {i:?}, output_usd_per_mtok = {o:?} }}")
        })
        .collect();
    format!(
        "[[models]]\nname = \"{name}\"\nroutes = [{}]\n",
        routes.join(", ")
    )
}

/// A catalogue from TOML text with keys `sk-<provider>` for every provider.
pub(crate) fn catalog(toml_text: &str) -> Catalog {
    let mut c = Catalog::from_toml("test", toml_text).unwrap();
    let names: Vec<String> = c.providers.iter().map(|p| p.name.clone()).collect();
    for n in names {
        c.set_key(&n, &format!("sk-{n}"));
    }
    c
}

pub(crate) fn config(db: &TestDb, promo: &Promo, catalog: Catalog) -> Config {
    let mut c = Config::new(db.url.clone(), promo.url(), catalog);
    c.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    c.routing = test_routing();
    c.usage_flush_interval = Duration::from_millis(100);
    c
}

/// A running gateway with a connected client.
pub(crate) struct Gw {
    pub handle: Handle,
    pub client: LlmGatewayClient<Channel>,
}

impl Gw {
    pub(crate) async fn start(config: Config) -> Gw {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = llm_gateway::start(config, listener).await.unwrap();
        let client = LlmGatewayClient::connect(format!("http://{}", handle.addr))
            .await
            .unwrap();
        Gw { handle, client }
    }

    pub(crate) async fn stop(self) {
        self.handle.shutdown().await.unwrap();
    }
}

/// Everything one routing test needs: promo-service, a key, a gateway.
pub(crate) struct Env {
    pub promo: Promo,
    pub db: TestDb,
    pub gw: Gw,
    pub key: String,
    pub user_id: String,
}

impl Env {
    pub(crate) async fn start(catalog_toml: &str) -> Env {
        Env::start_with(catalog_toml, |_| {}).await
    }

    pub(crate) async fn start_with(catalog_toml: &str, tweak: impl FnOnce(&mut Config)) -> Env {
        let mut promo = Promo::start().await;
        let (user_id, key) = promo.signup("premium").await;
        let db = test_db(Backend::Sqlite).await;
        let mut cfg = config(&db, &promo, catalog(catalog_toml));
        tweak(&mut cfg);
        let gw = Gw::start(cfg).await;
        Env {
            promo,
            db,
            gw,
            key,
            user_id,
        }
    }

    pub(crate) async fn chat(
        &mut self,
        model: &str,
        text: &str,
    ) -> Result<pb::ChatResponse, Status> {
        self.gw
            .client
            .chat(authed(chat_req(model, text), &self.key))
            .await
            .map(|r| r.into_inner())
    }

    /// Streams; returns the events received and the error that ended the stream, if any.
    pub(crate) async fn stream(
        &mut self,
        model: &str,
        text: &str,
    ) -> Result<(Vec<pb::ChatStreamEvent>, Option<Status>), Status> {
        let mut s = self
            .gw
            .client
            .chat_stream(authed(chat_req(model, text), &self.key))
            .await?
            .into_inner();
        let mut events = Vec::new();
        loop {
            match s.message().await {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => return Ok((events, None)),
                Err(e) => return Ok((events, Some(e))),
            }
        }
    }

    pub(crate) async fn providers(&mut self) -> pb::ListProvidersResponse {
        self.gw
            .client
            .list_providers(internal(pb::ListProvidersRequest {}))
            .await
            .unwrap()
            .into_inner()
    }
}

pub(crate) fn chat_req(model: &str, text: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        model: model.into(),
        messages: vec![
            pb::ChatMessage {
                role: pb::Role::System as i32,
                content: Some(pb::chat_message::Content::Text(
                    "Réponds en français.".into(),
                )),
                ..Default::default()
            },
            pb::ChatMessage {
                role: pb::Role::User as i32,
                content: Some(pb::chat_message::Content::Text(text.into())),
                ..Default::default()
            },
        ],
        temperature: Some(0.5),
        max_tokens: Some(64),
        ..Default::default()
    }
}

/// A request carrying the internal token (what gateway-rest sends on `ListProviders`).
pub(crate) fn internal<T>(msg: T) -> Request<T> {
    authed(msg, INTERNAL_TOKEN)
}

pub(crate) fn authed<T>(msg: T, key: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    req
}

pub(crate) fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("x-iaf-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub(crate) fn md<'a>(status: &'a Status, key: &str) -> &'a str {
    status
        .metadata()
        .get(key)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The text of an answer's message (empty when it has none).
pub(crate) fn text_of(m: Option<&pb::ChatMessage>) -> &str {
    match m.and_then(|m| m.content.as_ref()) {
        Some(pb::chat_message::Content::Text(t)) => t,
        _ => "",
    }
}

/// Concatenated deltas and the end event of a stream.
pub(crate) fn stream_text(events: &[pb::ChatStreamEvent]) -> (String, Option<pb::StreamEnd>) {
    let mut text = String::new();
    let mut end = None;
    for ev in events {
        match &ev.event {
            Some(pb::chat_stream_event::Event::Delta(d)) => text.push_str(&d.content),
            Some(pb::chat_stream_event::Event::End(e)) => end = Some(e.clone()),
            None => {}
        }
    }
    (text, end)
}

/// Waits until fewer than 45 s of the current UTC minute have passed, so a per-minute test does
/// not straddle a window boundary (setup only; nothing asserts on time).
pub(crate) async fn early_in_minute() {
    let now = iafactory::db::now_millis();
    let into = now.rem_euclid(60_000);
    if into > 45_000 {
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(60_000 - into + 200).unwrap(),
        ))
        .await;
    }
}
