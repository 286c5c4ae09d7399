//! The Chat Completions request carried whole or refused: every field reaches an OpenAI-family
//! upstream exactly as sent (asserted on what the upstream recorded), native routes refuse what
//! they cannot translate with `unsupported_parameter` naming the field, answers come back whole
//! (tool calls unary and streamed, several choices, logprobs, refusal, fingerprint), upstream
//! error codes are kept, and requests needing a capability only go to routes having it.

use iafactory::proto::iafactory::llm::v1 as pb;
use pb::chat_message::Content;
use pb::content_part::Part;
use serde_json::json;
use tonic::Code;

use crate::helpers::*;
use iafactory_testkit::upstream::*;

const ALL_CAPS: &str = "capabilities = { tools = true, vision = true, json_object = true, json_schema = true, logprobs = true, multiple_choices = true, reasoning = true }";

fn one_route(kind: &str, base_path: &str, up: &Upstream, caps: &str) -> String {
    format!(
        "{}[[models]]\nname = \"m\"\n{caps}\nroutes = [{{ provider = \"p\", model = \"up-model\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 2.0 }}]\n",
        provider("p", kind, &up.url(base_path)),
    )
}

fn text(role: pb::Role, t: &str) -> pb::ChatMessage {
    pb::ChatMessage {
        role: role as i32,
        content: Some(Content::Text(t.into())),
        ..Default::default()
    }
}

fn tool(name: &str) -> pb::Tool {
    pb::Tool {
        name: name.into(),
        description: "Weather of a city".into(),
        parameters_json:
            r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#
                .into(),
        strict: Some(true),
    }
}

/// A request using every field of the contract.
fn everything() -> pb::ChatRequest {
    pb::ChatRequest {
        model: "m".into(),
        messages: vec![
            text(pb::Role::Developer, "Be brief."),
            pb::ChatMessage {
                role: pb::Role::User as i32,
                content: Some(Content::Parts(pb::ContentParts {
                    parts: vec![
                        pb::ContentPart {
                            part: Some(Part::Text("What is this?".into())),
                        },
                        pb::ContentPart {
                            part: Some(Part::ImageUrl(pb::ImageUrl {
                                url: "data:image/png;base64,iVBORw0KGgo=".into(),
                                detail: "high".into(),
                            })),
                        },
                        pb::ContentPart {
                            part: Some(Part::RawJson(
                                r#"{"type":"input_audio","input_audio":{"data":"AAA=","format":"wav"}}"#.into(),
                            )),
                        },
                    ],
                })),
                name: Some("ann".into()),
                ..Default::default()
            },
            pb::ChatMessage {
                role: pb::Role::Assistant as i32,
                content: None,
                tool_calls: vec![pb::ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into(),
                }],
                refusal: Some("earlier refusal".into()),
                ..Default::default()
            },
            pb::ChatMessage {
                role: pb::Role::Tool as i32,
                content: Some(Content::Text("18°C".into())),
                tool_call_id: "call_1".into(),
                ..Default::default()
            },
        ],
        temperature: Some(0.25),
        top_p: Some(0.5),
        max_completion_tokens: Some(77),
        stop: vec!["END".into()],
        tools: vec![tool("weather")],
        tool_choice: Some(pb::ToolChoice {
            choice: Some(pb::tool_choice::Choice::Function("weather".into())),
        }),
        parallel_tool_calls: Some(false),
        response_format: Some(pb::ResponseFormat {
            format: Some(pb::response_format::Format::JsonSchema(pb::JsonSchema {
                name: "answer".into(),
                description: "The answer".into(),
                schema_json: r#"{"type":"object","properties":{"a":{"type":"string"}}}"#.into(),
                strict: Some(true),
            })),
        }),
        seed: Some(42),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(-0.5),
        logit_bias: [("50256".to_owned(), -100.0)].into_iter().collect(),
        logprobs: Some(true),
        top_logprobs: Some(3),
        user: Some("user-7".into()),
        n: Some(2),
        reasoning_effort: Some("low".into()),
        extra_json: r#"{"service_tier":"flex","metadata":{"k":"v"},"store":false,"prediction":{"type":"content","content":"x"}}"#.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chat_completions_field_reaches_an_openai_family_upstream_as_sent() {
    let up = Upstream::always(openai_ok("ok", 10, 2)).await;
    let mut env = Env::start(&one_route("openai", "/v1", &up, ALL_CAPS)).await;
    env.gw
        .client
        .chat(authed(everything(), &env.key))
        .await
        .unwrap();
    let q = &up.requests()[0].body;
    let expected = [
        ("model", json!("up-model")),
        ("stream", json!(false)),
        ("temperature", json!(0.25)),
        ("top_p", json!(0.5)),
        ("max_completion_tokens", json!(77)),
        ("stop", json!(["END"])),
        (
            "tools",
            json!([{"type":"function","function":{"name":"weather","description":"Weather of a city","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}]),
        ),
        (
            "tool_choice",
            json!({"type":"function","function":{"name":"weather"}}),
        ),
        ("parallel_tool_calls", json!(false)),
        (
            "response_format",
            json!({"type":"json_schema","json_schema":{"name":"answer","description":"The answer","schema":{"type":"object","properties":{"a":{"type":"string"}}},"strict":true}}),
        ),
        ("seed", json!(42)),
        ("presence_penalty", json!(0.5)),
        ("frequency_penalty", json!(-0.5)),
        ("logit_bias", json!({"50256": -100.0})),
        ("logprobs", json!(true)),
        ("top_logprobs", json!(3)),
        ("user", json!("user-7")),
        ("n", json!(2)),
        ("reasoning_effort", json!("low")),
        ("service_tier", json!("flex")),
        ("metadata", json!({"k":"v"})),
        ("store", json!(false)),
        ("prediction", json!({"type":"content","content":"x"})),
        (
            "messages",
            json!([
                {"role":"developer","content":"Be brief."},
                {"role":"user","name":"ann","content":[
                    {"type":"text","text":"What is this?"},
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}},
                    {"type":"input_audio","input_audio":{"data":"AAA=","format":"wav"}}
                ]},
                {"role":"assistant","refusal":"earlier refusal","tool_calls":[{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"18°C"}
            ]),
        ),
    ];
    for (field, value) in &expected {
        assert_eq!(
            &q[*field], value,
            "field {field} as the upstream received it"
        );
    }
    assert!(
        q.get("max_tokens").is_none(),
        "max_completion_tokens is never rewritten"
    );
    let sent: std::collections::BTreeSet<&str> =
        q.as_object().unwrap().keys().map(String::as_str).collect();
    let known: std::collections::BTreeSet<&str> = expected.iter().map(|(k, _)| *k).collect();
    assert_eq!(sent, known, "nothing added, nothing missing");
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_route_refuses_every_field_it_cannot_carry_and_names_it() {
    let up = Upstream::always(anthropic_ok("ok", 1, 1)).await;
    let mut env = Env::start(&one_route("anthropic", "/v1", &up, ALL_CAPS)).await;
    let full = everything();
    let base = chat_req("m", "hi");
    // Tools, tool calls and results, images, json_schema and `user` are carried by the
    // Anthropic translation (asserted upstream-side in tests/api/native.rs).
    let cases: Vec<(pb::ChatRequest, &str)> = vec![
        (
            pb::ChatRequest {
                temperature: Some(1.5),
                ..base.clone()
            },
            "temperature",
        ),
        (
            pb::ChatRequest {
                messages: vec![pb::ChatMessage {
                    name: Some("ann".into()),
                    ..text(pb::Role::User, "hi")
                }],
                ..base.clone()
            },
            "messages[0].name",
        ),
        (
            pb::ChatRequest {
                messages: vec![pb::ChatMessage {
                    name: None,
                    ..full.messages[1].clone()
                }],
                ..base.clone()
            },
            "messages[0].content[2]",
        ),
        (
            pb::ChatRequest {
                messages: vec![pb::ChatMessage {
                    name: None,
                    content: match &full.messages[1].content {
                        Some(Content::Parts(p)) => Some(Content::Parts(pb::ContentParts {
                            parts: p.parts[..2].to_vec(),
                        })),
                        other => other.clone(),
                    },
                    ..full.messages[1].clone()
                }],
                ..base.clone()
            },
            "messages[0].content[1].image_url.detail",
        ),
        (
            pb::ChatRequest {
                seed: Some(1),
                ..base.clone()
            },
            "seed",
        ),
        (
            pb::ChatRequest {
                presence_penalty: Some(0.1),
                ..base.clone()
            },
            "presence_penalty",
        ),
        (
            pb::ChatRequest {
                frequency_penalty: Some(0.1),
                ..base.clone()
            },
            "frequency_penalty",
        ),
        (
            pb::ChatRequest {
                logit_bias: full.logit_bias.clone(),
                ..base.clone()
            },
            "logit_bias",
        ),
        (
            pb::ChatRequest {
                logprobs: Some(true),
                ..base.clone()
            },
            "logprobs",
        ),
        (
            pb::ChatRequest {
                n: Some(2),
                ..base.clone()
            },
            "n",
        ),
        (
            pb::ChatRequest {
                reasoning_effort: Some("high".into()),
                ..base.clone()
            },
            "reasoning_effort",
        ),
        (
            pb::ChatRequest {
                extra_json: r#"{"service_tier":"flex"}"#.into(),
                ..base.clone()
            },
            "service_tier",
        ),
    ];
    for (req, param) in cases {
        let err = env.gw.client.chat(authed(req, &env.key)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{param}: {err:?}");
        assert_eq!(error_code(&err), "unsupported_parameter", "{param}");
        assert_eq!(md(&err, "x-iaf-param"), param);
        assert!(err.message().contains("\"m\""), "{}", err.message());
    }
    assert_eq!(up.count(), 0, "nothing reached the upstream");
    // What it can carry still goes through, unclamped.
    let ok = pb::ChatRequest {
        temperature: Some(1.0),
        max_completion_tokens: Some(33),
        max_tokens: None,
        ..base.clone()
    };
    env.gw.client.chat(authed(ok, &env.key)).await.unwrap();
    let q = &up.requests()[0].body;
    assert_eq!(
        (q["temperature"].clone(), q["max_tokens"].clone()),
        (json!(1.0), json!(33))
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_round_trip_unary_and_streamed() {
    let up = Upstream::start(|req, _| {
        if req.body["stream"] == json!(true) {
            let chunk = |v: serde_json::Value| format!("data: {v}\n\n");
            Reply::Sse {
                events: vec![
                    chunk(json!({"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_s","type":"function","function":{"name":"weather","arguments":""}}]}}]})),
                    chunk(json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}]})),
                    chunk(json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Lyon\"}"}}]}}]})),
                    chunk(json!({"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})),
                    chunk(json!({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}})),
                    "data: [DONE]\n\n".into(),
                ],
                drop_after: None,
            }
        } else {
            Reply::json(
                200,
                json!({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_u","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}),
            )
        }
    })
    .await;
    let mut env = Env::start(&one_route(
        "openai",
        "/v1",
        &up,
        "capabilities = { tools = true }",
    ))
    .await;
    let req = pb::ChatRequest {
        tools: vec![tool("weather")],
        ..chat_req("m", "Weather in Paris?")
    };
    let r = env
        .gw
        .client
        .chat(authed(req.clone(), &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.finish_reason, "tool_calls");
    let m = r.message.unwrap();
    assert_eq!(m.content, None);
    assert_eq!(
        (
            m.tool_calls[0].id.as_str(),
            m.tool_calls[0].name.as_str(),
            m.tool_calls[0].arguments.as_str()
        ),
        ("call_u", "weather", r#"{"city":"Paris"}"#)
    );

    // Second turn: the call and its result go back to the upstream.
    let mut next = req.clone();
    next.messages.push(pb::ChatMessage {
        role: pb::Role::Assistant as i32,
        tool_calls: m.tool_calls.clone(),
        ..Default::default()
    });
    next.messages.push(pb::ChatMessage {
        role: pb::Role::Tool as i32,
        content: Some(Content::Text("18°C".into())),
        tool_call_id: "call_u".into(),
        ..Default::default()
    });
    env.gw.client.chat(authed(next, &env.key)).await.unwrap();
    let sent = &up.requests()[1].body["messages"];
    assert_eq!(sent[2]["tool_calls"][0]["id"], "call_u");
    assert_eq!(
        sent[2]["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        sent[3],
        json!({"role":"tool","tool_call_id":"call_u","content":"18°C"})
    );

    // Streamed: the deltas reassemble into the call.
    let mut s = env
        .gw
        .client
        .chat_stream(authed(req, &env.key))
        .await
        .unwrap()
        .into_inner();
    let (mut id, mut name, mut args, mut finish, mut end) =
        (String::new(), String::new(), String::new(), None, None);
    while let Some(ev) = s.message().await.unwrap() {
        match ev.event {
            Some(pb::chat_stream_event::Event::Delta(d)) => {
                for t in d.tool_calls {
                    assert_eq!(t.index, 0);
                    id.push_str(t.id.as_deref().unwrap_or(""));
                    name.push_str(t.name.as_deref().unwrap_or(""));
                    args.push_str(&t.arguments);
                }
                if d.finish_reason.is_some() {
                    finish = d.finish_reason;
                }
            }
            Some(pb::chat_stream_event::Event::End(e)) => end = Some(e),
            None => {}
        }
    }
    assert_eq!(
        (id.as_str(), name.as_str(), args.as_str()),
        ("call_s", "weather", r#"{"city":"Lyon"}"#)
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let end = end.unwrap();
    assert_eq!(end.finish_reason, "tool_calls");
    assert_eq!(end.usage.unwrap().completion_tokens, 7);
    assert_eq!(
        up.requests()[2].body["stream_options"]["include_usage"],
        true
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_choices_logprobs_refusal_and_fingerprint_come_back() {
    let up = Upstream::always(Reply::json(
        200,
        json!({"system_fingerprint":"fp_9","choices":[
            {"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop",
             "logprobs":{"content":[{"token":"a","logprob":-0.25,"bytes":[97],"top_logprobs":[{"token":"b","logprob":-2.0,"bytes":[98]}]}]}},
            {"index":1,"message":{"role":"assistant","content":null,"refusal":"I cannot."},"finish_reason":"stop"}
        ],"usage":{"prompt_tokens":3,"completion_tokens":4}}),
    ))
    .await;
    let mut env = Env::start(&one_route("openai", "/v1", &up, ALL_CAPS)).await;
    let req = pb::ChatRequest {
        n: Some(2),
        logprobs: Some(true),
        top_logprobs: Some(1),
        ..chat_req("m", "hi")
    };
    let r = env
        .gw
        .client
        .chat(authed(req, &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.system_fingerprint, "fp_9");
    assert_eq!(r.choices.len(), 2);
    assert_eq!(text_of(r.choices[0].message.as_ref()), "a");
    assert_eq!(
        text_of(r.message.as_ref()),
        "a",
        "choice 0 repeated for older clients"
    );
    let lp = r.choices[0].logprobs.clone().unwrap();
    assert_eq!(
        (lp.content[0].token.as_str(), lp.content[0].logprob),
        ("a", -0.25)
    );
    assert_eq!(lp.content[0].bytes.as_deref(), Some(&b"a"[..]));
    assert_eq!(lp.content[0].top_logprobs[0].token, "b");
    assert_eq!(r.choices[1].index, 1);
    assert_eq!(
        r.choices[1].message.as_ref().unwrap().refusal.as_deref(),
        Some("I cannot.")
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_refusal_keeps_its_own_code_and_param() {
    let up = Upstream::always(Reply::json(
        400,
        json!({"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}),
    ))
    .await;
    let mut env = Env::start(&one_route("openai", "/v1", &up, "")).await;
    let err = env.chat("m", "hi").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "invalid_argument");
    assert_eq!(md(&err, "x-iaf-upstream-code"), "context_length_exceeded");
    assert_eq!(md(&err, "x-iaf-param"), "messages");
    assert!(
        err.message().contains("maximum context length"),
        "{}",
        err.message()
    );
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_needing_a_capability_only_goes_to_routes_having_it() {
    let plain = Upstream::always(openai_ok("plain", 1, 1)).await;
    let tooled = Upstream::always(openai_ok("tooled", 1, 1)).await;
    let toml = format!(
        "{}{}[[models]]\nname = \"m\"\nroutes = [\n  {{ provider = \"plain\", model = \"p\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 1.0 }},\n  {{ provider = \"tooled\", model = \"t\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 1.0, capabilities = {{ tools = true }} }},\n]\n[[models]]\nname = \"only-plain\"\nroutes = [{{ provider = \"plain\", model = \"p\", input_usd_per_mtok = 1.0, output_usd_per_mtok = 1.0 }}]\n",
        provider("plain", "openai", &plain.url("/v1")),
        provider("tooled", "openai", &tooled.url("/v1")),
    );
    let mut env = Env::start(&toml).await;
    // Plain text: catalogue order, the first route.
    assert_eq!(
        text_of(env.chat("m", "hi").await.unwrap().message.as_ref()),
        "plain"
    );
    let with_tools = |model: &str| pb::ChatRequest {
        tools: vec![tool("weather")],
        ..chat_req(model, "hi")
    };
    let r = env
        .gw
        .client
        .chat(authed(with_tools("m"), &env.key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.provider, "tooled");
    assert_eq!(plain.count(), 1, "the route without tools was skipped");
    let err = env
        .gw
        .client
        .chat(authed(with_tools("only-plain"), &env.key))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(error_code(&err), "unsupported_parameter");
    assert_eq!(md(&err, "x-iaf-param"), "tools");
    assert!(
        err.message().contains("tools") && err.message().contains("only-plain"),
        "{}",
        err.message()
    );
    assert_eq!(plain.count(), 1);
    env.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_mock_calls_a_forced_tool_and_lists_what_it_can_do() {
    let mut promo = Promo::start().await;
    let (_, key) = promo.signup("premium").await;
    let db = test_db(Backend::Sqlite).await;
    let catalog = llm_gateway::catalog::Catalog::builtin().unwrap();
    let mut gw = Gw::start(config(&db, &promo, catalog)).await;
    let req = pb::ChatRequest {
        tools: vec![tool("weather")],
        tool_choice: Some(pb::ToolChoice {
            choice: Some(pb::tool_choice::Choice::Mode(
                pb::tool_choice::Mode::Required as i32,
            )),
        }),
        ..chat_req("gpt-4o-mini", "hi")
    };
    let r = gw
        .client
        .chat(authed(req, &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.provider, "mock");
    assert_eq!(r.finish_reason, "tool_calls");
    let call = &r.message.unwrap().tool_calls[0];
    assert_eq!(
        (call.name.as_str(), call.arguments.as_str()),
        ("weather", r#"{"city":""}"#)
    );
    // What the mock does not implement is refused, not ignored.
    let err = gw
        .client
        .chat(authed(
            pb::ChatRequest {
                n: Some(3),
                ..chat_req("gpt-4o-mini", "hi")
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (error_code(&err).as_str(), md(&err, "x-iaf-param")),
        ("unsupported_parameter", "n")
    );
    // The listing with the key shows its models, with the mock's capabilities.
    let m = gw
        .client
        .list_models(authed(pb::ListModelsRequest {}, &key))
        .await
        .unwrap()
        .into_inner();
    let mini = m.models.iter().find(|m| m.name == "gpt-4o-mini").unwrap();
    assert_eq!(
        (mini.owned_by.as_str(), mini.kind),
        ("openai", pb::ModelKind::Chat as i32)
    );
    assert!(mini.created > 0);
    let mock = mini.routes.iter().find(|r| r.provider == "mock").unwrap();
    let caps = mock.capabilities.unwrap();
    assert!(caps.tools && caps.json_object && !caps.vision && !caps.multiple_choices);
    gw.stop().await;
    promo.stop().await;
}
