//! The platform started in this process on loopback, on SQLite files or fresh PostgreSQL
//! databases, with llm-gateway's `groq` provider pointed at the zero-latency upstream and the
//! public rate limits off (the benchmark is one client address).

use std::net::SocketAddr;

use iafactory::proto::iafactory::promo::v1 as pb;
use iafactory_testkit::ScratchDb;
use pb::promo_service_client::PromoServiceClient;
use sqlx::Connection;

pub(crate) const ADMIN: &str = "bench-admin-token-0123456789";
/// INTERNAL_TOKEN shared by the services of the bench stack.
pub(crate) const INTERNAL: &str = "bench-internal-token-0123456789";

pub(crate) use iafactory_testkit::Backend;

/// The backend's name in the results.
pub(crate) fn name(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// gateway-rest settings a run may change.
#[derive(Debug, Clone)]
pub(crate) struct StackOptions {
    /// REMAINING_CACHE.
    pub remaining_cache: bool,
    /// BACKEND_CONNECTIONS.
    pub backend_connections: usize,
}

pub(crate) struct Stack {
    pub promo: SocketAddr,
    pub llm: SocketAddr,
    pub rest: SocketAddr,
    pub api_key: String,
    promo_service: promo_service::Handle,
    llm_gateway: llm_gateway::Handle,
    gateway_rest: gateway_rest::Handle,
    /// Dropped (PostgreSQL) or deleted (SQLite) with the stack.
    dbs: Vec<ScratchDb>,
}

impl Stack {
    pub(crate) async fn start(
        backend: Backend,
        upstream: SocketAddr,
        pg_admin: &str,
        options: &StackOptions,
    ) -> Result<Stack, String> {
        let promo_scratch = ScratchDb::create_on(backend, "iaf_bench_promo", pg_admin).await?;
        let llm_scratch = ScratchDb::create_on(backend, "iaf_bench_llm", pg_admin).await?;
        let (promo_db, llm_db) = (promo_scratch.url.clone(), llm_scratch.url.clone());

        let promo_l =
            iafactory::net::bind(([127, 0, 0, 1], 0).into()).map_err(|e| e.to_string())?;
        let promo = promo_l.local_addr().map_err(|e| e.to_string())?;
        let mut promo_config = promo_service::Config::new(promo_db.clone(), ADMIN);
        promo_config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL));
        promo_config.pool.max_connections = 32;
        let promo_service = promo_service::start(promo_config, promo_l)
            .await
            .map_err(|e| format!("promo-service: {e}"))?;
        let mut client = connect_promo(promo).await?;

        // Quotas stay enforced, but high enough never to refuse during a run.
        let mut conn = sqlx::AnyConnection::connect(&promo_db)
            .await
            .map_err(|e| format!("{promo_db}: {e}"))?;
        sqlx::query("UPDATE packages SET requests_per_minute = 1000000000, tokens_per_month = 1000000000000 WHERE id = 'premium'")
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let api_key = client
            .signup(pb::SignupRequest {
                email: "bench@iafactory.dz".into(),
                package: "premium".into(),
                promo_code: String::new(),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .api_key;

        let llm_l = iafactory::net::bind(([127, 0, 0, 1], 0).into()).map_err(|e| e.to_string())?;
        let llm_addr = llm_l.local_addr().map_err(|e| e.to_string())?;
        let upstream_url = format!("http://{upstream}/v1");
        let llm_config = llm_gateway::config::Args::try_parse_from_iter([
            "llm-gateway",
            "--database-url",
            &llm_db,
            "--promo-service-url",
            &format!("http://{promo}"),
            "--internal-token",
            INTERNAL,
        ])?
        .into_config(|k| match k {
            "GROQ_API_KEY" => Some("bench-key".to_owned()),
            "GROQ_BASE_URL" => Some(upstream_url.clone()),
            _ => None,
        })
        .map_err(|e| e.to_string())?;
        let llm = llm_gateway::start(llm_config, llm_l)
            .await
            .map_err(|e| format!("llm-gateway: {e}"))?;

        let rest_l = iafactory::net::bind(([127, 0, 0, 1], 0).into()).map_err(|e| e.to_string())?;
        let rest = rest_l.local_addr().map_err(|e| e.to_string())?;
        let mut rest_config =
            gateway_rest::Config::new(format!("http://{promo}"), format!("http://{llm_addr}"));
        rest_config.validate_rate = None;
        rest_config.signup_rate = None;
        rest_config.auth_failure_rate = None;
        rest_config.backend_connections = options.backend_connections;
        rest_config.remaining_cache = options.remaining_cache;
        // The viewers scenario opens tens of thousands of event streams.
        rest_config.max_event_streams = 50_000;
        rest_config.max_connections = 60_000;
        rest_config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL));
        let gateway_rest = gateway_rest::start(rest_config, rest_l)
            .await
            .map_err(|e| format!("gateway-rest: {e}"))?;
        Ok(Stack {
            promo,
            llm: llm_addr,
            rest,
            api_key,
            promo_service,
            llm_gateway: llm,
            gateway_rest,
            dbs: vec![promo_scratch, llm_scratch],
        })
    }

    pub(crate) async fn create_code(&self, code: &str, places: u32) -> Result<(), String> {
        let mut c = connect_promo(self.promo).await?;
        let mut req = tonic::Request::new(pb::CreateCodeRequest {
            code: code.into(),
            max_redemptions: Some(places),
            duration_months: 6,
            discounts: [("starter".to_owned(), 25)].into_iter().collect(),
            ..Default::default()
        });
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {ADMIN}").parse().map_err(|_| "token")?,
        );
        c.create_code(req).await.map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Stops the services, edge first, then drops the databases.
    pub(crate) async fn stop(self) {
        for (name, stopped) in [
            (
                "gateway-rest",
                self.gateway_rest
                    .shutdown()
                    .await
                    .map_err(|e| e.to_string()),
            ),
            (
                "llm-gateway",
                self.llm_gateway.shutdown().await.map_err(|e| e.to_string()),
            ),
            (
                "promo-service",
                self.promo_service
                    .shutdown()
                    .await
                    .map_err(|e| e.to_string()),
            ),
        ] {
            if let Err(e) = stopped {
                eprintln!("{name}: {e}");
            }
        }
        for db in self.dbs {
            db.close().await;
        }
    }
}

/// A channel to llm-gateway (up once `start` returned).
pub(crate) async fn connect_llm(addr: SocketAddr) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("llm-gateway at {addr}: {e}"))
}

pub(crate) async fn connect_promo(
    addr: SocketAddr,
) -> Result<PromoServiceClient<tonic::transport::Channel>, String> {
    // A bound listener accepts connections before the service is up: wait for a real answer.
    for _ in 0..200 {
        if let Ok(mut c) = PromoServiceClient::connect(format!("http://{addr}")).await
            && c.get_summary(pb::GetSummaryRequest {}).await.is_ok()
        {
            return Ok(c);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("promo-service did not start on {addr}"))
}

trait TryParse: Sized {
    fn try_parse_from_iter<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, String>;
}

impl TryParse for llm_gateway::config::Args {
    fn try_parse_from_iter<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        <Self as clap::Parser>::try_parse_from(args).map_err(|e| e.to_string())
    }
}
