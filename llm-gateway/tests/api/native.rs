//! The native providers (Anthropic Messages, Gemini generateContent, Cohere chat v2) end to end:
//! gRPC client → gateway → a local upstream speaking the provider's wire format, which records
//! what it received. For each: a tool round trip (tools declared natively, a native tool call
//! answered as OpenAI-shaped tool calls, the tool result sent back natively) and an image
//! request, unary and streamed; and the refusal of what the format cannot carry.

use iafactory::proto::iafactory::llm::v1 as pb;
use serde_json::{Value, json};

use crate::helpers::*;
use iafactory_testkit::upstream::*;

const PNG: &str = "data:image/png;base64,iVBORw0KGgo=";
const PHOTO: &str = "https://img.test/cat.jpg";

fn text_msg(role: pb::Role, text: &str) -> pb::ChatMessage {
    pb::ChatMessage {
        role: role as i32,
        content: Some(pb::chat_message::Content::Text(text.into())),
        ..Default::default()
    }
}

fn weather_tool() -> pb::Tool {
    pb::Tool {
        name: "get_weather".into(),
        description: "Current weather of a city".into(),
        parameters_json:
            json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})
                .to_string(),
        strict: None,
    }
}

/// Turn 1: a question with a tool the model must use.
fn tool_turn(model: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        model: model.into(),
        messages: vec![
            text_msg(pb::Role::System, "Be brief."),
            text_msg(pb::Role::User, "Weather in Oran?"),
        ],
        tools: vec![weather_tool()],
        tool_choice: Some(pb::ToolChoice {
            choice: Some(pb::tool_choice::Choice::Mode(
                pb::tool_choice::Mode::Required as i32,
            )),
        }),
        max_tokens: Some(100),
        ..Default::default()
    }
}

/// Turn 2: the call the model made and its result.
fn result_turn(model: &str, call: &pb::ToolCall) -> pb::ChatRequest {
    let mut req = tool_turn(model);
    req.tool_choice = None;
    req.messages.push(pb::ChatMessage {
        role: pb::Role::Assistant as i32,
        tool_calls: vec![call.clone()],
        ..Default::default()
    });
    req.messages.push(pb::ChatMessage {
        role: pb::Role::Tool as i32,
        content: Some(pb::chat_message::Content::Text("21C, sunny".into())),
        tool_call_id: call.id.clone(),
        ..Default::default()
    });
    req
}

fn image_turn(model: &str) -> pb::ChatRequest {
    let image = |url: &str| pb::ContentPart {
        part: Some(pb::content_part::Part::ImageUrl(pb::ImageUrl {
            url: url.into(),
            detail: String::new(),
        })),
    };
    pb::ChatRequest {
        model: model.into(),
        messages: vec![pb::ChatMessage {
            role: pb::Role::User as i32,
            content: Some(pb::chat_message::Content::Parts(pb::ContentParts {
                parts: vec![
                    pb::ContentPart {
                        part: Some(pb::content_part::Part::Text("What is on them?".into())),
                    },
                    image(PHOTO),
                    image(PNG),
                ],
            })),
            ..Default::default()
        }],
        max_tokens: Some(100),
        ..Default::default()
    }
}

/// What a client gets back, unary or streamed (tool-call deltas reassembled by index).
#[derive(Debug, Default)]
struct Answer {
    text: String,
    calls: Vec<pb::ToolCall>,
    finish_reason: String,
}

async fn ask(env: &mut Env, req: pb::ChatRequest, stream: bool) -> Result<Answer, tonic::Status> {
    if !stream {
        let r = env
            .gw
            .client
            .chat(authed(req, &env.key))
            .await?
            .into_inner();
        let m = r.choices[0].message.clone().unwrap_or_default();
        return Ok(Answer {
            text: text_of(Some(&m)).to_owned(),
            calls: m.tool_calls,
            finish_reason: r.choices[0].finish_reason.clone(),
        });
    }
    let mut s = env
        .gw
        .client
        .chat_stream(authed(req, &env.key))
        .await?
        .into_inner();
    let mut a = Answer::default();
    while let Some(ev) = s.message().await? {
        match ev.event {
            Some(pb::chat_stream_event::Event::Delta(d)) => {
                a.text.push_str(&d.content);
                for t in d.tool_calls {
                    let i = t.index as usize;
                    if a.calls.len() <= i {
                        a.calls.resize(i + 1, pb::ToolCall::default());
                    }
                    let c = &mut a.calls[i];
                    if let Some(id) = t.id {
                        assert!(c.id.is_empty(), "a call's id comes once");
                        c.id = id;
                    }
                    if let Some(name) = t.name {
                        c.name.push_str(&name);
                    }
                    c.arguments.push_str(&t.arguments);
                }
            }
            Some(pb::chat_stream_event::Event::End(e)) => a.finish_reason = e.finish_reason,
            None => {}
        }
    }
    Ok(a)
}

/// Both turns of a tool loop; returns the call the client received.
async fn tool_loop(env: &mut Env, model: &str, stream: bool) -> pb::ToolCall {
    let first = ask(env, tool_turn(model), stream).await.unwrap();
    assert_eq!(first.finish_reason, "tool_calls", "{first:?}");
    assert_eq!(first.calls.len(), 1, "{first:?}");
    let call = first.calls[0].clone();
    assert_eq!(call.name, "get_weather");
    assert!(!call.id.is_empty());
    let args: Value = serde_json::from_str(&call.arguments).unwrap();
    assert_eq!(args, json!({"city":"Oran"}));
    let second = ask(env, result_turn(model, &call), stream).await.unwrap();
    assert_eq!(second.text, "It is 21C and sunny.");
    assert_eq!(second.finish_reason, "stop");
    assert!(second.calls.is_empty());
    call
}

/// One provider serving model `m`, whose catalogue entry states every capability the native
/// translations can carry (what the wire then really carries is the translation's business).
fn one(kind: &str, base_path: &str, up: &Upstream) -> String {
    format!(
        "{}{}capabilities = {{ tools = true, vision = true, json_object = true, json_schema = true, multiple_choices = true }}\n",
        provider("p", kind, &up.url(base_path)),
        model("m", &[("p", "up-model", 1.0, 2.0)])
    )
}

fn refused_param(status: &tonic::Status) -> (&str, String) {
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert_eq!(error_code(status), "unsupported_parameter", "{status:?}");
    (md(status, "x-iaf-param"), status.message().to_owned())
}

// --- Anthropic -----------------------------------------------------------------------------

fn anthropic_events(events: &[(&str, Value)]) -> Reply {
    Reply::Sse {
        events: events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect(),
        drop_after: None,
    }
}

/// Anthropic: a tool call when the last turn is the question, text after a tool result.
fn anthropic_upstream(req: &Recorded, _: usize) -> Reply {
    let last = req.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    let answered = last["content"][0]["type"] == "tool_result";
    let stream = req.body["stream"] == true;
    match (answered, stream) {
        (false, false) => Reply::json(
            200,
            json!({"id":"msg_1","type":"message","role":"assistant","model":"up-model",
                   "content":[{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oran"}}],
                   "stop_reason":"tool_use","usage":{"input_tokens":30,"output_tokens":12}}),
        ),
        (true, false) => anthropic_ok("It is 21C and sunny.", 40, 8),
        (false, true) => anthropic_events(&[
            (
                "message_start",
                json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"up-model","usage":{"input_tokens":30,"output_tokens":1}}}),
            ),
            (
                "content_block_start",
                json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}),
            ),
            ("ping", json!({"type":"ping"})),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}),
            ),
            (
                "content_block_delta",
                json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Oran\"}"}}),
            ),
            (
                "content_block_stop",
                json!({"type":"content_block_stop","index":0}),
            ),
            (
                "message_delta",
                json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":12}}),
            ),
            ("message_stop", json!({"type":"message_stop"})),
        ]),
        (true, true) => anthropic_stream(&["It is 21C", " and sunny."], 40, 8),
    }
}

fn assert_anthropic_tool_turns(first: &Value, second: &Value, call_id: &str) {
    assert_eq!(first["system"], "Be brief.");
    assert_eq!(
        first["tools"],
        json!([{"name":"get_weather","description":"Current weather of a city",
                "input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}])
    );
    assert_eq!(first["tool_choice"], json!({"type":"any"}));
    assert_eq!(
        first["messages"],
        json!([{"role":"user","content":"Weather in Oran?"}])
    );
    assert_eq!(call_id, "toolu_01", "Anthropic's own call id is kept");
    assert_eq!(
        second["messages"],
        json!([
            {"role":"user","content":"Weather in Oran?"},
            {"role":"assistant","content":[{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Oran"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"21C, sunny"}]}
        ])
    );
    assert!(
        second.get("tool_choice").is_none(),
        "the client made no choice: Anthropic's default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_tool_round_trip_unary_and_streamed() {
    let up = Upstream::start(anthropic_upstream).await;
    let mut env = Env::start(&one("anthropic", "/v1", &up)).await;
    let unary = tool_loop(&mut env, "m", false).await;
    let streamed = tool_loop(&mut env, "m", true).await;
    let reqs = up.requests();
    assert_eq!(reqs.len(), 4);
    assert_anthropic_tool_turns(&reqs[0].body, &reqs[1].body, &unary.id);
    assert_anthropic_tool_turns(&reqs[2].body, &reqs[3].body, &streamed.id);
    assert_eq!(reqs[2].body["stream"], true);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_images_unary_and_streamed() {
    let up = Upstream::unary_or_stream(
        anthropic_ok("Two cats.", 900, 3),
        anthropic_stream(&["Two ", "cats."], 900, 3),
    )
    .await;
    let mut env = Env::start(&one("anthropic", "/v1", &up)).await;
    for stream in [false, true] {
        let a = ask(&mut env, image_turn("m"), stream).await.unwrap();
        assert_eq!(a.text, "Two cats.");
    }
    for q in up.requests() {
        assert_eq!(
            q.body["messages"],
            json!([{"role":"user","content":[
                {"type":"text","text":"What is on them?"},
                {"type":"image","source":{"type":"url","url":PHOTO}},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}
            ]}])
        );
    }
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_refuses_what_it_cannot_carry_and_structured_output_uses_output_config() {
    let up = Upstream::always(anthropic_ok("{\"a\":1}", 5, 5)).await;
    let mut env = Env::start(&one("anthropic", "/v1", &up)).await;

    let mut hot = chat_req("m", "hi");
    hot.temperature = Some(1.5);
    let e = env.gw.client.chat(authed(hot, &env.key)).await.unwrap_err();
    let (param, message) = refused_param(&e);
    assert_eq!(param, "temperature");
    assert!(
        message.contains("temperature") && message.contains("\"m\""),
        "{message}"
    );

    let mut seeded = chat_req("m", "hi");
    seeded.seed = Some(7);
    let e = env
        .gw
        .client
        .chat(authed(seeded, &env.key))
        .await
        .unwrap_err();
    assert_eq!(refused_param(&e).0, "seed");

    let mut json_mode = chat_req("m", "hi");
    json_mode.response_format = Some(pb::ResponseFormat {
        format: Some(pb::response_format::Format::JsonObject(pb::Empty {})),
    });
    let e = env
        .gw
        .client
        .chat_stream(authed(json_mode, &env.key))
        .await
        .unwrap_err();
    assert_eq!(refused_param(&e).0, "response_format");
    assert_eq!(up.count(), 0, "nothing refused reached the provider");

    let mut schema = chat_req("m", "hi");
    schema.response_format = Some(pb::ResponseFormat {
        format: Some(pb::response_format::Format::JsonSchema(pb::JsonSchema {
            name: "thing".into(),
            description: String::new(),
            schema_json: json!({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}).to_string(),
            strict: Some(true),
        })),
    });
    let r = env
        .gw
        .client
        .chat(authed(schema, &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(text_of(r.message.as_ref()), "{\"a\":1}");
    assert_eq!(
        up.requests()[0].body["output_config"],
        json!({"format":{"type":"json_schema","schema":{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false}}})
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_one_route_cannot_carry_goes_to_a_route_that_can() {
    let anthropic = Upstream::always(anthropic_ok("claude", 1, 1)).await;
    let openai = Upstream::always(openai_ok("gpt", 1, 1)).await;
    let toml = format!(
        "{}{}{}",
        provider("a", "anthropic", &anthropic.url("/v1")),
        provider("o", "openai", &openai.url("/v1")),
        model("m", &[("a", "claude", 1.0, 1.0), ("o", "gpt", 1.0, 1.0)])
    );
    let mut env = Env::start(&toml).await;
    let mut seeded = chat_req("m", "hi");
    seeded.seed = Some(7);
    let r = env
        .gw
        .client
        .chat(authed(seeded, &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.provider.as_str(), r.attempts), ("o", 1));
    assert_eq!(openai.requests()[0].body["seed"], 7);
    assert_eq!(anthropic.count(), 0);
    let r = env.chat("m", "hi").await.unwrap();
    assert_eq!(r.provider, "a", "without the field the first route serves");
    env.gw.stop().await;
}

// --- Gemini --------------------------------------------------------------------------------

/// Gemini: a function call (with a thought signature, as thinking models send) when the last
/// turn is the question, text after a function response.
fn gemini_upstream(req: &Recorded, _: usize) -> Reply {
    let last = req.body["contents"]
        .as_array()
        .and_then(|c| c.last())
        .cloned()
        .unwrap_or_default();
    let answered = last["parts"][0].get("functionResponse").is_some();
    let stream = req.path.contains("streamGenerateContent");
    let call = json!({"candidates":[{"content":{"role":"model","parts":[
            {"functionCall":{"name":"get_weather","args":{"city":"Oran"}},"thoughtSignature":"c2lnMQ=="}]},
            "finishReason":"STOP","index":0}],
        "usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":12,"thoughtsTokenCount":5,"totalTokenCount":47}});
    match (answered, stream) {
        (false, false) => Reply::json(200, call),
        (false, true) => Reply::Sse {
            events: vec![format!("data: {call}\r\n\r\n")],
            drop_after: None,
        },
        (true, false) => gemini_ok("It is 21C and sunny.", 40, 8),
        (true, true) => gemini_stream(&["It is 21C", " and sunny."], 40, 8),
    }
}

fn assert_gemini_tool_turns(first: &Value, second: &Value, call_id: &str) {
    assert_eq!(
        first["systemInstruction"],
        json!({"parts":[{"text":"Be brief."}]})
    );
    assert_eq!(
        first["tools"],
        json!([{"functionDeclarations":[{"name":"get_weather","description":"Current weather of a city",
            "parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"}},"required":["city"]}}]}])
    );
    assert_eq!(
        first["toolConfig"],
        json!({"functionCallingConfig":{"mode":"ANY"}})
    );
    assert_eq!(
        first["contents"],
        json!([{"role":"user","parts":[{"text":"Weather in Oran?"}]}])
    );
    assert!(
        call_id.starts_with("call_") && call_id.ends_with("__thought__c2lnMQ=="),
        "a generated id carrying the thought signature: {call_id}"
    );
    assert_eq!(
        second["contents"],
        json!([
            {"role":"user","parts":[{"text":"Weather in Oran?"}]},
            {"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Oran"}},"thoughtSignature":"c2lnMQ=="}]},
            {"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"output":"21C, sunny"}}}]}
        ])
    );
    assert!(second.get("toolConfig").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_tool_round_trip_unary_and_streamed() {
    let up = Upstream::start(gemini_upstream).await;
    let mut env = Env::start(&one("gemini", "/v1beta", &up)).await;
    let unary = tool_loop(&mut env, "m", false).await;
    let streamed = tool_loop(&mut env, "m", true).await;
    assert_ne!(unary.id, streamed.id, "every call gets its own id");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 4);
    assert_gemini_tool_turns(&reqs[0].body, &reqs[1].body, &unary.id);
    assert_gemini_tool_turns(&reqs[2].body, &reqs[3].body, &streamed.id);
    assert!(reqs[2].path.ends_with(":streamGenerateContent?alt=sse"));
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_images_unary_and_streamed() {
    let up = Upstream::start(|req, _| {
        if req.path.contains("streamGenerateContent") {
            gemini_stream(&["Two ", "cats."], 900, 3)
        } else {
            gemini_ok("Two cats.", 900, 3)
        }
    })
    .await;
    let mut env = Env::start(&one("gemini", "/v1beta", &up)).await;
    for stream in [false, true] {
        let a = ask(&mut env, image_turn("m"), stream).await.unwrap();
        assert_eq!(a.text, "Two cats.");
    }
    for q in up.requests() {
        assert_eq!(
            q.body["contents"],
            json!([{"role":"user","parts":[
                {"text":"What is on them?"},
                {"fileData":{"mimeType":"image/jpeg","fileUri":PHOTO}},
                {"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}
            ]}])
        );
    }
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_structured_output_and_refusals() {
    let up = Upstream::always(gemini_ok("{\"a\":1}", 5, 5)).await;
    let mut env = Env::start(&one("gemini", "/v1beta", &up)).await;
    let with_schema = |schema: Value| {
        let mut r = chat_req("m", "hi");
        r.response_format = Some(pb::ResponseFormat {
            format: Some(pb::response_format::Format::JsonSchema(pb::JsonSchema {
                name: "thing".into(),
                description: String::new(),
                schema_json: schema.to_string(),
                strict: Some(true),
            })),
        });
        r
    };
    let r = env
        .gw
        .client
        .chat(authed(
            with_schema(json!({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false})),
            &env.key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(text_of(r.message.as_ref()), "{\"a\":1}");
    let g = &up.requests()[0].body["generationConfig"];
    assert_eq!(g["responseMimeType"], "application/json");
    assert_eq!(
        g["responseSchema"],
        json!({"type":"OBJECT","properties":{"a":{"type":"INTEGER"}},"required":["a"]})
    );

    let e = env
        .gw
        .client
        .chat(authed(
            with_schema(json!({"type":"object","properties":{"a":{"oneOf":[{"type":"string"},{"type":"integer"}]}}})),
            &env.key,
        ))
        .await
        .unwrap_err();
    let (param, message) = refused_param(&e);
    assert_eq!(param, "response_format.json_schema.schema");
    assert!(message.contains("oneOf"), "{message}");

    let mut user = chat_req("m", "hi");
    user.user = Some("u-1".into());
    let e = env
        .gw
        .client
        .chat(authed(user, &env.key))
        .await
        .unwrap_err();
    assert_eq!(refused_param(&e).0, "user");
    assert_eq!(up.count(), 1, "refusals never reach the provider");
    env.gw.stop().await;
}

// --- Cohere --------------------------------------------------------------------------------

fn cohere_events(events: &[Value]) -> Reply {
    Reply::Sse {
        events: events
            .iter()
            .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
            .collect(),
        drop_after: None,
    }
}

/// Cohere: a tool call (with its tool plan) when the last turn is the question, text after a
/// tool result.
fn cohere_upstream(req: &Recorded, _: usize) -> Reply {
    let last = req.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    let answered = last["role"] == "tool";
    let stream = req.body["stream"] == true;
    let usage = json!({"billed_units":{"input_tokens":30,"output_tokens":12},"tokens":{"input_tokens":30,"output_tokens":12}});
    match (answered, stream) {
        (false, false) => Reply::json(
            200,
            json!({"id":"c1","finish_reason":"TOOL_CALL","message":{"role":"assistant",
                "tool_plan":"I will look the weather up.",
                "tool_calls":[{"id":"get_weather_7k2m","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oran\"}"}}]},
                "usage":usage}),
        ),
        (false, true) => cohere_events(&[
            json!({"type":"message-start","id":"c1","delta":{"message":{"role":"assistant"}}}),
            json!({"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will look the weather up."}}}),
            json!({"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"get_weather_7k2m","type":"function","function":{"name":"get_weather","arguments":""}}}}}),
            json!({"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\"city\":"}}}}}),
            json!({"type":"tool-call-delta","index":0,"delta":{"message":{"tool_calls":{"function":{"arguments":" \"Oran\"}"}}}}}),
            json!({"type":"tool-call-end","index":0}),
            json!({"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":usage}}),
        ]),
        (true, false) => cohere_ok("It is 21C and sunny.", 40, 8),
        (true, true) => cohere_stream(&["It is 21C", " and sunny."], 40, 8),
    }
}

fn assert_cohere_tool_turns(first: &Value, second: &Value, call_id: &str) {
    assert_eq!(
        first["tools"],
        json!([{"type":"function","function":{"name":"get_weather","description":"Current weather of a city",
            "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])
    );
    assert_eq!(first["tool_choice"], "REQUIRED");
    let question = json!([
        {"role":"system","content":"Be brief."},
        {"role":"user","content":"Weather in Oran?"}
    ]);
    assert_eq!(first["messages"], question);
    assert_eq!(call_id, "get_weather_7k2m", "Cohere's own call id is kept");
    let mut turns = question.as_array().cloned().unwrap_or_default();
    turns.push(
        json!({"role":"assistant","tool_calls":[{"id":"get_weather_7k2m","type":"function",
        "function":{"name":"get_weather","arguments":"{\"city\":\"Oran\"}"}}]}),
    );
    turns.push(json!({"role":"tool","tool_call_id":"get_weather_7k2m","content":"21C, sunny"}));
    assert_eq!(second["messages"], Value::Array(turns));
    assert!(second.get("tool_choice").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_tool_round_trip_unary_and_streamed() {
    let up = Upstream::start(cohere_upstream).await;
    let mut env = Env::start(&one("cohere", "/v2", &up)).await;
    let unary = tool_loop(&mut env, "m", false).await;
    let streamed = tool_loop(&mut env, "m", true).await;
    let reqs = up.requests();
    assert_eq!(reqs.len(), 4);
    assert_cohere_tool_turns(&reqs[0].body, &reqs[1].body, &unary.id);
    // The streamed arguments arrive in fragments: reassembled they are the same JSON.
    let mut streamed_second = reqs[3].body.clone();
    streamed_second["messages"][2]["tool_calls"][0]["function"]["arguments"] =
        json!("{\"city\":\"Oran\"}");
    assert_eq!(
        reqs[3].body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"city\": \"Oran\"}",
        "the arguments text is sent back exactly as the client holds it"
    );
    assert_cohere_tool_turns(&reqs[2].body, &streamed_second, &streamed.id);
    assert_eq!(reqs[2].body["stream"], true);

    // The tool plan is the text of the turn that made the call.
    let first = ask(&mut env, tool_turn("m"), false).await.unwrap();
    assert_eq!(first.text, "I will look the weather up.");
    let first = ask(&mut env, tool_turn("m"), true).await.unwrap();
    assert_eq!(first.text, "I will look the weather up.");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_images_unary_and_streamed() {
    let up = Upstream::unary_or_stream(
        cohere_ok("Two cats.", 900, 3),
        cohere_stream(&["Two ", "cats."], 900, 3),
    )
    .await;
    let mut env = Env::start(&one("cohere", "/v2", &up)).await;
    for stream in [false, true] {
        let a = ask(&mut env, image_turn("m"), stream).await.unwrap();
        assert_eq!(a.text, "Two cats.");
    }
    for q in up.requests() {
        assert_eq!(
            q.body["messages"],
            json!([{"role":"user","content":[
                {"type":"text","text":"What is on them?"},
                {"type":"image_url","image_url":{"url":PHOTO}},
                {"type":"image_url","image_url":{"url":PNG}}
            ]}])
        );
    }
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cohere_structured_output_and_refusals() {
    let up = Upstream::always(cohere_ok("{\"a\":1}", 5, 5)).await;
    let mut env = Env::start(&one("cohere", "/v2", &up)).await;
    let schema = json!({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]});
    let mut r = chat_req("m", "hi");
    r.response_format = Some(pb::ResponseFormat {
        format: Some(pb::response_format::Format::JsonSchema(pb::JsonSchema {
            name: "thing".into(),
            description: String::new(),
            schema_json: schema.to_string(),
            strict: None,
        })),
    });
    r.seed = Some(3);
    let r = env
        .gw
        .client
        .chat(authed(r, &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(text_of(r.message.as_ref()), "{\"a\":1}");
    let q = &up.requests()[0].body;
    assert_eq!(
        q["response_format"],
        json!({"type":"json_object","json_schema":schema})
    );
    assert_eq!(q["seed"], 3);

    let mut named = tool_turn("m");
    named.tool_choice = Some(pb::ToolChoice {
        choice: Some(pb::tool_choice::Choice::Function("get_weather".into())),
    });
    let e = env
        .gw
        .client
        .chat(authed(named, &env.key))
        .await
        .unwrap_err();
    assert_eq!(refused_param(&e).0, "tool_choice");

    let mut several = chat_req("m", "hi");
    several.n = Some(2);
    let e = env
        .gw
        .client
        .chat(authed(several, &env.key))
        .await
        .unwrap_err();
    assert_eq!(refused_param(&e).0, "n");
    assert_eq!(up.count(), 1, "refusals never reach the provider");
    env.gw.stop().await;
}
