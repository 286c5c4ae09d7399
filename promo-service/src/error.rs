//! The promo service's error enum, mapped once onto the platform's error codes (and through them
//! to gRPC and HTTP). Messages are French sentences for the landing page; internal causes are
//! logged and never sent.

use iafactory::{ErrorCode, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum PromoError {
    /// 400: a field is missing, malformed or out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// 400: not an e-mail address.
    #[error("adresse e-mail invalide : {0:?}")]
    InvalidEmail(String),
    /// 400 (`invalid_email`): the address imitates another one by mixing alphabets (UTS #39).
    #[error(
        "adresse e-mail refusée : elle mélange des alphabets différents (par exemple des lettres latines et cyrilliques qui se ressemblent) ; écrivez-la dans un seul alphabet : {0:?}"
    )]
    EmailLookalike(String),
    /// 400: no such package.
    #[error("forfait inconnu : {0:?}")]
    UnknownPackage(String),
    /// 404/400/409: the promo code cannot be used.
    #[error("{}", .0.message())]
    Refused(Refusal),
    /// 409: an account exists for this e-mail.
    #[error("un compte existe déjà pour cette adresse e-mail")]
    EmailTaken,
    /// 409: a code with this name exists.
    #[error("le code promo {0} existe déjà")]
    CodeExists(String),
    /// 404: the resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: the change contradicts the current state.
    #[error("{0}")]
    Conflict(String),
    /// 400: the Idempotency-Key was used with another request.
    #[error("cette clé d'idempotence a déjà servi pour une autre requête")]
    IdempotencyKeyReused,
    /// 401: missing or wrong admin token / API key.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// 403: an internal RPC called without the internal token (the caller is not a service of
    /// the platform). Distinct from 401 so that llm-gateway never mistakes its own missing
    /// credential for a customer's invalid API key.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 403 (`account_suspended`): the operator suspended the account.
    #[error("votre compte est suspendu : contactez-nous pour le réactiver")]
    Suspended,
    /// 402 (`payment_required`): the subscription is suspended for an unpaid invoice. The
    /// message (English: it reaches `/v1` callers through llm-gateway) says what to pay and how.
    #[error("{0}")]
    PaymentRequired(String),
    /// 403 (`csrf_failed`): a state-changing account request without the session's CSRF token.
    #[error("requête refusée : jeton anti-CSRF manquant ou invalide, rechargez la page")]
    Csrf,
    /// 429 (`rate_limited`): too many sign-in links asked for; retry after this many seconds.
    #[error("trop de demandes de lien de connexion : réessayez dans {0} s")]
    RateLimited(u64),
    /// 429 (`rate_limited`): too many failed operator sign-ins for this e-mail or IP; retry
    /// after this many seconds.
    #[error("trop d'essais de connexion échoués : réessayez dans {0} s")]
    SignInLocked(u64),
    /// 503 (`unavailable`): an outside service (the card payment provider) cannot be reached or
    /// refused; the message says what to do instead.
    #[error("{0}")]
    ServiceUnavailable(&'static str),
    /// 503: the database is unreachable or overloaded.
    #[error("service momentanément indisponible, veuillez réessayer")]
    Unavailable(#[source] sqlx::Error),
    /// 500: anything else; the cause goes to the logs only.
    #[error("erreur interne")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why a code cannot be used; mirrors the contract's `RefusalReason`. Decided by
/// [`crate::domain::CodeRules::check`]; defined here, with the other reasons a request fails, so
/// that this module needs nothing from `domain` (which returns these errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Inactive,
    NotYetValid,
    Expired,
    Exhausted,
    NotForPackage,
}

impl Refusal {
    /// The sentence shown on the landing page.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Unknown => "Ce code promo n'existe pas.",
            Refusal::Inactive => "Ce code promo n'est plus actif.",
            Refusal::NotYetValid => "Ce code promo n'est pas encore valable.",
            Refusal::Expired => "Ce code promo a expiré.",
            Refusal::Exhausted => "Désolé, toutes les places de ce code promo ont été prises.",
            Refusal::NotForPackage => "Ce code promo ne s'applique pas à ce forfait.",
        }
    }
}

impl From<sqlx::Error> for PromoError {
    fn from(e: sqlx::Error) -> Self {
        if iafactory::db::is_unavailable(&e) {
            PromoError::Unavailable(e)
        } else {
            PromoError::Internal(Box::new(e))
        }
    }
}

impl PromoError {
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        PromoError::Internal(e.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            PromoError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            PromoError::InvalidEmail(_) | PromoError::EmailLookalike(_) => ErrorCode::InvalidEmail,
            PromoError::UnknownPackage(_) => ErrorCode::UnknownPackage,
            PromoError::Refused(r) => match r {
                Refusal::Unknown => ErrorCode::PromoUnknown,
                Refusal::Inactive => ErrorCode::PromoInactive,
                Refusal::NotYetValid => ErrorCode::PromoNotYetValid,
                Refusal::Expired => ErrorCode::PromoExpired,
                Refusal::Exhausted => ErrorCode::PromoExhausted,
                Refusal::NotForPackage => ErrorCode::PromoNotForPackage,
            },
            PromoError::EmailTaken => ErrorCode::EmailTaken,
            PromoError::CodeExists(_) => ErrorCode::AlreadyExists,
            PromoError::NotFound(_) => ErrorCode::NotFound,
            PromoError::Conflict(_) => ErrorCode::Conflict,
            PromoError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            PromoError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            PromoError::Forbidden(_) => ErrorCode::PermissionDenied,
            PromoError::Suspended => ErrorCode::AccountSuspended,
            PromoError::Csrf => ErrorCode::CsrfFailed,
            PromoError::PaymentRequired(_) => ErrorCode::PaymentRequired,
            PromoError::RateLimited(_) | PromoError::SignInLocked(_) => ErrorCode::RateLimited,
            PromoError::Unavailable(_) | PromoError::ServiceUnavailable(_) => {
                ErrorCode::Unavailable
            }
            PromoError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<PromoError> for tonic::Status {
    fn from(e: PromoError) -> Self {
        let code = e.code();
        match &e {
            PromoError::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            PromoError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable")
            }
            _ => tracing::debug!(code = %code, error = %e, "request refused"),
        }
        let mut err = ServiceError::new(code, e.to_string());
        if code == ErrorCode::Unavailable {
            err = err.with_retry_after(1);
        }
        if let PromoError::RateLimited(secs) | PromoError::SignInLocked(secs) = &e {
            err = err.with_retry_after(*secs);
        }
        err.into_status()
    }
}

pub type Result<T, E = PromoError> = std::result::Result<T, E>;
