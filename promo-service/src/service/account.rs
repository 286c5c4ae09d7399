//! The customer account's RPCs: sign-in by e-mail link, sessions, the dashboard's facts, keys,
//! package changes and cancellation, and the quota notices llm-gateway reports. The session
//! (and, for changes, its CSRF token) is checked in `mod.rs` before any of these runs; here a
//! customer id always comes from the session, never from the request, so no request can reach
//! another customer's rows.

use iafactory::proto::iafactory::promo::v1 as pb;

use super::PromoApi;
use super::to_pb::package_pb;
use crate::clock::{arabic_date, french_date, rfc3339};
use crate::domain::account::{
    self, ChangeKind, ChangePlan, Current, LINK_SENT_MESSAGE, LINK_TTL_MS, Target,
};
use crate::domain::billing::{self, InvoiceKind, Terms};
use crate::domain::{CodeName, Email};
use crate::error::{PromoError, Result};
use crate::outbox::{AccountMail, MailKind, NewMail};
use crate::repo::billing::{self as bill, NewInvoice};
use crate::repo::{self, KeyRow, LinkRequest, NewKey, SubscriptionRow};
use crate::secrets;

/// A signed-in caller: the session's customer and token (the token derives the CSRF token).
pub(super) struct Session {
    pub customer_id: String,
    pub token: String,
}

fn opt(v: Option<i64>) -> String {
    v.map(rfc3339).unwrap_or_default()
}

pub(super) fn key_pb(k: &KeyRow, now: i64) -> pb::ApiKeyInfo {
    let status = match k.revoked_at {
        None => pb::KeyStatus::Active,
        Some(at) if at > now => pb::KeyStatus::Grace,
        Some(_) => pb::KeyStatus::Revoked,
    };
    pb::ApiKeyInfo {
        id: k.id.clone(),
        prefix: k.prefix.clone(),
        name: k.name.clone(),
        created_at: rfc3339(k.created_at),
        status: status.into(),
        revoked_at: opt(k.revoked_at),
        revoked_by: k.revoked_by.clone().unwrap_or_default(),
    }
}

pub(super) fn key_id(raw: &str) -> Result<&str> {
    let id = raw.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(PromoError::InvalidArgument("key_id invalide".into()));
    }
    Ok(id)
}

impl PromoApi {
    fn account_mail(&self, email: &str) -> AccountMail {
        AccountMail {
            email: email.to_owned(),
            public_url: self.mail.public_url.clone(),
            ..AccountMail::default()
        }
    }

    pub(super) async fn request_sign_in_link(
        &self,
        req: pb::RequestSignInLinkRequest,
        client_ip: Option<String>,
    ) -> Result<pb::RequestSignInLinkResponse> {
        let email = Email::parse(&req.email)?;
        let now = self.clock.now_ms();
        let token = secrets::new_token();
        // The token travels in the fragment: browsers send neither it to the server when the
        // page loads nor it in a Referer, so it stays out of access logs.
        let link = format!("{}/compte/connexion#jeton={token}", self.mail.public_url);
        let mail = |customer_id: &str| {
            NewMail::account(
                MailKind::SignInLink,
                customer_id,
                AccountMail {
                    link,
                    date_fr: format!(
                        "{} UTC",
                        crate::clock::to_datetime(now + LINK_TTL_MS).format("%H:%M")
                    ),
                    ..self.account_mail(email.as_str())
                },
            )
        };
        let outcome = repo::request_link(
            &self.db,
            &email,
            client_ip.as_deref(),
            &secrets::hash_token(&token),
            mail,
            now,
        )
        .await?;
        match outcome {
            LinkRequest::RateLimited { retry_after_ms } => Err(PromoError::RateLimited(
                u64::try_from(retry_after_ms.div_euclid(1000))
                    .unwrap_or(1)
                    .max(1),
            )),
            LinkRequest::Sent | LinkRequest::NoAccount => {
                if outcome == LinkRequest::Sent {
                    self.mail_wake.notify_one();
                }
                tracing::info!(
                    sent = outcome == LinkRequest::Sent,
                    "sign-in link requested"
                );
                Ok(pb::RequestSignInLinkResponse {
                    message: LINK_SENT_MESSAGE.to_owned(),
                })
            }
        }
    }

    pub(super) async fn consume_sign_in_link(
        &self,
        req: pb::ConsumeSignInLinkRequest,
    ) -> Result<pb::SessionGrant> {
        let refused = PromoError::Unauthenticated(
            "lien de connexion invalide, déjà utilisé ou expiré : demandez-en un nouveau",
        );
        let token = req.token.trim();
        if !secrets::looks_like_token(token) {
            return Err(refused);
        }
        // Always a fresh token of ours: nothing the caller sends can become its session.
        let session = secrets::new_token();
        let opened = repo::consume_link(
            &self.db,
            &secrets::hash_token(token),
            &secrets::hash_token(&session),
            self.clock.now_ms(),
        )
        .await?
        .ok_or(refused)?;
        tracing::info!(user_id = %opened.customer_id, "signed in");
        Ok(pb::SessionGrant {
            csrf_token: secrets::csrf_token(&session),
            session_token: session,
            expires_at: rfc3339(opened.expires_at),
            user_id: opened.customer_id,
        })
    }

    pub(super) async fn sign_out(
        &self,
        session: &Session,
        everywhere: bool,
    ) -> Result<pb::SignOutResponse> {
        let ended = repo::sign_out(
            &self.db,
            &secrets::hash_token(&session.token),
            everywhere,
            self.clock.now_ms(),
        )
        .await?;
        tracing::info!(user_id = %session.customer_id, everywhere, ended, "signed out");
        Ok(pb::SignOutResponse { ended })
    }

    async fn subscription(&self, customer_id: &str) -> Result<SubscriptionRow> {
        repo::apply_due_changes(&self.db, Some(customer_id), self.clock.now_ms()).await?;
        repo::find_subscription(&self.db, customer_id).await
    }

    pub(super) async fn account(&self, session: &Session) -> Result<pb::Account> {
        let now = self.clock.now_ms();
        let sub = self.subscription(&session.customer_id).await?;
        let (period_start, period_end) = account::period_bounds(sub.signed_up_at, now);
        let discount_running = sub.discount_ends_at.is_some_and(|e| e > now);
        let packages = self.cache.packages().await?;
        Ok(pb::Account {
            user_id: sub.customer_id.clone(),
            email: sub.email.clone(),
            price_dzd: if discount_running {
                sub.price_dzd
            } else {
                sub.base_price_dzd
            },
            base_price_dzd: sub.base_price_dzd,
            discount_percent: if discount_running {
                sub.discount_percent
            } else {
                0
            },
            promo_code: sub.promo_code.clone().unwrap_or_default(),
            discount_ends_at: if discount_running {
                opt(sub.discount_ends_at)
            } else {
                String::new()
            },
            period_start: rfc3339(period_start),
            period_end: rfc3339(period_end),
            period_last_day: crate::domain::billing::last_day_iso(period_end),
            pending_package: sub.pending_package_id.clone().unwrap_or_default(),
            pending_from: opt(sub.pending_from),
            cancel_at: opt(sub.cancel_at),
            suspended: sub.suspended,
            csrf_token: secrets::csrf_token(&session.token),
            created_at: rfc3339(sub.signed_up_at),
            package: Some(package_pb(sub.package)),
            packages: packages.iter().cloned().map(package_pb).collect(),
        })
    }

    pub(super) async fn keys(&self, session: &Session) -> Result<pb::ListKeysResponse> {
        let now = self.clock.now_ms();
        let keys = repo::list_keys(&self.db, &session.customer_id).await?;
        Ok(pb::ListKeysResponse {
            keys: keys.iter().map(|k| key_pb(k, now)).collect(),
        })
    }

    /// The e-mail to the session's customer; read once per mutation (not per session check).
    async fn customer_email(&self, customer_id: &str) -> Result<String> {
        Ok(repo::find_subscription(&self.db, customer_id).await?.email)
    }

    fn new_key(name: String) -> (String, NewKey) {
        let key = secrets::generate_api_key();
        (
            key.key,
            NewKey {
                id: format!("key_{}", uuid::Uuid::now_v7().simple()),
                hash: key.hash,
                prefix: key.display_prefix,
                name,
            },
        )
    }

    pub(super) async fn create_key(
        &self,
        session: &Session,
        req: pb::CreateKeyRequest,
    ) -> Result<pb::CreatedKey> {
        let name = account::key_name(&req.name)?;
        let now = self.clock.now_ms();
        let email = self.customer_email(&session.customer_id).await?;
        let (clear, new) = Self::new_key(name);
        let row = repo::create_key(
            &self.db,
            &session.customer_id,
            &new,
            |k| self.key_created_mail(&session.customer_id, &email, k, ("", "")),
            now,
        )
        .await?;
        self.mail_wake.notify_one();
        tracing::info!(user_id = %session.customer_id, key_id = %row.id, "api key created");
        Ok(pb::CreatedKey {
            api_key: clear,
            key: Some(key_pb(&row, now)),
            replaced: None,
        })
    }

    /// `note`: a sentence in French and in Arabic (empty: none).
    fn key_created_mail(
        &self,
        customer_id: &str,
        email: &str,
        k: &KeyRow,
        note: (&str, &str),
    ) -> NewMail {
        NewMail::account(
            MailKind::KeyCreated,
            customer_id,
            AccountMail {
                key_prefix: k.prefix.clone(),
                key_name: k.name.clone(),
                message: note.0.to_owned(),
                message_ar: note.1.to_owned(),
                ..self.account_mail(email)
            },
        )
    }

    fn key_revoked_mail(&self, customer_id: &str, email: &str, k: &KeyRow, now: i64) -> NewMail {
        let (message, message_ar, date_fr, date_ar) = match k.revoked_at {
            Some(at) if at > now => {
                let time = crate::clock::to_datetime(at).format("%H:%M");
                (
                    "remplacée par une nouvelle clé".to_owned(),
                    "استُبدل بمفتاح جديد".to_owned(),
                    format!("{} à {time} UTC", french_date(at)),
                    format!("{} على الساعة {time} UTC", arabic_date(at)),
                )
            }
            _ => (
                "révoquée depuis votre espace client".to_owned(),
                "أُلغي من فضاء الزبون".to_owned(),
                String::new(),
                String::new(),
            ),
        };
        NewMail::account(
            MailKind::KeyRevoked,
            customer_id,
            AccountMail {
                key_prefix: k.prefix.clone(),
                key_name: k.name.clone(),
                message,
                message_ar,
                date_fr,
                date_ar,
                ..self.account_mail(email)
            },
        )
    }

    pub(super) async fn revoke_key(
        &self,
        session: &Session,
        req: pb::RevokeKeyRequest,
    ) -> Result<pb::ApiKeyInfo> {
        let id = key_id(&req.key_id)?;
        let now = self.clock.now_ms();
        let email = self.customer_email(&session.customer_id).await?;
        let row = repo::revoke_key(
            &self.db,
            &session.customer_id,
            id,
            |k| self.key_revoked_mail(&session.customer_id, &email, k, now),
            now,
        )
        .await?;
        self.mail_wake.notify_one();
        tracing::info!(user_id = %session.customer_id, key_id = %row.id, "api key revoked by customer");
        Ok(key_pb(&row, now))
    }

    pub(super) async fn rotate_key(
        &self,
        session: &Session,
        req: pb::RotateKeyRequest,
    ) -> Result<pb::CreatedKey> {
        let id = key_id(&req.key_id)?;
        let grace = account::grace_ms(req.grace_seconds)?;
        let now = self.clock.now_ms();
        let email = self.customer_email(&session.customer_id).await?;
        let (clear, new) = Self::new_key(String::new());
        let (created, old) = repo::rotate_key(
            &self.db,
            &session.customer_id,
            id,
            grace,
            &new,
            |created, old| {
                vec![
                    self.key_created_mail(
                        &session.customer_id,
                        &email,
                        created,
                        (
                            &format!("Elle remplace la clé {}….", old.prefix),
                            &format!("يحلّ محلّ المفتاح {}….", old.prefix),
                        ),
                    ),
                    self.key_revoked_mail(&session.customer_id, &email, old, now),
                ]
            },
            now,
        )
        .await?;
        self.mail_wake.notify_one();
        tracing::info!(user_id = %session.customer_id, old = %old.id, new = %created.id, grace_ms = grace, "api key rotated");
        Ok(pb::CreatedKey {
            api_key: clear,
            key: Some(key_pb(&created, now)),
            replaced: Some(key_pb(&old, now)),
        })
    }

    /// The plan of a change to `package` from the subscription in force.
    async fn plan(&self, sub: &SubscriptionRow, package: &str) -> Result<(ChangePlan, String)> {
        let now = self.clock.now_ms();
        let target_id = crate::domain::package_id(package)?;
        let target = self
            .cache
            .package(&target_id)
            .await?
            .ok_or_else(|| PromoError::UnknownPackage(target_id.clone()))?;
        // The redeemed code's table decides, whatever its state today: the customer already
        // holds the discount, only its percentage for the new package is looked up.
        let code_discount = match &sub.promo_code {
            Some(code) => self
                .cache
                .code(&CodeName::lookup(code)?)
                .await?
                .and_then(|row| {
                    row.rules
                        .discounts
                        .iter()
                        .find(|(id, _)| *id == target.id)
                        .map(|(_, p)| *p)
                }),
            None => None,
        };
        let (_, period_end) = account::period_bounds(sub.signed_up_at, now);
        let plan = account::plan_change(
            &Current {
                package_id: &sub.package.id,
                base_price_dzd: sub.package.monthly_price_dzd,
                promo_code: sub.promo_code.as_deref(),
                discount_ends_at: sub.discount_ends_at,
                period_end,
            },
            &Target {
                package_id: &target.id,
                name: &target.name,
                base_price_dzd: target.monthly_price_dzd,
                code_discount,
            },
            now,
        )?;
        Ok((plan, target.name))
    }

    fn plan_pb(
        sub: &SubscriptionRow,
        to: &str,
        plan: &ChangePlan,
        proration: Option<&NewInvoice>,
    ) -> pb::PackageChangePlan {
        pb::PackageChangePlan {
            from_package: sub.package.id.clone(),
            to_package: to.to_owned(),
            kind: plan.kind.as_str().to_owned(),
            effective_at: rfc3339(plan.effective_at),
            price_dzd: plan.price_dzd,
            base_price_dzd: plan.base_price_dzd,
            discount_percent: plan.discount.map_or(0, |p| p.get()),
            discount_ends_at: opt(plan.discount_ends_at),
            discount_lost: plan.discount_lost,
            message: plan.message.clone(),
            prorated_dzd: proration.map_or(0, NewInvoice::total_dzd),
        }
    }

    /// An upgrade's prorated invoice, not yet written: the price difference between the target
    /// and the package in force, for the days left in the current period (the rule and its
    /// rounding: `domain::billing::proration_bill`). None for a downgrade, when the difference
    /// is not positive, or before the billing start (nothing is billed before it). The plan's
    /// message says it, so the customer sees the amount before confirming.
    async fn proration(
        &self,
        sub: &SubscriptionRow,
        to: &str,
        target_name: &str,
        plan: &mut ChangePlan,
        now: i64,
    ) -> Result<Option<NewInvoice>> {
        if plan.kind != ChangeKind::Upgrade
            || now < billing::billing_from(sub.signed_up_at, self.billing.start_date)
        {
            return Ok(None);
        }
        let billed = bill::billing_subscription(&self.db, &sub.customer_id).await?;
        let index = billing::period_index(sub.signed_up_at, now);
        let (start, end) = (
            billing::period_start(sub.signed_up_at, index),
            billing::period_start(sub.signed_up_at, index + 1),
        );
        let new = Terms {
            package_id: to.to_owned(),
            package_name: target_name.to_owned(),
            base_price_dzd: plan.base_price_dzd,
            discount: plan.discount.zip(plan.discount_ends_at),
            promo_code: sub.promo_code.clone(),
        };
        let Some(prorated) = billing::proration_bill(billed.terms_at(start), &new, start, end, now)
        else {
            return Ok(None);
        };
        let invoice = NewInvoice::new(
            &billed,
            InvoiceKind::Proration,
            index,
            &new,
            &prorated,
            now,
            self.billing_ctx(),
        )?;
        plan.message.push_str(&format!(
            " Une facture de {} DZD TTC est émise à la confirmation : la différence de prix pour les {} jours restants sur {} de la période en cours ({}).",
            account::thousands(invoice.total_dzd()),
            billing::days(now, end),
            billing::days(start, end),
            billing::period_text(now, end),
        ));
        plan.message_ar.push_str(&format!(
            " تصدر عند التأكيد فاتورة بمبلغ {} DZD شاملة الرسوم: فرق السعر عن {} يومًا متبقيًا من {} يومًا في الفترة الحالية ({}).",
            account::thousands(invoice.total_dzd()),
            billing::days(now, end),
            billing::days(start, end),
            billing::period_text_ar(now, end),
        ));
        Ok(Some(invoice))
    }

    fn check_not_suspended(sub: &SubscriptionRow) -> Result<()> {
        if sub.suspended {
            Err(PromoError::Suspended)
        } else {
            Ok(())
        }
    }

    pub(super) async fn preview_change(
        &self,
        session: &Session,
        req: pb::PreviewPackageChangeRequest,
    ) -> Result<pb::PackageChangePlan> {
        let sub = self.subscription(&session.customer_id).await?;
        let (mut plan, target_name) = self.plan(&sub, &req.package).await?;
        let to = crate::domain::package_id(&req.package)?;
        let now = self.clock.now_ms();
        let proration = self
            .proration(&sub, &to, &target_name, &mut plan, now)
            .await?;
        Ok(Self::plan_pb(&sub, &to, &plan, proration.as_ref()))
    }

    pub(super) async fn change_package(
        &self,
        session: &Session,
        req: pb::ChangePackageRequest,
    ) -> Result<pb::PackageChangePlan> {
        let sub = self.subscription(&session.customer_id).await?;
        Self::check_not_suspended(&sub)?;
        let (mut plan, target_name) = self.plan(&sub, &req.package).await?;
        let to = crate::domain::package_id(&req.package)?;
        let now = self.clock.now_ms();
        if plan.kind == ChangeKind::Upgrade {
            // The period in progress is invoiced first, on the package it started with (what
            // the job would have issued): the prorated invoice bills only the difference.
            let billed = bill::billing_subscription(&self.db, &sub.customer_id).await?;
            if bill::issue_due_invoices(&self.db, &billed, now, self.billing_ctx()).await? > 0 {
                self.mail_wake.notify_one();
            }
        }
        let proration = self
            .proration(&sub, &to, &target_name, &mut plan, now)
            .await?;
        let prorated_dzd = proration.as_ref().map_or(0, NewInvoice::total_dzd);
        let mail = NewMail::account(
            MailKind::PackageChanged,
            &sub.customer_id,
            AccountMail {
                package_name: target_name,
                from_package_name: sub.package.name.clone(),
                price_dzd: plan.price_dzd,
                base_price_dzd: plan.base_price_dzd,
                discount_percent: plan.discount.map_or(0, |p| p.get()),
                date_fr: french_date(plan.effective_at),
                date_ar: arabic_date(plan.effective_at),
                message: plan.message.clone(),
                message_ar: plan.message_ar.clone(),
                ..self.account_mail(&sub.email)
            },
        );
        repo::change_package(
            &self.db,
            &sub.customer_id,
            &sub.package.id,
            &to,
            &plan,
            mail,
            proration.map(|p| (p, self.billing_ctx())),
            now,
        )
        .await?;
        self.mail_wake.notify_one();
        tracing::info!(user_id = %sub.customer_id, from = %sub.package.id, to = %to, kind = plan.kind.as_str(), prorated_dzd, "package change");
        let mut answer = Self::plan_pb(&sub, &to, &plan, None);
        answer.prorated_dzd = prorated_dzd;
        Ok(answer)
    }

    pub(super) async fn cancel(
        &self,
        session: &Session,
        req: pb::CancelSubscriptionRequest,
    ) -> Result<pb::Account> {
        let sub = self.subscription(&session.customer_id).await?;
        let now = self.clock.now_ms();
        let (_, period_end) = account::period_bounds(sub.signed_up_at, now);
        let (cancel_at, message, message_ar) = if req.undo {
            (
                None,
                "Votre résiliation est annulée : votre abonnement continue.".to_owned(),
                "أُلغي طلب إنهاء الاشتراك: اشتراكك مستمر.".to_owned(),
            )
        } else {
            (
                Some(period_end),
                format!(
                    "Votre abonnement est résilié à la fin de la période en cours, le {} : vos clés API cesseront alors de fonctionner. Vous pouvez annuler cette résiliation d'ici là depuis votre espace client.",
                    french_date(period_end)
                ),
                format!(
                    "ينتهي اشتراكك في نهاية الفترة الحالية، يوم {}: ستتوقف مفاتيح API الخاصة بك عندئذ عن العمل. يمكنك إلغاء إنهاء الاشتراك قبل ذلك من فضاء الزبون.",
                    arabic_date(period_end)
                ),
            )
        };
        let mail = NewMail::account(
            MailKind::PackageChanged,
            &sub.customer_id,
            AccountMail {
                package_name: sub.package.name.clone(),
                message,
                message_ar,
                ..self.account_mail(&sub.email)
            },
        );
        repo::set_cancellation(&self.db, &sub.customer_id, cancel_at, mail, now).await?;
        self.mail_wake.notify_one();
        tracing::info!(user_id = %sub.customer_id, undo = req.undo, "subscription cancellation");
        self.account(session).await
    }

    pub(super) async fn report_quota_level(
        &self,
        req: pb::ReportQuotaLevelRequest,
    ) -> Result<pb::ReportQuotaLevelResponse> {
        match req.measure.as_str() {
            "" | "tokens" => {}
            "cost" => return self.report_budget_alert(req).await,
            other => {
                return Err(PromoError::InvalidArgument(format!(
                    "measure vaut tokens ou cost, reçu {:?}",
                    other.chars().take(20).collect::<String>()
                )));
            }
        }
        let percent = account::quota_level(req.percent)?;
        let period = account::quota_period(&req.period)?;
        let user_id = req.user_id.trim();
        let Some((email, package_name)) = repo::customer_for_notice(&self.db, user_id).await?
        else {
            return Err(PromoError::NotFound(format!(
                "client inconnu : {}",
                user_id.chars().take(64).collect::<String>()
            )));
        };
        let mail = NewMail::account(
            MailKind::QuotaLevel,
            user_id,
            AccountMail {
                package_name,
                percent,
                tokens_used: req.tokens_used,
                tokens_per_month: req.tokens_per_month,
                message: format!("mois {period}, UTC"),
                message_ar: format!("شهر {period}، بتوقيت UTC"),
                ..self.account_mail(&email)
            },
        );
        let queued = repo::write_notice(
            &self.db,
            user_id,
            "quota_level",
            &format!("{period}:{percent}"),
            &mail,
            self.clock.now_ms(),
        )
        .await?;
        if queued {
            self.mail_wake.notify_one();
        }
        Ok(pb::ReportQuotaLevelResponse { queued })
    }

    /// A customer spent [`account::BUDGET_ALERT_PERCENT`] % of their package's upstream-cost
    /// budget, or all of it ([`account::BUDGET_SPENT_PERCENT`]): one e-mail to the operator
    /// (`OPERATOR_EMAIL`) per customer, month and level, however many gateway replicas report
    /// it (the `notices` primary key decides, as for quota levels).
    /// Without an operator address there is nobody to tell: nothing is written.
    async fn report_budget_alert(
        &self,
        req: pb::ReportQuotaLevelRequest,
    ) -> Result<pb::ReportQuotaLevelResponse> {
        let percent = req.percent;
        if percent != account::BUDGET_ALERT_PERCENT && percent != account::BUDGET_SPENT_PERCENT {
            return Err(PromoError::InvalidArgument(format!(
                "percent vaut {} ou {} pour le budget de coût, reçu {}",
                account::BUDGET_ALERT_PERCENT,
                account::BUDGET_SPENT_PERCENT,
                percent
            )));
        }
        let period = account::quota_period(&req.period)?;
        let user_id = req.user_id.trim();
        let Some((email, package_name)) = repo::customer_for_notice(&self.db, user_id).await?
        else {
            return Err(PromoError::NotFound(format!(
                "client inconnu : {}",
                user_id.chars().take(64).collect::<String>()
            )));
        };
        let Some(operator) = self.mail.operator_email.clone() else {
            tracing::warn!(user_id, %period, percent, "cost budget alert but OPERATOR_EMAIL is not set: no alert");
            return Ok(pb::ReportQuotaLevelResponse { queued: false });
        };
        let mail = NewMail::account(
            MailKind::BudgetAlert,
            user_id,
            AccountMail {
                email: operator,
                public_url: self.mail.public_url.clone(),
                package_name,
                percent,
                customer_email: email,
                cost_used_usd: account::usd_of_nano(req.cost_used_nano_usd),
                cost_budget_usd: account::usd_of_nano(req.cost_budget_nano_usd),
                message: format!("mois {period}, UTC"),
                ..AccountMail::default()
            },
        );
        let queued = repo::write_notice(
            &self.db,
            user_id,
            "budget_alert",
            &account::budget_occasion(&period, percent),
            &mail,
            self.clock.now_ms(),
        )
        .await?;
        if queued {
            self.mail_wake.notify_one();
            tracing::info!(user_id, %period, percent, "cost budget alert queued for the operator");
        }
        Ok(pb::ReportQuotaLevelResponse { queued })
    }
}
