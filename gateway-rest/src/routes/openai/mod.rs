//! `/v1/*`: the OpenAI-compatible API over llm-gateway.
//!
//! Requests and answers follow OpenAI's shapes for the official SDKs and the libraries built on
//! them (LangChain, the Vercel AI SDK): `chat.completion` objects with every choice, tool calls,
//! refusals and log probabilities; `chat.completion.chunk` server-sent events ending with
//! `data: [DONE]`; embeddings; `{"object":"list","data":[…]}` for models; and errors as
//! `{"error":{"message","type","param","code"}}`, in English, `param` naming the field at fault.
//! The customer's `Authorization: Bearer iaf_…` travels to llm-gateway as gRPC metadata.
//!
//! Each DTO's schema is derived from the type itself: a new request field or answer field is one
//! field here (with its `#[schema(…)]` constraints when it has any), a new route one annotated
//! handler plus its line in [`router`].

mod answer;
mod embeddings;
pub mod request;
mod stream;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::backend::{self, Forward};
use crate::error::ApiError;
use crate::extract::{bearer, is_json_non_object, not_an_object, read_json_bytes};
use crate::openapi::{family, openai as errors};
use crate::respond::json;
use crate::state::AppState;
use answer::{ChatCompletion, ChatCompletionChunk};
use request::ChatCompletionRequest;

type ApiResult = Result<Response, ApiError>;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(StreamSchemas::openapi())
        .routes(routes!(chat_completions))
        .routes(routes!(embeddings::embeddings))
        .routes(routes!(models))
        .routes(routes!(model))
        .routes(routes!(usage))
}

fn oa(e: impl Into<ApiError>) -> ApiError {
    e.into().openai()
}

/// Decodes a `/v1` body into `T`. A refusal names the field at fault as OpenAI's `param`
/// (`messages[0].foo`, `temperature`) and speaks English.
fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if is_json_non_object(bytes) {
        return Err(not_an_object().openai());
    }
    let malformed = |e: serde_json::Error| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("We could not parse the JSON body of your request: {e}"),
        )
        .openai()
    };
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !matches!(inner.classify(), Category::Data) {
            return malformed(inner);
        }
        let mut message = inner.to_string();
        if message.starts_with("data did not match any variant") {
            // serde's wording for a value of none of a field's shapes (tool_choice, stop,
            // input): say it in the client's terms.
            message = "the value has none of the accepted shapes (see /openapi.json)".to_owned();
        }
        let mut param = (path != ".").then_some(path);
        // A missing field is reported at its parent: name the field itself.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            param = Some(match param {
                Some(parent) => format!("{parent}.{field}"),
                None => field.to_owned(),
            });
        }
        let what = param.as_deref().unwrap_or("request body");
        let err = ApiError::new(
            ErrorCode::InvalidArgument,
            format!("Invalid {what}: {message}"),
        )
        .openai();
        match param {
            Some(p) => err.with_param(p),
            None => err,
        }
    })?;
    de.end().map_err(malformed)?;
    Ok(value)
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

/// OpenAI-compatible chat completion: every Chat Completions field is carried or refused with a 400 naming it. With "stream": true, server-sent `chat.completion.chunk` events ending with `data: [DONE]`.
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
                ("x-iaf-cost-usd" = String, description = "Upstream cost of the call in US dollars (non-streaming; only when the operator shows it, SHOW_UPSTREAM_COST)."),
            ),
        ),
        family::ModelCall,
    ),
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    // Like OpenAI: a request without credentials is a 401 whatever its body.
    require_bearer(&headers)?;
    let bytes = read_json_bytes(&headers, body, state.config.body_limit)
        .await
        .map_err(oa)?;
    let input: ChatCompletionRequest = parse_body(&bytes)?;
    let t = request::translate(input)?;
    let req = backend::request(t.request, &headers, &[Forward::Authorization]).map_err(oa)?;
    if t.stream {
        return stream::chat_stream(state, req, t.include_usage).await;
    }
    let r = state.llm_client().chat(req).await.map_err(oa)?.into_inner();
    let show_cost = state.config.show_upstream_cost;
    let (provider, latency_ms, cost_usd) = (r.provider.clone(), r.latency_ms, r.cost_usd);
    let mut response = json(StatusCode::OK, &ChatCompletion::from_pb(r, show_cost));
    set_iaf_headers(
        &mut response,
        &provider,
        Some(latency_ms),
        show_cost.then_some(cost_usd),
    );
    Ok(response)
}

/// One server-sent event of a streamed chat completion.
// Documentation only: axum's `Event` writes it.
#[derive(ToSchema)]
pub struct ChatCompletionEvent {
    pub event: Option<String>,
    /// JSON of a `ChatCompletionChunk`; `[DONE]` at the end of the stream; or, when the stream
    /// fails after it started, `{"error":{…}}` (OpenAI's error body) and no `[DONE]`.
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// The chunk travels as text inside the events' `data`, where no derive can point at it: it is
/// listed among the document's schemas so clients still see its shape.
#[derive(OpenApi)]
#[openapi(components(schemas(ChatCompletionChunk)))]
struct StreamSchemas;

/// A provider route behind a public model name, with its prices and what it can do.
#[derive(Serialize, ToSchema)]
struct ModelRoute {
    provider: String,
    upstream_model: String,
    /// The provider's prices (our cost); only when the operator shows them (`SHOW_UPSTREAM_COST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    input_usd_per_mtok: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_usd_per_mtok: Option<f64>,
    configured: bool,
    capabilities: Capabilities,
}

/// What a route can carry: a request needing a capability only goes to routes having it.
#[derive(Serialize, ToSchema)]
struct Capabilities {
    tools: bool,
    vision: bool,
    json_object: bool,
    json_schema: bool,
    logprobs: bool,
    /// `n` above 1.
    multiple_choices: bool,
    /// `reasoning_effort`.
    reasoning: bool,
    /// Context window in tokens; 0 when unknown.
    context_length: u32,
    /// Largest answer in tokens; 0 when unknown.
    max_output_tokens: u32,
    /// Embedding models: `dimensions` is accepted.
    dimensions: bool,
}

/// OpenAI's model object, with the platform's routing details.
#[derive(Serialize, ToSchema)]
struct Model {
    id: String,
    #[schema(inline)]
    object: ModelObject,
    /// Unix time the model was added to the catalogue.
    created: i64,
    /// The provider family that makes it (`meta`, `openai`, `anthropic`, ...).
    owned_by: String,
    #[schema(inline)]
    kind: ModelKind,
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

/// Chat completions or embeddings.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ModelKind {
    Chat,
    Embedding,
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

pub(crate) fn policy_name(p: i32) -> &'static str {
    match pb::RoutingPolicy::try_from(p) {
        Ok(pb::RoutingPolicy::Fallback) => "fallback",
        Ok(pb::RoutingPolicy::LowestLatency) => "lowest_latency",
        Ok(pb::RoutingPolicy::LowestCost) => "lowest_cost",
        _ => "default",
    }
}

impl Model {
    /// The model in OpenAI's shape; route prices (our cost) only with `show_cost`.
    fn from_pb(m: pb::Model, show_cost: bool) -> Self {
        Model {
            id: m.name,
            object: ModelObject::Model,
            created: m.created,
            owned_by: if m.owned_by.is_empty() {
                "iafactory".to_owned()
            } else {
                m.owned_by
            },
            kind: match pb::ModelKind::try_from(m.kind) {
                Ok(pb::ModelKind::Embedding) => ModelKind::Embedding,
                _ => ModelKind::Chat,
            },
            available: m.available,
            default_policy: policy_name(m.default_policy),
            routes: m
                .routes
                .into_iter()
                .map(|r| {
                    let c = r.capabilities.unwrap_or_default();
                    ModelRoute {
                        provider: r.provider,
                        upstream_model: r.upstream_model,
                        input_usd_per_mtok: show_cost.then_some(r.input_usd_per_mtok),
                        output_usd_per_mtok: show_cost.then_some(r.output_usd_per_mtok),
                        configured: r.configured,
                        capabilities: Capabilities {
                            tools: c.tools,
                            vision: c.vision,
                            json_object: c.json_object,
                            json_schema: c.json_schema,
                            logprobs: c.logprobs,
                            multiple_choices: c.multiple_choices,
                            reasoning: c.reasoning,
                            context_length: c.context_length,
                            max_output_tokens: c.max_output_tokens,
                            dimensions: c.dimensions,
                        },
                    }
                })
                .collect(),
        }
    }
}

/// The catalogue as llm-gateway lists it: with the caller's key, only the models that key can
/// call (its package's models with a configured route); without one, every model.
pub(crate) async fn list_models(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Vec<pb::Model>, ApiError> {
    let forward: &[Forward] = if headers.contains_key(http::header::AUTHORIZATION) {
        &[Forward::Authorization]
    } else {
        &[]
    };
    let req = backend::request(pb::ListModelsRequest {}, headers, forward).map_err(oa)?;
    Ok(state
        .llm_client()
        .list_models(req)
        .await
        .map_err(oa)?
        .into_inner()
        .models)
}

/// Public model names (OpenAI list format) with the provider routes behind each. With an API key: the models that key can call; without: the whole catalogue.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "llm",
    security((), ("apiKey" = [])),
    responses(
        (status = 200, description = "Models.", body = ModelList),
        (status = 401, response = inline(errors::Unauthorized)),
        (status = 402, response = inline(errors::PaymentRequired)),
    ),
)]
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let models = list_models(&state, &headers).await?;
    Ok(json(
        StatusCode::OK,
        &ModelList {
            object: ListObject::List,
            data: models
                .into_iter()
                .map(|m| Model::from_pb(m, state.config.show_upstream_cost))
                .collect(),
        },
    ))
}

/// One model (OpenAI's model object). With an API key, a model that key cannot call is not found, as OpenAI answers.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    tag = "llm",
    security((), ("apiKey" = [])),
    params(("id" = String, Path, description = "Public model name.")),
    responses(
        (status = 200, description = "The model.", body = Model),
        (status = 400, response = inline(errors::BadRequest)),
        (status = 401, response = inline(errors::Unauthorized)),
        (status = 402, response = inline(errors::PaymentRequired)),
        (status = 404, response = inline(errors::NotFound)),
    ),
)]
pub async fn model(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> ApiResult {
    let id = crate::extract::path_param(id).map_err(oa)?;
    let found = list_models(&state, &headers)
        .await?
        .into_iter()
        .find(|m| m.name == id);
    match found {
        Some(m) => Ok(json(
            StatusCode::OK,
            &Model::from_pb(m, state.config.show_upstream_cost),
        )),
        None => Err(ApiError::new(
            ErrorCode::ModelNotFound,
            format!("The model {id:?} does not exist or you do not have access to it."),
        )
        .openai()
        .with_param("model")),
    }
}

#[derive(Serialize, ToSchema)]
struct ModelUsage {
    model: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Only when the operator shows upstream costs (`SHOW_UPSTREAM_COST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
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
    /// Only when the operator shows upstream costs (`SHOW_UPSTREAM_COST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
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
        (status = 402, response = inline(errors::PaymentRequired)),
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
    let show_cost = state.config.show_upstream_cost;
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
            cost_usd: show_cost.then_some(u.cost_usd),
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
                    cost_usd: show_cost.then_some(m.cost_usd),
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
