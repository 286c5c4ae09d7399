//! The offline `mock` provider: answers without any network call so a fresh checkout (no
//! provider key at all) runs end to end. Every answer is labelled: provider `mock`, and the text
//! itself says no model was called. It is never used when any real provider is configured.

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

use super::{
    ChatInput, Chunk, ChunkStream, Completion, Provider, ProviderError, Role, Usage,
    estimate_tokens,
};

/// The provider name reported for mock answers (reserved by the catalogue, which owns the
/// provider names).
pub use crate::catalog::MOCK_PROVIDER;

pub struct Mock;

fn answer(input: &ChatInput) -> String {
    let last_user = input
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.as_str())
        .unwrap_or("");
    let shown: String = last_user.chars().take(200).collect();
    let mut text = format!(
        "[mock] Offline mock answer from the IAFactory gateway: no LLM provider key is configured, \
         so no model was called. You said: \"{shown}\""
    );
    if let Some(max) = input.max_tokens {
        let max_chars = usize::try_from(max).unwrap_or(usize::MAX).saturating_mul(4);
        if text.chars().count() > max_chars {
            text = text.chars().take(max_chars).collect();
        }
    }
    text
}

fn usage(input: &ChatInput, text: &str) -> Usage {
    Usage {
        prompt_tokens: input.estimated_prompt_tokens(),
        completion_tokens: estimate_tokens(text.chars().count()),
    }
}

impl Provider for Mock {
    fn chat<'a>(
        &'a self,
        _model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let content = answer(input);
            Ok(Completion {
                usage: Some(usage(input, &content)),
                content,
                finish_reason: "stop".into(),
            })
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        _model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        async move {
            let content = answer(input);
            let usage = usage(input, &content);
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
            }));
            Ok(futures::stream::iter(chunks).boxed())
        }
        .boxed()
    }
}
