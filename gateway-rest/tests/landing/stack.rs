//! The real stack in-process on random loopback ports: promo-service (SQLite file in a temp
//! folder) and gateway-rest instances: one without rate limits in front of it (every test request
//! comes from 127.0.0.1), one with a tight signup limit (the page's 429 message), and one whose
//! promo-service is unreachable (the page's degraded state).

use std::time::Duration;

use gateway_rest::Config;
use gateway_rest::ratelimit::RateSpec;

pub const ADMIN_TOKEN: &str = "landing-admin-token-0123456789";

/// A loopback URL where nothing listens (llm-gateway: the landing page never needs it).
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

pub struct Stack {
    /// Base URL of the gateway without rate limits (`http://127.0.0.1:port`).
    pub base: String,
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
    pub async fn spawn() -> Stack {
        iafactory::telemetry::init_for_tests();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/promo.db", dir.path().display());
        let mut promo_config = promo_service::Config::new(url, ADMIN_TOKEN);
        promo_config.live_poll_interval = Duration::from_millis(100);
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

        let stack = Stack {
            base,
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

    pub async fn stop(self) {
        let wait = Duration::from_secs(10);
        for gw in self.gateways {
            let _ = tokio::time::timeout(wait, gw.shutdown()).await;
        }
        let _ = tokio::time::timeout(wait, self.promo.shutdown()).await;
    }
}
