//! Crowds and idle sockets at the edge: thousands of browsers watching the live counter while
//! signups race for the last places, thousands of connections that send nothing, and the cap on
//! open connections. Raw TCP clients on loopback, bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// The gateway's address (`host:port`) from its base URL.
fn addr(s: &Stack) -> String {
    s.gw.base.trim_start_matches("http://").to_owned()
}

/// One browser watching the counter: opens the event stream and reads until it sees the count
/// reach 0. Counts itself in `opened` at its first event; returns whether it saw 0 in time.
async fn viewer(addr: String, opened: Arc<AtomicUsize>, deadline: Instant) -> Result<(), String> {
    let mut tcp = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    tcp.write_all(
        b"GET /api/promo/LAUNCH30/remaining/stream HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut counted = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, tcp.read(&mut buf)).await {
            Ok(Ok(0)) => return Err("stream closed before the count reached 0".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("deadline passed".into()),
        };
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if !counted {
            if !text.starts_with("HTTP/1.1 200") {
                if text.contains("\r\n\r\n") {
                    return Err(format!("refused: {}", text.lines().next().unwrap_or("")));
                }
                continue;
            }
            if text.contains("event: remaining") {
                counted = true;
                opened.fetch_add(1, Ordering::Relaxed);
            }
        }
        if text.contains("\"remaining\":0,") {
            return Ok(());
        }
        // Keep only the tail: the marker cannot span more than one event.
        if seen.len() > 64 * 1024 {
            seen.drain(..seen.len() - 4096);
        }
    }
}

async fn a_crowd_watches_while_signups_race(s: Stack, viewers: usize) {
    iafactory::net::raise_open_files_limit();
    let s = Arc::new(s);
    let opened = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(120);
    // They all arrive at once, as after a launch e-mail: the code is cold.
    let crowd: Vec<_> = (0..viewers)
        .map(|_| tokio::spawn(viewer(addr(&s), opened.clone(), deadline)))
        .collect();
    while opened.load(Ordering::Relaxed) < viewers {
        assert!(
            Instant::now() < deadline,
            "only {} of {viewers} viewers got the counter",
            opened.load(Ordering::Relaxed)
        );
        if crowd.iter().any(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Meanwhile, 300 signups race for the 30 places: every one answered properly.
    let n = 300;
    let signups: Vec<_> = (0..n)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let a = s
                    .signup(&format!("crowd{i}@x.dz"), "starter", "LAUNCH30")
                    .await;
                (a.status, a.error_code().to_owned())
            })
        })
        .collect();
    let (mut granted, mut exhausted) = (0, 0);
    for t in signups {
        match t.await.unwrap() {
            (StatusCode::CREATED, _) => granted += 1,
            (StatusCode::CONFLICT, code) if code == "promo_exhausted" => exhausted += 1,
            other => panic!("a signup was disturbed by the crowd: {other:?}"),
        }
    }
    assert_eq!((granted, exhausted), (30, n - 30));

    // Every viewer saw the count reach 0.
    let mut failures = Vec::new();
    for t in crowd {
        if let Err(e) = t.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {viewers} viewers failed, first: {:?}",
        failures.len(),
        failures.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_viewers_and_a_signup_race_sqlite() {
    a_crowd_watches_while_signups_race(Stack::spawn().await, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_thousand_viewers_and_a_signup_race_postgres() {
    a_crowd_watches_while_signups_race(Stack::spawn_postgres().await, 2000).await;
}

/// Reads until the peer closes the connection; returns what it sent, or `None` when it stayed
/// open past `within`.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_idle_sockets_are_closed_and_healthz_keeps_answering() {
    iafactory::net::raise_open_files_limit();
    let s = Stack::spawn_with(|c| {
        c.header_read_timeout = Duration::from_secs(2);
        c.idle_timeout = Duration::from_secs(3);
    })
    .await;
    let gw = addr(&s);

    // /healthz is asked every 100 ms throughout, on fresh connections.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = {
        let stop = stop.clone();
        let url = s.gw.url("/healthz");
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = http.get(&url).send().await;
                match r {
                    Ok(r) if r.status() == StatusCode::OK => answered += 1,
                    other => panic!("/healthz stopped answering: {other:?}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answered
        })
    };

    // 5 000 sockets: silent ones, partial HTTP/2 prefaces, partial HTTP/1 heads, and keep-alive
    // connections left idle after one answered request.
    let started = Instant::now();
    let mut sockets = Vec::new();
    for i in 0..5000 {
        let mut tcp = TcpStream::connect(&gw).await.unwrap();
        let kind = i % 4;
        match kind {
            0 => {}
            1 => tcp.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap(),
            2 => tcp
                .write_all(b"GET /healthz HTTP/1.1\r\nhost:")
                .await
                .unwrap(),
            _ => {
                tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                    .await
                    .unwrap();
            }
        }
        sockets.push((kind, tcp));
    }
    let opened_in = started.elapsed();

    // Every one is closed by the server: the first-request ones after 2 s, the idle keep-alive
    // ones 3 s after their answer; allow the time it took to open them all, plus slack.
    let within = opened_in + Duration::from_secs(10);
    let checks: Vec<_> = sockets
        .into_iter()
        .map(|(kind, mut tcp)| {
            tokio::spawn(async move { (kind, closed_within(&mut tcp, within).await) })
        })
        .collect();
    let mut answered_before_close = 0;
    for c in checks {
        let (kind, closed) = c.await.unwrap();
        let got = closed.unwrap_or_else(|| panic!("a socket of kind {kind} was never closed"));
        if kind == 3 {
            assert!(
                got.starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&got)
            );
            answered_before_close += 1;
        }
    }
    assert_eq!(answered_before_close, 1250);
    stop.store(true, Ordering::Relaxed);
    let answered = health.await.unwrap();
    assert!(answered > 10, "/healthz answered only {answered} times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_gets_a_clean_503() {
    let s = Stack::spawn_with(|c| c.max_connections = 20).await;
    let gw = addr(&s);
    // reqwest's pooled connection from the readiness check may hold a slot: fill what is left.
    let mut held = Vec::new();
    loop {
        let mut tcp = TcpStream::connect(&gw).await.unwrap();
        let mut probe = [0u8; 1];
        // A connection over the cap is answered at once; one within it hears nothing yet.
        match tokio::time::timeout(Duration::from_millis(200), tcp.peek(&mut probe)).await {
            Err(_) => held.push(tcp),
            Ok(_) => {
                let got = closed_within(&mut tcp, Duration::from_secs(5))
                    .await
                    .unwrap();
                let text = String::from_utf8_lossy(&got);
                assert!(text.starts_with("HTTP/1.1 503"), "{text}");
                assert!(text.contains("retry-after: 5"), "{text}");
                assert!(text.contains(r#""code":"unavailable""#), "{text}");
                break;
            }
        }
        assert!(
            held.len() <= 20,
            "the cap of 20 connections was not enforced"
        );
    }
    // Freed slots are taken again.
    held.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = s.get("/healthz").await;
    assert_eq!(a.status, StatusCode::OK);
}
