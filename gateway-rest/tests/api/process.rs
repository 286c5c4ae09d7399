//! The `gateway-rest` binary: configuration from the environment, start without backends,
//! graceful exit on SIGTERM, and a clear refusal of a bad setting.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_gateway-rest");

async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_starts_without_backends_and_stops_on_sigterm() {
    let port = free_port().await;
    let mut child = tokio::process::Command::new(BIN)
        .env("GATEWAY_REST_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMO_SERVICE_URL", dead_url().await)
        .env("LLM_GATEWAY_URL", dead_url().await)
        .env("CORS_ORIGINS", "https://iafactory.dz,http://localhost:3000")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut health = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(&url).send().await {
            health = Some(Answer::of(r).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let health = health.expect("the binary did not listen");
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "degraded");
    let promo = Answer::of(
        http.get(format!("http://127.0.0.1:{port}/api/promo/health"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    promo.assert_error(503, "unavailable");

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_refuses_a_bad_setting_and_names_it() {
    let out = tokio::process::Command::new(BIN)
        .env("GATEWAY_REST_ADDR", "127.0.0.1:0")
        .env("CORS_ORIGINS", "not an origin")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CORS_ORIGINS"), "{stderr}");
    let out = tokio::process::Command::new(BIN)
        .env("GATEWAY_REST_ADDR", "127.0.0.1:0")
        .env("ADMIN_TOKEN", "short")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ADMIN_TOKEN"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_copied_far_from_the_sources_serves_the_landing_page() {
    // The binary alone, in a folder of its own, started from there: the page is built in.
    let far = tempfile::tempdir().unwrap();
    let bin = far.path().join("gateway-rest");
    std::fs::copy(BIN, &bin).unwrap();
    let port = free_port().await;
    let _child = tokio::process::Command::new(&bin)
        .current_dir(far.path())
        .env_remove("STATIC_DIR")
        .env("GATEWAY_REST_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMO_SERVICE_URL", dead_url().await)
        .env("LLM_GATEWAY_URL", dead_url().await)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api-packages/");
    let mut page = None;
    for _ in 0..200 {
        if let Ok(r) = http.get(&base).send().await {
            page = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let page = page.expect("the binary did not listen");
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    let etag = page.headers()["etag"].clone();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("LAUNCH30"),
        "not the landing page: {html:.200}"
    );
    for (file, kind) in [("app.js", "javascript"), ("styles.css", "text/css")] {
        let r = http.get(format!("{base}{file}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{file}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.contains(kind), "{file}: {ct}");
    }
    // Revalidation: the browser's copy is still good.
    let again = http
        .get(&base)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = http.get(format!("{base}nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_dir_that_does_not_exist_stops_the_start() {
    let out = tokio::process::Command::new(BIN)
        .env("GATEWAY_REST_ADDR", "127.0.0.1:0")
        .env("STATIC_DIR", "/nonexistent/landing")
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("STATIC_DIR"), "{stderr}");
}

/// `gateway-rest healthcheck <env>`: exit code and the line printed.
async fn healthcheck(addr: String) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(BIN)
        .arg("healthcheck")
        .env_clear()
        .env("GATEWAY_REST_ADDR", addr)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
    (out.status.code(), stdout)
}

/// `gateway-rest healthcheck`, the container health check: `GET /readyz` on the address of
/// `--listen` / `GATEWAY_REST_ADDR` (0.0.0.0 meaning loopback); exit 0 when ready, 1 when a
/// backend is not (503) or nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_subcommand_asks_readyz() {
    let l = crate::llm::LlmStack::spawn().await;
    let port = l.stack.gw.base.rsplit(':').next().unwrap().to_owned();
    let mut last = (None, String::new());
    for _ in 0..100 {
        last = healthcheck(format!("0.0.0.0:{port}")).await;
        if last.0 == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, Some(0), "{}", last.1);
    assert!(
        last.1
            .starts_with("gateway-rest healthcheck: ok: 200 OK from 127.0.0.1:"),
        "{}",
        last.1
    );
    l.stop().await;

    // A gateway whose backends are down: 503, exit 1, the reason on the line.
    let s = Stack::spawn().await;
    let port = s.gw.base.rsplit(':').next().unwrap().to_owned();
    let (code, line) = healthcheck(format!("127.0.0.1:{port}")).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("503") && line.contains("llm-gateway"),
        "{line}"
    );

    // Nothing listens there.
    let (code, line) = healthcheck(dead_url().await.replace("http://", "")).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(line.contains("unreachable"), "{line}");
}
