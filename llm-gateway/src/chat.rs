//! The chat domain: a validated request ([`ChatInput`]) and answers ([`Completion`], [`Chunk`]),
//! independent of any wire format. Everything the gRPC contract carries has a place here, so a
//! provider client either forwards a field or the router never sends it that request (see
//! [`crate::capabilities`]): nothing is dropped between the two.
//!
//! The types keep wrong states out: a tool-call id exists only on tool messages, tool calls and
//! refusals only on assistant messages, at most one of `max_tokens` / `max_completion_tokens`.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// Who wrote a message (the plain label; [`Turn`] carries what each role may hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    /// OpenAI's `developer` role: instructions for reasoning models.
    Developer,
    User,
    Assistant,
    Tool,
}

impl Role {
    /// The OpenAI wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// The role of a message with what only that role may carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    System,
    Developer,
    User,
    Assistant {
        /// The calls the model made in that turn (may be empty).
        tool_calls: Vec<ToolCall>,
        /// A refusal the model gave in that turn.
        refusal: Option<String>,
    },
    Tool {
        /// The id of the call this message answers.
        call_id: String,
    },
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub turn: Turn,
    /// `None` only for an assistant message that carries tool calls or a refusal only.
    pub content: Option<Content>,
    /// OpenAI's participant `name`.
    pub name: Option<String>,
}

impl Message {
    /// A plain-text message (tests, the mock).
    pub fn text(turn: Turn, text: impl Into<String>) -> Message {
        Message {
            turn,
            content: Some(Content::Text(text.into())),
            name: None,
        }
    }

    pub fn role(&self) -> Role {
        match self.turn {
            Turn::System => Role::System,
            Turn::Developer => Role::Developer,
            Turn::User => Role::User,
            Turn::Assistant { .. } => Role::Assistant,
            Turn::Tool { .. } => Role::Tool,
        }
    }

    /// The message's text: the string, or its text parts joined (images and other parts left
    /// out — only for providers the router sends text-only conversations to).
    pub fn plain_text(&self) -> Cow<'_, str> {
        match &self.content {
            None => Cow::Borrowed(""),
            Some(Content::Text(t)) => Cow::Borrowed(t),
            Some(Content::Parts(parts)) => Cow::Owned(
                parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::Text(t) => Some(t.as_str()),
                        _ => None,
                    })
                    .collect(),
            ),
        }
    }
}

/// What a message says: a string, or parts — kept apart because the OpenAI family receives
/// exactly the shape the client sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(Image),
    /// Assistant messages only.
    Refusal(String),
    /// A part type the gateway does not model (`input_audio`, `file`, ...): the client's JSON
    /// object, forwarded verbatim to the OpenAI family only.
    Raw(serde_json::Map<String, serde_json::Value>),
}

/// An image by https URL or data URI.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub url: String,
    pub detail: Option<ImageDetail>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageDetail {
    Auto,
    Low,
    High,
}

impl ImageDetail {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageDetail::Auto => "auto",
            ImageDetail::Low => "low",
            ImageDetail::High => "high",
        }
    }
}

/// A call of a function the model made.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text exactly as the model produced it (possibly invalid JSON).
    pub arguments: String,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema object; `None` when the client gave none.
    pub parameters: Option<serde_json::Value>,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Function(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        description: Option<String>,
        schema: Option<serde_json::Value>,
        strict: Option<bool>,
    },
}

/// The bound on generated tokens, under the name the client used: OpenAI's reasoning models
/// refuse `max_tokens`, older servers do not know `max_completion_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLimit {
    MaxTokens(u32),
    MaxCompletionTokens(u32),
}

impl OutputLimit {
    pub fn tokens(self) -> u32 {
        match self {
            OutputLimit::MaxTokens(n) | OutputLimit::MaxCompletionTokens(n) => n,
        }
    }
}

/// A validated chat request, independent of any wire format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatInput {
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub output_limit: Option<OutputLimit>,
    pub stop: Vec<String>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// Token id (decimal text) → bias, in a stable order.
    pub logit_bias: BTreeMap<String, f32>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u32>,
    pub user: Option<String>,
    pub n: Option<u32>,
    pub reasoning_effort: Option<String>,
    /// Fields the gateway does not model, merged verbatim at the top level of OpenAI-family
    /// requests (validated: none collides with a modelled field).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Tokens a prompt image is assumed to cost when the provider reports no usage (OpenAI's price
/// of a 1024×1024 image at high detail): only used for the quota hold and estimated usage.
pub const IMAGE_TOKEN_ESTIMATE: u32 = 765;

impl ChatInput {
    /// The output bound in tokens, whichever name the client used.
    pub fn max_tokens(&self) -> Option<u32> {
        self.output_limit.map(OutputLimit::tokens)
    }

    /// Answers the client asked for (`n`, 1 when unset).
    pub fn choices(&self) -> u32 {
        self.n.unwrap_or(1).max(1)
    }

    /// System and developer messages joined (for providers with a separate system field).
    pub fn system_text(&self) -> Option<String> {
        let parts: Vec<Cow<'_, str>> = self
            .messages
            .iter()
            .filter(|m| matches!(m.role(), Role::System | Role::Developer))
            .map(Message::plain_text)
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// Rough prompt size in tokens (about 4 characters each, a fixed estimate per image), used
    /// only for the quota hold and when a provider reports no usage.
    pub fn estimated_prompt_tokens(&self) -> u32 {
        let mut chars = 0usize;
        let mut images = 0u32;
        for m in &self.messages {
            match &m.content {
                None => {}
                Some(Content::Text(t)) => chars += t.chars().count(),
                Some(Content::Parts(parts)) => {
                    for p in parts {
                        match p {
                            Part::Text(t) | Part::Refusal(t) => chars += t.chars().count(),
                            Part::Image(_) => images += 1,
                            Part::Raw(v) => chars += v.len() * 16,
                        }
                    }
                }
            }
            if let Turn::Assistant { tool_calls, .. } = &m.turn {
                chars += tool_calls
                    .iter()
                    .map(|c| c.name.len() + c.arguments.chars().count())
                    .sum::<usize>();
            }
        }
        chars += self
            .tools
            .iter()
            .map(|t| {
                t.name.len()
                    + t.description.as_ref().map_or(0, String::len)
                    + t.parameters.as_ref().map_or(0, |p| p.to_string().len())
            })
            .sum::<usize>();
        estimate_tokens(chars).saturating_add(images.saturating_mul(IMAGE_TOKEN_ESTIMATE))
    }
}

/// About 4 characters per token, at least 1 for a non-empty text.
pub fn estimate_tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

/// Tokens reported by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// The parts of those counts the provider itemised: carried to the client as reported
    /// (never charged separately: the quota and the cost count the two totals).
    pub details: UsageDetails,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            details: UsageDetails::default(),
        }
    }
}

/// Itemised token counts, each `None` when the provider did not report it (an answer never
/// claims a zero the provider did not give).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageDetails {
    /// Prompt tokens read from the provider's cache.
    pub cached_tokens: Option<u32>,
    pub prompt_audio_tokens: Option<u32>,
    /// Completion tokens spent reasoning (OpenAI's reasoning models, Gemini's thinking).
    pub reasoning_tokens: Option<u32>,
    pub completion_audio_tokens: Option<u32>,
    pub accepted_prediction_tokens: Option<u32>,
    pub rejected_prediction_tokens: Option<u32>,
}

/// A token and its log probability.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    pub bytes: Option<Vec<u8>>,
    /// The most likely alternatives (their own `top` is empty).
    pub top: Vec<TokenLogprob>,
}

/// Log probabilities of (a piece of) an answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Logprobs {
    pub content: Vec<TokenLogprob>,
    pub refusal: Vec<TokenLogprob>,
}

/// One generated answer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Choice {
    pub index: u32,
    /// `None` when the model only called tools (OpenAI's `content: null`).
    pub content: Option<String>,
    pub refusal: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    /// Normalised: `stop`, `length`, `tool_calls`, `content_filter`, or the provider's own value.
    pub finish_reason: String,
    pub logprobs: Option<Logprobs>,
}

impl Choice {
    /// Characters generated (for estimated usage).
    pub fn generated_chars(&self) -> usize {
        self.content.as_ref().map_or(0, |c| c.chars().count())
            + self.refusal.as_ref().map_or(0, |c| c.chars().count())
            + self
                .tool_calls
                .iter()
                .map(|c| c.name.len() + c.arguments.chars().count())
                .sum::<usize>()
    }
}

/// A whole answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// At least one, by index.
    pub choices: Vec<Choice>,
    pub usage: Option<Usage>,
    pub system_fingerprint: Option<String>,
}

impl Completion {
    /// One text answer (providers and the mock without tools or several choices).
    pub fn text(content: String, finish_reason: String, usage: Option<Usage>) -> Completion {
        Completion {
            choices: vec![Choice {
                index: 0,
                content: Some(content),
                finish_reason,
                ..Choice::default()
            }],
            usage,
            system_fingerprint: None,
        }
    }

    /// Characters generated over every choice.
    pub fn generated_chars(&self) -> usize {
        self.choices.iter().map(Choice::generated_chars).sum()
    }
}

/// A piece of a streamed tool call, as OpenAI streams them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolCallDelta {
    pub index: u32,
    /// On the call's first delta only.
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// One piece of a streamed answer, for one choice. A stream ends after the provider's terminal
/// marker; a stream that ends without it yields [`crate::providers::ProviderError::StreamBroken`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk {
    /// The choice it belongs to.
    pub index: u32,
    /// Text to append.
    pub delta: String,
    pub refusal: String,
    pub tool_calls: Vec<ToolCallDelta>,
    pub logprobs: Option<Logprobs>,
    /// Set on the last piece of this choice.
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub system_fingerprint: Option<String>,
}

impl Chunk {
    /// True when it carries a piece of an answer for the client (not only usage or bookkeeping).
    pub fn has_content(&self) -> bool {
        !self.delta.is_empty()
            || !self.refusal.is_empty()
            || !self.tool_calls.is_empty()
            || self.logprobs.is_some()
    }

    /// Characters of generated output it carries (for estimated usage and charging).
    pub fn generated_chars(&self) -> usize {
        self.delta.chars().count()
            + self.refusal.chars().count()
            + self
                .tool_calls
                .iter()
                .map(|c| c.name.as_ref().map_or(0, String::len) + c.arguments.chars().count())
                .sum::<usize>()
    }
}
