//! The request log end to end over gRPC: a concurrent load of calls of every kind and outcome
//! (unary, streamed, embeddings; answered, after a fallback, failed upstream, refused by the rate
//! limit, unknown model) leaves exactly one row per authenticated call, with the figures the
//! client saw; the console's filters and keyset pages, the customer's own view (no cost) and the
//! providers' statistics read them back. Both backends.

use std::collections::{HashMap, HashSet};

use iafactory::proto::iafactory::llm::v1 as pb;
use pb::request_log_client::RequestLogClient;
use tonic::transport::Channel;

use crate::helpers::*;
use crate::on_both_backends;
use iafactory_testkit::upstream::*;

fn catalogue(alpha: &Upstream, dead: &Upstream, beta: &Upstream) -> String {
    format!(
        "{}{}{}{}{}{}[[models]]\nname = \"e\"\nkind = \"embedding\"\nroutes = [{{ provider = \"alpha\", model = \"a-embed\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 0.0 }}]\n",
        provider("alpha", "openai", &alpha.url("/v1")),
        provider("dead", "openai", &dead.url("/v1")),
        provider("beta", "openai", &beta.url("/v1")),
        model("m", &[("alpha", "a-model", 2.0, 4.0)]),
        // Always falls back: dead answers 500 (twice), then beta.
        model(
            "fb",
            &[("dead", "d-model", 1.0, 1.0), ("beta", "b-model", 3.0, 3.0)]
        ),
        model("broken", &[("dead", "d-model", 1.0, 1.0)]),
    )
}

/// What one call of the load is, and what its row must say.
#[derive(Debug, Clone, Copy)]
enum Call {
    Chat,
    Stream,
    Embed,
    Fallback,
    Broken,
    UnknownModel,
    /// On the customer whose package allows 3 requests a minute.
    Limited,
    /// A key that does not exist: refused before authentication, not logged.
    BadKey,
}

async fn all_pages(
    log: &mut RequestLogClient<Channel>,
    mut req: pb::ListRequestsRequest,
) -> Vec<pb::LoggedRequest> {
    let mut out = Vec::new();
    loop {
        let page = log
            .list_requests(internal(req.clone()))
            .await
            .unwrap()
            .into_inner();
        let size = if req.page_size == 0 {
            50
        } else {
            req.page_size
        };
        assert!(page.requests.len() <= size as usize);
        out.extend(page.requests);
        if page.next_page_token.is_empty() {
            return out;
        }
        req.page_token = page.next_page_token;
    }
}

async fn one_row_per_call_under_load(backend: Backend) {
    let alpha = Upstream::start(|req, _| {
        if req.path.ends_with("/embeddings") {
            openai_embeddings_for(req)
        } else if req.body["stream"] == true {
            openai_stream(&["Bon", "jour"], 7, 3)
        } else {
            openai_ok("ok", 10, 5)
        }
    })
    .await;
    let dead = Upstream::always(error(500, "boom")).await;
    let beta = Upstream::always(openai_ok("from beta", 4, 4)).await;
    let mut promo = Promo::start_on(backend).await;
    let (user, key) = promo.signup("premium").await;
    promo.set_package("starter", 3, 1_000_000, "").await;
    let (limited_user, limited_key) = promo.signup("starter").await;
    let db = test_db(backend).await;
    let gw = Gw::start(config(
        &db,
        &promo,
        catalog(&catalogue(&alpha, &dead, &beta)),
    ))
    .await;
    let channel = Channel::from_shared(format!("http://{}", gw.handle.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut log = RequestLogClient::new(channel);

    let plan: Vec<Call> = (0..96)
        .map(|i| match i % 8 {
            0 => Call::Chat,
            1 => Call::Stream,
            2 => Call::Embed,
            3 => Call::Fallback,
            4 => Call::Broken,
            5 => Call::UnknownModel,
            6 => Call::Limited,
            _ => Call::BadKey,
        })
        .collect();
    let mut tasks = Vec::new();
    for call in plan.clone() {
        let mut client = gw.client.clone();
        let (key, limited_key) = (key.clone(), limited_key.clone());
        tasks.push(tokio::spawn(async move {
            let k = match call {
                Call::Limited => limited_key.as_str(),
                Call::BadKey => "iaf_not_a_key_at_all",
                _ => key.as_str(),
            };
            let model = match call {
                Call::Fallback => "fb",
                Call::Broken => "broken",
                Call::UnknownModel => "nope",
                _ => "m",
            };
            // The error code the client got; empty when answered.
            match call {
                Call::Stream => {
                    let mut s = client
                        .chat_stream(authed(chat_req(model, "hi"), k))
                        .await
                        .unwrap()
                        .into_inner();
                    while s.message().await.unwrap().is_some() {}
                    String::new()
                }
                Call::Embed => match client
                    .embed(authed(
                        pb::EmbedRequest {
                            model: "e".into(),
                            input: vec!["un deux trois".into()],
                            ..Default::default()
                        },
                        k,
                    ))
                    .await
                {
                    Ok(_) => String::new(),
                    Err(e) => error_code(&e),
                },
                _ => match client.chat(authed(chat_req(model, "hi"), k)).await {
                    Ok(_) => String::new(),
                    Err(e) => error_code(&e),
                },
            }
        }));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut logged_calls = 0;
    for (t, call) in tasks.into_iter().zip(&plan) {
        let code = t.await.unwrap();
        if !matches!(call, Call::BadKey) {
            logged_calls += 1;
            *seen.entry(code).or_default() += 1;
        }
    }
    // The client saw every kind of outcome the log must tell apart.
    assert_eq!(seen.get("").copied(), Some(12 * 4 + 3), "{seen:?}");
    assert_eq!(seen.get("upstream_error").copied(), Some(12), "{seen:?}");
    assert_eq!(seen.get("model_not_found").copied(), Some(12), "{seen:?}");
    assert_eq!(seen.get("rate_limited").copied(), Some(9), "{seen:?}");
    gw.handle.flush_request_log().await;

    // Every page, newest first, 7 at a time: exactly one row per authenticated call.
    let rows = all_pages(
        &mut log,
        pb::ListRequestsRequest {
            page_size: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(rows.len(), logged_calls);
    assert_eq!(
        rows.iter().map(|r| &r.id).collect::<HashSet<_>>().len(),
        rows.len(),
        "ids unique across pages"
    );
    assert!(rows.windows(2).all(|w| w[0].at_ms >= w[1].at_ms));
    let mut by_code: HashMap<String, usize> = HashMap::new();
    for r in &rows {
        *by_code.entry(r.error_code.clone()).or_default() += 1;
        assert_eq!(
            r.status,
            if r.error_code.is_empty() {
                "ok"
            } else {
                "error"
            }
        );
    }
    assert_eq!(by_code, seen, "the log's outcomes are the clients'");

    // The rows carry the figures of their calls.
    let ok_chat = rows
        .iter()
        .find(|r| r.kind == "chat" && r.model == "m" && r.status == "ok" && r.customer_id == user)
        .unwrap();
    assert_eq!(ok_chat.customer_id, user);
    assert_eq!(ok_chat.key_prefix, key.chars().take(10).collect::<String>());
    assert_eq!(
        (ok_chat.provider.as_str(), ok_chat.upstream_model.as_str()),
        ("alpha", "a-model")
    );
    assert_eq!((ok_chat.prompt_tokens, ok_chat.completion_tokens), (10, 5));
    // 10 × 2 $/Mtok + 5 × 4 $/Mtok = 40e-6 $ = 40 000 nano-dollars.
    assert_eq!(ok_chat.cost_nano_usd, 40_000);
    assert_eq!((ok_chat.attempts, ok_chat.fallbacks), (1, 0));
    assert_eq!(ok_chat.time_to_first_token_ms, None);
    let stream = rows.iter().find(|r| r.kind == "chat_stream").unwrap();
    assert_eq!(
        (
            stream.prompt_tokens,
            stream.completion_tokens,
            stream.status.as_str()
        ),
        (7, 3, "ok")
    );
    assert!(stream.time_to_first_token_ms.is_some());
    let embed = rows.iter().find(|r| r.kind == "embed").unwrap();
    assert_eq!(
        (
            embed.upstream_model.as_str(),
            embed.prompt_tokens,
            embed.completion_tokens
        ),
        ("a-embed", 3, 0)
    );
    let fb = rows.iter().find(|r| r.model == "fb").unwrap();
    assert_eq!(
        (
            fb.provider.as_str(),
            fb.attempts,
            fb.fallbacks,
            fb.status.as_str()
        ),
        ("beta", 3, 1, "ok")
    );
    let broken = rows.iter().find(|r| r.model == "broken").unwrap();
    assert_eq!(
        (broken.provider.as_str(), broken.attempts, broken.fallbacks),
        ("dead", 2, 0)
    );
    assert_eq!((broken.prompt_tokens, broken.cost_nano_usd), (0, 0));
    let unknown = rows.iter().find(|r| r.model == "nope").unwrap();
    assert_eq!((unknown.provider.as_str(), unknown.attempts), ("", 0));

    // Filters.
    let limited = all_pages(
        &mut log,
        pb::ListRequestsRequest {
            customer_id: limited_user.clone(),
            page_size: 200,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(limited.len(), 12);
    assert!(limited.iter().all(|r| r.customer_id == limited_user));
    let refused = all_pages(
        &mut log,
        pb::ListRequestsRequest {
            status: "rate_limited".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.len(), 9);
    let errors = all_pages(
        &mut log,
        pb::ListRequestsRequest {
            status: "error".into(),
            provider: "dead".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        errors.len(),
        12,
        "the broken model's calls, not the fallbacks"
    );
    let by_prefix = all_pages(
        &mut log,
        pb::ListRequestsRequest {
            key_prefix: key.chars().take(8).collect(),
            model: "fb".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_prefix.len(), 12);
    let newest = rows[0].at_ms;
    let none_after = all_pages(
        &mut log,
        pb::ListRequestsRequest {
            since_ms: newest + 1,
            ..Default::default()
        },
    )
    .await;
    assert!(none_after.is_empty());

    // Refusals: no internal token, a forged page token, an oversized page, a wildcard prefix.
    let r = log.list_requests(pb::ListRequestsRequest::default()).await;
    assert_eq!(r.unwrap_err().code(), tonic::Code::PermissionDenied);
    for bad in [
        pb::ListRequestsRequest {
            page_token: "1.req_x' OR 1=1".into(),
            ..Default::default()
        },
        pb::ListRequestsRequest {
            page_size: 201,
            ..Default::default()
        },
        pb::ListRequestsRequest {
            key_prefix: "iaf%".into(),
            ..Default::default()
        },
        pb::ListRequestsRequest {
            since_ms: 10,
            until_ms: 5,
            ..Default::default()
        },
    ] {
        let e = log.list_requests(internal(bad)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    }

    // The customer's own calls, with their key: theirs only, no cost.
    let mine = log
        .list_my_requests(authed(
            pb::ListMyRequestsRequest {
                page_size: 200,
                ..Default::default()
            },
            &limited_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.requests.len(), 12);
    assert!(
        mine.requests
            .iter()
            .all(|r| r.customer_id == limited_user && r.cost_nano_usd == 0)
    );
    let e = log
        .list_my_requests(authed(pb::ListMyRequestsRequest::default(), "iaf_nobody"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);

    // Providers' statistics from the same rows.
    let stats = log
        .provider_stats(internal(pb::ProviderStatsRequest { hours: 1 }))
        .await
        .unwrap()
        .into_inner();
    let of = |name: &str| {
        stats
            .providers
            .iter()
            .find(|p| p.provider == name)
            .unwrap()
            .clone()
    };
    // alpha: the 12 chats, 12 streams, 12 embeddings, and the limited customer's 3 answered calls.
    assert_eq!((of("alpha").calls, of("alpha").errors), (39, 0));
    assert_eq!((of("dead").calls, of("dead").errors), (12, 12));
    assert_eq!((of("beta").calls, of("beta").errors), (12, 0));
    assert!(of("alpha").p95_latency_ms >= of("alpha").p50_latency_ms);
    let alpha_cost: i64 = rows
        .iter()
        .filter(|r| r.provider == "alpha")
        .map(|r| r.cost_nano_usd)
        .sum();
    assert_eq!(of("alpha").cost_nano_usd, alpha_cost);
    let day_cost: i64 = stats
        .days
        .iter()
        .filter(|d| d.provider == "alpha")
        .map(|d| d.cost_nano_usd)
        .sum();
    assert_eq!(day_cost, alpha_cost);

    // Retention: rows older than the window are pruned.
    let store = llm_gateway::store::Store::connect(&db.url).await.unwrap();
    assert_eq!(
        store
            .prune_request_log(rows[rows.len() - 1].at_ms)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.prune_request_log(newest + 1).await.unwrap() as usize,
        logged_calls
    );
    store.close().await;
    gw.stop().await;
    promo.stop().await;
}

on_both_backends!(one_row_per_call_under_load);

/// SQLite: the log has a file of its own beside the gateway's (so its batches never hold the
/// write connection the usage writer waits for). Rows an older version wrote into the gateway's
/// file are moved there at start, every one once, and the gateway's file keeps none; a second
/// start finds nothing left to move. A batch inserted twice is stored once.
#[tokio::test]
async fn sqlite_log_rows_of_an_older_version_move_to_their_own_file() {
    let db = test_db(Backend::Sqlite).await;
    migrate_to(&db, Backend::Sqlite, 5).await;
    // More rows than one batch of the move, over several users.
    let rows = 4500;
    db.exec(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) \
         INSERT INTO llm_request_log SELECT printf('req_%05d', i), 1000 + i, 'u' || (i % 3), 'k', \
         'iaf_x', 'chat', 'm', 'p', 'um', i, 1, 10, 5, NULL, 1, 0, 'ok', '' FROM n"
    ))
    .await;
    for _ in 0..2 {
        let store = llm_gateway::store::Store::connect(&db.url).await.unwrap();
        assert_eq!(
            db.query_strings("SELECT CAST(COUNT(*) AS TEXT) FROM llm_request_log")
                .await,
            vec!["0".to_owned()],
            "the gateway's file keeps no row"
        );
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let filter = llm_gateway::request_log::query::Filter::default();
            let (page, next) = store
                .list_request_log(&filter, after.as_ref(), 1000)
                .await
                .unwrap();
            // A batch written again (a retry after a lost commit answer) adds nothing.
            store.insert_request_log(&page).await.unwrap();
            seen.extend(page.into_iter().map(|r| (r.id, r.prompt_tokens)));
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        seen.sort();
        let want: Vec<(String, i64)> = (1..=rows).map(|i| (format!("req_{i:05}"), i)).collect();
        assert_eq!(seen, want);
        store.close().await;
    }
}
