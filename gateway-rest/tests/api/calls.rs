//! The console's request log, providers page and customer margin, and the account's "Mes
//! derniers appels", over REST with promo-service, llm-gateway and a local upstream: the
//! numbers shown are those of the calls made (tokens, cost at the configured dollar rate,
//! outcomes), support operators may read them, customers see their own calls without our cost.

use iafactory::proto::iafactory::promo::v1 as pb;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin, operator_cookie, operators, send};
use crate::compte::{call, sign_in};
use crate::helpers::*;
use crate::llm::{LlmStack, MODEL};

/// The console's calls once the log's writer has caught up (it writes in batches).
async fn calls_eventually(s: &Stack, cookie: &str, query: &str, n: usize) -> Vec<Value> {
    let started = std::time::Instant::now();
    loop {
        let a = send(
            s,
            Method::GET,
            &format!("/api/admin/appels?{query}"),
            cookie,
            None,
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        let rows = a.body["appels"].as_array().unwrap().clone();
        if rows.len() >= n || started.elapsed() > std::time::Duration::from_secs(5) {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_log_providers_and_margin_through_the_console() {
    let s = LlmStack::spawn_with(|c| c.usd_dzd_rate_milli = 250_500).await;
    let stack = &s.stack;
    let signup = stack.signup("marge@exemple.dz", "starter", "").await;
    let key = signup.body["api_key"].as_str().unwrap().to_owned();
    let user_id = signup.body["user_id"].as_str().unwrap().to_owned();
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Salut"}]});
    for _ in 0..3 {
        assert_eq!(s.chat(&key, body.clone()).await.status(), StatusCode::OK);
    }
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let r = s.chat(&key, streamed).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("[DONE]"));
    let unknown = s
        .chat(
            &key,
            json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    ops_setup(stack).await;
    let signed = stack
        .post(
            "/api/admin/session",
            json!({"email": "support@iafactory.dz", "password": "a passphrase long enough"}),
        )
        .await;
    let (cookie, _) = operator_cookie(&signed);

    // Journal des appels: five calls, newest first, read by a support operator.
    let rows = calls_eventually(stack, &cookie, "", 5).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[0]["model"], "nope");
    assert_eq!(rows[0]["error_code"], "model_not_found");
    assert_eq!(rows[0]["provider"], Value::Null);
    assert_eq!(rows[1]["kind"], "chat_stream");
    assert!(rows[1]["ttft_ms"].is_u64());
    let prefix: String = key.chars().take(10).collect();
    // 7 prompt tokens at 1 $/Mtok and 5 completion tokens at 2 $/Mtok: 17 µ$ a call.
    for r in &rows[1..] {
        assert_eq!(r["status"], "ok");
        assert_eq!(r["customer_id"], user_id.as_str());
        assert_eq!(r["key_prefix"], prefix.as_str());
        assert_eq!(
            (r["prompt_tokens"].as_u64(), r["completion_tokens"].as_u64()),
            (Some(7), Some(5))
        );
        assert!(
            (r["cost_usd"].as_f64().unwrap() - 17e-6).abs() < 1e-12,
            "{r}"
        );
        assert_eq!(
            (r["provider"].as_str(), r["attempts"].as_u64()),
            (Some("fake"), Some(1))
        );
    }
    assert_eq!(
        calls_eventually(stack, &cookie, "statut=error", 1)
            .await
            .len(),
        1
    );
    assert_eq!(
        calls_eventually(
            stack,
            &cookie,
            &format!("cle={}&modele={MODEL}", &prefix[..8]),
            4
        )
        .await
        .len(),
        4
    );
    let page = send(
        stack,
        Method::GET,
        "/api/admin/appels?page_size=2",
        &cookie,
        None,
        None,
    )
    .await;
    let token = page.body["next_page_token"].as_str().unwrap().to_owned();
    let next = send(
        stack,
        Method::GET,
        &format!("/api/admin/appels?page_size=2&page_token={token}"),
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(next.body["appels"][0]["id"], rows[2]["id"]);
    for bad in [
        "page_size=0",
        "page_size=500",
        "cle=a%25",
        "inconnu=1",
        "depuis=abc",
    ] {
        send(
            stack,
            Method::GET,
            &format!("/api/admin/appels?{bad}"),
            &cookie,
            None,
            None,
        )
        .await
        .assert_error(400, "invalid_argument");
    }
    stack
        .get("/api/admin/appels")
        .await
        .assert_error(401, "unauthenticated");

    // Fournisseurs: state, calls, percentiles, cost in dollars and in dinars (rounded up).
    let p = send(
        stack,
        Method::GET,
        "/api/admin/fournisseurs?heures=1",
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert_eq!(p.body["usd_dzd_rate"], 250.5);
    let fake = p.body["fournisseurs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "fake")
        .unwrap()
        .clone();
    assert_eq!(
        (fake["calls"].as_u64(), fake["errors"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(fake["circuit"], "closed");
    assert_eq!(fake["error_rate_percent"], 0.0);
    assert!(fake["p95_ms"].as_u64() >= fake["p50_ms"].as_u64());
    assert!((fake["cost_usd"].as_f64().unwrap() - 68e-6).abs() < 1e-12);
    // 68 µ$ × 250.5 = 0.017 DZD: one dinar, rounded up.
    assert_eq!(fake["cost_dzd"], 1);
    let days = p.body["jours"].as_array().unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(
        days[0]["day"],
        chrono::Utc::now().format("%Y-%m-%d").to_string()
    );
    assert_eq!(
        (days[0]["calls"].as_u64(), days[0]["cost_dzd"].as_u64()),
        (Some(4), Some(1))
    );
    send(
        stack,
        Method::GET,
        "/api/admin/fournisseurs?heures=0",
        &cookie,
        None,
        None,
    )
    .await
    .assert_error(400, "invalid_argument");

    // The customer's margin this month: 10 000 DZD billed, 1 DZD of upstream cost.
    let d = send(
        stack,
        Method::GET,
        &format!("/api/admin/clients/{user_id}"),
        &cookie,
        None,
        None,
    )
    .await;
    assert_eq!(d.status, StatusCode::OK, "{d:?}");
    let m = &d.body["margin"];
    assert!(
        (m["cost_usd"].as_f64().unwrap() - 68e-6).abs() < 1e-12,
        "{m}"
    );
    assert_eq!(
        (m["cost_dzd"].as_u64(), m["revenue_dzd"].as_u64()),
        (Some(1), Some(10_000))
    );
    assert_eq!(m["margin_dzd"], 9_999);
    assert_eq!(m["usd_dzd_rate"], 250.5);

    // Mes derniers appels: the customer's own five, without our cost.
    let (me, _) = sign_in(stack, "marge@exemple.dz", None, false).await;
    let mine = call(
        stack,
        Method::GET,
        "/api/compte/appels",
        Some(&me),
        false,
        None,
    )
    .await;
    assert_eq!(mine.status, StatusCode::OK, "{mine:?}");
    let mine = mine.body["appels"].as_array().unwrap();
    assert_eq!(mine.len(), 5);
    assert!(
        mine.iter()
            .all(|r| r["cost_usd"] == 0.0 && r["customer_id"] == user_id.as_str())
    );
    call(stack, Method::GET, "/api/compte/appels", None, false, None)
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

async fn ops_setup(stack: &Stack) {
    let mut ops = operators(stack).await;
    ops.create_operator(admin(pb::CreateOperatorRequest {
        email: "support@iafactory.dz".into(),
        display_name: "support".into(),
        role: pb::OperatorRole::Support.into(),
        password: "a passphrase long enough".into(),
    }))
    .await
    .unwrap();
}
