//! The production topology as processes (no Docker engine here): two promo-service and two
//! llm-gateway replicas, built binaries, on one PostgreSQL, with gateway-rest balancing over
//! them. Signups and LLM calls go through gateway-rest and land on both replicas of each service;
//! the 30-place limit and the per-minute quota hold across replicas.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iafactory_testkit::{Backend, ScratchDb};

const ADMIN: &str = "replica-admin-token-0123456789";
/// INTERNAL_TOKEN, the same on every process, as in docker-compose.yml.
const INTERNAL: &str = "replica-internal-token-0123456789";

/// The workspace's built binaries sit next to this test's executable (`target/<profile>/`);
/// `cargo test --workspace` builds them.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, whatever happens; what it prints goes to a file,
/// shown if it never comes up.
struct Proc {
    child: Child,
    name: &'static str,
    log: tempfile::NamedTempFile,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, envs: &[(&str, String)]) -> Proc {
    let mut cmd = Command::new(binary(name));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let log = tempfile::NamedTempFile::new().unwrap();
    let child = cmd
        .stdout(Stdio::from(log.reopen().unwrap()))
        .stderr(Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    Proc { child, name, log }
}

/// Waits until `url` answers 200; fails at once if `proc` exited, and after 30 s otherwise,
/// with what the process printed.
async fn wait_http(url: &str, proc: &mut Proc) {
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(url).await
            && r.status() == 200
        {
            return;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "{} exited ({status}) before {url} answered; it printed:\n{}",
                proc.name,
                std::fs::read_to_string(proc.log.path()).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let printed = std::fs::read_to_string(proc.log.path()).unwrap_or_default();
    let tail: Vec<&str> = printed.lines().rev().take(40).collect();
    panic!(
        "{url} never answered 200; {} last printed:\n{}",
        proc.name,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}

/// Sum of `iaf_grpc_requests_total` lines for `method` with code Ok, from a metrics endpoint.
async fn ok_calls(metrics_port: u16, method: &str) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("iaf_grpc_requests_total{")
                && l.contains(method)
                && l.contains("code=\"Ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_of_each_service_on_one_postgres() {
    let promo_db = ScratchDb::new(Backend::Postgres, "iaf_rep_promo").await;
    let llm_db = ScratchDb::new(Backend::Postgres, "iaf_rep_llm").await;
    let upstream = iafactory_bench::upstream::start().await.unwrap();

    let promo_ports = [free_port(), free_port()];
    let promo_metrics = [free_port(), free_port()];
    let mut promos: Vec<Proc> = (0..2)
        .map(|i| {
            spawn(
                "promo-service",
                &[
                    ("DATABASE_URL", promo_db.url.clone()),
                    ("ADMIN_TOKEN", ADMIN.into()),
                    ("INTERNAL_TOKEN", INTERNAL.into()),
                    ("PUBLIC_URL", "https://api.iafactory.test".into()),
                    (
                        "PROMO_SERVICE_ADDR",
                        format!("127.0.0.1:{}", promo_ports[i]),
                    ),
                    (
                        "PROMO_METRICS_ADDR",
                        format!("127.0.0.1:{}", promo_metrics[i]),
                    ),
                ],
            )
        })
        .collect();
    for (p, proc) in promo_metrics.iter().zip(&mut promos) {
        wait_http(&format!("http://127.0.0.1:{p}/metrics"), proc).await;
    }
    // A package whose per-minute limit is small enough to reach in a test.
    promo_db
        .exec("UPDATE packages SET requests_per_minute = 20 WHERE id = 'starter'")
        .await;

    let promo_urls = promo_ports
        .map(|p| format!("http://127.0.0.1:{p}"))
        .join(",");
    let llm_ports = [free_port(), free_port()];
    let llm_metrics = [free_port(), free_port()];
    let mut llms: Vec<Proc> = (0..2)
        .map(|i| {
            spawn(
                "llm-gateway",
                &[
                    ("DATABASE_URL", llm_db.url.clone()),
                    ("PROMO_SERVICE_URL", promo_urls.clone()),
                    ("INTERNAL_TOKEN", INTERNAL.into()),
                    ("LLM_GATEWAY_ADDR", format!("127.0.0.1:{}", llm_ports[i])),
                    (
                        "LLM_GATEWAY_METRICS_ADDR",
                        format!("127.0.0.1:{}", llm_metrics[i]),
                    ),
                    ("GROQ_API_KEY", "replica-test".into()),
                    ("GROQ_BASE_URL", format!("http://{upstream}/v1")),
                ],
            )
        })
        .collect();
    for (p, proc) in llm_metrics.iter().zip(&mut llms) {
        wait_http(&format!("http://127.0.0.1:{p}/metrics"), proc).await;
    }
    let rest_port = free_port();
    let mut rest = spawn(
        "gateway-rest",
        &[
            ("GATEWAY_REST_ADDR", format!("127.0.0.1:{rest_port}")),
            ("PROMO_SERVICE_URL", promo_urls.clone()),
            (
                "LLM_GATEWAY_URL",
                llm_ports.map(|p| format!("http://127.0.0.1:{p}")).join(","),
            ),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("INTERNAL_TOKEN", INTERNAL.into()),
            ("RATE_SIGNUP_PER_MIN", "100000".into()),
            ("RATE_SIGNUP_BURST", "100000".into()),
            (
                "STATIC_DIR",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../gateway-rest/static/api-packages"
                )
                .into(),
            ),
        ],
    );
    let base = format!("http://127.0.0.1:{rest_port}");
    wait_http(&format!("{base}/healthz"), &mut rest).await;
    let http = reqwest::Client::new();

    // 200 signups at once for LAUNCH30's 30 places, through the edge, spread over both replicas.
    let calls = (0..200).map(|i| {
        let http = http.clone();
        let url = format!("{base}/api/promo/signup");
        tokio::spawn(async move {
            let r = http
                .post(url)
                .json(&serde_json::json!({"email": format!("r{i}@replica.dz"), "package": "starter", "promo_code": "LAUNCH30"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        })
    });
    let mut keys = Vec::new();
    let (mut granted, mut exhausted) = (0, 0);
    for c in futures_join(calls).await {
        match c {
            (201, body) => {
                granted += 1;
                keys.push(body["api_key"].as_str().unwrap().to_owned());
            }
            (409, body) if body["error"]["code"] == "promo_exhausted" => exhausted += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((granted, exhausted), (30, 170));
    let rem: serde_json::Value = http
        .get(format!("{base}/api/promo/LAUNCH30/remaining"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rem["remaining"], 0);
    let per_replica = [
        ok_calls(promo_metrics[0], "PromoService/Signup").await,
        ok_calls(promo_metrics[1], "PromoService/Signup").await,
    ];
    assert_eq!(per_replica.iter().sum::<u64>(), 30);
    assert!(
        per_replica.iter().all(|&n| n > 0),
        "signups did not reach both promo replicas: {per_replica:?}"
    );

    // One starter key (20 requests/minute): 40 calls through both gateway replicas. The quota's
    // guarantee (llm-gateway/src/quota.rs) is never more than 20 in a calendar minute; a replica's
    // unspent lease can leave a few units unused (at most its block and the one prefetched,
    // 2 + 2 at this limit, on each replica). The burst starts early in a minute so that it does
    // not straddle two windows.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60;
    if into_minute > 45 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    let key = keys[0].clone();
    // gateway-rest connects to each replica lazily: a few calls that cost no quota first, so the
    // burst finds both connections up.
    for _ in 0..20 {
        let r = http
            .get(format!("{base}/v1/models"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let chats = (0..40).map(|_| {
        let http = http.clone();
        let url = format!("{base}/v1/chat/completions");
        let key = key.clone();
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(key)
                .json(&serde_json::json!({"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "Salut"}]}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let statuses = futures_join(chats).await;
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    let limited = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(ok + limited, 40, "{statuses:?}");
    assert!(
        (12..=20).contains(&ok),
        "{ok} calls admitted for a limit of 20: {statuses:?}"
    );
    let per_gateway = [
        ok_calls(llm_metrics[0], "LlmGateway/Chat").await,
        ok_calls(llm_metrics[1], "LlmGateway/Chat").await,
    ];
    assert_eq!(
        per_gateway.iter().sum::<u64>(),
        ok as u64,
        "{per_gateway:?}"
    );
    assert!(
        per_gateway.iter().all(|&n| n > 0),
        "LLM calls did not reach both gateway replicas: {per_gateway:?}"
    );

    drop(rest);
    drop(llms);
    drop(promos);
    promo_db.close().await;
    llm_db.close().await;
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await.unwrap());
    }
    out
}
