//! The gRPC handlers: decode and validate the request, apply the domain rules, call the
//! repository, encode the answer. No SQL here, and no business rule that `domain` could hold.

use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use futures::Stream;
use iafactory::db::{self, Db};
use iafactory::grpc::bearer_token;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_server::PromoService;
use prost::Message;
use tokio::sync::{Notify, watch};
use tonic::{Request, Response, Status};

use crate::cache::ReadCache;
use crate::config::MailConfig;
use crate::domain::{self, CodeName, Discounts, Email, Percent, Refusal};
use crate::error::{PromoError, Result};
use crate::live::{Count, LiveCounts};
use crate::outbox::{self, MailKind, MailRow, MailStatus, NewMail, SignupMail};
use crate::repo::{
    self, CodeChange, CodeRow, IdempotencyClaim, NewCode, PackageRow, PlannedRedemption,
    SignupOutcome, SignupPlan,
};
use crate::secrets::{self, AdminToken};
use iafactory::secret::InternalToken;

/// Metadata key of the client's idempotency key (the REST shim forwards `Idempotency-Key`).
pub const IDEMPOTENCY_METADATA: &str = "idempotency-key";
const MAX_DESCRIPTION_LEN: usize = 500;
const MAX_REDEMPTIONS_LIMIT: u32 = 1_000_000;
const MAX_DISCOUNT_ENTRIES: usize = 64;
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

pub struct PromoApi {
    db: Db,
    admin: AdminToken,
    /// Opens `AuthenticateKey` (besides the admin token); `None`: the admin token only.
    internal: Option<InternalToken>,
    launch_code: CodeName,
    live: Arc<LiveCounts>,
    stop: watch::Receiver<bool>,
    mail: MailConfig,
    mail_wake: Arc<Notify>,
    cache: ReadCache,
}

impl PromoApi {
    pub fn new(
        db: Db,
        admin: AdminToken,
        launch_code: CodeName,
        live: Arc<LiveCounts>,
        stop: watch::Receiver<bool>,
        cache_ttl: std::time::Duration,
    ) -> PromoApi {
        PromoApi {
            cache: ReadCache::new(db.clone(), cache_ttl),
            db,
            admin,
            internal: None,
            launch_code,
            live,
            stop,
            mail: MailConfig::default(),
            mail_wake: Arc::new(Notify::new()),
        }
    }

    /// The token llm-gateway presents on `AuthenticateKey`.
    pub fn with_internal_token(mut self, token: Option<InternalToken>) -> PromoApi {
        self.internal = token;
        self
    }

    /// Signup e-mails: who gets them, and the worker to wake after a signup.
    pub fn with_mail(mut self, mail: MailConfig, wake: Arc<Notify>) -> PromoApi {
        self.mail = mail;
        self.mail_wake = wake;
        self
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
                .map(|p| outbox::french_date(p.ends_at))
                .unwrap_or_default(),
            tokens_per_month: plan.package.tokens_per_month,
            requests_per_minute: plan.package.requests_per_minute,
            api_key_prefix: plan.api_key_prefix.clone(),
            created_at: repo::rfc3339(plan.now),
            public_url: self.mail.public_url.clone(),
        };
        let mut mails = vec![NewMail {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            kind: MailKind::CustomerConfirmation,
            recipient: plan.email.as_str().to_owned(),
            customer_id: plan.customer_id.clone(),
            payload: payload.clone(),
        }];
        if let Some(operator) = &self.mail.operator_email {
            mails.push(NewMail {
                id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
                kind: MailKind::OperatorNotification,
                recipient: operator.clone(),
                customer_id: plan.customer_id.clone(),
                payload,
            });
        }
        mails
    }

    fn require_admin<T>(&self, req: &Request<T>) -> Result<()> {
        match bearer_token(req.metadata()) {
            Some(token) if self.admin.matches(token) => Ok(()),
            Some(_) => Err(PromoError::Unauthenticated(
                "jeton d'administration invalide",
            )),
            None => Err(PromoError::Unauthenticated(
                "jeton d'administration manquant (authorization: Bearer …)",
            )),
        }
    }

    /// Internal RPCs answer only the platform's services (internal token) or the operator (admin
    /// token). Refused as PERMISSION_DENIED, never UNAUTHENTICATED: the caller's missing
    /// credential must not read as the customer's API key being invalid.
    fn require_internal<T>(&self, req: &Request<T>) -> Result<()> {
        let allowed = bearer_token(req.metadata()).is_some_and(|token| {
            // Both compared, so the time taken does not tell which token was close.
            let internal = self.internal.as_ref().is_some_and(|t| t.matches(token));
            let admin = self.admin.matches(token);
            internal | admin
        });
        if allowed {
            Ok(())
        } else {
            Err(PromoError::Forbidden(
                "appel réservé aux services internes (authorization: Bearer INTERNAL_TOKEN)",
            ))
        }
    }

    async fn validate(&self, req: pb::ValidateCodeRequest) -> Result<pb::ValidateCodeResponse> {
        let code = CodeName::lookup(&req.code)?;
        let package = if req.package.trim().is_empty() {
            None
        } else {
            let id = domain::package_id(&req.package)?;
            self.cache
                .package(&id)
                .await?
                .ok_or_else(|| PromoError::UnknownPackage(id.clone()))?;
            Some(id)
        };
        let Some(row) = self.cache.code(&code).await? else {
            return Ok(refused(Refusal::Unknown, String::new(), None));
        };
        let remaining = row.rules.remaining();
        Ok(match row.rules.check(package.as_deref(), Utc::now()) {
            Ok(pct) => pb::ValidateCodeResponse {
                valid: true,
                reason: pb::RefusalReason::Unspecified.into(),
                discount_percent: pct.get(),
                duration_months: row.rules.duration_months,
                message: domain::discount_message(
                    pct,
                    row.rules.duration_months,
                    package.is_none() && row.rules.discounts.len() > 1,
                ),
                code: row.code.clone(),
                remaining,
            },
            Err(reason) => refused(reason, row.code.clone(), remaining),
        })
    }

    async fn signup(
        &self,
        req: pb::SignupRequest,
        idempotency_key: Option<String>,
    ) -> Result<pb::SignupResponse> {
        let email = Email::parse(&req.email)?;
        let package_id = domain::package_id(&req.package)?;
        let code = if req.promo_code.trim().is_empty() {
            None
        } else {
            Some(CodeName::lookup(&req.promo_code)?)
        };
        let fingerprint = secrets::request_fingerprint(&[
            email.as_str(),
            &package_id,
            code.as_ref().map_or("", CodeName::as_str),
        ]);
        if let Some(key) = &idempotency_key
            && let Some(answer) = self.replay(key, &fingerprint).await?
        {
            return Ok(answer);
        }

        let package = self
            .cache
            .package(&package_id)
            .await?
            .ok_or_else(|| PromoError::UnknownPackage(package_id.clone()))?;
        let now = Utc::now();
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
            now: now_ms,
        };
        let answer = signup_answer(&plan, key.key);
        let claim = match &idempotency_key {
            None => None,
            Some(k) => Some(IdempotencyClaim {
                key_hash: secrets::idempotency_key_hash(k),
                request_hash: fingerprint.clone(),
                sealed_response: secrets::seal(k, &answer.encode_to_vec())
                    .ok_or_else(|| PromoError::internal("cannot seal idempotent answer"))?,
            }),
        };
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
                let key = idempotency_key.unwrap_or_default();
                self.replay(&key, &fingerprint).await?.ok_or_else(|| {
                    PromoError::Conflict(
                        "une requête avec cette clé d'idempotence est en cours".into(),
                    )
                })
            }
        }
    }

    /// The stored answer for this Idempotency-Key, if the same request was made before.
    async fn replay(&self, key: &str, fingerprint: &str) -> Result<Option<pb::SignupResponse>> {
        let Some(record) =
            repo::find_idempotency(&self.db, &secrets::idempotency_key_hash(key)).await?
        else {
            return Ok(None);
        };
        if record.request_hash != fingerprint {
            return Err(PromoError::IdempotencyKeyReused);
        }
        let plain = secrets::open(key, &record.sealed_response)
            .ok_or_else(|| PromoError::internal("idempotent answer does not open"))?;
        let answer = pb::SignupResponse::decode(plain.as_slice()).map_err(PromoError::internal)?;
        Ok(Some(answer))
    }

    async fn remaining(&self, code: &str) -> Result<pb::Remaining> {
        let code = CodeName::lookup(code)?;
        let row = self
            .cache
            .code(&code)
            .await?
            .filter(|row| row.rules.publicly_visible(code == self.launch_code))
            .ok_or(PromoError::Refused(Refusal::Unknown))?;
        Ok(remaining_msg(
            &row.code,
            Count {
                used: row.rules.used,
                max: row.rules.max_redemptions,
            },
        ))
    }

    fn validate_new_code(&self, req: pb::CreateCodeRequest) -> Result<NewCode> {
        let code = CodeName::new_code(&req.code)?;
        let description = check_description(&req.description)?;
        let max_redemptions = req.max_redemptions.map(check_max).transpose()?;
        let duration_months = check_duration(req.duration_months)?;
        let valid_from = if req.valid_from.trim().is_empty() {
            db::now_millis()
        } else {
            parse_instant("valid_from", &req.valid_from)?
        };
        let valid_until = if req.valid_until.trim().is_empty() {
            None
        } else {
            Some(parse_instant("valid_until", &req.valid_until)?)
        };
        if valid_until.is_some_and(|u| u <= valid_from) {
            return Err(PromoError::InvalidArgument(
                "valid_until doit être postérieur à valid_from".into(),
            ));
        }
        if req.discounts.is_empty() {
            return Err(PromoError::InvalidArgument(
                "discounts doit donner la réduction d'au moins un forfait".into(),
            ));
        }
        let discounts = check_discounts(&req.discounts)?;
        Ok(NewCode {
            code,
            description,
            max_redemptions,
            duration_months,
            valid_from,
            valid_until,
            discounts,
        })
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
}

fn refused(reason: Refusal, code: String, remaining: Option<u32>) -> pb::ValidateCodeResponse {
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
            .map(|p| repo::rfc3339(p.ends_at))
            .unwrap_or_default(),
        api_key,
        promo_code: plan
            .promo
            .as_ref()
            .map(|p| p.code.as_str().to_owned())
            .unwrap_or_default(),
        email: plan.email.as_str().to_owned(),
        created_at: repo::rfc3339(plan.now),
    }
}

fn remaining_msg(code: &str, count: Count) -> pb::Remaining {
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

fn package_pb(p: PackageRow) -> pb::Package {
    pb::Package {
        id: p.id,
        name: p.name,
        monthly_price_dzd: p.monthly_price_dzd,
        tokens_per_month: p.tokens_per_month,
        requests_per_minute: p.requests_per_minute,
        allowed_models: p.allowed_models,
    }
}

fn code_pb(c: CodeRow) -> pb::PromoCode {
    pb::PromoCode {
        code: c.code,
        description: c.description,
        active: c.rules.active,
        max_redemptions: c.rules.max_redemptions,
        used: c.rules.used,
        duration_months: c.rules.duration_months,
        valid_from: repo::rfc3339(c.rules.valid_from.timestamp_millis()),
        valid_until: c
            .rules
            .valid_until
            .map(|d| repo::rfc3339(d.timestamp_millis())),
        discounts: c
            .rules
            .discounts
            .into_iter()
            .map(|(k, v)| (k, v.get()))
            .collect(),
        created_at: repo::rfc3339(c.created_at),
    }
}

fn outbox_pb(r: MailRow) -> pb::OutboxMessage {
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
        created_at: repo::rfc3339(r.created_at),
        next_attempt_at: if r.status == MailStatus::Pending {
            repo::rfc3339(r.next_attempt_at)
        } else {
            String::new()
        },
        sent_at: r.sent_at.map(repo::rfc3339).unwrap_or_default(),
        user_id: r.customer_id,
    }
}

fn check_description(d: &str) -> Result<String> {
    if d.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(PromoError::InvalidArgument(format!(
            "la description dépasse {MAX_DESCRIPTION_LEN} caractères"
        )));
    }
    Ok(d.trim().to_owned())
}

fn check_max(max: u32) -> Result<u32> {
    if (1..=MAX_REDEMPTIONS_LIMIT).contains(&max) {
        Ok(max)
    } else {
        Err(PromoError::InvalidArgument(format!(
            "max_redemptions doit être entre 1 et {MAX_REDEMPTIONS_LIMIT} (reçu {max})"
        )))
    }
}

fn check_duration(months: u32) -> Result<u32> {
    if (1..=120).contains(&months) {
        Ok(months)
    } else {
        Err(PromoError::InvalidArgument(format!(
            "duration_months doit être entre 1 et 120 (reçu {months})"
        )))
    }
}

fn check_discounts(raw: &std::collections::HashMap<String, u32>) -> Result<Discounts> {
    if raw.len() > MAX_DISCOUNT_ENTRIES {
        return Err(PromoError::InvalidArgument(
            "trop de forfaits dans discounts".into(),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (package, pct) in raw {
        let id = domain::package_id(package)?;
        if out.iter().any(|(p, _): &(String, Percent)| p == &id) {
            return Err(PromoError::InvalidArgument(format!("forfait {id} répété")));
        }
        out.push((id, Percent::new(*pct)?));
    }
    out.sort();
    Ok(out)
}

fn parse_instant(field: &str, raw: &str) -> Result<i64> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|d| d.timestamp_millis())
        .map_err(|_| {
            PromoError::InvalidArgument(format!(
                "{field} doit être une date RFC 3339 (2026-01-31T00:00:00Z), reçu {:?}",
                raw.chars().take(40).collect::<String>()
            ))
        })
}

fn page_token(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn parse_page_token(token: &str) -> Result<Option<(i64, String)>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || PromoError::InvalidArgument("page_token invalide".into());
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (ts, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((ts.parse().map_err(|_| bad())?, id.to_owned())))
}

fn idempotency_key<T>(req: &Request<T>) -> Result<Option<String>> {
    let Some(value) = req.metadata().get(IDEMPOTENCY_METADATA) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| PromoError::InvalidArgument("Idempotency-Key invalide".into()))?
        .trim();
    if !(8..=255).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PromoError::InvalidArgument(
            "Idempotency-Key : 8 à 255 caractères ASCII visibles (un UUID convient)".into(),
        ));
    }
    Ok(Some(key.to_owned()))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::Remaining, Status>> + Send>>;

#[tonic::async_trait]
impl PromoService for PromoApi {
    #[tracing::instrument(skip_all, fields(code = %req.get_ref().code))]
    async fn validate_code(
        &self,
        req: Request<pb::ValidateCodeRequest>,
    ) -> Result<Response<pb::ValidateCodeResponse>, Status> {
        Ok(Response::new(self.validate(req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(package = %req.get_ref().package))]
    async fn signup(
        &self,
        req: Request<pb::SignupRequest>,
    ) -> Result<Response<pb::SignupResponse>, Status> {
        let key = idempotency_key(&req)?;
        Ok(Response::new(self.signup(req.into_inner(), key).await?))
    }

    async fn get_remaining(
        &self,
        req: Request<pb::GetRemainingRequest>,
    ) -> Result<Response<pb::Remaining>, Status> {
        Ok(Response::new(self.remaining(&req.get_ref().code).await?))
    }

    type WatchRemainingStream = WatchStream;

    async fn watch_remaining(
        &self,
        req: Request<pb::GetRemainingRequest>,
    ) -> Result<Response<Self::WatchRemainingStream>, Status> {
        let first = self.remaining(&req.get_ref().code).await?;
        let code = first.code.clone();
        let mut rx = self.live.subscribe(&code);
        let mut stop = self.stop.clone();
        let stream = async_stream::stream! {
            let mut last = first.clone();
            yield Ok(first);
            loop {
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() { break; }
                        let count = *rx.borrow_and_update();
                        if let Some(count) = count {
                            let msg = remaining_msg(&code, count);
                            if msg != last {
                                last = msg.clone();
                                yield Ok(msg);
                            }
                        }
                    }
                    // Ends the stream on shutdown so the server can drain.
                    () = iafactory::shutdown::stopped(&mut stop) => break,
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_packages(
        &self,
        _req: Request<pb::ListPackagesRequest>,
    ) -> Result<Response<pb::ListPackagesResponse>, Status> {
        let packages = self.cache.packages().await?;
        Ok(Response::new(pb::ListPackagesResponse {
            packages: packages.iter().cloned().map(package_pb).collect(),
        }))
    }

    async fn get_summary(
        &self,
        _req: Request<pb::GetSummaryRequest>,
    ) -> Result<Response<pb::Summary>, Status> {
        let (active, clients) = repo::summary(&self.db, db::now_millis()).await?;
        Ok(Response::new(pb::Summary {
            status: "healthy".into(),
            promo_codes_active: active,
            total_clients: clients,
        }))
    }

    async fn get_stats(
        &self,
        req: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        self.require_admin(&req)?;
        let stats = repo::stats(&self.db, db::now_millis()).await?;
        let codes = repo::list_codes(&self.db).await?;
        let launch = codes.iter().find(|c| c.code == self.launch_code.as_str());
        Ok(Response::new(pb::Stats {
            total_signups: stats.total_signups,
            launch30_used: launch.map_or(0, |c| c.rules.used),
            launch30_remaining: launch.and_then(|c| c.rules.remaining()).unwrap_or(0),
            revenue_monthly_dzd: stats.revenue_monthly_dzd,
            breakdown: stats.breakdown.into_iter().collect(),
            clients: stats.clients,
            codes: codes.into_iter().map(code_pb).collect(),
        }))
    }

    async fn list_codes(
        &self,
        req: Request<pb::ListCodesRequest>,
    ) -> Result<Response<pb::ListCodesResponse>, Status> {
        self.require_admin(&req)?;
        let codes = repo::list_codes(&self.db).await?;
        Ok(Response::new(pb::ListCodesResponse {
            codes: codes.into_iter().map(code_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(code = %req.get_ref().code))]
    async fn create_code(
        &self,
        req: Request<pb::CreateCodeRequest>,
    ) -> Result<Response<pb::PromoCode>, Status> {
        self.require_admin(&req)?;
        let new = self.validate_new_code(req.into_inner())?;
        self.ensure_packages_exist(&new.discounts).await?;
        let row = repo::create_code(&self.db, &new).await?;
        self.cache.forget_code(&row.code);
        tracing::info!(code = %row.code, "promo code created");
        Ok(Response::new(code_pb(row)))
    }

    #[tracing::instrument(skip_all, fields(code = %req.get_ref().code))]
    async fn update_code(
        &self,
        req: Request<pb::UpdateCodeRequest>,
    ) -> Result<Response<pb::PromoCode>, Status> {
        self.require_admin(&req)?;
        let req = req.into_inner();
        let code = CodeName::lookup(&req.code)?;
        if req.unlimited == Some(true) && req.max_redemptions.is_some() {
            return Err(PromoError::InvalidArgument(
                "unlimited et max_redemptions s'excluent".into(),
            )
            .into());
        }
        let max_redemptions = match (req.unlimited, req.max_redemptions) {
            (Some(true), _) => Some(None),
            (_, Some(max)) => Some(Some(check_max(max)?)),
            _ => None,
        };
        let discounts = if req.discounts.is_empty() {
            None
        } else {
            let discounts = check_discounts(&req.discounts)?;
            self.ensure_packages_exist(&discounts).await?;
            Some(discounts)
        };
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
                .map(|v| parse_instant("valid_from", v))
                .transpose()?,
            valid_until: match req.valid_until.as_deref() {
                None => None,
                Some(v) if v.trim().is_empty() => Some(None),
                Some(v) => Some(Some(parse_instant("valid_until", v)?)),
            },
            duration_months: req.duration_months.map(check_duration).transpose()?,
            discounts,
        };
        let row = repo::update_code(&self.db, &code, &change).await;
        // Forget the code even on failure: a refusal may reveal that the cached row is stale.
        self.cache.forget_code(code.as_str());
        let row = row?;
        self.live.changed();
        tracing::info!(code = %row.code, active = row.rules.active, "promo code updated");
        Ok(Response::new(code_pb(row)))
    }

    async fn list_signups(
        &self,
        req: Request<pb::ListSignupsRequest>,
    ) -> Result<Response<pb::ListSignupsResponse>, Status> {
        self.require_admin(&req)?;
        let req = req.into_inner();
        let size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n <= MAX_PAGE_SIZE => n,
            n => {
                return Err(PromoError::InvalidArgument(format!(
                    "page_size doit être entre 1 et {MAX_PAGE_SIZE} (reçu {n})"
                ))
                .into());
            }
        };
        let after = parse_page_token(&req.page_token)?;
        let (rows, total) = repo::list_signups(&self.db, after, size).await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() == size as usize => {
                page_token(last.created_at, &last.signup_id)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListSignupsResponse {
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
                    discount_ends_at: r.discount_ends_at.map(repo::rfc3339).unwrap_or_default(),
                    created_at: repo::rfc3339(r.created_at),
                    api_key_prefix: r.api_key_prefix,
                    api_key_revoked: r.api_key_revoked,
                })
                .collect(),
            next_page_token,
            total,
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        self.require_admin(&req)?;
        let user_id = req.get_ref().user_id.trim();
        if user_id.is_empty() || user_id.len() > 64 {
            return Err(PromoError::InvalidArgument("user_id invalide".into()).into());
        }
        let revoked = repo::revoke_keys(&self.db, user_id).await?;
        tracing::info!(revoked, "api key revocation");
        Ok(Response::new(pb::RevokeApiKeyResponse { revoked }))
    }

    async fn list_outbox(
        &self,
        req: Request<pb::ListOutboxRequest>,
    ) -> Result<Response<pb::ListOutboxResponse>, Status> {
        self.require_admin(&req)?;
        let req = req.into_inner();
        let status = match pb::OutboxStatus::try_from(req.status) {
            Ok(pb::OutboxStatus::Unspecified) => None,
            Ok(pb::OutboxStatus::Pending) => Some(MailStatus::Pending),
            Ok(pb::OutboxStatus::Sent) => Some(MailStatus::Sent),
            Ok(pb::OutboxStatus::Dead) => Some(MailStatus::Dead),
            Err(_) => {
                return Err(PromoError::InvalidArgument(format!(
                    "statut inconnu : {}",
                    req.status
                ))
                .into());
            }
        };
        let limit = match req.limit {
            0 => DEFAULT_PAGE_SIZE,
            n if n <= MAX_PAGE_SIZE => n,
            n => {
                return Err(PromoError::InvalidArgument(format!(
                    "limit doit être entre 1 et {MAX_PAGE_SIZE} (reçu {n})"
                ))
                .into());
            }
        };
        let rows = outbox::list(&self.db, status, limit).await?;
        Ok(Response::new(pb::ListOutboxResponse {
            messages: rows.into_iter().map(outbox_pb).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id))]
    async fn retry_outbox(
        &self,
        req: Request<pb::RetryOutboxRequest>,
    ) -> Result<Response<pb::OutboxMessage>, Status> {
        self.require_admin(&req)?;
        let id = req.get_ref().id.trim();
        if id.is_empty() || id.len() > 64 {
            return Err(PromoError::InvalidArgument("id invalide".into()).into());
        }
        let row = outbox::retry(&self.db, id).await?;
        self.mail_wake.notify_one();
        tracing::info!("outbox e-mail re-queued by operator");
        Ok(Response::new(outbox_pb(row)))
    }

    async fn authenticate_key(
        &self,
        req: Request<pb::AuthenticateKeyRequest>,
    ) -> Result<Response<pb::AuthenticateKeyResponse>, Status> {
        self.require_internal(&req)?;
        let key = req.get_ref().api_key.trim();
        let invalid = PromoError::Unauthenticated("clé API invalide ou révoquée");
        if !secrets::looks_like_api_key(key) {
            return Err(invalid.into());
        }
        let owner = repo::find_live_key(&self.db, &secrets::hash_api_key(key))
            .await?
            .ok_or(invalid)?;
        Ok(Response::new(pb::AuthenticateKeyResponse {
            user_id: owner.user_id,
            email: owner.email,
            package: Some(package_pb(owner.package)),
            key_id: owner.key_id,
        }))
    }
}
