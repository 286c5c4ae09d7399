//! The Chat Completions request as OpenAI's API takes it, and its translation to llm-gateway's
//! `ChatRequest`.
//!
//! Nothing the client sent may vanish: a top-level field the contract does not model goes
//! verbatim into `extra_json` (llm-gateway forwards it to the OpenAI family and refuses it,
//! naming it, elsewhere); an unknown field inside an object the contract models is refused with
//! a 400 whose `param` is its path (`messages[0].foo`); a content part the contract does not
//! model, or one with fields it does not model, travels whole as a raw part. Ranges and
//! cross-field rules are llm-gateway's (one set of rules, its `x-iaf-param` names the field);
//! the edge only checks the shapes it has to translate.

use std::collections::BTreeMap;

use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as pb;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};

use crate::error::ApiError;
use crate::schema::null;

/// A refusal naming the field at fault.
pub(super) fn bad(param: impl Into<String>, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message)
        .openai()
        .with_param(param)
}

/// OpenAI's Chat Completions request. Every field of OpenAI's API is accepted: the ones listed
/// here are carried to every provider that can take them (and refused, naming them, by a model
/// none of whose routes can); any other top-level field is forwarded verbatim to the
/// OpenAI-compatible providers and refused for the others.
#[derive(Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// Public model name (see `/v1/models`).
    #[schema(min_length = 1, max_length = 128)]
    model: String,
    #[schema(min_items = 1, max_items = 256)]
    messages: Vec<MessageIn>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    temperature: Option<f32>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    top_p: Option<f32>,
    /// Upper bound on generated tokens. At most one of `max_tokens` and `max_completion_tokens`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    max_tokens: Option<u32>,
    /// OpenAI's newer bound (reasoning tokens included), sent as such, never rewritten.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    #[schema(schema_with = stop_schema)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: Option<bool>,
    /// Only with `"stream": true`.
    #[serde(default)]
    #[schema(inline)]
    stream_options: Option<StreamOptions>,
    /// How many answers to generate (above 1 needs a route that can).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 128)]
    n: Option<u32>,
    /// Functions the model may call.
    #[serde(default)]
    #[schema(max_items = 128)]
    tools: Option<Vec<ToolIn>>,
    #[serde(default)]
    #[schema(schema_with = tool_choice_schema)]
    tool_choice: Option<ToolChoiceIn>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    #[schema(inline)]
    response_format: Option<ResponseFormatIn>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    presence_penalty: Option<f32>,
    #[serde(default)]
    #[schema(minimum = -2, maximum = 2)]
    frequency_penalty: Option<f32>,
    /// Token id (decimal text) → bias from -100 to 100.
    #[serde(default)]
    logit_bias: Option<BTreeMap<String, f32>>,
    #[serde(default)]
    logprobs: Option<bool>,
    /// 0 to 20; needs `"logprobs": true`.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 20)]
    top_logprobs: Option<u32>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    user: Option<String>,
    /// `minimal`, `low`, `medium`, `high`, ... (reasoning models).
    #[serde(default)]
    reasoning_effort: Option<String>,
    /// IAFactory extension: the routing policy for this call.
    #[serde(default)]
    #[schema(schema_with = routing_schema)]
    routing: Option<String>,
    /// Any other field of OpenAI's API (`service_tier`, `metadata`, `store`, `prediction`,
    /// `modalities`, `verbosity`, ...): forwarded verbatim to OpenAI-compatible providers,
    /// refused (400 `unsupported_parameter` naming it) for the others. The legacy
    /// `functions` / `function_call`, audio output and web search are refused everywhere, since
    /// their answers cannot be carried back.
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// Options of a streamed answer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    /// A last chunk with the usage and no choices, before `data: [DONE]`.
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// `routing`'s schema, written out because the derive cannot name an empty-string value: the
/// field is read as a string so an unknown policy gets its own message, and `""` or `default`
/// mean the model's own policy.
fn routing_schema() -> Schema {
    let values = ["fallback", "lowest_latency", "lowest_cost", "default", ""];
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            values
                .into_iter()
                .map(serde_json::Value::from)
                .chain([serde_json::Value::Null]),
        ))
        .description(Some(
            "IAFactory extension: the routing policy for this call.",
        ))
        .build()
        .into()
}

/// [`Stop`]'s schema, written out because the derive cannot bound a variant's list: one stop
/// sequence or up to four.
fn stop_schema() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    OneOfBuilder::new()
        .item(string())
        .item(ArrayBuilder::new().items(string()).max_items(Some(4)))
        .item(null())
        .build()
        .into()
}

/// One message of the conversation. Fields not listed are refused (400 naming them).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MessageIn {
    #[schema(inline, value_type = Role)]
    role: String,
    /// Text, or a list of parts (`text`, `image_url`, `refusal`; any other part type, or a part
    /// with more fields, is forwarded whole to OpenAI-compatible providers and refused by the
    /// others). Null or absent on an assistant message carrying only tool calls.
    #[serde(default)]
    #[schema(schema_with = content_schema)]
    content: Option<Value>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    /// Assistant messages: the tool calls the model made.
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallIn>>,
    /// Tool messages: the call answered.
    #[serde(default)]
    tool_call_id: Option<String>,
    /// Assistant messages: a refusal the model gave.
    #[serde(default)]
    refusal: Option<String>,
}

// The roles a message may have (documentation only: the field is read as a string so an
// unsupported one gets its own message).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// `content`'s schema: a string, null, or a list of parts; parts other than text, image_url
/// and refusal are objects with a `type` (anyOf: a part may match several shapes).
fn content_schema() -> Schema {
    let string = |name: &str| {
        (
            name.to_owned(),
            ObjectBuilder::new().schema_type(Type::String),
        )
    };
    let part = |kind: &str, field: (String, ObjectBuilder)| {
        ObjectBuilder::new()
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([kind])),
            )
            .required("type")
            .property(field.0.clone(), field.1)
            .required(field.0)
    };
    let image = ObjectBuilder::new()
        .property("url", ObjectBuilder::new().schema_type(Type::String))
        .required("url")
        .property(
            "detail",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["auto", "low", "high"])),
        );
    let other = ObjectBuilder::new()
        .property("type", ObjectBuilder::new().schema_type(Type::String))
        .required("type");
    let parts = AnyOfBuilder::new()
        .item(part("text", string("text")))
        .item(
            ObjectBuilder::new()
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["image_url"])),
                )
                .required("type")
                .property("image_url", image)
                .required("image_url"),
        )
        .item(part("refusal", string("refusal")))
        .item(other);
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ArrayBuilder::new().items(parts).min_items(Some(1)))
        .item(null())
        .build()
        .into()
}

/// A tool call of an earlier assistant turn.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ToolCallIn {
    id: String,
    #[serde(rename = "type", default)]
    #[schema(inline, value_type = Option<FunctionType>)]
    kind: Option<String>,
    function: FunctionCallIn,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FunctionCallIn {
    name: String,
    /// The arguments as JSON text, as the model produced them.
    arguments: String,
}

// The one tool type (documentation only: read as a string so another gets its own message).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum FunctionType {
    Function,
}

/// A function the model may call.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ToolIn {
    #[serde(rename = "type")]
    #[schema(inline, value_type = FunctionType)]
    kind: String,
    function: FunctionIn,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct FunctionIn {
    /// Letters, digits, `_` and `-`, at most 64.
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// A JSON Schema object.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// `none`, `auto`, `required`, or `{"type":"function","function":{"name":…}}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum ToolChoiceIn {
    Mode(String),
    Named(NamedToolChoice),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedToolChoice {
    #[serde(rename = "type")]
    kind: String,
    function: NamedFunction,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedFunction {
    name: String,
}

fn tool_choice_schema() -> Schema {
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["none", "auto", "required"])),
        )
        .item(
            ObjectBuilder::new()
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["function"])),
                )
                .required("type")
                .property(
                    "function",
                    ObjectBuilder::new()
                        .property("name", ObjectBuilder::new().schema_type(Type::String))
                        .required("name"),
                )
                .required("function"),
        )
        .item(null())
        .build()
        .into()
}

/// The shape of the answer.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ResponseFormatIn {
    // Struct variants, even empty: serde would let a unit variant ignore extra fields.
    Text {},
    JsonObject {},
    JsonSchema { json_schema: JsonSchemaIn },
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct JsonSchemaIn {
    /// Letters, digits, `_` and `-`, at most 64.
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// What the handler needs besides the gRPC request.
pub struct Translated {
    pub request: pb::ChatRequest,
    pub stream: bool,
    pub include_usage: bool,
}

/// A JSON value as text, for the contract's JSON-text fields.
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn content(v: Option<Value>, i: usize) -> Result<Option<pb::chat_message::Content>, ApiError> {
    use pb::chat_message::Content;
    Ok(match v {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => Some(Content::Text(t)),
        Some(Value::Array(parts)) => Some(Content::Parts(pb::ContentParts {
            parts: parts
                .into_iter()
                .enumerate()
                .map(|(j, p)| part(p, &format!("messages[{i}].content[{j}]")))
                .collect::<Result<_, _>>()?,
        })),
        Some(_) => {
            return Err(bad(
                format!("messages[{i}].content"),
                format!("messages[{i}].content must be a string, a list of content parts or null."),
            ));
        }
    })
}

/// True when `m` has exactly the keys listed (the shape the contract models).
fn only_keys(m: &Map<String, Value>, keys: &[&str]) -> bool {
    m.keys().all(|k| keys.contains(&k.as_str()))
}

fn part(v: Value, p: &str) -> Result<pb::ContentPart, ApiError> {
    use pb::content_part::Part;
    let Value::Object(m) = v else {
        return Err(bad(p, format!("{p} must be an object with a \"type\".")));
    };
    let Some(kind) = m.get("type").and_then(Value::as_str) else {
        return Err(bad(
            format!("{p}.type"),
            format!("{p}.type is required (text, image_url, ...)."),
        ));
    };
    let string = |field: &str| -> Result<String, ApiError> {
        match m.get(field) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(bad(
                format!("{p}.{field}"),
                format!("{p}.{field} is required and must be a string."),
            )),
        }
    };
    let modelled = match kind {
        "text" => {
            let text = string("text")?;
            only_keys(&m, &["type", "text"]).then_some(Part::Text(text))
        }
        "refusal" => {
            let refusal = string("refusal")?;
            only_keys(&m, &["type", "refusal"]).then_some(Part::Refusal(refusal))
        }
        "image_url" => {
            let Some(Value::Object(img)) = m.get("image_url") else {
                return Err(bad(
                    format!("{p}.image_url"),
                    format!("{p}.image_url must be an object with a url."),
                ));
            };
            let Some(Value::String(url)) = img.get("url") else {
                return Err(bad(
                    format!("{p}.image_url.url"),
                    format!("{p}.image_url.url is required and must be a string."),
                ));
            };
            let detail = match img.get("detail") {
                None | Some(Value::Null) => Some(String::new()),
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => {
                    return Err(bad(
                        format!("{p}.image_url.detail"),
                        format!("{p}.image_url.detail must be auto, low or high."),
                    ));
                }
            };
            (only_keys(&m, &["type", "image_url"]) && only_keys(img, &["url", "detail"]))
                .then_some(detail)
                .flatten()
                .map(|detail| {
                    Part::ImageUrl(pb::ImageUrl {
                        url: url.clone(),
                        detail,
                    })
                })
        }
        _ => None,
    };
    // Another part type (input_audio, file, ...), or a known one with fields the contract does
    // not model (prompt_cache_breakpoint, ...): carried whole, never trimmed.
    let part = modelled.unwrap_or_else(|| Part::RawJson(json_text(&Value::Object(m))));
    Ok(pb::ContentPart { part: Some(part) })
}

fn message(m: MessageIn, i: usize) -> Result<pb::ChatMessage, ApiError> {
    let role = match m.role.as_str() {
        "system" => pb::Role::System,
        "developer" => pb::Role::Developer,
        "user" => pb::Role::User,
        "assistant" => pb::Role::Assistant,
        "tool" => pb::Role::Tool,
        "function" => {
            return Err(ApiError::new(
                ErrorCode::UnsupportedParameter,
                format!(
                    "messages[{i}].role: legacy function messages are not supported; use tool messages (role \"tool\" with tool_call_id)."
                ),
            )
            .openai()
            .with_param(format!("messages[{i}].role")));
        }
        other => {
            return Err(bad(
                format!("messages[{i}].role"),
                format!(
                    "messages[{i}].role {other:?} is not one of system, developer, user, assistant, tool."
                ),
            ));
        }
    };
    let mut tool_calls = Vec::new();
    for (j, c) in m.tool_calls.into_iter().flatten().enumerate() {
        if c.kind.as_deref().is_some_and(|k| k != "function") {
            return Err(bad(
                format!("messages[{i}].tool_calls[{j}].type"),
                format!("messages[{i}].tool_calls[{j}].type must be \"function\"."),
            ));
        }
        tool_calls.push(pb::ToolCall {
            id: c.id,
            name: c.function.name,
            arguments: c.function.arguments,
        });
    }
    Ok(pb::ChatMessage {
        role: role as i32,
        content: content(m.content, i)?,
        name: m.name,
        tool_calls,
        tool_call_id: m.tool_call_id.unwrap_or_default(),
        refusal: m.refusal,
    })
}

fn tool(t: ToolIn, i: usize) -> Result<pb::Tool, ApiError> {
    if t.kind != "function" {
        return Err(ApiError::new(
            ErrorCode::UnsupportedParameter,
            format!(
                "tools[{i}].type {:?} is not supported: only function tools are.",
                t.kind
            ),
        )
        .openai()
        .with_param(format!("tools[{i}].type")));
    }
    Ok(pb::Tool {
        name: t.function.name,
        description: t.function.description.unwrap_or_default(),
        parameters_json: t
            .function
            .parameters
            .filter(|p| !p.is_null())
            .map(|p| json_text(&p))
            .unwrap_or_default(),
        strict: t.function.strict,
    })
}

fn tool_choice(c: ToolChoiceIn) -> Result<pb::ToolChoice, ApiError> {
    use pb::tool_choice::{Choice, Mode};
    let choice = match c {
        ToolChoiceIn::Mode(m) => Choice::Mode(match m.as_str() {
            "none" => Mode::None,
            "auto" => Mode::Auto,
            "required" => Mode::Required,
            other => {
                return Err(bad(
                    "tool_choice",
                    format!("tool_choice {other:?} is not one of none, auto, required."),
                ));
            }
        } as i32),
        ToolChoiceIn::Named(n) => {
            if n.kind != "function" {
                return Err(bad(
                    "tool_choice.type",
                    "tool_choice.type must be \"function\".",
                ));
            }
            Choice::Function(n.function.name)
        }
    };
    Ok(pb::ToolChoice {
        choice: Some(choice),
    })
}

fn response_format(f: ResponseFormatIn) -> pb::ResponseFormat {
    use pb::response_format::Format;
    pb::ResponseFormat {
        format: Some(match f {
            ResponseFormatIn::Text {} => Format::Text(pb::Empty {}),
            ResponseFormatIn::JsonObject {} => Format::JsonObject(pb::Empty {}),
            ResponseFormatIn::JsonSchema { json_schema: s } => Format::JsonSchema(pb::JsonSchema {
                name: s.name,
                description: s.description.unwrap_or_default(),
                schema_json: s
                    .schema
                    .filter(|v| !v.is_null())
                    .map(|v| json_text(&v))
                    .unwrap_or_default(),
                strict: s.strict,
            }),
        }),
    }
}

/// The gRPC request for an OpenAI request (shapes checked here, values by llm-gateway).
pub fn translate(input: ChatCompletionRequest) -> Result<Translated, ApiError> {
    let stream = input.stream.unwrap_or(false);
    if input.stream_options.is_some() && !stream {
        return Err(bad(
            "stream_options",
            "stream_options is only allowed when stream is true.",
        ));
    }
    let messages = input
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| message(m, i))
        .collect::<Result<_, _>>()?;
    let tools = input
        .tools
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| tool(t, i))
        .collect::<Result<_, _>>()?;
    let policy = match input.routing.as_deref() {
        None | Some("" | "default") => pb::RoutingPolicy::Unspecified,
        Some("fallback") => pb::RoutingPolicy::Fallback,
        Some("lowest_latency") => pb::RoutingPolicy::LowestLatency,
        Some("lowest_cost") => pb::RoutingPolicy::LowestCost,
        Some(other) => {
            return Err(bad(
                "routing",
                format!("routing {other:?} is not one of fallback, lowest_latency, lowest_cost."),
            ));
        }
    };
    let stop = match input.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    let extra_json = if input.extra.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&input.extra).unwrap_or_default()
    };
    Ok(Translated {
        request: pb::ChatRequest {
            model: input.model,
            messages,
            temperature: input.temperature,
            top_p: input.top_p,
            max_tokens: input.max_tokens,
            max_completion_tokens: input.max_completion_tokens,
            stop,
            policy: policy as i32,
            tools,
            tool_choice: input.tool_choice.map(tool_choice).transpose()?,
            parallel_tool_calls: input.parallel_tool_calls,
            response_format: input.response_format.map(response_format),
            seed: input.seed,
            presence_penalty: input.presence_penalty,
            frequency_penalty: input.frequency_penalty,
            logit_bias: input.logit_bias.unwrap_or_default().into_iter().collect(),
            logprobs: input.logprobs,
            top_logprobs: input.top_logprobs,
            user: input.user,
            n: input.n,
            reasoning_effort: input.reasoning_effort,
            extra_json,
        },
        stream,
        include_usage: input
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}
