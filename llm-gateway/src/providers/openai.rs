//! OpenAI chat completions (`POST {base}/chat/completions`), spoken by OpenAI, Groq, DeepSeek,
//! Mistral, Together, OpenRouter and self-hosted servers (vLLM, Ollama, llama.cpp).
//!
//! Streaming: `data: {chunk}` events with `choices[0].delta.content`, a last chunk with `usage`
//! when `stream_options.include_usage` is sent, then `data: [DONE]`.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::{
    ChatInput, Chunk, ChunkStream, Completion, HttpBase, Provider, ProviderError, Role, Usage,
    event_json, json_u32, sse_events,
};

pub struct OpenAi {
    pub base: HttpBase,
    pub stream_usage_option: bool,
}

fn role(r: Role) -> &'static str {
    match r {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

impl OpenAi {
    fn body(&self, model: &str, input: &ChatInput, stream: bool) -> Value {
        let messages: Vec<Value> = input
            .messages
            .iter()
            .map(|m| json!({"role": role(m.role), "content": m.content}))
            .collect();
        let mut body = json!({"model": model, "messages": messages, "stream": stream});
        if let Some(t) = input.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(p) = input.top_p {
            body["top_p"] = json!(p);
        }
        if let Some(m) = input.max_tokens {
            body["max_tokens"] = json!(m);
        }
        if !input.stop.is_empty() {
            body["stop"] = json!(input.stop);
        }
        if stream && self.stream_usage_option {
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut req = self
            .base
            .http
            .post(self.base.url("/chat/completions"))
            .json(body);
        if !self.base.api_key.is_empty() {
            req = req.bearer_auth(&self.base.api_key);
        }
        req
    }
}

pub fn parse_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(Usage {
        prompt_tokens: json_u32(&u["prompt_tokens"]),
        completion_tokens: json_u32(&u["completion_tokens"]),
    })
}

pub fn normalise_finish(reason: &str) -> String {
    match reason {
        "stop" | "eos" | "end_turn" => "stop".into(),
        "length" => "length".into(),
        "content_filter" => "content_filter".into(),
        other => other.to_owned(),
    }
}

/// Parses a (non-streamed) chat completion.
pub fn parse_completion(v: &Value) -> Result<Completion, ProviderError> {
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| ProviderError::Malformed("no choices in chat completion".into()))?;
    let content = match &choice["message"]["content"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        _ => {
            return Err(ProviderError::Malformed(
                "choices[0].message.content is not a string".into(),
            ));
        }
    };
    Ok(Completion {
        content,
        finish_reason: choice["finish_reason"]
            .as_str()
            .map(normalise_finish)
            .unwrap_or_else(|| "stop".into()),
        usage: parse_usage(v),
    })
}

impl Provider for OpenAi {
    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let body = self.body(model, input, false);
            let v = self.base.send_json(self.request(&body)).await?;
            parse_completion(&v)
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        async move {
            let body = self.body(model, input, true);
            let resp = self.base.send(self.request(&body)).await?;
            let mut events = sse_events(resp);
            let s = async_stream::try_stream! {
                let mut done = false;
                while let Some(ev) = events.next().await {
                    let ev = ev?;
                    if ev.data.trim() == "[DONE]" {
                        done = true;
                        break;
                    }
                    let v = event_json(&ev)?;
                    if let Some(err) = v.get("error") {
                        Err(ProviderError::Api(err.to_string()))?;
                    }
                    let choice = v.get("choices").and_then(|c| c.get(0));
                    let delta = choice
                        .and_then(|c| c["delta"]["content"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let finish_reason = choice
                        .and_then(|c| c["finish_reason"].as_str())
                        .map(normalise_finish);
                    yield Chunk { delta, finish_reason, usage: parse_usage(&v) };
                }
                if !done {
                    Err(ProviderError::StreamBroken("stream ended before [DONE]".into()))?;
                }
            };
            Ok(s.boxed())
        }
        .boxed()
    }
}
