//! `/v1` driven by the client libraries customers plug into it (issue 12's acceptance): the
//! official `openai` Python SDK, LangChain's `langchain-openai` and the Vercel AI SDK, installed by
//! scripts/test-setup.sh. Each test runs one scenario of e2e/openai_sdk.py, e2e/langchain_client.py
//! or e2e/ai_sdk.mjs against the real stack — gateway-rest → llm-gateway (promo-service checks the
//! key) → a local upstream on loopback speaking OpenAI's wire format, scripted per test — and
//! asserts on what the client got AND on what the upstream received: a field the client sent
//! that never reached the provider fails the test even when the client is happy.
//!
//! The scenarios that send chat or embedding requests run twice: first straight against a
//! mirror of the upstream (same script, no gateway), then through the stack; what the upstream
//! received through the gateway must be what the client sent, field by field (the model name
//! aside, which the catalogue maps), so a field dropped, renamed or rewritten on the way fails
//! the test by name. A scenario failing against the mirror is the script's or the client's
//! fault, and says so.
//!
//! The openai SDK's agent loop also runs on Anthropic, Gemini and Cohere routes (tool calls,
//! tool results, images translated to each native format and back), asserted on what the native
//! upstream received.
//!
//! A missing tool fails the test with the command to run, never skips it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use iafactory_testkit::upstream::*;
use serde_json::{Value, json};

use crate::llm::LlmStack;

const CHAT_MODEL: &str = "iaf-clients";
const UP_CHAT: &str = "up-chat-1";
const EMBED_MODEL: &str = "iaf-embed";
const UP_EMBED: &str = "up-embed-1";
/// One client run, start to end.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

const SETUP_HINT: &str = "run scripts/test-setup.sh (it installs the client libraries)";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The client libraries under test and how each scenario script is started.
#[derive(Debug, Clone, Copy)]
enum Client {
    OpenAiSdk,
    LangChain,
    AiSdk,
}

impl Client {
    fn command(self) -> tokio::process::Command {
        let root = root();
        let python = root.join(".venv/bin/python");
        let (program, script) = match self {
            Client::OpenAiSdk => (python, "e2e/openai_sdk.py"),
            Client::LangChain => (python, "e2e/langchain_client.py"),
            Client::AiSdk => (PathBuf::from("node"), "e2e/ai_sdk.mjs"),
        };
        // What setup provides, checked up front so a missing piece names its fix.
        match self {
            Client::OpenAiSdk | Client::LangChain => assert!(
                program.exists(),
                "{} is missing: {SETUP_HINT}",
                program.display()
            ),
            Client::AiSdk => assert!(
                root.join("e2e/node_modules/ai").is_dir()
                    && root.join("e2e/node_modules/@ai-sdk/openai").is_dir(),
                "the Vercel AI SDK is missing from e2e/node_modules: {SETUP_HINT}"
            ),
        }
        if let Client::LangChain = self {
            assert!(
                tiktoken_cache().is_dir(),
                "{} is missing (tiktoken's vocabulary for offline runs): {SETUP_HINT}",
                tiktoken_cache().display()
            );
        }
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg(root.join(script))
            .current_dir(root.join("e2e"))
            .env("TIKTOKEN_CACHE_DIR", tiktoken_cache())
            // Nothing may leave the machine: a client trying the internet fails at once.
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .kill_on_drop(true);
        cmd
    }
}

fn tiktoken_cache() -> PathBuf {
    root().join(".venv/tiktoken-cache")
}

/// Whether the upstream's `got` for a top-level `field` carries what the client `sent` (None:
/// the client did not send the field). Besides equality, only differences that mean the same to
/// an OpenAI-compatible provider pass, each for a stated reason.
fn carried(field: &str, sent: Option<&Value>, got: Option<&Value>) -> bool {
    let null = Value::Null;
    let (s, g) = (sent.unwrap_or(&null), got.unwrap_or(&null));
    match field {
        // The catalogue maps the public name to the provider's.
        "model" => *g == ClientStack::upstream_model(s),
        // Streams ask for the usage chunk: every request is metered, also when the client did
        // not ask for usage (the gateway drops that chunk again if the client did not ask).
        "stream_options" if s.is_null() => g.is_null() || *g == json!({"include_usage": true}),
        // `false` is OpenAI's default.
        "stream" if s.is_null() => *g == json!(false),
        // Vectors travel as floats over gRPC; gateway-rest encodes base64 itself when asked (the
        // tests compare the client's decoded vectors with the upstream's).
        "encoding_format" if *s == json!("base64") => *g == json!("float"),
        // Floats are OpenAI's default.
        "encoding_format" if s.is_null() => g.is_null() || *g == json!("float"),
        // One text alone or in a list of one is the same embeddings call.
        "input" if s.is_string() => *g == *s || *g == json!([s]),
        _ => equivalent(s, g),
    }
}

/// Equal, a null field counting as absent (OpenAI reads `"content": null` on an assistant turn
/// with tool calls as no content).
fn equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).all(|k| {
            equivalent(
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            )
        }),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equivalent(a, b))
        }
        _ => a == b,
    }
}

type Script = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

/// The stack with a scripted upstream, its mirror, and one customer's key.
struct ClientStack {
    /// `upstream`: behind the stack.
    s: LlmStack<Upstream>,
    /// Same script, called by the clients directly in [`ClientStack::run_compared`].
    mirror: Upstream,
    key: String,
}

impl ClientStack {
    /// `script` answers request number `n` (counting chat and embeddings calls) in OpenAI's wire
    /// format.
    async fn spawn(script: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static) -> Self {
        ClientStack::spawn_on("openai", script).await
    }

    /// The chat model on a route of provider `kind` (`openai`, or a native one: `anthropic`,
    /// `gemini`, `cohere`),
    /// `script` speaking its wire format. Embeddings are served by OpenAI routes only.
    async fn spawn_on(
        kind: &str,
        script: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let behind = script.clone();
        let upstream = Upstream::start(move |r, n| behind(r, n)).await;
        let mirror = Upstream::start(move |r, n| script(r, n)).await;
        // Every capability the scenarios need, stated on the route as the catalogue requires
        // (Anthropic needs a max_tokens: the route's largest answer when the client sets none).
        let mut toml = format!(
            r#"
[providers.up]
kind = "{kind}"
base_url = "{base}"
api_key_env = "UP_KEY"

[[models]]
name = "{CHAT_MODEL}"
capabilities = {{ tools = true, vision = true, json_object = true, json_schema = true, max_output_tokens = 4096 }}
routes = [{{ provider = "up", model = "{UP_CHAT}", input_usd_per_mtok = 1.0, output_usd_per_mtok = 2.0 }}]
"#,
            base = upstream.url(match kind {
                "gemini" => "/v1beta",
                "cohere" => "/v2",
                _ => "/v1",
            })
        );
        if kind == "openai" {
            toml.push_str(&format!(
                r#"
[[models]]
name = "{EMBED_MODEL}"
kind = "embedding"
capabilities = {{ dimensions = true }}
routes = [{{ provider = "up", model = "{UP_EMBED}", input_usd_per_mtok = 0.1, output_usd_per_mtok = 0.0 }}]
"#
            ));
        }
        let s = LlmStack::on_catalog(upstream, &toml, &[("up", "sk-up")], |_| {}).await;
        let key = s.api_key("dev").await;
        ClientStack { s, mirror, key }
    }

    /// The provider's name for a public model, as the catalogue above maps it.
    fn upstream_model(public: &Value) -> Value {
        match public.as_str() {
            Some(CHAT_MODEL) => json!(UP_CHAT),
            Some(EMBED_MODEL) => json!(UP_EMBED),
            _ => Value::Null,
        }
    }

    /// Runs one scenario through the stack; its JSON output. A failed run fails the test with
    /// everything the client printed and everything the upstream received.
    async fn run(&self, client: Client, scenario: &str) -> Value {
        let (ok, out, report) =
            run_client(client, scenario, &self.s.stack.gw.url("/v1"), &self.key).await;
        assert!(
            ok,
            "{client:?} scenario {scenario} failed through the stack.\nupstream received:\n{}\n{report}",
            dump(&self.s.upstream)
        );
        out
    }

    /// Runs one scenario against the mirror, then through the stack, and asserts the upstream
    /// received through the gateway what the client sent to the mirror.
    async fn run_compared(&self, client: Client, scenario: &str) -> Value {
        let (ok, _, report) =
            run_client(client, scenario, &self.mirror.url("/v1"), "sk-mirror").await;
        assert!(
            ok,
            "{client:?} scenario {scenario} fails even straight against the upstream (no gateway): \
             the scenario or the client is at fault.\n{report}"
        );
        let out = self.run(client, scenario).await;
        self.assert_carried(client, scenario);
        out
    }

    /// Request by request, every field the client sent is what the upstream got.
    #[track_caller]
    fn assert_carried(&self, client: Client, scenario: &str) {
        let sent = self.mirror.requests();
        let got = self.s.upstream.requests();
        let paths = |rs: &[Recorded]| rs.iter().map(|r| r.path.clone()).collect::<Vec<_>>();
        assert_eq!(
            paths(&sent),
            paths(&got),
            "{client:?} {scenario}: the upstream was not called as the client calls it"
        );
        let mut diffs = Vec::new();
        for (i, (sent, got)) in sent.iter().zip(&got).enumerate() {
            // The provider sees the platform's provider key, never the customer's.
            if got.header("authorization") != Some("Bearer sk-up") {
                diffs.push(format!(
                    "request {i}: authorization {:?}, not the provider key",
                    got.header("authorization")
                ));
            }
            let (Some(sent), Some(got)) = (sent.body.as_object(), got.body.as_object()) else {
                diffs.push(format!("request {i}: not a JSON object"));
                continue;
            };
            let fields: std::collections::BTreeSet<&String> =
                sent.keys().chain(got.keys()).collect();
            for field in fields {
                let (s, g) = (sent.get(field), got.get(field));
                if !carried(field, s, g) {
                    let show = |v: Option<&Value>| v.map_or("nothing".to_owned(), Value::to_string);
                    diffs.push(format!(
                        "request {i} `{field}`: the client sent {}, the upstream got {}",
                        show(s),
                        show(g)
                    ));
                }
            }
        }
        assert!(
            diffs.is_empty(),
            "{client:?} {scenario}: not carried as sent:\n{}",
            diffs.join("\n")
        );
    }

    fn requests_to(&self, suffix: &str) -> Vec<Recorded> {
        self.s
            .upstream
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with(suffix))
            .collect()
    }

    fn chats(&self) -> Vec<Recorded> {
        self.requests_to("/chat/completions")
    }

    fn embeddings(&self) -> Vec<Recorded> {
        self.requests_to("/embeddings")
    }

    fn dump(&self) -> String {
        dump(&self.s.upstream)
    }

    async fn stop(self) {
        self.s.stop().await;
    }
}

/// Runs one scenario of `client` against `base_url`: (success, JSON output, a report of the run
/// for failure messages).
async fn run_client(
    client: Client,
    scenario: &str,
    base_url: &str,
    key: &str,
) -> (bool, Value, String) {
    let child = client
        .command()
        .arg(scenario)
        .env("IAF_BASE_URL", base_url)
        .env("IAF_API_KEY", key)
        .env("IAF_MODEL", CHAT_MODEL)
        .env("IAF_EMBED_MODEL", EMBED_MODEL)
        .output();
    let output = tokio::time::timeout(RUN_TIMEOUT, child)
        .await
        .unwrap_or_else(|_| panic!("{client:?} scenario {scenario} ran over {RUN_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{client:?} could not start ({e}): {SETUP_HINT}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    for missing in [
        "ModuleNotFoundError",
        "ERR_MODULE_NOT_FOUND",
        "Cannot find package",
    ] {
        assert!(
            !stderr.contains(missing) && !stdout.contains(missing),
            "{client:?} lacks a library: {SETUP_HINT}\n{report}"
        );
    }
    let value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or(Value::Null);
    (output.status.success(), value, report)
}

/// Every request an upstream received, for failure messages.
fn dump(upstream: &Upstream) -> String {
    upstream
        .requests()
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.body))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The upstream's answers for a chat agent loop: `answer` once the conversation ends with a
/// tool result (the model has what it asked for), else `ask` (its tool calls).
fn agent_upstream(
    ask: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    answer: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    move |req, _| {
        let last_role = req.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .map(|m| m["role"].clone());
        if last_role == Some(json!("tool")) {
            answer(req)
        } else {
            ask(req)
        }
    }
}

/// A message's text whether it came as a string or as text parts.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<String>(),
        _ => String::new(),
    }
}

fn messages(r: &Recorded) -> Vec<Value> {
    r.body["messages"].as_array().cloned().unwrap_or_default()
}

/// Floats of a JSON array (vectors compare as numbers, whatever their JSON spelling).
fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a vector: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The vector the upstream answered for `item`, as f64.
fn vector(item: &Value, dims: usize) -> Vec<f64> {
    embedding_for(item, dims)
        .into_iter()
        .map(f64::from)
        .collect()
}

/// `input` as a list of items (a lone string or token array is one item).
fn input_items(input: &Value) -> Vec<Value> {
    match input {
        Value::Array(a) if a.iter().all(Value::is_number) => vec![input.clone()],
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

// ---------------------------------------------------------------------------------------------
// The official OpenAI Python SDK.

const ALGIERS_ARGS: &str = r#"{"city":"Algiers"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_tool_loop_over_two_turns() {
    let s = ClientStack::spawn(agent_upstream(
        |_| {
            openai_tool_calls(
                &[ToolCall {
                    id: "call_alg",
                    name: "get_weather",
                    arguments: ALGIERS_ARGS,
                }],
                20,
                8,
            )
        },
        |_| openai_ok("It is 21 °C in Algiers.", 30, 9),
    ))
    .await;
    let out = s.run_compared(Client::OpenAiSdk, "tool_loop").await;
    assert_eq!(out["first_finish_reason"], "tool_calls", "{out}");
    assert_eq!(
        out["tool_calls"],
        json!([{"id": "call_alg", "name": "get_weather", "arguments": ALGIERS_ARGS}]),
        "{out}"
    );
    assert_eq!(out["final_content"], "It is 21 °C in Algiers.");
    assert_eq!(out["final_finish_reason"], "stop");

    let chats = s.chats();
    assert_eq!(chats.len(), 2, "{}", s.dump());
    let (first, second) = (&chats[0].body, &chats[1].body);
    assert_eq!(first["model"], UP_CHAT);
    // The tool definitions exactly as the client sent them, and its tool_choice.
    assert_eq!(first["tools"], out["tools_sent"], "{first}");
    assert_eq!(first["tool_choice"], "auto", "{first}");
    // Second turn: the assistant's tool call as the SDK handed it back, then the tool's result.
    assert_eq!(second["tools"], out["tools_sent"], "{second}");
    let m = messages(&chats[1]);
    assert_eq!(m.len(), 3, "{second}");
    assert_eq!(text_of(&m[0]["content"]), "What is the weather in Algiers?");
    assert_eq!(m[1]["role"], "assistant", "{second}");
    assert_eq!(
        m[1]["tool_calls"],
        json!([{"id": "call_alg", "type": "function", "function": {"name": "get_weather", "arguments": ALGIERS_ARGS}}]),
        "{second}"
    );
    assert_eq!(m[2]["role"], "tool", "{second}");
    assert_eq!(m[2]["tool_call_id"], "call_alg", "{second}");
    assert_eq!(
        text_of(&m[2]["content"]),
        out["tool_results"][0].as_str().unwrap(),
        "{second}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_reassembles_streamed_tool_calls() {
    let calls = [
        ToolCall {
            id: "call_alg",
            name: "get_weather",
            arguments: ALGIERS_ARGS,
        },
        ToolCall {
            id: "call_orn",
            name: "get_weather",
            arguments: r#"{"city":"Oran","unit":"c"}"#,
        },
    ];
    let s = ClientStack::spawn(move |_, _| openai_tool_call_stream(&calls, 3, 15, 11)).await;
    let out = s.run_compared(Client::OpenAiSdk, "stream_tools").await;
    let expected: Vec<Value> = calls
        .iter()
        .map(|c| json!({"id": c.id, "name": c.name, "arguments": c.arguments}))
        .collect();
    // By hand from the deltas, and by the SDK's own stream helper.
    assert_eq!(out["tool_calls"], json!(expected), "{out}");
    assert_eq!(out["finish_reason"], "tool_calls", "{out}");
    assert_eq!(out["usage_total_tokens"], 26, "{out}");
    assert_eq!(out["helper_tool_calls"], json!(expected), "{out}");
    assert_eq!(out["helper_finish_reason"], "tool_calls", "{out}");
    // Arguments arrived in several fragments per call, as the upstream sent them.
    assert!(out["chunks"].as_u64().unwrap() >= 9, "{out}");

    let chats = s.chats();
    assert_eq!(chats.len(), 2, "{}", s.dump());
    for r in &chats {
        assert_eq!(r.body["stream"], true, "{}", r.body);
        assert_eq!(r.body["model"], UP_CHAT);
        assert_eq!(
            r.body["tools"][0]["function"]["name"], "get_weather",
            "{}",
            r.body
        );
        assert_eq!(
            r.body["tools"][0]["function"]["parameters"]["required"],
            json!(["city"]),
            "{}",
            r.body
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_parse_with_a_pydantic_model() {
    let event = json!({"name": "Science fair", "date": "Friday", "participants": ["Alice", "Bob"]});
    let answer = event.to_string();
    let s = ClientStack::spawn(move |_, _| openai_ok(&answer, 25, 17)).await;
    let out = s.run_compared(Client::OpenAiSdk, "parse").await;
    assert_eq!(out["parsed"], event, "{out}");
    assert!(out["refusal"].is_null(), "{out}");

    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    let rf = &chats[0].body["response_format"];
    assert_eq!(rf["type"], "json_schema", "{}", chats[0].body);
    assert_eq!(rf["json_schema"]["name"], "CalendarEvent", "{rf}");
    assert_eq!(rf["json_schema"]["strict"], true, "{rf}");
    // The Pydantic model's schema, made strict by the SDK: every field required, nothing else.
    let schema = &rf["json_schema"]["schema"];
    assert_eq!(
        schema["properties"], out["pydantic_schema"]["properties"],
        "{rf}"
    );
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("no required list: {rf}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["date", "name", "participants"], "{rf}");
    assert_eq!(schema["additionalProperties"], false, "{rf}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_image_part_reaches_the_upstream() {
    let s = ClientStack::spawn(|_, _| openai_ok("Red.", 90, 2)).await;
    let out = s.run_compared(Client::OpenAiSdk, "image").await;
    assert_eq!(out["content"], "Red.", "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    let m = messages(&chats[0]);
    assert_eq!(m[0]["role"], "user");
    // Both parts as sent: the text, and the image's data URI with its detail.
    assert_eq!(m[0]["content"], out["content_sent"], "{}", chats[0].body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_embeddings_default_float_and_dimensions() {
    let s = ClientStack::spawn(|req, _| openai_embeddings_for(req)).await;
    let out = s.run_compared(Client::OpenAiSdk, "embeddings").await;
    let ups = s.embeddings();
    assert_eq!(ups.len(), 3, "{}", s.dump());
    for r in &ups {
        assert_eq!(r.body["model"], UP_EMBED, "{}", r.body);
    }
    // The SDK's default call (it asks for base64 and decodes) and the explicit float call both
    // give the client exactly the vectors the upstream produced for the texts it received.
    for (call, got) in [(&ups[0], &out["default"]), (&ups[1], &out["float"])] {
        let items = input_items(&call.body["input"]);
        assert_eq!(json!(items), out["inputs"], "{}", call.body);
        let got: Vec<Vec<f64>> = got.as_array().unwrap().iter().map(floats).collect();
        let sent: Vec<Vec<f64>> = items
            .iter()
            .map(|i| vector(i, EMBEDDING_DIMENSIONS))
            .collect();
        assert_eq!(got, sent, "{}", call.body);
    }
    // `dimensions` carried: the upstream shortened the vector.
    assert_eq!(ups[2].body["dimensions"], 4, "{}", ups[2].body);
    let items = input_items(&ups[2].body["input"]);
    assert_eq!(json!(items), json!([out["inputs"][0]]), "{}", ups[2].body);
    assert_eq!(
        out["short"]
            .as_array()
            .unwrap()
            .iter()
            .map(floats)
            .collect::<Vec<_>>(),
        vec![vector(&items[0], 4)]
    );
    // The upstream's usage (its word count of both texts) is what the client sees.
    assert_eq!(out["usage_prompt_tokens"], 7, "{out}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_lists_and_retrieves_models() {
    let s = ClientStack::spawn(|_, _| openai_ok("unused", 1, 1)).await;
    let out = s.run(Client::OpenAiSdk, "models").await;
    let listed = out["listed"].as_array().unwrap();
    assert!(listed.contains(&json!(CHAT_MODEL)), "{out}");
    assert!(listed.contains(&json!(EMBED_MODEL)), "{out}");
    assert_eq!(out["chat"]["id"], CHAT_MODEL, "{out}");
    assert_eq!(out["chat"]["object"], "model", "{out}");
    assert_eq!(out["embed"]["id"], EMBED_MODEL, "{out}");
    assert_eq!(out["unknown"]["status"], 404, "{out}");
    assert_eq!(out["unknown"]["code"], "model_not_found", "{out}");
    assert_eq!(s.s.upstream.count(), 0, "{}", s.dump());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_sees_the_providers_own_error_code_and_param() {
    let s = ClientStack::spawn(|_, _| {
        Reply::json(
            400,
            json!({"error": {
                "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"
            }}),
        )
    })
    .await;
    let out = s.run_compared(Client::OpenAiSdk, "upstream_error").await;
    assert_eq!(out["raised"], "BadRequestError", "{out}");
    assert_eq!(out["status"], 400, "{out}");
    assert_eq!(out["code"], "context_length_exceeded", "{out}");
    assert_eq!(out["param"], "messages", "{out}");
    assert_eq!(out["type"], "invalid_request_error", "{out}");
    assert!(
        out["message"]
            .as_str()
            .is_some_and(|m| m.contains("maximum context length")),
        "{out}"
    );
    // The provider refused once; a 400 is not retried on another route.
    assert_eq!(s.chats().len(), 1, "{}", s.dump());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_quickstart_stream_gets_no_usage_chunk_it_did_not_ask_for() {
    let s = ClientStack::spawn(|req, _| openai_stream_for(req, &["Sa", "lut"], 5, 3)).await;
    let out = s.run_compared(Client::OpenAiSdk, "stream_plain").await;
    assert_eq!(out["text"], "Salut", "{out}");
    assert_eq!(out["usage_chunks"], 0, "{out}");
    s.stop().await;
}

/// The upstream's stream: two text pieces, then the connection is cut (no finish, no [DONE]).
fn broken_stream() -> Reply {
    openai_stream(&["Il était", " une fois"], 5, 9).dropping_after(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_raises_when_a_stream_breaks_after_the_first_tokens() {
    let s = ClientStack::spawn(|_, _| broken_stream()).await;
    let out = s.run_compared(Client::OpenAiSdk, "stream_error").await;
    assert_eq!(out["pieces"], json!(["Il était", " une fois"]), "{out}");
    assert_eq!(
        out["raised"], "APIError",
        "a broken stream ended as if complete: {out}"
    );
    assert!(
        out["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{out}"
    );
    assert_eq!(s.chats().len(), 1, "{}", s.dump());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The same client code on a native provider's route: the OpenAI SDK's agent loop, streamed tool
// calls and image part, translated to Anthropic's Messages API and back.

/// Anthropic's answers for an agent loop: text once the last turn carries a tool result, else a
/// call of `get_weather` for Algiers (streamed when the request streams).
fn anthropic_agent(req: &Recorded, _: usize) -> Reply {
    let answered = req.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["content"][0]["type"] == "tool_result");
    match (answered, req.body["stream"] == true) {
        (true, false) => anthropic_ok("It is 21 °C in Algiers.", 40, 8),
        (true, true) => anthropic_stream(&["It is 21 °C", " in Algiers."], 40, 8),
        (false, false) => anthropic_tool_use(
            "toolu_alg",
            "get_weather",
            json!({"city": "Algiers"}),
            30,
            12,
        ),
        (false, true) => {
            anthropic_tool_use_stream("toolu_alg", "get_weather", ALGIERS_ARGS, 4, 30, 12)
        }
    }
}

/// The weather tool as Anthropic must receive it, from the OpenAI definition the client sent.
#[track_caller]
fn assert_anthropic_weather_tool(body: &Value, sent: &Value) {
    let f = &sent["function"];
    assert_eq!(
        body["tools"],
        json!([{"name": f["name"], "description": f["description"], "input_schema": f["parameters"]}]),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_tool_loop_through_anthropic() {
    let s = ClientStack::spawn_on("anthropic", anthropic_agent).await;
    let out = s.run(Client::OpenAiSdk, "tool_loop").await;
    assert_eq!(out["first_finish_reason"], "tool_calls", "{out}");
    assert_eq!(out["tool_calls"][0]["id"], "toolu_alg", "{out}");
    assert_eq!(out["tool_calls"][0]["name"], "get_weather", "{out}");
    let args: Value =
        serde_json::from_str(out["tool_calls"][0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Algiers"}));
    assert_eq!(out["final_content"], "It is 21 °C in Algiers.", "{out}");
    assert_eq!(out["final_finish_reason"], "stop", "{out}");

    let reqs = s.s.upstream.requests();
    assert_eq!(reqs.len(), 2, "{}", s.dump());
    assert!(
        reqs.iter().all(|r| r.path == "/v1/messages"),
        "{}",
        s.dump()
    );
    let (first, second) = (&reqs[0].body, &reqs[1].body);
    assert_eq!(first["model"], UP_CHAT);
    assert_anthropic_weather_tool(first, &out["tools_sent"][0]);
    assert_eq!(first["tool_choice"], json!({"type": "auto"}), "{first}");
    assert_eq!(
        first["messages"],
        json!([{"role": "user", "content": "What is the weather in Algiers?"}]),
        "{first}"
    );
    assert_anthropic_weather_tool(second, &out["tools_sent"][0]);
    assert_eq!(
        second["messages"],
        json!([
            {"role": "user", "content": "What is the weather in Algiers?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_alg", "name": "get_weather", "input": {"city": "Algiers"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_alg", "content": out["tool_results"][0]}]}
        ]),
        "{second}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_streamed_tool_call_through_anthropic() {
    let s = ClientStack::spawn_on("anthropic", anthropic_agent).await;
    let out = s.run(Client::OpenAiSdk, "stream_tools").await;
    let expected = json!([{"id": "toolu_alg", "name": "get_weather", "arguments": ALGIERS_ARGS}]);
    assert_eq!(out["tool_calls"], expected, "{out}");
    assert_eq!(out["finish_reason"], "tool_calls", "{out}");
    assert_eq!(out["usage_total_tokens"], 42, "{out}");
    assert_eq!(out["helper_tool_calls"], expected, "{out}");
    let reqs = s.s.upstream.requests();
    assert_eq!(reqs.len(), 2, "{}", s.dump());
    for r in &reqs {
        assert_eq!(r.path, "/v1/messages");
        assert_eq!(r.body["stream"], true, "{}", r.body);
        assert_anthropic_weather_tool(&r.body, &out["tools_sent"][0]);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_image_part_through_anthropic() {
    let s = ClientStack::spawn_on("anthropic", |_, _| anthropic_ok("Red.", 90, 2)).await;
    // `detail` has no Anthropic equivalent: refused naming it, never dropped in silence.
    let (ok, out, report) =
        run_client(Client::OpenAiSdk, "image", &s.s.stack.gw.url("/v1"), &s.key).await;
    assert!(!ok, "{report}");
    assert_eq!(out["error"], "BadRequestError", "{report}");
    assert_eq!(
        out["body"]["param"], "messages[0].content[1].image_url.detail",
        "{report}"
    );
    assert_eq!(s.s.upstream.count(), 0, "{}", s.dump());
    // Without it, the data URI becomes Anthropic's base64 image source.
    let out = s.run(Client::OpenAiSdk, "image_no_detail").await;
    assert_eq!(out["content"], "Red.", "{out}");
    let reqs = s.s.upstream.requests();
    assert_eq!(reqs.len(), 1, "{}", s.dump());
    let data_uri = out["content_sent"][1]["image_url"]["url"].as_str().unwrap();
    let data = data_uri.split_once(',').unwrap().1;
    assert_eq!(
        reqs[0].body["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "What colour is this pixel?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}
        ]}]),
        "{}",
        reqs[0].body
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_tool_loop_through_gemini() {
    let s = ClientStack::spawn_on("gemini", |req, _| {
        let answered = req.body["contents"]
            .as_array()
            .and_then(|c| c.last())
            .is_some_and(|c| c["parts"][0].get("functionResponse").is_some());
        if answered {
            gemini_ok("It is 21 °C in Algiers.", 40, 8)
        } else {
            gemini_function_call(
                "get_weather",
                json!({"city": "Algiers"}),
                "c2lnMQ==",
                30,
                12,
            )
        }
    })
    .await;
    let out = s.run(Client::OpenAiSdk, "tool_loop").await;
    assert_eq!(out["first_finish_reason"], "tool_calls", "{out}");
    assert_eq!(out["tool_calls"][0]["name"], "get_weather", "{out}");
    let args: Value =
        serde_json::from_str(out["tool_calls"][0]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Algiers"}));
    assert_eq!(out["final_content"], "It is 21 °C in Algiers.", "{out}");

    let reqs = s.s.upstream.requests();
    assert_eq!(reqs.len(), 2, "{}", s.dump());
    assert!(
        reqs.iter().all(|r| r
            .path
            .starts_with(&format!("/v1beta/models/{UP_CHAT}:generateContent"))),
        "{}",
        s.dump()
    );
    let (first, second) = (&reqs[0].body, &reqs[1].body);
    let decl = &first["tools"][0]["functionDeclarations"][0];
    assert_eq!(decl["name"], "get_weather", "{first}");
    assert_eq!(decl["description"], "Current weather in a city", "{first}");
    assert!(
        decl["parameters"]["properties"]["city"].is_object(),
        "{first}"
    );
    let question = json!({"role": "user", "parts": [{"text": "What is the weather in Algiers?"}]});
    assert_eq!(first["contents"], json!([question]), "{first}");
    let contents = second["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3, "{second}");
    assert_eq!(contents[0], question, "{second}");
    // The call goes back with Gemini's thought signature, which the client never saw as such.
    assert_eq!(
        contents[1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Algiers"}}, "thoughtSignature": "c2lnMQ=="}]}),
        "{second}"
    );
    let response = &contents[2]["parts"][0]["functionResponse"];
    assert_eq!(contents[2]["role"], "user", "{second}");
    assert_eq!(response["name"], "get_weather", "{second}");
    let result = response["response"].to_string();
    assert!(
        result.contains("Algiers") && result.contains("21"),
        "the tool's result: {second}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_tool_loop_through_cohere() {
    let s = ClientStack::spawn_on("cohere", |req, _| {
        let answered = req.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .is_some_and(|m| m["role"] == "tool");
        if answered {
            cohere_ok("It is 21 °C in Algiers.", 40, 8)
        } else {
            cohere_tool_calls(
                &[ToolCall {
                    id: "get_weather_7k2m",
                    name: "get_weather",
                    arguments: ALGIERS_ARGS,
                }],
                30,
                12,
            )
        }
    })
    .await;
    let out = s.run(Client::OpenAiSdk, "tool_loop").await;
    assert_eq!(out["first_finish_reason"], "tool_calls", "{out}");
    assert_eq!(
        out["tool_calls"],
        json!([{"id": "get_weather_7k2m", "name": "get_weather", "arguments": ALGIERS_ARGS}]),
        "{out}"
    );
    assert_eq!(out["final_content"], "It is 21 °C in Algiers.", "{out}");

    let reqs = s.s.upstream.requests();
    assert_eq!(reqs.len(), 2, "{}", s.dump());
    assert!(reqs.iter().all(|r| r.path == "/v2/chat"), "{}", s.dump());
    let (first, second) = (&reqs[0].body, &reqs[1].body);
    // Cohere v2 takes OpenAI's tool shape as is; "auto" is its default (no tool_choice).
    assert_eq!(first["tools"], out["tools_sent"], "{first}");
    assert!(first.get("tool_choice").is_none(), "{first}");
    let m = second["messages"].as_array().unwrap();
    assert_eq!(m.len(), 3, "{second}");
    assert_eq!(
        m[0],
        json!({"role": "user", "content": "What is the weather in Algiers?"}),
        "{second}"
    );
    assert_eq!(m[1]["role"], "assistant", "{second}");
    assert_eq!(
        m[1]["tool_calls"],
        json!([{"id": "get_weather_7k2m", "type": "function", "function": {"name": "get_weather", "arguments": ALGIERS_ARGS}}]),
        "{second}"
    );
    assert_eq!(
        m[2],
        json!({"role": "tool", "tool_call_id": "get_weather_7k2m", "content": out["tool_results"][0]}),
        "{second}"
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// LangChain (langchain-openai).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_bind_tools_agent_turn() {
    let s = ClientStack::spawn(agent_upstream(
        |_| {
            openai_tool_calls(
                &[ToolCall {
                    id: "call_oran",
                    name: "get_weather",
                    arguments: r#"{"city":"Oran"}"#,
                }],
                20,
                8,
            )
        },
        |_| openai_ok("21 degrees in Oran.", 30, 9),
    ))
    .await;
    let out = s.run_compared(Client::LangChain, "bind_tools").await;
    assert_eq!(
        out["tool_calls"],
        json!([{"id": "call_oran", "name": "get_weather", "args": {"city": "Oran"}}]),
        "{out}"
    );
    assert_eq!(out["first_finish_reason"], "tool_calls", "{out}");
    assert_eq!(out["final_content"], "21 degrees in Oran.", "{out}");

    let chats = s.chats();
    assert_eq!(chats.len(), 2, "{}", s.dump());
    for r in &chats {
        let tool = &r.body["tools"][0];
        assert_eq!(tool["type"], "function", "{}", r.body);
        assert_eq!(tool["function"]["name"], "get_weather", "{}", r.body);
        assert_eq!(
            tool["function"]["description"], "Current weather in a city.",
            "{}",
            r.body
        );
        assert_eq!(
            tool["function"]["parameters"]["properties"]["city"]["type"], "string",
            "{}",
            r.body
        );
    }
    let m = messages(&chats[1]);
    assert_eq!(m.len(), 3, "{}", chats[1].body);
    assert_eq!(m[1]["role"], "assistant");
    assert_eq!(
        m[1]["tool_calls"][0]["id"], "call_oran",
        "{}",
        chats[1].body
    );
    assert_eq!(
        m[1]["tool_calls"][0]["function"]["name"], "get_weather",
        "{}",
        chats[1].body
    );
    let args: Value = serde_json::from_str(
        m[1]["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args, json!({"city": "Oran"}));
    assert_eq!(m[2]["role"], "tool");
    assert_eq!(m[2]["tool_call_id"], "call_oran", "{}", chats[1].body);
    assert_eq!(
        text_of(&m[2]["content"]),
        out["tool_results"][0].as_str().unwrap()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_reassembles_streamed_tool_calls() {
    let calls = [
        ToolCall {
            id: "call_alg",
            name: "get_weather",
            arguments: ALGIERS_ARGS,
        },
        ToolCall {
            id: "call_orn",
            name: "get_weather",
            arguments: r#"{"city":"Oran"}"#,
        },
    ];
    let s = ClientStack::spawn(move |_, _| openai_tool_call_stream(&calls, 4, 15, 11)).await;
    let out = s.run_compared(Client::LangChain, "stream_tools").await;
    assert_eq!(
        out["tool_calls"],
        json!([
            {"id": "call_alg", "name": "get_weather", "args": {"city": "Algiers"}},
            {"id": "call_orn", "name": "get_weather", "args": {"city": "Oran"}}
        ]),
        "{out}"
    );
    assert_eq!(out["invalid_tool_calls"], json!([]), "{out}");
    assert_eq!(out["finish_reason"], "tool_calls", "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    assert_eq!(chats[0].body["stream"], true, "{}", chats[0].body);
    assert_eq!(
        chats[0].body["tools"][0]["function"]["name"], "get_weather",
        "{}",
        chats[0].body
    );
    s.stop().await;
}

/// The one image part of the upstream's last user turn, as an OpenAI `image_url` part.
#[track_caller]
fn image_url_sent(r: &Recorded) -> Value {
    let m = messages(r);
    let parts = m.last().unwrap()["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let images: Vec<&Value> = parts.iter().filter(|p| p["type"] == "image_url").collect();
    assert_eq!(images.len(), 1, "{}", r.body);
    images[0]["image_url"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_image_block_reaches_the_upstream() {
    let s = ClientStack::spawn(|_, _| openai_ok("Red.", 90, 2)).await;
    let out = s.run_compared(Client::LangChain, "image").await;
    assert_eq!(out["content"], "Red.", "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    assert_eq!(image_url_sent(&chats[0])["url"], out["image_sent"]);
    s.stop().await;
}

fn movie() -> Value {
    json!({"title": "Chronicle of the Years of Fire", "year": 1975, "director": "Mohammed Lakhdar-Hamina"})
}

/// The Movie model's schema as LangChain must have sent it (in a response_format or a tool).
#[track_caller]
fn assert_movie_schema(schema: &Value) {
    let props = &schema["properties"];
    assert_eq!(props["title"]["type"], "string", "{schema}");
    assert_eq!(
        props["title"]["description"], "The film's title",
        "{schema}"
    );
    assert_eq!(props["year"]["type"], "integer", "{schema}");
    assert_eq!(props["director"]["type"], "string", "{schema}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_structured_output_default_mode() {
    let answer = movie().to_string();
    let s = ClientStack::spawn(move |_, _| openai_ok(&answer, 30, 20)).await;
    let out = s
        .run_compared(Client::LangChain, "structured_default")
        .await;
    assert_eq!(out["movie"], movie(), "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    let rf = &chats[0].body["response_format"];
    assert_eq!(rf["type"], "json_schema", "{}", chats[0].body);
    assert_eq!(rf["json_schema"]["name"], "Movie", "{rf}");
    assert_movie_schema(&rf["json_schema"]["schema"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_structured_output_function_calling() {
    let args = movie().to_string();
    let s = ClientStack::spawn(move |_, _| {
        openai_tool_calls(
            &[ToolCall {
                id: "call_movie",
                name: "Movie",
                arguments: &args,
            }],
            30,
            20,
        )
    })
    .await;
    let out = s
        .run(Client::LangChain, "structured_function_calling")
        .await;
    // The issue saw None here, without an error.
    assert_eq!(out["movie"], movie(), "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    let body = &chats[0].body;
    assert_eq!(body["tools"][0]["function"]["name"], "Movie", "{body}");
    assert_movie_schema(&body["tools"][0]["function"]["parameters"]);
    // The call is forced to that function.
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "Movie"}}),
        "{body}"
    );
    assert!(body["response_format"].is_null(), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_openai_embeddings_send_token_ids() {
    let s = ClientStack::spawn(|req, _| openai_embeddings_for(req)).await;
    let out = s.run_compared(Client::LangChain, "embeddings").await;
    let ups = s.embeddings();
    assert_eq!(ups.len(), 2, "{}", s.dump());
    // embed_documents: both texts as tiktoken's token ids, one array each.
    let token_ids = &out["token_ids"];
    assert!(
        token_ids[0]
            .as_array()
            .is_some_and(|t| t.len() > 1 && t.iter().all(Value::is_u64)),
        "{out}"
    );
    assert_eq!(ups[0].body["model"], UP_EMBED);
    assert_eq!(ups[0].body["input"], *token_ids, "{}", ups[0].body);
    let got: Vec<Vec<f64>> = out["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let sent: Vec<Vec<f64>> = token_ids
        .as_array()
        .unwrap()
        .iter()
        .map(|ids| vector(ids, EMBEDDING_DIMENSIONS))
        .collect();
    assert_eq!(got, sent);
    // embed_query: the first text's token ids alone.
    assert_eq!(
        input_items(&ups[1].body["input"]),
        vec![token_ids[0].clone()],
        "{}",
        ups[1].body
    );
    assert_eq!(
        floats(&out["query"]),
        vector(&token_ids[0], EMBEDDING_DIMENSIONS)
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The Vercel AI SDK (`ai` + `@ai-sdk/openai`, Chat Completions model factory).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_generate_text_with_a_tool() {
    let s = ClientStack::spawn(agent_upstream(
        |_| {
            openai_tool_calls(
                &[ToolCall {
                    id: "call_annaba",
                    name: "weather",
                    arguments: r#"{"city":"Annaba"}"#,
                }],
                20,
                8,
            )
        },
        |_| openai_ok("Sunny, 21 °C in Annaba.", 30, 9),
    ))
    .await;
    let out = s.run_compared(Client::AiSdk, "generate_text_tool").await;
    assert_eq!(out["text"], "Sunny, 21 °C in Annaba.", "{out}");
    assert_eq!(out["steps"], 2, "{out}");
    assert_eq!(
        out["tool_calls"],
        json!([{"id": "call_annaba", "name": "weather", "input": {"city": "Annaba"}}]),
        "{out}"
    );
    assert_eq!(
        out["tool_results"],
        json!([{"id": "call_annaba", "output": {"city": "Annaba", "temperature": 21}}]),
        "{out}"
    );

    let chats = s.chats();
    assert_eq!(chats.len(), 2, "{}", s.dump());
    for r in &chats {
        let f = &r.body["tools"][0]["function"];
        assert_eq!(f["name"], "weather", "{}", r.body);
        assert_eq!(f["description"], "Current weather in a city", "{}", r.body);
        assert_eq!(
            f["parameters"]["properties"]["city"]["type"], "string",
            "{}",
            r.body
        );
    }
    let m = messages(&chats[1]);
    let call = m
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap_or_else(|| panic!("no assistant turn: {}", chats[1].body));
    assert_eq!(call["tool_calls"][0]["id"], "call_annaba", "{call}");
    assert_eq!(
        call["tool_calls"][0]["function"]["name"], "weather",
        "{call}"
    );
    let result = m.last().unwrap();
    assert_eq!(result["role"], "tool", "{}", chats[1].body);
    assert_eq!(result["tool_call_id"], "call_annaba", "{result}");
    let content: Value = serde_json::from_str(&text_of(&result["content"])).unwrap();
    assert_eq!(content, json!({"city": "Annaba", "temperature": 21}));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_stream_text_with_a_tool() {
    let s = ClientStack::spawn(agent_upstream(
        |_| {
            openai_tool_call_stream(
                &[ToolCall {
                    id: "call_annaba",
                    name: "weather",
                    arguments: r#"{"city":"Annaba"}"#,
                }],
                3,
                20,
                8,
            )
        },
        |_| openai_stream(&["Sunny,", " 21 °C", " in Annaba."], 30, 9),
    ))
    .await;
    let out = s.run_compared(Client::AiSdk, "stream_text_tool").await;
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(out["text"], "Sunny, 21 °C in Annaba.", "{out}");
    assert_eq!(out["steps"], 2, "{out}");
    assert!(out["tool_input_deltas"].as_u64().unwrap() >= 2, "{out}");
    assert_eq!(
        out["tool_calls"],
        json!([{"id": "call_annaba", "name": "weather", "input": {"city": "Annaba"}}]),
        "{out}"
    );
    assert_eq!(
        out["tool_results"],
        json!([{"id": "call_annaba", "output": {"city": "Annaba", "temperature": 21}}]),
        "{out}"
    );
    let chats = s.chats();
    assert_eq!(chats.len(), 2, "{}", s.dump());
    for r in &chats {
        assert_eq!(r.body["stream"], true, "{}", r.body);
        assert_eq!(
            r.body["tools"][0]["function"]["name"], "weather",
            "{}",
            r.body
        );
    }
    let m = messages(&chats[1]);
    let result = m.last().unwrap();
    assert_eq!(result["role"], "tool", "{}", chats[1].body);
    assert_eq!(result["tool_call_id"], "call_annaba", "{result}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_surfaces_a_stream_broken_after_the_first_tokens() {
    let s = ClientStack::spawn(|_, _| broken_stream()).await;
    let out = s.run_compared(Client::AiSdk, "stream_error").await;
    assert_eq!(out["pieces"], json!(["Il était", " une fois"]), "{out}");
    assert!(
        out["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "a broken stream ended as if complete: {out}"
    );
    assert_eq!(out["finish_reason"], "error", "{out}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_stream_text() {
    let s = ClientStack::spawn(|_, _| openai_stream(&["Sa", "lut", " !"], 5, 3)).await;
    let out = s.run_compared(Client::AiSdk, "stream_text").await;
    assert_eq!(out["text"], "Salut !", "{out}");
    assert!(out["pieces"].as_array().unwrap().len() >= 2, "{out}");
    assert_eq!(out["finish_reason"], "stop", "{out}");
    assert_eq!(out["usage"]["inputTokens"], 5, "{out}");
    assert_eq!(out["usage"]["outputTokens"], 3, "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    let body = &chats[0].body;
    assert_eq!(body["stream"], true, "{body}");
    assert_eq!(body["model"], UP_CHAT);
    let m = messages(&chats[0]);
    assert_eq!(m[0]["role"], "system", "{body}");
    assert_eq!(text_of(&m[0]["content"]), "You are terse.");
    assert_eq!(m[1]["role"], "user", "{body}");
    assert_eq!(text_of(&m[1]["content"]), "Say hello");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_generate_object_with_a_zod_schema() {
    let recipe = json!({"name": "Chakhchoukha", "ingredients": [{"item": "semolina", "grams": 500}, {"item": "lamb", "grams": 400}]});
    let answer = recipe.to_string();
    let s = ClientStack::spawn(move |_, _| openai_ok(&answer, 12, 30)).await;
    let out = s.run_compared(Client::AiSdk, "generate_object").await;
    assert_eq!(out["object"], recipe, "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    let rf = &chats[0].body["response_format"];
    assert_eq!(rf["type"], "json_schema", "{}", chats[0].body);
    assert_eq!(rf["json_schema"]["name"], "recipe", "{rf}");
    let schema = &rf["json_schema"]["schema"];
    assert_eq!(schema["properties"]["name"]["type"], "string", "{rf}");
    assert_eq!(
        schema["properties"]["ingredients"]["items"]["properties"]["grams"]["type"], "number",
        "{rf}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_image_part_reaches_the_upstream() {
    let s = ClientStack::spawn(|_, _| openai_ok("Red.", 90, 2)).await;
    let out = s.run_compared(Client::AiSdk, "image").await;
    assert_eq!(out["text"], "Red.", "{out}");
    let chats = s.chats();
    assert_eq!(chats.len(), 1, "{}", s.dump());
    assert_eq!(image_url_sent(&chats[0])["url"], out["image_sent"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_embed() {
    let s = ClientStack::spawn(|req, _| openai_embeddings_for(req)).await;
    let out = s.run_compared(Client::AiSdk, "embed").await;
    let ups = s.embeddings();
    assert_eq!(ups.len(), 1, "{}", s.dump());
    let body = &ups[0].body;
    assert_eq!(body["model"], UP_EMBED, "{body}");
    let items = input_items(&body["input"]);
    assert_eq!(items, vec![out["value"].clone()], "{body}");
    assert_eq!(
        floats(&out["embedding"]),
        vector(&items[0], EMBEDDING_DIMENSIONS)
    );
    assert_eq!(out["usage"]["tokens"], 4, "{out}");
    s.stop().await;
}

/// @ai-sdk/openai's default factory calls the Responses API, which the platform does not serve:
/// the customer must get a clear OpenAI-shaped 404 naming the endpoint, and nothing may reach a
/// provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ai_sdk_default_responses_api_gets_a_clear_404() {
    let s = ClientStack::spawn(|_, _| openai_ok("never", 1, 1)).await;
    let out = s.run(Client::AiSdk, "responses").await;
    assert_eq!(out["called"], false, "{out}");
    assert_eq!(out["status"], 404, "{out}");
    assert!(
        out["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/v1/responses")),
        "{out}"
    );
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap_or(""))
        .unwrap_or_else(|_| panic!("the 404 is not JSON: {out}"));
    let err = &body["error"];
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("/v1/responses")),
        "the 404 does not name the endpoint: {body}"
    );
    assert!(err["type"].is_string(), "{body}");
    assert!(
        err.get("param").is_some() && err.get("code").is_some(),
        "{body}"
    );
    assert_eq!(s.s.upstream.count(), 0, "{}", s.dump());
    s.stop().await;
}

/// The comparison itself: a field dropped, renamed or changed is caught; only the stated
/// equivalences pass.
#[test]
fn the_field_by_field_comparison_catches_what_vanishes() {
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    assert!(carried("tools", Some(&tools), Some(&tools)));
    assert!(!carried("tools", Some(&tools), None));
    assert!(!carried("seed", Some(&json!(7)), Some(&json!(8))));
    assert!(!carried("user", None, Some(&json!("someone"))));
    let with_null = json!([{"role": "assistant", "content": null, "tool_calls": []}]);
    let without = json!([{"role": "assistant", "tool_calls": []}]);
    assert!(carried("messages", Some(&with_null), Some(&without)));
    let no_calls = json!([{"role": "assistant", "content": null}]);
    assert!(!carried("messages", Some(&with_null), Some(&no_calls)));
    assert!(carried(
        "model",
        Some(&json!(CHAT_MODEL)),
        Some(&json!(UP_CHAT))
    ));
    assert!(!carried(
        "model",
        Some(&json!(CHAT_MODEL)),
        Some(&json!(CHAT_MODEL))
    ));
    assert!(carried("stream", None, Some(&json!(false))));
    assert!(!carried("stream", None, Some(&json!(true))));
    assert!(carried("input", Some(&json!("a")), Some(&json!(["a"]))));
    assert!(!carried("input", Some(&json!("a")), Some(&json!(["b"]))));
    assert!(!carried(
        "encoding_format",
        Some(&json!("float")),
        Some(&json!("base64"))
    ));
    assert!(carried(
        "stream_options",
        None,
        Some(&json!({"include_usage": true}))
    ));
    assert!(!carried(
        "stream_options",
        None,
        Some(&json!({"include_usage": false}))
    ));
}
