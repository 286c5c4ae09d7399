//! The README's run command, as a user would: start it with no configuration, use the landing
//! page, sign up, call the OpenAI-compatible API, press Ctrl-C, and check that everything stopped.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_iafactory-local");

fn field<'a>(banner: &'a str, label: &str) -> &'a str {
    let line = banner
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no {label} in {banner}"));
    line.trim_start()[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_command_runs_everything_and_ctrl_c_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--http-port", "0", "--promo-port", "0", "--llm-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            text.push_str(&line);
            text.push('\n');
            if line.contains("Ctrl-C") {
                break;
            }
        }
        text
    })
    .await
    .unwrap();
    let landing = field(&banner, "landing page").to_owned();
    let base = landing.trim_end_matches("/api-packages/").to_owned();
    let promo = field(&banner, "promo-service")
        .trim_start_matches("grpc://")
        .to_owned();
    let llm = field(&banner, "llm-gateway")
        .trim_start_matches("grpc://")
        .to_owned();
    let token = field(&banner, "admin token").to_owned();
    assert!(token.len() >= 24, "{banner}");
    assert!(
        dir.path().join("data/promo.db").exists(),
        "SQLite files go to ./data"
    );

    let http = reqwest::Client::new();
    let page = http.get(&landing).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("LAUNCH30"));

    let signup = http
        .post(format!("{base}/api/promo/signup"))
        .json(&serde_json::json!({"email": "local@run.dz", "package": "dev", "promo_code": "LAUNCH30"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let signup: serde_json::Value = signup.json().await.unwrap();
    assert_eq!(signup["price_dzd"], 10_050);
    let key = signup["api_key"].as_str().unwrap().to_owned();

    let chat = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "Salut"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), 200);
    assert_eq!(
        chat.headers()["x-iaf-provider"],
        "mock",
        "offline mock provider without keys"
    );
    let chat: serde_json::Value = chat.json().await.unwrap();
    assert!(
        chat["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("mock")
    );

    let stats = http
        .get(format!("{base}/api/promo/stats"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200, "the printed admin token works");

    // The services' internal token (generated once, given to all three) opens the internal
    // calls: the chat above checked its key with it; provider status reads with it.
    let status = http
        .get(format!("{base}/api/platform/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200, "public status without any credential");
    let providers = http
        .get(format!("{base}/api/gateway/providers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(providers.status(), 200);

    // Ctrl-C stops all three, cleanly.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    for addr in [base.trim_start_matches("http://").to_owned(), promo, llm] {
        let refused = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&addr),
        )
        .await;
        assert!(
            matches!(refused, Ok(Err(_))),
            "{addr} still accepts connections"
        );
    }
}
