//! Answers in OpenAI's shapes: `chat.completion` with every choice, tool calls, refusals and log
//! probabilities, and the `chat.completion.chunk` events of a stream.

use iafactory::proto::iafactory::llm::v1 as pb;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub(super) struct TokenUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
    /// Present when the provider itemised the prompt (cached or audio tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// Present when the provider itemised the completion (reasoning, audio, predicted-output
    /// tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

/// `usage.prompt_tokens_details`: the parts the provider reported, and only those.
#[derive(Serialize, ToSchema)]
pub(super) struct PromptTokensDetails {
    /// Prompt tokens read from the provider's prompt cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u32>,
}

/// `usage.completion_tokens_details`: the parts the provider reported, and only those.
#[derive(Serialize, ToSchema)]
pub(super) struct CompletionTokensDetails {
    /// Tokens the model spent reasoning before its visible answer (included in
    /// `completion_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u32>,
}

impl From<Option<pb::TokenUsage>> for TokenUsage {
    fn from(u: Option<pb::TokenUsage>) -> Self {
        let u = u.unwrap_or_default();
        let prompt = PromptTokensDetails {
            cached_tokens: u.cached_tokens,
            audio_tokens: u.prompt_audio_tokens,
        };
        let completion = CompletionTokensDetails {
            reasoning_tokens: u.reasoning_tokens,
            audio_tokens: u.completion_audio_tokens,
            accepted_prediction_tokens: u.accepted_prediction_tokens,
            rejected_prediction_tokens: u.rejected_prediction_tokens,
        };
        TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: (prompt.cached_tokens.is_some()
                || prompt.audio_tokens.is_some())
            .then_some(prompt),
            completion_tokens_details: (completion.reasoning_tokens.is_some()
                || completion.audio_tokens.is_some()
                || completion.accepted_prediction_tokens.is_some()
                || completion.rejected_prediction_tokens.is_some())
            .then_some(completion),
        }
    }
}

/// The role of an answer.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum AssistantRole {
    Assistant,
}

/// The one tool type.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum FunctionKind {
    Function,
}

/// A function call the model made.
#[derive(Serialize, ToSchema)]
pub(super) struct ToolCallOut {
    /// `call_…`: the tool message answering it names it in `tool_call_id`.
    id: String,
    #[serde(rename = "type")]
    #[schema(inline)]
    kind: FunctionKind,
    function: FunctionCallOut,
}

#[derive(Serialize, ToSchema)]
pub(super) struct FunctionCallOut {
    name: String,
    /// JSON text exactly as the model produced it (it may be invalid JSON).
    arguments: String,
}

/// An answer of the model.
#[derive(Serialize, ToSchema)]
pub(super) struct ChoiceMessage {
    #[schema(inline)]
    role: AssistantRole,
    /// Null when the model only called tools (or refused).
    #[schema(required = true)]
    content: Option<String>,
    /// The model's refusal, if it refused.
    #[schema(required = true)]
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut>,
}

impl From<Option<pb::ChatMessage>> for ChoiceMessage {
    fn from(m: Option<pb::ChatMessage>) -> Self {
        let m = m.unwrap_or_default();
        let mut refusal = m.refusal;
        let content = match m.content {
            None => None,
            Some(pb::chat_message::Content::Text(t)) => Some(t),
            // Answers are text; parts are joined should a provider ever split them.
            Some(pb::chat_message::Content::Parts(p)) => {
                let mut text = String::new();
                for part in p.parts {
                    match part.part {
                        Some(pb::content_part::Part::Text(t)) => text.push_str(&t),
                        Some(pb::content_part::Part::Refusal(r)) => {
                            refusal.get_or_insert_with(String::new).push_str(&r);
                        }
                        _ => {}
                    }
                }
                Some(text)
            }
        };
        ChoiceMessage {
            role: AssistantRole::Assistant,
            content,
            refusal,
            tool_calls: m
                .tool_calls
                .into_iter()
                .map(|c| ToolCallOut {
                    id: c.id,
                    kind: FunctionKind::Function,
                    function: FunctionCallOut {
                        name: c.name,
                        arguments: c.arguments,
                    },
                })
                .collect(),
        }
    }
}

/// Log probabilities of an answer's tokens.
#[derive(Serialize, ToSchema)]
pub(super) struct Logprobs {
    #[schema(required = true)]
    content: Option<Vec<TokenLogprob>>,
    #[schema(required = true)]
    refusal: Option<Vec<TokenLogprob>>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct TokenLogprob {
    token: String,
    logprob: f64,
    /// The token's UTF-8 bytes.
    #[schema(required = true)]
    bytes: Option<Vec<u8>>,
    top_logprobs: Vec<TopLogprob>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct TopLogprob {
    token: String,
    logprob: f64,
    #[schema(required = true)]
    bytes: Option<Vec<u8>>,
}

fn tokens(list: Vec<pb::TokenLogprob>) -> Option<Vec<TokenLogprob>> {
    (!list.is_empty()).then(|| {
        list.into_iter()
            .map(|t| TokenLogprob {
                token: t.token,
                logprob: t.logprob,
                bytes: t.bytes,
                top_logprobs: t
                    .top_logprobs
                    .into_iter()
                    .map(|a| TopLogprob {
                        token: a.token,
                        logprob: a.logprob,
                        bytes: a.bytes,
                    })
                    .collect(),
            })
            .collect()
    })
}

impl Logprobs {
    pub(super) fn from_pb(l: Option<pb::Logprobs>) -> Option<Logprobs> {
        l.map(|l| Logprobs {
            content: tokens(l.content),
            refusal: tokens(l.refusal),
        })
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct Choice {
    index: u32,
    message: ChoiceMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter` (or the provider's own value).
    finish_reason: String,
    #[schema(required = true)]
    logprobs: Option<Logprobs>,
}

/// What the platform adds to OpenAI's object: provider, upstream model, cost, latency, attempts
/// (also sent as `x-iaf-*` headers).
#[derive(Serialize, ToSchema)]
pub(super) struct IafInfo {
    pub provider: String,
    pub upstream_model: String,
    /// The call's upstream cost in US dollars; only when the operator shows it
    /// (`SHOW_UPSTREAM_COST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub latency_ms: u64,
    pub attempts: u32,
    pub usage_estimated: bool,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
pub(super) enum CompletionObject {
    #[serde(rename = "chat.completion")]
    ChatCompletion,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ChatCompletion {
    id: String,
    #[schema(inline)]
    object: CompletionObject,
    created: i64,
    model: String,
    /// Every answer (`n` of them), by index.
    #[schema(min_items = 1)]
    choices: Vec<Choice>,
    usage: TokenUsage,
    /// The provider's backend fingerprint, when it gives one.
    #[schema(required = true)]
    system_fingerprint: Option<String>,
    iaf: IafInfo,
}

impl ChatCompletion {
    /// The answer in OpenAI's shape; the upstream cost only with `show_cost`.
    pub(super) fn from_pb(r: pb::ChatResponse, show_cost: bool) -> Self {
        let estimated = r.usage.is_some_and(|u| u.estimated);
        let choices = if r.choices.is_empty() {
            // An llm-gateway predating `choices`: its one answer.
            vec![Choice {
                index: 0,
                message: ChoiceMessage::from(r.message),
                finish_reason: r.finish_reason,
                logprobs: None,
            }]
        } else {
            r.choices
                .into_iter()
                .map(|c| Choice {
                    index: c.index,
                    message: ChoiceMessage::from(c.message),
                    finish_reason: c.finish_reason,
                    logprobs: Logprobs::from_pb(c.logprobs),
                })
                .collect()
        };
        ChatCompletion {
            id: r.id,
            object: CompletionObject::ChatCompletion,
            created: r.created,
            model: r.model,
            choices,
            usage: TokenUsage::from(r.usage),
            system_fingerprint: crate::respond::non_empty(r.system_fingerprint),
            iaf: IafInfo {
                provider: r.provider,
                upstream_model: r.upstream_model,
                cost_usd: show_cost.then_some(r.cost_usd),
                latency_ms: r.latency_ms,
                attempts: r.attempts,
                usage_estimated: estimated,
            },
        }
    }
}

/// One event of a streamed completion.
#[derive(Serialize, ToSchema)]
pub(super) struct ChatCompletionChunk<'a> {
    pub id: &'a str,
    #[schema(inline)]
    pub object: ChunkObject,
    pub created: i64,
    pub model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<&'a str>,
    /// Empty on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// With `stream_options.include_usage`: null on every chunk but the last, which has no
    /// choices and the usage of the whole answer (as OpenAI streams it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TokenUsage>)]
    pub usage: Option<Option<TokenUsage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iaf: Option<IafInfo>,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
pub(super) enum ChunkObject {
    #[serde(rename = "chat.completion.chunk")]
    ChatCompletionChunk,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    #[schema(required = true)]
    pub finish_reason: Option<String>,
    #[schema(required = true)]
    pub logprobs: Option<Logprobs>,
}

#[derive(Serialize, Default, ToSchema)]
pub(super) struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    pub role: Option<AssistantRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta>,
}

/// A piece of a streamed tool call: the first carries its id, type and name, the next ones
/// fragments of its arguments; pieces of one call share its `index`.
#[derive(Serialize, ToSchema)]
pub(super) struct ToolCallDelta {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    kind: Option<FunctionKind>,
    function: FunctionDelta,
}

#[derive(Serialize, ToSchema)]
pub(super) struct FunctionDelta {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    arguments: String,
}

impl From<pb::ToolCallDelta> for ToolCallDelta {
    fn from(d: pb::ToolCallDelta) -> Self {
        ToolCallDelta {
            index: d.index,
            // OpenAI names the type on a call's first piece, the one with its id.
            kind: d.id.is_some().then_some(FunctionKind::Function),
            id: d.id,
            function: FunctionDelta {
                name: d.name,
                arguments: d.arguments,
            },
        }
    }
}
