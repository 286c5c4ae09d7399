//! Embeddings: admitted like a chat call (one request against the rate limit, the input's token
//! estimate held from the monthly quota), routed over the model's routes with the same retries,
//! fallbacks and breakers, settled, charged durably at the route's input price, then answered.

use std::sync::Arc;
use std::time::Instant;

use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;
use tonic::Request;

use super::chat::call_cost_nano;
use super::shared::{HoldGuard, Shared, millis, short, usage_pb};
use super::validate::validate_embed;
use crate::catalog::ModelKind;
use crate::error::GatewayError;
use crate::providers::Usage;
use crate::quota::Hold;
use crate::request_log::Draft;

impl Shared {
    #[tracing::instrument(name = "embed", skip_all, fields(model = short(&request.get_ref().model), key_id = tracing::field::Empty))]
    pub(super) async fn embed(
        self: Arc<Self>,
        request: Request<pb::EmbedRequest>,
        draft: &mut Draft,
    ) -> Result<pb::EmbedResponse, GatewayError> {
        let started = Instant::now();
        let key = self.authenticate(request.metadata()).await?;
        draft.set_key(&key);
        let input = validate_embed(request.get_ref())?;
        // Embeddings generate nothing: the hold is the input alone.
        let (model, held) = self
            .admit_model(
                &key,
                &request.get_ref().model,
                ModelKind::Embedding,
                u64::from(input.estimated_tokens()),
            )
            .await?;
        // Gives the hold back if the call fails, or if the caller goes away while it runs.
        let mut hold = HoldGuard {
            shared: Some(self.clone()),
            subject: key.quota_subject().to_owned(),
            held,
        };
        let served = self.router.embed(&model, &input).await?;
        let e = served.value;
        // A provider that counts no tokens (Gemini) is charged the estimate, flagged as such,
        // as the chat path does for an answer without usage.
        let (prompt_tokens, estimated) = match e.prompt_tokens {
            Some(n) => (n, false),
            None => (input.estimated_tokens(), true),
        };
        let usage = Usage::new(prompt_tokens, 0);
        let actual = Hold {
            tokens: u64::from(prompt_tokens),
            cost_nano_usd: call_cost_nano(&served.route, usage),
            budgeted: held.budgeted,
        };
        self.quotas
            .settle(key.quota_subject(), held, actual, now_millis())
            .await;
        hold.shared = None;
        // Durable before the answer leaves, as for chat.
        let cost = self
            .charge_call(&key, &model.name, &served.route, usage)
            .await?;
        draft.set_served(&served.route, usage, cost);
        self.recent
            .record(&served.route.provider.name, started.elapsed());
        Ok(pb::EmbedResponse {
            model: model.name.clone(),
            provider: served.route.provider.name.clone(),
            upstream_model: served.route.upstream_model.clone(),
            data: e
                .vectors
                .into_iter()
                .enumerate()
                .map(|(i, vector)| pb::Embedding {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    vector,
                })
                .collect(),
            usage: Some(usage_pb(usage, estimated)),
            cost_usd: cost,
            latency_ms: millis(started.elapsed()),
            attempts: served.attempts,
        })
    }
}
