//! Google Gemini (`POST {base}/models/{model}:generateContent`, key in `x-goog-api-key`).
//!
//! Roles are `user` and `model`; system messages go to `systemInstruction`. Streaming is
//! `:streamGenerateContent?alt=sse`: each `data:` event is a partial `GenerateContentResponse`;
//! there is no end marker, so a stream is complete only if some chunk carried a `finishReason`.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};

use super::{
    ChatInput, Chunk, ChunkStream, Completion, HttpBase, Provider, ProviderError, Role, Usage,
    event_json, json_u32, sse_events,
};

pub struct Gemini {
    pub base: HttpBase,
}

fn normalise_finish(reason: &str) -> String {
    match reason {
        "STOP" => "stop".into(),
        "MAX_TOKENS" => "length".into(),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" => {
            "content_filter".into()
        }
        other => other.to_ascii_lowercase(),
    }
}

impl Gemini {
    fn body(input: &ChatInput) -> Value {
        let contents: Vec<Value> = input
            .messages
            .iter()
            .filter(|m| !matches!(m.role(), Role::System | Role::Developer))
            .map(|m| {
                let role = if m.role() == Role::Assistant {
                    "model"
                } else {
                    "user"
                };
                json!({"role": role, "parts": [{"text": m.plain_text()}]})
            })
            .collect();
        let mut body = json!({"contents": contents});
        if let Some(system) = input.system_text() {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        let mut gen_cfg = serde_json::Map::new();
        if let Some(t) = input.temperature {
            gen_cfg.insert("temperature".into(), json!(t));
        }
        if let Some(p) = input.top_p {
            gen_cfg.insert("topP".into(), json!(p));
        }
        if let Some(m) = input.max_tokens() {
            gen_cfg.insert("maxOutputTokens".into(), json!(m));
        }
        if !input.stop.is_empty() {
            gen_cfg.insert("stopSequences".into(), json!(input.stop));
        }
        if !gen_cfg.is_empty() {
            body["generationConfig"] = Value::Object(gen_cfg);
        }
        body
    }

    fn request(&self, model: &str, method: &str, body: &Value) -> reqwest::RequestBuilder {
        self.base
            .http
            .post(self.base.url(&format!("/models/{model}:{method}")))
            .header("x-goog-api-key", &self.base.api_key)
            .json(body)
    }
}

fn candidate_text(v: &Value) -> String {
    v["candidates"][0]["content"]["parts"]
        .as_array()
        .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
        .unwrap_or_default()
}

fn parse_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usageMetadata").filter(|u| u.is_object())?;
    Some(Usage {
        prompt_tokens: json_u32(&u["promptTokenCount"]),
        completion_tokens: json_u32(&u["candidatesTokenCount"]),
    })
}

fn check_error(v: &Value) -> Result<(), ProviderError> {
    match v.get("error") {
        Some(e) => Err(ProviderError::Api(e.to_string())),
        None => Ok(()),
    }
}

impl Provider for Gemini {
    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let v = self
                .base
                .send_json(self.request(model, "generateContent", &Self::body(input)))
                .await?;
            check_error(&v)?;
            if !v["candidates"].is_array() {
                return Err(ProviderError::Malformed("no candidates in answer".into()));
            }
            Ok(Completion::text(
                candidate_text(&v),
                v["candidates"][0]["finishReason"]
                    .as_str()
                    .map(normalise_finish)
                    .unwrap_or_else(|| "stop".into()),
                parse_usage(&v),
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
                .send(self.request(model, "streamGenerateContent?alt=sse", &Self::body(input)))
                .await?;
            let mut events = sse_events(resp);
            let s = async_stream::try_stream! {
                let mut finished = false;
                while let Some(ev) = events.next().await {
                    let v = event_json(&ev?)?;
                    check_error(&v)?;
                    let finish_reason = v["candidates"][0]["finishReason"]
                        .as_str()
                        .map(normalise_finish);
                    finished |= finish_reason.is_some();
                    yield Chunk { delta: candidate_text(&v), finish_reason, usage: parse_usage(&v), ..Chunk::default() };
                }
                if !finished {
                    Err(ProviderError::StreamBroken("stream ended without finishReason".into()))?;
                }
            };
            Ok(s.boxed())
        }
        .boxed()
    }
}
