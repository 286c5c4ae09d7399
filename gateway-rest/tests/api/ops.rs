//! Operational routes: /healthz, /metrics, /openapi.json, static files, CORS.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_reports_each_backend() {
    let s = Stack::spawn().await;
    let h = s.get("/healthz").await;
    assert_eq!(h.status, StatusCode::OK, "{h:?}");
    assert_eq!(h.body["status"], "degraded");
    assert_eq!(h.body["backends"]["promo-service"]["status"], "serving");
    assert_eq!(h.body["backends"]["llm-gateway"]["status"], "unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_and_status() {
    let s = Stack::spawn().await;
    for code in ["LAUNCH30", "launch30"] {
        assert_eq!(
            s.get(&format!("/api/promo/{code}/remaining")).await.status,
            200
        );
    }
    s.get("/api/promo/GHOST/remaining").await;
    s.get("/no/such/route").await;
    let m = s.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let t = &m.text;
    assert!(
        t.contains(r#"gateway_http_requests_total{route="/api/promo/{code}/remaining",method="GET",status="200"} 2"#),
        "{t}"
    );
    assert!(
        t.contains(r#"gateway_http_requests_total{route="/api/promo/{code}/remaining",method="GET",status="404"} 1"#),
        "{t}"
    );
    assert!(
        t.contains(r#"gateway_http_requests_total{route="unmatched",method="GET",status="404"} 1"#),
        "{t}"
    );
    assert!(
        t.contains(
            r#"gateway_http_request_duration_seconds_count{route="/api/promo/{code}/remaining"} 3"#
        ),
        "{t}"
    );
    assert!(t.contains("# TYPE gateway_http_request_duration_seconds histogram"));
}

/// Every served route is in the OpenAPI document and every documented operation is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_exactly_the_served_routes() {
    let s = Stack::spawn().await;
    let doc = s.get("/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.insert((method.to_uppercase(), path.clone()));
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
        }
    }
    let served: BTreeSet<(String, String)> = gateway_rest::served_routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_owned()))
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");

    // And each documented operation really answers (not the router's 404 / 405).
    for (method, path) in &documented {
        let concrete = path
            .replace("{code}", "LAUNCH30")
            .replace("{user_id}", "usr_nobody")
            .replace("{path}", "index.html");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let r = s.gw.request(m, &concrete).send().await.unwrap();
        if r.headers()["content-type"] == "text/event-stream" {
            assert_eq!(r.status(), StatusCode::OK);
            continue;
        }
        let a = Answer::of(r).await;
        assert!(
            !matches!(a.error_code(), "route_not_found" | "method_not_allowed"),
            "{method} {path}: {a:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_page_is_served_at_api_packages() {
    let s = Stack::spawn().await;
    let r =
        s.gw.http
            .get(s.gw.url("/api-packages/"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // Headers the page's meta tag cannot give: no framing, no MIME sniffing.
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.text().await.unwrap().contains("IAFactory"));
    let r =
        s.gw.http
            .get(s.gw.url("/api-packages/index.html"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Without the slash: redirected (reqwest follows it).
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(s.gw.url("/api-packages"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()["location"], "/api-packages/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origin() {
    let s = Stack::spawn_with(|c| {
        c.cors_origins = vec![http::HeaderValue::from_static("https://iafactory.dz")];
    })
    .await;
    let preflight =
        s.gw.request(Method::OPTIONS, "/api/promo/signup")
            .header("origin", "https://iafactory.dz")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key",
            )
            .send()
            .await
            .unwrap();
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://iafactory.dz"
    );
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("idempotency-key"), "{allowed}");

    let simple =
        s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining")
            .header("origin", "https://iafactory.dz")
            .send()
            .await
            .unwrap();
    assert_eq!(
        simple.headers()["access-control-allow-origin"],
        "https://iafactory.dz"
    );

    let foreign =
        s.gw.request(Method::GET, "/api/promo/LAUNCH30/remaining")
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_graceful() {
    let s = Stack::spawn().await;
    assert_eq!(s.get("/api/promo/health").await.status, 200);
    let Stack { gw, promo } = s;
    tokio::time::timeout(std::time::Duration::from_secs(10), gw.stop())
        .await
        .expect("shutdown hung")
        .unwrap();
    drop(promo);
}

/// HTTP/2 without TLS (prior knowledge) is served on the same port, for proxies that speak it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_is_served_on_the_same_port() {
    let s = Stack::spawn().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(s.gw.url("/api/promo/LAUNCH30/remaining"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
}
