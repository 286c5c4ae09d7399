//! OpenAI chat completions (`POST {base}/chat/completions`), spoken by OpenAI, Groq, DeepSeek,
//! Mistral, Together, OpenRouter and self-hosted servers (vLLM, Ollama, llama.cpp).
//!
//! Every field of the request is forwarded as the client sent it: content as a string or as
//! parts, `max_tokens` and `max_completion_tokens` under their own names, tools, response
//! format, sampling fields, and the client's unmodelled fields (`extra`) merged verbatim at the
//! top level. The whole answer is read: every choice with its text, refusal, tool calls and
//! log probabilities, the system fingerprint and usage.
//!
//! Streaming: `data: {chunk}` events, each choice's delta (text, refusal, tool-call fragments,
//! log probabilities) and finish reason, a last chunk with `usage` when
//! `stream_options.include_usage` is sent (the gateway asks for it for accounting; Groq reports
//! usage in `x_groq` instead), then `data: [DONE]`.
//!
//! Embeddings (`POST {base}/embeddings`): `model`, `input` (texts, or token id lists as the
//! client sent them), `dimensions`, `user` and `encoding_format: float` (the contract carries
//! floats); the answer's `data[].embedding` by `index`, and `usage.prompt_tokens`. The family
//! has no `input_type`: the router never sends it one (and the client refuses it by name).

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    ChatInput, Choice, Chunk, ChunkStream, Completion, Content, HttpBase, Part, Provider,
    ProviderError, ToolCall, ToolCallDelta, Turn, Usage, UsageDetails, sse_events,
};
use super::{EmbedInput, Embeddings, Inputs, native::Unsupported};
use crate::chat::{Logprobs, OutputLimit, ResponseFormat, TokenLogprob, Tool, ToolChoice};

pub struct OpenAi {
    pub base: HttpBase,
    /// `{base}/chat/completions`, parsed once.
    pub endpoint: reqwest::Url,
    /// `{base}/embeddings`, parsed once.
    pub embeddings: reqwest::Url,
    pub stream_usage_option: bool,
}

/// The request body, serialised straight from borrowed data (no intermediate JSON tree: this is
/// the hot path of the most used wire format).
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "<[Tool]>::is_empty", serialize_with = "tools")]
    tools: &'a [Tool],
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "tool_choice"
    )]
    tool_choice: &'a Option<ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "response_format"
    )]
    response_format: &'a Option<ResponseFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    logit_bias: &'a std::collections::BTreeMap<String, f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    logprobs: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    /// The client's unmodelled fields, verbatim (validation refused any that collides).
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "content")]
    content: &'a Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(
        skip_serializing_if = "<[ToolCall]>::is_empty",
        serialize_with = "tool_calls"
    )]
    tool_calls: &'a [ToolCall],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

fn content<S: Serializer>(c: &Option<Content>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        None => s.serialize_none(),
        Some(Content::Text(t)) => s.serialize_str(t),
        Some(Content::Parts(parts)) => s.collect_seq(parts.iter().map(WirePart)),
    }
}

struct WirePart<'a>(&'a Part);

impl Serialize for WirePart<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Part::Raw(m) => m.serialize(s),
            Part::Text(t) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", t)?;
                m.end()
            }
            Part::Refusal(t) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "refusal")?;
                m.serialize_entry("refusal", t)?;
                m.end()
            }
            Part::Image(img) => {
                #[derive(Serialize)]
                struct Url<'a> {
                    url: &'a str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    detail: Option<&'static str>,
                }
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "image_url")?;
                m.serialize_entry(
                    "image_url",
                    &Url {
                        url: &img.url,
                        detail: img.detail.map(|d| d.as_str()),
                    },
                )?;
                m.end()
            }
        }
    }
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

fn tool_calls<S: Serializer>(calls: &[ToolCall], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Call<'a> {
        id: &'a str,
        r#type: &'static str,
        function: WireFunctionCall<'a>,
    }
    s.collect_seq(calls.iter().map(|c| Call {
        id: &c.id,
        r#type: "function",
        function: WireFunctionCall {
            name: &c.name,
            arguments: &c.arguments,
        },
    }))
}

fn tools<S: Serializer>(tools: &[Tool], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Function<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        parameters: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    }
    #[derive(Serialize)]
    struct WireTool<'a> {
        r#type: &'static str,
        function: Function<'a>,
    }
    s.collect_seq(tools.iter().map(|t| WireTool {
        r#type: "function",
        function: Function {
            name: &t.name,
            description: t.description.as_deref(),
            parameters: t.parameters.as_ref(),
            strict: t.strict,
        },
    }))
}

fn tool_choice<S: Serializer>(c: &Option<ToolChoice>, s: S) -> Result<S::Ok, S::Error> {
    match c {
        None => s.serialize_none(),
        Some(ToolChoice::None) => s.serialize_str("none"),
        Some(ToolChoice::Auto) => s.serialize_str("auto"),
        Some(ToolChoice::Required) => s.serialize_str("required"),
        Some(ToolChoice::Function(name)) => {
            #[derive(Serialize)]
            struct Name<'a> {
                name: &'a str,
            }
            let mut m = s.serialize_map(Some(2))?;
            m.serialize_entry("type", "function")?;
            m.serialize_entry("function", &Name { name })?;
            m.end()
        }
    }
}

fn response_format<S: Serializer>(f: &Option<ResponseFormat>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Schema<'a> {
        name: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    }
    let Some(f) = f else {
        return s.serialize_none();
    };
    let mut m = s.serialize_map(None)?;
    match f {
        ResponseFormat::Text => m.serialize_entry("type", "text")?,
        ResponseFormat::JsonObject => m.serialize_entry("type", "json_object")?,
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            strict,
        } => {
            m.serialize_entry("type", "json_schema")?;
            m.serialize_entry(
                "json_schema",
                &Schema {
                    name,
                    description: description.as_deref(),
                    schema: schema.as_ref(),
                    strict: *strict,
                },
            )?;
        }
    }
    m.end()
}

impl OpenAi {
    fn body<'a>(&self, model: &'a str, input: &'a ChatInput, stream: bool) -> Body<'a> {
        let (max_tokens, max_completion_tokens) = match input.output_limit {
            None => (None, None),
            Some(OutputLimit::MaxTokens(n)) => (Some(n), None),
            Some(OutputLimit::MaxCompletionTokens(n)) => (None, Some(n)),
        };
        Body {
            model,
            messages: input
                .messages
                .iter()
                .map(|m| {
                    let (tool_calls, refusal, tool_call_id): (&[ToolCall], _, _) = match &m.turn {
                        Turn::Assistant {
                            tool_calls,
                            refusal,
                        } => (tool_calls, refusal.as_deref(), None),
                        Turn::Tool { call_id } => (&[], None, Some(call_id.as_str())),
                        _ => (&[], None, None),
                    };
                    WireMessage {
                        role: m.role().as_str(),
                        content: &m.content,
                        name: m.name.as_deref(),
                        tool_calls,
                        tool_call_id,
                        refusal,
                    }
                })
                .collect(),
            stream,
            temperature: input.temperature,
            top_p: input.top_p,
            max_tokens,
            max_completion_tokens,
            stop: &input.stop,
            stream_options: (stream && self.stream_usage_option).then_some(StreamOptions {
                include_usage: true,
            }),
            tools: &input.tools,
            tool_choice: &input.tool_choice,
            parallel_tool_calls: input.parallel_tool_calls,
            response_format: &input.response_format,
            seed: input.seed,
            presence_penalty: input.presence_penalty,
            frequency_penalty: input.frequency_penalty,
            logit_bias: &input.logit_bias,
            logprobs: input.logprobs,
            top_logprobs: input.top_logprobs,
            user: input.user.as_deref(),
            n: input.n,
            reasoning_effort: input.reasoning_effort.as_deref(),
            extra: &input.extra,
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

// --- Answers -------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireCompletion {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    system_fingerprint: Option<String>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    message: Option<WireAnswer>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<WireLogprobs>,
}

#[derive(Deserialize)]
struct WireAnswer {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    #[serde(default)]
    function: WireFunction,
}

#[derive(Deserialize, Default)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireLogprobs {
    #[serde(default)]
    content: Option<Vec<WireToken>>,
    #[serde(default)]
    refusal: Option<Vec<WireToken>>,
}

#[derive(Deserialize)]
struct WireToken {
    #[serde(default)]
    token: String,
    #[serde(default)]
    logprob: f64,
    #[serde(default)]
    bytes: Option<Vec<u8>>,
    #[serde(default)]
    top_logprobs: Option<Vec<WireToken>>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<WirePromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<WireCompletionDetails>,
}

/// `usage.prompt_tokens_details` (a `null` or absent field stays absent).
#[derive(Deserialize, Default)]
struct WirePromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`.
#[derive(Deserialize, Default)]
struct WireCompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    #[serde(default)]
    audio_tokens: Option<u64>,
    #[serde(default)]
    accepted_prediction_tokens: Option<u64>,
    #[serde(default)]
    rejected_prediction_tokens: Option<u64>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Usage {
        let p = u.prompt_tokens_details.unwrap_or_default();
        let c = u.completion_tokens_details.unwrap_or_default();
        Usage {
            prompt_tokens: clamp_u32(u.prompt_tokens),
            completion_tokens: clamp_u32(u.completion_tokens),
            details: UsageDetails {
                cached_tokens: p.cached_tokens.map(clamp_u32),
                prompt_audio_tokens: p.audio_tokens.map(clamp_u32),
                reasoning_tokens: c.reasoning_tokens.map(clamp_u32),
                completion_audio_tokens: c.audio_tokens.map(clamp_u32),
                accepted_prediction_tokens: c.accepted_prediction_tokens.map(clamp_u32),
                rejected_prediction_tokens: c.rejected_prediction_tokens.map(clamp_u32),
            },
        }
    }
}

fn token(t: WireToken) -> TokenLogprob {
    TokenLogprob {
        token: t.token,
        logprob: t.logprob,
        bytes: t.bytes,
        top: t
            .top_logprobs
            .unwrap_or_default()
            .into_iter()
            .map(|a| TokenLogprob {
                token: a.token,
                logprob: a.logprob,
                bytes: a.bytes,
                top: Vec::new(),
            })
            .collect(),
    }
}

fn logprobs(l: WireLogprobs) -> Logprobs {
    Logprobs {
        content: l
            .content
            .unwrap_or_default()
            .into_iter()
            .map(token)
            .collect(),
        refusal: l
            .refusal
            .unwrap_or_default()
            .into_iter()
            .map(token)
            .collect(),
    }
}

fn clamp_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn normalise_finish(reason: &str) -> String {
    match reason {
        "stop" | "eos" | "end_turn" => "stop".into(),
        "length" => "length".into(),
        "content_filter" => "content_filter".into(),
        // Legacy servers answering a tools request with the old name.
        "tool_calls" | "function_call" => "tool_calls".into(),
        other => other.to_owned(),
    }
}

/// Parses a (non-streamed) chat completion.
pub fn parse_completion(body: &[u8]) -> Result<Completion, ProviderError> {
    let v: WireCompletion = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Malformed(format!("invalid chat completion: {e}")))?;
    if v.choices.is_empty() {
        return Err(ProviderError::Malformed(
            "no choices in chat completion".into(),
        ));
    }
    let mut choices: Vec<Choice> = v
        .choices
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let m = c.message.unwrap_or(WireAnswer {
                content: None,
                refusal: None,
                tool_calls: None,
            });
            Choice {
                index: c.index.unwrap_or(u32::try_from(i).unwrap_or(u32::MAX)),
                content: m.content,
                refusal: m.refusal,
                tool_calls: m
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| ToolCall {
                        id: t.id,
                        name: t.function.name.unwrap_or_default(),
                        arguments: t.function.arguments.unwrap_or_default(),
                    })
                    .collect(),
                finish_reason: c
                    .finish_reason
                    .as_deref()
                    .map(normalise_finish)
                    .unwrap_or_else(|| "stop".into()),
                logprobs: c.logprobs.map(logprobs),
            }
        })
        .collect();
    choices.sort_by_key(|c| c.index);
    Ok(Completion {
        choices,
        usage: v.usage.map(Usage::from),
        system_fingerprint: v.system_fingerprint.filter(|f| !f.is_empty()),
    })
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    /// Groq reports a stream's usage here.
    #[serde(default)]
    x_groq: Option<WireGroq>,
    #[serde(default)]
    system_fingerprint: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireGroq {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    logprobs: Option<WireLogprobs>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Deserialize)]
struct WireToolCallDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

/// Parses one stream event into its pieces, one per choice; usage (top-level `usage` with
/// `stream_options.include_usage`, Mistral, Together, DeepSeek, OpenRouter; Groq's
/// `x_groq.usage`) rides on the first. An event with no choice (the usage chunk) gives one
/// piece without content.
pub fn parse_chunk(data: &str) -> Result<Vec<Chunk>, ProviderError> {
    let v: WireChunk = serde_json::from_str(data)
        .map_err(|e| ProviderError::Malformed(format!("invalid JSON in stream event: {e}")))?;
    if let Some(err) = v.error {
        return Err(ProviderError::Api(err.to_string()));
    }
    let usage = v
        .usage
        .or_else(|| v.x_groq.and_then(|g| g.usage))
        .map(Usage::from);
    let fingerprint = v.system_fingerprint.filter(|f| !f.is_empty());
    let mut out: Vec<Chunk> = v
        .choices
        .into_iter()
        .map(|c| {
            let d = c.delta.unwrap_or(WireDelta {
                content: None,
                refusal: None,
                tool_calls: None,
            });
            Chunk {
                index: c.index,
                delta: d.content.unwrap_or_default(),
                refusal: d.refusal.unwrap_or_default(),
                tool_calls: d
                    .tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| {
                        let f = t.function.unwrap_or_default();
                        ToolCallDelta {
                            index: t.index,
                            id: t.id,
                            name: f.name,
                            arguments: f.arguments.unwrap_or_default(),
                        }
                    })
                    .collect(),
                logprobs: c.logprobs.map(logprobs),
                finish_reason: c.finish_reason.as_deref().map(normalise_finish),
                usage: None,
                system_fingerprint: None,
            }
        })
        .collect();
    if out.is_empty() && (usage.is_some() || fingerprint.is_some()) {
        out.push(Chunk::default());
    }
    if let Some(first) = out.first_mut() {
        first.usage = usage;
        first.system_fingerprint = fingerprint;
    }
    Ok(out)
}

/// Usage in a stream chunk given as a JSON tree (the same reading as [`parse_chunk`]'s).
pub fn stream_usage(v: &Value) -> Option<Usage> {
    let parse = |u: &Value| {
        u.get("usage")
            .filter(|u| u.is_object())
            .and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok())
            .map(Usage::from)
    };
    parse(v).or_else(|| v.get("x_groq").and_then(parse))
}

// --- Embeddings ----------------------------------------------------------------------------

#[derive(Serialize)]
struct EmbedBody<'a> {
    model: &'a str,
    input: EmbedWireInput<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    encoding_format: &'static str,
}

/// `input` as the client gave it: texts, or lists of token ids.
#[derive(Serialize)]
#[serde(untagged)]
enum EmbedWireInput<'a> {
    Texts(&'a [String]),
    Tokens(&'a [Vec<u32>]),
}

#[derive(Deserialize)]
struct WireEmbeddings {
    data: Vec<WireEmbedding>,
    #[serde(default)]
    usage: Option<WireEmbedUsage>,
}

#[derive(Deserialize)]
struct WireEmbedding {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct WireEmbedUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
}

fn embed_body<'a>(model: &'a str, input: &'a EmbedInput) -> Result<EmbedBody<'a>, Unsupported> {
    if input.input_type.is_some() {
        return Err(Unsupported::new(
            "input_type",
            "input_type is not supported by OpenAI-compatible providers",
        ));
    }
    Ok(EmbedBody {
        model,
        input: match &input.inputs {
            Inputs::Texts(t) => EmbedWireInput::Texts(t),
            Inputs::Tokens(t) => EmbedWireInput::Tokens(t),
        },
        dimensions: input.dimensions,
        user: input.user.as_deref(),
        encoding_format: "float",
    })
}

/// Parses an embeddings answer; vectors in input order (`data[].index`, position when absent).
pub fn parse_embeddings(body: &[u8]) -> Result<Embeddings, ProviderError> {
    let v: WireEmbeddings = serde_json::from_slice(body)
        .map_err(|e| ProviderError::Malformed(format!("invalid embeddings answer: {e}")))?;
    let mut data: Vec<(usize, Vec<f32>)> = v
        .data
        .into_iter()
        .enumerate()
        .map(|(i, d)| (d.index.unwrap_or(i), d.embedding))
        .collect();
    data.sort_by_key(|(i, _)| *i);
    if data.iter().enumerate().any(|(pos, (i, _))| pos != *i) {
        return Err(ProviderError::Malformed(
            "embeddings answer: data indexes are not 0..n".into(),
        ));
    }
    Ok(Embeddings {
        vectors: data.into_iter().map(|(_, e)| e).collect(),
        prompt_tokens: v.usage.and_then(|u| u.prompt_tokens).map(clamp_u32),
    })
}

impl Provider for OpenAi {
    fn embed<'a>(
        &'a self,
        model: &'a str,
        input: &'a EmbedInput,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        async move {
            let body = embed_body(model, input).map_err(ProviderError::Unsupported)?;
            let mut req = self.base.http.post(self.embeddings.clone()).json(&body);
            if !self.base.api_key.is_empty() {
                req = req.bearer_auth(&self.base.api_key);
            }
            let bytes = self.base.send_bytes(req).await?;
            parse_embeddings(&bytes)
        }
        .boxed()
    }

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
                    for chunk in parse_chunk(&ev.data)? {
                        yield chunk;
                    }
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
    use crate::chat::{Image, ImageDetail, Message};

    #[test]
    fn completion_and_stream_usage_shapes() {
        let c = parse_completion(
            br#"{"choices":[{"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        );
        let c = c.ok();
        let first = c.as_ref().map(|c| &c.choices[0]);
        assert_eq!(first.and_then(|f| f.content.as_deref()), Some("hi"));
        assert_eq!(first.map(|f| f.finish_reason.as_str()), Some("length"));
        assert_eq!(c.as_ref().and_then(|c| c.usage), Some(Usage::new(3, 4)));
        assert!(parse_completion(br#"{"choices":[]}"#).is_err());
        assert!(parse_completion(b"not json").is_err());
        let null_content = parse_completion(br#"{"choices":[{"message":{"content":null}}]}"#).ok();
        assert!(null_content.is_some_and(
            |c| c.usage.is_none() && c.choices[0].content.as_deref().unwrap_or("").is_empty()
        ));

        let groq: Value = serde_json::json!({"choices":[{"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":7,"completion_tokens":9}}});
        assert_eq!(stream_usage(&groq), Some(Usage::new(7, 9)));
        let chunks = parse_chunk(&groq.to_string()).unwrap_or_default();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].usage, Some(Usage::new(7, 9)));
        let none: Value = serde_json::json!({"choices":[{"delta":{"content":"x"}}]});
        assert_eq!(stream_usage(&none), None);
    }

    #[test]
    fn tool_calls_refusals_and_logprobs_are_read_in_full() {
        let c = parse_completion(br#"{"system_fingerprint":"fp_1","choices":[
            {"index":1,"message":{"content":"b"},"finish_reason":"stop"},
            {"index":0,"message":{"content":null,"refusal":"no","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},"finish_reason":"tool_calls",
             "logprobs":{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[{"token":"b","logprob":-1.0,"bytes":null}]}],"refusal":null}}]}"#).ok();
        let c = c.unwrap();
        assert_eq!(c.system_fingerprint.as_deref(), Some("fp_1"));
        assert_eq!(c.choices.len(), 2);
        let first = &c.choices[0];
        assert_eq!(first.index, 0);
        assert_eq!(first.content, None);
        assert_eq!(first.refusal.as_deref(), Some("no"));
        assert_eq!(first.finish_reason, "tool_calls");
        assert_eq!(
            first.tool_calls,
            vec![ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{\"a\":1}".into()
            }]
        );
        let lp = first.logprobs.clone().unwrap_or_default();
        assert_eq!(lp.content[0].bytes.as_deref(), Some(&b"a"[..]));
        assert_eq!(lp.content[0].top[0].token, "b");

        let chunks = parse_chunk(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#).unwrap_or_default();
        assert_eq!(chunks[0].tool_calls[0].id.as_deref(), Some("call_1"));
        assert_eq!(chunks[0].tool_calls[0].name.as_deref(), Some("f"));
        let chunks = parse_chunk(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a"}}]}}]}"#).unwrap_or_default();
        assert_eq!(chunks[0].tool_calls[0].id, None);
        assert_eq!(chunks[0].tool_calls[0].arguments, "{\"a");
        assert!(parse_chunk(r#"{"error":{"message":"boom"}}"#).is_err());
    }

    #[test]
    fn the_body_carries_every_field_under_its_own_name() {
        let provider = OpenAi {
            base: HttpBase {
                http: reqwest::Client::new(),
                base_url: String::new(),
                api_key: String::new(),
            },
            endpoint: reqwest::Url::parse("http://127.0.0.1:1/v1/chat/completions").unwrap(),
            embeddings: reqwest::Url::parse("http://127.0.0.1:1/v1/embeddings").unwrap(),
            stream_usage_option: true,
        };
        let mut extra = Map::new();
        extra.insert("service_tier".into(), Value::from("flex"));
        let input = ChatInput {
            messages: vec![
                Message::text(Turn::User, "plain"),
                Message {
                    turn: Turn::User,
                    content: Some(Content::Parts(vec![
                        Part::Text("look".into()),
                        Part::Image(Image {
                            url: "https://x/y.png".into(),
                            detail: Some(ImageDetail::Low),
                        }),
                    ])),
                    name: Some("ann".into()),
                },
                Message {
                    turn: Turn::Assistant {
                        tool_calls: vec![ToolCall {
                            id: "c1".into(),
                            name: "f".into(),
                            arguments: "{}".into(),
                        }],
                        refusal: None,
                    },
                    content: None,
                    name: None,
                },
                Message::text(
                    Turn::Tool {
                        call_id: "c1".into(),
                    },
                    "42",
                ),
            ],
            output_limit: Some(OutputLimit::MaxCompletionTokens(9)),
            extra,
            ..ChatInput::default()
        };
        let v = serde_json::to_value(provider.body("m", &input, true)).unwrap_or_default();
        assert_eq!(v["messages"][0]["content"], "plain");
        assert_eq!(v["messages"][1]["content"][1]["image_url"]["detail"], "low");
        assert_eq!(v["messages"][1]["name"], "ann");
        assert!(v["messages"][2].get("content").is_none());
        assert_eq!(v["messages"][2]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(v["messages"][3]["tool_call_id"], "c1");
        assert_eq!(v["max_completion_tokens"], 9);
        assert!(v.get("max_tokens").is_none());
        assert_eq!(v["service_tier"], "flex");
        assert_eq!(v["stream_options"]["include_usage"], true);
    }
}
