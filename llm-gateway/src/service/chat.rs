//! Unary chat: admitted, routed, settled against the quota, charged durably, then answered.

use std::sync::Arc;
use std::time::Instant;

use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;
use tonic::Request;

use super::shared::{HoldGuard, Shared, millis, new_id, short, usage_pb};
use super::translate;
use crate::auth::KeyInfo;
use crate::error::GatewayError;
use crate::providers::{self, Usage};
use crate::quota::Hold;
use crate::request_log::Draft;
use crate::routing::Route;
use crate::store::UsageSums;
use crate::usage::to_nano_usd;

/// What a call with `usage` served by `route` costs upstream, nano-USD (what its usage row
/// records, and what a cost budget is charged).
pub(super) fn call_cost_nano(route: &Route, usage: Usage) -> u64 {
    let cost = route.cost_usd(
        u64::from(usage.prompt_tokens),
        u64::from(usage.completion_tokens),
    );
    u64::try_from(to_nano_usd(cost)).unwrap_or(0)
}

impl Shared {
    /// Charges a whole unary call durably (see [`crate::usage`]); returns its cost in USD.
    /// An error means the answer must not be sent.
    pub(super) async fn charge_call(
        &self,
        key: &KeyInfo,
        model: &str,
        route: &Route,
        usage: Usage,
    ) -> Result<f64, GatewayError> {
        let (prompt, completion) = (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens),
        );
        let cost = route.cost_usd(prompt, completion);
        self.usage
            .charge(
                Self::usage_key(key, model, route, now_millis()),
                UsageSums {
                    user_id: key.user_id.clone(),
                    requests: 1,
                    prompt_tokens: i64::from(usage.prompt_tokens),
                    completion_tokens: i64::from(usage.completion_tokens),
                    cost_nano_usd: to_nano_usd(cost),
                },
            )
            .await?;
        route.usage.record(prompt, completion, cost);
        Ok(cost)
    }

    #[tracing::instrument(name = "chat", skip_all, fields(model = short(&request.get_ref().model), key_id = tracing::field::Empty))]
    pub(super) async fn chat(
        self: Arc<Self>,
        request: Request<pb::ChatRequest>,
        draft: &mut Draft,
    ) -> Result<pb::ChatResponse, GatewayError> {
        let started = Instant::now();
        let (key, model, input, policy, held) = self
            .admit(request.metadata(), request.get_ref(), draft)
            .await?;
        // Gives the hold back if the call fails, or if the caller goes away while it runs.
        let mut hold = HoldGuard {
            shared: Some(self.clone()),
            subject: key.quota_subject().to_owned(),
            held,
        };
        let served = self.router.chat(&model, policy, &input).await?;
        let c = served.value;
        let (usage, estimated) = match c.usage {
            Some(u) => (u, false),
            None => (
                Usage::new(
                    input.estimated_prompt_tokens(),
                    providers::estimate_tokens(c.generated_chars()),
                ),
                true,
            ),
        };
        let actual = Hold {
            tokens: u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens),
            cost_nano_usd: call_cost_nano(&served.route, usage),
            budgeted: held.budgeted,
        };
        self.quotas
            .settle(key.quota_subject(), held, actual, now_millis())
            .await;
        hold.shared = None;
        // Durable before the answer leaves; if the store cannot take it, the call fails
        // `unavailable` rather than answering uncharged work.
        let cost = self
            .charge_call(&key, &model.name, &served.route, usage)
            .await?;
        draft.set_served(&served.route, usage, cost);
        self.recent
            .record(&served.route.provider.name, started.elapsed());
        let choices: Vec<pb::Choice> = c.choices.into_iter().map(translate::choice_pb).collect();
        let first = choices.first().cloned().unwrap_or_default();
        Ok(pb::ChatResponse {
            id: new_id(),
            model: model.name.clone(),
            provider: served.route.provider.name.clone(),
            upstream_model: served.route.upstream_model.clone(),
            message: first.message,
            finish_reason: first.finish_reason,
            usage: Some(usage_pb(usage, estimated)),
            cost_usd: cost,
            latency_ms: millis(started.elapsed()),
            attempts: served.attempts,
            created: now_millis() / 1000,
            choices,
            system_fingerprint: c.system_fingerprint.unwrap_or_default(),
        })
    }
}
