//! `/v1/*` end to end: promo-service (API keys), llm-gateway (routing, usage) and gateway-rest,
//! all in-process, with a local fake upstream speaking OpenAI's wire format; plus the official
//! `openai` Python SDK against the stack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::sse::Events;

pub(crate) const MODEL: &str = "iaf-test";
pub(crate) const UPSTREAM_MODEL: &str = "up-model-1";

/// A local OpenAI-compatible provider: answers "Bonjour de l'amont" (or streams it in pieces),
/// with usage 7 prompt + 5 completion tokens. Counts calls; refuses a wrong provider key.
pub(crate) struct FakeUpstream {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicUsize>,
}

async fn fake_chat(
    State(calls): State<Arc<AtomicUsize>>,
    headers: http::HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap();
    calls.fetch_add(1, Ordering::Relaxed);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-fake") {
        return json_reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": {"message": "bad provider key"}}),
        );
    }
    let model = body["model"].as_str().unwrap_or("").to_owned();
    if body["stream"] == true {
        let mut out = String::new();
        let mut push = |v: Value| out.push_str(&format!("data: {v}\n\n"));
        push(
            json!({"id":"up","object":"chat.completion.chunk","model":model,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}),
        );
        for piece in ["Bonjour", " de", " l'amont"] {
            push(
                json!({"id":"up","object":"chat.completion.chunk","model":model,"choices":[{"index":0,"delta":{"content":piece},"finish_reason":null}]}),
            );
        }
        push(
            json!({"id":"up","object":"chat.completion.chunk","model":model,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
        );
        push(
            json!({"id":"up","object":"chat.completion.chunk","model":model,"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12}}),
        );
        out.push_str("data: [DONE]\n\n");
        return ([("content-type", "text/event-stream")], out).into_response();
    }
    json_reply(
        StatusCode::OK,
        json!({
            "id": "up", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Bonjour de l'amont"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
        }),
    )
}

fn json_reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

impl FakeUpstream {
    pub(crate) async fn start() -> FakeUpstream {
        let calls = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/v1/chat/completions", axum::routing::post(fake_chat))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream { addr, calls }
    }
}

/// promo-service + llm-gateway (its upstreams: `U`) + gateway-rest.
pub(crate) struct LlmStack<U = FakeUpstream> {
    pub stack: Stack,
    pub upstream: U,
    llm: Option<llm_gateway::Handle>,
    _llm_dir: tempfile::TempDir,
}

impl LlmStack {
    /// On the fake OpenAI-compatible upstream, serving [`MODEL`].
    pub(crate) async fn spawn() -> LlmStack {
        LlmStack::spawn_with(|_| {}).await
    }

    pub(crate) async fn spawn_with(tweak: impl FnOnce(&mut gateway_rest::Config)) -> LlmStack {
        let upstream = FakeUpstream::start().await;
        let toml = format!(
            "[providers.fake]\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\napi_key_env = \"FAKE_KEY\"\n\n\
             [[models]]\nname = \"{MODEL}\"\nroutes = [{{ provider = \"fake\", model = \"{UPSTREAM_MODEL}\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 2.0 }}]\n",
            upstream.addr
        );
        LlmStack::on_catalog(upstream, &toml, &[("fake", "sk-fake")], tweak).await
    }
}

impl<U> LlmStack<U> {
    /// On a catalogue of llm-gateway (TOML) whose providers get the keys given.
    pub(crate) async fn on_catalog(
        upstream: U,
        toml: &str,
        keys: &[(&str, &str)],
        tweak: impl FnOnce(&mut gateway_rest::Config),
    ) -> LlmStack<U> {
        let promo = Promo::spawn().await;
        let mut catalog = llm_gateway::catalog::Catalog::from_toml("test", toml).unwrap();
        for (provider, key) in keys {
            assert!(catalog.set_key(provider, key), "no provider {provider}");
        }
        let dir = tempfile::tempdir().unwrap();
        let mut config = llm_gateway::Config::new(
            format!("sqlite://{}/llm.db", dir.path().display()),
            promo.url(),
            catalog,
        );
        config.usage_flush_interval = Duration::from_millis(100);
        config.internal_token = Some(iafactory::secret::InternalToken::new(INTERNAL_TOKEN));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let llm = llm_gateway::start(config, listener).await.unwrap();
        let llm_url = format!("http://{}", llm.addr);
        let mut gw_config = gateway_rest::Config::new(promo.url(), llm_url);
        gw_config.validate_rate = None;
        gw_config.signup_rate = None;
        gw_config.auth_failure_rate = None;
        gw_config.admin_token = Some(gateway_rest::AdminToken::new(ADMIN_TOKEN));
        gw_config.internal_token = Some(gateway_rest::InternalToken::new(INTERNAL_TOKEN));
        tweak(&mut gw_config);
        let gw = Gateway::spawn(gw_config).await;
        let stack = Stack::from_parts(promo, gw).await;
        LlmStack {
            stack,
            upstream,
            llm: Some(llm),
            _llm_dir: dir,
        }
    }

    /// A fresh customer's API key, obtained through the REST signup.
    pub(crate) async fn api_key(&self, package: &str) -> String {
        let email = format!("{}@llm.dz", uuid::Uuid::new_v4().simple());
        let a = self.stack.signup(&email, package, "").await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
        a.body["api_key"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn chat(&self, key: &str, body: Value) -> reqwest::Response {
        self.stack
            .gw
            .request(Method::POST, "/v1/chat/completions")
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn stop(mut self) {
        if let Some(llm) = self.llm.take() {
            let _ = llm.shutdown().await;
        }
    }
}

fn hello(stream: bool) -> Value {
    let mut body = json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Tu es utile."},
            {"role": "user", "content": [{"type": "text", "text": "Salut"}]}
        ],
        "temperature": 0.2,
        "max_tokens": 64,
        "stream": stream,
        "user": "user-42"
    });
    // Like OpenAI, stream_options is refused without "stream": true.
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_non_streaming() {
    let s = LlmStack::spawn().await;
    let key = s.api_key("dev").await;
    let a = Answer::of(s.chat(&key, hello(false)).await).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let b = &a.body;
    assert_eq!(b["object"], "chat.completion");
    assert!(b["id"].as_str().unwrap().starts_with("chatcmpl-"), "{b}");
    assert_eq!(b["model"], MODEL);
    assert_eq!(b["choices"][0]["message"]["role"], "assistant");
    assert_eq!(b["choices"][0]["message"]["content"], "Bonjour de l'amont");
    assert_eq!(b["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        b["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
    );
    assert_eq!(b["iaf"]["provider"], "fake");
    assert_eq!(b["iaf"]["upstream_model"], UPSTREAM_MODEL);
    assert_eq!(a.header("x-iaf-provider"), Some("fake"));
    assert!(a.header("x-iaf-latency-ms").unwrap().parse::<u64>().is_ok());
    // What the call cost upstream is the platform's cost price: not shown by default.
    assert_eq!(a.header("x-iaf-cost-usd"), None);
    assert!(b["iaf"].get("cost_usd").is_none(), "{b}");
    assert_eq!(s.upstream.calls.load(Ordering::Relaxed), 1);
    s.stop().await;
}

/// The upstream cost (our cost price, in USD) leaves /v1 only when the operator turns
/// SHOW_UPSTREAM_COST on: in the chat answer and its header, the stream's last chunk, /v1/usage
/// and the route prices of /v1/models. Off (the default), none of them says a dollar amount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_cost_is_shown_only_when_the_operator_says_so() {
    for show in [false, true] {
        let s = LlmStack::spawn_with(|c| c.show_upstream_cost = show).await;
        let key = s.api_key("dev").await;
        let a = Answer::of(s.chat(&key, hello(false)).await).await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        let streamed = s.chat(&key, hello(true)).await.text().await.unwrap();
        let usage = Answer::of(
            s.stack
                .gw
                .request(reqwest::Method::GET, "/v1/usage")
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let models = Answer::of(
            s.stack
                .gw
                .request(reqwest::Method::GET, "/v1/models")
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let texts = [
            a.body.to_string(),
            streamed.clone(),
            usage.body.to_string(),
            models.body.to_string(),
        ];
        if show {
            // 7 tokens at $1/M + 5 at $2/M.
            let cost: f64 = a.header("x-iaf-cost-usd").unwrap().parse().unwrap();
            assert!((cost - 0.000017).abs() < 1e-9, "{cost}");
            assert!((a.body["iaf"]["cost_usd"].as_f64().unwrap() - 0.000017).abs() < 1e-9);
            assert!(streamed.contains("\"cost_usd\""), "{streamed}");
            assert!(usage.body["cost_usd"].as_f64().unwrap() > 0.0, "{usage:?}");
            assert_eq!(
                models.body["data"][0]["routes"][0]["input_usd_per_mtok"],
                json!(1.0)
            );
        } else {
            assert_eq!(a.header("x-iaf-cost-usd"), None);
            for t in &texts {
                assert!(!t.contains("usd"), "a dollar amount left /v1: {t}");
            }
            // What customers see instead: tokens against their quota.
            assert_eq!(usage.body["total_tokens"], json!(24), "{usage:?}");
        }
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion_streaming_sends_openai_chunks_and_done() {
    let s = LlmStack::spawn().await;
    let key = s.api_key("dev").await;
    let r = s.chat(&key, hello(true)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-iaf-provider"], "fake");
    let mut events = Events::new(r.bytes_stream());
    let mut chunks = Vec::new();
    let mut done = false;
    while let Some((_, data)) = events.next().await {
        if data == "[DONE]" {
            done = true;
            assert!(events.next().await.is_none(), "data after [DONE]");
            break;
        }
        chunks.push(serde_json::from_str::<Value>(&data).unwrap());
    }
    assert!(done, "no [DONE]: {chunks:?}");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    let id = chunks[0]["id"].clone();
    assert!(chunks.iter().all(|c| c["id"] == id));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour de l'amont");
    let finish: Vec<&Value> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(finish.len(), 1);
    assert_eq!(finish[0]["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish[0]["iaf"]["provider"], "fake");
    // include_usage: a last chunk with no choices and the usage.
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["total_tokens"], 12);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_usage_providers_and_errors() {
    let s = LlmStack::spawn().await;
    let key = s.api_key("starter").await;

    let m = s.stack.get("/v1/models").await;
    assert_eq!(m.status, StatusCode::OK, "{m:?}");
    assert_eq!(m.body["object"], "list");
    let model = m.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == MODEL)
        .expect("model listed");
    assert_eq!(model["object"], "model");
    assert_eq!(model["available"], true);
    assert_eq!(model["routes"][0]["provider"], "fake");

    // Errors are OpenAI-shaped, with the platform's stable code and the right status.
    let none = Answer::of(
        s.stack
            .gw
            .request(Method::POST, "/v1/chat/completions")
            .json(&hello(false))
            .send()
            .await
            .unwrap(),
    )
    .await;
    none.assert_error(401, "unauthenticated");
    assert_eq!(none.body["error"]["type"], "authentication_error");
    let bad = Answer::of(s.chat("iaf_not_a_real_key_0000000000", hello(false)).await).await;
    bad.assert_error(401, "unauthenticated");
    let bad_stream = Answer::of(s.chat("iaf_not_a_real_key_0000000000", hello(true)).await).await;
    bad_stream.assert_error(401, "unauthenticated");
    let mut unknown = hello(false);
    unknown["model"] = json!("no-such-model");
    let u = Answer::of(s.chat(&key, unknown).await).await;
    u.assert_error(404, "model_not_found");
    assert_eq!(u.body["error"]["type"], "not_found_error");
    let mut empty = hello(false);
    empty["messages"] = json!([]);
    Answer::of(s.chat(&key, empty).await)
        .await
        .assert_error(400, "invalid_argument");

    // Usage: two successful calls, then the report (usage is written in batches: wait for it).
    for stream in [false, true] {
        let r = s.chat(&key, hello(stream)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.bytes().await.unwrap();
    }
    let mut report = Value::Null;
    for _ in 0..100 {
        let u = Answer::of(
            s.stack
                .gw
                .request(Method::GET, "/v1/usage")
                .bearer_auth(&key)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(u.status, StatusCode::OK, "{u:?}");
        if u.body["requests"] == 2 {
            report = u.body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(report["requests"], 2, "{report}");
    assert_eq!(report["package"], "starter");
    assert_eq!(report["total_tokens"], 24);
    assert_eq!(report["tokens_per_month"], 1_000_000);
    assert_eq!(report["tokens_remaining"], 1_000_000 - 24);
    Answer::of(
        s.stack
            .gw
            .request(Method::GET, "/v1/usage")
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(401, "unauthenticated");

    // Provider status: admin only.
    s.stack
        .get("/api/gateway/providers")
        .await
        .assert_error(401, "unauthenticated");
    let p = s.stack.admin_get("/api/gateway/providers").await;
    assert_eq!(p.status, StatusCode::OK, "{p:?}");
    assert_eq!(p.body["mock_active"], false);
    let fake = p.body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fake")
        .expect("fake provider listed");
    assert_eq!(fake["configured"], true);
    assert_eq!(fake["circuit_state"], "closed");
    assert!(fake["requests"].as_u64().unwrap() >= 2);
    assert!(!p.text.contains("sk-fake"), "a provider key leaked");

    // The landing page's public figures: counts only, nothing that names a provider.
    let st = s.stack.get("/api/platform/status").await;
    assert_eq!(st.status, StatusCode::OK, "{st:?}");
    assert_eq!(st.body["providers_configured"], 1);
    assert_eq!(st.body["mock_active"], false);
    assert!(
        st.body["median_latency_ms"]
            .as_f64()
            .is_some_and(|l| l >= 0.0),
        "{st:?}"
    );
    assert!(
        !st.text.contains("fake") && !st.text.contains("127.0.0.1"),
        "{st:?}"
    );

    // Both backends up: healthz says ok.
    let h = s.stack.get("/healthz").await;
    assert_eq!(h.body["status"], "ok", "{h:?}");
    s.stop().await;
}

/// gateway-rest reads provider status from llm-gateway with the internal token: without it (or
/// with a token llm-gateway refuses) both provider routes are a 503 — the operator's
/// misconfiguration, not the caller's fault — and the public status never turns into a 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_status_needs_the_internal_token_between_the_services() {
    for token in [
        None,
        Some(gateway_rest::InternalToken::new("not-the-llm-token-0123")),
    ] {
        let s = LlmStack::spawn_with(|c| c.internal_token = token).await;
        for path in ["/api/platform/status", "/api/gateway/providers"] {
            let a = s.stack.admin_get(path).await;
            a.assert_error(503, "unavailable");
        }
        let st = s.stack.get("/api/platform/status").await;
        st.assert_error(503, "unavailable");
        s.stop().await;
    }
}

/// The official OpenAI Python SDK (from the project's .venv) against the running stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_openai_python_sdk_works_against_the_stack() {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    assert!(
        std::path::Path::new(python).exists(),
        "{python} is missing: run scripts/test-setup.sh"
    );
    let s = LlmStack::spawn().await;
    let key = s.api_key("dev").await;
    let script = r#"
import json, os, sys
from openai import OpenAI, AuthenticationError, NotFoundError
client = OpenAI(base_url=os.environ["BASE_URL"], api_key=os.environ["API_KEY"], max_retries=0)
out = {}
models = client.models.list()
out["models"] = [m.id for m in models.data]
r = client.chat.completions.create(model=os.environ["MODEL"], messages=[{"role": "user", "content": "Salut"}])
out["content"] = r.choices[0].message.content
out["finish_reason"] = r.choices[0].finish_reason
out["total_tokens"] = r.usage.total_tokens
raw = client.chat.completions.with_raw_response.create(model=os.environ["MODEL"], messages=[{"role": "user", "content": "Salut"}])
out["provider_header"] = raw.headers.get("x-iaf-provider")
pieces = []
finish = None
usage = None
stream = client.chat.completions.create(model=os.environ["MODEL"], messages=[{"role": "user", "content": "Salut"}], stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage.total_tokens
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
        if c.finish_reason:
            finish = c.finish_reason
out["stream_content"] = "".join(pieces)
out["stream_finish"] = finish
out["stream_usage"] = usage
try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    out["not_found"] = "no error"
except NotFoundError as e:
    out["not_found"] = e.body.get("code") if isinstance(e.body, dict) else str(e.body)
bad = OpenAI(base_url=os.environ["BASE_URL"], api_key="iaf_wrong", max_retries=0)
try:
    bad.chat.completions.create(model=os.environ["MODEL"], messages=[{"role": "user", "content": "x"}])
    out["auth"] = "no error"
except AuthenticationError as e:
    out["auth"] = e.status_code
print(json.dumps(out))
"#;
    let output = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .env("BASE_URL", s.stack.gw.url("/v1"))
        .env("API_KEY", &key)
        .env("MODEL", MODEL)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python failed:\n{stderr}\n{stdout}"
    );
    let out: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        out["models"].as_array().unwrap().contains(&json!(MODEL)),
        "{out}"
    );
    assert_eq!(out["content"], "Bonjour de l'amont");
    assert_eq!(out["finish_reason"], "stop");
    assert_eq!(out["total_tokens"], 12);
    assert_eq!(out["provider_header"], "fake");
    assert_eq!(out["stream_content"], "Bonjour de l'amont");
    assert_eq!(out["stream_finish"], "stop");
    assert_eq!(out["stream_usage"], 12);
    assert_eq!(out["not_found"], "model_not_found");
    assert_eq!(out["auth"], 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_api_keys_is_stopped_at_the_edge() {
    let s = LlmStack::spawn_with(|c| {
        c.auth_failure_rate = gateway_rest::ratelimit::RateSpec::new(6, 5)
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let key = format!("iaf_{}{i:02}", "x".repeat(41));
        let r = s.chat(&key, hello(false)).await;
        let status = r.status();
        let retry = r.headers().get("retry-after").cloned();
        let body: Value = r.json().await.unwrap();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry.is_some(), "429 without Retry-After");
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
        statuses.push(status.as_u16());
    }
    // The budget's burst of refusals, then the client is stopped before any backend call.
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        6,
        "{statuses:?}"
    );
    assert!(statuses[6..].iter().all(|s| *s == 429), "{statuses:?}");
    s.stop().await;
}
