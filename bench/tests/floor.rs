//! The `floor` program carries what it stands for: a chat call reaches the upstream and its body
//! comes back; a promo read makes its gRPC call. Its figures are only a floor if it really makes
//! the platform's exchanges.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test support outside #[test] functions: a failed step stops the test"
)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iafactory_bench::load::{Http1, request};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn floor(args: &[&str]) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_floor"))
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Polls `path` until it answers (the two processes start in any order).
async fn answer(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&bytes::Bytes>,
) -> (u16, String) {
    for _ in 0..100 {
        if let Some((status, body)) = Http1::new(addr)
            .request(request(method, addr, path, body, None))
            .await
        {
            return (status, String::from_utf8_lossy(&body).into_owned());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr}{path} never answered");
}

#[tokio::test]
async fn the_floor_makes_the_platforms_exchanges() {
    let upstream = iafactory_bench::upstream::start().await.unwrap();
    let (grpc, edge) = (free_addr(), free_addr());
    let grpc_process = floor(&[
        "grpc",
        "--listen",
        &grpc.to_string(),
        "--upstream",
        &format!("http://{upstream}/v1/chat/completions"),
    ]);
    let _edge = floor(&[
        "edge",
        "--listen",
        &edge.to_string(),
        "--grpc",
        &format!("http://{grpc}"),
    ]);

    let (status, body) = answer(edge, "GET", "/api/promo/LAUNCH30/remaining", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, r#"{"code":"LAUNCH30","remaining":30,"total":30}"#);

    let chat = bytes::Bytes::from_static(
        br#"{"model":"llama-3.3-70b","messages":[{"role":"user","content":"Bonjour"}]}"#,
    );
    let (status, body) = answer(edge, "POST", "/v1/chat/completions", Some(&chat)).await;
    assert_eq!(status, 200, "{body}");
    // The upstream's completion, carried through the gRPC hop unchanged.
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Bonjour !");

    // Without its gRPC hop the edge has nothing to answer with.
    drop(grpc_process);
    let (status, _) = answer(edge, "GET", "/api/promo/LAUNCH30/remaining", None).await;
    assert_eq!(status, 502);
}
