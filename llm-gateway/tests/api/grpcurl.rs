//! Operators use grpcurl with reflection and health checks, no proto files at hand.

use std::process::Command;

use crate::helpers::*;

fn grpcurl(args: Vec<String>) -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/grpcurl");
    let bin = if std::path::Path::new(venv).exists() {
        venv
    } else {
        "grpcurl"
    };
    let out = Command::new(bin)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("grpcurl not found ({e}): run scripts/test-setup.sh"));
    assert!(
        out.status.success(),
        "grpcurl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn run(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || grpcurl(args))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_checks_health_and_chats() {
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    // No provider key: the offline mock answers.
    let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
    let gw = Gw::start(config(&db, &promo, catalog)).await;
    let addr = gw.handle.addr.to_string();

    let list = run(&["-plaintext", &addr, "list"]).await;
    assert!(list.contains("iafactory.llm.v1.LlmGateway"), "{list}");
    assert!(list.contains("grpc.health.v1.Health"), "{list}");
    let desc = run(&[
        "-plaintext",
        &addr,
        "describe",
        "iafactory.llm.v1.LlmGateway",
    ])
    .await;
    assert!(desc.contains("rpc ChatStream"), "{desc}");
    let health = run(&["-plaintext", &addr, "grpc.health.v1.Health/Check"]).await;
    assert!(health.contains("SERVING"), "{health}");
    let auth = format!("authorization: Bearer {key}");
    let chat = run(&[
        "-plaintext",
        "-H",
        &auth,
        "-d",
        r#"{"model":"gpt-4o-mini","messages":[{"role":"ROLE_USER","content":"Bonjour"}]}"#,
        &addr,
        "iafactory.llm.v1.LlmGateway/Chat",
    ])
    .await;
    assert!(chat.contains("\"provider\": \"mock\""), "{chat}");
    let usage = run(&[
        "-plaintext",
        "-H",
        &auth,
        &addr,
        "iafactory.llm.v1.LlmGateway/GetUsage",
    ])
    .await;
    assert!(usage.contains("\"requests\": \"1\""), "{usage}");
    gw.stop().await;
    promo.stop().await;
}
