//! The platform's stable error codes, mapped once to gRPC and once to HTTP.
//!
//! A service turns its own error enum into a [`ServiceError`]; the gRPC status it sends carries the
//! code in `x-iaf-error-code` metadata, so the REST shim recovers the exact code (and its HTTP
//! status) instead of guessing from the coarser gRPC status.

use std::fmt;

use tonic::metadata::MetadataValue;

/// Metadata key carrying the stable error code across the gRPC hop.
pub const ERROR_CODE_METADATA: &str = "x-iaf-error-code";
/// Metadata key carrying a retry delay in whole seconds (rate limits, quotas, overload).
pub const RETRY_AFTER_METADATA: &str = "retry-after";
/// Metadata key naming the request field at fault, as an OpenAI client writes it
/// (`messages[2].tool_call_id`, `tools[0].function.name`, `top_logprobs`).
pub const PARAM_METADATA: &str = "x-iaf-param";
/// Metadata key carrying an upstream provider's own error code when it refused a call
/// (`context_length_exceeded`, `content_filter`, ...).
pub const UPSTREAM_CODE_METADATA: &str = "x-iaf-upstream-code";

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, $grpc:ident, $http:literal; )*) => {
        /// Every error a client of the platform can receive, with a stable snake_case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// All codes, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable name sent to clients.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* }
            }

            /// The gRPC status code.
            pub fn grpc_code(self) -> tonic::Code {
                match self { $(ErrorCode::$variant => tonic::Code::$grpc,)* }
            }

            /// The HTTP status code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $http,)* }
            }

            /// Parses a stable name back.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s { $($text => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// A field is missing, malformed or out of range.
    InvalidArgument => "invalid_argument", InvalidArgument, 400;
    /// The e-mail address is not a valid address.
    InvalidEmail => "invalid_email", InvalidArgument, 400;
    /// The package id does not exist.
    UnknownPackage => "unknown_package", InvalidArgument, 400;
    /// The request body is not valid JSON or has wrong types.
    MalformedJson => "malformed_json", InvalidArgument, 400;
    /// The promo code does not exist.
    PromoUnknown => "promo_unknown", NotFound, 404;
    /// The promo code was deactivated.
    PromoInactive => "promo_inactive", FailedPrecondition, 400;
    /// The promo code is not valid yet.
    PromoNotYetValid => "promo_not_yet_valid", FailedPrecondition, 400;
    /// The promo code has expired.
    PromoExpired => "promo_expired", FailedPrecondition, 400;
    /// Every place of the promo code is taken.
    PromoExhausted => "promo_exhausted", FailedPrecondition, 409;
    /// The promo code does not apply to this package.
    PromoNotForPackage => "promo_not_for_package", FailedPrecondition, 400;
    /// An account already exists for this e-mail.
    EmailTaken => "email_taken", AlreadyExists, 409;
    /// A resource with this identifier already exists.
    AlreadyExists => "already_exists", AlreadyExists, 409;
    /// The resource does not exist.
    NotFound => "not_found", NotFound, 404;
    /// The idempotency key was used before with a different request.
    IdempotencyKeyReused => "idempotency_key_reused", InvalidArgument, 400;
    /// A request with the same idempotency key is still running.
    IdempotencyInProgress => "idempotency_in_progress", Aborted, 409;
    /// The change conflicts with the current state (e.g. a limit below the places used).
    Conflict => "conflict", FailedPrecondition, 409;
    /// Missing or invalid credentials.
    Unauthenticated => "unauthenticated", Unauthenticated, 401;
    /// The credentials do not allow this operation.
    PermissionDenied => "permission_denied", PermissionDenied, 403;
    /// The operator suspended the customer's account.
    AccountSuspended => "account_suspended", PermissionDenied, 403;
    /// The subscription is suspended for an unpaid invoice: its keys work again once paid.
    PaymentRequired => "payment_required", FailedPrecondition, 402;
    /// A state-changing account request without the session's CSRF token.
    CsrfFailed => "csrf_failed", PermissionDenied, 403;
    /// Too many requests from this client.
    RateLimited => "rate_limited", ResourceExhausted, 429;
    /// The package's quota is used up.
    QuotaExceeded => "quota_exceeded", ResourceExhausted, 429;
    /// The package's monthly upstream-cost budget is spent (margin protection): refused until
    /// the next calendar month, like the token quota.
    BudgetExceeded => "budget_exceeded", ResourceExhausted, 429;
    /// A field, or a capability it needs (tools, images, json_schema...), that no configured
    /// route of the model can carry: refused rather than dropped.
    UnsupportedParameter => "unsupported_parameter", InvalidArgument, 400;
    /// The package does not include this model.
    ModelNotAllowed => "model_not_allowed", PermissionDenied, 403;
    /// No model with this name.
    ModelNotFound => "model_not_found", NotFound, 404;
    /// Every upstream provider failed.
    UpstreamError => "upstream_error", Unavailable, 502;
    /// The upstream provider did not answer in time.
    UpstreamTimeout => "upstream_timeout", DeadlineExceeded, 504;
    /// The request body is too large.
    PayloadTooLarge => "payload_too_large", InvalidArgument, 413;
    /// The request body is not JSON.
    UnsupportedMediaType => "unsupported_media_type", InvalidArgument, 415;
    /// No such route.
    RouteNotFound => "route_not_found", NotFound, 404;
    /// The route exists but not with this method.
    MethodNotAllowed => "method_not_allowed", Unimplemented, 405;
    /// The client went away or cancelled.
    Cancelled => "cancelled", Cancelled, 499;
    /// The request took too long.
    Timeout => "timeout", DeadlineExceeded, 504;
    /// A backend is down or overloaded; retry later.
    Unavailable => "unavailable", Unavailable, 503;
    /// A bug or an infrastructure failure; details are in the server logs only.
    Internal => "internal", Internal, 500;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// The code used when a status carries no `x-iaf-error-code`, from the usual gRPC→HTTP table.
    pub fn from_grpc(code: tonic::Code) -> ErrorCode {
        use tonic::Code as C;
        match code {
            C::Ok | C::Unknown | C::Internal | C::DataLoss => ErrorCode::Internal,
            C::Cancelled => ErrorCode::Cancelled,
            C::InvalidArgument | C::OutOfRange => ErrorCode::InvalidArgument,
            C::DeadlineExceeded => ErrorCode::Timeout,
            C::NotFound => ErrorCode::NotFound,
            C::AlreadyExists => ErrorCode::AlreadyExists,
            C::PermissionDenied => ErrorCode::PermissionDenied,
            C::Unauthenticated => ErrorCode::Unauthenticated,
            C::ResourceExhausted => ErrorCode::RateLimited,
            C::FailedPrecondition | C::Aborted => ErrorCode::Conflict,
            C::Unimplemented => ErrorCode::MethodNotAllowed,
            C::Unavailable => ErrorCode::Unavailable,
        }
    }
}

/// An error as a client sees it: a stable code, a human message and an optional retry delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ServiceError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The gRPC status for this error, with the code (and retry delay) in metadata.
    pub fn into_status(self) -> tonic::Status {
        let mut status = tonic::Status::new(self.code.grpc_code(), self.message);
        let md = status.metadata_mut();
        md.insert(
            ERROR_CODE_METADATA,
            MetadataValue::from_static(self.code.as_str()),
        );
        if let Some(secs) = self.retry_after_secs {
            md.insert(RETRY_AFTER_METADATA, MetadataValue::from(secs));
        }
        status
    }

    /// Recovers the error from a gRPC status received from another service.
    pub fn from_status(status: &tonic::Status) -> ServiceError {
        let md = status.metadata();
        let code = md
            .get(ERROR_CODE_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorCode::parse)
            .unwrap_or_else(|| ErrorCode::from_grpc(status.code()));
        let retry_after_secs = md
            .get(RETRY_AFTER_METADATA)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let message = if code == ErrorCode::Internal {
            // Never forward another service's internal detail to a client.
            "Erreur interne, veuillez réessayer.".to_owned()
        } else {
            status.message().to_owned()
        };
        ServiceError {
            code,
            message,
            retry_after_secs,
        }
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ServiceError {}

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        e.into_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn grpc_and_http_agree_with_the_usual_table() {
        for &code in ErrorCode::ALL {
            let http = code.http_status();
            let expected: &[u16] = match code.grpc_code() {
                tonic::Code::InvalidArgument => &[400, 413, 415],
                tonic::Code::NotFound => &[404],
                tonic::Code::AlreadyExists | tonic::Code::Aborted => &[409],
                // 402: a precondition on the customer's side (an unpaid invoice).
                tonic::Code::FailedPrecondition => &[400, 402, 409],
                tonic::Code::Unauthenticated => &[401],
                tonic::Code::PermissionDenied => &[403],
                tonic::Code::ResourceExhausted => &[429],
                tonic::Code::Unavailable => &[502, 503],
                tonic::Code::DeadlineExceeded => &[504],
                tonic::Code::Cancelled => &[499],
                tonic::Code::Unimplemented => &[405, 501],
                _ => &[500],
            };
            assert!(expected.contains(&http), "{code}: {http}");
        }
    }

    #[test]
    fn status_round_trip_keeps_code_and_retry_after() {
        let err =
            ServiceError::new(ErrorCode::PromoExhausted, "plus de places").with_retry_after(7);
        let back = ServiceError::from_status(&err.clone().into_status());
        assert_eq!(back, err);
    }

    #[test]
    fn internal_detail_is_not_forwarded() {
        let status = tonic::Status::internal("db password wrong at 10.0.0.1");
        let back = ServiceError::from_status(&status);
        assert_eq!(back.code, ErrorCode::Internal);
        assert!(!back.message.contains("10.0.0.1"));
    }
}
