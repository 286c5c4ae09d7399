//! The OpenAI-compatible API carried whole, end to end: gateway-rest → llm-gateway → the
//! recording upstream of `iafactory_testkit::upstream` speaking OpenAI's wire format on
//! loopback. Every assertion is on what the upstream received or on the exact OpenAI shape the
//! client got back.

use base64::Engine;
use iafactory_testkit::upstream::{Recorded, Reply, Upstream, openai_ok, openai_stream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::Answer;
use crate::llm::LlmStack;
use crate::sse::Events;

const ALL_CAPS: &str = "capabilities = { tools = true, vision = true, json_object = true, json_schema = true, logprobs = true, multiple_choices = true, reasoning = true }";
const UP_MODEL: &str = "up-model";

/// The stack on one OpenAI-family route (`m`, every capability) and embedding model `e`.
async fn stack(up: Upstream) -> LlmStack<Upstream> {
    let toml = format!(
        "[providers.up]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key_env = \"UP_KEY\"\n\n\
         [[models]]\nname = \"m\"\n{ALL_CAPS}\nroutes = [{{ provider = \"up\", model = \"{UP_MODEL}\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 2.0 }}]\n\n\
         [[models]]\nname = \"e\"\nkind = \"embedding\"\ncapabilities = {{ dimensions = true }}\nroutes = [{{ provider = \"up\", model = \"up-embed\", input_usd_per_mtok = 0.5, output_usd_per_mtok = 0.0 }}]\n",
        up.url("/v1")
    );
    LlmStack::on_catalog(up, &toml, &[("up", "sk-up")], |_| {}).await
}

/// An upstream answering "ok" (streamed when asked), embeddings with vectors [i, 0.5, -2].
async fn ok_upstream() -> Upstream {
    Upstream::start(|req, _| {
        if req.path.ends_with("/embeddings") {
            let n = match &req.body["input"] {
                Value::Array(a) => a.len(),
                _ => 1,
            };
            let data: Vec<Value> = (0..n)
                .map(|i| json!({"object":"embedding","index":i,"embedding":[i as f32, 0.5, -2.0]}))
                .collect();
            Reply::json(
                200,
                json!({"object":"list","data":data,"model":"up-embed","usage":{"prompt_tokens":6,"total_tokens":6}}),
            )
        } else if req.body["stream"] == json!(true) {
            openai_stream(&["o", "k"], 3, 2)
        } else {
            openai_ok("ok", 3, 2)
        }
    })
    .await
}

async fn post(s: &LlmStack<Upstream>, key: &str, path: &str, body: &Value) -> reqwest::Response {
    s.stack
        .gw
        .request(Method::POST, path)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The data chunks of a stream (`[DONE]` included as a string).
async fn chunks(r: reqwest::Response) -> Vec<Value> {
    assert_eq!(r.status(), StatusCode::OK);
    let mut events = Events::new(r.bytes_stream());
    let mut out = Vec::new();
    while let Some((_, data)) = events.next().await {
        out.push(serde_json::from_str(&data).unwrap_or(Value::String(data)));
    }
    out
}

fn base() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn last(up: &Upstream) -> Recorded {
    up.requests().pop().expect("the upstream received nothing")
}

/// Every top-level field of OpenAI's CreateChatCompletionRequest, as published in
/// github.com/openai/openai-openapi (openapi.json, commit f85dbe2).
const OPENAI_FIELDS: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "messages",
    "metadata",
    "modalities",
    "model",
    "moderation",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

enum Expect {
    /// The upstream received the field with this value.
    Carried(Value),
    /// 400 naming the field in `param`, with this `code`; nothing reached the upstream.
    Refused(&'static str),
}

fn weather_tool() -> Value {
    json!({"type":"function","function":{"name":"weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}})
}

/// One row per field: what is added to the base request, and what must happen.
fn table() -> Vec<(&'static str, Value, Expect)> {
    use Expect::*;
    let same = |v: Value| (v.clone(), Carried(v));
    let rows: Vec<(&str, (Value, Expect))> = vec![
        (
            "audio",
            (
                json!({"voice":"alloy","format":"wav"}),
                Refused("unsupported_parameter"),
            ),
        ),
        ("frequency_penalty", same(json!(-0.5))),
        (
            "function_call",
            (json!("auto"), Refused("unsupported_parameter")),
        ),
        (
            "functions",
            (
                json!([{"name":"weather","parameters":{"type":"object"}}]),
                Refused("unsupported_parameter"),
            ),
        ),
        ("logit_bias", same(json!({"50256": -100.0, "15": 2.5}))),
        ("logprobs", same(json!(true))),
        ("max_completion_tokens", same(json!(77))),
        ("max_tokens", same(json!(66))),
        (
            "messages",
            same(json!([
                {"role":"developer","content":"Be brief."},
                {"role":"system","content":"You help."},
                {"role":"user","name":"ann","content":[
                    {"type":"text","text":"What is this?"},
                    {"type":"image_url","image_url":{"url":"https://example.com/cat.png","detail":"low"}}
                ]},
                {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"18°C"},
                {"role":"assistant","content":"Sorry.","refusal":"I cannot."},
                {"role":"user","content":"Thanks"}
            ])),
        ),
        ("metadata", same(json!({"k":"v"}))),
        ("modalities", same(json!(["text"]))),
        ("model", (json!("m"), Carried(json!(UP_MODEL)))),
        ("moderation", same(json!({"enabled": true}))),
        ("n", same(json!(2))),
        ("parallel_tool_calls", same(json!(false))),
        ("prediction", same(json!({"type":"content","content":"x"}))),
        ("presence_penalty", same(json!(0.5))),
        ("prompt_cache_key", same(json!("cache-1"))),
        ("prompt_cache_options", same(json!({"ttl":"24h"}))),
        ("prompt_cache_retention", same(json!("24h"))),
        ("reasoning_effort", same(json!("low"))),
        (
            "response_format",
            same(
                json!({"type":"json_schema","json_schema":{"name":"answer","description":"The answer","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false},"strict":true}}),
            ),
        ),
        ("safety_identifier", same(json!("user-hash-1"))),
        ("seed", same(json!(42))),
        ("service_tier", same(json!("flex"))),
        ("stop", (json!("END"), Carried(json!(["END"])))),
        ("store", same(json!(false))),
        ("stream", same(json!(true))),
        // The gateway always asks a streaming upstream for its usage (the quota counts it);
        // what the client asked for decides whether it gets the usage chunk (tested below).
        (
            "stream_options",
            (
                json!({"include_usage": false}),
                Carried(json!({"include_usage": true})),
            ),
        ),
        ("temperature", same(json!(1.5))),
        ("tool_choice", same(json!("required"))),
        ("tools", same(json!([weather_tool()]))),
        ("top_logprobs", same(json!(3))),
        ("top_p", same(json!(0.5))),
        ("user", same(json!("user-7"))),
        ("verbosity", same(json!("low"))),
        (
            "web_search_options",
            (json!({}), Refused("unsupported_parameter")),
        ),
    ];
    rows.into_iter().map(|(f, (v, e))| (f, v, e)).collect()
}

/// What a field needs alongside it to be a valid request (top_logprobs needs logprobs, ...).
fn companions(field: &str, body: &mut Value) {
    match field {
        "top_logprobs" => body["logprobs"] = json!(true),
        "tool_choice" | "parallel_tool_calls" => body["tools"] = json!([weather_tool()]),
        "stream_options" => body["stream"] = json!(true),
        "messages" => body["tools"] = json!([weather_tool()]),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chat_completions_field_is_carried_or_refused_naming_it() {
    let table = table();
    let fields: Vec<&str> = table.iter().map(|(f, ..)| *f).collect();
    assert_eq!(
        fields, OPENAI_FIELDS,
        "one row per field of OpenAI's request"
    );
    let s = stack(ok_upstream().await).await;
    let key = s.api_key("premium").await;
    for (field, value, expect) in table {
        let mut body = base();
        body[field] = value;
        companions(field, &mut body);
        let before = s.upstream.count();
        let r = post(&s, &key, "/v1/chat/completions", &body).await;
        match expect {
            Expect::Carried(want) => {
                let status = r.status();
                let text = r.text().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{field}: {text}");
                assert_eq!(s.upstream.count(), before + 1, "{field}");
                let got = last(&s.upstream).body;
                assert_eq!(got[field], want, "{field} as the upstream received it");
            }
            Expect::Refused(code) => {
                let a = Answer::of(r).await;
                a.assert_error(400, code);
                assert_eq!(a.body["error"]["param"], field, "{a:?}");
                assert_eq!(a.body["error"]["type"], "invalid_request_error", "{a:?}");
                assert_eq!(s.upstream.count(), before, "{field} reached the upstream");
            }
        }
    }
    // Nothing added on the way: the base request reaches the upstream with only what the
    // gateway must set (its model name, stream false).
    let r = post(&s, &key, "/v1/chat/completions", &base()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = last(&s.upstream).body;
    assert_eq!(
        got,
        json!({"model": UP_MODEL, "messages": [{"role":"user","content":"hi"}], "stream": false})
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_nested_fields_and_unmodelled_shapes_are_refused_with_their_path() {
    let s = stack(ok_upstream().await).await;
    let key = s.api_key("premium").await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = base();
        f(&mut b);
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&|b| b["messages"][0]["foo"] = json!(1)),
            "messages[0].foo",
            "invalid_argument",
        ),
        (
            with(&|b| b["tools"] = json!([{"type":"function","function":{"name":"f","extra":1}}])),
            "tools[0].function.extra",
            "invalid_argument",
        ),
        (
            with(&|b| b["tools"] = json!([{"type":"custom","custom":{"name":"f"}}])),
            "tools[0].custom",
            "invalid_argument",
        ),
        (
            with(&|b| {
                b["stream"] = json!(true);
                b["stream_options"] = json!({"include_usage": true, "include_obfuscation": false});
            }),
            "stream_options.include_obfuscation",
            "invalid_argument",
        ),
        (
            with(&|b| b["stream_options"] = json!({"include_usage": true})),
            "stream_options",
            "invalid_argument",
        ),
        (
            with(&|b| b["messages"] = json!([{"role":"function","name":"f","content":"x"}])),
            "messages[0].role",
            "unsupported_parameter",
        ),
        (
            with(
                &|b| b["messages"] = json!([{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}}]),
            ),
            "messages[0].function_call",
            "invalid_argument",
        ),
        (
            with(&|b| b["messages"][0]["content"] = json!([{"text":"no type"}])),
            "messages[0].content[0].type",
            "invalid_argument",
        ),
        (
            with(&|b| b["messages"][0]["content"] = json!([{"type":"image_url","image_url":{}}])),
            "messages[0].content[0].image_url.url",
            "invalid_argument",
        ),
        (
            with(&|b| b["temperature"] = json!("hot")),
            "temperature",
            "invalid_argument",
        ),
        (
            with(&|b| {
                b["messages"] = json!([{"content":"hi"}]);
            }),
            "messages[0].role",
            "invalid_argument",
        ),
        (
            with(&|b| b["tool_choice"] = json!("sometimes")),
            "tool_choice",
            "invalid_argument",
        ),
        (
            with(&|b| b["response_format"] = json!({"type":"json_object","schema":{}})),
            "response_format",
            "invalid_argument",
        ),
        // llm-gateway's own rules come back with its `param`.
        (
            with(&|b| b["temperature"] = json!(3.0)),
            "temperature",
            "invalid_argument",
        ),
        (
            with(&|b| b["messages"] = json!([{"role":"tool","content":"18°C"}])),
            "messages[0].tool_call_id",
            "invalid_argument",
        ),
        (
            with(&|b| {
                b["messages"][0]["content"] =
                    json!([{"type":"image_url","image_url":{"url":"ftp://x/cat.png"}}])
            }),
            "messages[0].content[0].image_url.url",
            "invalid_argument",
        ),
    ];
    for (body, param, code) in cases {
        let a = Answer::of(post(&s, &key, "/v1/chat/completions", &body).await).await;
        a.assert_error(400, code);
        assert_eq!(a.body["error"]["param"], param, "{body}: {a:?}");
        assert_eq!(a.body["error"]["type"], "invalid_request_error", "{a:?}");
    }
    // A value of none of a field's shapes is named in the client's terms.
    let mut b = base();
    b["tool_choice"] = json!({"type":"function","function":{"name":"f"},"extra":1});
    let a = Answer::of(post(&s, &key, "/v1/chat/completions", &b).await).await;
    a.assert_error(400, "invalid_argument");
    assert_eq!(a.body["error"]["param"], "tool_choice");
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("none of the accepted shapes"),
        "{a:?}"
    );
    assert_eq!(s.upstream.count(), 0, "nothing reached the upstream");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_raw_parts_and_json_schema_reach_the_upstream_verbatim() {
    let s = stack(ok_upstream().await).await;
    let key = s.api_key("premium").await;
    let content = json!([
        {"type":"text","text":"What is this?"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},
        {"type":"image_url","image_url":{"url":"https://example.com/cat.png"}},
        {"type":"input_audio","input_audio":{"data":"AAA=","format":"wav"}},
        {"type":"text","text":"cached","prompt_cache_breakpoint":{"type":"ephemeral"}}
    ]);
    let format = json!({"type":"json_schema","json_schema":{"name":"cat","schema":{"type":"object","properties":{"breed":{"type":"string"}},"required":["breed"],"additionalProperties":false},"strict":true}});
    let body = json!({"model":"m","messages":[{"role":"user","content":content}],"response_format":format});
    let r = post(&s, &key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let got = last(&s.upstream).body;
    assert_eq!(got["messages"][0]["content"], content);
    assert_eq!(got["response_format"], format);
    for format in [json!({"type":"json_object"}), json!({"type":"text"})] {
        let body = json!({"model":"m","messages":[{"role":"user","content":"JSON please"}],"response_format":format});
        let r = post(&s, &key, "/v1/chat/completions", &body).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(last(&s.upstream).body["response_format"], format);
    }
    s.stop().await;
}

fn tool_upstream_reply(req: &Recorded) -> Reply {
    let chunk = |v: Value| format!("data: {v}\n\n");
    if req.body["stream"] == json!(true) {
        Reply::Sse {
            events: vec![
                chunk(
                    json!({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_s","type":"function","function":{"name":"weather","arguments":""}}]}}]}),
                ),
                chunk(
                    json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}]}),
                ),
                chunk(
                    json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Lyon\"}"}}]}}]}),
                ),
                chunk(
                    json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_t","type":"function","function":{"name":"time","arguments":"{}"}}]}}]}),
                ),
                chunk(json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})),
                chunk(
                    json!({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}),
                ),
                "data: [DONE]\n\n".into(),
            ],
            drop_after: None,
        }
    } else {
        Reply::json(
            200,
            json!({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_u","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_unary_second_turn_and_streamed_deltas() {
    let s = stack(Upstream::start(|req, _| tool_upstream_reply(req)).await).await;
    let key = s.api_key("premium").await;
    let mut body = json!({"model":"m","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[weather_tool()],"tool_choice":"auto"});
    let a = Answer::of(post(&s, &key, "/v1/chat/completions", &body).await).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let choice = &a.body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = json!({"id":"call_u","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}});
    assert_eq!(choice["message"]["tool_calls"], json!([call]));
    assert_eq!(last(&s.upstream).body["tools"], json!([weather_tool()]));
    assert_eq!(last(&s.upstream).body["tool_choice"], "auto");

    // Second turn, as an agent loop sends it: the assistant's call and the tool's result.
    let turn = json!([
        {"role":"assistant","content":null,"tool_calls":[call]},
        {"role":"tool","tool_call_id":"call_u","content":"18°C"}
    ]);
    body["messages"]
        .as_array_mut()
        .unwrap()
        .extend(turn.as_array().unwrap().iter().cloned());
    let r = post(&s, &key, "/v1/chat/completions", &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let sent = last(&s.upstream).body["messages"].clone();
    // `content: null` and no content say the same to OpenAI; the call itself is as sent.
    assert_eq!(
        (
            &sent[1]["role"],
            &sent[1]["tool_calls"],
            sent[1]["content"].is_null()
        ),
        (&json!("assistant"), &json!([call]), true)
    );
    assert_eq!(sent[2], turn[1]);

    // Streamed: OpenAI's tool-call deltas, reassembled by index.
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let c = chunks(post(&s, &key, "/v1/chat/completions", &body).await).await;
    assert_eq!(c.last(), Some(&json!("[DONE]")), "{c:?}");
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut firsts = Vec::new();
    for ch in &c {
        for d in ch["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = d["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if d.get("id").is_some() {
                firsts.push(d.clone());
            }
            calls[i].0.push_str(d["id"].as_str().unwrap_or(""));
            calls[i]
                .1
                .push_str(d["function"]["name"].as_str().unwrap_or(""));
            calls[i]
                .2
                .push_str(d["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    assert_eq!(
        calls,
        vec![
            (
                "call_s".into(),
                "weather".into(),
                r#"{"city":"Lyon"}"#.into()
            ),
            ("call_t".into(), "time".into(), "{}".into()),
        ]
    );
    // The first piece of each call names its type, id and function, as OpenAI streams it.
    assert_eq!(
        firsts[0],
        json!({"index":0,"id":"call_s","type":"function","function":{"name":"weather","arguments":""}})
    );
    let finish: Vec<&Value> = c
        .iter()
        .filter(|ch| ch["choices"][0]["finish_reason"].is_string())
        .collect();
    assert_eq!(finish.len(), 1, "{c:?}");
    assert_eq!(finish[0]["choices"][0]["finish_reason"], "tool_calls");
    let usage = &c[c.len() - 2];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 7);
    // With include_usage every other chunk carries `"usage": null`, as OpenAI's do.
    assert!(
        c[..c.len() - 2]
            .iter()
            .all(|ch| ch["usage"].is_null() && ch.as_object().unwrap().contains_key("usage")),
        "{c:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_choices_logprobs_refusal_and_fingerprint_come_back_in_openai_shape() {
    let up = Upstream::always(Reply::json(
        200,
        json!({"system_fingerprint":"fp_9","choices":[
            {"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop",
             "logprobs":{"content":[{"token":"a","logprob":-0.25,"bytes":[97],"top_logprobs":[{"token":"b","logprob":-2.0,"bytes":[98]}]}]}},
            {"index":1,"message":{"role":"assistant","content":null,"refusal":"I cannot."},"finish_reason":"stop"}
        ],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}),
    ))
    .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],"n":2,"logprobs":true,"top_logprobs":1});
    let a = Answer::of(post(&s, &key, "/v1/chat/completions", &body).await).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let b = &a.body;
    assert_eq!(b["system_fingerprint"], "fp_9");
    assert_eq!(
        b["choices"][0],
        json!({"index":0,"message":{"role":"assistant","content":"a","refusal":null},"finish_reason":"stop",
               "logprobs":{"content":[{"token":"a","logprob":-0.25,"bytes":[97],"top_logprobs":[{"token":"b","logprob":-2.0,"bytes":[98]}]}],"refusal":null}})
    );
    assert_eq!(
        b["choices"][1],
        json!({"index":1,"message":{"role":"assistant","content":null,"refusal":"I cannot."},"finish_reason":"stop","logprobs":null})
    );
    assert_eq!(
        b["usage"],
        json!({"prompt_tokens":3,"completion_tokens":4,"total_tokens":7})
    );
    let sent = last(&s.upstream).body;
    assert_eq!(
        (&sent["n"], &sent["logprobs"], &sent["top_logprobs"]),
        (&json!(2), &json!(true), &json!(1))
    );
    s.stop().await;
}

/// The token counts a provider itemises (cached prompt tokens, reasoning tokens of reasoning
/// models, audio, predicted outputs) reach the client as OpenAI reports them, unary and in the
/// stream's usage chunk; a part the provider did not report is absent, never a made-up zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_details_the_provider_itemised_come_back_as_reported() {
    let usage = json!({"prompt_tokens":40,"completion_tokens":25,"total_tokens":65,
        "prompt_tokens_details":{"cached_tokens":32,"audio_tokens":0},
        "completion_tokens_details":{"reasoning_tokens":18,"accepted_prediction_tokens":0,"rejected_prediction_tokens":2}});
    let up = Upstream::start({
        let usage = usage.clone();
        move |req, _| {
            if req.body["stream"] == json!(true) {
                let chunk = |v: Value| format!("data: {v}\n\n");
                Reply::Sse {
                    events: vec![
                        chunk(json!({"choices":[{"index":0,"delta":{"role":"assistant","content":"ok"}}]})),
                        chunk(json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})),
                        chunk(json!({"choices":[],"usage":usage})),
                        "data: [DONE]\n\n".into(),
                    ],
                    drop_after: None,
                }
            } else {
                Reply::json(
                    200,
                    json!({"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":usage}),
                )
            }
        }
    })
    .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    let expected = json!({"prompt_tokens":40,"completion_tokens":25,"total_tokens":65,
        "prompt_tokens_details":{"cached_tokens":32,"audio_tokens":0},
        "completion_tokens_details":{"reasoning_tokens":18,"accepted_prediction_tokens":0,"rejected_prediction_tokens":2}});
    let a = Answer::of(post(&s, &key, "/v1/chat/completions", &base()).await).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["usage"], expected);
    let mut streamed = base();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let c = chunks(post(&s, &key, "/v1/chat/completions", &streamed).await).await;
    let usages: Vec<&Value> = c
        .iter()
        .filter_map(|ch| ch.get("usage").filter(|u| !u.is_null()))
        .collect();
    assert_eq!(usages, vec![&expected], "{c:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_choices_each_get_their_role_and_finish() {
    let up = Upstream::always({
        let chunk = |v: Value| format!("data: {v}\n\n");
        Reply::Sse {
            events: vec![
                chunk(json!({"system_fingerprint":"fp_s","choices":[{"index":0,"delta":{"role":"assistant","content":"A"}}]})),
                chunk(json!({"choices":[{"index":1,"delta":{"role":"assistant","content":"B"}}]})),
                chunk(json!({"choices":[{"index":1,"delta":{},"finish_reason":"length"}]})),
                chunk(json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})),
                chunk(json!({"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}})),
                "data: [DONE]\n\n".into(),
            ],
            drop_after: None,
        }
    })
    .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],"n":2,"stream":true});
    let c = chunks(post(&s, &key, "/v1/chat/completions", &body).await).await;
    assert_eq!(c.last(), Some(&json!("[DONE]")));
    let text = |i: u64| -> String {
        c.iter()
            .filter(|ch| ch["choices"][0]["index"] == i)
            .filter_map(|ch| ch["choices"][0]["delta"]["content"].as_str())
            .collect()
    };
    assert_eq!((text(0), text(1)), ("A".to_owned(), "B".to_owned()));
    for (i, reason) in [(0, "stop"), (1, "length")] {
        let roles = c
            .iter()
            .filter(|ch| {
                ch["choices"][0]["index"] == i && ch["choices"][0]["delta"]["role"] == "assistant"
            })
            .count();
        assert_eq!(roles, 1, "choice {i}: {c:?}");
        let finishes: Vec<&Value> = c
            .iter()
            .filter(|ch| ch["choices"][0]["index"] == i)
            .filter_map(|ch| ch["choices"][0]["finish_reason"].as_str().map(|_| ch))
            .collect();
        assert_eq!(finishes.len(), 1, "choice {i}: {c:?}");
        assert_eq!(finishes[0]["choices"][0]["finish_reason"], reason);
    }
    // No include_usage: no usage chunk, no usage field.
    assert!(c.iter().all(|ch| ch.get("usage").is_none()), "{c:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_code_and_param_reach_the_client() {
    let up = Upstream::always(Reply::json(
        400,
        json!({"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}),
    ))
    .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    for stream in [false, true] {
        let mut body = base();
        body["stream"] = json!(stream);
        let a = Answer::of(post(&s, &key, "/v1/chat/completions", &body).await).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
        let e = &a.body["error"];
        assert_eq!(e["code"], "context_length_exceeded", "{a:?}");
        assert_eq!(e["param"], "messages");
        assert_eq!(e["type"], "invalid_request_error");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("maximum context length"),
            "{a:?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_failing_after_its_start_ends_with_an_error_chunk() {
    let up =
        Upstream::always(openai_stream(&["Bon", "jour", " à", " tous"], 3, 4).dropping_after(3))
            .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    let mut body = base();
    body["stream"] = json!(true);
    let c = chunks(post(&s, &key, "/v1/chat/completions", &body).await).await;
    let text: String = c
        .iter()
        .filter_map(|ch| ch["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Bonjour", "{c:?}");
    let end = c.last().unwrap();
    assert!(end["error"]["message"].is_string(), "{c:?}");
    assert!(end["error"]["type"].is_string(), "{c:?}");
    assert!(!c.contains(&json!("[DONE]")), "{c:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_by_id_and_keyed_list() {
    let s = stack(ok_upstream().await).await;
    let key = s.api_key("premium").await;
    let get = |path: &'static str, key: Option<String>| {
        let s = &s;
        async move {
            let mut r = s.stack.gw.request(Method::GET, path);
            if let Some(k) = key {
                r = r.bearer_auth(k);
            }
            Answer::of(r.send().await.unwrap()).await
        }
    };
    let m = get("/v1/models/m", Some(key.clone())).await;
    assert_eq!(m.status, StatusCode::OK, "{m:?}");
    assert_eq!(m.body["id"], "m");
    assert_eq!(m.body["object"], "model");
    assert_eq!(m.body["kind"], "chat");
    assert!(m.body["created"].is_i64() && m.body["owned_by"].is_string());
    assert_eq!(m.body["routes"][0]["capabilities"]["tools"], true);
    let e = get("/v1/models/e", None).await;
    assert_eq!(e.body["kind"], "embedding", "{e:?}");
    let missing = get("/v1/models/no-such-model", Some(key.clone())).await;
    missing.assert_error(404, "model_not_found");
    assert_eq!(missing.body["error"]["type"], "not_found_error");
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
    let list = get("/v1/models", Some(key.clone())).await;
    let ids: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"m") && ids.contains(&"e"), "{ids:?}");
    get("/v1/models", Some("iaf_not_a_real_key_0000000000".into()))
        .await
        .assert_error(401, "unauthenticated");
    s.stop().await;
}

/// The largest batch OpenAI takes (2048 texts) with full-size vectors comes back whole and in
/// order: llm-gateway's answer (12 MiB of floats) is far above the 1 MiB that bounds requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_embeddings_batch_is_answered_whole() {
    const DIMS: usize = 1536;
    let up = Upstream::start(|req, _| {
        let n = req.body["input"].as_array().map_or(1, Vec::len);
        let data: Vec<Value> = (0..n)
            .map(|i| {
                let mut v = vec![0.25f32; DIMS];
                v[0] = i as f32;
                json!({"object":"embedding","index":i,"embedding":v})
            })
            .collect();
        Reply::json(
            200,
            json!({"object":"list","data":data,"model":"up-embed","usage":{"prompt_tokens":n,"total_tokens":n}}),
        )
    })
    .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    let input: Vec<String> = (0..2048).map(|i| format!("texte {i}")).collect();
    let body = json!({"model":"e","input":input});
    let a = Answer::of(post(&s, &key, "/v1/embeddings", &body).await).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        &a.text[..a.text.len().min(500)]
    );
    let data = a.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2048);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(d["index"], i);
        let v = d["embedding"].as_array().unwrap();
        assert_eq!(v.len(), DIMS);
        assert_eq!(v[0], i as f64);
    }
    assert_eq!(a.body["usage"]["prompt_tokens"], 2048);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_float_base64_and_token_ids() {
    let s = stack(ok_upstream().await).await;
    let key = s.api_key("premium").await;
    let body = json!({"model":"e","input":["un","deux"],"dimensions":3,"user":"u-1"});
    let a = Answer::of(post(&s, &key, "/v1/embeddings", &body).await).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["object"], "list");
    assert_eq!(a.body["model"], "e");
    assert_eq!(
        a.body["data"],
        json!([
            {"object":"embedding","index":0,"embedding":[0.0,0.5,-2.0]},
            {"object":"embedding","index":1,"embedding":[1.0,0.5,-2.0]}
        ])
    );
    assert_eq!(a.body["usage"], json!({"prompt_tokens":6,"total_tokens":6}));
    let sent = last(&s.upstream);
    assert!(sent.path.ends_with("/v1/embeddings"), "{}", sent.path);
    assert_eq!(sent.body["model"], "up-embed");
    assert_eq!(sent.body["input"], json!(["un", "deux"]));
    assert_eq!(sent.body["dimensions"], 3);
    assert_eq!(sent.body["user"], "u-1");

    // base64: the little-endian float32 bytes, as OpenAI encodes them.
    let body = json!({"model":"e","input":"un","encoding_format":"base64"});
    let a = Answer::of(post(&s, &key, "/v1/embeddings", &body).await).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let b64 = a.body["data"][0]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(floats, vec![0.0, 0.5, -2.0]);

    // Token ids, as langchain-openai sends them: one list, or one list per text.
    for input in [json!([1, 2, 3]), json!([[1, 2], [3]])] {
        let body = json!({"model":"e","input":input});
        let a = Answer::of(post(&s, &key, "/v1/embeddings", &body).await).await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        let want = if input[0].is_array() {
            input.clone()
        } else {
            json!([input.clone()])
        };
        let got = &last(&s.upstream).body["input"];
        assert!(got == &want || got == &input, "{got} for {input}");
    }

    // A field the contract cannot carry is refused, naming it.
    let a = Answer::of(
        post(
            &s,
            &key,
            "/v1/embeddings",
            &json!({"model":"e","input":"x","truncate":"END"}),
        )
        .await,
    )
    .await;
    a.assert_error(400, "invalid_argument");
    assert_eq!(a.body["error"]["param"], "truncate");
    let a = Answer::of(
        post(
            &s,
            &key,
            "/v1/embeddings",
            &json!({"model":"e","input":"x","encoding_format":"int8"}),
        )
        .await,
    )
    .await;
    a.assert_error(400, "invalid_argument");
    assert_eq!(a.body["error"]["param"], "encoding_format");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_errors_the_edge_writes_itself_are_in_english_and_openai_shaped() {
    let s = stack(ok_upstream().await).await;
    let key = s.api_key("premium").await;
    let send = |path: &'static str, ct: &'static str, body: &'static str| {
        let s = &s;
        let key = key.clone();
        async move {
            Answer::of(
                s.stack
                    .gw
                    .request(Method::POST, path)
                    .bearer_auth(key)
                    .header("content-type", ct)
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let cases = [
        (
            send("/v1/chat/completions", "text/plain", "hi").await,
            415,
            "unsupported_media_type",
            "The body must be JSON",
        ),
        (
            send("/v1/chat/completions", "application/json", "{\"model\":").await,
            400,
            "malformed_json",
            "We could not parse the JSON body",
        ),
        (
            send("/v1/chat/completions", "application/json", "[1]").await,
            400,
            "invalid_argument",
            "The body must be a JSON object",
        ),
        (
            send("/v1/nothing-here", "application/json", "{}").await,
            404,
            "route_not_found",
            "No resource at this address",
        ),
    ];
    for (a, status, code, english) in cases {
        a.assert_error(status, code);
        let message = a.body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(english), "{a:?}");
        assert!(a.body["error"]["type"].is_string(), "{a:?}");
        assert!(
            a.body["error"].as_object().unwrap().contains_key("param"),
            "{a:?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_logprobs_and_refusal_deltas_come_back() {
    let up = Upstream::always({
        let chunk = |v: Value| format!("data: {v}\n\n");
        Reply::Sse {
            events: vec![
                chunk(
                    json!({"choices":[{"index":0,"delta":{"role":"assistant","content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[{"token":"b","logprob":-1.5,"bytes":[98]}]}]}}]}),
                ),
                chunk(json!({"choices":[{"index":0,"delta":{"refusal":"No."}}]})),
                chunk(json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})),
                chunk(
                    json!({"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}),
                ),
                "data: [DONE]\n\n".into(),
            ],
            drop_after: None,
        }
    })
    .await;
    let s = stack(up).await;
    let key = s.api_key("premium").await;
    let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"logprobs":true,"top_logprobs":1});
    let c = chunks(post(&s, &key, "/v1/chat/completions", &body).await).await;
    let with_lp: Vec<&Value> = c
        .iter()
        .filter(|ch| ch["choices"][0]["logprobs"].is_object())
        .collect();
    assert_eq!(with_lp.len(), 1, "{c:?}");
    assert_eq!(with_lp[0]["choices"][0]["delta"]["content"], "a");
    assert_eq!(
        with_lp[0]["choices"][0]["logprobs"]["content"],
        json!([{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[{"token":"b","logprob":-1.5,"bytes":[98]}]}])
    );
    let refusal: String = c
        .iter()
        .filter_map(|ch| ch["choices"][0]["delta"]["refusal"].as_str())
        .collect();
    assert_eq!(refusal, "No.");
    assert_eq!(last(&s.upstream).body["top_logprobs"], 1);
    s.stop().await;
}
