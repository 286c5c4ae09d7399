//! Cohere chat v2 (`POST {base}/chat`, bearer key).
//!
//! Answers carry `message.content[].text`, `finish_reason` (`COMPLETE`, `MAX_TOKENS`, ...) and
//! `usage.tokens` / `usage.billed_units`. Streaming events (typed by their `type` field):
//! `message-start`, `content-start`, `content-delta` (`delta.message.content.text`),
//! `content-end`, `message-end` (finish reason and usage, the end marker).

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::{
    ChatInput, Chunk, ChunkStream, Completion, HttpBase, Provider, ProviderError, Role, Usage,
    event_json, json_u32, sse_events,
};

pub struct Cohere {
    pub base: HttpBase,
}

fn normalise_finish(reason: &str) -> String {
    match reason {
        "COMPLETE" | "STOP_SEQUENCE" => "stop".into(),
        "MAX_TOKENS" => "length".into(),
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
    Some(Usage {
        prompt_tokens: json_u32(&src["input_tokens"]),
        completion_tokens: json_u32(&src["output_tokens"]),
    })
}

impl Cohere {
    fn body(model: &str, input: &ChatInput, stream: bool) -> Value {
        let messages: Vec<Value> = input
            .messages
            .iter()
            .map(|m| {
                // The router sends Cohere only text conversations (no tool turns yet).
                let role = match m.role() {
                    Role::System | Role::Developer => "system",
                    Role::User | Role::Tool => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": m.plain_text()})
            })
            .collect();
        let mut body = json!({"model": model, "messages": messages, "stream": stream});
        if let Some(t) = input.temperature {
            body["temperature"] = json!(t.min(1.0));
        }
        if let Some(p) = input.top_p {
            body["p"] = json!(p.clamp(0.01, 0.99));
        }
        if let Some(m) = input.max_tokens() {
            body["max_tokens"] = json!(m);
        }
        if !input.stop.is_empty() {
            body["stop_sequences"] = json!(input.stop);
        }
        body
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        self.base
            .http
            .post(self.base.url("/chat"))
            .bearer_auth(&self.base.api_key)
            .json(body)
    }
}

impl Provider for Cohere {
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
            let blocks = v["message"]["content"].as_array().ok_or_else(|| {
                ProviderError::Malformed("no message.content array in answer".into())
            })?;
            let content: String = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
            Ok(Completion::text(
                content,
                v["finish_reason"]
                    .as_str()
                    .map(normalise_finish)
                    .unwrap_or_else(|| "stop".into()),
                parse_usage(&v["usage"]),
            ))
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
