//! The operator's RPCs (the admin token is checked before any of these runs): statistics, codes,
//! the signup list, key revocation and the outbox.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iafactory::proto::iafactory::promo::v1 as pb;

use super::PromoApi;
use super::to_pb::{code_pb, outbox_pb};
use crate::audit::Audit;
use crate::clock;
use crate::domain::code_admin::{self, DiscountChange, check_description, check_duration};
use crate::domain::operator::Actor;
use crate::domain::{CodeChange, CodeName, Discounts, NewCode, NewCodeRequest};
use crate::error::{PromoError, Result};
use crate::outbox::{self, MailStatus};
use crate::repo;

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

impl PromoApi {
    pub(super) async fn stats(&self) -> Result<pb::Stats> {
        let stats = repo::stats(&self.db, self.clock.now_ms()).await?;
        let codes = repo::list_codes(&self.db).await?;
        let launch = codes.iter().find(|c| c.code == self.launch_code.as_str());
        Ok(pb::Stats {
            total_signups: stats.total_signups,
            launch30_used: launch.map_or(0, |c| c.rules.used),
            launch30_remaining: launch.and_then(|c| c.rules.remaining()).unwrap_or(0),
            revenue_monthly_dzd: stats.revenue_monthly_dzd,
            breakdown: stats.breakdown.into_iter().collect(),
            clients: stats.clients,
            codes: codes.into_iter().map(code_pb).collect(),
        })
    }

    pub(super) async fn codes(&self) -> Result<pb::ListCodesResponse> {
        let codes = repo::list_codes(&self.db).await?;
        Ok(pb::ListCodesResponse {
            codes: codes.into_iter().map(code_pb).collect(),
        })
    }

    pub(super) async fn create(
        &self,
        req: pb::CreateCodeRequest,
        actor: &Actor,
    ) -> Result<pb::PromoCode> {
        let new = NewCode::parse(
            NewCodeRequest {
                code: &req.code,
                description: &req.description,
                max_redemptions: req.max_redemptions,
                duration_months: req.duration_months,
                valid_from: &req.valid_from,
                valid_until: &req.valid_until,
                discounts: &req.discounts,
            },
            self.clock.now_ms(),
        )?;
        self.ensure_packages_exist(&new.discounts).await?;
        let audit = Audit::new(actor, "code.create", new.code.as_str());
        let row = repo::create_code(&self.db, &new, &audit, self.clock.now_ms()).await?;
        self.cache.forget_code(&row.code);
        tracing::info!(code = %row.code, "promo code created");
        Ok(code_pb(row))
    }

    /// Each field is checked in the order of the request, the packages looked up as soon as the
    /// discounts are well-formed.
    pub(super) async fn update(
        &self,
        req: pb::UpdateCodeRequest,
        actor: &Actor,
    ) -> Result<pb::PromoCode> {
        let code = CodeName::lookup(&req.code)?;
        let max_redemptions = code_admin::max_change(req.unlimited, req.max_redemptions)?;
        let discounts = DiscountChange::parse(&req.discounts, &req.remove_discounts)?;
        self.ensure_packages_exist(&discounts.set).await?;
        let change = CodeChange {
            active: req.active,
            max_redemptions,
            description: req
                .description
                .as_deref()
                .map(check_description)
                .transpose()?,
            valid_from: req
                .valid_from
                .as_deref()
                .map(|v| clock::parse_rfc3339("valid_from", v))
                .transpose()?,
            valid_until: code_admin::valid_until_change(req.valid_until.as_deref())?,
            duration_months: req.duration_months.map(check_duration).transpose()?,
            discounts,
        };
        let audit = Audit::new(actor, "code.update", code.as_str());
        let row = repo::update_code(&self.db, &code, &change, &audit, self.clock.now_ms()).await;
        // Forget the code even on failure: a refusal may reveal that the cached row is stale.
        self.cache.forget_code(code.as_str());
        let row = row?;
        self.live.changed();
        tracing::info!(code = %row.code, active = row.rules.active, "promo code updated");
        Ok(code_pb(row))
    }

    async fn ensure_packages_exist(&self, discounts: &Discounts) -> Result<()> {
        let known = self.cache.packages().await?;
        match discounts
            .iter()
            .find(|(id, _)| !known.iter().any(|p| &p.id == id))
        {
            Some((unknown, _)) => Err(PromoError::UnknownPackage(unknown.clone())),
            None => Ok(()),
        }
    }

    pub(super) async fn signups(
        &self,
        req: pb::ListSignupsRequest,
    ) -> Result<pb::ListSignupsResponse> {
        let size = page_size("page_size", req.page_size)?;
        let after = parse_page_token(&req.page_token)?;
        let (rows, total) = repo::list_signups(&self.db, after, size, self.clock.now_ms()).await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() == size as usize => {
                page_token(last.created_at, &last.signup_id)
            }
            _ => String::new(),
        };
        Ok(pb::ListSignupsResponse {
            signups: rows
                .into_iter()
                .map(|r| pb::Signup {
                    user_id: r.user_id,
                    email: r.email,
                    package: r.package,
                    base_price_dzd: r.base_price_dzd,
                    price_dzd: r.price_dzd,
                    discount_percent: r.discount_percent,
                    promo_code: r.promo_code.unwrap_or_default(),
                    discount_ends_at: r.discount_ends_at.map(clock::rfc3339).unwrap_or_default(),
                    created_at: clock::rfc3339(r.created_at),
                    api_key_prefix: r.api_key_prefix,
                    api_key_revoked: r.api_key_revoked,
                })
                .collect(),
            next_page_token,
            total,
        })
    }

    pub(super) async fn revoke(
        &self,
        user_id: &str,
        actor: &Actor,
    ) -> Result<pb::RevokeApiKeyResponse> {
        let user_id = user_id.trim();
        if user_id.is_empty() || user_id.len() > 64 {
            return Err(PromoError::InvalidArgument("user_id invalide".into()));
        }
        let audit = Audit::new(actor, "customer.revoke_keys", user_id);
        let revoked = repo::revoke_keys(&self.db, user_id, &audit, self.clock.now_ms()).await?;
        tracing::info!(revoked, "api key revocation");
        Ok(pb::RevokeApiKeyResponse { revoked })
    }

    pub(super) async fn set_suspended(
        &self,
        req: pb::SetAccountSuspendedRequest,
        actor: &Actor,
    ) -> Result<pb::SetAccountSuspendedResponse> {
        let user_id = req.user_id.trim();
        if user_id.is_empty() || user_id.len() > 64 {
            return Err(PromoError::InvalidArgument("user_id invalide".into()));
        }
        let action = if req.suspended {
            "customer.suspend"
        } else {
            "customer.resume"
        };
        let audit = Audit::new(actor, action, user_id);
        let changed = repo::set_suspended(
            &self.db,
            user_id,
            req.suspended,
            &audit,
            self.clock.now_ms(),
        )
        .await?;
        tracing::info!(
            user_id,
            suspended = req.suspended,
            changed,
            "account suspension"
        );
        Ok(pb::SetAccountSuspendedResponse {
            suspended: req.suspended,
            changed,
        })
    }

    pub(super) async fn outbox(
        &self,
        req: pb::ListOutboxRequest,
    ) -> Result<pb::ListOutboxResponse> {
        let status = match pb::OutboxStatus::try_from(req.status) {
            Ok(pb::OutboxStatus::Unspecified) => None,
            Ok(pb::OutboxStatus::Pending) => Some(MailStatus::Pending),
            Ok(pb::OutboxStatus::Sent) => Some(MailStatus::Sent),
            Ok(pb::OutboxStatus::Dead) => Some(MailStatus::Dead),
            Err(_) => {
                return Err(PromoError::InvalidArgument(format!(
                    "statut inconnu : {}",
                    req.status
                )));
            }
        };
        let limit = page_size("limit", req.limit)?;
        let rows = outbox::store::list(&self.db, status, limit).await?;
        Ok(pb::ListOutboxResponse {
            messages: rows.into_iter().map(outbox_pb).collect(),
        })
    }

    pub(super) async fn retry_mail(&self, id: &str, actor: &Actor) -> Result<pb::OutboxMessage> {
        let id = id.trim();
        if id.is_empty() || id.len() > 64 {
            return Err(PromoError::InvalidArgument("id invalide".into()));
        }
        let row =
            outbox::store::retry(&self.db, id, &Audit::new(actor, "outbox.retry", id)).await?;
        self.mail_wake.notify_one();
        tracing::info!("outbox e-mail re-queued by operator");
        Ok(outbox_pb(row))
    }
}

/// How many rows a list returns: `requested`, or the default for 0; `field` names it in the
/// refusal.
pub(super) fn page_size(field: &str, requested: u32) -> Result<u32> {
    match requested {
        0 => Ok(DEFAULT_PAGE_SIZE),
        n if n <= MAX_PAGE_SIZE => Ok(n),
        n => Err(PromoError::InvalidArgument(format!(
            "{field} doit être entre 1 et {MAX_PAGE_SIZE} (reçu {n})"
        ))),
    }
}

pub(super) fn page_token(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

pub(super) fn parse_page_token(token: &str) -> Result<Option<(i64, String)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || PromoError::InvalidArgument("page_token invalide".into());
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((ts.parse().map_err(|_| bad())?, id.to_owned())))
}
