//! The real stack in-process on random loopback ports: promo-service (SQLite file in a temp
//! folder, e-mailing a real SMTP sink, with a configured seller identity) and gateway-rest
//! instances: one without rate limits in front of it (every test request comes from 127.0.0.1),
//! one with a tight signup limit (the page's 429 message), and one whose promo-service is
//! unreachable (the page's degraded state).

use std::time::Duration;

use gateway_rest::Config;
use gateway_rest::ratelimit::RateSpec;

pub(crate) const ADMIN_TOKEN: &str = "landing-admin-token-0123456789";

/// A loopback URL where nothing listens (llm-gateway: the landing page never needs it).
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// The seller the landing stack is configured with (footer, legal pages, e-mails' Reply-To).
pub(crate) const SELLER_NAME: &str = "IAFactory SARL";
pub(crate) const SELLER_EMAIL: &str = "contact@iafactory.dz";
pub(crate) const SELLER_PHONE: &str = "+213 21 00 00 00";
pub(crate) const SELLER_NIF: &str = "000016001234567";

pub(crate) struct Stack {
    /// Base URL of the gateway without rate limits (`http://127.0.0.1:port`).
    pub base: String,
    /// Where each e-mail promo-service sends appears as `NNN.txt` (see [`spool_mail`]).
    pub mail_dir: std::path::PathBuf,
    spool: tokio::task::JoinHandle<()>,
    _sink: iafactory_testkit::smtp_sink::SmtpSink,
    /// Base URL of the gateway allowing 2 signups per minute per IP.
    pub strict_base: String,
    /// Base URL of a gateway whose promo-service is unreachable.
    pub down_base: String,
    gateways: Vec<gateway_rest::Handle>,
    promo: promo_service::Handle,
    _dir: tempfile::TempDir,
}

async fn spawn_gateway(config: Config) -> (String, gateway_rest::Handle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = gateway_rest::start(config, listener)
        .await
        .unwrap_or_else(|e| panic!("gateway-rest failed: {e}"));
    (format!("http://{}", gw.addr), gw)
}

impl Stack {
    pub(crate) async fn spawn() -> Stack {
        iafactory::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir_all(&mail_dir).unwrap();
        let sink = iafactory_testkit::smtp_sink::SmtpSink::start().await;
        let url = format!("sqlite://{}/promo.db", dir.path().display());
        let mut promo_config = promo_service::Config::new(url, ADMIN_TOKEN);
        promo_config.live_poll_interval = Duration::from_millis(100);
        promo_config.mail.smtp_url = Some(sink.url());
        promo_config.mail.poll_interval = Duration::from_millis(100);
        promo_config.billing.seller = promo_service::billing_config::Seller {
            name: SELLER_NAME.into(),
            address: "12 rue Didouche Mourad, 16000 Alger".into(),
            nif: SELLER_NIF.into(),
            nis: "000016009876543".into(),
            rc: "16/00-1234567B26".into(),
            article: "16012345678".into(),
        };
        promo_config.site = promo_service::site_config::SiteConfig {
            contact_email: Some(SELLER_EMAIL.into()),
            contact_phone: SELLER_PHONE.into(),
            legal_form: "SARL au capital de 1 000 000 DZD".into(),
            publication_director: "Nadia Benali".into(),
            hosting_name: "Hébergeur Exemple SPA".into(),
            hosting_address: "Zone d'activités, 16000 Alger".into(),
            data_protection_receipt: String::new(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let promo = promo_service::start(promo_config, listener)
            .await
            .unwrap_or_else(|e| panic!("promo-service failed: {e}"));
        let promo_addr = promo.addr;

        let llm = dead_url().await;
        let mut open = Config::new(format!("http://{promo_addr}"), llm.clone());
        open.validate_rate = None;
        open.signup_rate = None;
        open.sse_keep_alive = Duration::from_secs(5);
        let (base, open_gw) = spawn_gateway(open).await;

        let mut strict = Config::new(format!("http://{promo_addr}"), llm);
        strict.validate_rate = None;
        strict.signup_rate = RateSpec::new(2, 2);
        let (strict_base, strict_gw) = spawn_gateway(strict).await;

        // A gateway whose promo-service is down: the page must still render and say so.
        let down = Config::new(dead_url().await, dead_url().await);
        let (down_base, down_gw) = spawn_gateway(down).await;

        let spool = tokio::spawn(spool_mail(sink.receiver(), mail_dir.clone()));
        let stack = Stack {
            base,
            mail_dir,
            spool,
            _sink: sink,
            strict_base,
            down_base,
            gateways: vec![open_gw, strict_gw, down_gw],
            promo,
            _dir: dir,
        };
        stack.wait_ready().await;
        stack
    }

    /// Waits until promo-service answers through the gateway (it migrates its database first).
    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = http
                .get(format!("{}/api/promo/LAUNCH30/remaining", self.base))
                .send()
                .await
                && r.status() == reqwest::StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("promo-service did not come up behind gateway-rest");
    }

    pub(crate) async fn stop(self) {
        let wait = Duration::from_secs(10);
        self.spool.abort();
        for gw in self.gateways {
            let _ = tokio::time::timeout(wait, gw.shutdown()).await;
        }
        let _ = tokio::time::timeout(wait, self.promo.shutdown()).await;
    }
}

/// The whole platform for the customer account's browser test: promo-service sending its
/// e-mails to a real SMTP sink (each received message's text body is written to `mail_dir` as
/// `NNN.txt`, for the Node script to read), llm-gateway with no provider key (its offline
/// `mock` provider answers every model; the console's test uses a [`Priced`] upstream), and gateway-rest in front of both with the internal
/// token, as deployed. Links in the e-mails point at this gateway-rest.
pub(crate) struct AccountStack {
    pub base: String,
    /// promo-service's gRPC address (the console test makes its operators there).
    pub promo_addr: std::net::SocketAddr,
    pub mail_dir: std::path::PathBuf,
    gateway: gateway_rest::Handle,
    llm: llm_gateway::Handle,
    promo: promo_service::Handle,
    spool: tokio::task::JoinHandle<()>,
    _sink: iafactory_testkit::smtp_sink::SmtpSink,
    _upstream: Option<iafactory_testkit::upstream::Upstream>,
    _dir: tempfile::TempDir,
}

/// A local upstream speaking OpenAI's wire format at known prices, for the console's browser
/// test: every chat answer reports [`Priced::PROMPT_TOKENS`] and [`Priced::COMPLETION_TOKENS`],
/// and the one model routes there at [`Priced::INPUT_USD_PER_MTOK`] and
/// [`Priced::OUTPUT_USD_PER_MTOK`], so each call has a known, non-zero upstream cost (the
/// offline mock costs nothing, which would leave the margin untested).
pub(crate) struct Priced;

impl Priced {
    /// The provider's name, as the console shows it.
    pub(crate) const PROVIDER: &str = "local-openai";
    pub(crate) const INPUT_USD_PER_MTOK: f64 = 2.5;
    pub(crate) const OUTPUT_USD_PER_MTOK: f64 = 10.0;
    pub(crate) const PROMPT_TOKENS: u32 = 120_000;
    pub(crate) const COMPLETION_TOKENS: u32 = 40_000;
    /// Dinars per dollar, in thousandths (not a round number: the dinars are rounded up).
    pub(crate) const USD_DZD_RATE_MILLI: u64 = 134_567;

    /// The llm-gateway catalogue: `model` served by the upstream at `url` (its `/v1`).
    fn catalog(model: &str, url: &str) -> llm_gateway::catalog::Catalog {
        let toml = format!(
            "[providers.{p}]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\napi_key_env = \"LOCAL_OPENAI_KEY\"\n\n\
             [[models]]\nname = \"{model}\"\nroutes = [{{ provider = \"{p}\", model = \"{model}-upstream\", input_usd_per_mtok = {i:?}, output_usd_per_mtok = {o:?} }}]\n",
            p = Self::PROVIDER,
            i = Self::INPUT_USD_PER_MTOK,
            o = Self::OUTPUT_USD_PER_MTOK,
        );
        let mut catalog = llm_gateway::catalog::Catalog::from_toml("console", &toml).unwrap();
        assert!(catalog.set_key(Self::PROVIDER, "sk-local"));
        catalog
    }
}

pub(crate) const INTERNAL_TOKEN: &str = "account-internal-token-0123456789";

/// How long llm-gateway caches a key check: the documented window after which a revoked key is
/// refused (its default).
pub(crate) const AUTH_CACHE_TTL: Duration = Duration::from_secs(5);

impl AccountStack {
    pub(crate) async fn spawn() -> AccountStack {
        AccountStack::spawn_with_clock(None).await
    }

    /// As [`AccountStack::spawn`], promo-service reading time from `clock` (a manual one moves
    /// signups onto past days) and running its periodic jobs (MRR snapshots) often.
    pub(crate) async fn spawn_with_clock(
        clock: Option<promo_service::clock::Clock>,
    ) -> AccountStack {
        AccountStack::spawn_inner(clock, None).await
    }

    /// As [`AccountStack::spawn_with_clock`], with `model` served by a [`Priced`] upstream
    /// instead of the offline mock, and gateway-rest converting at
    /// [`Priced::USD_DZD_RATE_MILLI`].
    pub(crate) async fn spawn_priced(
        clock: promo_service::clock::Clock,
        model: &str,
    ) -> AccountStack {
        AccountStack::spawn_inner(Some(clock), Some(model)).await
    }

    async fn spawn_inner(
        clock: Option<promo_service::clock::Clock>,
        priced: Option<&str>,
    ) -> AccountStack {
        use iafactory_testkit::upstream::{Upstream, openai_ok};
        iafactory::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let mail_dir = dir.path().join("mail");
        std::fs::create_dir_all(&mail_dir).unwrap();
        let sink = iafactory_testkit::smtp_sink::SmtpSink::start().await;
        // gateway-rest's address is needed first: it is the public URL the e-mails link to.
        let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", gw_listener.local_addr().unwrap());

        let mut promo_config = promo_service::Config::new(
            format!("sqlite://{}/promo.db", dir.path().display()),
            ADMIN_TOKEN,
        );
        promo_config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        promo_config.mail.smtp_url = Some(sink.url());
        promo_config.mail.public_url = base.clone();
        promo_config.mail.poll_interval = Duration::from_millis(100);
        promo_config.live_poll_interval = Duration::from_millis(100);
        if let Some(clock) = clock {
            promo_config.clock = clock;
            promo_config.account_jobs_interval = Duration::from_millis(200);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let promo = promo_service::start(promo_config, listener)
            .await
            .unwrap_or_else(|e| panic!("promo-service failed: {e}"));
        let promo_addr = promo.addr;
        let promo_url = format!("http://{}", promo.addr);

        let upstream = match priced {
            Some(_) => Some(
                Upstream::always(openai_ok(
                    "Réponse du fournisseur local.",
                    Priced::PROMPT_TOKENS,
                    Priced::COMPLETION_TOKENS,
                ))
                .await,
            ),
            None => None,
        };
        let catalog = match (priced, &upstream) {
            (Some(model), Some(up)) => Priced::catalog(model, &up.url("")),
            _ => {
                let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
                assert!(catalog.nothing_configured(), "the mock provider answers");
                catalog
            }
        };
        let mut llm_config = llm_gateway::Config::new(
            format!("sqlite://{}/llm.db", dir.path().display()),
            promo_url.clone(),
            catalog,
        );
        llm_config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        llm_config.auth_cache_ttl = AUTH_CACHE_TTL;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let llm = llm_gateway::start(llm_config, listener)
            .await
            .unwrap_or_else(|e| panic!("llm-gateway failed: {e}"));

        let mut config = Config::new(promo_url, format!("http://{}", llm.addr));
        config.validate_rate = None;
        config.signup_rate = None;
        config.auth_failure_rate = None;
        config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
        config.admin_token = Some(gateway_rest::AdminToken::new(ADMIN_TOKEN));
        if priced.is_some() {
            config.usd_dzd_rate_milli = Priced::USD_DZD_RATE_MILLI;
        }
        let gateway = gateway_rest::start(config, gw_listener)
            .await
            .unwrap_or_else(|e| panic!("gateway-rest failed: {e}"));

        let spool = tokio::spawn(spool_mail(sink.receiver(), mail_dir.clone()));
        let stack = AccountStack {
            base,
            promo_addr,
            mail_dir,
            gateway,
            llm,
            promo,
            spool,
            _sink: sink,
            _upstream: upstream,
            _dir: dir,
        };
        wait_ready(&stack.base).await;
        stack
    }

    pub(crate) async fn stop(self) {
        let wait = Duration::from_secs(10);
        self.spool.abort();
        let _ = tokio::time::timeout(wait, self.gateway.shutdown()).await;
        let _ = tokio::time::timeout(wait, self.llm.shutdown()).await;
        let _ = tokio::time::timeout(wait, self.promo.shutdown()).await;
    }
}

/// Writes each e-mail's recipients, subject, Reply-To and decoded text body to `dir/NNN.txt` as
/// it arrives (written to a temporary name, then renamed, so a reader never sees half a file).
async fn spool_mail(
    received: impl Fn() -> Vec<iafactory_testkit::smtp_sink::Received>,
    dir: std::path::PathBuf,
) {
    let mut written = 0;
    loop {
        let got = received();
        for (i, m) in got.iter().enumerate().skip(written) {
            let msg = mail_parser::MessageParser::default()
                .parse(m.data.as_bytes())
                .expect("an e-mail");
            let reply_to = m.header("Reply-To").unwrap_or_default();
            let body = format!(
                "To: {}\nSubject: {}\nReply-To: {}\n\n{}",
                m.to.join(", "),
                msg.subject().unwrap_or(""),
                reply_to.trim(),
                msg.body_text(0).unwrap_or_default()
            );
            let tmp = dir.join(format!(".{i:03}.tmp"));
            std::fs::write(&tmp, body).unwrap();
            std::fs::rename(&tmp, dir.join(format!("{i:03}.txt"))).unwrap();
        }
        written = got.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until promo-service answers through the gateway at `base`.
async fn wait_ready(base: &str) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("{base}/api/promo/LAUNCH30/remaining"))
            .send()
            .await
            && r.status() == reqwest::StatusCode::OK
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("promo-service did not come up behind gateway-rest");
}
