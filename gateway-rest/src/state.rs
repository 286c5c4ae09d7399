//! What every handler shares: configuration, the backends, limiters, metrics, caches.

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use iafactory::ErrorCode;
use iafactory::clients::llm::v1::{LlmGatewayClient, RequestLogClient};
use iafactory::clients::promo::v1::{
    BillingClient, CampaignsClient, OperatorAccountsClient, OperatorsClient, PromoServiceClient,
};
use iafactory::proto::iafactory::llm::v1::{GetKeysUsageRequest, KeysUsage};
use tokio::sync::watch;
use tonic::metadata::AsciiMetadataValue;

use crate::backend::Backend;
use crate::config::Config;
use crate::error::ApiError;
use crate::health::Readiness;
use crate::live::LiveCounters;
use crate::metrics::Metrics;
use crate::ratelimit::{AuthFailures, IpLimiter, client_ip};
use crate::request_id::RequestIds;
use crate::static_files::StaticFiles;

/// Everything a handler needs, shared by every connection.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub promo: Backend,
    pub llm: Backend,
    pub metrics: Metrics,
    pub validate_limiter: Option<IpLimiter>,
    pub signup_limiter: Option<IpLimiter>,
    /// Per-IP limit of the landing page's counted events (`POST /api/evenements`).
    pub event_limiter: Option<IpLimiter>,
    pub auth_failures: Option<AuthFailures>,
    /// Turns true on shutdown: open event streams end so the server can drain.
    pub stop: watch::Receiver<bool>,
    /// `/openapi.json`, serialized once.
    pub openapi: bytes::Bytes,
    /// The live counters: one upstream stream per code, fanned out to viewers (and to polls of
    /// `/remaining` when `REMAINING_CACHE` is on).
    pub live: Arc<LiveCounters>,
    pub static_files: StaticFiles,
    /// The cached verdict of `/readyz`.
    pub readiness: Readiness,
    pub(crate) request_ids: RequestIds,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn promo_client(&self) -> PromoServiceClient {
        PromoServiceClient::new(self.promo.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
    }

    /// promo-service's `Billing` service (same replicas, same channel as `promo_client`).
    pub fn billing_client(&self) -> BillingClient {
        BillingClient::new(self.promo.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
    }

    /// promo-service's console RPCs (operators, dashboard, customers, catalogue, events).
    pub fn operators_client(&self) -> OperatorsClient {
        OperatorsClient::new(self.promo.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
    }

    /// promo-service's operator account management (passwords, roles, deactivation).
    pub fn operator_accounts_client(&self) -> OperatorAccountsClient {
        OperatorAccountsClient::new(self.promo.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
    }

    /// promo-service's `Campaigns` service (contacts, campaigns, waitlist, e-mail links).
    pub fn campaigns_client(&self) -> CampaignsClient {
        CampaignsClient::new(self.promo.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
    }

    pub fn request_log_client(&self) -> RequestLogClient {
        RequestLogClient::new(self.llm.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_MESSAGE_BYTES)
    }

    /// A request carrying the internal token: a call gateway-rest makes on its own authority,
    /// having authorised the caller itself (or for a public page). Without a token, a logged
    /// 503 whose sentence is `refusal`; `what` names the call in the log.
    pub fn internal_request<T>(
        &self,
        message: T,
        headers: &HeaderMap,
        what: &str,
        refusal: &'static str,
    ) -> Result<tonic::Request<T>, ApiError> {
        let Some(token) = &self.config.internal_token else {
            tracing::error!("INTERNAL_TOKEN is not set on gateway-rest: {what}");
            return Err(ApiError::new(ErrorCode::Unavailable, refusal));
        };
        let mut req = crate::backend::request(message, headers, &[])?;
        iafactory::grpc::set_bearer(&mut req, token.expose());
        Ok(req)
    }

    /// A llm-gateway request carrying the internal token (the request log, usage, providers:
    /// operator or account information that gateway-rest has already authorised). `what`
    /// names it in the 503 when gateway-rest has no token.
    pub fn internal_llm_request<T>(
        &self,
        message: T,
        headers: &HeaderMap,
        what: &'static str,
    ) -> Result<tonic::Request<T>, ApiError> {
        self.internal_request(
            message,
            headers,
            &format!("{what} cannot be read"),
            "Service momentanément indisponible.",
        )
    }

    /// This month's usage of `key_ids` from llm-gateway, in their order (the caller has checked
    /// that they are the session's own or that the caller is an operator).
    pub async fn keys_usage(
        &self,
        headers: &HeaderMap,
        key_ids: Vec<String>,
    ) -> Result<KeysUsage, ApiError> {
        let req = self.internal_request(
            GetKeysUsageRequest { key_ids },
            headers,
            "usage cannot be read",
            "Consommation momentanément indisponible.",
        )?;
        Ok(self.llm_client().get_keys_usage(req).await?.into_inner())
    }

    /// Tells promo-service the client's address (`x-iaf-client-ip`), for its per-IP budgets
    /// (sign-in attempts, sign-in links).
    pub fn tag_client_ip<T>(
        &self,
        req: &mut tonic::Request<T>,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) {
        let ip = client_ip(peer, headers, self.config.client_ip_header.as_ref());
        if let Ok(v) = AsciiMetadataValue::try_from(ip.to_string()) {
            req.metadata_mut().insert("x-iaf-client-ip", v);
        }
    }

    pub fn llm_client(&self) -> LlmGatewayClient {
        // Answers can be large (an embeddings batch: up to 2048 vectors).
        LlmGatewayClient::new(self.llm.channel())
            .max_decoding_message_size(iafactory::grpc::MAX_ANSWER_BYTES)
    }

    /// Charges one request to the client's budget in `limiter` (none: unlimited); past it, a
    /// 429 with the wait in Retry-After.
    pub fn check_rate(
        &self,
        limiter: Option<&IpLimiter>,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        let ip = client_ip(peer, headers, self.config.client_ip_header.as_ref());
        limiter.check(ip).map_err(|wait| {
            self.metrics.rate_limited.inc();
            ApiError::new(
                ErrorCode::RateLimited,
                format!("Trop de requêtes, réessayez dans {wait} s."),
            )
            .with_retry_after(wait.max(1))
        })
    }
}
