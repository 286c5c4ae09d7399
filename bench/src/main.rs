//! `loadgen`: the platform's benchmark suite.
//!
//! Starts the real services in this process (loopback, real gRPC and HTTP), once on SQLite files
//! and once on PostgreSQL, and drives them with a closed-loop load:
//! (a) `POST /api/promo/validate` and `GET /api/promo/{code}/remaining` through gateway-rest (two
//!     hops) and the same RPCs straight to promo-service over gRPC;
//! (b) 1 000 simultaneous signups racing for the last places of a code: decisions per second,
//!     latency, and whether exactly the limit was granted;
//! (c) chat completions against a zero-latency OpenAI-compatible upstream, called directly and
//!     through gateway-rest → llm-gateway, or through any other OpenAI-compatible gateway given by
//!     `--chat-target` (for comparisons on the same machine and load).
//! (d) a crowd watching the live counter: `--viewers` event streams opened at once on a cold code,
//!     the memory they cost, and how long one signup's change takes to reach every one of them;
//! (e) `llm-grpc`: llm-gateway alone, chat straight over gRPC (one HTTP/2 connection per 8
//!     callers, as gateway-rest's channel pool does), against the same upstream called directly:
//!     the gateway's own added latency and CPU per call.
//! Every closed-loop row also gives the process's CPU time per call.
//! Prints one table and writes the figures as JSON. Client, services and upstream share the
//! machine's cores, as in the product's performance targets.

mod stack;

use iafactory_bench::upstream;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use iafactory::proto::iafactory::llm::v1 as llm_pb;
use iafactory::proto::iafactory::promo::v1 as pb;
use iafactory_bench::load::{self, Caller, Http1, RunStats};
use serde::Serialize;
use stack::{Backend, Stack, StackOptions};

#[derive(Debug, Parser)]
#[command(name = "loadgen", about = "IAFactory benchmark suite")]
struct Args {
    /// Seconds measured per run (after a warm-up of a third of it).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Concurrencies (connections) to run each scenario at.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    concurrency: Vec<usize>,
    /// Backends to run on.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    backends: Vec<String>,
    /// Scenarios: promo, signup, chat, llm-grpc, viewers.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "promo,signup,chat,llm-grpc,viewers"
    )]
    scenarios: Vec<String>,
    /// gateway-rest's REMAINING_CACHE (answers `remaining` from its own short cache).
    #[arg(long)]
    remaining_cache: bool,
    /// gateway-rest's BACKEND_CONNECTIONS (HTTP/2 connections to each backend).
    #[arg(long, default_value_t = 4)]
    backend_connections: usize,
    /// Event-stream viewers of the live counter in the viewers scenario.
    #[arg(long, default_value_t = 10_000)]
    viewers: usize,
    /// Internal: run as the viewers' client process (`ADDR CODE N`), driven over stdin/stdout.
    #[arg(long, num_args = 3, hide = true)]
    viewer_client: Option<Vec<String>>,
    /// Simultaneous signups in the contention scenario.
    #[arg(long, default_value_t = 1000)]
    signups: usize,
    /// Places of the contended code.
    #[arg(long, default_value_t = 30)]
    places: u32,
    /// PostgreSQL server (a database per run is created and dropped there).
    #[arg(
        long,
        env = "TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pg: String,
    /// Also aim the chat load at this OpenAI-compatible base URL (e.g. `http://127.0.0.1:4000`,
    /// without `/v1`), with `--chat-key` and `--chat-model`.
    #[arg(long)]
    chat_target: Option<String>,
    #[arg(long, default_value = "")]
    chat_key: String,
    #[arg(long, default_value = "llama-3.3-70b")]
    chat_model: String,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/bench-results.json")]
    json: String,
}

#[derive(Debug, Clone, Serialize)]
struct Row {
    scenario: String,
    backend: String,
    target: String,
    concurrency: usize,
    #[serde(flatten)]
    stats: RunStats,
    note: String,
}

/// A REST call on its own keep-alive connection.
struct RestCall {
    http: Http1,
    addr: SocketAddr,
    method: &'static str,
    path: String,
    body: Option<Bytes>,
    bearer: Option<String>,
    expect: u16,
}

impl Caller for RestCall {
    async fn call(&mut self) -> bool {
        let req = load::request(
            self.method,
            self.addr,
            &self.path,
            self.body.as_ref(),
            self.bearer.as_deref(),
        );
        matches!(self.http.request(req).await, Some((s, _)) if s == self.expect)
    }
}

/// A gRPC call on its own channel.
struct GrpcCall {
    client: pb::promo_service_client::PromoServiceClient<tonic::transport::Channel>,
    validate: bool,
}

impl Caller for GrpcCall {
    async fn call(&mut self) -> bool {
        if self.validate {
            self.client
                .validate_code(pb::ValidateCodeRequest {
                    code: "LAUNCH30".into(),
                    package: "dev".into(),
                })
                .await
                .is_ok()
        } else {
            self.client
                .get_remaining(pb::GetRemainingRequest {
                    code: "LAUNCH30".into(),
                })
                .await
                .is_ok()
        }
    }
}

/// A chat completion straight to llm-gateway over gRPC, on a channel shared with other workers.
struct GrpcChat {
    client: llm_pb::llm_gateway_client::LlmGatewayClient<tonic::transport::Channel>,
    request: llm_pb::ChatRequest,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl Caller for GrpcChat {
    async fn call(&mut self) -> bool {
        let mut req = tonic::Request::new(self.request.clone());
        req.metadata_mut()
            .insert("authorization", self.bearer.clone());
        self.client.chat(req).await.is_ok()
    }
}

/// The chat request of the gRPC scenario: the REST scenario's body, as the contract's message.
fn grpc_chat_request(model: &str) -> llm_pb::ChatRequest {
    llm_pb::ChatRequest {
        model: model.to_owned(),
        messages: vec![llm_pb::ChatMessage {
            role: llm_pb::Role::User as i32,
            content: Some(llm_pb::chat_message::Content::Text("Bonjour".into())),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// "added p50 … µs, throughput ×…" of `via` against `base` (and the CPU added per call).
fn compared(via: &RunStats, base: &RunStats) -> String {
    let added = i64::from(via.p50_us) - i64::from(base.p50_us);
    let ratio = if base.rps > 0.0 {
        via.rps / base.rps
    } else {
        0.0
    };
    format!(
        "added p50 {added} µs, +{:.0} µs CPU/call, throughput ×{ratio:.2}",
        via.cpu_us - base.cpu_us
    )
}

struct Suite {
    args: Args,
    rows: Vec<Row>,
    warmup: Duration,
    duration: Duration,
    /// The upstream called directly, per (backend, concurrency): measured once, the baseline of
    /// both chat scenarios.
    direct_chat: std::collections::HashMap<(&'static str, usize), RunStats>,
}

impl Suite {
    fn record(
        &mut self,
        scenario: &str,
        backend: &str,
        target: &str,
        concurrency: usize,
        stats: RunStats,
        note: String,
    ) {
        let row = Row {
            scenario: scenario.into(),
            backend: backend.into(),
            target: target.into(),
            concurrency,
            stats,
            note,
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "  {:<10} {:<9} {:<22} c={:<4} {:>9.0} req/s  p50 {:>7} µs  p99 {:>7} µs  max {:>7} µs  cpu {:>6.1} µs  errors {} {}",
            row.scenario,
            row.backend,
            row.target,
            row.concurrency,
            row.stats.rps,
            row.stats.p50_us,
            row.stats.p99_us,
            row.stats.max_us,
            row.stats.cpu_us,
            row.stats.errors,
            row.note
        );
        self.rows.push(row);
    }

    fn rest_calls(
        addr: SocketAddr,
        n: usize,
        method: &'static str,
        path: &str,
        body: Option<&str>,
        bearer: Option<&str>,
        expect: u16,
    ) -> Vec<RestCall> {
        (0..n)
            .map(|_| RestCall {
                http: Http1::new(addr),
                addr,
                method,
                path: path.to_owned(),
                body: body.map(|b| Bytes::copy_from_slice(b.as_bytes())),
                bearer: bearer.map(str::to_owned),
                expect,
            })
            .collect()
    }

    async fn promo(&mut self, backend: Backend, stack: &Stack) {
        let b = stack::name(backend);
        for &c in &self.args.concurrency.clone() {
            let calls = Self::rest_calls(
                stack.rest,
                c,
                "POST",
                "/api/promo/validate",
                Some(r#"{"code":"LAUNCH30","package":"dev"}"#),
                None,
                200,
            );
            let rest = load::closed_loop(calls, self.warmup, self.duration).await;
            let mut grpc = Vec::new();
            for _ in 0..c {
                if let Ok(client) = stack::connect_promo(stack.promo).await {
                    grpc.push(GrpcCall {
                        client,
                        validate: true,
                    });
                }
            }
            let direct = load::closed_loop(grpc, self.warmup, self.duration).await;
            let note = compared(&rest, &direct);
            self.record("validate", b, "REST (2 hops)", c, rest, note);
            self.record("validate", b, "gRPC direct", c, direct, String::new());

            let calls = Self::rest_calls(
                stack.rest,
                c,
                "GET",
                "/api/promo/LAUNCH30/remaining",
                None,
                None,
                200,
            );
            let rest = load::closed_loop(calls, self.warmup, self.duration).await;
            let mut grpc = Vec::new();
            for _ in 0..c {
                if let Ok(client) = stack::connect_promo(stack.promo).await {
                    grpc.push(GrpcCall {
                        client,
                        validate: false,
                    });
                }
            }
            let direct = load::closed_loop(grpc, self.warmup, self.duration).await;
            let note = compared(&rest, &direct);
            self.record("remaining", b, "REST (2 hops)", c, rest, note);
            self.record("remaining", b, "gRPC direct", c, direct, String::new());
        }
    }

    /// Every signup at once, each on its own connection, racing for the code's places.
    async fn signup(&mut self, backend: Backend, stack: &Stack) {
        let code = format!("RUSH{}", self.args.places);
        if let Err(e) = stack.create_code(&code, self.args.places).await {
            let _ = writeln!(std::io::stderr(), "cannot create {code}: {e}");
            return;
        }
        let n = self.args.signups;
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let addr = stack.rest;
            let body = format!(
                r#"{{"email":"rush{i}@bench.dz","package":"starter","promo_code":"{code}"}}"#
            );
            tasks.push(tokio::spawn(async move {
                let mut http = Http1::new(addr);
                let t = Instant::now();
                let req = load::request(
                    "POST",
                    addr,
                    "/api/promo/signup",
                    Some(&Bytes::from(body)),
                    None,
                );
                let status = http.request(req).await.map(|(s, _)| s);
                (
                    status,
                    u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX),
                )
            }));
        }
        let mut lat = Vec::with_capacity(n);
        let (mut granted, mut refused, mut errors) = (0, 0, 0);
        for t in tasks {
            match t.await {
                Ok((Some(201), us)) => {
                    granted += 1;
                    lat.push(us);
                }
                Ok((Some(409), us)) => {
                    refused += 1;
                    lat.push(us);
                }
                _ => errors += 1,
            }
        }
        let wall = started.elapsed();
        let mut s = load::stats(lat, errors, wall);
        s.rps = (granted + refused) as f64 / wall.as_secs_f64();
        let verdict = if granted == self.args.places as usize {
            "OK"
        } else {
            "WRONG"
        };
        let note = format!(
            "granted {granted}/{} ({verdict}), refused {refused}, all answered in {} ms",
            self.args.places,
            wall.as_millis()
        );
        self.record("signup", stack::name(backend), "REST (2 hops)", n, s, note);
    }

    /// `--viewers` browsers open the live counter of a cold code at once; then one signup changes
    /// the count. The viewers live in a child process (each process may hold only so many open
    /// files, and this way the memory measured here is the services' alone). Reports the time
    /// until every viewer had its first event, the resident memory the services gained, the
    /// signup's latency among the crowd, and when the change reached each viewer.
    async fn viewers(&mut self, backend: Backend, stack: &Stack) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let n = self.args.viewers;
        let code = "CROWD1000";
        let fail = |what: String| {
            let _ = writeln!(std::io::stderr(), "viewers: {what}");
        };
        if let Err(e) = stack.create_code(code, 1000).await {
            return fail(format!("cannot create {code}: {e}"));
        }
        let Ok(exe) = std::env::current_exe() else {
            return fail("cannot find the benchmark's own binary".into());
        };
        let rss_before = rss_kib();
        let child = tokio::process::Command::new(exe)
            .arg("--viewer-client")
            .args([stack.rest.to_string(), code.to_owned(), n.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => return fail(format!("cannot start the client process: {e}")),
        };
        let (Some(mut to_child), Some(out)) = (child.stdin.take(), child.stdout.take()) else {
            return fail("no pipes to the client process".into());
        };
        let mut lines = BufReader::new(out).lines();
        // "OPEN <ms>" once every viewer had its first event.
        let open_ms = match tokio::time::timeout(Duration::from_secs(180), lines.next_line()).await
        {
            Ok(Ok(Some(line))) => match line.strip_prefix("OPEN ") {
                Some(ms) => ms.trim().to_owned(),
                None => return fail(format!("client: {line}")),
            },
            other => return fail(format!("the viewers did not all open: {other:?}")),
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_open = rss_kib();
        let added_kib = rss_open.saturating_sub(rss_before);

        // One signup: its latency among the crowd, and when the change reached each viewer.
        let mut http = Http1::new(stack.rest);
        let body =
            format!(r#"{{"email":"watched@bench.dz","package":"starter","promo_code":"{code}"}}"#);
        let req = load::request(
            "POST",
            stack.rest,
            "/api/promo/signup",
            Some(&Bytes::from(body)),
            None,
        );
        let sent = wall_us();
        let t = Instant::now();
        let status = http.request(req).await.map(|(s, _)| s);
        let signup_us = t.elapsed().as_micros();
        if to_child
            .write_all(format!("SENT {sent}\n").as_bytes())
            .await
            .is_err()
        {
            return fail("the client process went away".into());
        }
        // "DONE <reached> <delay µs>..." once every viewer saw the change (or 30 s passed).
        let done = match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => return fail(format!("no report from the client process: {other:?}")),
        };
        let _ = child.kill().await;
        let delays: Vec<u32> = done
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let reached = delays.len();
        let wall = Duration::from_micros(delays.iter().copied().max().unwrap_or(0).into());
        let stats = load::stats(delays, n - reached, wall);
        let note = format!(
            "{reached}/{n} saw the change; all open in {open_ms} ms; services +{:.1} MiB RSS = \
             {:.1} KiB per viewer; a signup among them: {} in {signup_us} µs",
            added_kib as f64 / 1024.0,
            added_kib as f64 / n as f64,
            status.map_or("failed".to_owned(), |s| s.to_string()),
        );
        self.record(
            "viewers",
            stack::name(backend),
            "SSE fan-out (change→viewer)",
            n,
            stats,
            note,
        );
    }

    async fn chat(&mut self, backend: Backend, stack: &Stack, upstream: SocketAddr) {
        let b = stack::name(backend);
        let body = self.chat_body();
        for &c in &self.args.concurrency.clone() {
            let direct = self.direct_chat(backend, upstream, c, &body).await;
            let calls = Self::rest_calls(
                stack.rest,
                c,
                "POST",
                "/v1/chat/completions",
                Some(&body),
                Some(&stack.api_key),
                200,
            );
            let via = load::closed_loop(calls, self.warmup, self.duration).await;
            let note = compared(&via, &direct);
            self.record("chat", b, "upstream direct", c, direct, String::new());
            self.record("chat", b, "REST→llm-gateway", c, via, note);
            if let Some(target) = self.args.chat_target.clone() {
                let hostport = target.trim_start_matches("http://").trim_end_matches('/');
                match hostport.parse::<SocketAddr>() {
                    Ok(addr) => {
                        let key = self.args.chat_key.clone();
                        let calls = Self::rest_calls(
                            addr,
                            c,
                            "POST",
                            "/v1/chat/completions",
                            Some(&body),
                            Some(&key),
                            200,
                        );
                        let s = load::closed_loop(calls, self.warmup, self.duration).await;
                        self.record(
                            "chat",
                            b,
                            &format!("target {hostport}"),
                            c,
                            s,
                            String::new(),
                        );
                    }
                    Err(_) => {
                        let _ = writeln!(std::io::stderr(), "--chat-target must be http://IP:PORT");
                    }
                }
            }
        }
    }

    fn chat_body(&self) -> String {
        format!(
            r#"{{"model":"{}","messages":[{{"role":"user","content":"Bonjour"}}]}}"#,
            self.args.chat_model
        )
    }

    /// The upstream called directly with `body` at concurrency `c`, measured on first use.
    async fn direct_chat(
        &mut self,
        backend: Backend,
        upstream: SocketAddr,
        c: usize,
        body: &str,
    ) -> RunStats {
        if let Some(s) = self.direct_chat.get(&(stack::name(backend), c)) {
            return s.clone();
        }
        let calls = Self::rest_calls(
            upstream,
            c,
            "POST",
            "/v1/chat/completions",
            Some(body),
            Some("bench-key"),
            200,
        );
        let s = load::closed_loop(calls, self.warmup, self.duration).await;
        self.direct_chat
            .insert((stack::name(backend), c), s.clone());
        s
    }

    /// llm-gateway alone: chat over gRPC, one HTTP/2 connection per 8 workers, against the
    /// upstream called directly (the chat scenario's baseline when it ran).
    async fn llm_grpc(&mut self, backend: Backend, stack: &Stack, upstream: SocketAddr) {
        let b = stack::name(backend);
        let request = grpc_chat_request(&self.args.chat_model);
        let Ok(bearer) =
            tonic::metadata::MetadataValue::try_from(format!("Bearer {}", stack.api_key))
        else {
            let _ = writeln!(
                std::io::stderr(),
                "llm-grpc: the API key is not a header value"
            );
            return;
        };
        let body = self.chat_body();
        for &c in &self.args.concurrency.clone() {
            let direct = self.direct_chat(backend, upstream, c, &body).await;
            let mut channels = Vec::new();
            for _ in 0..c.div_ceil(8) {
                match stack::connect_llm(stack.llm).await {
                    Ok(ch) => channels.push(ch),
                    Err(e) => {
                        let _ = writeln!(std::io::stderr(), "llm-grpc: {e}");
                        return;
                    }
                }
            }
            let calls = (0..c)
                .map(|w| GrpcChat {
                    client: llm_pb::llm_gateway_client::LlmGatewayClient::new(
                        channels[w / 8].clone(),
                    ),
                    request: request.clone(),
                    bearer: bearer.clone(),
                })
                .collect();
            let via = load::closed_loop(calls, self.warmup, self.duration).await;
            let note = compared(&via, &direct);
            if !self.args.scenarios.iter().any(|s| s == "chat") {
                self.record("llm-grpc", b, "upstream direct", c, direct, String::new());
            }
            self.record("llm-grpc", b, "gRPC→llm-gateway", c, via, note);
        }
    }
}

/// The viewers' process: opens `n` event streams of `code` at once, prints `OPEN <ms>` when each
/// had its first event, reads `SENT <wall µs>` (when the parent sent its signup), then prints
/// `DONE` and, for each viewer that saw the change, its delay in µs after that instant.
async fn viewer_client(addr: SocketAddr, code: String, n: usize) -> std::process::ExitCode {
    use tokio::io::AsyncBufReadExt;
    let started = Instant::now();
    let opened = Arc::new(tokio::sync::Semaphore::new(0));
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let viewers: Vec<_> = (0..n)
        .map(|_| tokio::spawn(viewer(addr, code.clone(), opened.clone(), seen_tx.clone())))
        .collect();
    drop(seen_tx);
    let all = u32::try_from(n).unwrap_or(u32::MAX);
    let mut out = std::io::stdout().lock();
    match tokio::time::timeout(Duration::from_secs(150), opened.acquire_many(all)).await {
        Ok(Ok(_)) => {
            let _ = writeln!(out, "OPEN {}", started.elapsed().as_millis());
        }
        _ => {
            let failed = viewers.iter().filter(|v| v.is_finished()).count();
            let _ = writeln!(
                out,
                "FAILED only {} of {n} opened ({failed} ended early)",
                opened.available_permits()
            );
            return std::process::ExitCode::FAILURE;
        }
    }
    drop(out);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let sent: u64 = match stdin.next_line().await {
        Ok(Some(line)) => line
            .strip_prefix("SENT ")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        _ => return std::process::ExitCode::FAILURE,
    };
    let mut delays = Vec::with_capacity(n);
    while delays.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), seen_rx.recv()).await {
            Ok(Some(at)) => delays.push(at.saturating_sub(sent)),
            _ => break,
        }
    }
    let mut line = String::from("DONE");
    for d in delays {
        line.push(' ');
        line.push_str(&d.to_string());
    }
    let _ = writeln!(std::io::stdout().lock(), "{line}");
    std::process::ExitCode::SUCCESS
}

/// One browser on the live counter: counts itself in `opened` at its first event, then reports
/// (wall-clock µs) when it saw the count change.
async fn viewer(
    addr: SocketAddr,
    code: String,
    opened: Arc<tokio::sync::Semaphore>,
    seen: tokio::sync::mpsc::UnboundedSender<u64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MARK: &[u8] = b"event: remaining";
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let req = format!("GET /api/promo/{code}/remaining/stream HTTP/1.1\r\nhost: bench\r\n\r\n");
    if tcp.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 2048];
    // The last bytes of the previous read, so a mark split across two reads is still seen.
    let mut carry: Vec<u8> = Vec::new();
    let mut events = 0;
    loop {
        let Ok(n) = tcp.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        carry.extend_from_slice(&buf[..n]);
        let new_events = carry.windows(MARK.len()).filter(|w| *w == MARK).count();
        let keep = carry.len().min(MARK.len() - 1);
        carry.drain(..carry.len() - keep);
        for _ in 0..new_events {
            events += 1;
            if events == 1 {
                opened.add_permits(1);
            } else {
                let _ = seen.send(wall_us());
                return;
            }
        }
    }
}

/// Microseconds since the Unix epoch (the two processes share the machine's clock).
fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Resident memory of this process, KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | backend | target | conc. | req/s | p50 µs | p99 µs | max µs | CPU µs/call | errors | note |\n");
    out.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {:.1} | {} | {} |\n",
            r.scenario,
            r.backend,
            r.target,
            r.concurrency,
            r.stats.rps,
            r.stats.p50_us,
            r.stats.p99_us,
            r.stats.max_us,
            r.stats.cpu_us,
            r.stats.errors,
            r.note
        ));
    }
    out
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Every viewer holds a descriptor in each process (client side, server side).
    iafactory::net::raise_open_files_limit();
    if let Some(v) = &args.viewer_client {
        let (Some(addr), Some(code), Some(n)) = (
            v.first().and_then(|a| a.parse().ok()),
            v.get(1),
            v.get(2).and_then(|n| n.parse().ok()),
        ) else {
            return std::process::ExitCode::from(2);
        };
        return viewer_client(addr, code.clone(), n).await;
    }
    let duration = Duration::from_secs_f64(args.seconds.max(0.1));
    let mut suite = Suite {
        warmup: duration / 3,
        duration,
        rows: Vec::new(),
        direct_chat: std::collections::HashMap::new(),
        args,
    };
    let upstream = match upstream::start().await {
        Ok(a) => a,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot start the upstream: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    for name in suite.args.backends.clone() {
        let backend = match name.as_str() {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => {
                let _ = writeln!(std::io::stderr(), "unknown backend {other}");
                return std::process::ExitCode::from(2);
            }
        };
        let _ = writeln!(std::io::stderr(), "== {name}");
        let options = StackOptions {
            remaining_cache: suite.args.remaining_cache,
            backend_connections: suite.args.backend_connections,
        };
        let stack = match Stack::start(backend, upstream, &suite.args.pg, &options).await {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "cannot start the stack on {name}: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        let scenarios = suite.args.scenarios.clone();
        if scenarios.iter().any(|s| s == "promo") {
            suite.promo(backend, &stack).await;
        }
        if scenarios.iter().any(|s| s == "chat") {
            suite.chat(backend, &stack, upstream).await;
        }
        if scenarios.iter().any(|s| s == "llm-grpc") {
            suite.llm_grpc(backend, &stack, upstream).await;
        }
        if scenarios.iter().any(|s| s == "signup") {
            suite.signup(backend, &stack).await;
        }
        if scenarios.iter().any(|s| s == "viewers") {
            suite.viewers(backend, &stack).await;
        }
        stack.stop().await;
    }
    let text = table(&suite.rows);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let json = serde_json::json!({
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "seconds_per_run": suite.args.seconds,
        "rows": suite.rows,
    });
    if let Some(parent) = std::path::Path::new(&suite.args.json).parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match std::fs::write(
        &suite.args.json,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    ) {
        Ok(()) => {
            let _ = writeln!(out, "\nJSON: {}", suite.args.json);
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "cannot write {}: {e}", suite.args.json);
        }
    }
    std::process::ExitCode::SUCCESS
}
