//! The gateway's one error enum, mapped once onto the platform's error codes (and through them to
//! gRPC and HTTP). Client-facing messages never carry provider keys or internal causes; those go
//! to the logs.

use iafactory::{ErrorCode, ServiceError};
use tonic::metadata::MetadataValue;

/// Metadata key naming which quota refused a call (`requests_per_minute`, `tokens_per_month` or
/// `monthly_cost_budget`).
pub const QUOTA_LIMIT_METADATA: &str = "x-iaf-quota-limit";

/// Metadata key naming the request field at fault, as an OpenAI client writes it
/// (`messages[2].tool_call_id`, `tools[0].function.name`, `top_logprobs`).
pub const PARAM_METADATA: &str = iafactory::error::PARAM_METADATA;

/// Metadata key carrying the upstream's own error code when it refused the call
/// (`context_length_exceeded`, `content_filter`, ...).
pub const UPSTREAM_CODE_METADATA: &str = iafactory::error::UPSTREAM_CODE_METADATA;

/// Which package limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaLimit {
    RequestsPerMinute,
    TokensPerMonth,
}

impl QuotaLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaLimit::RequestsPerMinute => "requests_per_minute",
            QuotaLimit::TokensPerMonth => "tokens_per_month",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// 400 / INVALID_ARGUMENT: the request is malformed or out of range (also an upstream 400).
    #[error("{0}")]
    InvalidArgument(String),
    /// 400 / INVALID_ARGUMENT: one field of the request is wrong; `param` names it.
    #[error("{message}")]
    BadParam { param: String, message: String },
    /// 400 / INVALID_ARGUMENT `unsupported_parameter`: a field, or a capability it needs, that
    /// no configured route of the model can carry; `param` names it.
    #[error("{message}")]
    Unsupported { param: String, message: String },
    /// 400 / INVALID_ARGUMENT: the upstream refused the request itself; its own error code and
    /// the field it blamed are kept.
    #[error("the provider rejected the request: {message}")]
    UpstreamRejected {
        message: String,
        upstream_code: Option<String>,
        param: Option<String>,
    },
    /// 401 / UNAUTHENTICATED: missing, unknown or revoked API key.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 402 / FAILED_PRECONDITION `payment_required`: the key's subscription is suspended for an
    /// unpaid invoice; promo-service's message says what to pay and how.
    #[error("{0}")]
    PaymentRequired(String),
    /// 403 / PERMISSION_DENIED: an internal RPC (`ListProviders`) called without the internal
    /// token.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404 / NOT_FOUND: no public model with this name.
    #[error("unknown model {0:?}; see ListModels")]
    ModelNotFound(String),
    /// 403 / PERMISSION_DENIED: the key's package does not include this model.
    #[error("your package {package:?} does not include model {model:?}")]
    ModelNotAllowed { model: String, package: String },
    /// 429 / RESOURCE_EXHAUSTED: a package limit is reached until `retry_after_secs` from now.
    #[error("{} limit of {limit_value} reached; resets in {retry_after_secs} s", .limit.as_str())]
    Quota {
        limit: QuotaLimit,
        limit_value: u64,
        retry_after_secs: u64,
    },
    /// 429 / RESOURCE_EXHAUSTED `budget_exceeded`: the package's monthly upstream-cost budget is
    /// spent until the next month. The message never states the budget: it is our cost price.
    #[error("your package's monthly usage budget is spent; it resets in {retry_after_secs} s")]
    Budget { retry_after_secs: u64 },
    /// 502 / UNAVAILABLE: every provider route failed.
    #[error("every provider failed for this model: {0}")]
    Upstream(String),
    /// 504 / DEADLINE_EXCEEDED: no provider answered within the timeouts.
    #[error("no provider answered in time: {0}")]
    UpstreamTimeout(String),
    /// 503 / UNAVAILABLE: every provider of the model has its circuit open; `retry-after` says
    /// when the first one lets a trial call through.
    #[error(
        "every provider of model {model:?} is temporarily disabled after repeated failures; retry in {retry_after_secs} s"
    )]
    CircuitOpen {
        model: String,
        retry_after_secs: u64,
    },
    /// 503 / UNAVAILABLE: a dependency (promo-service, the database) is unreachable, or no
    /// provider is configured for the model.
    #[error("{0}")]
    Unavailable(String),
    /// 500 / INTERNAL: a bug or an infrastructure failure; the cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for GatewayError {
    fn from(e: sqlx::Error) -> Self {
        if iafactory::db::is_unavailable(&e) {
            tracing::warn!(error = %e, "usage store unavailable");
            GatewayError::Unavailable("usage store unavailable, please retry".into())
        } else {
            GatewayError::Internal(Box::new(e))
        }
    }
}

impl GatewayError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        GatewayError::Internal(e.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::InvalidArgument(_)
            | GatewayError::BadParam { .. }
            | GatewayError::UpstreamRejected { .. } => ErrorCode::InvalidArgument,
            GatewayError::Unsupported { .. } => ErrorCode::UnsupportedParameter,
            GatewayError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            GatewayError::PaymentRequired(_) => ErrorCode::PaymentRequired,
            GatewayError::Forbidden(_) => ErrorCode::PermissionDenied,
            GatewayError::ModelNotFound(_) => ErrorCode::ModelNotFound,
            GatewayError::ModelNotAllowed { .. } => ErrorCode::ModelNotAllowed,
            GatewayError::Quota { limit, .. } => match limit {
                QuotaLimit::RequestsPerMinute => ErrorCode::RateLimited,
                QuotaLimit::TokensPerMonth => ErrorCode::QuotaExceeded,
            },
            GatewayError::Budget { .. } => ErrorCode::BudgetExceeded,
            GatewayError::Upstream(_) => ErrorCode::UpstreamError,
            GatewayError::UpstreamTimeout(_) => ErrorCode::UpstreamTimeout,
            GatewayError::Unavailable(_) | GatewayError::CircuitOpen { .. } => {
                ErrorCode::Unavailable
            }
            GatewayError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// A bad-field error naming it.
    pub fn param(param: impl Into<String>, message: impl Into<String>) -> Self {
        GatewayError::BadParam {
            param: param.into(),
            message: message.into(),
        }
    }

    /// The client-facing error (internal causes are logged here and replaced).
    pub fn to_service_error(&self) -> ServiceError {
        match self {
            GatewayError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ServiceError::new(ErrorCode::Internal, "internal error, please retry")
            }
            GatewayError::Quota {
                retry_after_secs, ..
            }
            | GatewayError::Budget { retry_after_secs }
            | GatewayError::CircuitOpen {
                retry_after_secs, ..
            } => {
                ServiceError::new(self.code(), self.to_string()).with_retry_after(*retry_after_secs)
            }
            other => ServiceError::new(other.code(), other.to_string()),
        }
    }
}

impl From<GatewayError> for tonic::Status {
    fn from(e: GatewayError) -> Self {
        let mut status = e.to_service_error().into_status();
        let md = status.metadata_mut();
        // Client-supplied or upstream text: only inserted when it is a valid metadata value.
        let mut insert = |key: &'static str, v: &str| {
            if let Ok(v) = MetadataValue::try_from(v) {
                md.insert(key, v);
            }
        };
        match &e {
            GatewayError::Quota { limit, .. } => insert(QUOTA_LIMIT_METADATA, limit.as_str()),
            GatewayError::Budget { .. } => insert(QUOTA_LIMIT_METADATA, "monthly_cost_budget"),
            GatewayError::BadParam { param, .. } | GatewayError::Unsupported { param, .. } => {
                insert(PARAM_METADATA, param)
            }
            GatewayError::UpstreamRejected {
                upstream_code,
                param,
                ..
            } => {
                if let Some(c) = upstream_code {
                    insert(UPSTREAM_CODE_METADATA, c);
                }
                if let Some(p) = param {
                    insert(PARAM_METADATA, p);
                }
            }
            _ => {}
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_status_names_the_limit_and_reset() {
        let status: tonic::Status = GatewayError::Quota {
            limit: QuotaLimit::TokensPerMonth,
            limit_value: 1000,
            retry_after_secs: 42,
        }
        .into();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        let md = status.metadata();
        assert_eq!(
            md.get(QUOTA_LIMIT_METADATA).and_then(|v| v.to_str().ok()),
            Some("tokens_per_month")
        );
        assert_eq!(
            md.get("retry-after").and_then(|v| v.to_str().ok()),
            Some("42")
        );
        assert_eq!(
            md.get("x-iaf-error-code").and_then(|v| v.to_str().ok()),
            Some("quota_exceeded")
        );
    }

    #[test]
    fn internal_cause_is_not_sent() {
        let status: tonic::Status =
            GatewayError::internal("secret detail at 10.0.0.1".to_owned()).into();
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("10.0.0.1"));
    }
}
