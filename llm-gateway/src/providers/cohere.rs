//! Cohere chat v2 (`POST {base}/chat`, bearer key).
//!
//! Translation of the Chat Completions request (v2 is close to OpenAI's shape):
//! - roles `system` (also developer messages), `user` (text and `image_url` parts, for vision
//!   models), `assistant` (`tool_calls`; the text beside calls goes as Cohere's `tool_plan`),
//!   `tool` (`tool_call_id`, text content);
//! - `tools` as given (`{type: function, function: {name, description, parameters}}`), all
//!   strict → `strict_tools`; `tool_choice` required / none → `REQUIRED` / `NONE` (auto is
//!   Cohere's default; a named function cannot be forced: refused);
//! - `response_format` `json_object` → `{type: json_object}`, `json_schema` → the same with its
//!   `json_schema`;
//! - `temperature`, `p` (top_p), `max_tokens`, `stop_sequences`, `seed`, penalties as given
//!   (the router sends Cohere only values in its ranges: never clamped here).
//! - Refused: `user`, message names, `n` > 1, `logprobs`, `logit_bias`, `reasoning_effort`,
//!   extra fields, `parallel_tool_calls: false`, a mix of strict and non-strict tools.
//!
//! Answers carry `message.content[].text`, `message.tool_calls`, `message.tool_plan` (the
//! content when there is no text), `finish_reason` (`COMPLETE`, `STOP_SEQUENCE` → `stop`,
//! `MAX_TOKENS` → `length`, `TOOL_CALL` → `tool_calls`) and `usage.tokens` /
//! `usage.billed_units`. Streaming events (typed by their `type` field): `message-start`,
//! `content-delta` (`delta.message.content.text`), `tool-plan-delta`, `tool-call-start` (a
//! call's id, name and first arguments), `tool-call-delta` (argument fragments),
//! `tool-call-end`, `message-end` (finish reason and usage, the end marker).
//!
//! Embeddings: embed v2 (`POST {base}/embed`, i.e. `/v2/embed`): `model`, `texts` (96 at most
//! per call: larger requests go in batches), `input_type` (`search_document` when the client
//! sets none: v3+ models require one, and documents are what a RAG pipeline embeds most),
//! `embedding_types: ["float"]`, `output_dimension` for `dimensions` (the router sends it only
//! where the catalogue says the model can shorten). Answers: `embeddings.float` in input order,
//! `meta.billed_units.input_tokens`. Refused: token ids (Cohere takes texts only) and `user`.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::native::{self, Carries, Unsupported};
use super::{
    ChatInput, Choice, Chunk, ChunkStream, Completion, Content, HttpBase, Part, Provider,
    ProviderError, ToolCall, ToolCallDelta, Turn, Usage, event_json, json_u32, sse_events,
};
use super::{EmbedInput, Embeddings, InputType, Inputs, join_batches, json_vector};
use crate::chat::{ResponseFormat, ToolChoice};

const NAME: &str = "Cohere";

pub struct Cohere {
    pub base: HttpBase,
}

fn normalise_finish(reason: &str) -> String {
    match reason {
        "COMPLETE" | "STOP_SEQUENCE" => "stop".into(),
        "MAX_TOKENS" => "length".into(),
        "TOOL_CALL" => "tool_calls".into(),
        other => other.to_ascii_lowercase(),
    }
}

fn parse_usage(u: &Value) -> Option<Usage> {
    let src = if u["tokens"].is_object() {
        &u["tokens"]
    } else if u["billed_units"].is_object() {
        &u["billed_units"]
    } else {
        return None;
    };
    Some(Usage::new(
        json_u32(&src["input_tokens"]),
        json_u32(&src["output_tokens"]),
    ))
}

fn messages(input: &ChatInput) -> Result<Vec<Value>, Unsupported> {
    let mut out = Vec::with_capacity(input.messages.len());
    for (i, m) in input.messages.iter().enumerate() {
        out.push(match &m.turn {
            Turn::System | Turn::Developer => {
                json!({"role": "system", "content": native::text_only(NAME, m, i)?})
            }
            Turn::User => {
                let content = match &m.content {
                    None => json!(""),
                    Some(Content::Text(t)) => json!(t),
                    Some(Content::Parts(parts)) => Value::Array(
                        parts
                            .iter()
                            .filter_map(|p| match p {
                                Part::Text(t) => Some(json!({"type": "text", "text": t})),
                                Part::Image(img) => Some(
                                    json!({"type": "image_url", "image_url": {"url": img.url}}),
                                ),
                                // Refused by check_common before.
                                Part::Refusal(_) | Part::Raw(_) => None,
                            })
                            .collect(),
                    ),
                };
                json!({"role": "user", "content": content})
            }
            Turn::Assistant { tool_calls, .. } => {
                let text = native::text_only(NAME, m, i)?;
                if tool_calls.is_empty() {
                    json!({"role": "assistant", "content": text})
                } else {
                    let calls: Vec<Value> = tool_calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                    let mut msg = json!({"role": "assistant", "tool_calls": calls});
                    if !text.is_empty() {
                        msg["tool_plan"] = json!(text);
                    }
                    msg
                }
            }
            Turn::Tool { call_id } => json!({
                "role": "tool",
                "tool_call_id": call_id,
                "content": native::text_only(NAME, m, i)?,
            }),
        });
    }
    Ok(out)
}

impl Cohere {
    fn body(model: &str, input: &ChatInput, stream: bool) -> Result<Value, Unsupported> {
        native::check_common(
            NAME,
            input,
            Carries {
                seed: true,
                penalties: true,
                ..Carries::default()
            },
        )?;
        let mut body = json!({"model": model, "messages": messages(input)?, "stream": stream});
        if let Some(t) = input.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = input.top_p {
            body["p"] = json!(p);
        }
        if let Some(m) = input.max_tokens() {
            body["max_tokens"] = json!(m);
        }
        if !input.stop.is_empty() {
            body["stop_sequences"] = json!(input.stop);
        }
        if let Some(s) = input.seed {
            body["seed"] = json!(s);
        }
        if let Some(p) = input.presence_penalty {
            body["presence_penalty"] = json!(p);
        }
        if let Some(p) = input.frequency_penalty {
            body["frequency_penalty"] = json!(p);
        }
        if !input.tools.is_empty() {
            let strict = input
                .tools
                .iter()
                .filter(|t| t.strict == Some(true))
                .count();
            if strict > 0 && strict < input.tools.len() {
                let i = input
                    .tools
                    .iter()
                    .position(|t| t.strict == Some(true))
                    .unwrap_or(0);
                return Err(Unsupported::new(
                    format!("tools[{i}].function.strict"),
                    "Cohere makes all tools strict or none: mark every tool strict, or none",
                ));
            }
            let tools: Vec<Value> = input
                .tools
                .iter()
                .map(|t| {
                    let mut f = json!({
                        "name": t.name,
                        "parameters": t.parameters.clone().unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                    });
                    if let Some(d) = &t.description {
                        f["description"] = json!(d);
                    }
                    json!({"type": "function", "function": f})
                })
                .collect();
            body["tools"] = Value::Array(tools);
            if strict > 0 {
                body["strict_tools"] = json!(true);
            }
        }
        match &input.tool_choice {
            None | Some(ToolChoice::Auto) => {}
            Some(ToolChoice::Required) => body["tool_choice"] = json!("REQUIRED"),
            Some(ToolChoice::None) => body["tool_choice"] = json!("NONE"),
            Some(ToolChoice::Function(_)) => {
                return Err(Unsupported::new(
                    "tool_choice",
                    "Cohere cannot be made to call one named function: use \"required\" or \"auto\"",
                ));
            }
        }
        if input.parallel_tool_calls == Some(false) {
            return Err(Unsupported::new(
                "parallel_tool_calls",
                "Cohere cannot be told to make one tool call at a time",
            ));
        }
        match &input.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonObject) => {
                body["response_format"] = json!({"type": "json_object"});
            }
            Some(ResponseFormat::JsonSchema {
                schema,
                description,
                ..
            }) => {
                let mut format = json!({"type": "json_object"});
                if let Some(s) = schema {
                    let mut s = s.clone();
                    if let (Some(d), Some(obj)) = (description, s.as_object_mut()) {
                        obj.entry("description").or_insert_with(|| json!(d));
                    }
                    format["json_schema"] = s;
                }
                body["response_format"] = format;
            }
        }
        Ok(body)
    }

    async fn embed_batch(
        &self,
        model: &str,
        input: &EmbedInput,
        texts: &[String],
    ) -> Result<Embeddings, ProviderError> {
        let req = self
            .base
            .http
            .post(self.base.url("/embed"))
            .bearer_auth(&self.base.api_key)
            .json(&embed_body(model, input, texts));
        parse_embeddings(&self.base.send_json(req).await?)
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        self.base
            .http
            .post(self.base.url("/chat"))
            .bearer_auth(&self.base.api_key)
            .json(body)
    }
}

/// Texts per embed call (Cohere's documented maximum).
pub const EMBED_BATCH: usize = 96;

/// The embed request for `texts` (one batch).
fn embed_body(model: &str, input: &EmbedInput, texts: &[String]) -> Value {
    let mut body = json!({
        "model": model,
        "texts": texts,
        "input_type": input.input_type.unwrap_or(InputType::SearchDocument).as_str(),
        "embedding_types": ["float"],
    });
    if let Some(d) = input.dimensions {
        body["output_dimension"] = json!(d);
    }
    body
}

/// The texts of a request Cohere can carry, or the field it cannot.
fn embed_texts(input: &EmbedInput) -> Result<&[String], Unsupported> {
    if input.user.is_some() {
        return Err(Unsupported::field(NAME, "user"));
    }
    match &input.inputs {
        Inputs::Texts(t) => Ok(t),
        Inputs::Tokens(_) => Err(Unsupported::new(
            "input",
            "token ids as input are not supported by Cohere: send texts",
        )),
    }
}

fn parse_embeddings(v: &Value) -> Result<Embeddings, ProviderError> {
    let vectors = v["embeddings"]["float"]
        .as_array()
        .ok_or_else(|| ProviderError::Malformed("no embeddings.float in answer".into()))?
        .iter()
        .map(json_vector)
        .collect::<Option<Vec<Vec<f32>>>>()
        .ok_or_else(|| ProviderError::Malformed("embeddings.float holds a non-vector".into()))?;
    let billed = &v["meta"]["billed_units"]["input_tokens"];
    Ok(Embeddings {
        vectors,
        prompt_tokens: billed.is_u64().then(|| json_u32(billed)),
    })
}

fn parse_answer(v: &Value) -> Result<Completion, ProviderError> {
    let m = &v["message"];
    let blocks = m["content"].as_array();
    let calls = m["tool_calls"].as_array();
    if blocks.is_none() && calls.is_none() {
        return Err(ProviderError::Malformed(
            "no message.content nor message.tool_calls in answer".into(),
        ));
    }
    let mut content: String = blocks
        .into_iter()
        .flatten()
        .filter_map(|b| b["text"].as_str())
        .collect();
    let tool_calls: Vec<ToolCall> = calls
        .into_iter()
        .flatten()
        .map(|c| ToolCall {
            id: c["id"].as_str().unwrap_or_default().to_owned(),
            name: c["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            arguments: c["function"]["arguments"]
                .as_str()
                .unwrap_or("{}")
                .to_owned(),
        })
        .collect();
    if content.is_empty()
        && let Some(plan) = m["tool_plan"].as_str()
    {
        content = plan.to_owned();
    }
    Ok(Completion {
        choices: vec![Choice {
            index: 0,
            content: (!content.is_empty() || tool_calls.is_empty()).then_some(content),
            tool_calls,
            finish_reason: v["finish_reason"]
                .as_str()
                .map(normalise_finish)
                .unwrap_or_else(|| "stop".into()),
            ..Choice::default()
        }],
        usage: parse_usage(&v["usage"]),
        system_fingerprint: None,
    })
}

impl Provider for Cohere {
    fn embed<'a>(
        &'a self,
        model: &'a str,
        input: &'a EmbedInput,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        async move {
            let texts = embed_texts(input).map_err(ProviderError::Unsupported)?;
            // A loop rather than `map` with a closure: a closure returning a borrowing future
            // defeats the `Send` proof of the boxed future.
            let mut batches = Vec::with_capacity(texts.len().div_ceil(EMBED_BATCH));
            for batch in texts.chunks(EMBED_BATCH) {
                batches.push(self.embed_batch(model, input, batch));
            }
            join_batches(batches.into_iter()).await
        }
        .boxed()
    }

    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let body = Self::body(model, input, false).map_err(ProviderError::Unsupported)?;
            let v = self.base.send_json(self.request(&body)).await?;
            parse_answer(&v)
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        async move {
            let body = Self::body(model, input, true).map_err(ProviderError::Unsupported)?;
            let resp = self.base.send(self.request(&body)).await?;
            let mut events = sse_events(resp);
            let s = async_stream::try_stream! {
                let mut done = false;
                while let Some(ev) = events.next().await {
                    let ev = ev?;
                    let v = event_json(&ev)?;
                    let kind = v["type"].as_str().unwrap_or(ev.event.as_str()).to_owned();
                    match kind.as_str() {
                        "content-delta" => {
                            if let Some(text) = v["delta"]["message"]["content"]["text"].as_str() {
                                yield Chunk { delta: text.to_owned(), ..Chunk::default() };
                            }
                        }
                        "tool-plan-delta" => {
                            if let Some(text) = v["delta"]["message"]["tool_plan"].as_str() {
                                yield Chunk { delta: text.to_owned(), ..Chunk::default() };
                            }
                        }
                        "tool-call-start" | "tool-call-delta" => {
                            let call = &v["delta"]["message"]["tool_calls"];
                            let start = kind == "tool-call-start";
                            let d = ToolCallDelta {
                                index: json_u32(&v["index"]),
                                id: start.then(|| call["id"].as_str().unwrap_or_default().to_owned()),
                                name: start.then(|| call["function"]["name"].as_str().unwrap_or_default().to_owned()),
                                arguments: call["function"]["arguments"].as_str().unwrap_or_default().to_owned(),
                            };
                            if start || !d.arguments.is_empty() {
                                yield Chunk { tool_calls: vec![d], ..Chunk::default() };
                            }
                        }
                        "message-end" => {
                            yield Chunk {
                                delta: String::new(),
                                finish_reason: v["delta"]["finish_reason"].as_str().map(normalise_finish),
                                usage: parse_usage(&v["delta"]["usage"]),
                                ..Chunk::default()
                            };
                            done = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !done {
                    Err(ProviderError::StreamBroken("stream ended before message-end".into()))?;
                }
            };
            Ok(s.boxed())
        }
        .boxed()
    }
}
