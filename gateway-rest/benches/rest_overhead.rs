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
//! [--postgres] [--backend-connections N] [--cache]` (`--cache`: REMAINING_CACHE on).
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
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use tonic::transport::{Channel, Endpoint};

const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

struct Args {
    secs: f64,
    conc: Vec<usize>,
    postgres: bool,
    backend_connections: usize,
    cache: bool,
}

fn args() -> Args {
    let mut a = Args {
        secs: 4.0,
        conc: vec![1, 8, 32, 64],
        postgres: false,
        backend_connections: 2,
        cache: false,
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
}

enum Client {
    Http(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Grpc(PromoServiceClient<Channel>),
}

async fn connect(target: Target, gw: SocketAddr, promo: SocketAddr) -> Client {
    match target {
        Target::RestRemaining | Target::RestValidate => {
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

async fn call(client: &mut Client, target: Target, gw: SocketAddr) -> bool {
    match (client, target) {
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
async fn closed_loop(
    target: Target,
    concurrency: usize,
    secs: f64,
    gw: SocketAddr,
    promo: SocketAddr,
) -> Stats {
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let stop = stop.clone();
        let measuring = measuring.clone();
        workers.push(tokio::spawn(async move {
            let mut client = connect(target, gw, promo).await;
            let mut lat = Vec::with_capacity(200_000);
            let mut errors = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = call(&mut client, target, gw).await;
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                    } else {
                        errors += 1;
                    }
                }
                if !ok {
                    client = connect(target, gw, promo).await;
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
    let (promo_addr, gw_addr, backend) = servers.block_on(async {
        let (db_url, backend) = if args.postgres {
            let admin = std::env::var("TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
            sqlx::any::install_default_drivers();
            let name = format!("iaf_bench_{}", uuid::Uuid::new_v4().simple());
            let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let base = admin.rsplit_once('/').unwrap().0.to_owned();
            (format!("{base}/{name}"), "PostgreSQL")
        } else {
            (
                format!("sqlite://{}/promo.db", dir.path().display()),
                "SQLite",
            )
        };
        let promo_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let promo_addr = promo_listener.local_addr().unwrap();
        let config = promo_service::Config::new(db_url, ADMIN_TOKEN);
        tokio::spawn(promo_service::serve(
            config,
            promo_listener,
            std::future::pending(),
        ));
        let mut gw_config = gateway_rest::Config::new(
            format!("http://{promo_addr}"),
            "http://127.0.0.1:9".to_owned(),
        );
        gw_config.validate_rate = None;
        gw_config.signup_rate = None;
        gw_config.backend_connections = args.backend_connections;
        gw_config.remaining_cache = args.cache;
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
        (promo_addr, gw_addr, backend)
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
    for (name, rest, grpc) in [
        ("remaining", Target::RestRemaining, Target::GrpcRemaining),
        ("validate", Target::RestValidate, Target::GrpcValidate),
    ] {
        for &c in &args.conc {
            let r = load.block_on(closed_loop(rest, c, args.secs, gw_addr, promo_addr));
            let g = load.block_on(closed_loop(grpc, c, args.secs, gw_addr, promo_addr));
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
    drop(servers);
}
