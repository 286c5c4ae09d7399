//! What the customer account reads and is told: `GetKeysUsage`'s days (written by the same
//! batched writer as the month, in the same transaction) and the 80 % / 100 % quota notices
//! reported to the real promo-service after the writes, on SQLite and PostgreSQL.

use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use llm_gateway::quota::{day_of, period_of};
use llm_gateway::store::{Store, UsageKey, UsageSums};

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

async fn keys_usage(gw: &mut Gw, key_ids: &[&str]) -> pb::KeysUsage {
    gw.client
        .get_keys_usage(internal(pb::GetKeysUsageRequest {
            key_ids: key_ids.iter().map(|k| (*k).to_owned()).collect(),
        }))
        .await
        .unwrap()
        .into_inner()
}

/// The key id promo-service gave an API key (what gateway-rest asks about).
async fn key_id(gw: &mut Gw, api_key: &str) -> String {
    gw.client
        .get_usage(authed(pb::GetUsageRequest {}, api_key))
        .await
        .unwrap()
        .into_inner()
        .key_id
}

/// Chat and stream calls of two keys of one customer, plus usage written by the store's batch
/// writer on the 1st of the month: the days run from the 1st to today, and add up to the
/// month's figures (per key and in total).
async fn days_add_up_to_the_month(backend: Backend) {
    let up = Upstream::unary_or_stream(
        openai_ok("ok", 10, 5),
        openai_stream(&["Bon", "jour"], 7, 3),
    )
    .await;
    let mut promo = Promo::start_on(backend).await;
    let (_, first, second) = promo.signup_with_two_keys("starter").await;
    let db = test_db(backend).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    for key in [&first, &second, &first] {
        gw.client
            .chat(authed(chat_req("m", "hi"), key))
            .await
            .unwrap();
    }
    let mut s = gw
        .client
        .chat_stream(authed(chat_req("m", "hi"), &second))
        .await
        .unwrap()
        .into_inner();
    while s.message().await.unwrap().is_some() {}
    let (id1, id2) = (
        key_id(&mut gw, &first).await,
        key_id(&mut gw, &second).await,
    );

    // An earlier day of the month, through the writer's own statement (calls can only be
    // made today).
    let now = iafactory::db::now_millis();
    let period = period_of(now);
    let store = Store::connect(&db.url).await.unwrap();
    store
        .add_usage(&[(
            UsageKey {
                key_id: id1.clone(),
                period: period.clone(),
                day: format!("{period}-01"),
                model: "m".into(),
                provider: "alpha".into(),
                tokens_per_month: 0,
                cost_budget_nano_usd: 0,
            },
            UsageSums {
                user_id: "usr_x".into(),
                requests: 4,
                prompt_tokens: 100,
                completion_tokens: 20,
                cost_nano_usd: 1,
            },
        )])
        .await
        .unwrap();
    store.close().await;

    let u = keys_usage(&mut gw, &[&id1, &id2]).await;
    let today = day_of(now);
    let day_number: usize = today[8..].parse().unwrap();
    assert_eq!(u.days.len(), day_number, "{:?}", u.days);
    assert_eq!(u.days[0].day, format!("{period}-01"));
    assert_eq!(u.days.last().unwrap().day, today);
    assert!(u.days.windows(2).all(|w| w[0].day < w[1].day));
    // 3 chats (15 tokens), 1 stream (10), 4 requests (120) written on the 1st.
    assert_eq!(u.requests, 8);
    assert_eq!(u.total_tokens, 3 * 15 + 10 + 120);
    let sum = |f: fn(&pb::DayUsage) -> u64| u.days.iter().map(f).sum::<u64>();
    assert_eq!(sum(|d| d.requests), u.requests);
    assert_eq!(sum(|d| d.prompt_tokens), u.prompt_tokens);
    assert_eq!(sum(|d| d.completion_tokens), u.completion_tokens);
    assert_eq!(sum(|d| d.total_tokens), u.total_tokens);
    let last = u.days.last().unwrap();
    if day_number > 1 {
        assert_eq!((u.days[0].requests, u.days[0].total_tokens), (4, 120));
        assert_eq!((last.requests, last.total_tokens), (4, 55));
        assert!(u.days[1..day_number - 1].iter().all(|d| d.requests == 0));
    }
    // One key alone: its own days.
    let u2 = keys_usage(&mut gw, &[&id2]).await;
    assert_eq!(u2.requests, 2);
    assert_eq!(u2.days.iter().map(|d| d.total_tokens).sum::<u64>(), 15 + 10);
    assert_eq!(u2.days.last().unwrap().total_tokens, 25);
    gw.stop().await;
    promo.stop().await;
    db.close().await;
}

/// One batch holding charges that share a monthly row but not a day (and a day but not a
/// model), over more keys than one statement takes: written in one go on both backends (one
/// `ON CONFLICT DO UPDATE` may touch a row only once), each day and each month exact.
async fn a_batch_spanning_days_and_statements_is_exact(backend: Backend) {
    let db = test_db(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    let period = "2026-11";
    let sums = |n: i64| UsageSums {
        user_id: "usr_batch".into(),
        requests: 1,
        prompt_tokens: n,
        completion_tokens: 1,
        cost_nano_usd: 10,
    };
    let mut rows = Vec::new();
    let keys = llm_gateway::store::ROWS_PER_STATEMENT + 10;
    for k in 0..keys {
        for (day, model) in [("01", "a"), ("02", "a"), ("02", "b"), ("30", "a")] {
            rows.push((
                UsageKey {
                    key_id: format!("key_{k}"),
                    period: period.into(),
                    day: format!("{period}-{day}"),
                    model: model.into(),
                    provider: "p".into(),
                    tokens_per_month: 0,
                    cost_budget_nano_usd: 0,
                },
                sums(i64::try_from(k).unwrap()),
            ));
        }
    }
    store.add_usage(&rows).await.unwrap();
    // Twice: the second batch adds to the rows the first created.
    store.add_usage(&rows).await.unwrap();
    for k in [0, keys - 1] {
        let n = i64::try_from(k).unwrap();
        let key = format!("key_{k}");
        let month = store.usage(&key, period).await.unwrap();
        let by_model: Vec<(String, i64, i64)> = month
            .iter()
            .map(|(u, s)| (u.model.clone(), s.requests, s.prompt_tokens))
            .collect();
        assert_eq!(
            by_model,
            vec![("a".into(), 6, 6 * n), ("b".into(), 2, 2 * n)]
        );
        let days: Vec<(String, i64, i64)> = store
            .usage_by_day(&key, period)
            .await
            .unwrap()
            .into_iter()
            .map(|(d, s)| (d, s.requests, s.completion_tokens))
            .collect();
        assert_eq!(
            days,
            vec![
                (format!("{period}-01"), 2, 2),
                (format!("{period}-02"), 4, 4),
                (format!("{period}-30"), 2, 2),
            ]
        );
    }
    assert!(
        store
            .usage_by_day("key_0", "2026-12")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.customer_tokens("usr_batch", period).await.unwrap(),
        (0..i64::try_from(keys).unwrap())
            .map(|n| 8 * (n + 1))
            .sum::<i64>()
    );
    store.close().await;
    db.close().await;
}

/// A database holding usage in the two tables of migration 3 (per month; per day without the
/// model) is upgraded to the one table: every month's totals per model are kept whole, and each
/// key's usage lands on its last day with usage that month (the 1st for a month without days).
async fn the_upgrade_to_one_usage_table_keeps_every_month(backend: Backend) {
    let db = test_db(backend).await;
    migrate_to(&db, backend, 3).await;
    for sql in [
        // November: two models on key a (days known), one on key b (no day rows).
        "INSERT INTO llm_usage VALUES ('a', '2026-11', 'm1', 'p', 'u1', 3, 30, 3, 300, 1)",
        "INSERT INTO llm_usage VALUES ('a', '2026-11', 'm2', 'p', 'u1', 1, 10, 1, 100, 2)",
        "INSERT INTO llm_usage VALUES ('b', '2026-11', 'm1', 'p', 'u2', 5, 50, 5, 500, 3)",
        "INSERT INTO llm_usage VALUES ('a', '2026-12', 'm1', 'p', 'u1', 2, 20, 2, 200, 4)",
        "INSERT INTO llm_usage_daily VALUES ('a', '2026-11-03', 'u1', 1, 10, 1, 100, 1)",
        "INSERT INTO llm_usage_daily VALUES ('a', '2026-11-17', 'u1', 3, 30, 3, 300, 2)",
        "INSERT INTO llm_usage_daily VALUES ('a', '2026-12-02', 'u1', 2, 20, 2, 200, 4)",
    ] {
        db.exec(sql).await;
    }
    let store = Store::connect(&db.url).await.unwrap();
    let month = |rows: Vec<(UsageKey, UsageSums)>| -> Vec<(String, i64, i64, i64, i64)> {
        rows.into_iter()
            .map(|(k, s)| {
                (
                    k.model,
                    s.requests,
                    s.prompt_tokens,
                    s.completion_tokens,
                    s.cost_nano_usd,
                )
            })
            .collect()
    };
    assert_eq!(
        month(store.usage("a", "2026-11").await.unwrap()),
        vec![("m1".into(), 3, 30, 3, 300), ("m2".into(), 1, 10, 1, 100)]
    );
    assert_eq!(
        month(store.usage("b", "2026-11").await.unwrap()),
        vec![("m1".into(), 5, 50, 5, 500)]
    );
    assert_eq!(
        month(store.usage("a", "2026-12").await.unwrap()),
        vec![("m1".into(), 2, 20, 2, 200)]
    );
    let days = |rows: Vec<(String, UsageSums)>| -> Vec<(String, i64)> {
        rows.into_iter().map(|(d, s)| (d, s.requests)).collect()
    };
    assert_eq!(
        days(store.usage_by_day("a", "2026-11").await.unwrap()),
        vec![("2026-11-17".into(), 4)]
    );
    assert_eq!(
        days(store.usage_by_day("b", "2026-11").await.unwrap()),
        vec![("2026-11-01".into(), 5)]
    );
    assert_eq!(store.customer_tokens("u1", "2026-11").await.unwrap(), 44);
    assert_eq!(store.customer_tokens("u2", "2026-11").await.unwrap(), 55);
    assert_eq!(store.last_used("a").await.unwrap(), Some(4));
    // The upgraded table takes charges like a new one.
    let charge = UsageKey {
        key_id: "a".into(),
        period: "2026-11".into(),
        day: "2026-11-17".into(),
        model: "m1".into(),
        provider: "p".into(),
        tokens_per_month: 0,
        cost_budget_nano_usd: 0,
    };
    store
        .add_usage(&[(
            charge,
            UsageSums {
                user_id: "u1".into(),
                requests: 1,
                prompt_tokens: 1,
                completion_tokens: 1,
                cost_nano_usd: 1,
            },
        )])
        .await
        .unwrap();
    assert_eq!(
        month(store.usage("a", "2026-11").await.unwrap())[0],
        ("m1".into(), 4, 31, 4, 301)
    );
    store.close().await;
    db.close().await;
}

/// The quota notices in promo-service's outbox, by level.
async fn notices(promo: &Promo) -> Vec<String> {
    promo
        .db
        .query_strings("SELECT payload FROM outbox WHERE kind = 'quota_level' ORDER BY created_at")
        .await
}

async fn wait_for_notices(promo: &Promo, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let found = notices(promo).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    notices(promo).await
}

fn percent(payload: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap();
    v["percent"].as_u64().unwrap()
}

/// Calls on two keys of one customer push their month past 80 %, then 100 %, of the package's
/// tokens: exactly one notice each in promo-service's outbox, however many flushes follow.
async fn quota_levels_write_one_notice_each(backend: Backend) {
    // 100 tokens a call, 1 000 a month.
    let up = Upstream::always(openai_ok("ok", 60, 40)).await;
    let mut promo = Promo::start_on(backend).await;
    promo.set_package("dev", 1000, 1000, "").await;
    let (_, first, second) = promo.signup_with_two_keys("dev").await;
    let db = test_db(backend).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    let keys = [&first, &second];
    // 700 tokens: no level reached.
    for i in 0..7 {
        gw.client
            .chat(authed(chat_req("m", "hi"), keys[i % 2]))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(notices(&promo).await.is_empty());
    // 800 and 900: one 80 % notice, over both keys.
    for i in 7..9 {
        gw.client
            .chat(authed(chat_req("m", "hi"), keys[i % 2]))
            .await
            .unwrap();
        let found = wait_for_notices(&promo, 1).await;
        assert_eq!(found.len(), 1, "{found:?}");
    }
    let found = notices(&promo).await;
    assert_eq!(percent(&found[0]), 80, "{found:?}");
    let v: serde_json::Value = serde_json::from_str(&found[0]).unwrap();
    assert_eq!(v["tokens_per_month"], 1000);
    assert!(v["tokens_used"].as_u64().unwrap() >= 800);
    // 1 000: the 100 % notice; the next call is refused (no more tokens).
    gw.client
        .chat(authed(chat_req("m", "hi"), &second))
        .await
        .unwrap();
    let found = wait_for_notices(&promo, 2).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(percent(&found[1]), 100);
    let err = gw
        .client
        .chat(authed(chat_req("m", "hi"), &first))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "quota_exceeded");
    // A second replica (nothing remembered) charging the same customer again: promo-service's
    // idempotency keeps one notice per level.
    gw.stop().await;
    promo.set_package("dev", 1000, 1100, "").await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&single(&up)))).await;
    gw.client
        .chat(authed(chat_req("m", "hi"), &first))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let found = notices(&promo).await;
    assert_eq!(
        found.iter().map(|p| percent(p)).collect::<Vec<_>>(),
        vec![80, 100],
        "{found:?}"
    );
    gw.stop().await;
    promo.stop().await;
    db.close().await;
}

on_both_backends!(
    days_add_up_to_the_month,
    a_batch_spanning_days_and_statements_is_exact,
    the_upgrade_to_one_usage_table_keeps_every_month,
    quota_levels_write_one_notice_each
);
