//! The gRPC handlers: authenticate, validate, check the package, admit against quotas, route,
//! account. Handlers own translation between protobuf and the domain; the rules live in the
//! modules they call. One file per kind of call:
//! - [`validate`]: request checks and the protobuf → domain translation of a chat request;
//! - [`translate`]: the domain → protobuf translation of answers;
//! - [`chat`]: unary chat, charged before it answers;
//! - [`stream`]: streamed chat, charged in durable steps as it is delivered;
//! - [`embed`]: embeddings, admitted, routed and charged like unary chat;
//! - [`report`]: a key's usage this month;
//! - [`listing`]: the model catalogue and provider status;
//! - [`recent`]: the latency window behind the landing page's median;
//! - [`shared`]: what they share (the gateway's parts, admission, the quota hold).
//!
//! This file only maps each RPC to its handler.

mod chat;
mod embed;
mod listing;
mod log_api;
mod recent;
mod report;
mod shared;
mod stream;
mod translate;
mod validate;

use std::sync::Arc;

use futures::stream::BoxStream;
use iafactory::proto::iafactory::llm::v1 as pb;
use pb::llm_gateway_server::LlmGateway;
use tonic::{Request, Response, Status};

use crate::error::GatewayError;
use crate::request_log::{CallKind, trace};

pub use log_api::RequestLogApi;
pub use recent::RecentLatencies;
pub use shared::{Shared, token_hold};
pub use validate::{
    MAX_ANSWER_BYTES, MAX_CONTENT_BYTES, MAX_DIMENSIONS, MAX_EMBED_INPUTS, MAX_IMAGE_BYTES,
    MAX_MAX_TOKENS, MAX_MESSAGES, MAX_STOP, MAX_STOP_BYTES, validate, validate_embed,
};

#[derive(Clone)]
pub struct GatewayApi {
    pub shared: Arc<Shared>,
}

#[tonic::async_trait]
impl LlmGateway for GatewayApi {
    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        let mut draft =
            self.shared
                .log
                .draft(CallKind::Chat, request.metadata(), &request.get_ref().model);
        let r = trace::scope(draft.trace(), self.shared.clone().chat(request, &mut draft)).await;
        draft.finish(r.as_ref().map(|_| ()));
        r.map(Response::new).map_err(Status::from)
    }

    type ChatStreamStream = BoxStream<'static, Result<pb::ChatStreamEvent, Status>>;

    async fn chat_stream(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        let mut draft = self.shared.log.draft(
            CallKind::ChatStream,
            request.metadata(),
            &request.get_ref().model,
        );
        let r = trace::scope(
            draft.trace(),
            self.shared.clone().chat_stream(request, &mut draft),
        )
        .await;
        // Inert when the stream took it along.
        draft.finish(r.as_ref().map(|_| ()));
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
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        let mut draft = self.shared.log.draft(
            CallKind::Embed,
            request.metadata(),
            &request.get_ref().model,
        );
        let r = trace::scope(
            draft.trace(),
            self.shared.clone().embed(request, &mut draft),
        )
        .await;
        draft.finish(r.as_ref().map(|_| ()));
        r.map(Response::new).map_err(Status::from)
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
        let r = self.shared.get_usage(request).await;
        r.map(Response::new).map_err(Status::from)
    }

    async fn get_keys_usage(
        &self,
        request: Request<pb::GetKeysUsageRequest>,
    ) -> Result<Response<pb::KeysUsage>, Status> {
        let allowed = iafactory::grpc::bearer_token(request.metadata())
            .zip(self.shared.internal.as_ref())
            .is_some_and(|(presented, token)| token.matches(presented));
        if !allowed {
            return Err(GatewayError::Forbidden(
                "GetKeysUsage is internal: send authorization: Bearer <INTERNAL_TOKEN>",
            )
            .into());
        }
        let report = crate::keys_usage::keys_usage(
            &self.shared.usage,
            request.get_ref(),
            iafactory::db::now_millis(),
        )
        .await?;
        Ok(Response::new(report))
    }
}
