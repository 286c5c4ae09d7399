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
        t.contains(r#"iaf_http_requests_total{route="/api/promo/{code}/remaining",method="GET",status="200"} 2"#),
        "{t}"
    );
    assert!(
        t.contains(r#"iaf_http_requests_total{route="/api/promo/{code}/remaining",method="GET",status="404"} 1"#),
        "{t}"
    );
    assert!(
        t.contains(r#"iaf_http_requests_total{route="unmatched",method="GET",status="404"} 1"#),
        "{t}"
    );
    assert!(
        t.contains(
            r#"iaf_http_request_duration_seconds_count{route="/api/promo/{code}/remaining"} 3"#
        ),
        "{t}"
    );
    assert!(t.contains("# TYPE iaf_http_request_duration_seconds histogram"));
}

/// A backend that cannot be reached is counted apart (the BackendUnavailable alert reads it);
/// the backend's own refusals, and the edge's, are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backends_are_counted() {
    // Stack: promo-service up, llm-gateway at an address nothing listens on.
    let s = Stack::spawn().await;
    let count = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("iaf_http_backend_unavailable_total "))
            .map(|v| v.trim().parse::<f64>().unwrap())
            .unwrap_or_else(|| panic!("no iaf_http_backend_unavailable_total in {t}"))
    };
    assert_eq!(count(&s.get("/metrics").await.text), 0.0);
    s.get("/api/promo/GHOST/remaining").await; // promo-service's own 404
    s.get("/no/such/route").await;
    for _ in 0..2 {
        let down = Answer::of(
            s.gw.request(Method::GET, "/v1/models")
                .bearer_auth("iaf_whatever")
                .send()
                .await
                .unwrap(),
        )
        .await;
        down.assert_error(503, "unavailable");
    }
    assert_eq!(count(&s.get("/metrics").await.text), 2.0);
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
        .map(|(m, p)| (m.to_string(), p))
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

/// Polls `path` until it answers `status`, for at most `within`; returns the answer and the
/// time it took.
async fn wait_for_status(
    s: &Stack,
    path: &str,
    status: u16,
    within: std::time::Duration,
) -> (Answer, std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        let a = s.get(path).await;
        if a.status.as_u16() == status {
            return (a, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "{path} did not answer {status} within {within:?}: last {a:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn livez_is_up_while_readyz_names_the_backend_that_is_not_ready() {
    // llm-gateway is absent from this stack.
    let s = Stack::spawn().await;
    let live = s.get("/livez").await;
    assert_eq!(live.status, StatusCode::OK, "{live:?}");
    assert_eq!(live.body["status"], "ok");
    assert_eq!(live.header("cache-control"), Some("no-store"));
    let ready = s.get("/readyz").await;
    ready.assert_error(503, "unavailable");
    assert_eq!(ready.header("retry-after"), Some("1"), "{ready:?}");
    assert_eq!(ready.header("cache-control"), Some("no-store"));
    assert_eq!(ready.body["status"], "not_ready");
    assert_eq!(
        ready.body["backends"]["llm-gateway"]["status"],
        "unreachable"
    );
    assert_eq!(ready.body["backends"]["promo-service"]["status"], "serving");
    let message = ready.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("llm-gateway") && !message.contains("promo-service"),
        "{message}"
    );
    // /healthz is unchanged: 200 with the same detail.
    let h = s.get("/healthz").await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.body["status"], "degraded");
}

/// The acceptance test of readiness: 200 with both backends SERVING, 503 within a few seconds of
/// promo-service stopping, 200 again once it is back on the same port and database — with no
/// restart of gateway-rest, whose channels reconnect by themselves. `/livez` stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_503_when_promo_service_stops_and_200_when_it_returns() {
    use std::time::Duration;
    let mut l = crate::llm::LlmStack::spawn().await;
    let (ready, _) = wait_for_status(&l.stack, "/readyz", 200, Duration::from_secs(10)).await;
    assert_eq!(ready.body["status"], "ready", "{ready:?}");
    assert_eq!(ready.body["backends"]["promo-service"]["status"], "serving");
    assert_eq!(ready.body["backends"]["llm-gateway"]["status"], "serving");

    l.stack.promo.stop().await;
    let (down, took) = wait_for_status(&l.stack, "/readyz", 503, Duration::from_secs(5)).await;
    down.assert_error(503, "unavailable");
    assert!(down.header("retry-after").is_some(), "{down:?}");
    assert_ne!(down.body["backends"]["promo-service"]["status"], "serving");
    assert_eq!(down.body["backends"]["llm-gateway"]["status"], "serving");
    assert!(
        down.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("promo-service"),
        "{down:?}"
    );
    eprintln!("/readyz answered 503 {took:?} after promo-service stopped");
    assert_eq!(l.stack.get("/livez").await.status, StatusCode::OK);

    l.stack.promo.restart().await;
    let (up, took) = wait_for_status(&l.stack, "/readyz", 200, Duration::from_secs(10)).await;
    assert_eq!(up.body["backends"]["promo-service"]["status"], "serving");
    eprintln!("/readyz answered 200 {took:?} after promo-service restarted");
    // And the data is still there: the same database.
    assert_eq!(
        l.stack.get("/api/promo/LAUNCH30/remaining").await.status,
        200
    );
    l.stop().await;
}

/// A crowd polling `/readyz` costs each backend one health check per second, not one per poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_cached_so_polling_it_does_not_hammer_the_backends() {
    use std::time::Duration;
    iafactory::telemetry::init_for_tests();
    // promo-service with its metrics endpoint, which counts the health checks it answers.
    let dir = tempfile::tempdir().unwrap();
    let mut config = promo_service::Config::new(
        format!("sqlite://{}/promo.db", dir.path().display()),
        ADMIN_TOKEN,
    );
    config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let promo = promo_service::start(config, listener).await.unwrap();
    let (promo_addr, metrics_addr) = (promo.addr, promo.metrics_addr.unwrap());
    let mut gw_config = gateway_rest::Config::new(format!("http://{promo_addr}"), dead_url().await);
    gw_config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
    let gw = Gateway::spawn(gw_config).await;
    let health_checks = || async {
        let text = reqwest::get(format!("http://{metrics_addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| {
                l.starts_with("iaf_grpc_requests_total{")
                    && l.contains("/grpc.health.v1.Health/Check")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    // Up: the first poll checks the backends.
    for _ in 0..100 {
        let r = gw.request(Method::GET, "/readyz").send().await;
        if r.is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = health_checks().await;
    let started = std::time::Instant::now();
    let mut polls = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        let answers =
            futures::future::join_all((0..50).map(|_| gw.request(Method::GET, "/readyz").send()))
                .await;
        for a in answers {
            assert_eq!(a.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
            polls += 1;
        }
    }
    let checks = health_checks().await - before;
    let seconds = started.elapsed().as_secs_f64();
    assert!(polls >= 200, "only {polls} polls");
    assert!(
        (checks as f64) <= seconds.ceil() + 1.0,
        "{checks} health checks for {polls} polls in {seconds:.1} s"
    );
    eprintln!(
        "{polls} polls of /readyz in {seconds:.1} s: {checks} health checks of promo-service"
    );
    let _ = promo.shutdown().await;
    let _ = gw.stop().await;
}
