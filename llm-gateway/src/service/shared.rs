//! What every handler shares: the gateway's parts, admission (authentication, validation, model
//! and package checks, quota), the quota hold of a running call, and small translation helpers.

use std::sync::Arc;
use std::time::Duration;

use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;

use super::recent::RecentLatencies;
use super::validate::validate;
use crate::auth::{Authenticator, KeyInfo};
use crate::catalog::{ModelKind, Policy};
use crate::error::GatewayError;
use crate::notices::QuotaNotices;
use crate::providers::{ChatInput, Usage};
use crate::quota::{Hold, QuotaManager};
use crate::request_log::{Draft, RequestLog};
use crate::routing::{ModelEntry, Route, Router};
use crate::store::UsageKey;
use crate::usage::UsageRecorder;

/// Everything the handlers share.
pub struct Shared {
    pub router: Router,
    pub auth: Authenticator,
    pub quotas: QuotaManager,
    pub usage: UsageRecorder,
    pub recent: RecentLatencies,
    /// Where every authenticated call leaves its row (see [`crate::request_log`]).
    pub log: RequestLog,
    /// Told of every `budget_exceeded` refusal: the operator's "budget spent" e-mail.
    pub notices: Arc<QuotaNotices>,
    /// Required by `ListProviders` (provider names, base URLs, error details are operator
    /// information); `None`: nobody may call it.
    pub internal: Option<iafactory::secret::InternalToken>,
}

/// At most 128 bytes of a client-supplied name, for logs (validation refuses longer ones later).
pub(crate) fn short(s: &str) -> &str {
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

/// The upstream cost held for a call holding `tokens` on `model`: every token priced at the
/// dearest rate (input or output) of any of its routes, rounded up, so that whichever route
/// serves the call, its cost stays within the hold (see [`crate::quota`]).
pub(super) fn cost_hold(model: &ModelEntry, tokens: u64) -> u64 {
    let dearest = model
        .routes
        .iter()
        .chain(model.mock_route.iter())
        .map(|r| r.input_usd_per_mtok.max(r.output_usd_per_mtok))
        .fold(0.0_f64, f64::max);
    let nano = tokens as f64 * dearest * 1_000.0;
    if nano.is_finite() && nano > 0.0 {
        nano.ceil() as u64
    } else {
        0
    }
}

pub(crate) fn usage_pb(u: Usage, estimated: bool) -> pb::TokenUsage {
    pb::TokenUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
        estimated,
        cached_tokens: u.details.cached_tokens,
        prompt_audio_tokens: u.details.prompt_audio_tokens,
        reasoning_tokens: u.details.reasoning_tokens,
        completion_audio_tokens: u.details.completion_audio_tokens,
        accepted_prediction_tokens: u.details.accepted_prediction_tokens,
        rejected_prediction_tokens: u.details.rejected_prediction_tokens,
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

impl Shared {
    /// Authentication, validation, model and package checks, quota admission.
    pub(crate) async fn admit(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        req: &pb::ChatRequest,
        draft: &mut Draft,
    ) -> Result<
        (
            Arc<KeyInfo>,
            Arc<ModelEntry>,
            ChatInput,
            Option<Policy>,
            Hold,
        ),
        GatewayError,
    > {
        let key = self.authenticate(metadata).await?;
        draft.set_key(&key);
        let (input, policy) = validate(req)?;
        let (model, hold) = self
            .admit_model(&key, &req.model, ModelKind::Chat, token_hold(&input))
            .await?;
        Ok((key, model, input, policy, hold))
    }

    /// The caller's key, recorded on the call's span.
    pub(crate) async fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Arc<KeyInfo>, GatewayError> {
        let key = self.auth.authenticate(metadata).await?;
        tracing::Span::current().record("key_id", key.key_id.as_str());
        Ok(key)
    }

    /// What every kind of call goes through once its request is valid: the model exists, the
    /// key's package includes it, it is of the `kind` the RPC serves (naming `model` otherwise),
    /// and the quotas admit one request holding `tokens` tokens (and their [`cost_hold`] under a
    /// cost budget). Returns the model and what is held, for the settlement.
    pub(crate) async fn admit_model(
        &self,
        key: &KeyInfo,
        name: &str,
        kind: ModelKind,
        tokens: u64,
    ) -> Result<(Arc<ModelEntry>, Hold), GatewayError> {
        let model = self
            .router
            .model(name)
            .cloned()
            .ok_or_else(|| GatewayError::ModelNotFound(name.to_owned()))?;
        if !key.may_use(&model.name) {
            return Err(GatewayError::ModelNotAllowed {
                model: model.name.clone(),
                package: key.package.clone(),
            });
        }
        if model.kind != kind {
            let (is, api) = match model.kind {
                ModelKind::Embedding => ("an embedding", "the embeddings API"),
                ModelKind::Chat => ("a chat", "the chat completions API"),
            };
            return Err(GatewayError::param(
                "model",
                format!("{:?} is {is} model: use {api}", model.name),
            ));
        }
        let hold = Hold {
            tokens,
            cost_nano_usd: cost_hold(&model, tokens),
            budgeted: false,
        };
        let held = match self
            .quotas
            .admit(key.quota_subject(), key.limits, hold)
            .await
        {
            Ok(held) => held,
            Err(e @ GatewayError::Budget { .. }) => {
                self.notices.budget_refused(
                    key.quota_subject(),
                    crate::quota::period_of(now_millis()),
                    key.limits.cost_budget_nano_usd.unwrap_or(0),
                );
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        Ok((model, held))
    }

    /// The usage rows a call of `key` on `model` through `route`, started at `started_ms`
    /// (epoch ms), is charged to: its month's and its day's, whenever the charge is made.
    pub(crate) fn usage_key(
        key: &KeyInfo,
        model: &str,
        route: &Route,
        started_ms: i64,
    ) -> UsageKey {
        UsageKey {
            key_id: key.key_id.clone(),
            period: crate::quota::period_of(started_ms),
            day: crate::quota::day_of(started_ms),
            model: model.to_owned(),
            provider: route.provider.name.clone(),
            tokens_per_month: key.limits.tokens_per_month,
            cost_budget_nano_usd: key.limits.cost_budget_nano_usd.unwrap_or(0),
        }
    }
}

/// Returns a token hold to the lease when a unary call is dropped before it settled.
pub(crate) struct HoldGuard {
    /// `None` once settled by other means.
    pub(crate) shared: Option<Arc<Shared>>,
    /// The quota subject the hold was taken from ([`KeyInfo::quota_subject`]).
    pub(crate) subject: String,
    pub(crate) held: Hold,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let (subject, held) = (std::mem::take(&mut self.subject), self.held);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let nothing = Hold::default();
                shared
                    .quotas
                    .settle(&subject, held, nothing, now_millis())
                    .await;
            });
        }
    }
}
