//! The gRPC handlers: authenticate, validate, check the package, admit against quotas, route,
//! account. Handlers own translation between protobuf and the domain; the rules live in the
//! modules they call. One file per kind of call:
//! - [`validate`]: request checks and the protobuf → domain translation of a chat request;
//! - [`translate`]: the domain → protobuf translation of answers;
//! - [`chat`]: unary chat, charged before it answers;
//! - [`stream`]: streamed chat, charged in durable steps as it is delivered;
//! - [`report`]: a key's usage this month;
//! - [`listing`]: the model catalogue and provider status;
//! - [`recent`]: the latency window behind the landing page's median.

mod chat;
mod listing;
mod recent;
mod report;
mod stream;
mod translate;
mod validate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use iafactory::proto::iafactory::llm::v1 as pb;
use pb::llm_gateway_server::LlmGateway;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, KeyInfo};
use crate::catalog::{ModelKind, Policy};
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::providers::{ChatInput, Usage};
use crate::quota::QuotaManager;
use crate::routing::{ModelEntry, Route, Router};
use crate::store::UsageKey;
use crate::usage::UsageRecorder;

pub use recent::RecentLatencies;
pub use validate::{
    MAX_CONTENT_BYTES, MAX_IMAGE_BYTES, MAX_MAX_TOKENS, MAX_MESSAGES, MAX_STOP, MAX_STOP_BYTES,
    validate,
};

/// Everything the handlers share.
pub struct Shared {
    pub router: Router,
    pub auth: Authenticator,
    pub quotas: QuotaManager,
    pub usage: UsageRecorder,
    pub metrics: Arc<Metrics>,
    pub recent: RecentLatencies,
    /// Required by `ListProviders` (provider names, base URLs, error details are operator
    /// information); `None`: nobody may call it.
    pub internal: Option<iafactory::secret::InternalToken>,
}

#[derive(Clone)]
pub struct GatewayApi {
    pub shared: Arc<Shared>,
}

/// At most 128 bytes of a client-supplied name, for logs (validation refuses longer ones later).
fn short(s: &str) -> &str {
    let mut end = s.len().min(128);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Tokens held from the quota while a call runs: the prompt estimate plus the answer's bound
/// (`max_tokens`, or 256 when the caller sets none).
pub fn token_hold(input: &ChatInput) -> u64 {
    u64::from(input.estimated_prompt_tokens())
        + u64::from(input.max_tokens().unwrap_or(256)).saturating_mul(u64::from(input.choices()))
}

fn usage_pb(u: Usage, estimated: bool) -> pb::TokenUsage {
    pb::TokenUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
        estimated,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

impl Shared {
    /// Authentication, validation, model and package checks, quota admission.
    async fn admit(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        req: &pb::ChatRequest,
    ) -> Result<(Arc<KeyInfo>, Arc<ModelEntry>, ChatInput, Option<Policy>), GatewayError> {
        let key = self.auth.authenticate(metadata).await?;
        tracing::Span::current().record("key_id", key.key_id.as_str());
        let (input, policy) = validate(req)?;
        let model = self
            .router
            .model(&req.model)
            .cloned()
            .ok_or_else(|| GatewayError::ModelNotFound(req.model.clone()))?;
        if !key.may_use(&model.name) {
            return Err(GatewayError::ModelNotAllowed {
                model: model.name.clone(),
                package: key.package.clone(),
            });
        }
        if model.kind != ModelKind::Chat {
            return Err(GatewayError::param(
                "model",
                format!(
                    "{:?} is an embedding model: use the embeddings API",
                    model.name
                ),
            ));
        }
        let hold = token_hold(&input);
        self.quotas.admit(&key.key_id, key.limits, hold).await?;
        Ok((key, model, input, policy))
    }

    /// The usage row a call of `key` on `model` through `route` is charged to in `period`.
    fn usage_key(key: &KeyInfo, model: &str, route: &Route, period: String) -> UsageKey {
        UsageKey {
            key_id: key.key_id.clone(),
            period,
            model: model.to_owned(),
            provider: route.provider.name.clone(),
        }
    }
}

fn outcome<T>(r: &Result<T, GatewayError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    }
}

#[tonic::async_trait]
impl LlmGateway for GatewayApi {
    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        let started = Instant::now();
        let r = self.shared.clone().chat(request).await;
        self.shared
            .metrics
            .request("Chat", outcome(&r), started.elapsed());
        r.map(Response::new).map_err(Status::from)
    }

    type ChatStreamStream = BoxStream<'static, Result<pb::ChatStreamEvent, Status>>;

    async fn chat_stream(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        let started = Instant::now();
        let r = self.shared.clone().chat_stream(request).await;
        self.shared
            .metrics
            .request("ChatStream", outcome(&r), started.elapsed());
        r.map(Response::new).map_err(Status::from)
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        // With a key: what that key can call; a key that does not authenticate is refused
        // rather than shown the whole catalogue.
        let key = if request.metadata().contains_key("authorization") {
            Some(self.shared.auth.authenticate(request.metadata()).await?)
        } else {
            None
        };
        Ok(Response::new(self.shared.list_models(key.as_deref())))
    }

    async fn embed(
        &self,
        _request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        Err(Status::unimplemented("Embed is not implemented yet"))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let allowed = iafactory::grpc::bearer_token(request.metadata())
            .zip(self.shared.internal.as_ref())
            .is_some_and(|(presented, token)| token.matches(presented));
        if !allowed {
            return Err(GatewayError::Forbidden(
                "ListProviders is internal: send authorization: Bearer <INTERNAL_TOKEN>",
            )
            .into());
        }
        Ok(Response::new(self.shared.list_providers()))
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::UsageReport>, Status> {
        let started = Instant::now();
        let r = self.shared.get_usage(request).await;
        self.shared
            .metrics
            .request("GetUsage", outcome(&r), started.elapsed());
        r.map(Response::new).map_err(Status::from)
    }
}
