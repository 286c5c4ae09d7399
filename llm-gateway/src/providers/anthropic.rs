//! Anthropic Messages (`POST {base}/messages`, `x-api-key`, `anthropic-version`).
//!
//! Translation of the Chat Completions request:
//! - system and developer messages → the top-level `system` (text only);
//! - user content → `text` and `image` blocks (`source` `url` for http(s) images, `base64` with
//!   its media type for data URIs); a plain string stays a string;
//! - assistant `tool_calls` → `tool_use` blocks (arguments parsed into the `input` object);
//!   `tool` messages → `tool_result` blocks in the next user turn (consecutive tool and user
//!   messages become one user turn, as Anthropic requires results right after the calls);
//! - `tools` → `{name, description, input_schema, strict}`; `tool_choice` auto / required /
//!   function / none → `auto` / `any` / `tool` / `none`; `parallel_tool_calls: false` →
//!   `disable_parallel_tool_use`;
//! - `response_format: json_schema` → `output_config.format` (Anthropic's structured outputs;
//!   the schema's description folded into the schema); `json_object` has no Anthropic
//!   equivalent and is refused;
//! - `user` → `metadata.user_id`; `stop` → `stop_sequences`;
//! - `max_tokens` is mandatory for Anthropic: the client's value, else the route's
//!   `max_output_tokens` from the catalogue (filled in by the router), else the request is
//!   refused naming `max_tokens`;
//! - `temperature` above 1 (Anthropic's range is 0..1) is refused, never clamped; `seed`,
//!   penalties, `n` > 1, `logprobs`, `logit_bias`, `reasoning_effort`, message names and extra
//!   fields are refused ([`super::native::check_common`]).
//!
//! Answers: `text` blocks → content, `tool_use` blocks → tool calls (input serialised as the
//! arguments text); `stop_reason` `tool_use` → `tool_calls`, `max_tokens` → `length`,
//! `refusal` → `content_filter`. Streaming uses named events: `message_start` (prompt tokens),
//! `content_block_start` (a `tool_use` block opens a tool call: its id and name),
//! `content_block_delta` (`text_delta`, or `input_json_delta` fragments of the call's
//! arguments), `message_delta` (stop reason, completion tokens), `message_stop` (end), `ping`
//! and `error`.

use std::collections::HashMap;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::native::{self, Carries, Unsupported};
use super::{
    ChatInput, Choice, Chunk, ChunkStream, Completion, Content, HttpBase, Part, Provider,
    ProviderError, ToolCall, ToolCallDelta, Turn, Usage, event_json, json_u32, sse_events,
};
use crate::chat::{Image, ResponseFormat, ToolChoice};

pub const API_VERSION: &str = "2023-06-01";
const NAME: &str = "Anthropic";

pub struct Anthropic {
    pub base: HttpBase,
}

fn normalise_stop(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop".into(),
        "max_tokens" | "model_context_window_exceeded" => "length".into(),
        "tool_use" => "tool_calls".into(),
        "refusal" => "content_filter".into(),
        other => other.to_owned(),
    }
}

fn image_block(img: &Image) -> Value {
    match native::data_uri(img) {
        Some(d) => {
            json!({"type": "image", "source": {"type": "base64", "media_type": d.media_type, "data": d.data}})
        }
        None => json!({"type": "image", "source": {"type": "url", "url": img.url}}),
    }
}

/// Content blocks of a user or tool message.
fn blocks(content: &Option<Content>) -> Vec<Value> {
    match content {
        None => Vec::new(),
        Some(Content::Text(t)) => vec![json!({"type": "text", "text": t})],
        Some(Content::Parts(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(json!({"type": "text", "text": t})),
                Part::Image(img) => Some(image_block(img)),
                // Refused by check_common before.
                Part::Refusal(_) | Part::Raw(_) => None,
            })
            .collect(),
    }
}

fn messages(input: &ChatInput) -> Result<Vec<Value>, Unsupported> {
    // (role, blocks): consecutive turns of one role are merged into one message.
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in input.messages.iter().enumerate() {
        let (role, new_blocks) = match &m.turn {
            Turn::System | Turn::Developer => continue,
            Turn::User => ("user", blocks(&m.content)),
            Turn::Tool { call_id } => {
                let mut result = json!({"type": "tool_result", "tool_use_id": call_id});
                match &m.content {
                    Some(Content::Text(t)) => result["content"] = json!(t),
                    other => result["content"] = Value::Array(blocks(other)),
                }
                ("user", vec![result])
            }
            Turn::Assistant { tool_calls, .. } => {
                let text = native::text_only(NAME, m, i)?;
                let mut b = Vec::new();
                if !text.is_empty() || tool_calls.is_empty() {
                    b.push(json!({"type": "text", "text": text}));
                }
                for (j, c) in tool_calls.iter().enumerate() {
                    let args = native::arguments_object(
                        NAME,
                        &c.arguments,
                        format!("messages[{i}].tool_calls[{j}].function.arguments"),
                    )?;
                    b.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": args}));
                }
                ("assistant", b)
            }
        };
        match out.last_mut() {
            Some((r, b)) if *r == role => b.extend(new_blocks),
            _ => out.push((role, new_blocks)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, mut b)| {
            // One text block is sent as a plain string (what the client most often sent).
            if b.len() == 1 && b[0]["type"] == "text" {
                json!({"role": role, "content": b[0]["text"].take()})
            } else {
                json!({"role": role, "content": b})
            }
        })
        .collect())
}

impl Anthropic {
    fn body(model: &str, input: &ChatInput, stream: bool) -> Result<Value, Unsupported> {
        native::check_common(
            NAME,
            input,
            Carries {
                user: true,
                ..Carries::default()
            },
        )?;
        if input.temperature.is_some_and(|t| t > 1.0) {
            return Err(Unsupported::new(
                "temperature",
                "temperature above 1 is not supported by Anthropic (its range is 0 to 1)",
            ));
        }
        // The router fills the route's `max_output_tokens` in when the client set no bound
        // (see `routing::for_route`); a route without one cannot serve such a request.
        let Some(max_tokens) = input.max_tokens() else {
            return Err(Unsupported::new(
                "max_tokens",
                "Anthropic requires max_tokens and the catalogue states no max_output_tokens for this route: set max_tokens",
            ));
        };
        let mut body = json!({
            "model": model,
            "messages": messages(input)?,
            "max_tokens": max_tokens,
        });
        if stream {
            body["stream"] = json!(true);
        }
        if let Some(system) = native::system_text(NAME, input)? {
            body["system"] = json!(system);
        }
        if let Some(t) = input.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = input.top_p {
            body["top_p"] = json!(p);
        }
        if !input.stop.is_empty() {
            body["stop_sequences"] = json!(input.stop);
        }
        if let Some(user) = &input.user {
            body["metadata"] = json!({"user_id": user});
        }
        if !input.tools.is_empty() {
            let tools: Vec<Value> = input
                .tools
                .iter()
                .map(|t| {
                    let mut tool = json!({
                        "name": t.name,
                        "input_schema": t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                    });
                    if let Some(d) = &t.description {
                        tool["description"] = json!(d);
                    }
                    if t.strict == Some(true) {
                        tool["strict"] = json!(true);
                    }
                    tool
                })
                .collect();
            body["tools"] = Value::Array(tools);
        }
        // Anthropic's default is OpenAI's (`auto` when tools are given): a choice is sent only
        // when the client made one, or to carry `parallel_tool_calls: false`.
        let mut choice = match &input.tool_choice {
            None if input.parallel_tool_calls == Some(false) && !input.tools.is_empty() => {
                Some(json!({"type": "auto"}))
            }
            None => None,
            Some(ToolChoice::Auto) => Some(json!({"type": "auto"})),
            Some(ToolChoice::Required) => Some(json!({"type": "any"})),
            Some(ToolChoice::Function(name)) => Some(json!({"type": "tool", "name": name})),
            Some(ToolChoice::None) => Some(json!({"type": "none"})),
        };
        if input.parallel_tool_calls == Some(false)
            && let Some(c) = choice.as_mut()
            && c["type"] != "none"
        {
            c["disable_parallel_tool_use"] = json!(true);
        }
        if let Some(c) = choice {
            body["tool_choice"] = c;
        }
        match &input.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonObject) => {
                return Err(Unsupported::new(
                    "response_format",
                    "Anthropic has no JSON mode without a schema: use response_format json_schema",
                ));
            }
            Some(ResponseFormat::JsonSchema {
                schema,
                description,
                ..
            }) => {
                let Some(mut schema) = schema.clone() else {
                    return Err(Unsupported::new(
                        "response_format.json_schema.schema",
                        "Anthropic structured outputs need a schema",
                    ));
                };
                if let (Some(d), Some(obj)) = (description, schema.as_object_mut())
                    && !obj.contains_key("description")
                {
                    obj.insert("description".into(), json!(d));
                }
                body["output_config"] =
                    json!({"format": {"type": "json_schema", "schema": schema}});
            }
        }
        Ok(body)
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        self.base
            .http
            .post(self.base.url("/messages"))
            .header("x-api-key", &self.base.api_key)
            .header("anthropic-version", API_VERSION)
            .json(body)
    }
}

fn parse_message(v: &Value) -> Result<Completion, ProviderError> {
    let blocks = v["content"]
        .as_array()
        .ok_or_else(|| ProviderError::Malformed("no content array in message".into()))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for b in blocks {
        match b["type"].as_str() {
            Some("text") => content.push_str(b["text"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(ToolCall {
                id: b["id"].as_str().unwrap_or_default().to_owned(),
                name: b["name"].as_str().unwrap_or_default().to_owned(),
                arguments: if b["input"].is_null() {
                    "{}".to_owned()
                } else {
                    b["input"].to_string()
                },
            }),
            // Thinking blocks only come when thinking is enabled, which the gateway never asks.
            _ => {}
        }
    }
    let usage = v
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| Usage::new(json_u32(&u["input_tokens"]), json_u32(&u["output_tokens"])));
    Ok(Completion {
        choices: vec![Choice {
            index: 0,
            content: (!content.is_empty() || tool_calls.is_empty()).then_some(content),
            tool_calls,
            finish_reason: v["stop_reason"]
                .as_str()
                .map(normalise_stop)
                .unwrap_or_else(|| "stop".into()),
            ..Choice::default()
        }],
        usage,
        system_fingerprint: None,
    })
}

impl Provider for Anthropic {
    /// Anthropic has no embeddings API: the catalogue refuses an embedding model routed to an
    /// Anthropic provider at load, so this is never reached; should it be, the router tries the
    /// next route.
    fn embed<'a>(
        &'a self,
        _model: &'a str,
        _input: &'a super::EmbedInput,
    ) -> BoxFuture<'a, Result<super::Embeddings, ProviderError>> {
        let e = Unsupported::new("model", "Anthropic has no embeddings API");
        async move { Err(ProviderError::Unsupported(e)) }.boxed()
    }

    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let body = Self::body(model, input, false).map_err(ProviderError::Unsupported)?;
            let v = self.base.send_json(self.request(&body)).await?;
            parse_message(&v)
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        async move {
            let body = Self::body(model, input, true)
                .map_err(ProviderError::Unsupported)?;
            let resp = self.base.send(self.request(&body)).await?;
            let mut events = sse_events(resp);
            let s = async_stream::try_stream! {
                let mut prompt_tokens = 0u32;
                let mut done = false;
                // Content block index → tool-call index (OpenAI numbers the calls only).
                let mut calls: HashMap<u64, u32> = HashMap::new();
                while let Some(ev) = events.next().await {
                    let ev = ev?;
                    let v = event_json(&ev)?;
                    // The `type` field repeats the event name; trust it over `event:`.
                    let kind = v["type"].as_str().unwrap_or(ev.event.as_str()).to_owned();
                    match kind.as_str() {
                        "message_start" => {
                            prompt_tokens = json_u32(&v["message"]["usage"]["input_tokens"]);
                        }
                        "content_block_start" => {
                            let b = &v["content_block"];
                            match b["type"].as_str() {
                                Some("tool_use") => {
                                    let index = u32::try_from(calls.len()).unwrap_or(u32::MAX);
                                    calls.insert(v["index"].as_u64().unwrap_or(u64::MAX), index);
                                    yield Chunk {
                                        tool_calls: vec![ToolCallDelta {
                                            index,
                                            id: b["id"].as_str().map(str::to_owned),
                                            name: b["name"].as_str().map(str::to_owned),
                                            arguments: String::new(),
                                        }],
                                        ..Chunk::default()
                                    };
                                }
                                Some("text") => {
                                    if let Some(text) = b["text"].as_str().filter(|t| !t.is_empty()) {
                                        yield Chunk { delta: text.to_owned(), ..Chunk::default() };
                                    }
                                }
                                _ => {}
                            }
                        }
                        "content_block_delta" => {
                            let d = &v["delta"];
                            if let Some(text) = d["text"].as_str() {
                                yield Chunk { delta: text.to_owned(), ..Chunk::default() };
                            } else if let Some(part) = d["partial_json"].as_str() {
                                let index = calls
                                    .get(&v["index"].as_u64().unwrap_or(u64::MAX))
                                    .copied()
                                    .ok_or_else(|| ProviderError::Malformed("input_json_delta outside a tool_use block".into()))?;
                                if !part.is_empty() {
                                    yield Chunk {
                                        tool_calls: vec![ToolCallDelta {
                                            index,
                                            id: None,
                                            name: None,
                                            arguments: part.to_owned(),
                                        }],
                                        ..Chunk::default()
                                    };
                                }
                            }
                        }
                        "message_delta" => {
                            let usage = v.get("usage").filter(|u| u.is_object()).map(|u| Usage::new(
                                prompt_tokens.max(json_u32(&u["input_tokens"])),
                                json_u32(&u["output_tokens"]),
                            ));
                            yield Chunk {
                                finish_reason: v["delta"]["stop_reason"].as_str().map(normalise_stop),
                                usage,
                                ..Chunk::default()
                            };
                        }
                        "message_stop" => {
                            done = true;
                            break;
                        }
                        "error" => {
                            Err(ProviderError::Api(v["error"].to_string()))?;
                        }
                        _ => {} // ping, content_block_stop
                    }
                }
                if !done {
                    Err(ProviderError::StreamBroken("stream ended before message_stop".into()))?;
                }
            };
            Ok(s.boxed())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Message, OutputLimit, Tool};

    fn input(messages: Vec<Message>) -> ChatInput {
        ChatInput {
            messages,
            output_limit: Some(OutputLimit::MaxTokens(10)),
            ..ChatInput::default()
        }
    }

    #[test]
    fn tool_results_join_the_next_user_turn_and_choices_map() {
        let mut i = input(vec![
            Message::text(Turn::Developer, "be brief"),
            Message::text(Turn::User, "weather?"),
            Message {
                turn: Turn::Assistant {
                    tool_calls: vec![ToolCall {
                        id: "t1".into(),
                        name: "get".into(),
                        arguments: "{\"city\":\"Oran\"}".into(),
                    }],
                    refusal: None,
                },
                content: None,
                name: None,
            },
            Message::text(
                Turn::Tool {
                    call_id: "t1".into(),
                },
                "21C",
            ),
            Message::text(Turn::User, "thanks"),
        ]);
        i.tools = vec![Tool {
            name: "get".into(),
            description: None,
            parameters: None,
            strict: None,
        }];
        i.tool_choice = Some(ToolChoice::Required);
        i.parallel_tool_calls = Some(false);
        let b = Anthropic::body("claude-x", &i, false).unwrap_or_default();
        assert_eq!(b["system"], "be brief");
        assert_eq!(b["messages"][1]["content"][0]["type"], "tool_use");
        assert_eq!(b["messages"][1]["content"][0]["input"]["city"], "Oran");
        assert_eq!(
            b["messages"][2]["content"],
            json!([{"type":"tool_result","tool_use_id":"t1","content":"21C"},{"type":"text","text":"thanks"}])
        );
        assert_eq!(
            b["tool_choice"],
            json!({"type":"any","disable_parallel_tool_use":true})
        );
        assert_eq!(b["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn what_anthropic_cannot_take_is_refused_by_name() {
        let refused = |i: &ChatInput| Anthropic::body("claude-x", i, false).err().map(|u| u.param);
        let mut hot = input(vec![Message::text(Turn::User, "hi")]);
        hot.temperature = Some(1.5);
        assert_eq!(refused(&hot).as_deref(), Some("temperature"));
        hot.temperature = Some(1.0);
        assert_eq!(refused(&hot), None);
        let mut json_mode = input(vec![Message::text(Turn::User, "hi")]);
        json_mode.response_format = Some(ResponseFormat::JsonObject);
        assert_eq!(refused(&json_mode).as_deref(), Some("response_format"));
        let mut no_limit = input(vec![Message::text(Turn::User, "hi")]);
        no_limit.output_limit = None;
        assert_eq!(refused(&no_limit).as_deref(), Some("max_tokens"));
    }

    #[test]
    fn answers_with_tool_use_become_tool_calls() {
        let c = parse_message(&json!({"content":[{"type":"text","text":"let me see"},{"type":"tool_use","id":"toolu_1","name":"get","input":{"city":"Oran"}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}})).ok();
        let c = c.map(|c| c.choices[0].clone()).unwrap_or_default();
        assert_eq!(c.finish_reason, "tool_calls");
        assert_eq!(c.content.as_deref(), Some("let me see"));
        assert_eq!(c.tool_calls[0].arguments, "{\"city\":\"Oran\"}");
    }
}
