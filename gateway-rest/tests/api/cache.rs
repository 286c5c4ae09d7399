//! The optional push-fed cache of `/remaining` (REMAINING_CACHE=true).

use std::time::{Duration, Instant};

use iafactory::proto::iafactory::promo::v1 as pb;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

async fn remaining(s: &Stack, code: &str) -> Answer {
    s.get(&format!("/api/promo/{code}/remaining")).await
}

/// Polls until `check` holds (the stream's pushes are asynchronous).
async fn eventually(s: &Stack, code: &str, check: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = remaining(s, code).await;
        if check(&a) || Instant::now() > deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_cache_is_fed_by_the_live_counter_and_reads_own_writes() {
    let s = Stack::spawn_with(|c| c.remaining_cache = true).await;
    let first = remaining(&s, "launch30").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["remaining"], 30);
    // Once the stream delivered its first message, polls are answered from memory.
    let hit = eventually(&s, "LAUNCH30", |a| a.header("x-iaf-cache") == Some("hit")).await;
    assert_eq!(hit.header("x-iaf-cache"), Some("hit"), "{hit:?}");
    assert_eq!(hit.body, first.body);
    assert_eq!(hit.header("content-type"), Some("application/json"));

    // A signup through this gateway is read back at once.
    let a = s.signup("cache1@x.dz", "dev", "LAUNCH30").await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    assert_eq!(remaining(&s, "Launch30").await.body["remaining"], 29);

    // A signup that bypasses this gateway arrives through the stream.
    let mut grpc = pb::promo_service_client::PromoServiceClient::connect(s.promo.url())
        .await
        .unwrap();
    grpc.signup(pb::SignupRequest {
        email: "cache2@x.dz".into(),
        package: "dev".into(),
        promo_code: "LAUNCH30".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let pushed = eventually(&s, "LAUNCH30", |a| {
        a.body["remaining"] == 28 && a.header("x-iaf-cache") == Some("hit")
    })
    .await;
    assert_eq!(pushed.body["remaining"], 28, "{pushed:?}");
    assert_eq!(pushed.body["percent_filled"], 6.7);

    // A limit changed through this gateway is read back at once.
    let p = Answer::of(
        s.gw.request(Method::PATCH, "/api/promo/codes/launch30")
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"max_redemptions": 40}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    let after = remaining(&s, "LAUNCH30").await;
    assert_eq!(
        (after.body["remaining"].clone(), after.body["total"].clone()),
        (json!(38), json!(40))
    );

    // Unknown codes are never cached.
    for _ in 0..3 {
        let u = remaining(&s, "GHOST").await;
        u.assert_error(404, "promo_unknown");
        assert!(u.header("x-iaf-cache").is_none());
    }

    // promo-service going away ends the stream: the cache stops answering and calls fail with
    // 503 (a call caught in promo-service's drain may end in 504 first), never a stale 200 after.
    let Stack { promo, gw } = s;
    drop(promo);
    let deadline = Instant::now() + Duration::from_secs(30);
    let last = loop {
        let a = Answer::of(
            gw.request(Method::GET, "/api/promo/LAUNCH30/remaining")
                .send()
                .await
                .unwrap(),
        )
        .await;
        if a.status == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    last.assert_error(503, "unavailable");
    for _ in 0..5 {
        let a = gw
            .request(Method::GET, "/api/promo/LAUNCH30/remaining")
            .send()
            .await
            .unwrap();
        assert_ne!(
            a.status(),
            StatusCode::OK,
            "stale answer after the stream ended"
        );
    }
    gw.stop().await.unwrap();
}

/// With the cache on, live counter streams of a watched code share one upstream stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_share_the_cached_counter() {
    use crate::sse::Events;
    let s = Stack::spawn_with(|c| c.remaining_cache = true).await;
    // Warm the cache.
    remaining(&s, "LAUNCH30").await;
    eventually(&s, "LAUNCH30", |a| a.header("x-iaf-cache") == Some("hit")).await;

    let mut streams = Vec::new();
    for _ in 0..3 {
        let r =
            s.gw.request(Method::GET, "/api/promo/launch30/remaining/stream")
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-iaf-cache"], "shared");
        let mut events = Events::new(r.bytes_stream());
        let (name, data) = events.next().await.unwrap();
        assert_eq!(name, "remaining");
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["remaining"], 30);
        streams.push(events);
    }
    let a = s.signup("shared@x.dz", "starter", "LAUNCH30").await;
    assert_eq!(a.status, StatusCode::CREATED);
    for events in &mut streams {
        let (_, data) = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("no event after a signup")
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["remaining"], 29);
    }
    // promo-service going away ends the shared streams (clients reconnect).
    let Stack { promo, gw } = s;
    drop(promo);
    for events in &mut streams {
        let end = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("shared stream outlived its source");
        assert!(end.is_none(), "{end:?}");
    }
    gw.stop().await.unwrap();
}
