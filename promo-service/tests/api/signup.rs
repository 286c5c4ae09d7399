use iafactory::proto::iafactory::promo::v1 as pb;
use tonic::Code;

use crate::helpers::*;

async fn signup_with_launch30_prices_and_key(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();

    let before = chrono::Utc::now();
    let r = c
        .signup(signup_req("  Amina@Example.DZ ", "starter", "launch30"))
        .await
        .unwrap()
        .into_inner();
    assert!(r.success);
    assert_eq!(
        (
            r.package.as_str(),
            r.base_price_dzd,
            r.price_dzd,
            r.discount_percent
        ),
        ("starter", 10_000, 7_500, 25)
    );
    assert_eq!(r.email, "amina@example.dz");
    assert_eq!(r.promo_code, "LAUNCH30");
    assert!(r.user_id.starts_with("usr_"));
    assert!(
        r.api_key.starts_with("iaf_") && r.api_key.len() >= 40,
        "{}",
        r.api_key
    );
    let ends = chrono::DateTime::parse_from_rfc3339(&r.discount_ends_at).unwrap();
    let expected = before.checked_add_months(chrono::Months::new(6)).unwrap();
    assert!(
        (ends.timestamp() - expected.timestamp()).abs() < 60,
        "{ends} vs {expected}"
    );

    let dev = c
        .signup(signup_req("dev@example.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((dev.price_dzd, dev.discount_percent), (10_050, 33));
    let full = c
        .signup(signup_req("full@example.dz", "premium", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            full.price_dzd,
            full.discount_percent,
            full.discount_ends_at.as_str()
        ),
        (200_000, 0, "")
    );
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 28);

    // The key is stored only as a hash.
    let stored = db.query_strings("SELECT key_hash FROM api_keys").await;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains("iaf_")));
    let prefixes = db.query_strings("SELECT prefix FROM api_keys").await;
    assert!(
        prefixes
            .iter()
            .all(|p| p.len() == 10 && r.api_key.len() > 40)
    );

    // The key authenticates and carries the package's quotas.
    let who = c
        .authenticate_key(internal(pb::AuthenticateKeyRequest {
            api_key: r.api_key.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(who.user_id, r.user_id);
    let pkg = who.package.unwrap();
    assert_eq!(
        (
            pkg.id.as_str(),
            pkg.requests_per_minute,
            pkg.tokens_per_month
        ),
        ("starter", 30, 1_000_000)
    );
    assert!(who.key_id.starts_with("key_"));
    assert_status(
        c.authenticate_key(internal(pb::AuthenticateKeyRequest {
            api_key: format!("{}x", &r.api_key[..r.api_key.len() - 1]),
        }))
        .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        c.authenticate_key(internal(pb::AuthenticateKeyRequest {
            api_key: "nonsense".into(),
        }))
        .await,
        Code::Unauthenticated,
        "unauthenticated",
    );

    // The answer carries the owner's e-mail: holding the key is not enough, the caller must be
    // a platform service (internal token) or the operator (admin token).
    for (token, what) in [
        (None, "no token"),
        (Some("wrong-token-0123456789"), "wrong token"),
    ] {
        let req = pb::AuthenticateKeyRequest {
            api_key: r.api_key.clone(),
        };
        let req = match token {
            Some(t) => with_token(req, t),
            None => tonic::Request::new(req),
        };
        let refused = c.authenticate_key(req).await;
        assert!(
            refused.as_ref().is_err_and(|s| !s.message().contains('@')),
            "{what}: {refused:?}"
        );
        assert_status(refused, Code::PermissionDenied, "permission_denied");
    }
    c.authenticate_key(admin(pb::AuthenticateKeyRequest {
        api_key: r.api_key.clone(),
    }))
    .await
    .unwrap();

    // Revoked keys stop working; revoking twice says so.
    let rev = c
        .revoke_api_key(admin(pb::RevokeApiKeyRequest {
            user_id: r.user_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(rev.revoked);
    assert_status(
        c.authenticate_key(internal(pb::AuthenticateKeyRequest {
            api_key: r.api_key.clone(),
        }))
        .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert!(
        !c.revoke_api_key(admin(pb::RevokeApiKeyRequest {
            user_id: r.user_id.clone()
        }))
        .await
        .unwrap()
        .into_inner()
        .revoked
    );
    assert_status(
        c.revoke_api_key(admin(pb::RevokeApiKeyRequest {
            user_id: "usr_nobody".into(),
        }))
        .await,
        Code::NotFound,
        "not_found",
    );

    // Stats for the operator.
    let stats = c
        .get_stats(admin(pb::GetStatsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.total_signups, 3);
    assert_eq!((stats.launch30_used, stats.launch30_remaining), (2, 28));
    assert_eq!(stats.revenue_monthly_dzd, 7_500 + 10_050 + 200_000);
    assert_eq!(stats.breakdown.get("starter"), Some(&1));
    assert_eq!(
        stats.clients,
        vec!["amina@example.dz", "dev@example.dz", "full@example.dz"]
    );
    let summary = c
        .get_summary(pb::GetSummaryRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            summary.status.as_str(),
            summary.promo_codes_active,
            summary.total_clients
        ),
        ("healthy", 1, 3)
    );
    app.stop().await.unwrap();
    db.close().await;
}

async fn one_account_per_email_and_failures_consume_nothing(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    c.signup(signup_req("Sara@Mail.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 29);
    for variant in ["sara@mail.dz", " SARA@MAIL.DZ", "sara@MAIL.dz "] {
        assert_status(
            c.signup(signup_req(variant, "starter", "LAUNCH30")).await,
            Code::AlreadyExists,
            "email_taken",
        );
        assert_status(
            c.signup(signup_req(variant, "starter", "")).await,
            Code::AlreadyExists,
            "email_taken",
        );
    }
    assert_eq!(
        remaining(&mut c, "LAUNCH30").await,
        29,
        "a failed signup consumed a place"
    );
    assert_eq!(db.count("customers").await, 1);
    assert_eq!(db.count("signups").await, 1);
    assert_eq!(db.count("api_keys").await, 1);
    assert_eq!(db.count("redemptions").await, 1);
    app.stop().await.unwrap();
    db.close().await;
}

async fn signups_are_listed_newest_first_with_pages(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    for i in 0..7 {
        c.signup(signup_req(
            &format!("p{i}@page.dz"),
            "starter",
            if i % 2 == 0 { "LAUNCH30" } else { "" },
        ))
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_signups(admin(pb::ListSignupsRequest {
                page_size: 3,
                page_token: token.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total, 7);
        assert!(page.signups.len() <= 3);
        seen.extend(page.signups.iter().map(|s| s.email.clone()));
        assert!(
            page.signups
                .iter()
                .all(|s| s.api_key_prefix.starts_with("iaf_") && !s.api_key_revoked)
        );
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<_> = (0..7).rev().map(|i| format!("p{i}@page.dz")).collect();
    assert_eq!(seen, expected);
    assert_status(
        c.list_signups(admin(pb::ListSignupsRequest {
            page_size: 501,
            page_token: String::new(),
        }))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_status(
        c.list_signups(admin(pb::ListSignupsRequest {
            page_size: 5,
            page_token: "%%%".into(),
        }))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(
    signup_with_launch30_prices_and_key,
    one_account_per_email_and_failures_consume_nothing,
    signups_are_listed_newest_first_with_pages,
);
