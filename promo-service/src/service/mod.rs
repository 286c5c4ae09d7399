//! The gRPC handlers: check the caller, read the request's metadata, decode and validate the
//! request, apply the domain rules, call the repository, encode the answer. No SQL here, and no
//! business rule that `domain` could hold. This file holds the service's state and the
//! `PromoService` implementation, which only authenticates and hands each call to the file of its
//! resource: `public` (the landing page's reads), `signup`, `admin` (the operator's RPCs),
//! `account` (the customer's sign-in, keys and package); `to_pb` encodes the answers. `billing`
//! serves the `Billing` service on the same state, `operators` the console's `Operators`
//! service, `site` the public `Site` service (seller identity and terms, no state), and
//! `campaigns` the `Campaigns` service (contacts, campaigns, waitlist, signed links).

mod account;
mod admin;
mod billing;
mod campaigns;
mod operator_accounts;
mod operators;
mod public;
mod signup;
mod site;
mod to_pb;

use std::sync::Arc;

use iafactory::db::Db;
use iafactory::grpc::bearer_token;
use iafactory::proto::iafactory::promo::v1 as pb;
use iafactory::secret::InternalToken;
use pb::promo_service_server::PromoService;
use tokio::sync::{Notify, watch};
use tonic::{Request, Response, Status};

use crate::cache::ReadCache;
use crate::clock::Clock;
use crate::config::MailConfig;
use crate::domain::CodeName;
use crate::domain::operator::Actor;
use crate::error::{PromoError, Result};
use crate::idempotency::IdempotencyKey;
use crate::live::LiveCounts;
use crate::repo;
use crate::secrets::{self, AdminToken};
pub use billing::BillingApi;
pub use site::SiteApi;
use to_pb::package_pb;

/// Metadata key of the client's idempotency key (the REST shim forwards `Idempotency-Key`).
pub const IDEMPOTENCY_METADATA: &str = "idempotency-key";
/// Metadata key of the customer's session token (gateway-rest forwards the cookie's value).
pub const SESSION_METADATA: &str = "x-iaf-session";
/// Metadata key of the session's CSRF token on state-changing account RPCs.
pub const CSRF_METADATA: &str = "x-iaf-csrf";
/// Metadata key of the browser's address, as gateway-rest determined it (sign-in limits).
pub const CLIENT_IP_METADATA: &str = "x-iaf-client-ip";

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
    clock: Clock,
    billing: crate::billing_config::BillingConfig,
    /// Card payments; None when CHARGILY_SECRET_KEY is not set.
    chargily: Option<crate::billing::chargily::Client>,
    /// Campaign messages, signed links and the start of due campaigns.
    campaign_jobs: Arc<crate::campaign_jobs::CampaignJobs>,
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
            campaign_jobs: Arc::new(crate::campaign_jobs::CampaignJobs {
                db: db.clone(),
                clock: Clock::system(),
                config: crate::config::CampaignConfig::derived_from(admin.expose()),
                public_url: crate::config::DEV_PUBLIC_URL.into(),
                launch_code: launch_code.as_str().to_owned(),
                mail_wake: Arc::new(Notify::new()),
            }),
            cache: ReadCache::new(db.clone(), cache_ttl),
            db,
            admin,
            internal: None,
            launch_code,
            live,
            stop,
            mail: MailConfig::default(),
            mail_wake: Arc::new(Notify::new()),
            clock: Clock::system(),
            billing: crate::billing_config::BillingConfig::default(),
            chargily: None,
        }
    }

    /// Invoices, tax, dunning and transfer details.
    pub fn with_billing(
        mut self,
        billing: crate::billing_config::BillingConfig,
        chargily: Option<crate::billing::chargily::Client>,
    ) -> PromoApi {
        self.billing = billing;
        self.chargily = chargily;
        self
    }

    /// Campaigns: pacing, link signing, the job that starts due campaigns (the same value the
    /// service's background task runs).
    pub fn with_campaigns(mut self, jobs: Arc<crate::campaign_jobs::CampaignJobs>) -> PromoApi {
        self.campaign_jobs = jobs;
        self
    }

    /// The clock of the date rules (a manual one in tests).
    pub fn with_clock(mut self, clock: Clock) -> PromoApi {
        self.clock = clock;
        self
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
}

fn metadata_str<'a, T>(req: &'a Request<T>, key: &str) -> Option<&'a str> {
    req.metadata()
        .get(key)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

impl PromoApi {
    /// The live session named by the call's `x-iaf-session` metadata.
    async fn session<T>(&self, req: &Request<T>) -> Result<account::Session> {
        let token = metadata_str(req, SESSION_METADATA)
            .filter(|t| secrets::looks_like_token(t))
            .ok_or_else(repo::session_refused)?;
        let customer_id =
            repo::session_customer(&self.db, &secrets::hash_token(token), self.clock.now_ms())
                .await?
                .ok_or_else(repo::session_refused)?;
        Ok(account::Session {
            customer_id,
            token: token.to_owned(),
        })
    }

    /// As [`Self::session`], for a state-changing call: the CSRF token must match too.
    async fn session_for_change<T>(&self, req: &Request<T>) -> Result<account::Session> {
        let session = self.session(req).await?;
        let presented = metadata_str(req, CSRF_METADATA).unwrap_or("");
        if !secrets::csrf_matches(&session.token, presented) {
            tracing::warn!(user_id = %session.customer_id, "account change without a valid CSRF token");
            return Err(PromoError::Csrf);
        }
        Ok(session)
    }
}

/// The Idempotency-Key of a signup, checked here where it enters the service.
fn idempotency_key<T>(req: &Request<T>) -> Result<Option<IdempotencyKey>> {
    let Some(value) = req.metadata().get(IDEMPOTENCY_METADATA) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| PromoError::InvalidArgument("Idempotency-Key invalide".into()))?;
    IdempotencyKey::parse(key).map(Some)
}

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

    type WatchRemainingStream = public::WatchStream;

    async fn watch_remaining(
        &self,
        req: Request<pb::GetRemainingRequest>,
    ) -> Result<Response<Self::WatchRemainingStream>, Status> {
        Ok(Response::new(self.watch(&req.get_ref().code).await?))
    }

    async fn list_packages(
        &self,
        _req: Request<pb::ListPackagesRequest>,
    ) -> Result<Response<pb::ListPackagesResponse>, Status> {
        Ok(Response::new(self.packages().await?))
    }

    async fn get_summary(
        &self,
        _req: Request<pb::GetSummaryRequest>,
    ) -> Result<Response<pb::Summary>, Status> {
        Ok(Response::new(self.summary().await?))
    }

    async fn get_stats(
        &self,
        req: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(self.stats().await?))
    }

    async fn list_codes(
        &self,
        req: Request<pb::ListCodesRequest>,
    ) -> Result<Response<pb::ListCodesResponse>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(self.codes().await?))
    }

    #[tracing::instrument(skip_all, fields(code = %req.get_ref().code))]
    async fn create_code(
        &self,
        req: Request<pb::CreateCodeRequest>,
    ) -> Result<Response<pb::PromoCode>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(
            self.create(req.into_inner(), &Actor::AdminToken).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(code = %req.get_ref().code))]
    async fn update_code(
        &self,
        req: Request<pb::UpdateCodeRequest>,
    ) -> Result<Response<pb::PromoCode>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(
            self.update(req.into_inner(), &Actor::AdminToken).await?,
        ))
    }

    async fn list_signups(
        &self,
        req: Request<pb::ListSignupsRequest>,
    ) -> Result<Response<pb::ListSignupsResponse>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(self.signups(req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn revoke_api_key(
        &self,
        req: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(
            self.revoke(&req.get_ref().user_id, &Actor::AdminToken)
                .await?,
        ))
    }

    async fn set_account_suspended(
        &self,
        req: Request<pb::SetAccountSuspendedRequest>,
    ) -> Result<Response<pb::SetAccountSuspendedResponse>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(
            self.set_suspended(req.into_inner(), &Actor::AdminToken)
                .await?,
        ))
    }

    async fn list_outbox(
        &self,
        req: Request<pb::ListOutboxRequest>,
    ) -> Result<Response<pb::ListOutboxResponse>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(self.outbox(req.into_inner()).await?))
    }

    #[tracing::instrument(skip_all, fields(id = %req.get_ref().id))]
    async fn retry_outbox(
        &self,
        req: Request<pb::RetryOutboxRequest>,
    ) -> Result<Response<pb::OutboxMessage>, Status> {
        self.require_admin(&req)?;
        Ok(Response::new(
            self.retry_mail(&req.get_ref().id, &Actor::AdminToken)
                .await?,
        ))
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
        let owner = repo::find_live_key(&self.db, &secrets::hash_api_key(key), self.clock.now_ms())
            .await?
            .ok_or(invalid)?;
        if crate::domain::billing::State::parse(&owner.billing_state)
            == crate::domain::billing::State::Suspended
        {
            return Err(self.payment_required(&owner.user_id).await.into());
        }
        Ok(Response::new(pb::AuthenticateKeyResponse {
            user_id: owner.user_id,
            email: owner.email,
            package: Some(package_pb(owner.package)),
            key_id: owner.key_id,
        }))
    }

    async fn request_sign_in_link(
        &self,
        req: Request<pb::RequestSignInLinkRequest>,
    ) -> Result<Response<pb::RequestSignInLinkResponse>, Status> {
        self.require_internal(&req)?;
        let ip = metadata_str(&req, CLIENT_IP_METADATA).map(|ip| ip.chars().take(64).collect());
        Ok(Response::new(
            self.request_sign_in_link(req.into_inner(), ip).await?,
        ))
    }

    async fn consume_sign_in_link(
        &self,
        req: Request<pb::ConsumeSignInLinkRequest>,
    ) -> Result<Response<pb::SessionGrant>, Status> {
        Ok(Response::new(
            self.consume_sign_in_link(req.into_inner()).await?,
        ))
    }

    async fn sign_out(
        &self,
        req: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        let session = self.session_for_change(&req).await?;
        Ok(Response::new(
            self.sign_out(&session, req.get_ref().everywhere).await?,
        ))
    }

    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let session = self.session(&req).await?;
        Ok(Response::new(self.account(&session).await?))
    }

    async fn list_keys(
        &self,
        req: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        let session = self.session(&req).await?;
        Ok(Response::new(self.keys(&session).await?))
    }

    async fn create_key(
        &self,
        req: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreatedKey>, Status> {
        let session = self.session_for_change(&req).await?;
        Ok(Response::new(
            self.create_key(&session, req.into_inner()).await?,
        ))
    }

    async fn revoke_key(
        &self,
        req: Request<pb::RevokeKeyRequest>,
    ) -> Result<Response<pb::ApiKeyInfo>, Status> {
        let session = self.session_for_change(&req).await?;
        Ok(Response::new(
            self.revoke_key(&session, req.into_inner()).await?,
        ))
    }

    async fn rotate_key(
        &self,
        req: Request<pb::RotateKeyRequest>,
    ) -> Result<Response<pb::CreatedKey>, Status> {
        let session = self.session_for_change(&req).await?;
        Ok(Response::new(
            self.rotate_key(&session, req.into_inner()).await?,
        ))
    }

    async fn preview_package_change(
        &self,
        req: Request<pb::PreviewPackageChangeRequest>,
    ) -> Result<Response<pb::PackageChangePlan>, Status> {
        let session = self.session(&req).await?;
        Ok(Response::new(
            self.preview_change(&session, req.into_inner()).await?,
        ))
    }

    async fn change_package(
        &self,
        req: Request<pb::ChangePackageRequest>,
    ) -> Result<Response<pb::PackageChangePlan>, Status> {
        let session = self.session_for_change(&req).await?;
        Ok(Response::new(
            self.change_package(&session, req.into_inner()).await?,
        ))
    }

    async fn cancel_subscription(
        &self,
        req: Request<pb::CancelSubscriptionRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let session = self.session_for_change(&req).await?;
        Ok(Response::new(
            self.cancel(&session, req.into_inner()).await?,
        ))
    }

    async fn report_quota_level(
        &self,
        req: Request<pb::ReportQuotaLevelRequest>,
    ) -> Result<Response<pb::ReportQuotaLevelResponse>, Status> {
        self.require_internal(&req)?;
        Ok(Response::new(
            self.report_quota_level(req.into_inner()).await?,
        ))
    }
}
