//! `GetKeysUsage`: this month's usage of a list of keys, for the customer account of
//! gateway-rest (which lists a signed-in customer's keys with promo-service, then asks here).
//! Reads `llm_usage` by key and month (its primary key's prefix), so the cost grows with the
//! keys asked, not with the table.

use std::collections::BTreeMap;

use iafactory::proto::iafactory::llm::v1 as pb;

use crate::error::GatewayError;
use crate::quota::{day_of, next_period_start_ms, period_of};
use crate::usage::UsageRecorder;

/// Most keys one call may ask about (a customer holds at most 10 live keys, plus revoked ones).
pub const MAX_KEYS: usize = 50;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub async fn keys_usage(
    usage: &UsageRecorder,
    req: &pb::GetKeysUsageRequest,
    now: i64,
) -> Result<pb::KeysUsage, GatewayError> {
    if req.key_ids.is_empty() || req.key_ids.len() > MAX_KEYS {
        return Err(GatewayError::InvalidArgument(format!(
            "key_ids: 1 to {MAX_KEYS} ids, got {}",
            req.key_ids.len()
        )));
    }
    if let Some(bad) = req.key_ids.iter().find(|k| k.is_empty() || k.len() > 64) {
        return Err(GatewayError::InvalidArgument(format!(
            "key_ids: not a key id: {:?}",
            bad.chars().take(64).collect::<String>()
        )));
    }
    let period = period_of(now);
    let mut out = pb::KeysUsage {
        period: period.clone(),
        resets_at: rfc3339(next_period_start_ms(now)),
        ..Default::default()
    };
    let mut models: BTreeMap<String, pb::ModelUsage> = BTreeMap::new();
    let mut cost_nano = 0i64;
    // Every day from the 1st to today, zeros for days without usage.
    let today = day_of(now);
    let mut days: BTreeMap<String, pb::DayUsage> = (1..=31)
        .map(|d| format!("{period}-{d:02}"))
        .take_while(|d| *d <= today)
        .map(|day| {
            (
                day.clone(),
                pb::DayUsage {
                    day,
                    ..Default::default()
                },
            )
        })
        .collect();
    for key_id in &req.key_ids {
        let mut key = pb::KeyUsage {
            key_id: key_id.clone(),
            ..Default::default()
        };
        for (k, s) in usage.report(key_id, &period).await? {
            let (requests, prompt, completion) = (
                u64::try_from(s.requests).unwrap_or(0),
                u64::try_from(s.prompt_tokens).unwrap_or(0),
                u64::try_from(s.completion_tokens).unwrap_or(0),
            );
            key.requests += requests;
            key.total_tokens += prompt + completion;
            out.requests += requests;
            out.prompt_tokens += prompt;
            out.completion_tokens += completion;
            cost_nano += s.cost_nano_usd;
            let m = models
                .entry(k.model.clone())
                .or_insert_with(|| pb::ModelUsage {
                    model: k.model.clone(),
                    ..Default::default()
                });
            m.requests += requests;
            m.prompt_tokens += prompt;
            m.completion_tokens += completion;
            m.cost_usd += s.cost_nano_usd as f64 / 1e9;
        }
        for (day, s) in usage.report_by_day(key_id, &period).await? {
            let d = days.entry(day.clone()).or_insert_with(|| pb::DayUsage {
                day,
                ..Default::default()
            });
            d.requests += u64::try_from(s.requests).unwrap_or(0);
            d.prompt_tokens += u64::try_from(s.prompt_tokens).unwrap_or(0);
            d.completion_tokens += u64::try_from(s.completion_tokens).unwrap_or(0);
        }
        key.last_used_at = usage
            .last_used(key_id)
            .await?
            .map(rfc3339)
            .unwrap_or_default();
        out.keys.push(key);
    }
    out.total_tokens = out.prompt_tokens + out.completion_tokens;
    out.cost_usd = cost_nano as f64 / 1e9;
    out.models = models.into_values().collect();
    out.days = days
        .into_values()
        .map(|mut d| {
            d.total_tokens = d.prompt_tokens + d.completion_tokens;
            d
        })
        .collect();
    Ok(out)
}
