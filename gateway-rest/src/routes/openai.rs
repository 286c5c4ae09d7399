//! `/v1/*`: the OpenAI-compatible API over llm-gateway.
//!
//! Requests and answers follow OpenAI's Chat Completions shapes closely enough for the official
//! SDKs: `chat.completion` objects, `chat.completion.chunk` server-sent events ending with
//! `data: [DONE]`, `{"object":"list","data":[…]}` for models, and `{"error":{…,"type"}}` errors.
//! The customer's `Authorization: Bearer iaf_…` travels to llm-gateway as gRPC metadata.

//!
//! Each DTO's schema is derived from the type itself: a new request field or answer field is one
//! field here (with its `#[schema(…)]` constraints when it has any), a new route one annotated
//! handler plus its line in [`router`].

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::response::sse::Event;
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::{self, Forward};
use crate::edge::StreamSlot;
use crate::error::{ApiError, Flavor};
use crate::extract::{bearer, read_json};
use crate::openapi::openai as errors;
use crate::respond::{json, sse};
use crate::schema::null;
use crate::state::AppState;

type ApiResult = Result<Response, ApiError>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(StreamSchemas::openapi())
        .routes(routes!(chat_completions))
        .routes(routes!(models))
        .routes(routes!(usage))
}

fn oa(e: impl Into<ApiError>) -> ApiError {
    e.into().openai()
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message).openai()
}

// ---------------------------------------------------------------------------------------------
// Request

/// OpenAI's Chat Completions request; other OpenAI fields are accepted and ignored.
#[derive(Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    #[schema(min_length = 1, max_length = 200)]
    model: String,
    #[schema(min_items = 1, max_items = 256)]
    messages: Vec<MessageIn>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2)]
    temperature: Option<f32>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1)]
    top_p: Option<f32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    max_tokens: Option<u32>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000000)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    #[schema(schema_with = stop_schema)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    #[schema(inline)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1)]
    n: Option<u32>,
    /// IAFactory extension: the routing policy for this call.
    #[serde(default)]
    #[schema(schema_with = routing_schema)]
    routing: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct StreamOptions {
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

#[derive(Deserialize, ToSchema)]
struct MessageIn {
    #[schema(inline, value_type = Role)]
    role: String,
    #[serde(default)]
    #[schema(inline)]
    content: Option<Content>,
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
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize, ToSchema)]
struct Part {
    #[serde(rename = "type")]
    #[schema(inline, value_type = PartType)]
    kind: String,
    #[serde(default)]
    #[schema(required = true)]
    text: Option<String>,
}

// Content part types (documentation only: only text parts are supported).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PartType {
    Text,
}

struct Translated {
    request: pb::ChatRequest,
    stream: bool,
    include_usage: bool,
}

fn translate(input: ChatCompletionRequest) -> Result<Translated, ApiError> {
    if input.n.is_some_and(|n| n != 1) {
        return Err(invalid("Only n = 1 is supported."));
    }
    let mut messages = Vec::with_capacity(input.messages.len());
    for (i, m) in input.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => pb::Role::System,
            "user" => pb::Role::User,
            "assistant" => pb::Role::Assistant,
            other => {
                return Err(invalid(format!(
                    "messages[{i}].role {other:?} is not supported (system, developer, user, assistant)."
                )));
            }
        };
        let content = match m.content {
            None => String::new(),
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for part in parts {
                    match (part.kind.as_str(), part.text) {
                        ("text", Some(t)) => text.push_str(&t),
                        (kind, _) => {
                            return Err(invalid(format!(
                                "messages[{i}]: content part type {kind:?} is not supported (text only)."
                            )));
                        }
                    }
                }
                text
            }
        };
        messages.push(pb::ChatMessage {
            role: role as i32,
            content: Some(pb::chat_message::Content::Text(content)),
            ..Default::default()
        });
    }
    let policy = match input.routing.as_deref() {
        None | Some("" | "default") => pb::RoutingPolicy::Unspecified,
        Some("fallback") => pb::RoutingPolicy::Fallback,
        Some("lowest_latency") => pb::RoutingPolicy::LowestLatency,
        Some("lowest_cost") => pb::RoutingPolicy::LowestCost,
        Some(other) => {
            return Err(invalid(format!(
                "routing {other:?} is not one of fallback, lowest_latency, lowest_cost."
            )));
        }
    };
    let stop = match input.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    Ok(Translated {
        request: pb::ChatRequest {
            model: input.model,
            messages,
            temperature: input.temperature,
            top_p: input.top_p,
            max_tokens: input.max_completion_tokens.or(input.max_tokens),
            stop,
            policy: policy as i32,
            ..Default::default()
        },
        stream: input.stream.unwrap_or(false),
        include_usage: input
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

// ---------------------------------------------------------------------------------------------
// Answers

#[derive(Serialize, ToSchema)]
struct TokenUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

impl From<Option<pb::TokenUsage>> for TokenUsage {
    fn from(u: Option<pb::TokenUsage>) -> Self {
        let u = u.unwrap_or_default();
        TokenUsage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ChoiceMessage {
    #[schema(inline)]
    role: AssistantRole,
    content: String,
}

/// The role of an answer.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum AssistantRole {
    Assistant,
}

#[derive(Serialize, ToSchema)]
struct Choice {
    index: u32,
    message: ChoiceMessage,
    finish_reason: String,
    #[schema(schema_with = null)]
    logprobs: Option<()>,
}

/// What the platform adds to OpenAI's object: provider, upstream model, cost, latency, attempts
/// (also sent as `x-iaf-*` headers).
#[derive(Serialize, ToSchema)]
struct IafInfo {
    provider: String,
    upstream_model: String,
    cost_usd: f64,
    latency_ms: u64,
    attempts: u32,
    usage_estimated: bool,
}

#[derive(Serialize, ToSchema)]
struct ChatCompletion {
    id: String,
    #[schema(inline)]
    object: CompletionObject,
    created: i64,
    model: String,
    #[schema(value_type = Vec<Choice>, min_items = 1, max_items = 1)]
    choices: [Choice; 1],
    usage: TokenUsage,
    #[schema(schema_with = null)]
    system_fingerprint: Option<()>,
    iaf: IafInfo,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
enum CompletionObject {
    #[serde(rename = "chat.completion")]
    ChatCompletion,
}

fn set_iaf_headers(
    response: &mut Response,
    provider: &str,
    latency_ms: Option<u64>,
    cost: Option<f64>,
) {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(provider) {
        headers.insert("x-iaf-provider", v);
    }
    if let Some(ms) = latency_ms {
        headers.insert("x-iaf-latency-ms", HeaderValue::from(ms));
    }
    if let Some(cost) = cost
        && let Ok(v) = HeaderValue::from_str(&format!("{cost:.8}"))
    {
        headers.insert("x-iaf-cost-usd", v);
    }
}

/// OpenAI-compatible chat completion. With "stream": true, server-sent `chat.completion.chunk` events ending with `data: [DONE]`.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "llm",
    security(("apiKey" = [])),
    request_body = ChatCompletionRequest,
    responses(
        (
            status = 200,
            description = "The completion (or its event stream).",
            content(
                (ChatCompletion = "application/json"),
                (ChatCompletionEvent = "text/event-stream"),
            ),
            headers(
                ("x-iaf-provider" = String, description = "Provider that served the answer."),
                ("x-iaf-latency-ms" = i64, description = "Gateway latency in milliseconds (non-streaming)."),
                ("x-iaf-cost-usd" = String, description = "Cost of the call in US dollars (non-streaming)."),
            ),
        ),
        (status = 400, response = inline(errors::BadRequest)),
        (status = 401, response = inline(errors::Unauthorized)),
        (status = 403, response = inline(errors::Forbidden)),
        (status = 404, response = inline(errors::NotFound)),
        (status = 413, response = inline(errors::PayloadTooLarge)),
        (status = 415, response = inline(errors::UnsupportedMediaType)),
        (status = 429, response = inline(errors::TooManyRequests)),
        (status = 502, response = inline(errors::BadGateway)),
    ),
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    // Like OpenAI: a request without credentials is a 401 whatever its body.
    require_bearer(&headers)?;
    let input: ChatCompletionRequest = read_json(&headers, body, state.config.body_limit)
        .await
        .map_err(ApiError::openai)?;
    let t = translate(input)?;
    let req = backend::request(t.request, &headers, &[Forward::Authorization]).map_err(oa)?;
    if t.stream {
        return chat_stream(state, req, t.include_usage).await;
    }
    let r = state.llm_client().chat(req).await.map_err(oa)?.into_inner();
    let content = r
        .message
        .and_then(|m| m.content)
        .map(|c| match c {
            pb::chat_message::Content::Text(t) => t,
            // The gateway answers with text only (parts are a request shape).
            pb::chat_message::Content::Parts(_) => String::new(),
        })
        .unwrap_or_default();
    let estimated = r.usage.is_some_and(|u| u.estimated);
    let mut response = json(
        StatusCode::OK,
        &ChatCompletion {
            id: r.id,
            object: CompletionObject::ChatCompletion,
            created: r.created,
            model: r.model,
            choices: [Choice {
                index: 0,
                message: ChoiceMessage {
                    role: AssistantRole::Assistant,
                    content,
                },
                finish_reason: r.finish_reason,
                logprobs: None,
            }],
            usage: TokenUsage::from(r.usage),
            system_fingerprint: None,
            iaf: IafInfo {
                provider: r.provider.clone(),
                upstream_model: r.upstream_model,
                cost_usd: r.cost_usd,
                latency_ms: r.latency_ms,
                attempts: r.attempts,
                usage_estimated: estimated,
            },
        },
    );
    set_iaf_headers(
        &mut response,
        &r.provider,
        Some(r.latency_ms),
        Some(r.cost_usd),
    );
    Ok(response)
}

/// One event of a streamed completion.
#[derive(Serialize, ToSchema)]
struct ChatCompletionChunk<'a> {
    id: &'a str,
    #[schema(inline)]
    object: ChunkObject,
    created: i64,
    model: &'a str,
    choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<TokenUsage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iaf: Option<IafInfo>,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
enum ChunkObject {
    #[serde(rename = "chat.completion.chunk")]
    ChatCompletionChunk,
}

#[derive(Serialize, ToSchema)]
struct ChunkChoice {
    index: u32,
    delta: Delta,
    #[schema(required = true)]
    finish_reason: Option<String>,
    #[schema(schema_with = null)]
    logprobs: Option<()>,
}

#[derive(Serialize, Default, ToSchema)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    role: Option<AssistantRole>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

/// One server-sent event of a streamed chat completion.
// Documentation only: axum's `Event` writes it.
#[derive(ToSchema)]
pub struct ChatCompletionEvent {
    pub event: Option<String>,
    /// JSON of a `ChatCompletionChunk`, or `[DONE]` at the end of the stream.
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// The chunk travels as text inside the events' `data`, where no derive can point at it: it is
/// listed among the document's schemas so clients still see its shape.
#[derive(OpenApi)]
#[openapi(components(schemas(ChatCompletionChunk)))]
struct StreamSchemas;

fn chunk_event(chunk: &ChatCompletionChunk<'_>) -> Event {
    Event::default().data(serde_json::to_string(chunk).unwrap_or_else(|_| "{}".to_owned()))
}

/// `"stream": true`: the first gRPC event is awaited before answering, so refusals (bad key,
/// quota, unknown model, every provider down) are ordinary HTTP errors the SDKs understand, and
/// the serving provider is known for `x-iaf-provider`.
async fn chat_stream(
    state: AppState,
    req: tonic::Request<pb::ChatRequest>,
    include_usage: bool,
) -> ApiResult {
    let slot = StreamSlot::acquire(&state, Flavor::OpenAi)?;
    let mut upstream = state
        .llm_client()
        .chat_stream(req)
        .await
        .map_err(oa)?
        .into_inner();
    let first = match upstream.message().await {
        Ok(Some(ev)) => ev,
        Ok(None) => {
            return Err(ApiError::new(
                ErrorCode::UpstreamError,
                "The model stream ended before any answer.",
            )
            .openai());
        }
        Err(status) => return Err(oa(status)),
    };
    let provider = first.provider.clone();
    let created = chrono::Utc::now().timestamp();
    let mut stop = state.stop.clone();
    let events = async_stream::stream! {
        let _slot = slot;
        let id = first.id.clone();
        let model = first.model.clone();
        // OpenAI's first chunk carries the role.
        yield Ok::<Event, Infallible>(chunk_event(&ChatCompletionChunk {
            id: &id, object: ChunkObject::ChatCompletionChunk, created, model: &model,
            choices: vec![ChunkChoice { index: 0, delta: Delta { role: Some(AssistantRole::Assistant), content: Some(String::new()) }, finish_reason: None, logprobs: None }],
            usage: None, iaf: None,
        }));
        let mut next = Some(Ok(Some(first)));
        loop {
            let item = match next.take() {
                Some(item) => item,
                None => tokio::select! {
                    item = upstream.message() => item,
                    () = iafactory::shutdown::stopped(&mut stop) => break,
                },
            };
            match item {
                Ok(Some(ev)) => match ev.event {
                    Some(pb::chat_stream_event::Event::Delta(d)) => {
                        if d.content.is_empty() { continue; }
                        yield Ok(chunk_event(&ChatCompletionChunk {
                            id: &id, object: ChunkObject::ChatCompletionChunk, created, model: &model,
                            choices: vec![ChunkChoice { index: 0, delta: Delta { role: None, content: Some(d.content) }, finish_reason: None, logprobs: None }],
                            usage: None, iaf: None,
                        }));
                    }
                    Some(pb::chat_stream_event::Event::End(end)) => {
                        let info = IafInfo {
                            provider: ev.provider, upstream_model: ev.upstream_model,
                            cost_usd: end.cost_usd, latency_ms: end.latency_ms, attempts: end.attempts,
                            usage_estimated: end.usage.is_some_and(|u| u.estimated),
                        };
                        yield Ok(chunk_event(&ChatCompletionChunk {
                            id: &id, object: ChunkObject::ChatCompletionChunk, created, model: &model,
                            choices: vec![ChunkChoice { index: 0, delta: Delta::default(), finish_reason: Some(end.finish_reason), logprobs: None }],
                            usage: None, iaf: Some(info),
                        }));
                        if include_usage {
                            yield Ok(chunk_event(&ChatCompletionChunk {
                                id: &id, object: ChunkObject::ChatCompletionChunk, created, model: &model,
                                choices: Vec::new(), usage: Some(TokenUsage::from(end.usage)), iaf: None,
                            }));
                        }
                        yield Ok(Event::default().data("[DONE]"));
                        break;
                    }
                    None => continue,
                },
                Ok(None) => {
                    // Ended without its `end` event: tell the client rather than fake a finish.
                    let err = ApiError::new(ErrorCode::UpstreamError, "The model stream ended early.").openai();
                    yield Ok(Event::default().data(err.body_string()));
                    break;
                }
                Err(status) => {
                    let err = oa(status);
                    yield Ok(Event::default().data(err.body_string()));
                    break;
                }
            }
        }
    };
    let mut response = sse(events, state.config.sse_keep_alive);
    set_iaf_headers(&mut response, &provider, None, None);
    Ok(response)
}

/// A provider route behind a public model name, with its prices.
#[derive(Serialize, ToSchema)]
struct ModelRoute {
    provider: String,
    upstream_model: String,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    configured: bool,
}

#[derive(Serialize, ToSchema)]
struct Model {
    id: String,
    #[schema(inline)]
    object: ModelObject,
    created: i64,
    owned_by: &'static str,
    available: bool,
    #[schema(inline, value_type = DefaultPolicy)]
    default_policy: &'static str,
    routes: Vec<ModelRoute>,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ModelObject {
    Model,
}

// A model's default routing policy (documentation only).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DefaultPolicy {
    Fallback,
    LowestLatency,
    LowestCost,
    Default,
}

/// Public model names, OpenAI's list format.
#[derive(Serialize, ToSchema)]
struct ModelList {
    #[schema(inline)]
    object: ListObject,
    data: Vec<Model>,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ListObject {
    List,
}

fn policy_name(p: i32) -> &'static str {
    match pb::RoutingPolicy::try_from(p) {
        Ok(pb::RoutingPolicy::Fallback) => "fallback",
        Ok(pb::RoutingPolicy::LowestLatency) => "lowest_latency",
        Ok(pb::RoutingPolicy::LowestCost) => "lowest_cost",
        _ => "default",
    }
}

/// Public model names (OpenAI list format) with the provider routes behind each.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "llm",
    responses((status = 200, description = "Models.", body = ModelList)),
)]
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::ListModelsRequest {}, &headers, &[]).map_err(oa)?;
    let list = state
        .llm_client()
        .list_models(req)
        .await
        .map_err(oa)?
        .into_inner();
    Ok(json(
        StatusCode::OK,
        &ModelList {
            object: ListObject::List,
            data: list
                .models
                .into_iter()
                .map(|m| Model {
                    id: m.name,
                    object: ModelObject::Model,
                    created: 0,
                    owned_by: "iafactory",
                    available: m.available,
                    default_policy: policy_name(m.default_policy),
                    routes: m
                        .routes
                        .into_iter()
                        .map(|r| ModelRoute {
                            provider: r.provider,
                            upstream_model: r.upstream_model,
                            input_usd_per_mtok: r.input_usd_per_mtok,
                            output_usd_per_mtok: r.output_usd_per_mtok,
                            configured: r.configured,
                        })
                        .collect(),
                })
                .collect(),
        },
    ))
}

#[derive(Serialize, ToSchema)]
struct ModelUsage {
    model: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_usd: f64,
}

/// The calling key's usage this month against its package quota.
#[derive(Serialize, ToSchema)]
struct Usage {
    #[schema(inline)]
    object: UsageObject,
    key_id: String,
    user_id: String,
    package: String,
    period: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    cost_usd: f64,
    tokens_per_month: u64,
    tokens_remaining: u64,
    requests_per_minute: u32,
    resets_at: String,
    models: Vec<ModelUsage>,
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum UsageObject {
    Usage,
}

/// The calling key's usage this month against its package quota.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "llm",
    security(("apiKey" = [])),
    responses(
        (status = 200, description = "Usage.", body = Usage),
        (status = 400, response = inline(errors::BadRequest)),
        (status = 401, response = inline(errors::Unauthorized)),
    ),
)]
pub async fn usage(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    require_bearer(&headers)?;
    let req = backend::request(pb::GetUsageRequest {}, &headers, &[Forward::Authorization])
        .map_err(oa)?;
    let u = state
        .llm_client()
        .get_usage(req)
        .await
        .map_err(oa)?
        .into_inner();
    Ok(json(
        StatusCode::OK,
        &Usage {
            object: UsageObject::Usage,
            key_id: u.key_id,
            user_id: u.user_id,
            package: u.package,
            period: u.period,
            requests: u.requests,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            cost_usd: u.cost_usd,
            tokens_per_month: u.tokens_per_month,
            tokens_remaining: u.tokens_remaining,
            requests_per_minute: u.requests_per_minute,
            resets_at: u.resets_at,
            models: u
                .models
                .into_iter()
                .map(|m| ModelUsage {
                    model: m.model,
                    requests: m.requests,
                    prompt_tokens: m.prompt_tokens,
                    completion_tokens: m.completion_tokens,
                    cost_usd: m.cost_usd,
                })
                .collect(),
        },
    ))
}

/// Refuses a call without any `Authorization: Bearer …` before decoding its body; whether the
/// key is valid is llm-gateway's decision.
fn require_bearer(headers: &HeaderMap) -> Result<(), ApiError> {
    match bearer(headers) {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Missing API key: send Authorization: Bearer iaf_…",
        )
        .openai()),
    }
}
