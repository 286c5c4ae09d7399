//! Margin protection through the real promo-service: a package's monthly upstream-cost budget
//! enforced across two gateway replicas sharing one database (refused with `budget_exceeded`
//! once spent, the total spend within the budget plus one lease block), the operator's 80 %
//! and "budget spent" (100 %) alert e-mails through promo-service's outbox and a real SMTP
//! server (one per customer, month and level, two replicas reporting), and the seeded packages' allowed-model lists enforced for
//! chat, embeddings and the model listing.

use std::time::Duration;

use iafactory::proto::iafactory::llm::v1 as pb;
use iafactory_testkit::smtp_sink::SmtpSink;
use llm_gateway::catalog::Catalog;
use llm_gateway::quota::{cost_block, period_of};
use llm_gateway::store::Store;
use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;
use iafactory_testkit::upstream::*;

const OPERATOR: &str = "operateur@iafactory.dz";

/// One model at 2 / 4 USD per million tokens (input / output).
fn priced(up: &Upstream) -> String {
    format!(
        "{}{}",
        provider("alpha", "openai", &up.url("/v1")),
        model("m", &[("alpha", "a", 2.0, 4.0)])
    )
}

/// 80 concurrent calls, alternately on two replicas, each answer costing 30 × 2 000 + 20 × 4 000
/// = 140 000 nano-USD against a budget of 5 000 000 (about 35 answers): refused once spent, never more spent than
/// the budget plus one block; one 80 % e-mail and one "budget spent" e-mail to the operator
/// although both replicas report (the latter from the refusals: the spend stops short of 100 %).
async fn cost_budget_is_enforced_across_two_replicas(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let up = Upstream::always(openai_ok("ok", 30, 20).delayed(Duration::from_millis(20))).await;
    let mut promo = Promo::start_with(Backend::Sqlite, |c| {
        c.mail.smtp_url = Some(smtp);
        c.mail.operator_email = Some(OPERATOR.into());
    })
    .await;
    let budget = 5_000_000;
    promo.set_budget("dev", Some(budget)).await;
    let (user_id, key) = promo.signup("dev").await;
    let db = test_db(backend).await;
    let replica = || {
        let mut c = config(&db, &promo, catalog(&priced(&up)));
        c.auth_cache_ttl = Duration::from_millis(300);
        c
    };
    let a = Gw::start(replica()).await;
    let b = Gw::start(replica()).await;
    let mut calls = Vec::new();
    for i in 0..80 {
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
    let (mut ok, mut refused) = (0u64, 0u64);
    for c in calls {
        match c.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
                assert_eq!(error_code(&e), "budget_exceeded", "{e:?}");
                assert_eq!(md(&e, "x-iaf-quota-limit"), "monthly_cost_budget");
                let retry: u64 = md(&e, "retry-after").parse().unwrap();
                assert!((1..=31 * 86_400).contains(&retry), "{retry}");
                // The budget is our cost price: never in the message.
                assert!(!e.message().contains("5000000"), "{}", e.message());
                refused += 1;
            }
        }
    }
    assert!(ok >= 1 && refused >= 1, "{ok} admitted, {refused} refused");
    // Holds were larger than the real costs: what they gave back may admit a few more calls,
    // one at a time, until the budget cannot cover another. Then both replicas refuse.
    for gw in [&a, &b] {
        let mut client = gw.client.clone();
        let mut refused_at = None;
        for i in 0..40 {
            match client.chat(authed(chat_req("m", "hi"), &key)).await {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(error_code(&e), "budget_exceeded", "{e:?}");
                    refused_at = Some(i);
                    break;
                }
            }
        }
        assert!(refused_at.is_some(), "never refused");
    }
    a.handle.flush_usage().await.unwrap();
    b.handle.flush_usage().await.unwrap();
    let store = Store::connect(&db.url).await.unwrap();
    let period = period_of(iafactory::db::now_millis());
    let spent = store.customer_cost(&user_id, &period).await.unwrap();
    let bound = i64::try_from(budget).unwrap() + cost_block(budget);
    assert!(
        spent <= bound,
        "{spent} nano-USD spent on a budget of {budget} (+ one block)"
    );
    assert_eq!(spent, i64::try_from(ok).unwrap() * 140_000);
    assert_eq!(up.count() as u64, ok);

    // 80 % and 100 %: one e-mail each to the operator, naming the customer, however many
    // replicas report (the signup's confirmation and operator notification came before them).
    sink.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let to_operator = sink
        .received()
        .into_iter()
        .filter(|m| m.to.iter().any(|r| r.contains(OPERATOR)))
        .count();
    assert_eq!(to_operator, 3, "{:?}", sink.received());
    let alerts = promo
        .db
        .query_strings("SELECT payload FROM outbox WHERE kind = 'budget_alert' AND status = 'sent'")
        .await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let mut alerts: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| serde_json::from_str::<serde_json::Value>(a).unwrap())
        .collect();
    alerts.sort_by_key(|v| v["percent"].as_u64());
    assert_eq!(alerts[0]["percent"], 80);
    assert_eq!(alerts[1]["percent"], 100);
    for v in &alerts {
        assert_eq!(v["cost_budget_usd"], "0.005000 USD");
        assert!(v["customer_email"].as_str().unwrap().ends_with("@test.dz"));
    }
    // The spent e-mail states what was spent when the first refusal was reported (calls still
    // running then were charged later): never more than the month's final spend.
    let used_micro: i64 = alerts[1]["cost_used_usd"]
        .as_str()
        .unwrap()
        .trim_end_matches(" USD")
        .replace('.', "")
        .parse()
        .unwrap();
    assert!(
        (1..=spent / 1000).contains(&used_micro),
        "{used_micro} µUSD of {spent} nano"
    );
    let mut rows = promo
        .db
        .query_strings("SELECT occasion FROM notices WHERE kind = 'budget_alert'")
        .await;
    rows.sort();
    assert_eq!(rows, vec![period.clone(), format!("{period}:100")]);

    // The operator removes the budget: calls pass again (within the key cache window).
    promo.set_budget("dev", None).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut client = a.client.clone();
    client
        .chat(authed(chat_req("m", "hi"), &key))
        .await
        .unwrap();
    store.close().await;
    a.stop().await;
    b.stop().await;
    promo.stop().await;
    db.close().await;
}

on_both_backends!(cost_budget_is_enforced_across_two_replicas);

/// The packages as seeded: Starter calls the cheap models only, for chat, embeddings and the
/// listing; Premium calls every model. Served by the offline mock (no provider key), under the
/// default catalogue's names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_allowed_models_are_enforced_everywhere() {
    let mut promo = Promo::start_seeded(Backend::Sqlite, |_| {}).await;
    let (_, starter) = promo.signup("starter").await;
    let (_, premium) = promo.signup("premium").await;
    let db = test_db(Backend::Sqlite).await;
    let mut gw = Gw::start(config(&db, &promo, Catalog::builtin().unwrap())).await;
    let chat = |model: &str, key: &str| authed(chat_req(model, "hi"), key);
    let embed = |model: &str, key: &str| {
        authed(
            pb::EmbedRequest {
                model: model.into(),
                input: vec!["bonjour".into()],
                ..Default::default()
            },
            key,
        )
    };

    gw.client
        .chat(chat("llama-3.1-8b", &starter))
        .await
        .unwrap();
    gw.client.chat(chat("gpt-4o-mini", &starter)).await.unwrap();
    for dear in ["gpt-4o", "claude-sonnet-4", "claude-3-5-haiku"] {
        let err = gw.client.chat(chat(dear, &starter)).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{dear}");
        assert_eq!(error_code(&err), "model_not_allowed", "{dear}");
        let err = gw
            .client
            .chat_stream(chat(dear, &starter))
            .await
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error_code(&err), "model_not_allowed", "{dear} streamed");
    }
    gw.client
        .embed(embed("text-embedding-3-small", &starter))
        .await
        .unwrap();
    let err = gw
        .client
        .embed(embed("text-embedding-3-large", &starter))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "model_not_allowed");

    let listed = |r: pb::ListModelsResponse| -> Vec<String> {
        r.models.into_iter().map(|m| m.name).collect()
    };
    let small = listed(
        gw.client
            .list_models(authed(pb::ListModelsRequest {}, &starter))
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(small.contains(&"llama-3.1-8b".to_owned()), "{small:?}");
    assert!(
        small.contains(&"text-embedding-3-small".to_owned()),
        "{small:?}"
    );
    assert!(!small.contains(&"gpt-4o".to_owned()), "{small:?}");
    assert!(!small.contains(&"claude-sonnet-4".to_owned()), "{small:?}");

    let all = listed(
        gw.client
            .list_models(authed(pb::ListModelsRequest {}, &premium))
            .await
            .unwrap()
            .into_inner(),
    );
    assert!(all.len() > small.len(), "{all:?} / {small:?}");
    gw.client.chat(chat("gpt-4o", &premium)).await.unwrap();
    gw.client
        .chat(chat("claude-sonnet-4", &premium))
        .await
        .unwrap();
    gw.stop().await;
    promo.stop().await;
}
