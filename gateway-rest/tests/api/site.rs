//! `GET /api/site` (the seller identity, terms and retention the public pages show) and the
//! signup's language, over real HTTP through gateway-rest to a real promo-service.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_info_comes_from_the_configuration() {
    let promo = Promo::spawn_tweaked(|c| {
        c.billing.seller.name = "IAFactory SARL".into();
        c.billing.seller.nif = "000016001234567".into();
        c.billing.tax.rate_bp = 900;
        c.billing.tax.prices_include_tax = false;
        c.billing.transfer.ccp_account = "0012345678 90".into();
        c.site.contact_email = Some("contact@iafactory.dz".into());
        c.site.contact_phone = "+213 21 00 00 00".into();
        c.site.hosting_name = "Hébergeur Exemple SPA".into();
    })
    .await;
    let s = Stack::from_promo(promo).await;
    let r = s.get("/api/site").await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let b = &r.body;
    assert_eq!(b["seller"]["name"], "IAFactory SARL");
    assert_eq!(b["seller"]["nif"], "000016001234567");
    assert_eq!(b["seller"]["email"], "contact@iafactory.dz");
    assert_eq!(b["seller"]["phone"], "+213 21 00 00 00");
    // Not configured: null, never a made-up value.
    assert_eq!(b["seller"]["rc"], serde_json::Value::Null);
    assert_eq!(b["seller"]["publication_director"], serde_json::Value::Null);
    assert_eq!(b["hosting"]["name"], "Hébergeur Exemple SPA");
    assert_eq!(b["terms"]["tax_rate_bp"], 900);
    assert_eq!(b["terms"]["prices_include_tax"], false);
    assert_eq!(b["terms"]["invoice_due_days"], 15);
    assert_eq!(b["terms"]["suspension_grace_days"], 7);
    assert_eq!(b["terms"]["ccp_transfer"], true);
    assert_eq!(b["terms"]["bank_transfer"], false);
    assert_eq!(b["terms"]["card_payment"], false);
    // The retention the code applies (sign-in links 15 min, sessions 7 days at most...).
    assert_eq!(b["retention"]["sign_in_link_minutes"], 15);
    assert_eq!(b["retention"]["session_max_days"], 7);
    assert_eq!(b["retention"]["session_idle_hours"], 2);
    assert_eq!(b["retention"]["idempotency_hours"], 24);
    assert_eq!(b["retention"]["sign_in_rate_window_minutes"], 60);
    assert_eq!(b["terms"]["discount_notice_days"], 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_language_is_fr_or_ar_and_anything_else_is_refused() {
    let s = Stack::spawn().await;
    let ok = s
        .post(
            "/api/promo/signup",
            json!({"email": "amina@exemple.dz", "package": "dev", "lang": "ar"}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{ok:?}");
    for (lang, status, code) in [
        (json!("en"), 400, "invalid_argument"),
        (json!(7), 400, "invalid_argument"),
    ] {
        let r = s
            .post(
                "/api/promo/signup",
                json!({"email": "autre@exemple.dz", "package": "dev", "lang": lang}),
            )
            .await;
        assert_eq!(r.status.as_u16(), status, "{lang}: {r:?}");
        assert_eq!(r.body["error"]["code"], code, "{lang}: {r:?}");
    }
    // Nothing was written for the refused ones: the address is still free.
    let again = s
        .post(
            "/api/promo/signup",
            json!({"email": "autre@exemple.dz", "package": "dev"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{again:?}");
}
