//! Keys and quotas through the real promo-service (in-process, random port): requests per
//! minute, tokens per month, model restrictions, revocation after the cache window, exactness
//! across two gateway replicas sharing one database, usage surviving a restart, leases.

use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use llm_gateway::quota::period_of;
use llm_gateway::store::Store;
use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;
use iafactory_testkit::upstream::*;

fn single(up: &Upstream) -> String {
    format!(
        "{}{}",
        provider("alpha", "openai", &up.url("/v1")),
        model("m", &[("alpha", "a", 2.0, 4.0)])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_per_minute_are_enforced_with_limit_and_reset() {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let mut promo = Promo::start().await;
    promo.set_package("starter", 3, 1_000_000, "").await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    early_in_minute().await;
    for _ in 0..3 {
        gw.client
            .chat(authed(chat_req("m", "hi"), &key))
            .await
            .unwrap();
    }
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&err), "rate_limited");
    assert_eq!(md(&err, "x-iaf-quota-limit"), "requests_per_minute");
    let retry: u64 = md(&err, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Streams count too.
    let err = gw
        .client
        .chat_stream(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "rate_limited");
    assert_eq!(up.count(), 3, "refused calls never reach a provider");
    gw.stop().await;
    promo.stop().await;
}

/// The package is the customer's: two keys of one customer spend one budget, requests per
/// minute and tokens per month alike, and either key sees the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_keys_share_one_quota() {
    let up = Upstream::always(openai_ok("ok", 10, 10)).await;
    let mut promo = Promo::start().await;
    promo.set_package("starter", 4, 1_000_000, "").await;
    let (_, first, second) = promo.signup_with_two_keys("starter").await;
    let (_, other) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    early_in_minute().await;
    for key in [&first, &second, &first, &second] {
        gw.client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap();
    }
    for key in [&first, &second] {
        let err = gw
            .client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap_err();
        assert_eq!(error_code(&err), "rate_limited");
    }
    // Another customer's budget is their own.
    gw.client
        .chat(authed(chat_req("m", "hi"), &other))
        .await
        .unwrap();
    gw.stop().await;

    // Tokens: 1 000 a month, 600 per answer (400 + 200): one call of each key, then neither.
    let up = Upstream::always(openai_ok("ok", 400, 200)).await;
    promo.set_package("starter", 1000, 1000, "").await;
    let (_, first, second) = promo.signup_with_two_keys("starter").await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    for key in [&first, &second] {
        gw.client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap();
    }
    gw.handle.flush_usage().await.unwrap();
    let u = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &first))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.total_tokens, 600, "the key's own usage");
    assert_eq!(
        u.tokens_remaining, 0,
        "the customer's quota, spent by both keys"
    );
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &first))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(md(&err, "x-iaf-quota-limit"), "tokens_per_month");
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monthly_tokens_are_enforced_and_reported() {
    // Each answer costs 600 tokens; the package allows 1 000 a month.
    let up = Upstream::always(openai_ok("ok", 400, 200)).await;
    let mut promo = Promo::start().await;
    promo.set_package("dev", 1000, 1000, "").await;
    let (user_id, key) = promo.signup("dev").await;
    let db = test_db(Backend::Sqlite).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    gw.client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap();
    // 600 used, 400 left: admitted (usage is known only after the answer).
    gw.client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap();
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&err), "quota_exceeded");
    assert_eq!(md(&err, "x-iaf-quota-limit"), "tokens_per_month");
    let retry: u64 = md(&err, "retry-after").parse().unwrap();
    assert!((1..=31 * 86_400).contains(&retry), "{retry}");
    assert!(err.message().contains("tokens_per_month"));
    assert_eq!(up.count(), 2);

    let u = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.user_id, user_id);
    assert_eq!(u.package, "dev");
    assert_eq!(u.requests, 2);
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (800, 400, 1200)
    );
    assert_eq!(u.tokens_per_month, 1000);
    assert_eq!(u.tokens_remaining, 0);
    assert_eq!(u.requests_per_minute, 1000);
    assert!((u.cost_usd - (800.0 * 2.0 + 400.0 * 4.0) / 1e6).abs() < 1e-9);
    assert_eq!(u.models.len(), 1);
    assert_eq!(u.period, period_of(iafactory::db::now_millis()));
    assert!(u.resets_at.ends_with("-01T00:00:00Z"), "{}", u.resets_at);
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_cannot_overrun_the_monthly_tokens() {
    // 50 tokens per answer, 1 000 a month, 40 calls at once: admission holds an estimate per
    // call, so the last units cannot let every concurrent call through.
    let up = Upstream::always(openai_ok("ok", 30, 20).delayed(Duration::from_millis(50))).await;
    let mut promo = Promo::start().await;
    promo.set_package("dev", 1000, 1000, "").await;
    let (_, key) = promo.signup("dev").await;
    let db = test_db(Backend::Sqlite).await;
    let gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    let mut calls = Vec::new();
    for _ in 0..40 {
        let mut client = gw.client.clone();
        let key = key.clone();
        calls.push(tokio::spawn(async move {
            client.chat(authed(chat_req("m", "hi"), &key)).await
        }));
    }
    let mut ok = 0u64;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(error_code(&e), "quota_exceeded", "{e:?}"),
        }
    }
    assert!(ok >= 1);
    assert!(
        ok * 50 <= 1000,
        "{ok} answers of 50 tokens admitted on a 1 000-token quota"
    );
    assert_eq!(up.count() as u64, ok);
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn package_model_restrictions_are_enforced() {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let toml = format!(
        "{}{}{}",
        provider("alpha", "openai", &up.url("/v1")),
        model("m", &[("alpha", "a", 1.0, 1.0)]),
        model("cheap", &[("alpha", "c", 0.1, 0.1)])
    );
    let mut promo = Promo::start().await;
    promo
        .set_package("starter", 30, 1_000_000, "cheap,other")
        .await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&toml))).await;
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(error_code(&err), "model_not_allowed");
    assert_eq!(up.count(), 0);
    let r = gw
        .client
        .chat(authed(chat_req("cheap", "hi"), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.upstream_model, "c");
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_after_the_cache_window() {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let mut promo = Promo::start().await;
    let (user_id, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let mut cfg = config(&db, &promo, catalog(&single(&up)));
    cfg.auth_cache_ttl = Duration::from_millis(300);
    let mut gw = Gw::start(cfg).await;
    gw.client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap();
    promo.revoke(&user_id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(error_code(&err), "unauthenticated");
    let err = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(up.count(), 1);
    gw.stop().await;
    promo.stop().await;
}

/// A suspended account's keys (all of them) are refused after the cache window, and work again
/// once the operator reactivates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_accounts_keys_are_refused_after_the_cache_window() {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let mut promo = Promo::start().await;
    let (user_id, first, second) = promo.signup_with_two_keys("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let mut cfg = config(&db, &promo, catalog(&single(&up)));
    cfg.auth_cache_ttl = Duration::from_millis(300);
    let mut gw = Gw::start(cfg).await;
    for key in [&first, &second] {
        gw.client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap();
    }
    promo.set_suspended(&user_id, true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for key in [&first, &second] {
        let err = gw
            .client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(error_code(&err), "unauthenticated");
    }
    assert_eq!(up.count(), 2);
    promo.set_suspended(&user_id, false).await;
    // The refusal is cached for the negative TTL (1 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for key in [&first, &second] {
        gw.client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap();
    }
    assert_eq!(up.count(), 4);
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_is_refused_even_under_continuous_traffic() {
    // Background re-checks keep a busy key's entry fresh; they must not keep a revoked key alive.
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let mut promo = Promo::start().await;
    let (user_id, key) = promo.signup("business").await;
    let db = test_db(Backend::Sqlite).await;
    let mut cfg = config(&db, &promo, catalog(&single(&up)));
    cfg.auth_cache_ttl = Duration::from_millis(300);
    let mut gw = Gw::start(cfg).await;
    // Traffic before the revocation: entries get re-checked in the background.
    for _ in 0..10 {
        gw.client
            .chat(authed(chat_req("m", "hi"), &key))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    promo.revoke(&user_id).await;
    let revoked_at = std::time::Instant::now();
    // Keep calling for well over the cache window.
    while revoked_at.elapsed() < Duration::from_millis(900) {
        let _ = gw.client.chat(authed(chat_req("m", "hi"), &key)).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promo_service_down_is_unavailable_not_unauthenticated() {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let promo = Promo::start().await;
    let db = test_db(Backend::Sqlite).await;
    let mut cfg = config(&db, &promo, catalog(&single(&up)));
    // A port nobody listens on.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cfg.promo_service_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut gw = Gw::start(cfg).await;
    let err = gw
        .client
        .chat(authed(
            chat_req("m", "hi"),
            "iaf_abcdefghijklmnopqrstuvwxyz012345",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(error_code(&err), "unavailable");
    gw.stop().await;
    promo.stop().await;
}

/// Fires `calls` concurrent calls alternately at two replicas within one UTC minute; returns
/// (admitted, rate-limited).
async fn burst(a: &Gw, b: &Gw, key: &str, calls: usize) -> (u64, u64) {
    loop {
        early_in_minute().await;
        let minute = iafactory::db::now_millis() / 60_000;
        let mut tasks = Vec::new();
        for i in 0..calls {
            let mut client = if i % 2 == 0 {
                a.client.clone()
            } else {
                b.client.clone()
            };
            let key = key.to_owned();
            tasks.push(tokio::spawn(async move {
                client.chat(authed(chat_req("m", "hi"), &key)).await
            }));
        }
        let (mut ok, mut limited) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(error_code(&e), "rate_limited", "{e:?}");
                    limited += 1;
                }
            }
        }
        if iafactory::db::now_millis() / 60_000 == minute {
            return (ok, limited);
        }
        // The window turned during the burst: measure again in a fresh minute.
        let into = iafactory::db::now_millis().rem_euclid(60_000);
        tokio::time::sleep(Duration::from_millis(
            u64::try_from(60_000 - into + 200).unwrap(),
        ))
        .await;
    }
}

/// Two gateway replicas sharing one database admit exactly the package's requests per minute,
/// with single-unit leases (10/min) and with prefetched blocks (100/min: blocks of 10).
async fn rpm_is_exact_across_two_replicas(backend: Backend) {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let mut promo = Promo::start().await;
    promo.set_package("business", 10, 1_000_000, "").await;
    promo.set_package("premium", 100, 1_000_000, "").await;
    let (_, key) = promo.signup("business").await;
    let (_, big_key) = promo.signup("premium").await;
    let db = test_db(backend).await;
    let a = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    let b = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    assert_eq!(burst(&a, &b, &key, 30).await, (10, 20));
    assert_eq!(burst(&a, &b, &big_key, 240).await, (100, 140));
    // Usage recorded by both replicas is seen from either once written (flush every 100 ms).
    a.handle.flush_usage().await.unwrap();
    b.handle.flush_usage().await.unwrap();
    let mut client = a.client.clone();
    let u = client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.requests, 10, "the first burst's key");
    a.stop().await;
    b.stop().await;
    promo.stop().await;
    db.close().await;
}

/// Usage is written in batches, survives a restart, and unused token leases are given back at
/// shutdown so the store's reservation equals what was used.
async fn usage_survives_restart_and_leases_are_returned(backend: Backend) {
    let up = Upstream::always(openai_ok("ok", 10, 5)).await;
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(backend).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    for _ in 0..3 {
        gw.client
            .chat(authed(chat_req("m", "hi"), &key))
            .await
            .unwrap();
    }
    // The ledger counts per customer (every key of theirs spends one budget).
    let user_id = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    gw.stop().await;

    let period = period_of(iafactory::db::now_millis());
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(
        store.reserved(&user_id, "tokens", &period).await.unwrap(),
        45
    );
    store.close().await;

    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    let u = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.requests, 3);
    assert_eq!(u.total_tokens, 45);
    assert_eq!(u.tokens_remaining, 1_000_000 - 45);
    assert!((u.cost_usd - (30.0 * 2.0 + 15.0 * 4.0) / 1e6).abs() < 1e-12);
    gw.stop().await;
    promo.stop().await;
    db.close().await;
}

/// Concurrent reservations never grant more than the limit in total.
async fn reservations_never_over_grant(backend: Backend) {
    let db = test_db(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.reserve("k", "tokens", "2026-11", 7, 100).await.unwrap()
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 100);
    assert_eq!(store.reserved("k", "tokens", "2026-11").await.unwrap(), 100);
    assert_eq!(
        store
            .reserve("k", "tokens", "2026-11", 1, 100)
            .await
            .unwrap(),
        0
    );
    store.release("k", "tokens", "2026-11", 30).await.unwrap();
    assert_eq!(
        store
            .reserve("k", "tokens", "2026-11", 50, 100)
            .await
            .unwrap(),
        30
    );
    store.close().await;
    db.close().await;
}

/// Two replicas sharing one database cannot overrun the monthly tokens together either.
async fn tokens_are_bounded_across_two_replicas(backend: Backend) {
    let up = Upstream::always(openai_ok("ok", 30, 20).delayed(Duration::from_millis(20))).await;
    let mut promo = Promo::start().await;
    promo.set_package("dev", 100_000, 1000, "").await;
    let (_, key) = promo.signup("dev").await;
    let db = test_db(backend).await;
    let a = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    let b = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    let mut calls = Vec::new();
    for i in 0..60 {
        let mut client = if i % 2 == 0 {
            a.client.clone()
        } else {
            b.client.clone()
        };
        let key = key.clone();
        calls.push(tokio::spawn(async move {
            client.chat(authed(chat_req("m", "hi"), &key)).await
        }));
    }
    let mut ok = 0u64;
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(error_code(&e), "quota_exceeded", "{e:?}"),
        }
    }
    assert!(ok >= 1);
    assert!(
        ok * 50 <= 1000,
        "{ok} answers of 50 tokens on a 1 000-token quota"
    );
    a.stop().await;
    b.stop().await;
    promo.stop().await;
    db.close().await;
}

on_both_backends!(
    tokens_are_bounded_across_two_replicas,
    rpm_is_exact_across_two_replicas,
    usage_survives_restart_and_leases_are_returned,
    reservations_never_over_grant,
);
