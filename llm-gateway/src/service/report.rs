//! A key's usage this month, summed per model from the usage store, against its customer's
//! monthly quota.

use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;
use tonic::Request;

use super::shared::Shared;
use crate::error::GatewayError;
use crate::quota::{next_period_start_ms, period_of};

impl Shared {
    pub(super) async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<pb::UsageReport, GatewayError> {
        let key = self.auth.authenticate(request.metadata()).await?;
        let now = now_millis();
        let period = period_of(now);
        let rows = self.usage.report(&key.key_id, &period).await?;
        let mut report = pb::UsageReport {
            key_id: key.key_id.clone(),
            user_id: key.user_id.clone(),
            package: key.package.clone(),
            period: period.clone(),
            tokens_per_month: key.limits.tokens_per_month,
            requests_per_minute: key.limits.requests_per_minute,
            resets_at: chrono::DateTime::from_timestamp_millis(next_period_start_ms(now))
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            ..Default::default()
        };
        let mut per_model: std::collections::BTreeMap<String, pb::ModelUsage> =
            std::collections::BTreeMap::new();
        let mut cost_nano = 0i64;
        for (k, s) in rows {
            let (req, pt, ct) = (
                u64::try_from(s.requests).unwrap_or(0),
                u64::try_from(s.prompt_tokens).unwrap_or(0),
                u64::try_from(s.completion_tokens).unwrap_or(0),
            );
            report.requests += req;
            report.prompt_tokens += pt;
            report.completion_tokens += ct;
            cost_nano += s.cost_nano_usd;
            let m = per_model
                .entry(k.model.clone())
                .or_insert_with(|| pb::ModelUsage {
                    model: k.model.clone(),
                    ..Default::default()
                });
            m.requests += req;
            m.prompt_tokens += pt;
            m.completion_tokens += ct;
            m.cost_usd += s.cost_nano_usd as f64 / 1e9;
        }
        report.total_tokens = report.prompt_tokens + report.completion_tokens;
        report.cost_usd = cost_nano as f64 / 1e9;
        // The quota is the customer's: what is left depends on all their keys.
        let customer_used = self.usage.customer_tokens(&key.user_id, &period).await?;
        report.tokens_remaining = key.limits.tokens_per_month.saturating_sub(customer_used);
        report.models = per_model.into_values().collect();
        Ok(report)
    }
}
