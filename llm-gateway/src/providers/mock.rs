//! The offline `mock` provider: answers without any network call so a fresh checkout (no
//! provider key at all) runs end to end. Every answer is labelled: provider `mock`, and the text
//! itself says no model was called. It is never used when any real provider is configured.
//!
//! What it implements (its capabilities, [`crate::routing::capabilities::MOCK_CAPABILITIES`]):
//! - tools: with `tool_choice` `required` it calls the first tool, with a named function that
//!   one, with arguments holding the schema's required properties set to empty values of their
//!   type (`""`, `0`, `false`, `[]`, `{}`), finish reason `tool_calls`; with `auto` or `none`
//!   it answers text (a model may decide not to call);
//! - `response_format: json_object`: the answer is `{}`.
//!
//! - embeddings: deterministic vectors (see [`vector`]), [`DEFAULT_DIMENSIONS`] long or
//!   `dimensions`, for texts and token ids alike, about 4 characters a token as for chat
//!   (exactly one token per id); `input_type` and `user` change nothing in such vectors.
//!
//! Everything else a request may ask (images, schemas, logprobs, several choices, reasoning,
//! OpenAI-only fields) is refused by the router before reaching it.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use serde_json::{Map, Value};

use super::{
    ChatInput, Choice, Chunk, ChunkStream, Completion, EmbedInput, Embeddings, Inputs, Provider,
    ProviderError, Role, ToolCall, ToolCallDelta, Usage, estimate_tokens,
};
use crate::chat::{ResponseFormat, ToolChoice};

/// The provider name reported for mock answers (reserved by the catalogue, which owns the
/// provider names).
pub use crate::catalog::MOCK_PROVIDER;

pub struct Mock;

fn answer(input: &ChatInput) -> String {
    let last_user = input
        .messages
        .iter()
        .rev()
        .find(|m| m.role() == Role::User)
        .map(|m| m.plain_text())
        .unwrap_or_default();
    let shown: String = last_user.chars().take(200).collect();
    let mut text = format!(
        "[mock] Offline mock answer from the IAFactory gateway: no LLM provider key is configured, \
         so no model was called. You said: \"{shown}\""
    );
    if let Some(max) = input.max_tokens() {
        let max_chars = usize::try_from(max).unwrap_or(usize::MAX).saturating_mul(4);
        if text.chars().count() > max_chars {
            text = text.chars().take(max_chars).collect();
        }
    }
    text
}

/// The call the mock makes, when the request forces one.
fn forced_call(input: &ChatInput) -> Option<ToolCall> {
    let tool = match input.tool_choice.as_ref()? {
        ToolChoice::Required => input.tools.first()?,
        ToolChoice::Function(name) => input.tools.iter().find(|t| &t.name == name)?,
        ToolChoice::None | ToolChoice::Auto => return None,
    };
    let schema = tool.parameters.as_ref();
    let mut args = Map::new();
    let required = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for name in required.iter().filter_map(Value::as_str) {
        let ty = schema
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(name))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let empty = match ty {
            "integer" | "number" => Value::from(0),
            "boolean" => Value::from(false),
            "array" => Value::Array(Vec::new()),
            "object" => Value::Object(Map::new()),
            "null" => Value::Null,
            _ => Value::from(""),
        };
        args.insert(name.to_owned(), empty);
    }
    Some(ToolCall {
        id: format!("call_mock_{}", tool.name),
        name: tool.name.clone(),
        arguments: Value::Object(args).to_string(),
    })
}

/// The whole answer: a forced tool call, `{}` for JSON mode, else the labelled text.
fn completion(input: &ChatInput) -> Completion {
    let (choice, generated) = if let Some(call) = forced_call(input) {
        let chars = call.name.len() + call.arguments.len();
        (
            Choice {
                tool_calls: vec![call],
                finish_reason: "tool_calls".into(),
                ..Choice::default()
            },
            chars,
        )
    } else {
        let text = if input.response_format == Some(ResponseFormat::JsonObject) {
            "{}".to_owned()
        } else {
            answer(input)
        };
        let chars = text.chars().count();
        (
            Choice {
                content: Some(text),
                finish_reason: "stop".into(),
                ..Choice::default()
            },
            chars,
        )
    };
    Completion {
        choices: vec![choice],
        usage: Some(Usage::new(
            input.estimated_prompt_tokens(),
            estimate_tokens(generated),
        )),
        system_fingerprint: None,
    }
}

/// Length of a mock vector when the request sets no `dimensions` (OpenAI's
/// text-embedding-3-small, the most used size).
pub const DEFAULT_DIMENSIONS: u32 = 1536;

/// SplitMix64's finaliser: spreads the bits of a seed.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over the model name, a tag telling texts from token ids, and the input's bytes.
fn seed(model: &str, tag: u8, bytes: impl Iterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in model.bytes().chain([0, tag]).chain(bytes) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// A unit vector of `dims` values determined by `seed` alone: component `i` is derived from
/// the seed mixed with `i`, then the whole is L2-normalised. The same text always gets the same
/// vector; a shortened one is the prefix of the full one, renormalised (as the shortening
/// models do it).
pub fn vector(seed: u64, dims: u32) -> Vec<f32> {
    let mut v: Vec<f32> = (0..u64::from(dims))
        .map(|i| {
            let bits = mix(seed ^ mix(i));
            // The top 24 bits as a value in [-1, 1).
            ((bits >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The mock's answer to an embeddings request for `model`.
pub fn embeddings(model: &str, input: &EmbedInput) -> Embeddings {
    let dims = input.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    let vectors = match &input.inputs {
        Inputs::Texts(t) => t
            .iter()
            .map(|s| vector(seed(model, b't', s.bytes()), dims))
            .collect(),
        Inputs::Tokens(t) => t
            .iter()
            .map(|ids| {
                vector(
                    seed(model, b'i', ids.iter().flat_map(|id| id.to_le_bytes())),
                    dims,
                )
            })
            .collect(),
    };
    Embeddings {
        vectors,
        prompt_tokens: Some(input.estimated_tokens()),
    }
}

impl Provider for Mock {
    fn embed<'a>(
        &'a self,
        model: &'a str,
        input: &'a EmbedInput,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        async move { Ok(embeddings(model, input)) }.boxed()
    }

    fn chat<'a>(
        &'a self,
        _model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move { Ok(completion(input)) }.boxed()
    }

    fn stream<'a>(
        &'a self,
        _model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        async move {
            let whole = completion(input);
            let usage = whole.usage;
            let choice = whole.choices.into_iter().next().unwrap_or_default();
            if !choice.tool_calls.is_empty() || choice.content.as_deref() == Some("{}") {
                // One piece with the whole call (or JSON), then the end.
                let chunks: Vec<Result<Chunk, ProviderError>> = vec![
                    Ok(Chunk {
                        delta: choice.content.unwrap_or_default(),
                        tool_calls: choice
                            .tool_calls
                            .into_iter()
                            .enumerate()
                            .map(|(i, c)| ToolCallDelta {
                                index: u32::try_from(i).unwrap_or(0),
                                id: Some(c.id),
                                name: Some(c.name),
                                arguments: c.arguments,
                            })
                            .collect(),
                        ..Chunk::default()
                    }),
                    Ok(Chunk {
                        finish_reason: Some(choice.finish_reason),
                        usage,
                        ..Chunk::default()
                    }),
                ];
                return Ok(futures::stream::iter(chunks).boxed());
            }
            let content = choice.content.unwrap_or_default();
            let usage = usage.unwrap_or_default();
            let mut chunks: Vec<Result<Chunk, ProviderError>> = content
                .split_inclusive(' ')
                .map(|w| {
                    Ok(Chunk {
                        delta: w.to_owned(),
                        ..Chunk::default()
                    })
                })
                .collect();
            chunks.push(Ok(Chunk {
                delta: String::new(),
                finish_reason: Some("stop".into()),
                usage: Some(usage),
                ..Chunk::default()
            }));
            Ok(futures::stream::iter(chunks).boxed())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_length_and_shorten_as_prefixes() {
        let input = |dims: Option<u32>| EmbedInput {
            inputs: Inputs::Texts(vec!["Bonjour".into(), "Salut".into()]),
            dimensions: dims,
            user: None,
            input_type: None,
        };
        let a = embeddings("mock/e", &input(None));
        assert_eq!(a, embeddings("mock/e", &input(None)));
        assert_eq!(a.vectors[0].len(), 1536);
        assert_ne!(a.vectors[0], a.vectors[1]);
        assert_ne!(
            a.vectors[0],
            embeddings("mock/other", &input(None)).vectors[0]
        );
        for v in &a.vectors {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        }
        let short = embeddings("mock/e", &input(Some(8)));
        assert_eq!(short.vectors[0].len(), 8);
        // Same direction as the full vector's first 8 components.
        let full = &a.vectors[0][..8];
        let dot: f32 = full.iter().zip(&short.vectors[0]).map(|(x, y)| x * y).sum();
        let n: f32 = full.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((dot / n - 1.0).abs() < 1e-4);
        assert_eq!(short.prompt_tokens, Some(4));
    }
}
