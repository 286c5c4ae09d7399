//! Google Gemini (`POST {base}/models/{model}:generateContent`, key in `x-goog-api-key`).
//!
//! Translation of the Chat Completions request:
//! - roles `user` and `model`; system and developer messages → `systemInstruction` (text only);
//! - images → `inlineData` (data URIs: media type and base64 data) or `fileData` (URLs, with the
//!   media type when the file name tells it);
//! - assistant tool calls → `functionCall` parts (arguments parsed into `args`); `tool` messages →
//!   `functionResponse` parts named after the call they answer (Gemini pairs results with calls
//!   by function name: the name is found in the conversation's assistant message holding that
//!   call id; the result text is sent as the response object when it is one, else as
//!   `{"output": text}`, Gemini's documented key);
//! - `tools` → one `functionDeclarations` tool; `tool_choice` auto / required / function / none
//!   → `functionCallingConfig` `AUTO` / `ANY` / `ANY` with `allowedFunctionNames` / `NONE`;
//! - `response_format` `json_object` → `responseMimeType: application/json`; `json_schema` →
//!   the same plus `responseSchema`, the JSON schema translated to Gemini's schema subset
//!   ([`schema`]: local `$ref`s inlined, `["T","null"]` → `nullable`, `const` → one-value
//!   `enum`; what it cannot express — `oneOf`, `allOf`, `not`, open `additionalProperties`,
//!   recursive references, ... — is refused naming the field);
//! - `generationConfig`: temperature, topP, maxOutputTokens, stopSequences, candidateCount
//!   (`n`), seed, presencePenalty, frequencyPenalty.
//! - Refused: `user`, message names, `logprobs`, `logit_bias`, `reasoning_effort`, extra
//!   fields, `parallel_tool_calls: false` (Gemini has no switch), strict tools.
//!
//! Gemini has no tool-call ids: each call gets a fresh `call_…` id. A call's
//! `thoughtSignature` (thinking models must get it back with the call) rides in the id after
//! [`SIGNATURE_SEPARATOR`] and is put back on the `functionCall` part in the next turn.
//!
//! Answers: every candidate is a choice; `finishReason` STOP with a function call → `tool_calls`,
//! MAX_TOKENS → `length`, SAFETY / RECITATION / BLOCKLIST / PROHIBITED_CONTENT / SPII →
//! `content_filter`; a prompt blocked before any candidate (`promptFeedback.blockReason`) is an
//! empty `content_filter` answer. Thinking tokens count as completion tokens (they are billed so).
//! Streaming is `:streamGenerateContent?alt=sse`: each `data:` event is a partial answer whose
//! function calls come whole; there is no end marker, so a stream is complete only if some
//! chunk carried a `finishReason`.
//!
//! Embeddings: `POST {base}/models/{model}:batchEmbedContents` with one request per text
//! (`model: models/{model}`, `content.parts[0].text`, `outputDimensionality` for `dimensions`,
//! `taskType` from `input_type`: `search_document` → `RETRIEVAL_DOCUMENT`, `search_query` →
//! `RETRIEVAL_QUERY`, `classification` → `CLASSIFICATION`, `clustering` → `CLUSTERING`), 100
//! texts at most per call (larger requests go in batches). Answers: `embeddings[].values` in
//! request order. Gemini's embeddings answers carry no token count: the gateway then estimates
//! it as the chat path does for an answer without usage (about 4 characters a token) and marks
//! the usage `estimated`. Refused: token ids (Gemini takes texts only) and `user`.

use std::collections::HashMap;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value, json};

use super::native::{self, Carries, Unsupported};
use super::{
    ChatInput, Choice, Chunk, ChunkStream, Completion, Content, HttpBase, Part, Provider,
    ProviderError, ToolCall, ToolCallDelta, Turn, Usage, UsageDetails, event_json, json_u32,
    sse_events,
};
use super::{EmbedInput, Embeddings, InputType, Inputs, join_batches, json_vector};
use crate::chat::{Image, ResponseFormat, ToolChoice};

const NAME: &str = "Gemini";

/// Between a generated call id and the call's thought signature.
pub const SIGNATURE_SEPARATOR: &str = "__thought__";

pub struct Gemini {
    pub base: HttpBase,
}

fn normalise_finish(reason: &str, called: bool) -> String {
    match reason {
        "STOP" if called => "tool_calls".into(),
        "STOP" => "stop".into(),
        "MAX_TOKENS" => "length".into(),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter".into()
        }
        other => other.to_ascii_lowercase(),
    }
}

/// Media type of an image URL from its file name, when it tells.
fn media_type_of(url: &str) -> Option<&'static str> {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    [
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".gif", "image/gif"),
        (".webp", "image/webp"),
        (".heic", "image/heic"),
    ]
    .into_iter()
    .find(|(ext, _)| path.ends_with(ext))
    .map(|(_, t)| t)
}

fn image_part(img: &Image) -> Value {
    match native::data_uri(img) {
        Some(d) => json!({"inlineData": {"mimeType": d.media_type, "data": d.data}}),
        None => match media_type_of(&img.url) {
            Some(t) => json!({"fileData": {"mimeType": t, "fileUri": img.url}}),
            None => json!({"fileData": {"fileUri": img.url}}),
        },
    }
}

/// JSON Schema keywords Gemini's schema takes as they are.
const KEPT: &[&str] = &[
    "description",
    "title",
    "format",
    "pattern",
    "nullable",
    "enum",
    "required",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minProperties",
    "maxProperties",
    "default",
    "example",
    "propertyOrdering",
];

/// Translates a JSON schema to Gemini's schema subset (OpenAPI 3.0 style), refusing what it
/// cannot express. `root` holds the `$defs` that `$ref`s point to; `depth` stops recursive
/// references.
pub fn schema(v: &Value, root: &Value, param: &str, depth: u32) -> Result<Value, Unsupported> {
    let refuse = |what: &str| {
        Err(Unsupported::new(
            param,
            format!("{param}: Gemini's schema cannot express {what}"),
        ))
    };
    if depth > 32 {
        return refuse("recursive references");
    }
    let Some(obj) = v.as_object() else {
        return refuse("a schema that is not an object");
    };
    if let Some(r) = obj.get("$ref") {
        let target = r
            .as_str()
            .and_then(|r| {
                r.strip_prefix("#/$defs/")
                    .map(|n| &root["$defs"][n])
                    .or_else(|| {
                        r.strip_prefix("#/definitions/")
                            .map(|n| &root["definitions"][n])
                    })
            })
            .filter(|t| t.is_object());
        let Some(target) = target else {
            return refuse("a $ref outside the schema's $defs");
        };
        let mut out = schema(target, root, param, depth + 1)?;
        // Keywords next to a $ref (a description, usually) apply too.
        for (k, val) in obj {
            if k != "$ref" && KEPT.contains(&k.as_str()) {
                out[k] = val.clone();
            }
        }
        return Ok(out);
    }
    let mut out = Map::new();
    for (k, val) in obj {
        match k.as_str() {
            "type" => match val {
                Value::String(t) => {
                    out.insert("type".into(), json!(t.to_ascii_uppercase()));
                }
                Value::Array(ts) => {
                    let named: Vec<&str> = ts.iter().filter_map(Value::as_str).collect();
                    let non_null: Vec<&str> =
                        named.iter().copied().filter(|t| *t != "null").collect();
                    if named.len() != ts.len() || non_null.len() != 1 {
                        return refuse("a union of several types");
                    }
                    out.insert("type".into(), json!(non_null[0].to_ascii_uppercase()));
                    if named.len() > 1 {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                _ => return refuse("this type"),
            },
            "properties" => {
                let Some(props) = val.as_object() else {
                    return refuse("properties that are not an object");
                };
                let mut p = Map::new();
                for (name, s) in props {
                    p.insert(name.clone(), schema(s, root, param, depth + 1)?);
                }
                out.insert("properties".into(), Value::Object(p));
            }
            "items" => {
                out.insert("items".into(), schema(val, root, param, depth + 1)?);
            }
            "anyOf" => {
                let Some(alts) = val.as_array() else {
                    return refuse("anyOf that is not an array");
                };
                // `anyOf: [X, {"type":"null"}]` is how Pydantic writes an optional field.
                let non_null: Vec<&Value> = alts.iter().filter(|a| a["type"] != "null").collect();
                if non_null.len() == 1 && alts.len() == 2 {
                    let inner = schema(non_null[0], root, param, depth + 1)?;
                    if let Some(inner) = inner.as_object() {
                        for (ik, iv) in inner {
                            out.entry(ik.clone()).or_insert_with(|| iv.clone());
                        }
                    }
                    out.insert("nullable".into(), json!(true));
                } else {
                    let mut a = Vec::new();
                    for alt in alts {
                        a.push(schema(alt, root, param, depth + 1)?);
                    }
                    out.insert("anyOf".into(), Value::Array(a));
                }
            }
            "const" => {
                out.insert("enum".into(), json!([val]));
            }
            // Gemini produces only the declared properties: `false` is what it does anyway.
            "additionalProperties" if *val == Value::Bool(false) => {}
            // Annotations of the schema document itself.
            "$schema" | "$defs" | "definitions" | "$id" | "$comment" => {}
            k if KEPT.contains(&k) => {
                out.insert(k.to_owned(), val.clone());
            }
            other => return refuse(&format!("the keyword {other:?}")),
        }
    }
    Ok(Value::Object(out))
}

/// `(call id, thought signature)` of a call id the gateway made.
fn split_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((id, sig)) => (id, Some(sig)),
        None => (id, None),
    }
}

fn new_call_id(signature: Option<&str>) -> String {
    let mut id = format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..24]);
    if let Some(sig) = signature {
        id.push_str(SIGNATURE_SEPARATOR);
        id.push_str(sig);
    }
    id
}

fn contents(input: &ChatInput) -> Result<Vec<Value>, Unsupported> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for (i, m) in input.messages.iter().enumerate() {
        let (role, parts): (&'static str, Vec<Value>) = match &m.turn {
            Turn::System | Turn::Developer => continue,
            Turn::User => {
                let parts = match &m.content {
                    None => Vec::new(),
                    Some(Content::Text(t)) => vec![json!({"text": t})],
                    Some(Content::Parts(parts)) => parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(json!({"text": t})),
                            Part::Image(img) => Some(image_part(img)),
                            // Refused by check_common before.
                            Part::Refusal(_) | Part::Raw(_) => None,
                        })
                        .collect(),
                };
                ("user", parts)
            }
            Turn::Assistant { tool_calls, .. } => {
                let text = native::text_only(NAME, m, i)?;
                let mut parts = Vec::new();
                if !text.is_empty() || tool_calls.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for (j, c) in tool_calls.iter().enumerate() {
                    let args = native::arguments_object(
                        NAME,
                        &c.arguments,
                        format!("messages[{i}].tool_calls[{j}].function.arguments"),
                    )?;
                    let mut part = json!({"functionCall": {"name": c.name, "args": args}});
                    if let (_, Some(sig)) = split_id(&c.id) {
                        part["thoughtSignature"] = json!(sig);
                    }
                    parts.push(part);
                }
                ("model", parts)
            }
            Turn::Tool { call_id } => {
                let Some(name) = native::called_function(input, call_id) else {
                    return Err(Unsupported::new(
                        format!("messages[{i}].tool_call_id"),
                        format!(
                            "messages[{i}].tool_call_id: Gemini pairs results with calls by function name, and no assistant message of the conversation made call {call_id:?}"
                        ),
                    ));
                };
                let text = native::text_only(NAME, m, i)?;
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(v @ Value::Object(_)) => v,
                    _ => json!({"output": text}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
        };
        match out.last_mut() {
            Some((r, p)) if *r == role => p.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    Ok(out
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect())
}

impl Gemini {
    fn body(input: &ChatInput) -> Result<Value, Unsupported> {
        native::check_common(
            NAME,
            input,
            Carries {
                seed: true,
                penalties: true,
                user: false,
                several_choices: true,
            },
        )?;
        let mut body = json!({"contents": contents(input)?});
        if let Some(system) = native::system_text(NAME, input)? {
            body["systemInstruction"] = json!({"parts": [{"text": system}]});
        }
        if !input.tools.is_empty() {
            let mut decls = Vec::new();
            for (i, t) in input.tools.iter().enumerate() {
                if t.strict == Some(true) {
                    return Err(Unsupported::new(
                        format!("tools[{i}].function.strict"),
                        "Gemini has no strict function calling",
                    ));
                }
                let mut d = json!({"name": t.name});
                if let Some(desc) = &t.description {
                    d["description"] = json!(desc);
                }
                if let Some(p) = &t.parameters {
                    // An object schema without properties is what "no parameters" means;
                    // Gemini refuses an OBJECT without properties.
                    let empty = p
                        .get("properties")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty);
                    if !empty {
                        d["parameters"] =
                            schema(p, p, &format!("tools[{i}].function.parameters"), 0)?;
                    }
                }
                decls.push(d);
            }
            body["tools"] = json!([{"functionDeclarations": decls}]);
        }
        if input.parallel_tool_calls == Some(false) {
            return Err(Unsupported::new(
                "parallel_tool_calls",
                "Gemini cannot be told to make one tool call at a time",
            ));
        }
        if let Some(choice) = &input.tool_choice {
            let config = match choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Function(name) => {
                    json!({"mode": "ANY", "allowedFunctionNames": [name]})
                }
            };
            body["toolConfig"] = json!({"functionCallingConfig": config});
        }
        let mut gen_cfg = Map::new();
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
        if let Some(n) = input.n {
            gen_cfg.insert("candidateCount".into(), json!(n));
        }
        if let Some(s) = input.seed {
            gen_cfg.insert("seed".into(), json!(s));
        }
        if let Some(p) = input.presence_penalty {
            gen_cfg.insert("presencePenalty".into(), json!(p));
        }
        if let Some(p) = input.frequency_penalty {
            gen_cfg.insert("frequencyPenalty".into(), json!(p));
        }
        match &input.response_format {
            None | Some(ResponseFormat::Text) => {}
            Some(ResponseFormat::JsonObject) => {
                gen_cfg.insert("responseMimeType".into(), json!("application/json"));
            }
            Some(ResponseFormat::JsonSchema {
                schema: s,
                description,
                ..
            }) => {
                gen_cfg.insert("responseMimeType".into(), json!("application/json"));
                if let Some(s) = s {
                    let mut translated = schema(s, s, "response_format.json_schema.schema", 0)?;
                    if let (Some(d), Some(obj)) = (description, translated.as_object_mut()) {
                        obj.entry("description").or_insert_with(|| json!(d));
                    }
                    gen_cfg.insert("responseSchema".into(), translated);
                }
            }
        }
        if !gen_cfg.is_empty() {
            body["generationConfig"] = Value::Object(gen_cfg);
        }
        Ok(body)
    }

    async fn embed_batch(
        &self,
        model: &str,
        input: &EmbedInput,
        texts: &[String],
    ) -> Result<Embeddings, ProviderError> {
        let body = embed_body(model, input, texts);
        let v = self
            .base
            .send_json(self.request(model, "batchEmbedContents", &body))
            .await?;
        parse_embeddings(&v)
    }

    fn request(&self, model: &str, method: &str, body: &Value) -> reqwest::RequestBuilder {
        self.base
            .http
            .post(self.base.url(&format!("/models/{model}:{method}")))
            .header("x-goog-api-key", &self.base.api_key)
            .json(body)
    }
}

/// Texts per batchEmbedContents call (Gemini's documented maximum).
pub const EMBED_BATCH: usize = 100;

fn task_type(t: InputType) -> &'static str {
    match t {
        InputType::SearchDocument => "RETRIEVAL_DOCUMENT",
        InputType::SearchQuery => "RETRIEVAL_QUERY",
        InputType::Classification => "CLASSIFICATION",
        InputType::Clustering => "CLUSTERING",
    }
}

/// The texts of a request Gemini can carry, or the field it cannot.
fn embed_texts(input: &EmbedInput) -> Result<&[String], Unsupported> {
    if input.user.is_some() {
        return Err(Unsupported::field(NAME, "user"));
    }
    match &input.inputs {
        Inputs::Texts(t) => Ok(t),
        Inputs::Tokens(_) => Err(Unsupported::new(
            "input",
            "token ids as input are not supported by Gemini: send texts",
        )),
    }
}

fn embed_body(model: &str, input: &EmbedInput, texts: &[String]) -> Value {
    let name = format!("models/{model}");
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r = json!({"model": name, "content": {"parts": [{"text": t}]}});
            if let Some(d) = input.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            if let Some(t) = input.input_type {
                r["taskType"] = json!(task_type(t));
            }
            r
        })
        .collect();
    json!({ "requests": requests })
}

fn parse_embeddings(v: &Value) -> Result<Embeddings, ProviderError> {
    check_error(v)?;
    let vectors = v["embeddings"]
        .as_array()
        .ok_or_else(|| ProviderError::Malformed("no embeddings in answer".into()))?
        .iter()
        .map(|e| json_vector(&e["values"]))
        .collect::<Option<Vec<Vec<f32>>>>()
        .ok_or_else(|| ProviderError::Malformed("an embedding has no values".into()))?;
    Ok(Embeddings {
        vectors,
        prompt_tokens: None,
    })
}

/// A candidate's text (thought summaries left out: the gateway never asks for them) and calls.
fn candidate_parts(c: &Value) -> (String, Vec<ToolCall>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in c["content"]["parts"].as_array().into_iter().flatten() {
        if p["thought"] == true {
            continue;
        }
        if let Some(t) = p["text"].as_str() {
            text.push_str(t);
        }
        if let Some(f) = p.get("functionCall").filter(|f| f.is_object()) {
            calls.push(ToolCall {
                id: new_call_id(p["thoughtSignature"].as_str()),
                name: f["name"].as_str().unwrap_or_default().to_owned(),
                arguments: if f["args"].is_object() {
                    f["args"].to_string()
                } else {
                    "{}".to_owned()
                },
            });
        }
    }
    (text, calls)
}

fn parse_usage(v: &Value) -> Option<Usage> {
    let u = v.get("usageMetadata").filter(|u| u.is_object())?;
    // Thinking tokens are billed as output: counted in the completion and itemised as
    // reasoning, as OpenAI reports its reasoning models'. Cached tokens are part of the prompt.
    let count = |name: &str| {
        u.get(name)
            .and_then(serde_json::Value::as_u64)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let thoughts = count("thoughtsTokenCount");
    Some(Usage {
        prompt_tokens: json_u32(&u["promptTokenCount"]),
        completion_tokens: json_u32(&u["candidatesTokenCount"])
            .saturating_add(thoughts.unwrap_or(0)),
        details: UsageDetails {
            cached_tokens: count("cachedContentTokenCount"),
            reasoning_tokens: thoughts,
            ..UsageDetails::default()
        },
    })
}

fn check_error(v: &Value) -> Result<(), ProviderError> {
    match v.get("error") {
        Some(e) => Err(ProviderError::Api(e.to_string())),
        None => Ok(()),
    }
}

fn candidate_index(c: &Value, position: usize) -> u32 {
    c["index"]
        .as_u64()
        .map_or(u32::try_from(position).unwrap_or(u32::MAX), |i| {
            u32::try_from(i).unwrap_or(u32::MAX)
        })
}

fn parse_answer(v: &Value) -> Result<Completion, ProviderError> {
    check_error(v)?;
    let Some(candidates) = v["candidates"].as_array() else {
        if v["promptFeedback"]["blockReason"].is_string() {
            return Ok(Completion::text(
                String::new(),
                "content_filter".into(),
                parse_usage(v),
            ));
        }
        return Err(ProviderError::Malformed("no candidates in answer".into()));
    };
    let mut choices: Vec<Choice> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (text, tool_calls) = candidate_parts(c);
            Choice {
                index: candidate_index(c, i),
                finish_reason: c["finishReason"]
                    .as_str()
                    .map(|r| normalise_finish(r, !tool_calls.is_empty()))
                    .unwrap_or_else(|| "stop".into()),
                content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                tool_calls,
                ..Choice::default()
            }
        })
        .collect();
    if choices.is_empty() {
        return Err(ProviderError::Malformed("no candidates in answer".into()));
    }
    choices.sort_by_key(|c| c.index);
    Ok(Completion {
        choices,
        usage: parse_usage(v),
        system_fingerprint: None,
    })
}

impl Provider for Gemini {
    fn embed<'a>(
        &'a self,
        model: &'a str,
        input: &'a EmbedInput,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        async move {
            let texts = embed_texts(input).map_err(ProviderError::Unsupported)?;
            // A loop rather than `map` with a closure: a closure returning a borrowing future
            // defeats the `Send` proof of the boxed future.
            let mut batches = Vec::with_capacity(texts.len().div_ceil(EMBED_BATCH));
            for batch in texts.chunks(EMBED_BATCH) {
                batches.push(self.embed_batch(model, input, batch));
            }
            join_batches(batches.into_iter()).await
        }
        .boxed()
    }

    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        async move {
            let body = Self::body(input).map_err(ProviderError::Unsupported)?;
            let v = self
                .base
                .send_json(self.request(model, "generateContent", &body))
                .await?;
            parse_answer(&v)
        }
        .boxed()
    }

    fn stream<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        async move {
            let body = Self::body(input).map_err(ProviderError::Unsupported)?;
            let resp = self
                .base
                .send(self.request(model, "streamGenerateContent?alt=sse", &body))
                .await?;
            let mut events = sse_events(resp);
            let s = async_stream::try_stream! {
                let mut finished = false;
                // Per candidate: calls streamed so far (OpenAI numbers them per choice).
                let mut calls: HashMap<u32, u32> = HashMap::new();
                while let Some(ev) = events.next().await {
                    let v = event_json(&ev?)?;
                    check_error(&v)?;
                    let usage = parse_usage(&v);
                    let candidates = v["candidates"].as_array().cloned().unwrap_or_default();
                    if candidates.is_empty() {
                        if v["promptFeedback"]["blockReason"].is_string() {
                            finished = true;
                            yield Chunk { finish_reason: Some("content_filter".into()), usage, ..Chunk::default() };
                        } else if usage.is_some() {
                            yield Chunk { usage, ..Chunk::default() };
                        }
                        continue;
                    }
                    for (pos, c) in candidates.iter().enumerate() {
                        let index = candidate_index(c, pos);
                        let (text, new_calls) = candidate_parts(c);
                        let seen = calls.entry(index).or_insert(0);
                        let tool_calls: Vec<ToolCallDelta> = new_calls
                            .into_iter()
                            .map(|call| {
                                let d = ToolCallDelta {
                                    index: *seen,
                                    id: Some(call.id),
                                    name: Some(call.name),
                                    arguments: call.arguments,
                                };
                                *seen += 1;
                                d
                            })
                            .collect();
                        let called = *seen > 0;
                        let finish_reason = c["finishReason"]
                            .as_str()
                            .map(|r| normalise_finish(r, called));
                        finished |= finish_reason.is_some();
                        yield Chunk {
                            index,
                            delta: text,
                            tool_calls,
                            finish_reason,
                            // Usage rides on the first candidate's piece only.
                            usage: if pos == 0 { usage } else { None },
                            ..Chunk::default()
                        };
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_and_cached_tokens_are_itemised_and_thinking_is_completion() {
        let u = parse_usage(&json!({"usageMetadata":{"promptTokenCount":30,
            "cachedContentTokenCount":20,"candidatesTokenCount":12,"thoughtsTokenCount":5}}));
        assert_eq!(
            u,
            Some(Usage {
                prompt_tokens: 30,
                completion_tokens: 17,
                details: UsageDetails {
                    cached_tokens: Some(20),
                    reasoning_tokens: Some(5),
                    ..UsageDetails::default()
                },
            })
        );
        // Nothing itemised when Gemini does not say: no zero is made up.
        let plain =
            parse_usage(&json!({"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4}}));
        assert_eq!(plain, Some(Usage::new(3, 4)));
    }

    #[test]
    fn json_schemas_become_geminis_subset_or_are_refused() {
        let pydantic = json!({
            "$defs": {"City": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "additionalProperties": false}},
            "type": "object",
            "properties": {
                "city": {"$ref": "#/$defs/City", "description": "where"},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "kind": {"const": "x"},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}}
            },
            "required": ["city"],
            "additionalProperties": false
        });
        let s = schema(&pydantic, &pydantic, "p", 0).unwrap_or_default();
        assert_eq!(
            s,
            json!({
                "type": "OBJECT",
                "properties": {
                    "city": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}, "required": ["name"], "description": "where"},
                    "note": {"type": "STRING", "nullable": true},
                    "kind": {"enum": ["x"]},
                    "tags": {"type": "ARRAY", "nullable": true, "items": {"type": "STRING"}}
                },
                "required": ["city"]
            })
        );
        let refused = |v: Value| schema(&v, &v, "p", 0).err().map(|u| u.message);
        assert!(
            refused(json!({"oneOf": [{"type": "string"}]})).is_some_and(|m| m.contains("oneOf"))
        );
        assert!(
            refused(json!({"type": "object", "additionalProperties": {"type": "string"}}))
                .is_some()
        );
        let recursive = json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"});
        assert!(refused(recursive).is_some_and(|m| m.contains("recursive")));
    }

    #[test]
    fn signatures_ride_in_call_ids_and_finish_reasons_normalise() {
        let id = new_call_id(Some("c2ln"));
        assert_eq!(split_id(&id).1, Some("c2ln"));
        assert!(split_id(&new_call_id(None)).1.is_none());
        assert_eq!(normalise_finish("STOP", true), "tool_calls");
        assert_eq!(normalise_finish("MAX_TOKENS", false), "length");
        assert_eq!(normalise_finish("RECITATION", false), "content_filter");
        let c = parse_answer(&json!({"promptFeedback": {"blockReason": "SAFETY"}})).ok();
        assert_eq!(
            c.map(|c| c.choices[0].finish_reason.clone()).as_deref(),
            Some("content_filter")
        );
    }
}
