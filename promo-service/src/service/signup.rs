//! `Signup`: from the request to the signup plan (prices and discount from `domain`), the
//! e-mails it queues, the idempotent replay, and the answer.

use iafactory::proto::iafactory::promo::v1 as pb;

use super::PromoApi;
use crate::clock;
use crate::domain::{self, CodeName, Email, Lang};
use crate::error::{PromoError, Refusal, Result};
use crate::idempotency::{IdempotencyKey, IdempotentRequest};
use crate::outbox::{MailKind, MailPayload, NewMail, SignupMail};
use crate::repo::{self, PlannedRedemption, SignupOutcome, SignupPlan};
use crate::secrets;

impl PromoApi {
    pub(super) async fn signup(
        &self,
        req: pb::SignupRequest,
        idempotency_key: Option<IdempotencyKey>,
    ) -> Result<pb::SignupResponse> {
        let email = Email::parse(&req.email)?;
        let package_id = domain::package_id(&req.package)?;
        let lang = Lang::parse(&req.lang)?;
        let code = if req.promo_code.trim().is_empty() {
            None
        } else {
            Some(CodeName::lookup(&req.promo_code)?)
        };
        let idempotent = idempotency_key.map(|key| {
            let mut parts = vec![
                email.as_str(),
                &package_id,
                code.as_ref().map_or("", CodeName::as_str),
            ];
            // French adds nothing, so a French request keeps the fingerprint it had before the
            // language existed (a retry across an upgrade still matches its first attempt).
            if lang != Lang::Fr {
                parts.push(lang.as_str());
            }
            IdempotentRequest::new(key, &parts)
        });
        if let Some(request) = &idempotent
            && let Some(answer) = request.replay(&self.db).await?
        {
            return Ok(answer);
        }

        let package = self
            .cache
            .package(&package_id)
            .await?
            .ok_or_else(|| PromoError::UnknownPackage(package_id.clone()))?;
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let promo = match &code {
            None => None,
            Some(code) => {
                let row = self
                    .cache
                    .code(code)
                    .await?
                    .ok_or(PromoError::Refused(Refusal::Unknown))?;
                let discount = row
                    .rules
                    .check(Some(&package.id), now)
                    .map_err(PromoError::Refused)?;
                Some(PlannedRedemption {
                    code: code.clone(),
                    discount,
                    ends_at: domain::discount_end(now, row.rules.duration_months)
                        .timestamp_millis(),
                })
            }
        };
        let price_dzd = promo.as_ref().map_or(package.monthly_price_dzd, |p| {
            p.discount.apply(package.monthly_price_dzd)
        });
        let key = secrets::generate_api_key();
        let plan = SignupPlan {
            customer_id: format!("usr_{}", uuid::Uuid::now_v7().simple()),
            signup_id: format!("sgn_{}", uuid::Uuid::now_v7().simple()),
            email,
            package,
            price_dzd,
            promo,
            api_key_id: format!("key_{}", uuid::Uuid::now_v7().simple()),
            api_key_hash: key.hash.clone(),
            api_key_prefix: key.display_prefix.clone(),
            lang,
            now: now_ms,
        };
        let answer = signup_answer(&plan, key.key);
        let claim = idempotent
            .as_ref()
            .map(|request| request.claim(&answer))
            .transpose()?;
        let mails = self.signup_mails(&plan);
        let outcome = repo::signup(&self.db, &plan, claim.as_ref(), &mails).await;
        if let (Err(PromoError::Refused(_)), Some(p)) = (&outcome, &plan.promo) {
            // The database refused what the cached code allowed: the cache is stale.
            self.cache.forget_code(p.code.as_str());
        }
        match outcome? {
            SignupOutcome::Created => {
                self.mail_wake.notify_one();
                if let Some(p) = &plan.promo {
                    self.cache.forget_code(p.code.as_str());
                    self.live.changed();
                }
                tracing::info!(user_id = %plan.customer_id, package = %plan.package.id,
                    promo = plan.promo.as_ref().map(|p| p.code.as_str()), "signup");
                Ok(answer)
            }
            SignupOutcome::IdempotencyKeyTaken => {
                // Only a claimed key can be taken, so `idempotent` is set here.
                let replayed = match &idempotent {
                    Some(request) => request.replay(&self.db).await?,
                    None => None,
                };
                replayed.ok_or_else(|| {
                    PromoError::Conflict(
                        "une requête avec cette clé d'idempotence est en cours".into(),
                    )
                })
            }
        }
    }

    fn signup_mails(&self, plan: &SignupPlan) -> Vec<NewMail> {
        let payload = SignupMail {
            user_id: plan.customer_id.clone(),
            email: plan.email.as_str().to_owned(),
            package_id: plan.package.id.clone(),
            package_name: plan.package.name.clone(),
            base_price_dzd: plan.package.monthly_price_dzd,
            price_dzd: plan.price_dzd,
            discount_percent: plan.promo.as_ref().map_or(0, |p| p.discount.get()),
            promo_code: plan
                .promo
                .as_ref()
                .map(|p| p.code.as_str().to_owned())
                .unwrap_or_default(),
            discount_ends_at_fr: plan
                .promo
                .as_ref()
                .map(|p| clock::french_date(p.ends_at))
                .unwrap_or_default(),
            discount_ends_at_ar: plan
                .promo
                .as_ref()
                .map(|p| clock::arabic_date(p.ends_at))
                .unwrap_or_default(),
            lang: plan.lang,
            tokens_per_month: plan.package.tokens_per_month,
            requests_per_minute: plan.package.requests_per_minute,
            api_key_prefix: plan.api_key_prefix.clone(),
            created_at: clock::rfc3339(plan.now),
            public_url: self.mail.public_url.clone(),
        };
        let mut mails = vec![NewMail {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            kind: MailKind::CustomerConfirmation,
            recipient: plan.email.as_str().to_owned(),
            customer_id: plan.customer_id.clone(),
            payload: MailPayload::Signup(payload.clone()),
        }];
        if let Some(operator) = &self.mail.operator_email {
            mails.push(NewMail {
                id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
                kind: MailKind::OperatorNotification,
                recipient: operator.clone(),
                customer_id: plan.customer_id.clone(),
                payload: MailPayload::Signup(payload),
            });
        }
        mails
    }
}

fn signup_answer(plan: &SignupPlan, api_key: String) -> pb::SignupResponse {
    pb::SignupResponse {
        success: true,
        user_id: plan.customer_id.clone(),
        package: plan.package.id.clone(),
        base_price_dzd: plan.package.monthly_price_dzd,
        price_dzd: plan.price_dzd,
        discount_percent: plan.promo.as_ref().map_or(0, |p| p.discount.get()),
        discount_ends_at: plan
            .promo
            .as_ref()
            .map(|p| clock::rfc3339(p.ends_at))
            .unwrap_or_default(),
        api_key,
        promo_code: plan
            .promo
            .as_ref()
            .map(|p| p.code.as_str().to_owned())
            .unwrap_or_default(),
        email: plan.email.as_str().to_owned(),
        created_at: clock::rfc3339(plan.now),
    }
}
