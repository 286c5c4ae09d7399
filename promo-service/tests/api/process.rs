//! The real binary as a process: crash and restart, signals, startup errors, health.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_promo-service");
/// Required by the binary outside dev mode.
const PUBLIC_URL: &str = "https://api.iafactory.test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(db_url: &str, port: u16) -> Child {
    Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INTERNAL_TOKEN", INTERNAL_TOKEN)
        .env("PUBLIC_URL", PUBLIC_URL)
        .env("PROMO_SERVICE_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_serving(port: u16) {
    for _ in 0..200 {
        if let Ok(ch) = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
            .unwrap()
            .connect()
            .await
        {
            let mut h = HealthClient::new(ch);
            if let Ok(r) = h
                .check(HealthCheckRequest {
                    service: "iafactory.promo.v1.PromoService".into(),
                })
                .await
            {
                if r.into_inner().status() == ServingStatus::Serving {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("promo-service on {port} never became healthy");
}

async fn sigkill_then_restart_keeps_every_count(backend: Backend) {
    let db = test_db(backend).await;
    let port = free_port();
    let mut child = start(&db.url, port);
    wait_serving(port).await;
    let mut c = connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let mut keys = Vec::new();
    for i in 0..5 {
        keys.push(
            c.signup(signup_req(&format!("k{i}@x.dz"), "dev", "LAUNCH30"))
                .await
                .unwrap()
                .into_inner()
                .api_key,
        );
    }
    child.kill().unwrap(); // SIGKILL: no shutdown path runs.
    child.wait().unwrap();

    let port = free_port();
    let mut child = start(&db.url, port);
    wait_serving(port).await;
    let mut c = connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 25);
    let stats = c
        .get_stats(admin(pb::GetStatsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stats.total_signups, stats.launch30_used), (5, 5));
    for key in keys {
        c.authenticate_key(internal(pb::AuthenticateKeyRequest { api_key: key }))
            .await
            .unwrap();
    }
    c.signup(signup_req("after@x.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 24);

    // SIGTERM: graceful stop, exit code 0.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    db.close().await;
}

crate::on_both_backends!(sigkill_then_restart_keeps_every_count);

fn run_expecting_failure(envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "started with {envs:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn startup_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/p.db", dir.path().display());
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");

    let e = run_expecting_failure(&[("DATABASE_URL", &sqlite), ("PROMO_SERVICE_ADDR", &addr)]);
    assert!(e.contains("ADMIN_TOKEN is not set"), "{e}");
    let e = run_expecting_failure(&[
        ("DATABASE_URL", &sqlite),
        ("ADMIN_TOKEN", "short"),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(e.contains("ADMIN_TOKEN is too short"), "{e}");
    let e = run_expecting_failure(&[
        ("DATABASE_URL", &sqlite),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(e.contains("INTERNAL_TOKEN is not set"), "{e}");
    let e = run_expecting_failure(&[
        ("DATABASE_URL", &sqlite),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", "short"),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(e.contains("INTERNAL_TOKEN is too short"), "{e}");
    let e = run_expecting_failure(&[
        ("DATABASE_URL", &sqlite),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(e.contains("PUBLIC_URL is not set"), "{e}");
    let e = run_expecting_failure(&[
        ("DATABASE_URL", &sqlite),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("PUBLIC_URL", "api.iafactory.dz"),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(e.contains("PUBLIC_URL must be an http"), "{e}");
    let e = run_expecting_failure(&[
        ("DATABASE_URL", "mysql://h/db"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("PUBLIC_URL", PUBLIC_URL),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(e.contains("DATABASE_URL is not usable"), "{e}");
    // Nothing listens on port 1: connection refused, said with the (redacted) URL.
    let e = run_expecting_failure(&[
        ("DATABASE_URL", "postgres://bob:hunter2@127.0.0.1:1/db"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("PUBLIC_URL", PUBLIC_URL),
        ("PROMO_SERVICE_ADDR", &addr),
    ]);
    assert!(
        e.contains("cannot connect to postgres://bob:***@127.0.0.1:1/db"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "{e}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let e = run_expecting_failure(&[
        ("DATABASE_URL", &sqlite),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("PUBLIC_URL", PUBLIC_URL),
        ("PROMO_SERVICE_ADDR", &taken_addr),
    ]);
    assert!(e.contains("cannot listen on"), "{e}");
}

#[tokio::test]
async fn dev_mode_generates_an_admin_token_and_an_internal_token() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/p.db", dir.path().display()),
        )
        .env("IAF_DEV", "1")
        .env("PROMO_SERVICE_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_serving(port).await;
    assert!(
        dir.path().join("data/p.db").exists(),
        "SQLite file not created on first start"
    );
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        let _ = child.wait();
        let mut s = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut s).unwrap();
        s
    })
    .await
    .unwrap();
    let line = out
        .lines()
        .find(|l| l.contains("admin_token"))
        .unwrap_or_else(|| panic!("{out}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let token = v["admin_token"].as_str().unwrap();
    assert!(token.len() >= 24);
    let line = out
        .lines()
        .find(|l| l.contains("internal_token"))
        .unwrap_or_else(|| panic!("{out}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let internal = v["internal_token"].as_str().unwrap();
    assert!(internal.len() >= 24 && internal != token);
}

/// `promo-service healthcheck`, the container health check: reads the listen address from the
/// same flag and environment as the service (0.0.0.0 meaning loopback), needs none of the
/// service's other settings, prints one line and exits 0 when SERVING, 1 otherwise.
#[tokio::test]
async fn healthcheck_subcommand_asks_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}/p.db", dir.path().display());
    let port = free_port();
    let mut child = start(&sqlite, port);
    wait_serving(port).await;
    let healthcheck = |args: &[&str], env: Option<String>| {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().args(args);
        if let Some(addr) = env {
            cmd.env("PROMO_SERVICE_ADDR", addr);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
        (out.status.code(), stdout)
    };
    let (code, line) = healthcheck(&["healthcheck"], Some(format!("0.0.0.0:{port}")));
    assert_eq!(code, Some(0), "{line}");
    assert!(
        line.starts_with("promo-service healthcheck: ok: SERVING at 127.0.0.1:"),
        "{line}"
    );
    // The flag works before or after the subcommand.
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(
        healthcheck(&["--listen", &addr, "healthcheck"], None).0,
        Some(0)
    );
    assert_eq!(
        healthcheck(&["healthcheck", "--listen", &addr], None).0,
        Some(0)
    );

    // Nothing listens there: 1, quickly.
    let dead = free_port();
    let started = std::time::Instant::now();
    let (code, line) = healthcheck(&["healthcheck"], Some(format!("127.0.0.1:{dead}")));
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("failed") && line.contains("unreachable"),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    child.kill().unwrap();
    child.wait().unwrap();
}

/// PostgreSQL unreachable at start: the process exits (non-zero) within seconds, naming the
/// database — the container's restart policy starts it again, until the database is up.
#[tokio::test]
async fn unreachable_postgres_at_start_exits_quickly_with_a_clear_error() {
    let port = free_port();
    let dead_db = free_port();
    let started = std::time::Instant::now();
    let e = run_expecting_failure(&[
        (
            "DATABASE_URL",
            &format!("postgres://postgres@127.0.0.1:{dead_db}/promo"),
        ),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
        ("INTERNAL_TOKEN", INTERNAL_TOKEN),
        ("PUBLIC_URL", PUBLIC_URL),
        ("PROMO_SERVICE_ADDR", &format!("127.0.0.1:{port}")),
    ]);
    let took = started.elapsed();
    assert!(
        e.contains(&format!(
            "cannot connect to postgres://postgres@127.0.0.1:{dead_db}/promo"
        )),
        "{e}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    eprintln!(
        "exited {took:?} after start: {}",
        e.lines().last().unwrap_or("")
    );
}
