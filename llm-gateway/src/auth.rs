//! API key authentication through promo-service's `AuthenticateKey`, cached briefly. Each call
//! carries the internal token (`INTERNAL_TOKEN`); promo-service refusing that token is a
//! configuration error (503, logged), never an invalid key.
//!
//! The cache keeps, per SHA-256 of the key (never the key itself), the key's owner, package
//! limits and allowed models for `ttl` (5 s by default), and an unknown or revoked key's refusal
//! for `negative_ttl` (1 s) so a flood of bad keys does not reach promo-service. Entries past half
//! their TTL are re-checked in the background while they keep serving. Consequence,
//! stated in the product docs: **a revoked key keeps working for at most `ttl` on each gateway
//! replica** that saw it recently. promo-service being unreachable is a 503 (never cached), not
//! a refusal. A key whose subscription is suspended for an unpaid invoice is refused with
//! promo-service's `payment_required` message, cached like a refusal for `negative_ttl`: a
//! recorded payment is seen by every replica within `negative_ttl` (1 s by default), and a
//! suspension within `ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iafactory::clients::promo::v1::PromoServiceClient;
use iafactory::proto::iafactory::promo::v1::{AuthenticateKeyRequest, ReportQuotaLevelRequest};
use sha2::{Digest, Sha256};

use iafactory::secret::InternalToken;

use crate::error::GatewayError;
use crate::quota::Limits;

/// What a valid key carries.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyInfo {
    pub key_id: String,
    pub user_id: String,
    pub package: String,
    pub limits: Limits,
    /// Empty: every model.
    pub allowed_models: Vec<String>,
}

impl KeyInfo {
    /// Whose quota a call spends: the customer's. The package, and with it the requests per
    /// minute and tokens per month, belongs to the customer; a customer holding several keys
    /// (named keys, a rotation's grace period) shares one budget across them.
    pub fn quota_subject(&self) -> &str {
        &self.user_id
    }

    pub fn may_use(&self, model: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.iter().any(|m| m == model)
    }
}

enum Cached {
    /// Checked at `.0`; `.2`: a background re-check is in flight.
    Valid(Instant, Arc<KeyInfo>, bool),
    Refused(Instant),
    /// Suspended for an unpaid invoice, with promo-service's message.
    PaymentRequired(Instant, Arc<str>),
}

/// Keys longer than this are refused without asking promo-service.
const MAX_KEY_LEN: usize = 256;
/// Above this many cache entries, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 50_000;

struct Inner {
    client: PromoServiceClient,
    /// Presented on every `AuthenticateKey` call: promo-service answers only platform services.
    token: Option<InternalToken>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    ttl: Duration,
    negative_ttl: Duration,
    call_timeout: Duration,
}

/// Outcome of one promo-service check.
enum Checked {
    Valid(Arc<KeyInfo>),
    Refused,
    /// The subscription is suspended for an unpaid invoice.
    PaymentRequired(Arc<str>),
    /// promo-service unreachable or failing: not cached.
    Unavailable,
}

/// Checks API keys with promo-service, caching the answers.
///
/// A valid entry older than half the TTL is re-checked in the background while it keeps
/// serving, so a busy key never waits for promo-service at expiry (no latency spike every TTL);
/// a valid entry older than the TTL is never served. A check's time is taken when it is sent,
/// so a key revoked at any instant is refused at most one TTL (plus one call) later.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

impl Authenticator {
    /// Connects lazily: the gateway starts (and reports the problem per call) even when
    /// promo-service is not up yet.
    pub fn new(
        promo_url: &str,
        token: Option<InternalToken>,
        ttl: Duration,
        negative_ttl: Duration,
    ) -> Result<Self, tonic::transport::Error> {
        // One URL, or several promo-service replicas balanced.
        let channel = iafactory::grpc::balanced_channel(promo_url, |e| {
            e.connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
        })?;
        Ok(Authenticator {
            inner: Arc::new(Inner {
                client: PromoServiceClient::new(channel),
                token,
                cache: Mutex::new(HashMap::new()),
                ttl,
                negative_ttl,
                call_timeout: Duration::from_secs(3),
            }),
        })
    }

    /// Resolves the bearer token of a call to its key, package and limits.
    pub async fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Arc<KeyInfo>, GatewayError> {
        let Some(key) = iafactory::grpc::bearer_token(metadata) else {
            return Err(GatewayError::Unauthenticated(
                "missing API key: send `authorization: Bearer iaf_...`",
            ));
        };
        if !key.starts_with("iaf_") || key.len() > MAX_KEY_LEN {
            return Err(GatewayError::Unauthenticated("invalid API key"));
        }
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let inner = &self.inner;
        let now = Instant::now();
        let mut refresh = false;
        let cached = {
            let mut cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.get_mut(&digest) {
                Some(Cached::Valid(at, info, refreshing))
                    if now.duration_since(*at) < inner.ttl =>
                {
                    if now.duration_since(*at) >= inner.ttl / 2 && !*refreshing {
                        *refreshing = true;
                        refresh = true;
                    }
                    Some(Ok(info.clone()))
                }
                Some(Cached::Refused(at)) if now.duration_since(*at) < inner.negative_ttl => Some(
                    Err(GatewayError::Unauthenticated("invalid or revoked API key")),
                ),
                Some(Cached::PaymentRequired(at, message))
                    if now.duration_since(*at) < inner.negative_ttl =>
                {
                    Some(Err(GatewayError::PaymentRequired(message.to_string())))
                }
                _ => None,
            }
        };
        if refresh {
            let (this, key) = (self.clone(), key.to_owned());
            tokio::spawn(async move {
                if matches!(this.check(&key, digest).await, Checked::Unavailable) {
                    // Keep serving the entry until it expires; the next call retries.
                    let mut cache = this.inner.cache.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(Cached::Valid(_, _, refreshing)) = cache.get_mut(&digest) {
                        *refreshing = false;
                    }
                }
            });
        }
        if let Some(answer) = cached {
            return answer;
        }
        match self.check(key, digest).await {
            Checked::Valid(info) => Ok(info),
            Checked::Refused => Err(GatewayError::Unauthenticated("invalid or revoked API key")),
            Checked::PaymentRequired(message) => {
                Err(GatewayError::PaymentRequired(message.to_string()))
            }
            Checked::Unavailable => Err(GatewayError::Unavailable(
                "API key check unavailable, please retry".into(),
            )),
        }
    }

    /// Reports a customer's quota level to promo-service (the 80 % / 100 % e-mails, see
    /// [`crate::notices`]) on the same channel and internal token as key checks. `Ok(false)`:
    /// that notice was already written.
    pub async fn report_quota_level(
        &self,
        level: ReportQuotaLevelRequest,
    ) -> Result<bool, tonic::Status> {
        let inner = &self.inner;
        let mut req = tonic::Request::new(level);
        req.set_timeout(inner.call_timeout);
        if let Some(token) = &inner.token {
            iafactory::grpc::set_bearer(&mut req, token.expose());
        }
        let r = inner.client.clone().report_quota_level(req).await?;
        Ok(r.into_inner().queued)
    }

    /// Asks promo-service and caches the answer (unless promo-service failed).
    async fn check(&self, key: &str, digest: [u8; 32]) -> Checked {
        let inner = &self.inner;
        let issued = Instant::now();
        let mut req = tonic::Request::new(AuthenticateKeyRequest {
            api_key: key.to_owned(),
        });
        req.set_timeout(inner.call_timeout);
        if let Some(token) = &inner.token {
            iafactory::grpc::set_bearer(&mut req, token.expose());
        }
        let entry = match inner.client.clone().authenticate_key(req).await {
            Ok(resp) => {
                let r = resp.into_inner();
                let pkg = r.package.unwrap_or_default();
                // Usage and quotas are keyed by key id; never let an empty one pool keys.
                let key_id = if r.key_id.is_empty() {
                    format!("sha256:{}", hex::encode(digest))
                } else {
                    r.key_id
                };
                Checked::Valid(Arc::new(KeyInfo {
                    key_id,
                    user_id: r.user_id,
                    package: pkg.id,
                    limits: Limits {
                        requests_per_minute: pkg.requests_per_minute,
                        tokens_per_month: pkg.tokens_per_month,
                        cost_budget_nano_usd: pkg.monthly_cost_budget_nano_usd,
                    },
                    allowed_models: pkg.allowed_models,
                }))
            }
            Err(status)
                if iafactory::ServiceError::from_status(&status).code
                    == iafactory::ErrorCode::PaymentRequired =>
            {
                Checked::PaymentRequired(Arc::from(status.message()))
            }
            Err(status) => match status.code() {
                tonic::Code::Unauthenticated
                | tonic::Code::NotFound
                | tonic::Code::InvalidArgument => Checked::Refused,
                // promo-service refuses this gateway, not the key: a configuration error
                // (INTERNAL_TOKEN differs), reported as unavailable and never cached, so customers
                // are not told their valid key is invalid.
                tonic::Code::PermissionDenied => {
                    tracing::error!(
                        message = status.message(),
                        "promo-service refused this gateway's INTERNAL_TOKEN: API keys cannot be checked"
                    );
                    return Checked::Unavailable;
                }
                _ => {
                    tracing::warn!(code = ?status.code(), message = status.message(), "promo-service key check failed");
                    return Checked::Unavailable;
                }
            },
        };
        let mut cache = inner.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > SWEEP_ABOVE {
            let (ttl, nttl, now) = (inner.ttl, inner.negative_ttl, Instant::now());
            cache.retain(|_, c| match c {
                Cached::Valid(at, _, _) => now.duration_since(*at) < ttl,
                Cached::Refused(at) | Cached::PaymentRequired(at, _) => {
                    now.duration_since(*at) < nttl
                }
            });
        }
        match &entry {
            Checked::Valid(info) => {
                cache.insert(digest, Cached::Valid(issued, info.clone(), false));
            }
            Checked::Refused => {
                cache.insert(digest, Cached::Refused(issued));
            }
            Checked::PaymentRequired(message) => {
                cache.insert(digest, Cached::PaymentRequired(issued, message.clone()));
            }
            Checked::Unavailable => {}
        }
        entry
    }
}
