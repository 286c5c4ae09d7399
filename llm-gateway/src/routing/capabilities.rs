//! Capability-aware routing: what a request needs, and which routes can carry it.
//!
//! A route carries a need when both hold:
//! - its catalogue entry states the capability (tools, vision, json_object, json_schema,
//!   logprobs, multiple_choices, reasoning) — the model can do it;
//! - its provider's client can put it on the wire — the OpenAI-family client carries
//!   everything; the native clients (Anthropic, Gemini, Cohere) what their translations carry
//!   ([`wire_carries`]; a field a translation still cannot take is refused by the client itself,
//!   naming it, and the router tries the next route); the offline mock carries what it
//!   implements (see [`crate::providers::mock`]).
//!
//! Embeddings requests have their own needs ([`embed_requirements`]): token ids as input (the
//! OpenAI family), `dimensions` (routes the catalogue says can shorten), `input_type` (not the
//! OpenAI family, which has no such field).
//!
//! A request goes only to routes carrying all its needs; when none of the model's configured
//! routes does, the call is refused with `unsupported_parameter` naming the field: never sent
//! somewhere that would drop it.

use std::fmt::Write as _;

use crate::catalog::Capabilities;
use crate::chat::{ChatInput, Content, Part, ResponseFormat, Turn};
use crate::embed::{EmbedInput, Inputs};
use crate::error::GatewayError;

/// Something a request asks for that not every route can carry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Need {
    Tools,
    Vision,
    JsonObject,
    JsonSchema,
    Logprobs,
    MultipleChoices,
    Reasoning,
    /// A field only the OpenAI family takes (`logit_bias`, unmodelled fields and content parts).
    OpenAiOnly,
    /// A field the native clients do not translate yet (`seed`, penalties, `user`, `name`, ...).
    Field,
    Temperature(f32),
    TopP(f32),
    /// Embeddings: token ids instead of texts.
    TokenInput,
    /// Embeddings: shortened vectors.
    Dimensions,
    /// Embeddings: what the vectors are for.
    InputType,
}

impl Need {
    /// How the refusal names it.
    fn label(self) -> String {
        match self {
            Need::Tools => "tools (function calling)".into(),
            Need::Vision => "vision (image inputs)".into(),
            Need::JsonObject => "response_format json_object".into(),
            Need::JsonSchema => "response_format json_schema (structured outputs)".into(),
            Need::Logprobs => "logprobs".into(),
            Need::MultipleChoices => "n above 1 (several choices)".into(),
            Need::Reasoning => "reasoning_effort".into(),
            Need::OpenAiOnly => "this field (OpenAI-compatible providers only)".into(),
            Need::Field => "this field".into(),
            Need::Temperature(t) => format!("temperature {t}"),
            Need::TopP(p) => format!("top_p {p}"),
            Need::TokenInput => "token ids as input (OpenAI-compatible providers only)".into(),
            Need::Dimensions => "dimensions (shortened vectors)".into(),
            Need::InputType => "input_type".into(),
        }
    }
}

/// One need and the request field it comes from (OpenAI param path).
#[derive(Debug, Clone, PartialEq)]
pub struct Requirement {
    pub need: Need,
    pub param: String,
}

fn req(v: &mut Vec<Requirement>, need: Need, param: impl Into<String>) {
    v.push(Requirement {
        need,
        param: param.into(),
    });
}

/// What `input` needs beyond a plain text conversation, in request order. Empty for the
/// common case (no allocation on the hot path).
pub fn requirements(input: &ChatInput) -> Vec<Requirement> {
    let mut v = Vec::new();
    for (i, m) in input.messages.iter().enumerate() {
        if m.name.is_some() {
            req(&mut v, Need::Field, format!("messages[{i}].name"));
        }
        match &m.turn {
            Turn::Assistant {
                tool_calls,
                refusal,
            } => {
                if !tool_calls.is_empty() {
                    req(&mut v, Need::Tools, format!("messages[{i}].tool_calls"));
                }
                if refusal.is_some() {
                    req(&mut v, Need::Field, format!("messages[{i}].refusal"));
                }
            }
            Turn::Tool { .. } => req(&mut v, Need::Tools, format!("messages[{i}].tool_call_id")),
            _ => {}
        }
        if let Some(Content::Parts(parts)) = &m.content {
            for (j, p) in parts.iter().enumerate() {
                match p {
                    Part::Text(_) => {}
                    Part::Image(_) => {
                        req(&mut v, Need::Vision, format!("messages[{i}].content[{j}]"))
                    }
                    Part::Refusal(_) => {
                        req(&mut v, Need::Field, format!("messages[{i}].content[{j}]"))
                    }
                    Part::Raw(_) => req(
                        &mut v,
                        Need::OpenAiOnly,
                        format!("messages[{i}].content[{j}]"),
                    ),
                }
            }
        }
    }
    if let Some(t) = input.temperature {
        req(&mut v, Need::Temperature(t), "temperature");
    }
    if let Some(p) = input.top_p {
        req(&mut v, Need::TopP(p), "top_p");
    }
    if !input.tools.is_empty() {
        req(&mut v, Need::Tools, "tools");
    }
    if input.tool_choice.is_some() {
        req(&mut v, Need::Tools, "tool_choice");
    }
    if input.parallel_tool_calls.is_some() {
        req(&mut v, Need::Tools, "parallel_tool_calls");
    }
    match &input.response_format {
        None => {}
        // Text is what every route answers anyway.
        Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => req(&mut v, Need::JsonObject, "response_format"),
        Some(ResponseFormat::JsonSchema { .. }) => req(&mut v, Need::JsonSchema, "response_format"),
    }
    if input.seed.is_some() {
        req(&mut v, Need::Field, "seed");
    }
    if input.presence_penalty.is_some() {
        req(&mut v, Need::Field, "presence_penalty");
    }
    if input.frequency_penalty.is_some() {
        req(&mut v, Need::Field, "frequency_penalty");
    }
    if !input.logit_bias.is_empty() {
        req(&mut v, Need::OpenAiOnly, "logit_bias");
    }
    // `logprobs: false` is what every route does anyway.
    if input.logprobs == Some(true) {
        req(&mut v, Need::Logprobs, "logprobs");
    }
    if input.top_logprobs.is_some() {
        req(&mut v, Need::Logprobs, "top_logprobs");
    }
    if input.user.is_some() {
        req(&mut v, Need::Field, "user");
    }
    // `n: 1` is what every route does anyway.
    if input.n.is_some_and(|n| n > 1) {
        req(&mut v, Need::MultipleChoices, "n");
    }
    if input.reasoning_effort.is_some() {
        req(&mut v, Need::Reasoning, "reasoning_effort");
    }
    for k in input.extra.keys() {
        req(&mut v, Need::OpenAiOnly, k.clone());
    }
    v
}

/// What an embeddings request needs beyond texts, in request order.
pub fn embed_requirements(input: &EmbedInput) -> Vec<Requirement> {
    let mut v = Vec::new();
    if matches!(input.inputs, Inputs::Tokens(_)) {
        req(&mut v, Need::TokenInput, "input");
    }
    if input.dimensions.is_some() {
        req(&mut v, Need::Dimensions, "dimensions");
    }
    if input.input_type.is_some() {
        req(&mut v, Need::InputType, "input_type");
    }
    // Carried by the OpenAI family; the native translations refuse it by name (the router then
    // tries the next route).
    if input.user.is_some() {
        req(&mut v, Need::Field, "user");
    }
    v
}

/// The capabilities of the offline mock (what [`crate::providers::mock`] implements).
pub const MOCK_CAPABILITIES: Capabilities = Capabilities {
    tools: true,
    vision: false,
    json_object: true,
    json_schema: false,
    logprobs: false,
    multiple_choices: false,
    reasoning: false,
    dimensions: true,
    context_length: 0,
    max_output_tokens: 0,
};

/// Can the client of wire format `kind` put `need` on the wire?
pub fn wire_carries(kind: &str, need: Need) -> bool {
    match (kind, need) {
        // The OpenAI family has no input_type; only it (and the mock, which hashes them) takes
        // token ids; every embeddings wire but Anthropic's (none) takes dimensions.
        ("openai", Need::InputType) => return false,
        ("openai" | "mock", Need::TokenInput | Need::Dimensions | Need::InputType) => return true,
        ("cohere" | "gemini", Need::Dimensions | Need::InputType) => return true,
        (_, Need::TokenInput | Need::Dimensions | Need::InputType) => return false,
        _ => {}
    }
    match kind {
        "openai" => true,
        // Sampling and identity fields change nothing in a canned answer: accepted. What
        // the mock does not implement (images, schemas, logprobs, several choices, reasoning,
        // OpenAI-only fields) is refused.
        "mock" => matches!(
            need,
            Need::Tools | Need::JsonObject | Need::Field | Need::Temperature(_) | Need::TopP(_)
        ),
        // Anthropic's temperature range is 0..1 (it was silently capped before). `Field`:
        // the translation carries `user` and refuses the others by name
        // (`ProviderError::Unsupported`: the router then tries the next route).
        "anthropic" => match need {
            Need::Temperature(t) => t <= 1.0,
            Need::TopP(_) | Need::Tools | Need::Vision | Need::JsonSchema | Need::Field => true,
            _ => false,
        },
        "gemini" => matches!(
            need,
            Need::Temperature(_)
                | Need::TopP(_)
                | Need::Tools
                | Need::Vision
                | Need::JsonObject
                | Need::JsonSchema
                | Need::MultipleChoices
                | Need::Field
        ),
        // Cohere: temperature 0..1 and p 0.01..0.99 (both were silently clamped before).
        "cohere" => match need {
            Need::Temperature(t) => t <= 1.0,
            Need::TopP(p) => (0.01..=0.99).contains(&p),
            Need::Tools | Need::Vision | Need::JsonObject | Need::JsonSchema | Need::Field => true,
            _ => false,
        },
        _ => false,
    }
}

/// Does the catalogue state the capability `need` asks for? (Fields that are not model
/// capabilities only depend on the wire.)
pub fn capable(caps: &Capabilities, need: Need) -> bool {
    match need {
        Need::Tools => caps.tools,
        Need::Vision => caps.vision,
        Need::JsonObject => caps.json_object,
        Need::JsonSchema => caps.json_schema,
        Need::Logprobs => caps.logprobs,
        Need::MultipleChoices => caps.multiple_choices,
        Need::Reasoning => caps.reasoning,
        Need::Dimensions => caps.dimensions,
        Need::TokenInput | Need::InputType => true,
        Need::OpenAiOnly | Need::Field | Need::Temperature(_) | Need::TopP(_) => true,
    }
}

/// The capabilities a route really offers: the catalogue's, where its client can carry them.
pub fn effective(kind: &str, caps: &Capabilities) -> Capabilities {
    let both = |need: Need| capable(caps, need) && wire_carries(kind, need);
    Capabilities {
        tools: both(Need::Tools),
        vision: both(Need::Vision),
        json_object: both(Need::JsonObject),
        json_schema: both(Need::JsonSchema),
        logprobs: both(Need::Logprobs),
        multiple_choices: both(Need::MultipleChoices),
        reasoning: both(Need::Reasoning),
        ..*caps
    }
}

/// The first requirement a route of wire `kind` with `caps` cannot carry.
pub fn first_unmet<'r>(
    kind: &str,
    caps: &Capabilities,
    reqs: &'r [Requirement],
) -> Option<&'r Requirement> {
    reqs.iter()
        .find(|r| !(capable(caps, r.need) && wire_carries(kind, r.need)))
}

/// The refusal when no configured route of `model` carries `reqs`: names the first field no
/// route carries (or, when each is carried somewhere but never all together, the first field
/// the first route lacks).
pub fn refusal<'a>(
    model: &str,
    routes: impl Iterator<Item = (&'a str, &'a str, Capabilities)> + Clone,
    reqs: &[Requirement],
) -> GatewayError {
    let carried_somewhere = |r: &Requirement| {
        routes
            .clone()
            .any(|(kind, _, caps)| capable(&caps, r.need) && wire_carries(kind, r.need))
    };
    let (r, together) = match reqs.iter().find(|r| !carried_somewhere(r)) {
        Some(r) => (r, false),
        None => match routes
            .clone()
            .find_map(|(kind, _, caps)| first_unmet(kind, &caps, reqs))
        {
            Some(r) => (r, true),
            None => {
                return GatewayError::Unavailable(format!(
                    "no configured provider serves model {model:?}"
                ));
            }
        },
    };
    let mut message = format!(
        "model {model:?}: no configured route supports {} (param {})",
        r.need.label(),
        r.param
    );
    if together {
        message.push_str(" together with the rest of this request");
    }
    let providers: Vec<&str> = routes.map(|(_, name, _)| name).collect();
    let _ = write!(message, "; routes tried: {}", providers.join(", "));
    GatewayError::Unsupported {
        param: r.param.clone(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{Message, Tool};

    #[test]
    fn embeddings_needs_go_to_the_wires_that_carry_them() {
        let input = EmbedInput {
            inputs: Inputs::Tokens(vec![vec![1, 2]]),
            dimensions: Some(256),
            user: None,
            input_type: None,
        };
        let reqs = embed_requirements(&input);
        let shortening = Capabilities {
            dimensions: true,
            ..Capabilities::default()
        };
        assert_eq!(first_unmet("openai", &shortening, &reqs), None);
        assert_eq!(
            first_unmet("openai", &Capabilities::default(), &reqs).map(|r| r.param.as_str()),
            Some("dimensions")
        );
        assert_eq!(
            first_unmet("cohere", &shortening, &reqs).map(|r| r.param.as_str()),
            Some("input")
        );
        let typed = EmbedInput {
            inputs: Inputs::Texts(vec!["a".into()]),
            dimensions: None,
            user: None,
            input_type: Some(crate::embed::InputType::SearchQuery),
        };
        let reqs = embed_requirements(&typed);
        assert_eq!(
            first_unmet("openai", &shortening, &reqs).map(|r| r.param.as_str()),
            Some("input_type")
        );
        assert_eq!(first_unmet("gemini", &Capabilities::default(), &reqs), None);
        assert_eq!(
            first_unmet("anthropic", &shortening, &reqs).map(|r| r.param.as_str()),
            Some("input_type")
        );
    }

    #[test]
    fn plain_text_needs_nothing_and_tools_need_a_capable_wire() {
        let mut input = ChatInput {
            messages: vec![Message::text(Turn::User, "hi")],
            ..ChatInput::default()
        };
        assert!(requirements(&input).is_empty());
        input.tools.push(Tool {
            name: "f".into(),
            description: None,
            parameters: None,
            strict: None,
        });
        input.temperature = Some(1.5);
        let reqs = requirements(&input);
        let all = Capabilities {
            tools: true,
            ..Capabilities::default()
        };
        assert_eq!(first_unmet("openai", &all, &reqs), None);
        assert_eq!(
            first_unmet("openai", &Capabilities::default(), &reqs).map(|r| r.param.as_str()),
            Some("tools")
        );
        assert_eq!(
            first_unmet("anthropic", &all, &reqs).map(|r| r.param.as_str()),
            Some("temperature"),
            "no silent cap at 1"
        );
        let e = refusal(
            "m",
            [("openai", "a", Capabilities::default())].into_iter(),
            &reqs,
        );
        assert!(
            matches!(&e, GatewayError::Unsupported { param, message } if param == "tools" && message.contains("tools") && message.contains("\"m\"")),
            "{e:?}"
        );
    }
}
