//! Per-IP rate limits on validate and signup, with shared state across connections.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;
use gateway_rest::ratelimit::RateSpec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_and_signup_are_limited_per_ip_across_connections() {
    let s = Stack::spawn_with(|c| {
        c.validate_rate = RateSpec::new(6, 3);
        c.signup_rate = RateSpec::new(2, 2);
        c.client_ip_header = Some(http::HeaderName::from_static("x-forwarded-for"));
    })
    .await;
    // Each request on a new connection: the limit must hold across connections.
    let fresh = || {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = fresh()
            .post(s.gw.url("/api/promo/validate"))
            .json(&json!({"code": "LAUNCH30"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let a = Answer::of(r).await;
            a.assert_error(429, "rate_limited");
            let wait: u64 = a.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{a:?}");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);

    // Another client address (behind the trusted proxy header) has its own bucket.
    let other = Answer::of(
        s.gw.request(Method::POST, "/api/promo/validate")
            .header("x-forwarded-for", "203.0.113.9")
            .json(&json!({"code": "LAUNCH30"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(other.status, StatusCode::OK, "{other:?}");

    // Signup: 2 then refused, and the refused one wrote nothing.
    for i in 0..2 {
        let a = s.signup(&format!("rl{i}@x.dz"), "starter", "").await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    }
    s.signup("rl9@x.dz", "starter", "")
        .await
        .assert_error(429, "rate_limited");
    assert_eq!(s.stats().await["total_signups"], 2);

    // Other routes are not limited.
    for _ in 0..10 {
        assert_eq!(s.get("/api/promo/LAUNCH30/remaining").await.status, 200);
    }
    let m = s.get("/metrics").await;
    assert!(
        m.text.contains("iaf_http_rate_limited_total 3"),
        "{}",
        m.text
    );
}
