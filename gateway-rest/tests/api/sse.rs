//! The live counter as server-sent events.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};

use crate::helpers::*;

/// Reads SSE events (`event:` name and `data:` payload) from a byte stream.
pub(crate) struct Events<S> {
    stream: S,
    buf: String,
}

impl<S, E> Events<S>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Debug,
{
    pub(crate) fn new(stream: S) -> Self {
        Events {
            stream,
            buf: String::new(),
        }
    }

    /// The next event with data (comments and keep-alives skipped), or None at the end.
    pub(crate) async fn next(&mut self) -> Option<(String, String)> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = String::new();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    }
                }
                if !data.is_empty() {
                    return Some((name, data.join("\n")));
                }
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Some(Err(e)) => panic!("stream error: {e:?}"),
                None => return None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_stream_pushes_each_change_and_ends_cleanly() {
    let s = Stack::spawn_with(|c| c.sse_keep_alive = Duration::from_millis(200)).await;
    let resp =
        s.gw.request(Method::GET, "/api/promo/launch30/remaining/stream")
            .send()
            .await
            .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut events = Events::new(resp.bytes_stream());
    let (name, data) = events.next().await.unwrap();
    assert_eq!(name, "remaining");
    let first: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(first["code"], "LAUNCH30");
    assert_eq!(first["remaining"], 30);
    assert_eq!(first["total"], 30);

    for (i, expected) in [29, 28].into_iter().enumerate() {
        let a = s.signup(&format!("live{i}@x.dz"), "dev", "LAUNCH30").await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
        let (_, data) = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("no event after a signup")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["remaining"], expected);
        assert_eq!(v["percent_filled"], if expected == 29 { 3.3 } else { 6.7 });
    }

    // Unknown code: a plain JSON 404, not an event stream.
    s.get("/api/promo/GHOST/remaining/stream")
        .await
        .assert_error(404, "promo_unknown");

    // The client going away ends the stream: the open-stream gauge goes back down.
    assert!(
        s.get("/metrics")
            .await
            .text
            .contains("iaf_http_event_streams_open 1")
    );
    drop(events);
    let mut closed = false;
    for _ in 0..100 {
        if s.get("/metrics")
            .await
            .text
            .contains("iaf_http_event_streams_open 0")
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "the stream outlived its client");
    // Shutdown is not held up by open streams.
    let second =
        s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining/stream")
            .send()
            .await
            .unwrap();
    let mut second = Events::new(second.bytes_stream());
    assert!(second.next().await.is_some());
    let Stack { gw, promo } = s;
    tokio::time::timeout(Duration::from_secs(10), gw.stop())
        .await
        .expect("open event stream held the shutdown")
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), second.next())
        .await
        .expect("stream not ended by shutdown");
    assert!(end.is_none());
    drop(promo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_event_streams_are_capped() {
    let s = Stack::spawn_with(|c| c.max_event_streams = 2).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let r =
            s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining/stream")
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let mut events = Events::new(r.bytes_stream());
        assert!(events.next().await.is_some());
        open.push(events);
    }
    let refused = s.get("/api/promo/LAUNCH30/remaining/stream").await;
    refused.assert_error(503, "unavailable");
    assert!(refused.header("retry-after").is_some());
    // Other routes are unaffected.
    assert_eq!(s.get("/api/promo/LAUNCH30/remaining").await.status, 200);
    drop(open);
    let mut reopened = false;
    for _ in 0..100 {
        let r =
            s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining/stream")
                .send()
                .await
                .unwrap();
        if r.status() == StatusCode::OK {
            reopened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reopened);
}
