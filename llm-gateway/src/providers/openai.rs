//! OpenAI chat completions (`POST {base}/chat/completions`), spoken by OpenAI, Groq, DeepSeek,
//! Mistral, Together, OpenRouter and self-hosted servers (vLLM, Ollama, llama.cpp).
//!
//! Streaming: `data: {chunk}` events with `choices[0].delta.content`, a last chunk with `usage`
//! when `stream_options.include_usage` is sent, then `data: [DONE]`.

use std::borrow::Cow;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ChatInput, Chunk, ChunkStream, Completion, HttpBase, Provider, ProviderError, Usage,
    event_json, json_u32, sse_events,
};

pub struct OpenAi {
    pub base: HttpBase,
    /// `{base}/chat/completions`, parsed once.
    pub endpoint: reqwest::Url,
    pub stream_usage_option: bool,
}

/// The request body, serialised straight from borrowed data (no intermediate JSON tree: this is
/// the hot path of the most used wire format).
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct WireMessage {
    role: &'static str,
    content: String,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// A chat completion, reading only what the gateway uses.
#[derive(Deserialize)]
struct WireCompletion<'a> {
    #[serde(default, borrow)]
    choices: Vec<WireChoice<'a>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(default, borrow)]
    message: Option<WireAnswer<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireAnswer<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl OpenAi {
    fn body<'a>(&self, model: &'a str, input: &'a ChatInput, stream: bool) -> Body<'a> {
        Body {
            model,
            messages: input
                .messages
                .iter()
                .map(|m| WireMessage {
                    role: m.role().as_str(),
                    content: m.plain_text().into_owned(),
                })
                .collect(),
            stream,
            temperature: input.temperature,
            top_p: input.top_p,
            max_tokens: input.max_tokens(),
            stop: &input.stop,
            stream_options: (stream && self.stream_usage_option).then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    fn request(&self, body: &Body<'_>) -> reqwest::RequestBuilder {
        let mut req = self.base.http.post(self.endpoint.clone()).json(body);
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

/// Usage in a stream chunk: top-level `usage` (OpenAI with `stream_options.include_usage`,
/// Mistral, Together, DeepSeek, OpenRouter) or Groq's `x_groq.usage` in its last chunk.
pub fn stream_usage(v: &Value) -> Option<Usage> {
    parse_usage(v).or_else(|| v.get("x_groq").and_then(parse_usage))
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
pub fn parse_completion(body: &[u8]) -> Result<Completion, ProviderError> {
    let v: WireCompletion<'_> = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Malformed(format!("invalid chat completion: {e}")))?;
    let choice = v
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| ProviderError::Malformed("no choices in chat completion".into()))?;
    Ok(Completion::text(
        choice
            .message
            .and_then(|m| m.content)
            .map(Cow::into_owned)
            .unwrap_or_default(),
        choice
            .finish_reason
            .as_deref()
            .map(normalise_finish)
            .unwrap_or_else(|| "stop".into()),
        v.usage.map(|u| Usage {
            prompt_tokens: clamp_u32(u.prompt_tokens),
            completion_tokens: clamp_u32(u.completion_tokens),
        }),
    ))
}

impl Provider for OpenAi {
    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let body = self.body(model, input, false);
            let bytes = self.base.send_bytes(self.request(&body)).await?;
            parse_completion(&bytes)
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
                    yield Chunk { delta, finish_reason, usage: stream_usage(&v), ..Chunk::default() };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_and_stream_usage_shapes() {
        let c = parse_completion(
            br#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        );
        let c = c.ok();
        let first = c.as_ref().map(|c| &c.choices[0]);
        assert_eq!(first.and_then(|f| f.content.as_deref()), Some("hi"));
        assert_eq!(first.map(|f| f.finish_reason.as_str()), Some("length"));
        assert_eq!(
            c.as_ref().and_then(|c| c.usage),
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
        assert!(parse_completion(b"not json").is_err());
        let null_content = parse_completion(br#"{"choices":[{"message":{"content":null}}]}"#).ok();
        assert!(null_content.is_some_and(
            |c| c.usage.is_none() && c.choices[0].content.as_deref().unwrap_or("").is_empty()
        ));

        let groq: Value = serde_json::json!({"choices":[{"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":7,"completion_tokens":9}}});
        assert_eq!(
            stream_usage(&groq),
            Some(Usage {
                prompt_tokens: 7,
                completion_tokens: 9
            })
        );
        let none: Value = serde_json::json!({"choices":[{"delta":{"content":"x"}}]});
        assert_eq!(stream_usage(&none), None);
    }
}
