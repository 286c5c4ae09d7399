//! Anthropic Messages (`POST {base}/messages`, `x-api-key`, `anthropic-version`).
//!
//! System messages go to the top-level `system` field; `max_tokens` is mandatory (1024 when the
//! caller gives none). Streaming uses named events: `message_start` (prompt tokens),
//! `content_block_delta` (text), `message_delta` (stop reason, completion tokens),
//! `message_stop` (end), `ping`, and `error`.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::{
    ChatInput, Chunk, ChunkStream, Completion, HttpBase, Provider, ProviderError, Role, Usage,
    event_json, json_u32, sse_events,
};

pub const API_VERSION: &str = "2023-06-01";
/// Used when the caller sets no `max_tokens` (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

pub struct Anthropic {
    pub base: HttpBase,
}

fn normalise_stop(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop".into(),
        "max_tokens" => "length".into(),
        "refusal" => "content_filter".into(),
        other => other.to_owned(),
    }
}

impl Anthropic {
    fn body(model: &str, input: &ChatInput, stream: bool) -> Value {
        let messages: Vec<Value> = input
            .messages
            .iter()
            .filter(|m| !matches!(m.role(), Role::System | Role::Developer))
            .map(|m| {
                let role = if m.role() == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                json!({"role": role, "content": m.plain_text()})
            })
            .collect();
        let mut body = json!({
            "model": model,
            "messages": messages,
            "max_tokens": input.max_tokens().unwrap_or(DEFAULT_MAX_TOKENS),
        });
        if stream {
            body["stream"] = json!(true);
        }
        if let Some(system) = input.system_text() {
            body["system"] = json!(system);
        }
        if let Some(t) = input.temperature {
            // Anthropic's range is 0..1; the gateway accepts OpenAI's 0..2.
            body["temperature"] = json!(t.min(1.0));
        }
        if let Some(p) = input.top_p {
            body["top_p"] = json!(p);
        }
        if !input.stop.is_empty() {
            body["stop_sequences"] = json!(input.stop);
        }
        body
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
    let content: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let usage = v.get("usage").filter(|u| u.is_object()).map(|u| Usage {
        prompt_tokens: json_u32(&u["input_tokens"]),
        completion_tokens: json_u32(&u["output_tokens"]),
    });
    Ok(Completion::text(
        content,
        v["stop_reason"]
            .as_str()
            .map(normalise_stop)
            .unwrap_or_else(|| "stop".into()),
        usage,
    ))
}

impl Provider for Anthropic {
    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let v = self
                .base
                .send_json(self.request(&Self::body(model, input, false)))
                .await?;
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
            let resp = self
                .base
                .send(self.request(&Self::body(model, input, true)))
                .await?;
            let mut events = sse_events(resp);
            let s = async_stream::try_stream! {
                let mut prompt_tokens = 0u32;
                let mut done = false;
                while let Some(ev) = events.next().await {
                    let ev = ev?;
                    let v = event_json(&ev)?;
                    // The `type` field repeats the event name; trust it over `event:`.
                    let kind = v["type"].as_str().unwrap_or(ev.event.as_str()).to_owned();
                    match kind.as_str() {
                        "message_start" => {
                            prompt_tokens = json_u32(&v["message"]["usage"]["input_tokens"]);
                        }
                        "content_block_delta" => {
                            if let Some(text) = v["delta"]["text"].as_str() {
                                yield Chunk { delta: text.to_owned(), ..Chunk::default() };
                            }
                        }
                        "message_delta" => {
                            let usage = v.get("usage").filter(|u| u.is_object()).map(|u| Usage {
                                prompt_tokens: prompt_tokens.max(json_u32(&u["input_tokens"])),
                                completion_tokens: json_u32(&u["output_tokens"]),
                            });
                            yield Chunk {
                                delta: String::new(),
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
                        _ => {} // ping, content_block_start/stop
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
