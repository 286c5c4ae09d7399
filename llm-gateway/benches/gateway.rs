//! Added latency and throughput of the gateway against a zero-latency local upstream.
//!
//! Starts (all in this process, on loopback): a local OpenAI-compatible upstream answering at
//! once, the real promo-service (SQLite, for the API key), and the real gateway (SQLite usage
//! store, quotas enforced with the package raised so they never refuse). Then, for each
//! concurrency, runs a closed loop for a few seconds twice: straight to the upstream over HTTP
//! (what a client calling the provider directly pays), and through the gateway over gRPC, and
//! prints throughput, p50/p99 latency, the added latency and the throughput ratio.
//!
//! Run: `cargo bench -p llm-gateway --bench gateway` (optional args: seconds per run, then
//! concurrencies, e.g. `-- 5 1 8 32 64`). Client, gateway and upstream share the machine's
//! cores, as in the product's performance targets.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

#[path = "../tests/api/upstream.rs"]
mod upstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use iafactory::proto::iafactory::llm::v1 as pb;
use iafactory::proto::iafactory::promo::v1 as promo_pb;
use pb::llm_gateway_client::LlmGatewayClient;
use promo_pb::promo_service_client::PromoServiceClient;
use tonic::transport::{Channel, Endpoint};

use upstream::{Upstream, openai_ok};

/// The same allocator as the `llm-gateway` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// INTERNAL_TOKEN shared by promo-service and the gateway under test.
const INTERNAL_TOKEN: &str = "bench-internal-token-0123456789";

struct Stats {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    /// CPU time of the whole process (client + gateway + upstream) per call, in µs.
    cpu_us: f64,
}

/// CPU time used by this process so far, from `/proc/self/stat` (USER_HZ = 100 ticks/s).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn stats(mut lat: Vec<u32>, elapsed: Duration, cpu: Duration) -> Stats {
    lat.sort_unstable();
    let pct = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            f64::from(lat[((lat.len() as f64 - 1.0) * p).round() as usize])
        }
    };
    Stats {
        rps: lat.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        cpu_us: cpu.as_secs_f64() * 1e6 / (lat.len().max(1) as f64),
    }
}

/// Runs `concurrency` workers calling `call` in a closed loop for `secs` (after a short warm-up).
async fn closed_loop<F, Fut>(concurrency: usize, secs: f64, call: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    // Warm-up: connections, caches, leases.
    let warm = Instant::now() + Duration::from_millis(500);
    let mut ws = Vec::new();
    for w in 0..concurrency {
        let call = call.clone();
        ws.push(tokio::spawn(async move {
            while Instant::now() < warm {
                call(w).await;
            }
        }));
    }
    for w in ws {
        w.await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_start = process_cpu();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (call, stop) = (call.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                if call(w).await {
                    lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_start);
    if errors > 0 {
        println!("  ({errors} failed calls)");
    }
    stats(all, elapsed, cpu)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let mut concurrencies: Vec<usize> =
        args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
    if concurrencies.is_empty() {
        concurrencies = vec![1, 8, 32];
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(secs, concurrencies));
}

async fn run(secs: f64, concurrencies: Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();

    // Zero-latency upstream.
    let up = Upstream::always(openai_ok("Bonjour !", 12, 4)).await;

    // The real promo-service, and a key whose package never limits the benchmark.
    let promo_url = format!("sqlite://{}/promo.db", dir.path().display());
    let promo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let promo_addr = promo_listener.local_addr().unwrap();
    let mut promo_cfg =
        promo_service::Config::new(promo_url.clone(), "bench-admin-token-0123456789");
    promo_cfg.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    tokio::spawn(promo_service::serve(
        promo_cfg,
        promo_listener,
        std::future::pending(),
    ));
    let mut promo = loop {
        if let Ok(mut c) = PromoServiceClient::connect(format!("http://{promo_addr}")).await
            && c.list_packages(promo_pb::ListPackagesRequest {})
                .await
                .is_ok()
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&promo_url)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE packages SET requests_per_minute = 100000000, tokens_per_month = 1000000000000 WHERE id = 'premium'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let key = promo
        .signup(promo_pb::SignupRequest {
            email: "bench@iafactory.dz".into(),
            package: "premium".into(),
            promo_code: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .api_key;

    // The gateway.
    let toml = format!(
        "[providers.local]\nkind = \"openai\"\nbase_url = \"{}\"\nrequires_key = false\n\
         [[models]]\nname = \"bench\"\nroutes = [{{ provider = \"local\", model = \"m\", input_usd_per_mtok = 0.5, output_usd_per_mtok = 1.5 }}]\n",
        up.url("/v1")
    );
    let catalog = llm_gateway::catalog::Catalog::from_toml("bench", &toml).unwrap();
    let mut cfg = llm_gateway::Config::new(
        format!("sqlite://{}/llm.db", dir.path().display()),
        format!("http://{promo_addr}"),
        catalog,
    );
    cfg.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = llm_gateway::start(cfg, listener).await.unwrap();
    let gw_addr = gw.addr;

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap();
    let direct_url = up.url("/v1/chat/completions");
    let body = serde_json::json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Bonjour"}],
        "max_tokens": 16,
        "stream": false
    });

    println!(
        "\nllm-gateway overhead vs. a zero-latency local upstream ({secs} s per run, closed loop, loopback)\n"
    );
    println!(
        "{:>5} | {:>11} {:>8} {:>8} {:>8} | {:>11} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>6}",
        "conc",
        "direct r/s",
        "p50 µs",
        "p99 µs",
        "cpu µs",
        "gateway r/s",
        "p50 µs",
        "p99 µs",
        "cpu µs",
        "+p50 µs",
        "+p99 µs",
        "+cpu µs",
        "ratio"
    );
    for &c in &concurrencies {
        let (h, u, b) = (http.clone(), direct_url.clone(), body.clone());
        let direct = closed_loop(c, secs, move |_| {
            let (h, u, b) = (h.clone(), u.clone(), b.clone());
            async move {
                match h.post(&u).json(&b).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;

        // One HTTP/2 connection per 8 concurrent callers, as a shim with a channel pool would.
        let mut clients = Vec::new();
        for _ in 0..c.div_ceil(8) {
            let ch: Channel = Endpoint::from_shared(format!("http://{gw_addr}"))
                .unwrap()
                .tcp_nodelay(true)
                .connect()
                .await
                .unwrap();
            clients.push(LlmGatewayClient::new(ch));
        }
        let clients = Arc::new(clients);
        let key = key.clone();
        let via = closed_loop(c, secs, move |w| {
            let mut client = clients[w % clients.len()].clone();
            let mut req = tonic::Request::new(pb::ChatRequest {
                model: "bench".into(),
                messages: vec![pb::ChatMessage {
                    role: pb::Role::User as i32,
                    content: Some(pb::chat_message::Content::Text("Bonjour".into())),
                    ..Default::default()
                }],
                max_tokens: Some(16),
                ..Default::default()
            });
            req.metadata_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
            async move { client.chat(req).await.is_ok() }
        })
        .await;
        println!(
            "{:>5} | {:>11.0} {:>8.0} {:>8.0} {:>8.1} | {:>11.0} {:>8.0} {:>8.0} {:>8.1} | {:>8.0} {:>8.0} {:>8.1} | {:>5.2}x",
            c,
            direct.rps,
            direct.p50_us,
            direct.p99_us,
            direct.cpu_us,
            via.rps,
            via.p50_us,
            via.p99_us,
            via.cpu_us,
            via.p50_us - direct.p50_us,
            via.p99_us - direct.p99_us,
            via.cpu_us - direct.cpu_us,
            direct.rps / via.rps.max(1.0),
        );
    }
    println!(
        "\nratio = direct throughput / gateway throughput at the same concurrency. cpu = CPU time of \
         this whole process (load generator + gateway + upstream) per call: less sensitive than \
         latency to other load on the machine."
    );
    gw.flush_usage().await.unwrap();
    gw.shutdown().await.unwrap();
}
