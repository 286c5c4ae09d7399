//! Dunning end to end: a customer whose invoice is unpaid past the grace period gets 402
//! `payment_required` (OpenAI-style English error naming the invoice and how to pay) from
//! `/v1/chat/completions`, on two llm-gateway replicas each behind its own gateway-rest; a
//! transfer recorded by the operator brings the key back on both. Real promo-service,
//! llm-gateway and gateway-rest over loopback, a local OpenAI-compatible upstream.

use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::billing_client::BillingClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::llm::{FakeUpstream, MODEL, UPSTREAM_MODEL};

fn admin<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_TOKEN}").parse().unwrap(),
    );
    req
}

/// An invoice is due at once and suspended at once when unpaid (no grace): the test reaches
/// the suspended state without moving a clock.
fn due_at_once(config: &mut promo_service::Config) {
    config.billing.dunning.due_ms = 0;
    config.billing.dunning.grace_ms = 0;
}

async fn llm_replica(
    promo_url: &str,
    upstream: &FakeUpstream,
) -> (llm_gateway::Handle, tempfile::TempDir) {
    let toml = format!(
        "[providers.fake]\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\napi_key_env = \"FAKE_KEY\"\n\n\
         [[models]]\nname = \"{MODEL}\"\nroutes = [{{ provider = \"fake\", model = \"{UPSTREAM_MODEL}\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 2.0 }}]\n",
        upstream.addr
    );
    let mut catalog = llm_gateway::catalog::Catalog::from_toml("test", &toml).unwrap();
    assert!(catalog.set_key("fake", "sk-fake"));
    let dir = tempfile::tempdir().unwrap();
    let mut config = llm_gateway::Config::new(
        format!("sqlite://{}/llm.db", dir.path().display()),
        promo_url.to_owned(),
        catalog,
    );
    config.usage_flush_interval = Duration::from_millis(100);
    config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (llm_gateway::start(config, listener).await.unwrap(), dir)
}

async fn gateway_for(promo_url: &str, llm: &llm_gateway::Handle) -> Gateway {
    let mut config =
        gateway_rest::Config::new(promo_url.to_owned(), format!("http://{}", llm.addr));
    config.validate_rate = None;
    config.signup_rate = None;
    config.auth_failure_rate = None;
    config.admin_token = Some(gateway_rest::AdminToken::new(ADMIN_TOKEN));
    config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
    Gateway::spawn(config).await
}

async fn chat(gw: &Gateway, key: &str) -> (StatusCode, Value) {
    let r = gw
        .request(reqwest::Method::POST, "/v1/chat/completions")
        .bearer_auth(key)
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "Salut"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Calls until the answer has `want` status. The key cache makes the change visible after at
/// most its TTL (5 s for a valid key, 1 s for a refusal, see llm-gateway `auth.rs`): the bound
/// here only stops a broken build from hanging, it asserts no timing.
async fn until_status(gw: &Gateway, key: &str, want: StatusCode) -> Value {
    for _ in 0..300 {
        let (status, body) = chat(gw, key).await;
        if status == want {
            return body;
        }
        assert!(
            status == StatusCode::OK || status == StatusCode::PAYMENT_REQUIRED,
            "{status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never answered {want}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unpaid_past_grace_gets_402_and_a_transfer_brings_the_key_back_on_two_replicas() {
    let upstream = FakeUpstream::start().await;
    let promo = Promo::spawn_tweaked(due_at_once).await;
    let promo_url = promo.url();
    let (llm_a, _dir_a) = llm_replica(&promo_url, &upstream).await;
    let (llm_b, _dir_b) = llm_replica(&promo_url, &upstream).await;
    let gw_b = gateway_for(&promo_url, &llm_b).await;
    let stack = Stack::from_parts(promo, gateway_for(&promo_url, &llm_a).await).await;
    let gws = [&stack.gw, &gw_b];

    let signup = stack.signup("retard@exemple.dz", "dev", "LAUNCH30").await;
    assert_eq!(signup.status, StatusCode::CREATED, "{signup:?}");
    let key = signup.body["api_key"].as_str().unwrap().to_owned();
    let user = signup.body["user_id"].as_str().unwrap().to_owned();
    // The key works at once on both replicas (and each caches it as valid).
    for gw in gws {
        let (status, body) = chat(gw, &key).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let mut billing = BillingClient::connect(promo_url.clone()).await.unwrap();
    let invoice = billing
        .issue_invoice(admin(pb::IssueInvoiceRequest {
            customer_id: user.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(invoice.total_dzd, 10_050);

    for gw in gws {
        let body = until_status(gw, &key, StatusCode::PAYMENT_REQUIRED).await;
        assert_eq!(body["error"]["code"], "payment_required", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&invoice.number), "{message}");
        assert!(message.contains("10050 DZD"), "{message}");
        assert!(message.contains("/compte/"), "{message}");
        assert!(
            message.starts_with("Payment required"),
            "English on /v1: {message}"
        );
    }
    let upstream_calls = upstream.calls.load(std::sync::atomic::Ordering::Relaxed);

    // A partial transfer keeps the key refused; the rest brings it back.
    billing
        .record_payment(admin(pb::RecordPaymentRequest {
            invoice_number: invoice.number.clone(),
            amount_dzd: 10_000,
            method: pb::PaymentMethod::BankTransfer as i32,
            reference: "VIR-0001".into(),
            paid_at: String::new(),
        }))
        .await
        .unwrap();
    for gw in gws {
        let (status, _) = chat(gw, &key).await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    }
    assert_eq!(
        upstream.calls.load(std::sync::atomic::Ordering::Relaxed),
        upstream_calls,
        "a refused call never reaches the provider"
    );
    let paid = billing
        .record_payment(admin(pb::RecordPaymentRequest {
            invoice_number: invoice.number.clone(),
            amount_dzd: 50,
            method: pb::PaymentMethod::Baridimob as i32,
            reference: "BM-0002".into(),
            paid_at: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.state, pb::SubscriptionState::Active as i32);
    let paid_at = std::time::Instant::now();
    for (n, gw) in gws.into_iter().enumerate() {
        let body = until_status(gw, &key, StatusCode::OK).await;
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Bonjour de l'amont"
        );
        // Reported, not asserted: the README's "within about a second" is this figure.
        eprintln!(
            "replica {n}: key accepted again {} ms after the payment was recorded",
            paid_at.elapsed().as_millis()
        );
    }
    assert_books(stack.promo.db_url()).await;
    let _ = llm_a.shutdown().await;
    let _ = llm_b.shutdown().await;
}

/// The promo-service books reconcile (`promo_service::repo::reconcile`).
async fn assert_books(db_url: &str) {
    let db = iafactory::db::Db::connect(
        db_url,
        &promo_service::migrations(),
        &iafactory::db::PoolOptions::default(),
    )
    .await
    .unwrap();
    let problems = promo_service::repo::reconcile(&db).await.unwrap();
    db.close().await;
    assert!(
        problems.is_empty(),
        "the books do not reconcile: {problems:#?}"
    );
}

/// Card payment end to end: the customer asks to pay an invoice by card through the portal's
/// REST route, promo-service creates the checkout on the local Chargily server (real HTTP, the
/// secret key as Bearer), and the server delivers signed webhooks to gateway-rest's webhook
/// route. A bad signature, an altered amount, a checkout nobody created and a missing signature
/// change nothing; the genuine event marks the invoice paid and reactivates the suspended
/// subscription; its replay records nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn card_payment_through_chargily_webhooks() {
    use iafactory_testkit::chargily::{ChargilyServer, deliver};

    use crate::compte::{call, sign_in};

    const SECRET: &str = "test_sk_0123456789abcdefghijklmnop";
    let chargily = ChargilyServer::start(SECRET).await;
    let base = chargily.base_url();
    let promo = Promo::spawn_tweaked(move |config| {
        due_at_once(config);
        config.billing.chargily = Some(promo_service::billing_config::ChargilyConfig {
            secret_key: promo_service::billing_config::ChargilySecret::new(SECRET),
            base_url: base.clone(),
        });
    })
    .await;
    let promo_url = promo.url();
    let stack = Stack::from_parts(promo, gateway_for_promo(&promo_url).await).await;
    let signup = stack.signup("carte@exemple.dz", "starter", "").await;
    assert_eq!(signup.status, StatusCode::CREATED, "{signup:?}");
    let user = signup.body["user_id"].as_str().unwrap().to_owned();
    let mut billing = BillingClient::connect(promo_url.clone()).await.unwrap();
    let invoice = billing
        .issue_invoice(admin(pb::IssueInvoiceRequest {
            customer_id: user.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    let (session, _) = sign_in(&stack, "carte@exemple.dz", None, false).await;
    let overview = call(
        &stack,
        reqwest::Method::GET,
        "/api/compte/facturation",
        Some(&session),
        false,
        None,
    )
    .await;
    assert_eq!(overview.status, StatusCode::OK, "{overview:?}");
    assert_eq!(overview.body["state"], "suspended", "{overview:?}");
    assert_eq!(
        overview.body["invoices"][0]["number"],
        invoice.number.as_str()
    );
    // The portal's JSON carries the last day the period covers (the day before the next
    // period starts), as the PDF prints it; the stored end stays the next start.
    let first = &overview.body["invoices"][0];
    assert_eq!(first["kind"], "period");
    assert_eq!(first["period_end"], invoice.period_end.as_str());
    assert_eq!(first["period_last_day"], invoice.period_last_day.as_str());
    assert!(
        invoice.period_last_day.len() == 10
            && !invoice.period_end.starts_with(&invoice.period_last_day),
        "{invoice:?}"
    );

    let pay_path = format!("/api/compte/factures/{}/paiement-carte", invoice.number);
    // Without the CSRF token: refused before anything is created.
    let no_csrf = call(
        &stack,
        reqwest::Method::POST,
        &pay_path,
        Some(&session),
        false,
        None,
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{no_csrf:?}");
    assert!(chargily.checkouts().is_empty());
    let started = call(
        &stack,
        reqwest::Method::POST,
        &pay_path,
        Some(&session),
        true,
        None,
    )
    .await;
    assert_eq!(started.status, StatusCode::OK, "{started:?}");
    let checkout_id = started.body["checkout_id"].as_str().unwrap().to_owned();
    assert!(
        started.body["checkout_url"]
            .as_str()
            .unwrap()
            .contains(&checkout_id)
    );
    assert_eq!(started.body["amount_dzd"], 10_000);
    let created = &chargily.checkouts()[0];
    assert_eq!(created["amount"], 10_000);
    assert_eq!(created["currency"], "dzd");
    assert_eq!(
        created["metadata"]["invoice_number"],
        invoice.number.as_str()
    );
    assert!(
        created["webhook_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/api/billing/chargily/webhook")
    );
    let sent = &chargily.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );

    let hook = stack.gw.url("/api/billing/chargily/webhook");
    let paid_event = chargily.event("checkout.paid", &checkout_id).to_string();
    // A bad signature.
    let (status, _) = deliver(&hook, &paid_event, &chargily.sign("something else")).await;
    assert_eq!(status, 403);
    let (status, _) = deliver(&hook, &paid_event, "not-hex").await;
    assert_eq!(status, 403);
    // A body altered after signing (amount lowered).
    let signature = chargily.sign(&paid_event);
    let altered = paid_event.replace("\"amount\":10000", "\"amount\":100");
    assert_ne!(altered, paid_event);
    let (status, _) = deliver(&hook, &altered, &signature).await;
    assert_eq!(status, 403);
    // A correctly signed event whose amount differs from the checkout's.
    let mut cheap = chargily.event("checkout.paid", &checkout_id);
    cheap["data"]["amount"] = json!(100);
    let cheap = cheap.to_string();
    let (status, body) = deliver(&hook, &cheap, &chargily.sign(&cheap)).await;
    assert_eq!(status, 409, "{body}");
    // Another currency.
    let mut eur = chargily.event("checkout.paid", &checkout_id);
    eur["data"]["currency"] = json!("eur");
    let eur = eur.to_string();
    assert_eq!(deliver(&hook, &eur, &chargily.sign(&eur)).await.0, 409);
    // A checkout nobody created here.
    let stranger = chargily
        .event("checkout.paid", "01unknowncheckout")
        .to_string();
    assert_eq!(
        deliver(&hook, &stranger, &chargily.sign(&stranger)).await.0,
        404
    );
    // Not JSON, yet correctly signed.
    assert_eq!(
        deliver(&hook, "{oops", &chargily.sign("{oops")).await.0,
        400
    );
    // No signature header at all.
    let bare = stack
        .gw
        .request(reqwest::Method::POST, "/api/billing/chargily/webhook")
        .header("content-type", "application/json")
        .body(paid_event.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    // A failed payment changes nothing either.
    let (status, body, _) = chargily.fail(&checkout_id, Some(&hook)).await;
    assert_eq!((status, body.contains("failed")), (200, true), "{body}");
    let still = call(
        &stack,
        reqwest::Method::GET,
        "/api/compte/facturation",
        Some(&session),
        false,
        None,
    )
    .await;
    assert_eq!(still.body["state"], "suspended");
    assert_eq!(still.body["invoices"][0]["balance_dzd"], 10_000);

    // The genuine event: paid, active; its replay records nothing more.
    let (status, body) = deliver(&hook, &paid_event, &signature).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"paid\""), "{body}");
    let (status, body) = deliver(&hook, &paid_event, &signature).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("duplicate"), "{body}");
    let after = call(
        &stack,
        reqwest::Method::GET,
        "/api/compte/facturation",
        Some(&session),
        false,
        None,
    )
    .await;
    assert_eq!(after.body["state"], "active", "{after:?}");
    assert_eq!(after.body["invoices"][0]["status"], "paid");
    assert_eq!(after.body["balance_dzd"], 0);
    // The invoice as PDF: the customer's own, and any through the admin token.
    let pdf = stack
        .gw
        .request(
            reqwest::Method::GET,
            &format!("/api/compte/factures/{}/pdf", invoice.number),
        )
        .header("cookie", format!("iaf_session={}", session.cookie))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.unwrap().starts_with(b"%PDF-"));
    let admin_pdf = stack
        .gw
        .request(
            reqwest::Method::GET,
            &format!("/api/billing/invoices/{}/pdf", invoice.number),
        )
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_pdf.status(), StatusCode::OK);
    let anonymous = stack
        .gw
        .request(
            reqwest::Method::GET,
            &format!("/api/compte/factures/{}/pdf", invoice.number),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // A paid invoice is not paid twice.
    let again = call(
        &stack,
        reqwest::Method::POST,
        &pay_path,
        Some(&session),
        true,
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{again:?}");

    // The books: the ledger reconciles; one paid invoice.
    assert_books(stack.promo.db_url()).await;
    let payments = billing
        .list_invoices(admin(pb::ListInvoicesRequest {
            customer_id: user,
            status: "paid".into(),
            limit: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert_eq!(payments.len(), 1);
}

async fn gateway_for_promo(promo_url: &str) -> Gateway {
    let mut config = gateway_rest::Config::new(promo_url.to_owned(), dead_url().await);
    config.validate_rate = None;
    config.signup_rate = None;
    config.auth_failure_rate = None;
    config.admin_token = Some(gateway_rest::AdminToken::new(ADMIN_TOKEN));
    config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
    Gateway::spawn(config).await
}
