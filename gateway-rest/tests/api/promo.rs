//! The `/api/promo/*` contract end to end: field names and values as in PRODUCT.md.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_remaining_and_validate_follow_the_contract() {
    let s = Stack::spawn().await;

    let h = s.get("/api/promo/health").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(
        h.body,
        json!({"status": "healthy", "promo_codes_active": 1, "total_clients": 0})
    );

    let r = s.get("/api/promo/launch30/remaining").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(r.body["code"], "LAUNCH30");
    assert_eq!(r.body["remaining"], 30);
    assert_eq!(r.body["total"], 30);
    assert_eq!(r.body["percent_filled"], 0.0);

    let v = s
        .post(
            "/api/promo/validate",
            json!({"code": "LAUNCH30", "package": "dev"}),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{v:?}");
    assert_eq!(v.body["valid"], true);
    assert_eq!(v.body["discount_percent"], 33);
    assert_eq!(v.body["duration_months"], 6);
    assert_eq!(v.body["message"], "Réduction de 33% pendant 6 mois !");
    assert!(v.body.get("reason").is_none());

    // Without a package: the best discount. Case-insensitive.
    let v = s
        .post("/api/promo/validate", json!({"code": "launch30"}))
        .await;
    assert_eq!(v.body["valid"], true, "{v:?}");

    // A refused code is data: 200, valid false, a reason without prefix, a French message.
    let v = s
        .post(
            "/api/promo/validate",
            json!({"code": "NOPE2026", "package": "dev"}),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{v:?}");
    assert_eq!(v.body["valid"], false);
    assert_eq!(v.body["reason"], "unknown");
    assert!(v.body["message"].as_str().is_some_and(|m| !m.is_empty()));

    let p = s.get("/api/promo/packages").await;
    assert_eq!(p.status, StatusCode::OK);
    let ids: Vec<&str> = p.body["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["starter", "dev", "business", "premium"]);
    assert_eq!(p.body["packages"][1]["monthly_price_dzd"], 15000);

    let u = s.get("/api/promo/GHOST/remaining").await;
    u.assert_error(404, "promo_unknown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_returns_201_and_shows_in_stats() {
    let s = Stack::spawn().await;
    let a = s.signup("  A@B.dz ", "starter", "launch30").await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let b = &a.body;
    assert_eq!(b["success"], true);
    assert!(b["user_id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(b["package"], "starter");
    assert_eq!(b["base_price_dzd"], 10000);
    assert_eq!(b["price_dzd"], 7500);
    assert_eq!(b["discount_percent"], 25);
    assert!(b["discount_ends_at"].as_str().unwrap().starts_with("20"));
    assert!(b["api_key"].as_str().unwrap().starts_with("iaf_"));
    assert_eq!(b["email"], "a@b.dz");

    let r = s.get("/api/promo/LAUNCH30/remaining").await;
    assert_eq!(r.body["remaining"], 29);
    assert_eq!(r.body["percent_filled"], 3.3);

    let st = s.stats().await;
    assert_eq!(st["total_signups"], 1);
    assert_eq!(st["launch30_used"], 1);
    assert_eq!(st["launch30_remaining"], 29);
    assert_eq!(st["revenue_monthly_dzd"], 7500);
    assert_eq!(st["breakdown"], json!({"starter": 1}));
    assert_eq!(st["clients"], json!(["a@b.dz"]));
    assert_eq!(st["codes"][0]["code"], "LAUNCH30");
    assert_eq!(st["codes"][0]["used"], 1);

    let h = s.get("/api/promo/health").await;
    assert_eq!(h.body["total_clients"], 1);

    // One account per e-mail: 409 with the stable code. No place consumed.
    s.signup("a@b.dz", "dev", "LAUNCH30")
        .await
        .assert_error(409, "email_taken");
    // Without a code: full price, no discount end.
    let c = s.signup("c@b.dz", "dev", "").await;
    assert_eq!(c.status, StatusCode::CREATED, "{c:?}");
    assert_eq!(c.body["price_dzd"], 15000);
    assert_eq!(c.body["discount_ends_at"], serde_json::Value::Null);
    assert_eq!(s.stats().await["launch30_used"], 1);

    // Admin list of signups, newest first, without any key.
    let list = s.admin_get("/api/promo/signups?page_size=1").await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    assert_eq!(list.body["total"], 2);
    assert_eq!(list.body["signups"][0]["email"], "c@b.dz");
    assert!(list.body["next_page_token"].is_string());
    assert!(!list.text.contains(a.body["api_key"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_is_passed_through() {
    let s = Stack::spawn().await;
    let send = |key: &'static str, email: &'static str| {
        s.gw.request(Method::POST, "/api/promo/signup")
            .header("Idempotency-Key", key)
            .json(&json!({"email": email, "package": "dev", "promo_code": "LAUNCH30"}))
            .send()
    };
    let first = Answer::of(send("key-0001-abcdef", "idem@x.dz").await.unwrap()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{first:?}");
    let again = Answer::of(send("key-0001-abcdef", "idem@x.dz").await.unwrap()).await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
    assert_eq!(again.body["user_id"], first.body["user_id"]);
    assert_eq!(again.body["api_key"], first.body["api_key"]);
    // The same key with another body is refused, and writes nothing.
    Answer::of(send("key-0001-abcdef", "other@x.dz").await.unwrap())
        .await
        .assert_error(400, "idempotency_key_reused");
    let st = s.stats().await;
    assert_eq!(st["total_signups"], 1);
    assert_eq!(st["launch30_used"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_code_management() {
    let s = Stack::spawn().await;
    // No token / wrong token: 401 from promo-service, through the gateway.
    s.get("/api/promo/stats")
        .await
        .assert_error(401, "unauthenticated");
    s.get("/api/promo/codes")
        .await
        .assert_error(401, "unauthenticated");
    let wrong = Answer::of(
        s.gw.request(Method::GET, "/api/promo/codes")
            .bearer_auth("not-the-token-at-all")
            .send()
            .await
            .unwrap(),
    )
    .await;
    wrong.assert_error(401, "unauthenticated");

    let create = |body: serde_json::Value| {
        s.gw.request(Method::POST, "/api/promo/codes")
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let c = Answer::of(
        create(json!({
            "code": "solo1", "description": "one place", "max_redemptions": 1,
            "duration_months": 3, "discounts": {"dev": 10, "starter": 5}
        }))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(c.status, StatusCode::CREATED, "{c:?}");
    assert_eq!(c.body["code"], "SOLO1");
    assert_eq!(c.body["max_redemptions"], 1);
    assert_eq!(c.body["remaining"], 1);
    assert_eq!(c.body["discounts"], json!({"dev": 10, "starter": 5}));
    // Again: 409.
    Answer::of(
        create(json!({"code": "SOLO1", "duration_months": 3, "discounts": {"dev": 10}}))
            .await
            .unwrap(),
    )
    .await
    .assert_error(409, "already_exists");
    // A discount on an unknown package: 400.
    Answer::of(
        create(json!({"code": "BADPKG", "duration_months": 3, "discounts": {"gold": 10}}))
            .await
            .unwrap(),
    )
    .await
    .assert_error(400, "unknown_package");

    let list = s.admin_get("/api/promo/codes").await;
    assert_eq!(list.body["codes"].as_array().unwrap().len(), 2, "{list:?}");

    // Exhausted after one signup; validate says why, signup refuses with the stable code.
    let ok = s.signup("solo@x.dz", "dev", "solo1").await;
    assert_eq!(ok.status, StatusCode::CREATED, "{ok:?}");
    assert_eq!(ok.body["discount_percent"], 10);
    let v = s
        .post(
            "/api/promo/validate",
            json!({"code": "SOLO1", "package": "dev"}),
        )
        .await;
    assert_eq!(
        (v.body["valid"].clone(), v.body["reason"].clone()),
        (json!(false), json!("exhausted"))
    );
    s.signup("solo2@x.dz", "dev", "SOLO1")
        .await
        .assert_error(409, "promo_exhausted");
    let v = s
        .post(
            "/api/promo/validate",
            json!({"code": "LAUNCH30", "package": "nope"}),
        )
        .await;
    v.assert_error(400, "unknown_package");

    // PATCH: raise the limit, then deactivate.
    let patch = |body: serde_json::Value| {
        s.gw.request(Method::PATCH, "/api/promo/codes/solo1")
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let p = Answer::of(patch(json!({"max_redemptions": 2})).await.unwrap()).await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert_eq!(p.body["remaining"], 1);
    Answer::of(patch(json!({"max_redemptions": 0})).await.unwrap())
        .await
        .assert_error(400, "invalid_argument");
    // Discounts merge: a package added keeps the others; `null` removes one; the last one stays.
    let p = Answer::of(patch(json!({"discounts": {"premium": 40}})).await.unwrap()).await;
    assert_eq!(
        p.body["discounts"],
        json!({"dev": 10, "premium": 40, "starter": 5}),
        "{p:?}"
    );
    let p = Answer::of(patch(json!({"discounts": {"dev": null}})).await.unwrap()).await;
    assert_eq!(
        p.body["discounts"],
        json!({"premium": 40, "starter": 5}),
        "{p:?}"
    );
    Answer::of(patch(json!({"discounts": {"dev": null}})).await.unwrap())
        .await
        .assert_error(400, "invalid_argument");
    Answer::of(
        patch(json!({"discounts": {"premium": null, "starter": null}}))
            .await
            .unwrap(),
    )
    .await
    .assert_error(400, "invalid_argument");
    let p = Answer::of(patch(json!({"active": false})).await.unwrap()).await;
    assert_eq!(p.body["active"], false, "{p:?}");
    assert_eq!(
        p.body["discounts"],
        json!({"premium": 40, "starter": 5}),
        "{p:?}"
    );
    let v = s
        .post(
            "/api/promo/validate",
            json!({"code": "solo1", "package": "dev"}),
        )
        .await;
    assert_eq!(v.body["reason"], "inactive", "{v:?}");
    Answer::of(
        s.gw.request(Method::PATCH, "/api/promo/codes/GHOST")
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"active": true}))
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(404, "not_found");

    // Revoking a key.
    let user = ok.body["user_id"].as_str().unwrap().to_owned();
    let revoke = || {
        s.gw.request(
            Method::POST,
            &format!("/api/promo/signups/{user}/revoke-key"),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
    };
    let r = Answer::of(revoke().await.unwrap()).await;
    assert_eq!(r.body, json!({"revoked": true}), "{r:?}");
    let r = Answer::of(revoke().await.unwrap()).await;
    assert_eq!(r.body, json!({"revoked": false}), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_is_listed_and_retried_by_the_operator() {
    let s = Stack::spawn().await;
    let ok = s.signup("mail@x.dz", "dev", "LAUNCH30").await;
    assert_eq!(ok.status, StatusCode::CREATED, "{ok:?}");
    // No SMTP relay in this stack: the confirmation waits in the outbox.
    let list = s.admin_get("/api/promo/outbox?status=pending").await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    let messages = list.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(
        (m["kind"].as_str(), m["recipient"].as_str()),
        (Some("customer_confirmation"), Some("mail@x.dz"))
    );
    assert_eq!(
        (m["status"].as_str(), m["attempts"].as_u64()),
        (Some("pending"), Some(0))
    );
    assert_eq!(m["user_id"], ok.body["user_id"]);
    assert_eq!(
        s.admin_get("/api/promo/outbox?status=dead").await.body,
        json!({"messages": []})
    );
    s.admin_get("/api/promo/outbox?status=lost")
        .await
        .assert_error(400, "invalid_argument");
    s.get("/api/promo/outbox")
        .await
        .assert_error(401, "unauthenticated");

    let id = m["id"].as_str().unwrap().to_owned();
    let retry = |id: String, token: Option<&'static str>| {
        let mut r =
            s.gw.request(Method::POST, &format!("/api/promo/outbox/{id}/retry"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let r = Answer::of(retry(id.clone(), Some(ADMIN_TOKEN)).await.unwrap()).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_eq!(
        (r.body["id"].as_str(), r.body["status"].as_str()),
        (Some(id.as_str()), Some("pending"))
    );
    Answer::of(retry("msg_nope".into(), Some(ADMIN_TOKEN)).await.unwrap())
        .await
        .assert_error(404, "not_found");
    Answer::of(retry(id, None).await.unwrap())
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_is_down_answers_503_with_retry_after() {
    // gateway-rest starts although neither backend exists.
    let gw = gateway_rest_with_dead_backends().await;
    let started = std::time::Instant::now();
    let a = Answer::of(
        gw.request(Method::GET, "/api/promo/health")
            .send()
            .await
            .unwrap(),
    )
    .await;
    a.assert_error(503, "unavailable");
    assert!(a.header("retry-after").is_some(), "{a:?}");
    // The message names no host or port.
    assert!(!a.text.contains("127.0.0.1"), "{a:?}");
    let v = Answer::of(
        gw.request(Method::POST, "/api/promo/validate")
            .json(&json!({"code": "LAUNCH30"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    v.assert_error(503, "unavailable");
    let m = Answer::of(gw.request(Method::GET, "/v1/models").send().await.unwrap()).await;
    m.assert_error(503, "unavailable");
    assert_eq!(m.body["error"]["type"], "api_error");
    // Not hanging (generous bound; the connect timeout is 1 s).
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    gw.stop().await.unwrap();
}

async fn gateway_rest_with_dead_backends() -> Gateway {
    let config = gateway_rest::Config::new(dead_url().await, dead_url().await);
    Gateway::spawn(config).await
}

/// A backend that accepts connections but never speaks: the call ends at the time limit with a
/// JSON error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_never_answers_is_cut_at_the_time_limit() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    // Accept and hold connections without a byte of HTTP/2.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            held.push(sock);
        }
    });
    let mut config = gateway_rest::Config::new(silent_url, dead_url().await);
    config.request_timeout = std::time::Duration::from_millis(800);
    let gw = Gateway::spawn(config).await;
    let started = std::time::Instant::now();
    let a = Answer::of(
        gw.request(Method::GET, "/api/promo/LAUNCH30/remaining")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(matches!(a.error_code(), "timeout" | "unavailable"), "{a:?}");
    assert!(matches!(a.status.as_u16(), 503 | 504), "{a:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    gw.stop().await.unwrap();
    holder.abort();
}
