//! Stored rows and domain values as protobuf messages.

use iafactory::proto::iafactory::promo::v1 as pb;

use crate::clock::rfc3339;
use crate::domain;
use crate::error::Refusal;
use crate::live::Count;
use crate::outbox::{MailRow, MailStatus};
use crate::repo::{CodeRow, PackageRow};

pub(super) fn refused(
    reason: Refusal,
    code: String,
    remaining: Option<u32>,
) -> pb::ValidateCodeResponse {
    pb::ValidateCodeResponse {
        valid: false,
        reason: refusal_pb(reason).into(),
        discount_percent: 0,
        duration_months: 0,
        message: reason.message().to_owned(),
        code,
        remaining,
    }
}

fn refusal_pb(reason: Refusal) -> pb::RefusalReason {
    match reason {
        Refusal::Unknown => pb::RefusalReason::Unknown,
        Refusal::Inactive => pb::RefusalReason::Inactive,
        Refusal::NotYetValid => pb::RefusalReason::NotYetValid,
        Refusal::Expired => pb::RefusalReason::Expired,
        Refusal::Exhausted => pb::RefusalReason::Exhausted,
        Refusal::NotForPackage => pb::RefusalReason::NotForPackage,
    }
}

pub(super) fn remaining_msg(code: &str, count: Count) -> pb::Remaining {
    match count.max {
        Some(max) => pb::Remaining {
            code: code.to_owned(),
            remaining: max.saturating_sub(count.used),
            total: max,
            percent_filled: domain::percent_filled(count.used, max),
            unlimited: false,
        },
        None => pb::Remaining {
            code: code.to_owned(),
            remaining: 0,
            total: 0,
            percent_filled: 0.0,
            unlimited: true,
        },
    }
}

pub(super) fn package_pb(p: PackageRow) -> pb::Package {
    pb::Package {
        id: p.id,
        name: p.name,
        monthly_price_dzd: p.monthly_price_dzd,
        tokens_per_month: p.tokens_per_month,
        requests_per_minute: p.requests_per_minute,
        allowed_models: p.allowed_models,
        monthly_cost_budget_nano_usd: p.monthly_cost_budget_nano_usd,
    }
}

pub(super) fn code_pb(c: CodeRow) -> pb::PromoCode {
    pb::PromoCode {
        code: c.code,
        description: c.description,
        active: c.rules.active,
        max_redemptions: c.rules.max_redemptions,
        used: c.rules.used,
        duration_months: c.rules.duration_months,
        valid_from: rfc3339(c.rules.valid_from.timestamp_millis()),
        valid_until: c.rules.valid_until.map(|d| rfc3339(d.timestamp_millis())),
        discounts: c
            .rules
            .discounts
            .into_iter()
            .map(|(k, v)| (k, v.get()))
            .collect(),
        created_at: rfc3339(c.created_at),
    }
}

pub(super) fn outbox_pb(r: MailRow) -> pb::OutboxMessage {
    let status = match r.status {
        MailStatus::Pending => pb::OutboxStatus::Pending,
        MailStatus::Sent => pb::OutboxStatus::Sent,
        MailStatus::Dead => pb::OutboxStatus::Dead,
    };
    pb::OutboxMessage {
        id: r.id,
        kind: r.kind,
        recipient: r.recipient,
        status: status.into(),
        attempts: r.attempts,
        last_error: r.last_error,
        created_at: rfc3339(r.created_at),
        next_attempt_at: if r.status == MailStatus::Pending {
            rfc3339(r.next_attempt_at)
        } else {
            String::new()
        },
        sent_at: r.sent_at.map(rfc3339).unwrap_or_default(),
        user_id: r.customer_id,
    }
}
