//! The `llm-gateway` binary itself: starts with no provider key at all (the mock answers),
//! serves metrics, stops cleanly on SIGTERM; refuses a bad configuration with a message naming
//! the setting and a non-zero exit code, without panicking.

use std::process::Stdio;
use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use pb::llm_gateway_client::LlmGatewayClient;

use crate::helpers::{Promo, authed, chat_req, text_of};
use iafactory_testkit::upstream::{Upstream, openai_ok};

const KEY_VARS: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "GOOGLE_GENERATIVE_AI_API_KEY",
    "MISTRAL_API_KEY",
    "COHERE_API_KEY",
    "TOGETHER_API_KEY",
    "OPEN_ROUTER_API_KEY",
];

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn command(dir: &std::path::Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-gateway"));
    for v in KEY_VARS {
        cmd.env_remove(v);
    }
    cmd.env(
        "DATABASE_URL",
        format!("sqlite://{}/gw/llm.db", dir.display()),
    )
    .env("PROMO_SERVICE_URL", "http://127.0.0.1:9")
    .env("INTERNAL_TOKEN", crate::helpers::INTERNAL_TOKEN)
    .env("RUST_LOG", "warn")
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_starts_without_keys_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (free_port(), free_port());
    let mut child = command(dir.path())
        .env("LLM_GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("LLM_GATEWAY_METRICS_ADDR", format!("127.0.0.1:{mport}"))
        .spawn()
        .unwrap();
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = LlmGatewayClient::connect(format!("http://127.0.0.1:{port}")).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut client = client.expect("the binary listens");
    let p = client
        .list_providers(crate::helpers::internal(pb::ListProvidersRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(p.mock_active);
    assert!(
        p.providers
            .iter()
            .any(|p| p.name == "groq" && !p.configured)
    );
    let metrics = reqwest::get(format!("http://127.0.0.1:{mport}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("iaf_llm_circuit_state{provider=\"mock\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("iaf_grpc_requests_total"),
        "RED metrics of the gRPC layer"
    );

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("USAGE_FLUSH_MS", "0", "USAGE_FLUSH_MS"),
        ("DATABASE_URL", "mysql://h/db", "DATABASE_URL"),
        ("INTERNAL_TOKEN", "", "INTERNAL_TOKEN is not set"),
        ("INTERNAL_TOKEN", "short", "INTERNAL_TOKEN is too short"),
        ("GROQ_BASE_URL", "not a url", "GROQ_BASE_URL"),
        (
            "LLM_GATEWAY_CATALOG",
            "/nonexistent/catalog.toml",
            "LLM_GATEWAY_CATALOG",
        ),
    ];
    for (var, value, needle) in cases {
        let out = command(dir.path())
            .env("LLM_GATEWAY_ADDR", format!("127.0.0.1:{}", free_port()))
            .env(var, value)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(needle), "{var}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_a_keyless_self_hosted_provider_from_a_catalogue_file() {
    // An Ollama/vLLM-like endpoint: OpenAI wire format, no key.
    let up = Upstream::always(openai_ok("local answer", 3, 2)).await;
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("starter").await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[providers.ollama]\nkind = \"openai\"\nbase_url = \"{}\"\nrequires_key = false\n\n\
             [[models]]\nname = \"llama-3.3-70b\"\nroutes = [{{ provider = \"ollama\", model = \"llama3.3\", input_usd_per_mtok = 0, output_usd_per_mtok = 0 }}]\n",
            up.url("/v1")
        ),
    )
    .unwrap();
    let port = free_port();
    let mut child = command(dir.path())
        .env("LLM_GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .env("PROMO_SERVICE_URL", promo.url())
        .env("LLM_GATEWAY_CATALOG", &catalog)
        .spawn()
        .unwrap();
    let mut client = None;
    for _ in 0..200 {
        if let Ok(c) = LlmGatewayClient::connect(format!("http://127.0.0.1:{port}")).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let mut client = client.expect("the binary listens");
    let r = client
        .chat(authed(chat_req("llama-3.3-70b", "Salut"), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.provider, "ollama");
    assert_eq!(r.upstream_model, "llama3.3");
    assert_eq!(text_of(r.message.as_ref()), "local answer");
    assert_eq!(
        up.requests()[0].header("authorization"),
        None,
        "no key sent"
    );
    let p = client
        .list_providers(crate::helpers::internal(pb::ListProvidersRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(!p.mock_active, "a configured provider disables the mock");
    child.kill().await.unwrap();
    promo.stop().await;
}

/// `llm-gateway healthcheck`, the container health check: asks the running binary's
/// `grpc.health.v1` on the address of `--listen` / `LLM_GATEWAY_ADDR` (0.0.0.0 meaning loopback),
/// exit 0 when SERVING; 1 when nothing answers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_subcommand_asks_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = command(dir.path())
        .env("LLM_GATEWAY_ADDR", format!("127.0.0.1:{port}"))
        .spawn()
        .unwrap();
    let healthcheck = |addr: String| async move {
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
            .arg("healthcheck")
            .env_clear()
            .env("LLM_GATEWAY_ADDR", addr)
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(stdout.lines().count(), 1, "one line: {stdout:?}");
        (out.status.code(), stdout)
    };
    let mut last = (None, String::new());
    for _ in 0..200 {
        last = healthcheck(format!("0.0.0.0:{port}")).await;
        if last.0 == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last.0, Some(0), "{}", last.1);
    assert!(
        last.1
            .starts_with("llm-gateway healthcheck: ok: SERVING at 127.0.0.1:"),
        "{}",
        last.1
    );

    let (code, line) = healthcheck(format!("127.0.0.1:{}", free_port())).await;
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("failed") && line.contains("unreachable"),
        "{line}"
    );
    child.kill().await.unwrap();
}
