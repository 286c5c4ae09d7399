//! `/v1/*`: the OpenAI-compatible API over llm-gateway, plus the operator's provider status.
//!
//! Requests and answers follow OpenAI's Chat Completions shapes closely enough for the official
//! SDKs: `chat.completion` objects, `chat.completion.chunk` server-sent events ending with
//! `data: [DONE]`, `{"object":"list","data":[…]}` for models, and `{"error":{…,"type"}}` errors.
//! The customer's `Authorization: Bearer iaf_…` travels to llm-gateway as gRPC metadata.

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::response::sse::Event;
use http::{HeaderMap, HeaderValue, StatusCode};
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as pb;
use pb::llm_gateway_client::LlmGatewayClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::AppState;
use crate::backend::{self, Forward};
use crate::edge::StreamSlot;
use crate::error::ApiError;
use crate::extract::read_json;
use crate::promo::{json, sse};

type ApiResult = Result<Response, ApiError>;

fn client(state: &AppState) -> LlmGatewayClient<Channel> {
    LlmGatewayClient::new(state.llm.channel())
        .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
}

fn oa(e: impl Into<ApiError>) -> ApiError {
    e.into().openai()
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, message).openai()
}

// ---------------------------------------------------------------------------------------------
// Request

#[derive(Deserialize)]
pub struct ChatCompletionIn {
    model: String,
    messages: Vec<MessageIn>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    n: Option<u32>,
    /// IAFactory extension: `fallback`, `lowest_latency` or `lowest_cost`.
    #[serde(default)]
    routing: Option<String>,
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
struct MessageIn {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

struct Translated {
    request: pb::ChatRequest,
    stream: bool,
    include_usage: bool,
}

fn translate(input: ChatCompletionIn) -> Result<Translated, ApiError> {
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

#[derive(Serialize)]
struct UsageOut {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

impl From<Option<pb::TokenUsage>> for UsageOut {
    fn from(u: Option<pb::TokenUsage>) -> Self {
        let u = u.unwrap_or_default();
        UsageOut {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
        }
    }
}

#[derive(Serialize)]
struct ChoiceMessage {
    role: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Choice {
    index: u32,
    message: ChoiceMessage,
    finish_reason: String,
    logprobs: Option<()>,
}

/// What the platform adds to OpenAI's object (also sent as `x-iaf-*` headers).
#[derive(Serialize)]
struct IafInfo {
    provider: String,
    upstream_model: String,
    cost_usd: f64,
    latency_ms: u64,
    attempts: u32,
    usage_estimated: bool,
}

#[derive(Serialize)]
struct Completion {
    id: String,
    object: &'static str,
    created: i64,
    model: String,
    choices: [Choice; 1],
    usage: UsageOut,
    system_fingerprint: Option<()>,
    iaf: IafInfo,
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

/// `POST /v1/chat/completions`
pub async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    // Like OpenAI: a request without credentials is a 401 whatever its body.
    require_bearer(&headers)?;
    let input: ChatCompletionIn = read_json(&headers, body, state.config.body_limit)
        .await
        .map_err(ApiError::openai)?;
    let t = translate(input)?;
    let req = backend::request(t.request, &headers, &[Forward::Authorization]).map_err(oa)?;
    if t.stream {
        return chat_stream(state, req, t.include_usage).await;
    }
    let r = client(&state).chat(req).await.map_err(oa)?.into_inner();
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
        &Completion {
            id: r.id,
            object: "chat.completion",
            created: r.created,
            model: r.model,
            choices: [Choice {
                index: 0,
                message: ChoiceMessage {
                    role: "assistant",
                    content,
                },
                finish_reason: r.finish_reason,
                logprobs: None,
            }],
            usage: UsageOut::from(r.usage),
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

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iaf: Option<IafInfo>,
}

#[derive(Serialize)]
struct ChunkChoice {
    index: u32,
    delta: Delta,
    finish_reason: Option<String>,
    logprobs: Option<()>,
}

#[derive(Serialize, Default)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

fn chunk_event(chunk: &Chunk<'_>) -> Event {
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
    let slot = StreamSlot::acquire(&state, crate::error::Flavor::OpenAi)?;
    let mut upstream = client(&state)
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
        yield Ok::<Event, Infallible>(chunk_event(&Chunk {
            id: &id, object: "chat.completion.chunk", created, model: &model,
            choices: vec![ChunkChoice { index: 0, delta: Delta { role: Some("assistant"), content: Some(String::new()) }, finish_reason: None, logprobs: None }],
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
                        yield Ok(chunk_event(&Chunk {
                            id: &id, object: "chat.completion.chunk", created, model: &model,
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
                        yield Ok(chunk_event(&Chunk {
                            id: &id, object: "chat.completion.chunk", created, model: &model,
                            choices: vec![ChunkChoice { index: 0, delta: Delta::default(), finish_reason: Some(end.finish_reason), logprobs: None }],
                            usage: None, iaf: Some(info),
                        }));
                        if include_usage {
                            yield Ok(chunk_event(&Chunk {
                                id: &id, object: "chat.completion.chunk", created, model: &model,
                                choices: Vec::new(), usage: Some(UsageOut::from(end.usage)), iaf: None,
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

#[derive(Serialize)]
struct RouteOut {
    provider: String,
    upstream_model: String,
    input_usd_per_mtok: f64,
    output_usd_per_mtok: f64,
    configured: bool,
}

#[derive(Serialize)]
struct ModelOut {
    id: String,
    object: &'static str,
    created: i64,
    owned_by: &'static str,
    available: bool,
    default_policy: &'static str,
    routes: Vec<RouteOut>,
}

fn policy_name(p: i32) -> &'static str {
    match pb::RoutingPolicy::try_from(p) {
        Ok(pb::RoutingPolicy::Fallback) => "fallback",
        Ok(pb::RoutingPolicy::LowestLatency) => "lowest_latency",
        Ok(pb::RoutingPolicy::LowestCost) => "lowest_cost",
        _ => "default",
    }
}

/// `GET /v1/models` (OpenAI list format, with the platform's routes per model).
pub async fn models(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = backend::request(pb::ListModelsRequest {}, &headers, &[]).map_err(oa)?;
    let list = client(&state)
        .list_models(req)
        .await
        .map_err(oa)?
        .into_inner();
    #[derive(Serialize)]
    struct Out {
        object: &'static str,
        data: Vec<ModelOut>,
    }
    Ok(json(
        StatusCode::OK,
        &Out {
            object: "list",
            data: list
                .models
                .into_iter()
                .map(|m| ModelOut {
                    id: m.name,
                    object: "model",
                    created: 0,
                    owned_by: "iafactory",
                    available: m.available,
                    default_policy: policy_name(m.default_policy),
                    routes: m
                        .routes
                        .into_iter()
                        .map(|r| RouteOut {
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

#[derive(Serialize)]
struct ModelUsageOut {
    model: String,
    requests: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    cost_usd: f64,
}

#[derive(Serialize)]
struct UsageReportOut {
    object: &'static str,
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
    models: Vec<ModelUsageOut>,
}

/// `GET /v1/usage`: the calling key's usage this month against its package quota.
pub async fn usage(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    require_bearer(&headers)?;
    let req = backend::request(pb::GetUsageRequest {}, &headers, &[Forward::Authorization])
        .map_err(oa)?;
    let u = client(&state)
        .get_usage(req)
        .await
        .map_err(oa)?
        .into_inner();
    Ok(json(
        StatusCode::OK,
        &UsageReportOut {
            object: "usage",
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
                .map(|m| ModelUsageOut {
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

#[derive(Serialize)]
struct ProviderOut {
    name: String,
    kind: String,
    base_url: String,
    configured: bool,
    circuit_state: &'static str,
    ewma_latency_ms: f64,
    requests: u64,
    failures: u64,
    consecutive_failures: u32,
    last_error: Option<String>,
    last_error_at_ms: Option<i64>,
}

fn circuit_name(c: i32) -> &'static str {
    match pb::CircuitState::try_from(c) {
        Ok(pb::CircuitState::Closed) => "closed",
        Ok(pb::CircuitState::Open) => "open",
        Ok(pb::CircuitState::HalfOpen) => "half_open",
        _ => "unspecified",
    }
}

/// `GET /api/gateway/providers` (admin): provider configuration, circuit state, latency, errors.
pub async fn providers(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    require_admin(&state, &headers)?;
    let list = list_providers(&state, &headers).await?;
    #[derive(Serialize)]
    struct Out {
        mock_active: bool,
        providers: Vec<ProviderOut>,
    }
    Ok(json(
        StatusCode::OK,
        &Out {
            mock_active: list.mock_active,
            providers: list
                .providers
                .into_iter()
                .map(|p| ProviderOut {
                    name: p.name,
                    kind: p.kind,
                    base_url: p.base_url,
                    configured: p.configured,
                    circuit_state: circuit_name(p.circuit_state),
                    ewma_latency_ms: p.ewma_latency_ms,
                    requests: p.requests,
                    failures: p.failures,
                    consecutive_failures: p.consecutive_failures,
                    last_error: (!p.last_error.is_empty()).then_some(p.last_error),
                    last_error_at_ms: (p.last_error_at_ms != 0).then_some(p.last_error_at_ms),
                })
                .collect(),
        },
    ))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
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

#[derive(Serialize)]
struct PlatformStatus {
    providers_configured: usize,
    median_latency_ms: Option<f64>,
    mock_active: bool,
}

/// `GET /api/platform/status` (public): the landing page's figures — how many real providers are
/// configured and the median latency of the last calls they answered. Aggregates only: no names, URLs or error details.
pub async fn platform_status(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let list = list_providers(&state, &headers).await?;
    let real: Vec<&pb::ProviderStatus> = list
        .providers
        .iter()
        .filter(|p| p.configured && p.kind != "mock")
        .collect();
    // The gateway's median over its last real-provider calls (the mock is never counted).
    let median_latency_ms = list
        .median_latency_ms
        .filter(|m| m.is_finite() && list.recent_calls > 0);
    Ok(json(
        StatusCode::OK,
        &PlatformStatus {
            providers_configured: real.len(),
            median_latency_ms,
            mock_active: list.mock_active,
        },
    ))
}

/// llm-gateway's `ListProviders`, called with gateway-rest's internal token (llm-gateway answers
/// only the platform's services). A token missing here or refused there is gateway-rest's own
/// misconfiguration: a logged 503 for the caller, never a 401/403 that would read as theirs.
async fn list_providers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<pb::ListProvidersResponse, ApiError> {
    let unavailable = || {
        ApiError::new(
            ErrorCode::Unavailable,
            "État des fournisseurs momentanément indisponible.",
        )
    };
    let Some(token) = &state.config.internal_token else {
        tracing::error!(
            "INTERNAL_TOKEN is not set on gateway-rest: llm-gateway's provider list cannot be read"
        );
        return Err(unavailable());
    };
    let mut req = backend::request(pb::ListProvidersRequest {}, headers, &[])?;
    iafactory::grpc::set_bearer(&mut req, token.expose());
    match client(state).list_providers(req).await {
        Ok(list) => Ok(list.into_inner()),
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            tracing::error!(
                message = status.message(),
                "llm-gateway refused gateway-rest's INTERNAL_TOKEN"
            );
            Err(unavailable())
        }
        Err(status) => Err(status.into()),
    }
}

/// The provider list is operator information: it needs gateway-rest's admin token.
fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Jeton d'administration manquant (Authorization: Bearer …).",
        ));
    };
    match &state.config.admin_token {
        Some(expected) if expected.matches(token) => Ok(()),
        Some(_) => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "Jeton d'administration invalide.",
        )),
        None => Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "Route d'administration désactivée : ADMIN_TOKEN n'est pas configuré sur gateway-rest.",
        )),
    }
}
