//! Each wire format end to end: gRPC client → gateway → local upstream speaking the provider's
//! format → back, unary and streamed, asserting both the answer and what the upstream received.

use serde_json::json;

use crate::helpers::*;
use iafactory_testkit::upstream::*;

const PIECES: &[&str] = &["Bon", "jour ", "é✓🚀", " !"];

fn one(kind: &str, base_path: &str, up: &Upstream, upstream_model: &str) -> String {
    format!(
        "{}{}",
        provider("p", kind, &up.url(base_path)),
        model("m", &[("p", upstream_model, 1.0, 2.0)])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_unary_reports_provider_usage_cost_and_sends_the_real_request() {
    let up = Upstream::always(openai_ok("Bonjour !", 1000, 500)).await;
    let mut env = Env::start(&one("openai", "/v1", &up, "gpt-up")).await;
    let r = env.chat("m", "Salut").await.unwrap();
    assert_eq!(text_of(r.message.as_ref()), "Bonjour !");
    assert_eq!(r.provider, "p");
    assert_eq!(r.upstream_model, "gpt-up");
    assert_eq!(r.model, "m");
    assert_eq!(r.finish_reason, "stop");
    assert_eq!(r.attempts, 1);
    let u = r.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens),
        (1000, 500, 1500)
    );
    assert!(!u.estimated);
    // 1000 × $1/M + 500 × $2/M
    assert!((r.cost_usd - 0.002).abs() < 1e-12, "{}", r.cost_usd);

    // The call feeds the public "median latency of the last calls" figure.
    let p = env
        .gw
        .client
        .list_providers(crate::helpers::internal(
            iafactory::proto::iafactory::llm::v1::ListProvidersRequest {},
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.recent_calls, 1);
    assert!(
        p.median_latency_ms
            .is_some_and(|m| m >= 0.0 && m <= r.latency_ms as f64 + 1.0)
    );

    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(
        (q.method.as_str(), q.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(q.header("authorization"), Some("Bearer sk-p"));
    assert_eq!(q.body["model"], "gpt-up");
    assert_eq!(q.body["stream"], false);
    assert_eq!(q.body["max_tokens"], 64);
    assert_eq!(
        q.body["messages"],
        json!([{"role":"system","content":"Réponds en français."},{"role":"user","content":"Salut"}])
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_stream_delivers_deltas_then_usage() {
    let up = Upstream::always(openai_stream(PIECES, 12, 7)).await;
    let mut env = Env::start(&one("openai", "/v1", &up, "gpt-up")).await;
    let (events, err) = env.stream("m", "Salut").await.unwrap();
    assert!(err.is_none(), "{err:?}");
    let (text, end) = stream_text(&events);
    assert_eq!(text, PIECES.concat());
    let end = end.expect("end event");
    let u = end.usage.unwrap();
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.estimated),
        (12, 7, false)
    );
    assert_eq!(end.finish_reason, "stop");
    assert!(
        events
            .iter()
            .all(|e| e.provider == "p" && e.upstream_model == "gpt-up")
    );
    let q = &up.requests()[0];
    assert_eq!(q.body["stream"], true);
    assert_eq!(q.body["stream_options"]["include_usage"], true);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_unary_and_stream() {
    let up = Upstream::unary_or_stream(
        anthropic_ok("Bonjour", 20, 9),
        anthropic_stream(PIECES, 20, 9),
    )
    .await;
    let mut env = Env::start(&one("anthropic", "/v1", &up, "claude-up")).await;
    let r = env.chat("m", "Salut").await.unwrap();
    assert_eq!(text_of(r.message.as_ref()), "Bonjour");
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (20, 9));
    assert_eq!(r.finish_reason, "stop");

    let (events, err) = env.stream("m", "Salut").await.unwrap();
    assert!(err.is_none(), "{err:?}");
    let (text, end) = stream_text(&events);
    assert_eq!(text, PIECES.concat());
    let u = end.unwrap().usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (20, 9));

    let q = &up.requests()[0];
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(q.header("x-api-key"), Some("sk-p"));
    assert_eq!(q.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(q.body["system"], "Réponds en français.");
    assert_eq!(
        q.body["messages"],
        json!([{"role":"user","content":"Salut"}])
    );
    assert_eq!(q.body["max_tokens"], 64);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_generate_content_unary_and_stream() {
    let up = Upstream::start(|req, _| {
        if req.path.contains("streamGenerateContent") {
            gemini_stream(PIECES, 30, 11)
        } else {
            gemini_ok("Bonjour", 30, 11)
        }
    })
    .await;
    let mut env = Env::start(&one("gemini", "/v1beta", &up, "gemini-up")).await;
    let r = env.chat("m", "Salut").await.unwrap();
    assert_eq!(text_of(r.message.as_ref()), "Bonjour");
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (30, 11));

    let (events, err) = env.stream("m", "Salut").await.unwrap();
    assert!(err.is_none(), "{err:?}");
    let (text, end) = stream_text(&events);
    assert_eq!(text, PIECES.concat());
    assert_eq!(end.unwrap().usage.unwrap().completion_tokens, 11);

    let reqs = up.requests();
    assert_eq!(reqs[0].path, "/v1beta/models/gemini-up:generateContent");
    assert_eq!(
        reqs[1].path,
        "/v1beta/models/gemini-up:streamGenerateContent?alt=sse"
    );
    assert_eq!(reqs[0].header("x-goog-api-key"), Some("sk-p"));
    assert_eq!(
        reqs[0].body["systemInstruction"],
        json!({"parts":[{"text":"Réponds en français."}]})
    );
    assert_eq!(
        reqs[0].body["contents"],
        json!([{"role":"user","parts":[{"text":"Salut"}]}])
    );
    assert_eq!(reqs[0].body["generationConfig"]["maxOutputTokens"], 64);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_chat_v2_unary_and_stream() {
    let up =
        Upstream::unary_or_stream(cohere_ok("Bonjour", 8, 5), cohere_stream(PIECES, 8, 5)).await;
    let mut env = Env::start(&one("cohere", "/v2", &up, "command-up")).await;
    let r = env.chat("m", "Salut").await.unwrap();
    assert_eq!(text_of(r.message.as_ref()), "Bonjour");
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (8, 5));

    let (events, err) = env.stream("m", "Salut").await.unwrap();
    assert!(err.is_none(), "{err:?}");
    let (text, end) = stream_text(&events);
    assert_eq!(text, PIECES.concat());
    assert_eq!(end.unwrap().usage.unwrap().prompt_tokens, 8);

    let q = &up.requests()[0];
    assert_eq!(q.path, "/v2/chat");
    assert_eq!(q.header("authorization"), Some("Bearer sk-p"));
    assert_eq!(q.body["messages"][0]["role"], "system");
    assert_eq!(q.body["model"], "command-up");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_usage_is_estimated_and_flagged() {
    let up = Upstream::always(Reply::json(
        200,
        json!({"choices":[{"index":0,"message":{"role":"assistant","content":"12345678"},"finish_reason":"length"}]}),
    ))
    .await;
    let mut env = Env::start(&one("openai", "/v1", &up, "x")).await;
    let r = env.chat("m", "Salut").await.unwrap();
    let u = r.usage.unwrap();
    assert!(u.estimated);
    assert_eq!(u.completion_tokens, 2);
    assert_eq!(r.finish_reason, "length");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_error_event_before_the_first_token_is_retried_then_falls_back() {
    let overloaded = Reply::Sse {
        events: vec![
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n".into(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into(),
        ],
        drop_after: None,
    };
    let alpha = Upstream::always(overloaded).await;
    let beta = Upstream::always(openai_stream(&["ok"], 1, 1)).await;
    let toml = format!(
        "{}{}{}",
        provider("alpha", "anthropic", &alpha.url("/v1")),
        provider("beta", "openai", &beta.url("/v1")),
        model(
            "m",
            &[("alpha", "claude", 1.0, 1.0), ("beta", "gpt", 1.0, 1.0)]
        )
    );
    let mut env = Env::start(&toml).await;
    let (events, err) = env.stream("m", "hi").await.unwrap();
    assert!(err.is_none(), "{err:?}");
    assert_eq!(stream_text(&events).0, "ok");
    assert_eq!(events[0].provider, "beta");
    assert_eq!(
        alpha.count(),
        2,
        "an overloaded error is transient: retried once"
    );
    let p = env.providers().await;
    let a = p.providers.iter().find(|p| p.name == "alpha").unwrap();
    assert_eq!(a.last_error, "api_error");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_answers_are_accounted_like_unary_ones() {
    let up = Upstream::unary_or_stream(openai_ok("x", 10, 5), openai_stream(PIECES, 100, 50)).await;
    let mut env = Env::start(&one("openai", "/v1", &up, "gpt-up")).await;
    env.stream("m", "a").await.unwrap();
    env.chat("m", "b").await.unwrap();
    let u = env
        .gw
        .client
        .get_usage(authed(
            iafactory::proto::iafactory::llm::v1::GetUsageRequest {},
            &env.key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(u.requests, 2);
    assert_eq!((u.prompt_tokens, u.completion_tokens), (110, 55));
    let metrics = env.gw.handle.metrics_text();
    assert!(
        metrics.contains(
            "iaf_grpc_requests_total{method=\"/iafactory.llm.v1.LlmGateway/ChatStream\",code=\"Ok\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("iaf_llm_tokens_total{provider=\"p\",model=\"m\",kind=\"prompt\"} 110"),
        "{metrics}"
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_format_survives_arbitrary_network_chunking() {
    // The same streams cut into 1-, 3- and 7-byte pieces, across events, CRLFs and multi-byte
    // characters.
    for chunk in [1usize, 3, 7] {
        let up = Upstream::start(move |req, _| {
            let stream = if req.path.ends_with("/chat/completions") {
                openai_stream(PIECES, 5, 6)
            } else if req.path.ends_with("/messages") {
                anthropic_stream(PIECES, 5, 6)
            } else if req.path.contains(":streamGenerateContent") {
                gemini_stream(PIECES, 5, 6)
            } else {
                cohere_stream(PIECES, 5, 6)
            };
            stream.rechunked(chunk)
        })
        .await;
        let toml = format!(
            "{}{}{}{}{}{}{}{}",
            provider("o", "openai", &up.url("/v1")),
            provider("a", "anthropic", &up.url("/v1")),
            provider("g", "gemini", &up.url("/v1beta")),
            provider("c", "cohere", &up.url("/v2")),
            model("mo", &[("o", "x", 1.0, 1.0)]),
            model("ma", &[("a", "x", 1.0, 1.0)]),
            model("mg", &[("g", "x", 1.0, 1.0)]),
            model("mc", &[("c", "x", 1.0, 1.0)]),
        );
        let mut env = Env::start(&toml).await;
        for m in ["mo", "ma", "mg", "mc"] {
            let (events, err) = env.stream(m, "Salut").await.unwrap();
            assert!(err.is_none(), "{m}/{chunk}: {err:?}");
            let (text, end) = stream_text(&events);
            assert_eq!(text, PIECES.concat(), "{m}/{chunk}");
            let u = end.unwrap().usage.unwrap();
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (5, 6),
                "{m}/{chunk}"
            );
        }
        env.gw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_abandoned_by_the_client_is_still_accounted() {
    // Two content chunks, then the provider "thinks" for 3 s; the client leaves after the first.
    let up = Upstream::always(
        openai_stream(&["un ", "deux ", "trois"], 1, 3)
            .pausing_at(3, std::time::Duration::from_secs(3)),
    )
    .await;
    let mut env = Env::start(&one("openai", "/v1", &up, "gpt-up")).await;
    let mut s = env
        .gw
        .client
        .chat_stream(authed(chat_req("m", "Salut"), &env.key))
        .await
        .unwrap()
        .into_inner();
    let first = s.message().await.unwrap().unwrap();
    assert!(matches!(
        first.event,
        Some(iafactory::proto::iafactory::llm::v1::chat_stream_event::Event::Delta(_))
    ));
    drop(s);
    let mut requests = 0;
    for _ in 0..250 {
        let u = env
            .gw
            .client
            .get_usage(authed(
                iafactory::proto::iafactory::llm::v1::GetUsageRequest {},
                &env.key,
            ))
            .await
            .unwrap()
            .into_inner();
        requests = u.requests;
        if requests == 1 {
            assert!(u.total_tokens > 0, "estimated usage charged");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(requests, 1);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_wrong_key_400_is_the_providers_fault_and_falls_back() {
    // Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID, not 401.
    let gemini = Upstream::always(Reply::json(
        400,
        json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}),
    ))
    .await;
    let backup = Upstream::always(openai_ok("backup", 1, 1)).await;
    let toml = format!(
        "{}{}{}",
        provider("g", "gemini", &gemini.url("/v1beta")),
        provider("o", "openai", &backup.url("/v1")),
        model("m", &[("g", "gemini-x", 1.0, 1.0), ("o", "gpt", 1.0, 1.0)])
    );
    let mut env = Env::start(&toml).await;
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "o");
    assert_eq!(gemini.count(), 1, "not retried");
    env.gw.stop().await;
}
