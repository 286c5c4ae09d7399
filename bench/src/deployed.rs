//! `deployed`: the platform measured as a customer or a reviewer would measure it.
//!
//! The three release binaries run as separate processes exactly as deployed (each its own
//! runtime, gRPC between them over loopback, SQLite files), with an nginx `return 200` of a fixed
//! chat completion as the zero-latency upstream, and `wrk` drives them. For each path it prints
//! req/s, p50/p99 as wrk measured them, errors, and the **server CPU per request**: the user +
//! system time the three services spent (from `/proc`) divided by the requests, next to the same
//! figures for nginx alone. `bench/deployed.sh` installs wrk and nginx, builds the binaries and
//! runs this.
//!
//! Deviations from a production deployment, all stated in the table's legend: the public
//! per-IP rate limits are off (wrk is one client address), and the benchmark customer's package
//! has quotas high enough never to refuse during a run (they are still checked on every call).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use iafactory_bench::load::{Http1, request};
use iafactory_bench::procstat;
use iafactory_bench::profile::{self, Category};
use serde::Serialize;
use sqlx::Connection as _;

/// The platform's three services, in the order of every per-service figure.
const SERVICES: [&str; 3] = ["promo-service", "llm-gateway", "gateway-rest"];
const ADMIN: &str = "bench-admin-token-0123456789";
const INTERNAL: &str = "bench-internal-token-0123456789";
/// What the upstream answers to every chat call (the loadgen upstream's answer).
const ANSWER: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"Bonjour !"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;

#[derive(Parser, Debug)]
#[command(
    name = "deployed",
    about = "The three release binaries as separate processes under wrk: req/s, p50/p99, server CPU per request"
)]
struct Args {
    /// Folder holding the release binaries (scripts/build-release.sh's output).
    #[arg(long, default_value = "target/dist")]
    dist: PathBuf,
    /// Seconds measured per row (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of load before each measured row (connections open, caches and pools warm).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Connection counts (wrk -c).
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    connections: Vec<usize>,
    /// Paths to measure: upstream (nginx direct), chat, remaining, validate, and the transport
    /// floor of chat and of a promo read (`floor-chat`, `floor-remaining`: the `floor` program,
    /// the same exchanges with none of the platform's work).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "upstream,chat,remaining,validate"
    )]
    scenarios: Vec<String>,
    /// Where the figures go as JSON.
    #[arg(long, default_value = "target/bench-deployed.json")]
    json: PathBuf,
    /// Model asked for in chat calls (routed to the `groq` provider, pointed at nginx).
    #[arg(long, default_value = "llama-3.3-70b")]
    chat_model: String,
    /// Extra `NAME=VALUE` settings given to the three services (to measure a setting's effect).
    #[arg(long = "env")]
    extra_env: Vec<String>,
    /// The path gateway-rest answers 200 on once ready (`/healthz` for binaries older than
    /// `/readyz`, to compare versions).
    #[arg(long, default_value = "/readyz")]
    ready_path: String,
    /// Also record each service with `perf` during each measured row (recordings kept in this
    /// folder) and print where its CPU per request goes, by kind of work (kernel network,
    /// scheduler, runtime, HTTP/2, gRPC, JSON, allocator, our code, ...). perf's sampling adds a
    /// little CPU of its own to the rows it records.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// The `floor` program (release build) for the floor rows.
    #[arg(long, default_value = "target/release/floor")]
    floor: PathBuf,
}

/// One measured row.
#[derive(Debug, Serialize)]
struct Row {
    path: String,
    connections: usize,
    requests: u64,
    errors: u64,
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    /// CPU µs per request of the platform's three services (0 for the upstream row).
    server_cpu_us: f64,
    /// The same, per service: promo-service, llm-gateway, gateway-rest.
    per_service_us: [f64; 3],
    /// CPU µs per request of nginx (master and workers).
    upstream_cpu_us: f64,
    /// With `--profile`: per service, µs per request by category of work.
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<[BTreeMap<Category, f64>; 3]>,
}

/// A child process killed when dropped, so an early return never leaves servers behind.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first (the services drain and exit), then make sure.
        let _ = Command::new("kill").arg("-TERM").arg(self.pid()).status();
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("{} did not stop on SIGTERM within 5 s: killed", self.name);
    }
}

/// The `floor` program's two processes: the edge and the gRPC hop behind it.
struct Floor {
    edge: Proc,
    grpc: Proc,
    edge_addr: SocketAddr,
}

impl Floor {
    /// Starts `floor grpc` (its upstream the benchmark's nginx) and `floor edge` in front of it.
    fn start(
        binary: &Path,
        upstream: SocketAddr,
        env: &[(String, String)],
        dir: &Path,
    ) -> Result<Floor, String> {
        if !binary.exists() {
            return Err(format!(
                "{} is missing: cargo build --release -p iafactory-bench --bin floor",
                binary.display()
            ));
        }
        let grpc_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let edge_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let grpc = spawn(
            "floor-grpc",
            binary,
            &[
                "grpc",
                "--listen",
                &grpc_addr.to_string(),
                "--upstream",
                &format!("http://{upstream}/v1/chat/completions"),
            ],
            env,
            dir,
        )?;
        let edge = spawn(
            "floor-edge",
            binary,
            &[
                "edge",
                "--listen",
                &edge_addr.to_string(),
                "--grpc",
                &format!("http://{grpc_addr}"),
            ],
            env,
            dir,
        )?;
        Ok(Floor {
            edge,
            grpc,
            edge_addr,
        })
    }
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `binary` with `env`, its output in `dir/NAME.log`.
fn spawn(
    name: &'static str,
    binary: &Path,
    args: &[&str],
    env: &[(String, String)],
    dir: &Path,
) -> Result<Proc, String> {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let child = Command::new(binary)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    Ok(Proc { name, child })
}

/// Waits until `GET path` on `addr` answers 200 (or fails after 30 s, showing the logs).
async fn wait_http(addr: SocketAddr, path: &str, dir: &Path) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let mut c = Http1::new(addr);
        if let Some((200, _)) = c.request(request("GET", addr, path, None, None)).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut logs = String::new();
    for name in [
        "promo-service",
        "llm-gateway",
        "gateway-rest",
        "nginx",
        "floor-grpc",
        "floor-edge",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let _ = writeln!(logs, "--- {name}.log (last lines)");
        for l in tail.into_iter().rev() {
            let _ = writeln!(logs, "{l}");
        }
    }
    Err(format!("{addr}{path} never answered 200 in 30 s\n{logs}"))
}

/// The nginx configuration of the zero-latency upstream: one worker per core, no logs.
fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "worker_processes auto;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/nginx.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n  \
         fastcgi_temp_path {d}/nginx-fcgi;\n  uwsgi_temp_path {d}/nginx-uwsgi;\n  scgi_temp_path {d}/nginx-scgi;\n  \
         keepalive_requests 1000000;\n  \
         server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location / {{\n      default_type application/json;\n      \
         return 200 '{ANSWER}';\n    }}\n  }}\n}}\n"
    )
}

/// A wrk script: the request, and a `done` hook printing exact figures on one line.
fn wrk_script(method: &str, body: Option<&str>, bearer: Option<&str>) -> String {
    let mut s = format!("wrk.method = \"{method}\"\n");
    if let Some(b) = body {
        let _ = writeln!(s, "wrk.body = [[{b}]]");
        s.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    if let Some(t) = bearer {
        let _ = writeln!(s, "wrk.headers[\"Authorization\"] = \"Bearer {t}\"");
    }
    s.push_str(
        "done = function(summary, latency, requests)\n\
         local e = summary.errors\n\
         io.write(string.format(\"IAF-RESULT %d %d %d %d %d %d\\n\", summary.requests, summary.duration, \
         latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, e.status))\n\
         end\n",
    );
    s
}

struct WrkOut {
    requests: u64,
    duration_us: u64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
}

fn run_wrk(url: &str, script: &Path, connections: usize, seconds: u64) -> Result<WrkOut, String> {
    let threads = connections.clamp(1, 2);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("IAF-RESULT "))
        .ok_or_else(|| {
            format!(
                "wrk printed no result:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let n: Vec<u64> = line
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    match n.as_slice() {
        [requests, duration_us, p50_us, p99_us, socket, status] => Ok(WrkOut {
            requests: *requests,
            duration_us: *duration_us,
            p50_us: *p50_us,
            p99_us: *p99_us,
            errors: socket + status,
        }),
        _ => Err(format!("unexpected wrk result line: {line}")),
    }
}

/// A path under load: where wrk aims, what it sends, and whose CPU is counted.
struct Target {
    name: String,
    url: String,
    script: PathBuf,
    served_by: ServedBy,
}

/// Which processes serve a row, in the per-service slots (promo-service, llm-gateway,
/// gateway-rest).
#[derive(Clone, Copy)]
enum ServedBy {
    /// nginx alone: no service counted.
    Upstream,
    /// The platform's three services.
    Platform,
    /// The floor: `floor edge` in gateway-rest's slot, `floor grpc` in the slot of the service
    /// whose hop it stands for.
    Floor { grpc_slot: usize },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        let _ = writeln!(std::io::stderr(), "deployed: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    for tool in ["wrk", "nginx"] {
        if !which(tool) && !Path::new(&format!("/usr/sbin/{tool}")).exists() {
            return Err(format!("{tool} is not installed: run bench/setup.sh"));
        }
    }
    let bin = |name: &str| args.dist.join(name);
    for name in SERVICES {
        if !bin(name).exists() {
            return Err(format!(
                "{} is missing: run scripts/build-release.sh {}",
                bin(name).display(),
                args.dist.display()
            ));
        }
    }
    let dir = std::env::temp_dir().join(format!("iaf-deployed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let dir = dir.canonicalize().map_err(|e| e.to_string())?;
    let result = measure(&args, &dir).await;
    if result.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("logs kept in {}", dir.display());
    }
    result
}

async fn measure(args: &Args, dir: &Path) -> Result<(), String> {
    let [nginx_port, promo_port, llm_port, rest_port] =
        [free_port()?, free_port()?, free_port()?, free_port()?];
    let nginx_addr: SocketAddr = ([127, 0, 0, 1], nginx_port).into();
    let rest_addr: SocketAddr = ([127, 0, 0, 1], rest_port).into();

    std::fs::write(dir.join("nginx.conf"), nginx_conf(dir, nginx_port))
        .map_err(|e| e.to_string())?;
    let nginx_bin = if which("nginx") {
        PathBuf::from("nginx")
    } else {
        PathBuf::from("/usr/sbin/nginx")
    };
    let conf = dir.join("nginx.conf");
    let conf = conf.to_string_lossy();
    let prefix = format!("{}/", dir.display());
    let nginx = spawn(
        "nginx",
        &nginx_bin,
        &["-p", &prefix, "-c", &conf, "-e", "stderr"],
        &[],
        dir,
    )?;

    let extra: Vec<(String, String)> = args
        .extra_env
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    let with_extra = |mut env: Vec<(String, String)>| {
        env.extend(extra.iter().cloned());
        env
    };
    let s = |k: &str, v: String| (k.to_owned(), v);
    let promo_db = format!("sqlite://{}/promo.db", dir.display());
    let promo = spawn(
        "promo-service",
        &args.dist.join("promo-service"),
        &[],
        &with_extra(vec![
            s("PROMO_SERVICE_ADDR", format!("127.0.0.1:{promo_port}")),
            s("DATABASE_URL", promo_db.clone()),
            s("ADMIN_TOKEN", ADMIN.into()),
            s("INTERNAL_TOKEN", INTERNAL.into()),
            s("PUBLIC_URL", format!("http://{rest_addr}")),
        ]),
        dir,
    )?;
    let llm = spawn(
        "llm-gateway",
        &args.dist.join("llm-gateway"),
        &[],
        &with_extra(vec![
            s("LLM_GATEWAY_ADDR", format!("127.0.0.1:{llm_port}")),
            s(
                "DATABASE_URL",
                format!("sqlite://{}/llm-gateway.db", dir.display()),
            ),
            s(
                "PROMO_SERVICE_URL",
                format!("http://127.0.0.1:{promo_port}"),
            ),
            s("INTERNAL_TOKEN", INTERNAL.into()),
            s("GROQ_API_KEY", "bench-key".into()),
            s("GROQ_BASE_URL", format!("http://{nginx_addr}/v1")),
        ]),
        dir,
    )?;
    let rest = spawn(
        "gateway-rest",
        &args.dist.join("gateway-rest"),
        &[],
        &with_extra(vec![
            s("GATEWAY_REST_ADDR", rest_addr.to_string()),
            s(
                "PROMO_SERVICE_URL",
                format!("http://127.0.0.1:{promo_port}"),
            ),
            s("LLM_GATEWAY_URL", format!("http://127.0.0.1:{llm_port}")),
            s("INTERNAL_TOKEN", INTERNAL.into()),
            s("ADMIN_TOKEN", ADMIN.into()),
            // wrk is one client address: the per-IP limits would measure 429s.
            s("RATE_VALIDATE_PER_MIN", "0".into()),
            s("RATE_SIGNUP_PER_MIN", "0".into()),
            s("RATE_AUTH_FAILURES_PER_MIN", "0".into()),
        ]),
        dir,
    )?;
    wait_http(rest_addr, &args.ready_path, dir).await?;
    wait_http(nginx_addr, "/", dir).await?;

    // The benchmark customer: quotas checked on every call but high enough never to refuse.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&promo_db)
        .await
        .map_err(|e| format!("{promo_db}: {e}"))?;
    sqlx::query(
        "UPDATE packages SET requests_per_minute = 1000000000, tokens_per_month = 1000000000000 \
         WHERE id = 'premium'",
    )
    .execute(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    drop(conn);
    let signup = Bytes::from_static(br#"{"email":"bench@iafactory.dz","package":"premium"}"#);
    let (status, body) = Http1::new(rest_addr)
        .request(request(
            "POST",
            rest_addr,
            "/api/promo/signup",
            Some(&signup),
            None,
        ))
        .await
        .ok_or("signup: no answer")?;
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let api_key = answer["api_key"]
        .as_str()
        .filter(|_| status == 201 || status == 200)
        .ok_or_else(|| {
            format!(
                "signup answered {status}: {}",
                String::from_utf8_lossy(&body)
            )
        })?
        .to_owned();

    let script = |name: &str, text: String| -> Result<PathBuf, String> {
        let p = dir.join(format!("{name}.lua"));
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
        Ok(p)
    };
    let chat_body = format!(
        r#"{{"model":"{}","messages":[{{"role":"user","content":"Bonjour"}}]}}"#,
        args.chat_model
    );
    // The floor's two processes, when a floor row is asked for.
    let floor = if args.scenarios.iter().any(|s| s.starts_with("floor-")) {
        Some(Floor::start(&args.floor, nginx_addr, &extra, dir)?)
    } else {
        None
    };
    let floor_edge = floor.as_ref().map(|f| f.edge_addr);
    let mut targets = Vec::new();
    for name in &args.scenarios {
        let t = match name.as_str() {
            "upstream" => Target {
                name: "chat, nginx upstream direct".into(),
                url: format!("http://{nginx_addr}/v1/chat/completions"),
                script: script(
                    "upstream",
                    wrk_script("POST", Some(&chat_body), Some("bench-key")),
                )?,
                served_by: ServedBy::Upstream,
            },
            "chat" => Target {
                name: "chat, gateway-rest → llm-gateway → upstream".into(),
                url: format!("http://{rest_addr}/v1/chat/completions"),
                script: script("chat", wrk_script("POST", Some(&chat_body), Some(&api_key)))?,
                served_by: ServedBy::Platform,
            },
            "remaining" => Target {
                name: "GET /api/promo/LAUNCH30/remaining".into(),
                url: format!("http://{rest_addr}/api/promo/LAUNCH30/remaining"),
                script: script("remaining", wrk_script("GET", None, None))?,
                served_by: ServedBy::Platform,
            },
            "floor-chat" => Target {
                name: "floor of chat: edge → gRPC → upstream, no work".into(),
                url: format!(
                    "http://{}/v1/chat/completions",
                    floor_edge.ok_or("no floor")?
                ),
                script: script(
                    "floor-chat",
                    wrk_script("POST", Some(&chat_body), Some(&api_key)),
                )?,
                served_by: ServedBy::Floor { grpc_slot: 1 },
            },
            "floor-remaining" => Target {
                name: "floor of a promo read: edge → gRPC, no work".into(),
                url: format!(
                    "http://{}/api/promo/LAUNCH30/remaining",
                    floor_edge.ok_or("no floor")?
                ),
                script: script("floor-remaining", wrk_script("GET", None, None))?,
                served_by: ServedBy::Floor { grpc_slot: 0 },
            },
            "validate" => Target {
                name: "POST /api/promo/validate".into(),
                url: format!("http://{rest_addr}/api/promo/validate"),
                script: script(
                    "validate",
                    wrk_script(
                        "POST",
                        Some(r#"{"code":"LAUNCH30","package":"starter"}"#),
                        None,
                    ),
                )?,
                served_by: ServedBy::Platform,
            },
            other => return Err(format!("unknown scenario {other}")),
        };
        targets.push(t);
    }
    if let Some(f) = &floor {
        wait_http(f.edge_addr, "/api/promo/LAUNCH30/remaining", dir).await?;
    }

    let services = [&promo, &llm, &rest];
    let idle: Vec<u64> = services
        .iter()
        .map(|p| procstat::rss_kib(&p.pid()))
        .collect();
    let nginx_pids = || {
        let master = nginx.child.id();
        let mut pids = vec![master.to_string()];
        pids.extend(
            procstat::children_of(master)
                .into_iter()
                .map(|p| p.to_string()),
        );
        pids
    };
    let cpu = |pids: &[String]| pids.iter().map(|p| procstat::cpu_of(p)).sum::<Duration>();

    let mut rows = Vec::new();
    for &c in &args.connections {
        for t in &targets {
            run_wrk(&t.url, &t.script, c, args.warmup)?;
            // Per slot, the process whose CPU is counted there (none: nothing counted).
            let svc_pids: [Option<String>; 3] = match (t.served_by, &floor) {
                (ServedBy::Floor { grpc_slot }, Some(f)) => {
                    let mut pids = [None, None, Some(f.edge.pid())];
                    pids[grpc_slot] = Some(f.grpc.pid());
                    pids
                }
                _ => services.map(|p| Some(p.pid())),
            };
            let upstream_pids = nginx_pids();
            let recordings = match &args.profile {
                Some(folder) => Some(start_profiles(folder, &svc_pids, &t.name, c, args.seconds)?),
                None => None,
            };
            let cpu_slots = |pids: &[Option<String>; 3]| {
                pids.each_ref()
                    .map(|p| p.as_deref().map_or(Duration::ZERO, procstat::cpu_of))
            };
            let before = cpu_slots(&svc_pids);
            let up_before = cpu(&upstream_pids);
            let w = run_wrk(&t.url, &t.script, c, args.seconds)?;
            let after = cpu_slots(&svc_pids);
            let up_after = cpu(&upstream_pids);
            let per_req = |d: Duration| d.as_secs_f64() * 1e6 / w.requests.max(1) as f64;
            let per_service = [0, 1, 2].map(|i| per_req(after[i].saturating_sub(before[i])));
            let row = Row {
                path: t.name.clone(),
                connections: c,
                requests: w.requests,
                errors: w.errors,
                rps: w.requests as f64 / (w.duration_us.max(1) as f64 / 1e6),
                p50_us: w.p50_us,
                p99_us: w.p99_us,
                server_cpu_us: per_service.iter().sum(),
                per_service_us: per_service,
                upstream_cpu_us: per_req(up_after.saturating_sub(up_before)),
                profile: match recordings {
                    Some(r) => Some(finish_profiles(r, per_service)?),
                    None => None,
                },
            };
            eprintln!(
                "{} c={c}: {:.0} req/s, p50 {} µs, p99 {} µs, {} errors, server CPU {:.0} µs/req",
                row.path, row.rps, row.p50_us, row.p99_us, row.errors, row.server_cpu_us
            );
            rows.push(row);
        }
    }
    let loaded: Vec<u64> = services
        .iter()
        .map(|p| procstat::rss_kib(&p.pid()))
        .collect();

    let mut out = String::new();
    out.push_str(
        "| path | conns | req/s | p50 µs | p99 µs | errors | server CPU µs/req (promo + llm + rest) | upstream CPU µs/req |\n\
         |---|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for r in &rows {
        let server = if r.path.contains("direct") {
            "—".to_owned()
        } else {
            format!(
                "**{:.0}** ({:.0} + {:.0} + {:.0})",
                r.server_cpu_us, r.per_service_us[0], r.per_service_us[1], r.per_service_us[2]
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {:.0} |",
            r.path, r.connections, r.rps, r.p50_us, r.p99_us, r.errors, server, r.upstream_cpu_us
        );
    }
    let _ = writeln!(
        out,
        "\nResident memory (MiB), promo-service / llm-gateway / gateway-rest: idle {:.0} / {:.0} / {:.0}, after the runs {:.0} / {:.0} / {:.0}.",
        idle[0] as f64 / 1024.0,
        idle[1] as f64 / 1024.0,
        idle[2] as f64 / 1024.0,
        loaded[0] as f64 / 1024.0,
        loaded[1] as f64 / 1024.0,
        loaded[2] as f64 / 1024.0,
    );
    let _ = writeln!(
        out,
        "wrk {}s per row after {}s of warm-up; SQLite files; per-IP public rate limits off; the customer's quotas are checked on every call.",
        args.seconds, args.warmup
    );
    for r in rows.iter().filter(|r| r.profile.is_some()) {
        out.push_str(&profile_table(r));
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    let json = serde_json::json!({ "rows": rows, "rss_kib_idle": idle, "rss_kib_loaded": loaded });
    if let Some(parent) = args.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .map_err(|e| format!("{}: {e}", args.json.display()))?;
    Ok(())
}

/// `perf record` on each slot's process for the row about to be measured (by slot).
fn start_profiles(
    folder: &Path,
    pids: &[Option<String>; 3],
    path: &str,
    connections: usize,
    seconds: u64,
) -> Result<Vec<(usize, PathBuf, Child)>, String> {
    std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let mut out = Vec::new();
    for (slot, (pid, name)) in pids.iter().zip(SERVICES).enumerate() {
        let Some(pid) = pid else { continue };
        let file = folder.join(format!(
            "{}-c{connections}-{name}.perf.data",
            path.replace(['/', ' ', ':', ','], "_")
        ));
        let child = profile::record(pid, seconds, &file)?;
        out.push((slot, file, child));
    }
    Ok(out)
}

/// Waits for the recordings and turns each service's shares into µs per request.
fn finish_profiles(
    recordings: Vec<(usize, PathBuf, Child)>,
    per_service_us: [f64; 3],
) -> Result<[BTreeMap<Category, f64>; 3], String> {
    let mut out: [BTreeMap<Category, f64>; 3] = Default::default();
    for (i, file, mut child) in recordings {
        let _ = child.wait();
        let shares = profile::breakdown(&file)?;
        out[i] = shares
            .into_iter()
            .map(|(cat, share)| (cat, share * per_service_us[i]))
            .collect();
    }
    Ok(out)
}

/// Where a row's server CPU per request goes, by category and service.
fn profile_table(r: &Row) -> String {
    let Some(p) = &r.profile else {
        return String::new();
    };
    let mut out = format!(
        "\nWhere the CPU goes: {} with {} connections, µs per request (perf, cpu-clock samples)\n\n\
         | category | promo-service | llm-gateway | gateway-rest | all three |\n|---|---:|---:|---:|---:|\n",
        r.path, r.connections
    );
    for cat in Category::ALL {
        let v = [0, 1, 2].map(|i| p[i].get(&cat).copied().unwrap_or(0.0));
        let total: f64 = v.iter().sum();
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.1} | {:.1} | **{:.1}** |",
            cat.label(),
            v[0],
            v[1],
            v[2],
            total
        );
    }
    let _ = writeln!(
        out,
        "| **total** | {:.1} | {:.1} | {:.1} | **{:.1}** |",
        r.per_service_us[0], r.per_service_us[1], r.per_service_us[2], r.server_cpu_us
    );
    out
}
