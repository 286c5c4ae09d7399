//! Validation of a chat request, in one place: protobuf in, the domain's [`ChatInput`] out, or
//! an error naming the faulty field as an OpenAI client writes it (`messages[2].tool_call_id`,
//! `tools[0].function.name`, `top_logprobs`), sent back in `x-iaf-param` metadata.
//!
//! Only shape and ranges are checked here; whether a route of the model can carry what the
//! request asks for is [`crate::capabilities`]' business.

use iafactory::proto::iafactory::llm::v1 as pb;
use serde_json::{Map, Value};

use crate::catalog::Policy;
use crate::chat::{
    ChatInput, Content, Image, ImageDetail, Message, OutputLimit, Part, ResponseFormat, Tool,
    ToolCall, ToolChoice, Turn,
};
use crate::embed::{EmbedInput, InputType, Inputs};
use crate::error::GatewayError;

/// Request limits (beyond the gRPC message limit).
pub const MAX_MESSAGES: usize = 256;
pub const MAX_STOP: usize = 4;
pub const MAX_STOP_BYTES: usize = 256;
/// Text of the conversation (message text, tool arguments and results, tool definitions).
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;
/// Images given inline as data URIs, in total (OpenAI's per-request image limit).
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;
pub const MAX_MAX_TOKENS: u32 = 1_000_000;
pub(super) const MAX_TOOLS: usize = 128;
pub(super) const MAX_N: u32 = 128;
pub(super) const MAX_TOP_LOGPROBS: u32 = 20;
pub(super) const MAX_LOGIT_BIAS: usize = 1024;
/// `user`, message `name`, `reasoning_effort`: short identifiers.
pub(super) const MAX_LABEL_BYTES: usize = 256;
/// Tool-call ids: the gateway's ids for Gemini calls carry the call's thought signature (see
/// `providers::gemini`), which runs to a few kilobytes.
pub(super) const MAX_TOOL_CALL_ID_BYTES: usize = 16 * 1024;

/// Inputs of one embeddings request (OpenAI's limit).
pub const MAX_EMBED_INPUTS: usize = 2048;
/// Largest `dimensions` asked (the largest shortening models make 3072-value vectors).
pub const MAX_DIMENSIONS: u32 = 4096;
/// Largest answer the gateway sends (gateway-rest takes as much): 2048 vectors of 4096 floats fit.
pub const MAX_ANSWER_BYTES: usize = iafactory::grpc::MAX_ANSWER_BYTES;
/// A token id counts as this many bytes against [`MAX_CONTENT_BYTES`] (about what a token's
/// text weighs), so token input is bounded like text input.
const TOKEN_ID_BYTES: usize = 4;

/// Top-level fields of the Chat Completions request the contract models: an `extra_json` field
/// with one of these names is refused (it would silently override the modelled value).
pub(super) const MODELLED_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "n",
    "reasoning_effort",
];

fn bad<T>(param: impl Into<String>, message: impl Into<String>) -> Result<T, GatewayError> {
    Err(GatewayError::param(param, message))
}

/// OpenAI's rule for function and schema names.
fn valid_fn_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A JSON object given as text; empty text means absent.
fn json_object(text: &str, param: &str) -> Result<Option<Value>, GatewayError> {
    if text.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(Some(v)),
        Ok(_) => bad(param, format!("{param} must be a JSON object")),
        Err(e) => bad(param, format!("{param} is not valid JSON: {e}")),
    }
}

fn label(v: &Option<String>, param: &str) -> Result<(), GatewayError> {
    match v {
        Some(s) if s.is_empty() || s.len() > MAX_LABEL_BYTES => bad(
            param,
            format!("{param} must be 1 to {MAX_LABEL_BYTES} bytes"),
        ),
        _ => Ok(()),
    }
}

fn range(v: Option<f32>, lo: f32, hi: f32, param: &str) -> Result<(), GatewayError> {
    if v.is_some_and(|x| !(x.is_finite() && (lo..=hi).contains(&x))) {
        return bad(param, format!("{param} must be between {lo} and {hi}"));
    }
    Ok(())
}

pub(super) fn policy_to_pb(p: Policy) -> pb::RoutingPolicy {
    match p {
        Policy::Fallback => pb::RoutingPolicy::Fallback,
        Policy::LowestLatency => pb::RoutingPolicy::LowestLatency,
        Policy::LowestCost => pb::RoutingPolicy::LowestCost,
    }
}

fn policy_of(v: i32) -> Result<Option<Policy>, GatewayError> {
    match pb::RoutingPolicy::try_from(v) {
        Ok(pb::RoutingPolicy::Unspecified) => Ok(None),
        Ok(pb::RoutingPolicy::Fallback) => Ok(Some(Policy::Fallback)),
        Ok(pb::RoutingPolicy::LowestLatency) => Ok(Some(Policy::LowestLatency)),
        Ok(pb::RoutingPolicy::LowestCost) => Ok(Some(Policy::LowestCost)),
        Err(_) => bad("policy", format!("unknown routing policy {v}")),
    }
}

/// Byte counters of one request.
#[derive(Default)]
struct Sizes {
    text: usize,
    images: usize,
}

fn image(img: &pb::ImageUrl, p: &str, sizes: &mut Sizes) -> Result<Image, GatewayError> {
    let url = &img.url;
    if let Some(rest) = url.strip_prefix("data:") {
        let ok_type = ["image/png", "image/jpeg", "image/gif", "image/webp"]
            .iter()
            .any(|t| rest.starts_with(&format!("{t};base64,")));
        if !ok_type {
            return bad(
                format!("{p}.url"),
                format!("{p}.url: a data URI must be data:image/(png|jpeg|gif|webp);base64,<data>"),
            );
        }
        sizes.images += url.len();
    } else if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.parse::<http::Uri>().is_err()
    {
        return bad(
            format!("{p}.url"),
            format!("{p}.url must be an http(s) URL or a data:image/...;base64, URI"),
        );
    } else {
        sizes.text += url.len();
    }
    let detail = match img.detail.as_str() {
        "" => None,
        "auto" => Some(ImageDetail::Auto),
        "low" => Some(ImageDetail::Low),
        "high" => Some(ImageDetail::High),
        other => {
            return bad(
                format!("{p}.detail"),
                format!("{p}.detail {other:?} is not one of auto, low, high"),
            );
        }
    };
    Ok(Image {
        url: url.clone(),
        detail,
    })
}

fn content(
    c: &Option<pb::chat_message::Content>,
    role: pb::Role,
    i: usize,
    sizes: &mut Sizes,
) -> Result<Option<Content>, GatewayError> {
    use pb::content_part::Part as P;
    let Some(c) = c else { return Ok(None) };
    Ok(Some(match c {
        pb::chat_message::Content::Text(t) => {
            sizes.text += t.len();
            Content::Text(t.clone())
        }
        pb::chat_message::Content::Parts(parts) => {
            if parts.parts.is_empty() {
                return bad(
                    format!("messages[{i}].content"),
                    format!("messages[{i}].content must not be an empty list"),
                );
            }
            let mut out = Vec::with_capacity(parts.parts.len());
            for (j, part) in parts.parts.iter().enumerate() {
                let p = format!("messages[{i}].content[{j}]");
                out.push(match &part.part {
                    None => return bad(p.clone(), format!("{p} has no type")),
                    Some(P::Text(t)) => {
                        sizes.text += t.len();
                        Part::Text(t.clone())
                    }
                    Some(P::ImageUrl(img)) => {
                        if role != pb::Role::User {
                            return bad(
                                p.clone(),
                                format!("{p}: image parts are for user messages only"),
                            );
                        }
                        Part::Image(image(img, &format!("{p}.image_url"), sizes)?)
                    }
                    Some(P::Refusal(t)) => {
                        if role != pb::Role::Assistant {
                            return bad(
                                p.clone(),
                                format!("{p}: refusal parts are for assistant messages only"),
                            );
                        }
                        sizes.text += t.len();
                        Part::Refusal(t.clone())
                    }
                    Some(P::RawJson(raw)) => {
                        sizes.text += raw.len();
                        match serde_json::from_str::<Value>(raw) {
                            Ok(Value::Object(m)) if m.get("type").is_some_and(Value::is_string) => {
                                Part::Raw(m)
                            }
                            _ => {
                                return bad(
                                    p.clone(),
                                    format!("{p} must be a JSON object with a string \"type\""),
                                );
                            }
                        }
                    }
                });
            }
            Content::Parts(out)
        }
    }))
}

fn message(m: &pb::ChatMessage, i: usize, sizes: &mut Sizes) -> Result<Message, GatewayError> {
    let role = match pb::Role::try_from(m.role) {
        Ok(pb::Role::Unspecified) | Err(_) => return Err(role_error(i)),
        Ok(r) => r,
    };
    if role != pb::Role::Tool && !m.tool_call_id.is_empty() {
        return bad(
            format!("messages[{i}].tool_call_id"),
            format!("messages[{i}].tool_call_id is for tool messages only"),
        );
    }
    if role != pb::Role::Assistant && !m.tool_calls.is_empty() {
        return bad(
            format!("messages[{i}].tool_calls"),
            format!("messages[{i}].tool_calls is for assistant messages only"),
        );
    }
    if role != pb::Role::Assistant && m.refusal.is_some() {
        return bad(
            format!("messages[{i}].refusal"),
            format!("messages[{i}].refusal is for assistant messages only"),
        );
    }
    label(&m.name, &format!("messages[{i}].name"))?;
    let content = content(&m.content, role, i, sizes)?;
    let turn = match role {
        pb::Role::System => Turn::System,
        pb::Role::Developer => Turn::Developer,
        pb::Role::User => Turn::User,
        pb::Role::Tool => {
            if m.tool_call_id.is_empty() || m.tool_call_id.len() > MAX_TOOL_CALL_ID_BYTES {
                return bad(
                    format!("messages[{i}].tool_call_id"),
                    format!(
                        "messages[{i}].tool_call_id is required on tool messages (1 to {MAX_TOOL_CALL_ID_BYTES} bytes)"
                    ),
                );
            }
            Turn::Tool {
                call_id: m.tool_call_id.clone(),
            }
        }
        pb::Role::Assistant => {
            let mut calls = Vec::with_capacity(m.tool_calls.len());
            for (j, c) in m.tool_calls.iter().enumerate() {
                let p = format!("messages[{i}].tool_calls[{j}]");
                if c.id.is_empty() || c.id.len() > MAX_TOOL_CALL_ID_BYTES {
                    return bad(
                        format!("{p}.id"),
                        format!("{p}.id must be 1 to {MAX_TOOL_CALL_ID_BYTES} bytes"),
                    );
                }
                if !valid_fn_name(&c.name) {
                    return bad(
                        format!("{p}.function.name"),
                        format!("{p}.function.name must be 1 to 64 letters, digits, '_' or '-'"),
                    );
                }
                sizes.text += c.arguments.len();
                calls.push(ToolCall {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    arguments: c.arguments.clone(),
                });
            }
            if let Some(r) = &m.refusal {
                sizes.text += r.len();
            }
            Turn::Assistant {
                tool_calls: calls,
                refusal: m.refusal.clone(),
            }
        }
        pb::Role::Unspecified => return Err(role_error(i)),
    };
    let empty_allowed = matches!(&turn, Turn::Assistant { tool_calls, refusal } if !tool_calls.is_empty() || refusal.is_some());
    if content.is_none() && !empty_allowed {
        return bad(
            format!("messages[{i}].content"),
            format!("messages[{i}].content is required"),
        );
    }
    Ok(Message {
        turn,
        content,
        name: m.name.clone(),
    })
}

fn role_error(i: usize) -> GatewayError {
    GatewayError::param(
        format!("messages[{i}].role"),
        format!("messages[{i}].role must be one of system, developer, user, assistant, tool"),
    )
}

fn tools(req: &pb::ChatRequest, sizes: &mut Sizes) -> Result<Vec<Tool>, GatewayError> {
    if req.tools.len() > MAX_TOOLS {
        return bad("tools", format!("at most {MAX_TOOLS} tools"));
    }
    let mut out = Vec::with_capacity(req.tools.len());
    for (i, t) in req.tools.iter().enumerate() {
        if !valid_fn_name(&t.name) {
            return bad(
                format!("tools[{i}].function.name"),
                format!("tools[{i}].function.name must be 1 to 64 letters, digits, '_' or '-'"),
            );
        }
        if out.iter().any(|o: &Tool| o.name == t.name) {
            return bad(
                format!("tools[{i}].function.name"),
                format!("tools[{i}].function.name {:?} is declared twice", t.name),
            );
        }
        sizes.text += t.name.len() + t.description.len() + t.parameters_json.len();
        out.push(Tool {
            name: t.name.clone(),
            description: (!t.description.is_empty()).then(|| t.description.clone()),
            parameters: json_object(
                &t.parameters_json,
                &format!("tools[{i}].function.parameters"),
            )?,
            strict: t.strict,
        });
    }
    Ok(out)
}

fn tool_choice(req: &pb::ChatRequest, tools: &[Tool]) -> Result<Option<ToolChoice>, GatewayError> {
    use pb::tool_choice::{Choice, Mode};
    let Some(tc) = &req.tool_choice else {
        return Ok(None);
    };
    let choice = match &tc.choice {
        Some(Choice::Mode(m)) => match Mode::try_from(*m) {
            Ok(Mode::None) => ToolChoice::None,
            Ok(Mode::Auto) => ToolChoice::Auto,
            Ok(Mode::Required) => ToolChoice::Required,
            _ => {
                return bad(
                    "tool_choice",
                    "tool_choice must be none, auto, required or a function",
                );
            }
        },
        Some(Choice::Function(name)) => {
            if !tools.iter().any(|t| &t.name == name) {
                return bad(
                    "tool_choice",
                    format!("tool_choice names function {name:?}, which is not among tools"),
                );
            }
            ToolChoice::Function(name.clone())
        }
        None => {
            return bad(
                "tool_choice",
                "tool_choice must be none, auto, required or a function",
            );
        }
    };
    if tools.is_empty() && matches!(choice, ToolChoice::Required | ToolChoice::Function(_)) {
        return bad("tool_choice", "tool_choice requires tools");
    }
    Ok(Some(choice))
}

fn response_format(req: &pb::ChatRequest) -> Result<Option<ResponseFormat>, GatewayError> {
    use pb::response_format::Format;
    let Some(rf) = &req.response_format else {
        return Ok(None);
    };
    Ok(Some(match &rf.format {
        None => {
            return bad(
                "response_format",
                "response_format.type must be text, json_object or json_schema",
            );
        }
        Some(Format::Text(_)) => ResponseFormat::Text,
        Some(Format::JsonObject(_)) => ResponseFormat::JsonObject,
        Some(Format::JsonSchema(s)) => {
            if !valid_fn_name(&s.name) {
                return bad(
                    "response_format.json_schema.name",
                    "response_format.json_schema.name must be 1 to 64 letters, digits, '_' or '-'",
                );
            }
            ResponseFormat::JsonSchema {
                name: s.name.clone(),
                description: (!s.description.is_empty()).then(|| s.description.clone()),
                schema: json_object(&s.schema_json, "response_format.json_schema.schema")?,
                strict: s.strict,
            }
        }
    }))
}

/// Unmodelled fields whose answers the contract cannot carry back (legacy `function_call`,
/// audio output, web search annotations): refused rather than answered with a part missing.
pub(super) const EXTRA_REFUSED: &[(&str, &str)] = &[
    ("functions", "legacy functions are not supported: use tools"),
    (
        "function_call",
        "legacy function_call is not supported: use tool_choice",
    ),
    ("audio", "audio output is not supported"),
    (
        "web_search_options",
        "web search (answer annotations) is not supported",
    ),
];

fn extra(text: &str) -> Result<Map<String, Value>, GatewayError> {
    if text.is_empty() {
        return Ok(Map::new());
    }
    let map = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => return bad("extra_json", "extra_json must be a JSON object"),
    };
    if let Some(k) = map.keys().find(|k| MODELLED_FIELDS.contains(&k.as_str())) {
        return bad(
            k.clone(),
            format!("{k} is a modelled field: send it in its own field, not among extra fields"),
        );
    }
    for (k, why) in EXTRA_REFUSED {
        if map.contains_key(*k) {
            return Err(GatewayError::Unsupported {
                param: (*k).to_owned(),
                message: format!("{k}: {why}"),
            });
        }
    }
    if let Some(m) = map.get("modalities")
        && m.as_array()
            .is_none_or(|a| a.iter().any(|x| x.as_str() != Some("text")))
    {
        return Err(GatewayError::Unsupported {
            param: "modalities".into(),
            message: "modalities: only [\"text\"] is supported (no audio output)".into(),
        });
    }
    Ok(map)
}

/// Checks a request and turns it into the domain's [`ChatInput`].
pub fn validate(req: &pb::ChatRequest) -> Result<(ChatInput, Option<Policy>), GatewayError> {
    if req.model.trim().is_empty() {
        return bad("model", "model is required (see ListModels)");
    }
    if req.model.len() > 128 {
        return bad("model", "model names are at most 128 bytes");
    }
    if req.messages.is_empty() {
        return bad("messages", "messages must contain at least one message");
    }
    if req.messages.len() > MAX_MESSAGES {
        return bad(
            "messages",
            format!("at most {MAX_MESSAGES} messages per request"),
        );
    }
    let mut sizes = Sizes::default();
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        messages.push(message(m, i, &mut sizes)?);
    }
    if !messages.iter().any(|m| {
        matches!(
            m.turn,
            Turn::User | Turn::Assistant { .. } | Turn::Tool { .. }
        )
    }) {
        return bad(
            "messages",
            "messages need at least one user or assistant message",
        );
    }
    range(req.temperature, 0.0, 2.0, "temperature")?;
    range(req.top_p, 0.0, 1.0, "top_p")?;
    range(req.presence_penalty, -2.0, 2.0, "presence_penalty")?;
    range(req.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
    let output_limit = match (req.max_tokens, req.max_completion_tokens) {
        (Some(_), Some(_)) => {
            return bad(
                "max_completion_tokens",
                "set at most one of max_tokens and max_completion_tokens",
            );
        }
        (Some(n), None) => Some((OutputLimit::MaxTokens(n), "max_tokens")),
        (None, Some(n)) => Some((OutputLimit::MaxCompletionTokens(n), "max_completion_tokens")),
        (None, None) => None,
    };
    if let Some((limit, param)) = output_limit
        && !(1..=MAX_MAX_TOKENS).contains(&limit.tokens())
    {
        return bad(
            param,
            format!("{param} must be between 1 and {MAX_MAX_TOKENS}"),
        );
    }
    if req.stop.len() > MAX_STOP {
        return bad("stop", format!("at most {MAX_STOP} stop sequences"));
    }
    if req
        .stop
        .iter()
        .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
    {
        return bad(
            "stop",
            format!("stop sequences must be 1 to {MAX_STOP_BYTES} bytes"),
        );
    }
    let tools = tools(req, &mut sizes)?;
    let tool_choice = tool_choice(req, &tools)?;
    let response_format = response_format(req)?;
    if req.logit_bias.len() > MAX_LOGIT_BIAS {
        return bad(
            "logit_bias",
            format!("at most {MAX_LOGIT_BIAS} logit_bias entries"),
        );
    }
    for (k, v) in &req.logit_bias {
        if k.is_empty() || k.len() > 10 || !k.bytes().all(|b| b.is_ascii_digit()) {
            return bad(
                "logit_bias",
                format!("logit_bias key {k:?} is not a token id"),
            );
        }
        if !(v.is_finite() && (-100.0..=100.0).contains(v)) {
            return bad(
                "logit_bias",
                format!("logit_bias values must be between -100 and 100 (token {k})"),
            );
        }
    }
    if let Some(t) = req.top_logprobs {
        if t > MAX_TOP_LOGPROBS {
            return bad(
                "top_logprobs",
                format!("top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}"),
            );
        }
        if req.logprobs != Some(true) {
            return bad("top_logprobs", "top_logprobs requires logprobs: true");
        }
    }
    label(&req.user, "user")?;
    if req.n.is_some_and(|n| n == 0 || n > MAX_N) {
        return bad("n", format!("n must be between 1 and {MAX_N}"));
    }
    if let Some(e) = &req.reasoning_effort
        && (e.is_empty() || e.len() > 32 || !e.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return bad(
            "reasoning_effort",
            "reasoning_effort must be a lowercase word (minimal, low, medium, high, ...)",
        );
    }
    let extra = extra(&req.extra_json)?;
    if sizes.text > MAX_CONTENT_BYTES {
        return bad(
            "messages",
            format!("messages exceed {MAX_CONTENT_BYTES} bytes in total"),
        );
    }
    if sizes.images > MAX_IMAGE_BYTES {
        return bad(
            "messages",
            format!("inline images exceed {MAX_IMAGE_BYTES} bytes in total"),
        );
    }
    let policy = policy_of(req.policy)?;
    Ok((
        ChatInput {
            messages,
            temperature: req.temperature,
            top_p: req.top_p,
            output_limit: output_limit.map(|(l, _)| l),
            stop: req.stop.clone(),
            tools,
            tool_choice,
            parallel_tool_calls: req.parallel_tool_calls,
            response_format,
            seed: req.seed,
            presence_penalty: req.presence_penalty,
            frequency_penalty: req.frequency_penalty,
            logit_bias: req
                .logit_bias
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            logprobs: req.logprobs,
            top_logprobs: req.top_logprobs,
            user: req.user.clone(),
            n: req.n,
            reasoning_effort: req.reasoning_effort.clone(),
            extra,
        },
        policy,
    ))
}

/// Checks an embeddings request and turns it into the domain's [`EmbedInput`]. Whether the
/// model is an embedding model, and whether its routes can carry `dimensions`, `input_type` or
/// token ids, is decided later (admission, routing), naming the same fields.
pub fn validate_embed(req: &pb::EmbedRequest) -> Result<EmbedInput, GatewayError> {
    if req.model.trim().is_empty() {
        return bad("model", "model is required (see ListModels)");
    }
    if req.model.len() > 128 {
        return bad("model", "model names are at most 128 bytes");
    }
    // OpenAI clients send texts and token ids under one name, `input`.
    let inputs = match (req.input.is_empty(), req.token_input.is_empty()) {
        (true, true) => return bad("input", "input is required: 1 to 2048 texts"),
        (false, false) => {
            return bad(
                "input",
                "set either input (texts) or token_input (token ids), not both",
            );
        }
        (false, true) => Inputs::Texts(req.input.clone()),
        (true, false) => Inputs::Tokens(req.token_input.iter().map(|t| t.ids.clone()).collect()),
    };
    let count = req.input.len().max(req.token_input.len());
    if count > MAX_EMBED_INPUTS {
        return bad(
            "input",
            format!("at most {MAX_EMBED_INPUTS} inputs per request, got {count}"),
        );
    }
    let bytes = match &inputs {
        Inputs::Texts(t) => {
            if let Some(i) = t.iter().position(String::is_empty) {
                return bad(format!("input[{i}]"), format!("input[{i}] is empty"));
            }
            t.iter().map(String::len).sum::<usize>()
        }
        Inputs::Tokens(t) => {
            if let Some(i) = t.iter().position(Vec::is_empty) {
                return bad(
                    format!("input[{i}]"),
                    format!("input[{i}] has no token ids"),
                );
            }
            t.iter().map(Vec::len).sum::<usize>() * TOKEN_ID_BYTES
        }
    };
    if bytes > MAX_CONTENT_BYTES {
        return bad(
            "input",
            format!("input exceeds {MAX_CONTENT_BYTES} bytes in total"),
        );
    }
    if let Some(d) = req.dimensions
        && !(1..=MAX_DIMENSIONS).contains(&d)
    {
        return bad(
            "dimensions",
            format!("dimensions must be between 1 and {MAX_DIMENSIONS}"),
        );
    }
    label(&req.user, "user")?;
    let input_type = match &req.input_type {
        None => None,
        Some(t) => Some(InputType::parse(t).ok_or_else(|| {
            GatewayError::param(
                "input_type",
                format!(
                    "input_type {t:?} is not one of search_document, search_query, classification, clustering"
                ),
            )
        })?),
    };
    Ok(EmbedInput {
        inputs,
        dimensions: req.dimensions,
        user: req.user.clone(),
        input_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use iafactory::proto::iafactory::llm::v1 as pb;

    fn msg(role: pb::Role, content: &str) -> pb::ChatMessage {
        pb::ChatMessage {
            role: role as i32,
            content: Some(pb::chat_message::Content::Text(content.into())),
            ..Default::default()
        }
    }

    #[test]
    fn validation_refuses_bad_requests_with_a_reason() {
        let ok = pb::ChatRequest {
            model: "m".into(),
            messages: vec![msg(pb::Role::System, "be brief"), msg(pb::Role::User, "hi")],
            ..Default::default()
        };
        assert!(validate(&ok).is_ok());
        let cases: Vec<(pb::ChatRequest, &str)> = vec![
            (
                pb::ChatRequest {
                    model: String::new(),
                    ..ok.clone()
                },
                "model",
            ),
            (
                pb::ChatRequest {
                    messages: vec![],
                    ..ok.clone()
                },
                "at least one",
            ),
            (
                pb::ChatRequest {
                    messages: vec![msg(pb::Role::System, "x")],
                    ..ok.clone()
                },
                "user or assistant",
            ),
            (
                pb::ChatRequest {
                    messages: vec![pb::ChatMessage {
                        role: 0,
                        ..msg(pb::Role::User, "x")
                    }],
                    ..ok.clone()
                },
                "role",
            ),
            (
                pb::ChatRequest {
                    messages: vec![pb::ChatMessage {
                        role: 42,
                        ..msg(pb::Role::User, "x")
                    }],
                    ..ok.clone()
                },
                "role",
            ),
            (
                pb::ChatRequest {
                    temperature: Some(f32::NAN),
                    ..ok.clone()
                },
                "temperature",
            ),
            (
                pb::ChatRequest {
                    temperature: Some(2.5),
                    ..ok.clone()
                },
                "temperature",
            ),
            (
                pb::ChatRequest {
                    top_p: Some(-0.1),
                    ..ok.clone()
                },
                "top_p",
            ),
            (
                pb::ChatRequest {
                    max_tokens: Some(0),
                    ..ok.clone()
                },
                "max_tokens",
            ),
            (
                pb::ChatRequest {
                    stop: vec!["a".into(); 5],
                    ..ok.clone()
                },
                "stop",
            ),
            (
                pb::ChatRequest {
                    stop: vec![String::new()],
                    ..ok.clone()
                },
                "stop",
            ),
            (
                pb::ChatRequest {
                    policy: 9,
                    ..ok.clone()
                },
                "policy",
            ),
            (
                pb::ChatRequest {
                    messages: vec![msg(pb::Role::User, "x"); MAX_MESSAGES + 1],
                    ..ok
                },
                "at most",
            ),
        ];
        for (req, needle) in cases {
            match validate(&req) {
                Err(GatewayError::BadParam { message: m, .. }) => {
                    assert!(m.contains(needle), "{m}")
                }
                other => panic!(
                    "expected InvalidArgument({needle}), got {:?}",
                    other.map(|_| ())
                ),
            }
        }
    }

    #[test]
    fn embeddings_validation_names_the_field() {
        let ok = pb::EmbedRequest {
            model: "e".into(),
            input: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        assert!(validate_embed(&ok).is_ok());
        let tokens = pb::EmbedRequest {
            input: vec![],
            token_input: vec![pb::TokenIds { ids: vec![1, 2] }],
            ..ok.clone()
        };
        assert!(matches!(
            validate_embed(&tokens).map(|i| i.inputs),
            Ok(Inputs::Tokens(t)) if t == vec![vec![1, 2]]
        ));
        let cases: Vec<(pb::EmbedRequest, &str)> = vec![
            (
                pb::EmbedRequest {
                    model: String::new(),
                    ..ok.clone()
                },
                "model",
            ),
            (
                pb::EmbedRequest {
                    input: vec![],
                    ..ok.clone()
                },
                "input",
            ),
            (
                pb::EmbedRequest {
                    token_input: vec![pb::TokenIds { ids: vec![1] }],
                    ..ok.clone()
                },
                "input",
            ),
            (
                pb::EmbedRequest {
                    input: vec!["a".into(), String::new()],
                    ..ok.clone()
                },
                "input[1]",
            ),
            (
                pb::EmbedRequest {
                    input: vec![],
                    token_input: vec![pb::TokenIds { ids: vec![] }],
                    ..ok.clone()
                },
                "input[0]",
            ),
            (
                pb::EmbedRequest {
                    input: vec!["a".into(); MAX_EMBED_INPUTS + 1],
                    ..ok.clone()
                },
                "input",
            ),
            (
                pb::EmbedRequest {
                    input: vec!["a".repeat(600 * 1024), "b".repeat(600 * 1024)],
                    ..ok.clone()
                },
                "input",
            ),
            (
                pb::EmbedRequest {
                    dimensions: Some(0),
                    ..ok.clone()
                },
                "dimensions",
            ),
            (
                pb::EmbedRequest {
                    dimensions: Some(MAX_DIMENSIONS + 1),
                    ..ok.clone()
                },
                "dimensions",
            ),
            (
                pb::EmbedRequest {
                    user: Some(String::new()),
                    ..ok.clone()
                },
                "user",
            ),
            (
                pb::EmbedRequest {
                    input_type: Some("query".into()),
                    ..ok
                },
                "input_type",
            ),
        ];
        for (req, want) in cases {
            match validate_embed(&req) {
                Err(GatewayError::BadParam { param, .. }) => assert_eq!(param, want),
                other => panic!(
                    "expected a refusal naming {want}, got {:?}",
                    other.map(|_| ())
                ),
            }
        }
    }
}
