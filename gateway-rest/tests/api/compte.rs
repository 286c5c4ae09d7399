//! The customer account through gateway-rest: the session cookie's flags, sign-in by link
//! (token read from promo-service's outbox, as no SMTP relay runs here), session fixation, CSRF
//! (missing token, another site's Origin), another customer's key, sign-out, package change and
//! the pages with their security headers. The rules themselves are tested on promo-service.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Row;

use crate::helpers::*;

/// The token of the newest sign-in link e-mailed to `email`.
async fn link_token(stack: &Stack, email: &str) -> String {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(stack.promo.db_url())
        .await
        .unwrap();
    let row = sqlx::query(
        "SELECT payload FROM outbox WHERE kind = 'sign_in_link' AND recipient = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(email)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let payload: String = row.try_get(0).unwrap();
    let v: Value = serde_json::from_str(&payload).unwrap();
    v["link"]
        .as_str()
        .unwrap()
        .split("#jeton=")
        .nth(1)
        .unwrap()
        .to_owned()
}

pub(crate) struct Session {
    pub(crate) cookie: String,
    pub(crate) csrf: String,
}

pub(crate) async fn call(
    stack: &Stack,
    method: Method,
    path: &str,
    session: Option<&Session>,
    csrf: bool,
    body: Option<Value>,
) -> Answer {
    let mut req = stack.gw.request(method, path);
    if let Some(s) = session {
        req = req.header("cookie", format!("iaf_session={}", s.cookie));
        if csrf {
            req = req.header("x-csrf-token", &s.csrf);
        }
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    Answer::of(req.send().await.unwrap()).await
}

/// The value of the session cookie a response sets, and the whole header.
fn set_cookie(a: &Answer) -> (String, String) {
    let header = a.header("set-cookie").expect("a session cookie").to_owned();
    let value = header
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("iaf_session=")
        .unwrap()
        .to_owned();
    (value, header)
}

pub(crate) async fn sign_in(
    stack: &Stack,
    email: &str,
    planted: Option<&str>,
    https: bool,
) -> (Session, String) {
    let a = stack
        .post("/api/compte/lien", json!({"email": email}))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{a:?}");
    let token = link_token(stack, email).await;
    let mut req = stack
        .gw
        .request(Method::POST, "/api/compte/session")
        .json(&json!({ "token": token }));
    if let Some(p) = planted {
        req = req.header("cookie", format!("iaf_session={p}"));
    }
    if https {
        req = req.header("x-forwarded-proto", "https");
    }
    let a = Answer::of(req.send().await.unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let (cookie, header) = set_cookie(&a);
    (
        Session {
            cookie,
            csrf: a.body["csrf_token"].as_str().unwrap().to_owned(),
        },
        header,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn account_through_the_edge() {
    let stack = Stack::spawn().await;
    let mine = stack.signup("moi@exemple.dz", "dev", "LAUNCH30").await;
    let other = stack.signup("autre@exemple.dz", "dev", "").await;
    assert_eq!(mine.status, StatusCode::CREATED);

    // Known and unknown addresses: the same answer.
    let known = stack
        .post("/api/compte/lien", json!({"email": "moi@exemple.dz"}))
        .await;
    let unknown = stack
        .post("/api/compte/lien", json!({"email": "inconnu@exemple.dz"}))
        .await;
    assert_eq!((known.status, &known.body), (unknown.status, &unknown.body));
    stack
        .post("/api/compte/lien", json!({"email": "pas une adresse"}))
        .await
        .assert_error(400, "invalid_email");
    stack
        .post("/api/compte/lien", json!({"email": "a@b.dz", "extra": 1}))
        .await
        .assert_error(400, "invalid_argument");

    // Fixation: a planted cookie never becomes the session; the cookie's flags.
    let planted = "A".repeat(43);
    let (me, header) = sign_in(&stack, "moi@exemple.dz", Some(&planted), false).await;
    assert_ne!(me.cookie, planted);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(header.contains(flag), "{header}");
    }
    assert!(!header.contains("Secure"), "plain HTTP: {header}");
    let planted_session = Session {
        cookie: planted,
        csrf: String::new(),
    };
    call(
        &stack,
        Method::GET,
        "/api/compte",
        Some(&planted_session),
        false,
        None,
    )
    .await
    .assert_error(401, "unauthenticated");
    let (_, https_header) = sign_in(&stack, "moi@exemple.dz", None, true).await;
    assert!(https_header.contains("; Secure"), "{https_header}");

    let acc = call(&stack, Method::GET, "/api/compte", Some(&me), false, None).await;
    assert_eq!(acc.status, StatusCode::OK, "{acc:?}");
    assert_eq!(acc.header("cache-control"), Some("no-store"));
    assert_eq!(acc.body["email"], "moi@exemple.dz");
    assert_eq!(acc.body["price_dzd"], 10_050);
    assert_eq!(acc.body["base_price_dzd"], 15_000);
    assert_eq!(acc.body["csrf_token"], me.csrf.as_str());
    call(&stack, Method::GET, "/api/compte", None, false, None)
        .await
        .assert_error(401, "unauthenticated");

    // CSRF: no token, a wrong one, another site's Origin.
    let new_key = json!({"name": "production"});
    call(
        &stack,
        Method::POST,
        "/api/compte/cles",
        Some(&me),
        false,
        Some(new_key.clone()),
    )
    .await
    .assert_error(403, "csrf_failed");
    let wrong = Session {
        cookie: me.cookie.clone(),
        csrf: "faux".into(),
    };
    call(
        &stack,
        Method::POST,
        "/api/compte/cles",
        Some(&wrong),
        true,
        Some(new_key.clone()),
    )
    .await
    .assert_error(403, "csrf_failed");
    let cross = stack
        .gw
        .request(Method::POST, "/api/compte/cles")
        .header("cookie", format!("iaf_session={}", me.cookie))
        .header("x-csrf-token", &me.csrf)
        .header("origin", "https://evil.example")
        .json(&new_key)
        .send()
        .await
        .unwrap();
    Answer::of(cross).await.assert_error(403, "csrf_failed");
    let keys = call(
        &stack,
        Method::GET,
        "/api/compte/cles",
        Some(&me),
        false,
        None,
    )
    .await;
    assert_eq!(keys.body["keys"].as_array().unwrap().len(), 1, "{keys:?}");

    // Keys: create (shown once), rotate, revoke; another customer's key is not found.
    let created = call(
        &stack,
        Method::POST,
        "/api/compte/cles",
        Some(&me),
        true,
        Some(new_key),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let api_key = created.body["api_key"].as_str().unwrap().to_owned();
    assert!(api_key.starts_with("iaf_"));
    let key_id = created.body["key"]["id"].as_str().unwrap().to_owned();
    let rotated = call(
        &stack,
        Method::POST,
        &format!("/api/compte/cles/{key_id}/rotation"),
        Some(&me),
        true,
        Some(json!({"grace_seconds": 3600})),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{rotated:?}");
    assert_eq!(rotated.body["replaced"]["status"], "grace");
    let (them, _) = sign_in(&stack, "autre@exemple.dz", None, false).await;
    let their_keys = call(
        &stack,
        Method::GET,
        "/api/compte/cles",
        Some(&them),
        false,
        None,
    )
    .await;
    let their_key = their_keys.body["keys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &stack,
        Method::POST,
        &format!("/api/compte/cles/{their_key}/revocation"),
        Some(&me),
        true,
        None,
    )
    .await
    .assert_error(404, "not_found");
    let new_id = rotated.body["key"]["id"].as_str().unwrap();
    let revoked = call(
        &stack,
        Method::POST,
        &format!("/api/compte/cles/{new_id}/revocation"),
        Some(&me),
        true,
        None,
    )
    .await;
    assert_eq!(revoked.body["status"], "revoked", "{revoked:?}");
    assert!(other.body["api_key"].is_string());

    // Package: preview, then upgrade.
    let plan = call(
        &stack,
        Method::GET,
        "/api/compte/forfait/apercu?package=business",
        Some(&me),
        false,
        None,
    )
    .await;
    assert_eq!(plan.body["kind"], "upgrade", "{plan:?}");
    assert_eq!(plan.body["price_dzd"], 75_000);
    let done = call(
        &stack,
        Method::POST,
        "/api/compte/forfait",
        Some(&me),
        true,
        Some(json!({"package": "business"})),
    )
    .await;
    for field in ["kind", "price_dzd", "discount_ends_at", "message"] {
        assert_eq!(done.body[field], plan.body[field], "{field}");
    }
    let cancel = call(
        &stack,
        Method::POST,
        "/api/compte/resiliation",
        Some(&me),
        true,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        cancel.body["cancel_at"], cancel.body["period_end"],
        "{cancel:?}"
    );

    // Sign-out clears the cookie and ends the session.
    let out = call(
        &stack,
        Method::DELETE,
        "/api/compte/session",
        Some(&me),
        true,
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{out:?}");
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    call(&stack, Method::GET, "/api/compte", Some(&me), false, None)
        .await
        .assert_error(401, "unauthenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_and_link_limits() {
    let stack = Stack::spawn().await;
    for path in ["/compte/", "/compte/connexion"] {
        let a = stack.get(path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        assert!(a.header("content-type").unwrap().starts_with("text/html"));
        let csp = a.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(a.text.contains("compte.js"));
    }
    assert_eq!(stack.get("/compte/compte.js").await.status, StatusCode::OK);
    stack
        .get("/compte/absent.js")
        .await
        .assert_error(404, "route_not_found");
    let redirect = stack
        .gw
        .request(Method::GET, "/compte")
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.url().path(), "/compte/");

    // Five links an hour per address, then 429 with Retry-After.
    for _ in 0..5 {
        let a = stack
            .post("/api/compte/lien", json!({"email": "x@exemple.dz"}))
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED);
    }
    let a = stack
        .post("/api/compte/lien", json!({"email": "x@exemple.dz"}))
        .await;
    a.assert_error(429, "rate_limited");
    assert!(a.header("retry-after").is_some());
}

/// With llm-gateway: usage of a few calls on the dashboard, a key created in the account works,
/// and once revoked it gets 401 from `/v1/chat/completions` within the documented cache window.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn usage_and_keys_with_llm_gateway() {
    use crate::llm::{LlmStack, MODEL};
    let s = LlmStack::spawn().await;
    let stack = &s.stack;
    let signup = stack.signup("conso@exemple.dz", "starter", "").await;
    let first_key = signup.body["api_key"].as_str().unwrap().to_owned();
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Salut"}]});
    for _ in 0..3 {
        let r = s.chat(&first_key, body.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (me, _) = sign_in(stack, "conso@exemple.dz", None, false).await;
    let u = call(
        stack,
        Method::GET,
        "/api/compte/consommation",
        Some(&me),
        false,
        None,
    )
    .await;
    assert_eq!(u.status, StatusCode::OK, "{u:?}");
    assert_eq!(u.body["requests"], 3, "{u:?}");
    assert!(u.body["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(u.body["tokens_per_month"], 1_000_000);
    assert_eq!(u.body["models"][0]["model"], MODEL);
    assert!(u.body["keys"][0]["last_used_at"].is_string(), "{u:?}");
    // The month's days, from the 1st to today, adding up to the month; today's calls on today.
    let days = u.body["days"].as_array().unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(days.len(), today[8..].parse::<usize>().unwrap(), "{u:?}");
    assert_eq!(days[0]["day"], format!("{}-01", &today[..7]));
    assert_eq!(days.last().unwrap()["day"], today.as_str());
    assert_eq!(days.last().unwrap()["requests"], 3);
    for f in [
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
    ] {
        let sum: u64 = days.iter().map(|d| d[f].as_u64().unwrap()).sum();
        assert_eq!(sum, u.body[f].as_u64().unwrap(), "{f}: {u:?}");
    }
    assert!(
        u.body["resets_at"]
            .as_str()
            .unwrap()
            .ends_with("T00:00:00Z")
    );
    call(
        stack,
        Method::GET,
        "/api/compte/consommation",
        None,
        false,
        None,
    )
    .await
    .assert_error(401, "unauthenticated");

    let created = call(
        stack,
        Method::POST,
        "/api/compte/cles",
        Some(&me),
        true,
        Some(json!({"name": "ci"})),
    )
    .await;
    let key = created.body["api_key"].as_str().unwrap().to_owned();
    let id = created.body["key"]["id"].as_str().unwrap().to_owned();
    assert_eq!(s.chat(&key, body.clone()).await.status(), StatusCode::OK);
    call(
        stack,
        Method::POST,
        &format!("/api/compte/cles/{id}/revocation"),
        Some(&me),
        true,
        None,
    )
    .await;
    // llm-gateway caches a key's check for 5 s (AUTH_CACHE_TTL_MS): the revoked key is refused
    // within that window.
    let started = std::time::Instant::now();
    loop {
        let status = s.chat(&key, body.clone()).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "still {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        s.chat(&first_key, body.clone()).await.status(),
        StatusCode::OK
    );

    // The operator suspends the account: its key is refused within the same window, the
    // dashboard says so and no key can be created; reactivated, the key works again.
    let user_id = signup.body["user_id"].as_str().unwrap().to_owned();
    let suspend = |suspended: bool| {
        stack
            .gw
            .request(
                Method::PUT,
                &format!("/api/promo/signups/{user_id}/suspension"),
            )
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "suspended": suspended }))
            .send()
    };
    let anonymous = stack
        .gw
        .request(
            Method::PUT,
            &format!("/api/promo/signups/{user_id}/suspension"),
        )
        .json(&json!({"suspended": true}))
        .send()
        .await
        .unwrap();
    Answer::of(anonymous)
        .await
        .assert_error(401, "unauthenticated");
    let r = Answer::of(suspend(true).await.unwrap()).await;
    assert_eq!(r.body, json!({"suspended": true, "changed": true}), "{r:?}");
    let r = Answer::of(suspend(true).await.unwrap()).await;
    assert_eq!(
        r.body,
        json!({"suspended": true, "changed": false}),
        "{r:?}"
    );
    let started = std::time::Instant::now();
    loop {
        let status = s.chat(&first_key, body.clone()).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "still {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let a = call(stack, Method::GET, "/api/compte", Some(&me), false, None).await;
    assert_eq!(a.body["suspended"], true, "{a:?}");
    call(
        stack,
        Method::POST,
        "/api/compte/cles",
        Some(&me),
        true,
        Some(json!({"name": "encore"})),
    )
    .await
    .assert_error(403, "account_suspended");
    let r = Answer::of(suspend(false).await.unwrap()).await;
    assert_eq!(
        r.body,
        json!({"suspended": false, "changed": true}),
        "{r:?}"
    );
    let started = std::time::Instant::now();
    while s.chat(&first_key, body.clone()).await.status() != StatusCode::OK {
        assert!(started.elapsed() < std::time::Duration::from_secs(8));
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    s.stop().await;
}
