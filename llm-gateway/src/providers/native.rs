//! What the native wire formats (Anthropic, Gemini, Cohere) share when translating a request:
//! the refusal of a field a format cannot carry ([`Unsupported`], with the field's OpenAI
//! `param` path), the checks of the fields none of them models, data URIs, and the lookup of a
//! tool call by id in the conversation.
//!
//! A native translation either carries a field faithfully or refuses the request with
//! [`Unsupported`]: the router then tries the model's next route and, when none can carry it,
//! answers `unsupported_parameter` naming the field. Nothing is dropped or clamped.

use crate::chat::{ChatInput, Content, Image, ImageDetail, Message, Part, Turn};

/// A field of the request a provider's wire format cannot carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The field as an OpenAI client writes it (`seed`, `messages[2].name`, ...).
    pub param: String,
    /// Why, in English, naming the provider.
    pub message: String,
}

impl Unsupported {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Unsupported {
        Unsupported {
            param: param.into(),
            message: message.into(),
        }
    }

    /// `param` is not carried by `provider` at all.
    pub fn field(provider: &str, param: impl Into<String>) -> Unsupported {
        let param = param.into();
        let message = format!("{param} is not supported by {provider}");
        Unsupported { param, message }
    }
}

/// Which of the sampling and accounting fields a native format carries (the rest are refused by
/// [`check_common`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Carries {
    pub seed: bool,
    pub penalties: bool,
    pub user: bool,
    /// `n` above 1.
    pub several_choices: bool,
}

/// Refuses what no native format models, and what `carries` says this one does not: fields
/// meant for OpenAI only (`extra`, `logit_bias`, `logprobs`, `reasoning_effort`), message
/// names, refusals given back in the history, parts the gateway does not model, and an image's
/// `detail` other than `auto` (no native format takes a resolution hint per image).
pub fn check_common(
    provider: &str,
    input: &ChatInput,
    carries: Carries,
) -> Result<(), Unsupported> {
    if let Some(key) = input.extra.keys().next() {
        return Err(Unsupported::field(provider, key.clone()));
    }
    if !input.logit_bias.is_empty() {
        return Err(Unsupported::field(provider, "logit_bias"));
    }
    if input.logprobs == Some(true) {
        return Err(Unsupported::field(provider, "logprobs"));
    }
    if input.top_logprobs.is_some() {
        return Err(Unsupported::field(provider, "top_logprobs"));
    }
    if input.reasoning_effort.is_some() {
        return Err(Unsupported::field(provider, "reasoning_effort"));
    }
    if input.seed.is_some() && !carries.seed {
        return Err(Unsupported::field(provider, "seed"));
    }
    if !carries.penalties {
        if input.presence_penalty.is_some() {
            return Err(Unsupported::field(provider, "presence_penalty"));
        }
        if input.frequency_penalty.is_some() {
            return Err(Unsupported::field(provider, "frequency_penalty"));
        }
    }
    if input.user.is_some() && !carries.user {
        return Err(Unsupported::field(provider, "user"));
    }
    if input.choices() > 1 && !carries.several_choices {
        return Err(Unsupported::new(
            "n",
            format!("{provider} answers with one choice only (n must be 1)"),
        ));
    }
    for (i, m) in input.messages.iter().enumerate() {
        if m.name.is_some() {
            return Err(Unsupported::field(provider, format!("messages[{i}].name")));
        }
        if let Turn::Assistant {
            refusal: Some(_), ..
        } = &m.turn
        {
            return Err(Unsupported::field(
                provider,
                format!("messages[{i}].refusal"),
            ));
        }
        if let Some(Content::Parts(parts)) = &m.content {
            for (j, p) in parts.iter().enumerate() {
                match p {
                    Part::Text(_) => {}
                    Part::Image(img) => {
                        if matches!(img.detail, Some(ImageDetail::Low | ImageDetail::High)) {
                            return Err(Unsupported::new(
                                format!("messages[{i}].content[{j}].image_url.detail"),
                                format!(
                                    "{provider} takes no per-image detail; send detail \"auto\" or none"
                                ),
                            ));
                        }
                    }
                    Part::Refusal(_) | Part::Raw(_) => {
                        return Err(Unsupported::new(
                            format!("messages[{i}].content[{j}]"),
                            format!("{provider} takes text and image content parts only"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The text of a message whose content the format can only take as text (system messages, tool
/// results where the format has no images): an image part is refused, not left out.
pub fn text_only(provider: &str, m: &Message, i: usize) -> Result<String, Unsupported> {
    match &m.content {
        None => Ok(String::new()),
        Some(Content::Text(t)) => Ok(t.clone()),
        Some(Content::Parts(parts)) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match p {
                    Part::Text(t) => out.push_str(t),
                    _ => {
                        return Err(Unsupported::new(
                            format!("messages[{i}].content[{j}]"),
                            format!(
                                "{provider} takes only text in a {} message",
                                m.role().as_str()
                            ),
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// System and developer messages joined (formats with one system instruction), refusing images
/// in them.
pub fn system_text(provider: &str, input: &ChatInput) -> Result<Option<String>, Unsupported> {
    let mut parts = Vec::new();
    for (i, m) in input.messages.iter().enumerate() {
        if matches!(m.turn, Turn::System | Turn::Developer) {
            parts.push(text_only(provider, m, i)?);
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("\n\n")))
}

/// An image given inline: its media type and base64 data.
pub struct Inline<'a> {
    pub media_type: &'a str,
    pub data: &'a str,
}

/// The media type and data of a `data:<type>;base64,<data>` URI (validation admitted only
/// those and http(s) URLs); `None` for a URL.
pub fn data_uri(img: &Image) -> Option<Inline<'_>> {
    let rest = img.url.strip_prefix("data:")?;
    let (media_type, data) = rest.split_once(";base64,")?;
    Some(Inline { media_type, data })
}

/// The function name of the call `call_id` answers: the assistant message of the conversation
/// that made it (formats that pair results with calls by name).
pub fn called_function<'a>(input: &'a ChatInput, call_id: &str) -> Option<&'a str> {
    input.messages.iter().find_map(|m| match &m.turn {
        Turn::Assistant { tool_calls, .. } => tool_calls
            .iter()
            .find(|c| c.id == call_id)
            .map(|c| c.name.as_str()),
        _ => None,
    })
}

/// A tool call's arguments as the JSON object native formats take (`{}` for empty text).
pub fn arguments_object(
    provider: &str,
    arguments: &str,
    param: impl Into<String>,
) -> Result<serde_json::Value, Unsupported> {
    if arguments.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => {
            let param = param.into();
            Err(Unsupported {
                message: format!("{param} must be a JSON object for {provider}"),
                param,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ToolCall;

    #[test]
    fn data_uris_and_calls_are_found() {
        let img = Image {
            url: "data:image/png;base64,AAAA".into(),
            detail: None,
        };
        let d = data_uri(&img);
        assert_eq!(
            d.as_ref().map(|d| (d.media_type, d.data)),
            Some(("image/png", "AAAA"))
        );
        let url = Image {
            url: "https://x/y.png".into(),
            detail: None,
        };
        assert!(data_uri(&url).is_none());

        let input = ChatInput {
            messages: vec![Message {
                turn: Turn::Assistant {
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: String::new(),
                    }],
                    refusal: None,
                },
                content: None,
                name: None,
            }],
            ..ChatInput::default()
        };
        assert_eq!(called_function(&input, "c1"), Some("f"));
        assert_eq!(called_function(&input, "c2"), None);
        assert_eq!(
            arguments_object("x", "", "a").ok(),
            Some(serde_json::json!({}))
        );
        assert_eq!(
            arguments_object("x", "[1]", "a").err().map(|u| u.param),
            Some("a".to_owned())
        );
    }

    #[test]
    fn fields_no_native_format_models_are_refused_by_name() {
        let base = ChatInput {
            messages: vec![Message::text(Turn::User, "hi")],
            ..ChatInput::default()
        };
        let refused = |input: ChatInput| {
            check_common("P", &input, Carries::default())
                .err()
                .map(|u| u.param)
        };
        assert_eq!(refused(base.clone()), None);
        assert_eq!(
            refused(ChatInput {
                seed: Some(1),
                ..base.clone()
            })
            .as_deref(),
            Some("seed")
        );
        assert_eq!(
            refused(ChatInput {
                n: Some(2),
                ..base.clone()
            })
            .as_deref(),
            Some("n")
        );
        let mut named = base.clone();
        named.messages[0].name = Some("ann".into());
        assert_eq!(refused(named).as_deref(), Some("messages[0].name"));
        let mut extra = base;
        extra
            .extra
            .insert("service_tier".into(), serde_json::Value::from("flex"));
        assert_eq!(refused(extra).as_deref(), Some("service_tier"));
    }
}
