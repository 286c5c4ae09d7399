//! The operator console's REST side: first-party page events (names checked, no cookie,
//! cross-site refused, per-IP budget) and the operator session (cookie attributes, CSRF,
//! `Origin`, roles enforced by promo-service, sign-out).

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::operators_client::OperatorsClient;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

pub(crate) async fn operators(s: &Stack) -> OperatorsClient<tonic::transport::Channel> {
    OperatorsClient::connect(format!("http://{}", s.promo.addr))
        .await
        .unwrap()
}

pub(crate) fn admin<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    r
}

async fn landing_views(s: &Stack) -> u64 {
    operators(s)
        .await
        .get_dashboard(admin(pb::GetDashboardRequest { days: 1 }))
        .await
        .unwrap()
        .into_inner()
        .funnel
        .unwrap()
        .landing_views
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_events_are_counted_checked_and_budgeted() {
    let s = Stack::spawn().await;
    let ok = s
        .post("/api/evenements", json!({"event": "landing_view"}))
        .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "{ok:?}");
    assert!(ok.header("set-cookie").is_none());
    assert_eq!(landing_views(&s).await, 1);
    // Names outside the list, extra fields, wrong types, not JSON: 400/415, nothing counted.
    for body in [
        json!({"event": "signup"}),
        json!({"event": "landing_view", "email": "a@b.dz"}),
        json!({"event": 1}),
        json!({}),
    ] {
        let a = s.post("/api/evenements", body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
        // (serde classifies a number where a name was expected as a syntax error)
        assert!(
            ["invalid_argument", "malformed_json"].contains(&a.error_code()),
            "{a:?}"
        );
    }
    let text = Answer::of(
        s.gw.request(Method::POST, "/api/evenements")
            .body("landing_view")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(text.status.as_u16(), 415, "{text:?}");
    // Another site's page cannot make its visitors count here.
    let cross = Answer::of(
        s.gw.request(Method::POST, "/api/evenements")
            .header("origin", "https://evil.example")
            .json(&json!({"event": "landing_view"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    cross.assert_error(403, "csrf_failed");
    assert_eq!(landing_views(&s).await, 1);
    // The per-IP budget (burst 10, partly spent above: the refused bodies drew from it too, the
    // cross-site one did not reach it): past it, 429 with Retry-After, and the count stops.
    let mut counted = 1;
    let mut limited = None;
    for _ in 0..20 {
        let a = s
            .post("/api/evenements", json!({"event": "landing_view"}))
            .await;
        if a.status == StatusCode::NO_CONTENT {
            counted += 1;
        } else {
            limited = Some(a);
            break;
        }
    }
    let limited = limited.expect("the budget ends");
    limited.assert_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    assert!(counted <= 10, "{counted}");
    assert_eq!(landing_views(&s).await, counted);
}

/// The `iaf_operator=…` pair of a `Set-Cookie`, and the whole header.
pub(crate) fn operator_cookie(a: &Answer) -> (String, String) {
    let set = a.header("set-cookie").expect("a cookie").to_owned();
    let pair = set.split(';').next().unwrap().trim().to_owned();
    assert!(pair.starts_with("iaf_operator="), "{set}");
    (pair, set)
}

pub(crate) async fn send(
    s: &Stack,
    method: Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<serde_json::Value>,
) -> Answer {
    let mut r = s.gw.request(method, path).header("cookie", cookie);
    if let Some(c) = csrf {
        r = r.header("x-csrf-token", c);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    Answer::of(r.send().await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_session_carries_roles_csrf_and_sign_out() {
    let s = Stack::spawn().await;
    let mut ops = operators(&s).await;
    for (email, role) in [
        ("owner@iafactory.dz", pb::OperatorRole::Owner),
        ("support@iafactory.dz", pb::OperatorRole::Support),
    ] {
        ops.create_operator(admin(pb::CreateOperatorRequest {
            email: email.into(),
            display_name: email.split('@').next().unwrap().into(),
            role: role.into(),
            password: "a passphrase long enough".into(),
        }))
        .await
        .unwrap();
    }
    s.signup("client@exemple.dz", "dev", "LAUNCH30").await;

    // Wrong password and unknown e-mail: the same 401.
    let wrong = s
        .post(
            "/api/admin/session",
            json!({"email": "owner@iafactory.dz", "password": "nope nope nope"}),
        )
        .await;
    wrong.assert_error(401, "unauthenticated");
    let unknown = s
        .post(
            "/api/admin/session",
            json!({"email": "who@iafactory.dz", "password": "nope nope nope"}),
        )
        .await;
    assert_eq!(unknown.body, wrong.body);
    assert!(wrong.header("set-cookie").is_none());

    let signed = s
        .post(
            "/api/admin/session",
            json!({"email": "owner@iafactory.dz", "password": "a passphrase long enough"}),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{signed:?}");
    assert_eq!(signed.header("cache-control"), Some("no-store"));
    let (cookie, set) = operator_cookie(&signed);
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set}");
    }
    let csrf = signed.body["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(signed.body["operator"]["role"], "owner");

    let me = send(&s, Method::GET, "/api/admin/moi", &cookie, None, None).await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    assert_eq!(me.body["csrf_token"], csrf.as_str());
    let dash = send(
        &s,
        Method::GET,
        "/api/admin/tableau-de-bord?jours=7",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(dash.status, StatusCode::OK, "{dash:?}");
    assert_eq!(dash.body["launch_remaining"], 29);
    assert_eq!(dash.body["signups_per_day"].as_array().unwrap().len(), 7);
    send(
        &s,
        Method::GET,
        "/api/admin/tableau-de-bord?jours=0",
        &cookie,
        None,
        None,
    )
    .await
    .assert_error(400, "invalid_argument");

    // A change without the CSRF token, or from another site: refused, nothing changed.
    let change = json!({"monthly_price_dzd": 16000});
    send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/dev",
        &cookie,
        None,
        Some(change.clone()),
    )
    .await
    .assert_error(403, "csrf_failed");
    let cross = Answer::of(
        s.gw.request(Method::PATCH, "/api/admin/forfaits/dev")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("origin", "https://evil.example")
            .json(&change)
            .send()
            .await
            .unwrap(),
    )
    .await;
    cross.assert_error(403, "csrf_failed");
    let listed = s.get("/api/promo/packages").await;
    assert_eq!(listed.body["packages"][1]["monthly_price_dzd"], 15000);
    let done = send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/dev",
        &cookie,
        Some(&csrf),
        Some(change),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{done:?}");
    assert_eq!(done.body["monthly_price_dzd"], 16000);
    assert_eq!(done.body["tokens_per_month"], 5_000_000);
    // Unknown fields are refused before anything is sent.
    send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/dev",
        &cookie,
        Some(&csrf),
        Some(json!({"price": 1})),
    )
    .await
    .assert_error(400, "invalid_argument");

    // The owner exports CSV.
    let csv = send(
        &s,
        Method::GET,
        "/api/admin/clients/export.csv",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK, "{csv:?}");
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.text.contains("client@exemple.dz"));

    // Support: reads, but no export and no change.
    let support = s
        .post(
            "/api/admin/session",
            json!({"email": "support@iafactory.dz", "password": "a passphrase long enough"}),
        )
        .await;
    let (support_cookie, _) = operator_cookie(&support);
    let support_csrf = support.body["csrf_token"].as_str().unwrap().to_owned();
    let list = send(
        &s,
        Method::GET,
        "/api/admin/clients?recherche=CLIENT",
        &support_cookie,
        None,
        None,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{list:?}");
    assert_eq!(list.body["total"], 1);
    send(
        &s,
        Method::GET,
        "/api/admin/clients/export.csv",
        &support_cookie,
        None,
        None,
    )
    .await
    .assert_error(403, "permission_denied");
    send(
        &s,
        Method::PATCH,
        "/api/admin/codes/launch30",
        &support_cookie,
        Some(&support_csrf),
        Some(json!({"discounts": {"dev": 10}})),
    )
    .await
    .assert_error(403, "permission_denied");

    // Operators: support lists them but cannot add one; the owner can.
    let new_op = json!({"email": "third@iafactory.dz", "display_name": "Third", "role": "support",
        "password": "another long passphrase"});
    send(
        &s,
        Method::POST,
        "/api/admin/operateurs",
        &support_cookie,
        Some(&support_csrf),
        Some(new_op.clone()),
    )
    .await
    .assert_error(403, "permission_denied");
    send(
        &s,
        Method::POST,
        "/api/admin/operateurs",
        &cookie,
        Some(&csrf),
        Some(
            json!({"email": "x@iafactory.dz", "display_name": "X", "role": "admin",
            "password": "another long passphrase"}),
        ),
    )
    .await
    .assert_error(400, "invalid_argument");
    let made = send(
        &s,
        Method::POST,
        "/api/admin/operateurs",
        &cookie,
        Some(&csrf),
        Some(new_op),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    assert_eq!(made.body["role"], "support");
    let listed = send(
        &s,
        Method::GET,
        "/api/admin/operateurs",
        &support_cookie,
        None,
        None,
    )
    .await;
    assert_eq!(listed.body["operators"].as_array().unwrap().len(), 3);

    // The audit log names the owner for each change.
    let log = send(
        &s,
        Method::GET,
        "/api/admin/journal",
        &support_cookie,
        None,
        None,
    )
    .await;
    let entries = log.body["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "operator.create");
    assert_eq!(entries[0]["actor"], "owner <owner@iafactory.dz>");
    assert_eq!(entries[0]["after"]["email"], "third@iafactory.dz");
    assert_eq!(entries[1]["action"], "package.update");
    assert_eq!(entries[1]["actor"], "owner <owner@iafactory.dz>");
    assert_eq!(entries[1]["before"]["monthly_price_dzd"], 15000);
    assert_eq!(entries[1]["after"]["monthly_price_dzd"], 16000);

    // Sign-out clears the cookie and ends the session.
    let out = send(
        &s,
        Method::DELETE,
        "/api/admin/session",
        &cookie,
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::OK, "{out:?}");
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    send(&s, Method::GET, "/api/admin/moi", &cookie, None, None)
        .await
        .assert_error(401, "unauthenticated");
    // No cookie at all.
    s.get("/api/admin/clients")
        .await
        .assert_error(401, "unauthenticated");
}
