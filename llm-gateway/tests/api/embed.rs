//! The Embed RPC end to end: gRPC client → gateway → local upstreams speaking OpenAI's
//! `/embeddings`, Cohere's `/v2/embed` and Gemini's `batchEmbedContents` → back, asserting what
//! the upstream received and what the client got (vectors in input order, usage, cost);
//! routing (token ids, dimensions, input_type, fallback), quotas and usage like chat, the
//! offline mock, and refusals naming the field.

use iafactory::proto::iafactory::llm::v1 as pb;
use llm_gateway::catalog::Catalog;
use serde_json::json;
use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;
use iafactory_testkit::upstream::*;

/// An embedding model entry; `shortens`: the catalogue says it can take `dimensions`.
fn embed_model(name: &str, shortens: bool, routes: &[(&str, &str, f64)]) -> String {
    let routes: Vec<String> = routes
        .iter()
        .map(|(p, m, price)| {
            format!("{{ provider = \"{p}\", model = \"{m}\", input_usd_per_mtok = {price:?}, output_usd_per_mtok = 0.0 }}")
        })
        .collect();
    format!(
        "[[models]]\nname = \"{name}\"\nkind = \"embedding\"\ncapabilities = {{ dimensions = {shortens} }}\nroutes = [{}]\n",
        routes.join(", ")
    )
}

use tonic::Status;

fn texts(model: &str, inputs: &[&str]) -> pb::EmbedRequest {
    pb::EmbedRequest {
        model: model.into(),
        input: inputs.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    }
}

impl Env {
    async fn embed(&mut self, req: pb::EmbedRequest) -> Result<pb::EmbedResponse, Status> {
        self.gw
            .client
            .embed(authed(req, &self.key))
            .await
            .map(|r| r.into_inner())
    }
}

fn vectors_of(r: &pb::EmbedResponse) -> Vec<Vec<f32>> {
    for (i, e) in r.data.iter().enumerate() {
        assert_eq!(e.index as usize, i, "indexes follow the input order");
    }
    r.data.iter().map(|e| e.vector.clone()).collect()
}

/// Answers with one numbered vector per text the request carried (`texts` for Cohere,
/// `requests` for Gemini, `input` for OpenAI).
fn count_inputs(body: &serde_json::Value) -> usize {
    ["input", "texts", "requests"]
        .iter()
        .find_map(|k| body[*k].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_embeddings_carry_every_field_and_answer_in_input_order() {
    let up = Upstream::start(|req, _| {
        openai_embeddings(&numbered_vectors(count_inputs(&req.body), 4), 7)
    })
    .await;
    let toml = format!(
        "{}{}",
        provider("p", "openai", &up.url("/v1")),
        embed_model("e", true, &[("p", "emb-up", 0.5)])
    );
    let mut env = Env::start(&toml).await;
    let r = env
        .embed(pb::EmbedRequest {
            dimensions: Some(4),
            user: Some("user-42".into()),
            ..texts("e", &["un", "deux", "trois"])
        })
        .await
        .unwrap();
    // The upstream listed them last first: the client gets them in input order.
    assert_eq!(vectors_of(&r), numbered_vectors(3, 4));
    assert_eq!(
        (
            r.model.as_str(),
            r.provider.as_str(),
            r.upstream_model.as_str()
        ),
        ("e", "p", "emb-up")
    );
    assert_eq!(r.attempts, 1);
    let u = r.usage.unwrap();
    assert_eq!(
        (
            u.prompt_tokens,
            u.completion_tokens,
            u.total_tokens,
            u.estimated
        ),
        (7, 0, 7, false)
    );
    assert!(
        (r.cost_usd - 7.0 * 0.5 / 1e6).abs() < 1e-15,
        "{}",
        r.cost_usd
    );

    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(
        (q.method.as_str(), q.path.as_str()),
        ("POST", "/v1/embeddings")
    );
    assert_eq!(q.header("authorization"), Some("Bearer sk-p"));
    assert_eq!(
        q.body,
        json!({"model": "emb-up", "input": ["un", "deux", "trois"], "dimensions": 4,
               "user": "user-42", "encoding_format": "float"})
    );

    // Counted by the metrics like chat.
    let metrics = env.gw.handle.metrics_text();
    assert!(
        metrics.contains("iaf_llm_tokens_total{provider=\"p\",model=\"e\",kind=\"prompt\"} 7"),
        "{metrics}"
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_ids_go_to_openai_routes_only() {
    let cohere = Upstream::start(|req, _| {
        cohere_embeddings(&numbered_vectors(count_inputs(&req.body), 3), 1)
    })
    .await;
    let openai = Upstream::start(|req, _| {
        openai_embeddings(&numbered_vectors(count_inputs(&req.body), 3), 3)
    })
    .await;
    let toml = format!(
        "{}{}{}{}",
        provider("co", "cohere", &cohere.url("/v2")),
        provider("oa", "openai", &openai.url("/v1")),
        embed_model(
            "both",
            false,
            &[("co", "embed-up", 0.1), ("oa", "emb-up", 0.1)]
        ),
        embed_model("cohere-only", false, &[("co", "embed-up", 0.1)]),
    );
    let mut env = Env::start(&toml).await;
    let tokens = |model: &str| pb::EmbedRequest {
        model: model.into(),
        token_input: vec![
            pb::TokenIds {
                ids: vec![9906, 1917],
            },
            pb::TokenIds { ids: vec![42] },
        ],
        ..Default::default()
    };
    let r = env.embed(tokens("both")).await.unwrap();
    assert_eq!(r.provider, "oa", "Cohere takes texts only: skipped");
    assert_eq!(vectors_of(&r), numbered_vectors(2, 3));
    assert_eq!(r.attempts, 1, "a skipped route is no attempt");
    assert_eq!(
        openai.requests()[0].body["input"],
        json!([[9906, 1917], [42]])
    );
    assert_eq!(cohere.count(), 0);

    let err = env.embed(tokens("cohere-only")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "unsupported_parameter");
    assert_eq!(md(&err, "x-iaf-param"), "input");
    assert!(err.message().contains("cohere-only"), "{}", err.message());
    assert_eq!(cohere.count(), 0);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_embed_v2_in_batches_with_input_type_and_output_dimension() {
    let up = Upstream::start(|req, _| {
        // Numbered across batches, which run concurrently: the full one holds texts 0..96.
        let count = count_inputs(&req.body);
        let offset = if count == 96 { 0 } else { 96 };
        let v: Vec<Vec<f32>> = numbered_vectors(offset + count, 2).split_off(offset);
        cohere_embeddings(&v, u32::try_from(count).unwrap() * 2)
    })
    .await;
    let toml = format!(
        "{}{}",
        provider("co", "cohere", &up.url("/v2")),
        embed_model("e", true, &[("co", "embed-v4.0", 0.12)])
    );
    let mut env = Env::start(&toml).await;
    let many: Vec<String> = (0..100).map(|i| format!("texte {i}")).collect();
    let r = env
        .embed(pb::EmbedRequest {
            model: "e".into(),
            input: many.clone(),
            dimensions: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(vectors_of(&r), numbered_vectors(100, 2));
    assert_eq!(
        r.usage.unwrap().prompt_tokens,
        200,
        "billed units of both batches"
    );
    assert!((r.cost_usd - 200.0 * 0.12 / 1e6).abs() < 1e-15);
    let mut reqs = up.requests();
    assert_eq!(reqs.len(), 2, "96 texts per call at most");
    reqs.sort_by_key(|q| std::cmp::Reverse(count_inputs(&q.body)));
    for q in &reqs {
        assert_eq!((q.method.as_str(), q.path.as_str()), ("POST", "/v2/embed"));
        assert_eq!(q.header("authorization"), Some("Bearer sk-co"));
        assert_eq!(q.body["model"], "embed-v4.0");
        assert_eq!(
            q.body["input_type"], "search_document",
            "Cohere's default for RAG"
        );
        assert_eq!(q.body["embedding_types"], json!(["float"]));
        assert_eq!(q.body["output_dimension"], 2);
    }
    assert_eq!(reqs[0].body["texts"], json!(many[..96]));
    assert_eq!(reqs[1].body["texts"], json!(many[96..]));

    env.embed(pb::EmbedRequest {
        input_type: Some("search_query".into()),
        ..texts("e", &["question ?"])
    })
    .await
    .unwrap();
    let q = up.requests().pop().unwrap();
    assert_eq!(q.body["input_type"], "search_query");
    assert!(q.body.get("output_dimension").is_none());

    // Cohere has no `user`: refused by name, never dropped.
    let err = env
        .embed(pb::EmbedRequest {
            user: Some("u".into()),
            ..texts("e", &["x"])
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "unsupported_parameter");
    assert_eq!(md(&err, "x-iaf-param"), "user");
    assert_eq!(up.count(), 3);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_batch_embed_contents_with_task_type_and_estimated_usage() {
    let up =
        Upstream::start(|req, _| gemini_embeddings(&numbered_vectors(count_inputs(&req.body), 3)))
            .await;
    let toml = format!(
        "{}{}",
        provider("g", "gemini", &up.url("/v1beta")),
        embed_model("e", true, &[("g", "gemini-embedding-001", 0.15)])
    );
    let mut env = Env::start(&toml).await;
    let r = env
        .embed(pb::EmbedRequest {
            dimensions: Some(3),
            input_type: Some("search_query".into()),
            ..texts("e", &["Bonjour le monde", "abc"])
        })
        .await
        .unwrap();
    assert_eq!(vectors_of(&r), numbered_vectors(2, 3));
    // No token count from Gemini: 16 characters ≈ 4 tokens, 3 ≈ 1, flagged as an estimate.
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.estimated), (5, true));
    assert!((r.cost_usd - 5.0 * 0.15 / 1e6).abs() < 1e-15);
    let q = &up.requests()[0];
    assert_eq!(
        (q.method.as_str(), q.path.as_str()),
        (
            "POST",
            "/v1beta/models/gemini-embedding-001:batchEmbedContents"
        )
    );
    assert_eq!(q.header("x-goog-api-key"), Some("sk-g"));
    assert_eq!(
        q.body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "Bonjour le monde"}]},
             "outputDimensionality": 3, "taskType": "RETRIEVAL_QUERY"},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "abc"}]},
             "outputDimensionality": 3, "taskType": "RETRIEVAL_QUERY"},
        ]})
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dimensions_and_input_type_only_where_a_route_carries_them() {
    let up = Upstream::start(|req, _| {
        openai_embeddings(&numbered_vectors(count_inputs(&req.body), 2), 1)
    })
    .await;
    let toml = format!(
        "{}{}",
        provider("p", "openai", &up.url("/v1")),
        embed_model("fixed", false, &[("p", "emb-up", 0.1)])
    );
    let mut env = Env::start(&toml).await;
    let err = env
        .embed(pb::EmbedRequest {
            dimensions: Some(256),
            ..texts("fixed", &["x"])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "unsupported_parameter");
    assert_eq!(md(&err, "x-iaf-param"), "dimensions");
    let err = env
        .embed(pb::EmbedRequest {
            input_type: Some("search_query".into()),
            ..texts("fixed", &["x"])
        })
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "unsupported_parameter");
    assert_eq!(md(&err, "x-iaf-param"), "input_type");
    assert_eq!(up.count(), 0, "nothing sent that the route would drop");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_ignoring_dimensions_falls_back_and_a_5xx_falls_back() {
    let sloppy = Upstream::start(|req, _| {
        openai_embeddings(&numbered_vectors(count_inputs(&req.body), 8), 1)
    })
    .await;
    let down = Upstream::always(error(503, "overloaded")).await;
    let good = Upstream::start(|req, _| {
        openai_embeddings(&numbered_vectors(count_inputs(&req.body), 2), 5)
    })
    .await;
    let toml = format!(
        "{}{}{}{}",
        provider("sloppy", "openai", &sloppy.url("/v1")),
        provider("down", "openai", &down.url("/v1")),
        provider("good", "openai", &good.url("/v1")),
        embed_model(
            "e",
            true,
            &[("sloppy", "a", 0.1), ("down", "b", 0.1), ("good", "c", 0.3)]
        )
    );
    let mut env = Env::start(&toml).await;
    let r = env
        .embed(pb::EmbedRequest {
            dimensions: Some(2),
            ..texts("e", &["x", "y"])
        })
        .await
        .unwrap();
    assert_eq!(r.provider, "good");
    assert_eq!(vectors_of(&r), numbered_vectors(2, 2));
    // sloppy once (malformed: next route), down twice (retried 503), good once.
    assert_eq!(r.attempts, 4);
    assert_eq!((sloppy.count(), down.count(), good.count()), (1, 2, 1));
    assert!(
        (r.cost_usd - 5.0 * 0.3 / 1e6).abs() < 1e-15,
        "the serving route's price"
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_field() {
    let up = Upstream::always(openai_ok("ok", 1, 1)).await;
    let toml = format!(
        "{}{}{}",
        provider("p", "openai", &up.url("/v1")),
        model("chat", &[("p", "c", 1.0, 1.0)]),
        embed_model("e", true, &[("p", "emb-up", 0.1)])
    );
    let mut env = Env::start(&toml).await;
    let param = |err: &Status| {
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        md(err, "x-iaf-param").to_owned()
    };
    let err = env.embed(texts("chat", &["x"])).await.unwrap_err();
    assert_eq!(param(&err), "model");
    assert!(err.message().contains("chat model"), "{}", err.message());
    let err = env.chat("e", "hi").await.unwrap_err();
    assert_eq!(param(&err), "model");
    assert!(
        err.message().contains("embedding model"),
        "{}",
        err.message()
    );
    let cases = [
        (texts("", &["x"]), "model"),
        (texts("e", &[]), "input"),
        (texts("e", &["x", ""]), "input[1]"),
        (
            pb::EmbedRequest {
                token_input: vec![pb::TokenIds { ids: vec![1] }],
                ..texts("e", &["x"])
            },
            "input",
        ),
        (
            pb::EmbedRequest {
                input: vec!["x".into(); 2049],
                ..texts("e", &[])
            },
            "input",
        ),
        (
            pb::EmbedRequest {
                input: vec!["é".repeat(300_000); 2],
                ..texts("e", &[])
            },
            "input",
        ),
        (
            pb::EmbedRequest {
                dimensions: Some(0),
                ..texts("e", &["x"])
            },
            "dimensions",
        ),
        (
            pb::EmbedRequest {
                input_type: Some("documents".into()),
                ..texts("e", &["x"])
            },
            "input_type",
        ),
    ];
    for (req, want) in cases {
        let err = env.embed(req).await.unwrap_err();
        assert_eq!(error_code(&err), "invalid_argument", "{err:?}");
        assert_eq!(param(&err), want, "{}", err.message());
    }
    let err = env.embed(texts("nope", &["x"])).await.unwrap_err();
    assert_eq!(error_code(&err), "model_not_found");
    let err = env.gw.client.embed(texts("e", &["x"])).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(up.count(), 0);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_keys_the_mock_answers_deterministic_vectors() {
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("premium").await;
    let db = test_db(Backend::Sqlite).await;
    let catalog = Catalog::builtin().unwrap();
    let gw = Gw::start(config(&db, &promo, catalog)).await;
    let embed = |req: pb::EmbedRequest| {
        let mut client = gw.client.clone();
        let key = key.clone();
        async move {
            client
                .embed(authed(req, &key))
                .await
                .map(|r| r.into_inner())
        }
    };
    let a = embed(texts("text-embedding-3-small", &["Bonjour", "Salut"]))
        .await
        .unwrap();
    assert_eq!(a.provider, "mock");
    assert_eq!(a.cost_usd, 0.0);
    let v = vectors_of(&a);
    assert_eq!(v[0].len(), 1536);
    assert_ne!(v[0], v[1]);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    // Same text, same vector, whatever else is in the request.
    let b = embed(texts("text-embedding-3-small", &["Salut"]))
        .await
        .unwrap();
    assert_eq!(vectors_of(&b)[0], v[1]);
    let u = a.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (4, 0));
    let short = embed(pb::EmbedRequest {
        dimensions: Some(64),
        ..texts("text-embedding-3-small", &["Bonjour"])
    })
    .await
    .unwrap();
    assert_eq!(short.data[0].vector.len(), 64);
    let ids = embed(pb::EmbedRequest {
        model: "text-embedding-3-small".into(),
        token_input: vec![pb::TokenIds { ids: vec![1, 2, 3] }],
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(ids.usage.unwrap().prompt_tokens, 3, "one token per id");
    // Offline as online: a model that cannot shorten its vectors refuses `dimensions`.
    let err = embed(pb::EmbedRequest {
        dimensions: Some(64),
        ..texts("mistral-embed", &["Bonjour"])
    })
    .await
    .unwrap_err();
    assert_eq!(error_code(&err), "unsupported_parameter");
    assert_eq!(md(&err, "x-iaf-param"), "dimensions");

    // The largest request (2048 texts, 1536 floats each: 12.6 MB) is answered whole, to a client
    // that accepts answers that large.
    let mut big_client =
        pb::llm_gateway_client::LlmGatewayClient::connect(format!("http://{}", gw.handle.addr))
            .await
            .unwrap()
            .max_decoding_message_size(llm_gateway::service::MAX_ANSWER_BYTES);
    let many: Vec<String> = (0..2048).map(|i| format!("texte {i}")).collect();
    let r = big_client
        .embed(authed(
            pb::EmbedRequest {
                model: "text-embedding-3-small".into(),
                input: many,
                ..Default::default()
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.data.len(), 2048);
    assert!(r.data.iter().all(|e| e.vector.len() == 1536));
    let seventh = embed(texts("text-embedding-3-small", &["texte 7"]))
        .await
        .unwrap();
    assert_eq!(vectors_of(&r)[7], vectors_of(&seventh)[0], "in input order");
    gw.stop().await;
    promo.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_count_against_requests_per_minute() {
    early_in_minute().await;
    let up = Upstream::start(|req, _| {
        if req.path.ends_with("/embeddings") {
            openai_embeddings(&numbered_vectors(count_inputs(&req.body), 2), 1)
        } else {
            openai_ok("ok", 1, 1)
        }
    })
    .await;
    let toml = format!(
        "{}{}{}",
        provider("p", "openai", &up.url("/v1")),
        model("chat", &[("p", "c", 1.0, 1.0)]),
        embed_model("e", false, &[("p", "emb-up", 0.1)])
    );
    let mut promo = Promo::start().await;
    promo.set_package("starter", 3, 1_000_000, "").await;
    let (_, key) = promo.signup("starter").await;
    let db = test_db(Backend::Sqlite).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&toml))).await;
    gw.client
        .chat(authed(chat_req("chat", "hi"), &key))
        .await
        .unwrap();
    for _ in 0..2 {
        gw.client
            .embed(authed(texts("e", &["x"]), &key))
            .await
            .unwrap();
    }
    let err = gw
        .client
        .embed(authed(texts("e", &["x"]), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&err), "rate_limited");
    assert_eq!(md(&err, "x-iaf-quota-limit"), "requests_per_minute");
    assert_eq!(up.count(), 3);
    gw.stop().await;
    promo.stop().await;
}

/// An embeddings call spends the monthly tokens (its input) and shows in the usage reports
/// under the embedding model, next to chat.
async fn embeddings_spend_the_monthly_tokens_and_show_in_usage(backend: Backend) {
    let up = Upstream::start(|req, _| {
        if req.path.ends_with("/embeddings") {
            openai_embeddings(&numbered_vectors(count_inputs(&req.body), 2), 600)
        } else {
            openai_ok("ok", 30, 20)
        }
    })
    .await;
    let toml = format!(
        "{}{}{}",
        provider("p", "openai", &up.url("/v1")),
        model("chat", &[("p", "c", 1.0, 2.0)]),
        embed_model("e", false, &[("p", "emb-up", 0.5)])
    );
    let mut promo = Promo::start().await;
    promo.set_package("dev", 1000, 1000, "").await;
    let (user_id, key) = promo.signup("dev").await;
    let db = test_db(backend).await;
    let mut gw = Gw::start(config(&db, &promo, catalog(&toml))).await;
    gw.client
        .chat(authed(chat_req("chat", "hi"), &key))
        .await
        .unwrap();
    // 50 used: admitted, 650 after it; then 350 left: admitted (usage is known after the
    // answer), 1250 after it; then refused.
    for _ in 0..2 {
        gw.client
            .embed(authed(texts("e", &["x"]), &key))
            .await
            .unwrap();
    }
    let err = gw
        .client
        .embed(authed(texts("e", &["x"]), &key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&err), "quota_exceeded");
    assert_eq!(md(&err, "x-iaf-quota-limit"), "tokens_per_month");
    assert_eq!(up.count(), 3);

    let u = gw
        .client
        .get_usage(authed(pb::GetUsageRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.requests, 3);
    assert_eq!((u.prompt_tokens, u.completion_tokens), (1230, 20));
    assert_eq!(u.tokens_remaining, 0);
    let e = u
        .models
        .iter()
        .find(|m| m.model == "e")
        .expect("embedding model listed");
    assert_eq!(
        (e.requests, e.prompt_tokens, e.completion_tokens),
        (2, 1200, 0)
    );
    assert!(
        (e.cost_usd - 1200.0 * 0.5 / 1e6).abs() < 1e-12,
        "{}",
        e.cost_usd
    );
    assert!(u.models.iter().any(|m| m.model == "chat"));

    let keys = gw
        .client
        .get_keys_usage(internal(pb::GetKeysUsageRequest {
            key_ids: vec![u.key_id.clone()],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.prompt_tokens, 1230);
    assert!(
        keys.models
            .iter()
            .any(|m| m.model == "e" && m.requests == 2)
    );
    assert_eq!(u.user_id, user_id);
    gw.stop().await;
    promo.stop().await;
    db.close().await;
}

on_both_backends!(embeddings_spend_the_monthly_tokens_and_show_in_usage);
