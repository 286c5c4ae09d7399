//! REST → gRPC overhead of gateway-rest on the two hot public routes.
//!
//! Starts, in this process on loopback, the real promo-service (SQLite file in a temp folder, or
//! a fresh PostgreSQL database with `--postgres`) and the real gateway-rest (rate limits off).
//! Then, for each concurrency, runs a closed loop for a few seconds against:
//! - `GET /api/promo/LAUNCH30/remaining` through gateway-rest (HTTP/1.1 keep-alive, one
//!   connection per worker) and `GetRemaining` straight to promo-service over gRPC;
//! - `POST /api/promo/validate` through gateway-rest and `ValidateCode` straight over gRPC;
//!
//! and prints throughput, p50 and p99 for each, with the REST/gRPC throughput ratio and the
//! latency added at p50. The load generator runs on its own runtime; client and servers share the
//! machine's cores, as in PRODUCT.md's performance targets.
//!
//! Run: `cargo bench -p gateway-rest --bench rest_overhead -- [--secs 5] [--conc 1,8,32,64]
//! [--postgres] [--backend-connections N] [--cache] [--chat]` (`--cache`: REMAINING_CACHE on;
//! `--chat`: also `POST /v1/chat/completions` through gateway-rest vs `Chat` straight to
//! llm-gateway, with llm-gateway in-process in front of a zero-latency local upstream and a
//! package raised so quotas never refuse).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use iafactory::proto::iafactory::llm::v1 as llm_pb;
use iafactory::proto::iafactory::promo::v1 as pb;
use llm_pb::llm_gateway_client::LlmGatewayClient;
use pb::promo_service_client::PromoServiceClient;
use tonic::transport::{Channel, Endpoint};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";
const INTERNAL_TOKEN: &str = "bench-internal-token-0123456789";

struct Args {
    secs: f64,
    conc: Vec<usize>,
    postgres: bool,
    backend_connections: usize,
    cache: bool,
    chat: bool,
}

fn args() -> Args {
    let mut a = Args {
        secs: 4.0,
        conc: vec![1, 8, 32, 64],
        postgres: false,
        backend_connections: 2,
        cache: false,
        chat: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--secs" => a.secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.secs),
            "--conc" => {
                a.conc = it
                    .next()
                    .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
                    .unwrap_or(a.conc)
            }
            "--postgres" => a.postgres = true,
            "--cache" => a.cache = true,
            "--chat" => a.chat = true,
            "--backend-connections" => {
                a.backend_connections = it.next().and_then(|v| v.parse().ok()).unwrap_or(2)
            }
            _ => {} // cargo bench passes `--bench`
        }
    }
    a
}

#[derive(Clone, Copy)]
struct Stats {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    errors: usize,
}

fn stats(mut lat: Vec<u32>, errors: usize, elapsed: Duration) -> Stats {
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
        errors,
    }
}

/// A per-worker client: one HTTP/1.1 connection or one gRPC channel.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    RestRemaining,
    RestValidate,
    GrpcRemaining,
    GrpcValidate,
    RestChat,
    GrpcChat,
}

/// Where the clients go.
#[derive(Clone)]
struct Addrs {
    gw: SocketAddr,
    promo: SocketAddr,
    llm: Option<SocketAddr>,
    key: Arc<str>,
}

enum Client {
    Http(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Grpc(PromoServiceClient<Channel>),
    Llm(LlmGatewayClient<Channel>),
}

async fn connect(target: Target, a: &Addrs) -> Client {
    let (gw, promo) = (a.gw, a.promo);
    match target {
        Target::GrpcChat => {
            let llm = a.llm.unwrap();
            let ch = Endpoint::from_shared(format!("http://{llm}"))
                .unwrap()
                .tcp_nodelay(true)
                .connect()
                .await
                .unwrap();
            Client::Llm(LlmGatewayClient::new(ch))
        }
        Target::RestRemaining | Target::RestValidate | Target::RestChat => {
            let tcp = tokio::net::TcpStream::connect(gw).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            let (send, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            Client::Http(send)
        }
        Target::GrpcRemaining | Target::GrpcValidate => {
            let ch = Endpoint::from_shared(format!("http://{promo}"))
                .unwrap()
                .tcp_nodelay(true)
                .connect()
                .await
                .unwrap();
            Client::Grpc(PromoServiceClient::new(ch))
        }
    }
}

const CHAT_BODY: &[u8] =
    br#"{"model":"bench","messages":[{"role":"user","content":"Bonjour"}],"max_tokens":16}"#;

async fn call(client: &mut Client, target: Target, a: &Addrs) -> bool {
    let gw = a.gw;
    match (client, target) {
        (Client::Http(send), Target::RestChat) => {
            let req = http::Request::post(format!("http://{gw}/v1/chat/completions"))
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {}", a.key))
                .body(Full::new(Bytes::from_static(CHAT_BODY)))
                .unwrap();
            http_ok(send, req).await
        }
        (Client::Llm(c), _) => {
            let mut req = tonic::Request::new(llm_pb::ChatRequest {
                model: "bench".into(),
                messages: vec![llm_pb::ChatMessage {
                    role: llm_pb::Role::User as i32,
                    content: Some(llm_pb::chat_message::Content::Text("Bonjour".into())),
                    ..Default::default()
                }],
                max_tokens: Some(16),
                ..Default::default()
            });
            req.metadata_mut().insert(
                "authorization",
                format!("Bearer {}", a.key).parse().unwrap(),
            );
            c.chat(req).await.is_ok()
        }
        (Client::Http(send), Target::RestRemaining) => {
            let req = http::Request::get(format!("http://{gw}/api/promo/LAUNCH30/remaining"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            http_ok(send, req).await
        }
        (Client::Http(send), _) => {
            let req = http::Request::post(format!("http://{gw}/api/promo/validate"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(
                    br#"{"code":"LAUNCH30","package":"dev"}"#,
                )))
                .unwrap();
            http_ok(send, req).await
        }
        (Client::Grpc(c), Target::GrpcRemaining) => c
            .get_remaining(pb::GetRemainingRequest {
                code: "LAUNCH30".into(),
            })
            .await
            .is_ok(),
        (Client::Grpc(c), _) => c
            .validate_code(pb::ValidateCodeRequest {
                code: "LAUNCH30".into(),
                package: "dev".into(),
            })
            .await
            .is_ok(),
    }
}

async fn http_ok(
    send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    req: http::Request<Full<Bytes>>,
) -> bool {
    if send.ready().await.is_err() {
        return false;
    }
    match send.send_request(req).await {
        Ok(resp) => {
            let ok = resp.status() == 200;
            ok && resp.into_body().collect().await.is_ok()
        }
        Err(_) => false,
    }
}

/// `concurrency` workers, each with its own connection, in a closed loop for `secs`.
async fn closed_loop(target: Target, concurrency: usize, secs: f64, addrs: &Addrs) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let stop = stop.clone();
        let measuring = measuring.clone();
        let a = addrs.clone();
        workers.push(tokio::spawn(async move {
            let mut client = connect(target, &a).await;
            let mut lat = Vec::with_capacity(200_000);
            let mut errors = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = call(&mut client, target, &a).await;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    client = connect(target, &a).await;
                }
            }
            (lat, errors)
        }));
    }
    // Warm-up: connections, caches.
    tokio::time::sleep(Duration::from_millis(700)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (lat, e) = w.await.unwrap();
        all.extend(lat);
        errors += e;
    }
    stats(all, errors, elapsed)
}

fn main() {
    let args = args();
    // Servers on their own runtime, the load generator on another (both get the 2 cores).
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pg_db: std::sync::Mutex<Option<iafactory_testkit::ScratchDb>> = std::sync::Mutex::new(None);
    let (addrs, backend) = servers.block_on(async {
        let (db_url, backend) = if args.postgres {
            let db = iafactory_testkit::ScratchDb::new(
                iafactory_testkit::Backend::Postgres,
                "iaf_bench",
            )
            .await;
            let url = db.url.clone();
            *pg_db.lock().unwrap() = Some(db);
            (url, "PostgreSQL")
        } else {
            (
                format!("sqlite://{}/promo.db", dir.path().display()),
                "SQLite",
            )
        };
        let promo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let promo_addr = promo_listener.local_addr().unwrap();
        let mut config = promo_service::Config::new(db_url.clone(), ADMIN_TOKEN);
        config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        tokio::spawn(promo_service::serve(
            config,
            promo_listener,
            std::future::pending(),
        ));
        let (llm, key) = if args.chat {
            start_llm(&db_url, promo_addr, dir.path()).await
        } else {
            (None, String::new())
        };
        let llm_url = llm.map_or_else(
            || "http://127.0.0.1:9".to_owned(),
            |a| format!("http://{a}"),
        );
        let mut gw_config = gateway_rest::Config::new(format!("http://{promo_addr}"), llm_url);
        gw_config.validate_rate = None;
        gw_config.signup_rate = None;
        gw_config.auth_failure_rate = None;
        gw_config.backend_connections = args.backend_connections;
        gw_config.remaining_cache = args.cache;
        gw_config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
        let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gw_addr = gw_listener.local_addr().unwrap();
        tokio::spawn(gateway_rest::serve(
            gw_config,
            gw_listener,
            std::future::pending(),
        ));
        // Ready when the REST route answers.
        let client = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = client
                .get(format!("http://{gw_addr}/api/promo/LAUNCH30/remaining"))
                .send()
                .await
                && r.status() == 200
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let addrs = Addrs {
            gw: gw_addr,
            promo: promo_addr,
            llm,
            key: key.into(),
        };
        (addrs, backend)
    });

    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "gateway-rest REST -> gRPC overhead ({backend}, {} s per run, {} backend connection(s), remaining cache {}, {} cores)",
        args.secs,
        args.backend_connections,
        if args.cache { "on" } else { "off" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<11} {:>4} | {:>9} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>6} {:>9} {:>6}",
        "route",
        "conc",
        "REST r/s",
        "p50 µs",
        "p99 µs",
        "gRPC r/s",
        "p50 µs",
        "p99 µs",
        "ratio",
        "+p50 µs",
        "errors"
    );
    let mut rows = vec![
        ("remaining", Target::RestRemaining, Target::GrpcRemaining),
        ("validate", Target::RestValidate, Target::GrpcValidate),
    ];
    if args.chat {
        rows.push(("chat", Target::RestChat, Target::GrpcChat));
    }
    for (name, rest, grpc) in rows {
        for &c in &args.conc {
            let r = load.block_on(closed_loop(rest, c, args.secs, &addrs));
            let g = load.block_on(closed_loop(grpc, c, args.secs, &addrs));
            println!(
                "{:<11} {:>4} | {:>9.0} {:>8.0} {:>8.0} | {:>9.0} {:>8.0} {:>8.0} | {:>6.2} {:>9.0} {:>6}",
                name,
                c,
                r.rps,
                r.p50_us,
                r.p99_us,
                g.rps,
                g.p50_us,
                g.p99_us,
                r.rps / g.rps.max(1.0),
                r.p50_us - g.p50_us,
                r.errors + g.errors
            );
        }
    }
    drop(load);
    // The benchmark's PostgreSQL database goes away with it.
    if let Some(db) = pg_db.lock().unwrap().take() {
        servers.block_on(db.close());
    }
    drop(servers);
}

/// A zero-latency OpenAI-compatible upstream, llm-gateway in front of it, and an API key whose
/// package never limits the benchmark. Returns llm-gateway's address and the key.
async fn start_llm(
    promo_db: &str,
    promo_addr: SocketAddr,
    dir: &std::path::Path,
) -> (Option<SocketAddr>, String) {
    const ANSWER: &str = r#"{"id":"up","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour !"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":4,"total_tokens":16}}"#;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(|| async { ([("content-type", "application/json")], ANSWER) }),
    );
    let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = up.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(up, app).await });

    let mut promo = loop {
        if let Ok(mut c) = PromoServiceClient::connect(format!("http://{promo_addr}")).await
            && c.list_packages(pb::ListPackagesRequest {}).await.is_ok()
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(promo_db)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE packages SET requests_per_minute = 100000000, tokens_per_month = 1000000000000 WHERE id = 'premium'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let key = promo
        .signup(pb::SignupRequest {
            email: "bench@iafactory.dz".into(),
            package: "premium".into(),
            promo_code: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .api_key;
    let toml = format!(
        "[providers.local]\nkind = \"openai\"\nbase_url = \"http://{up_addr}/v1\"\nrequires_key = false\n\
         [[models]]\nname = \"bench\"\nroutes = [{{ provider = \"local\", model = \"m\", input_usd_per_mtok = 0.5, output_usd_per_mtok = 1.5 }}]\n"
    );
    let catalog = llm_gateway::catalog::Catalog::from_toml("bench", &toml).unwrap();
    let mut cfg = llm_gateway::Config::new(
        format!("sqlite://{}/llm.db", dir.display()),
        format!("http://{promo_addr}"),
        catalog,
    );
    cfg.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = llm_gateway::start(cfg, listener).await.unwrap();
    let addr = handle.addr;
    // Runs for the whole benchmark.
    std::mem::forget(handle);
    (Some(addr), key)
}
