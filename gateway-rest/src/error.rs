//! Errors as the REST edge sends them.
//!
//! Every error is a [`ServiceError`] from the platform's one code table (`iafactory::error`): its
//! stable code gives the HTTP status, so the gRPC services and this shim can never disagree. The
//! body is `{"error":{"code","message"}}`; on the OpenAI-compatible `/v1` routes it also carries
//! OpenAI's `type` field so the official SDKs raise the right exception class. The body types
//! are also the document's `Error` and `OpenAiError` schemas. [`ServeError`] is the other kind:
//! why the gateway could not start.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{HeaderName, StatusCode};
use iafactory::{ErrorCode, ServiceError};
use serde::Serialize;
use utoipa::ToSchema;

/// Why the gateway could not start. (Once serving, failures are per connection or per request:
/// logged and answered, never fatal; a panic of the serving task is the one exception.)
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{name} URL {url:?} is not usable: {source}")]
    BackendUrl {
        name: &'static str,
        url: String,
        source: tonic::transport::Error,
    },
    #[error(
        "STATIC_DIR {0:?} is not a folder (unset it to serve the landing page built into the binary)"
    )]
    StaticDir(std::path::PathBuf),
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
    #[error("cannot read the listener's address: {0}")]
    Listen(#[source] std::io::Error),
    #[error(transparent)]
    Task(#[from] iafactory::lifecycle::TaskFailed),
}

/// Which error body shape a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `/api/*` and the operational routes: `{"error":{"code","message"}}`.
    Rest,
    /// `/v1/*`: `{"error":{"code","message","type","param"}}` like OpenAI's API.
    OpenAi,
}

impl Flavor {
    /// The flavor of a request path.
    pub fn of_path(path: &str) -> Flavor {
        if path.starts_with("/v1/") || path == "/v1" {
            Flavor::OpenAi
        } else {
            Flavor::Rest
        }
    }
}

/// What a handler answers: a response, or an error in the route's shape.
pub type ApiResult = Result<Response, ApiError>;

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub error: ServiceError,
    pub flavor: Flavor,
    /// What only `/v1` answers carry; boxed, as it is rare and errors travel in every `Result`.
    openai: Option<Box<OpenAiExtra>>,
    /// The backend could not be reached (refused, reset, gone away): counted apart from the
    /// backend's own refusals, see [`BackendUnreachable`].
    unreachable: bool,
}

/// Marks an answer given because a backend could not be reached, for the edge to count it
/// (`iaf_http_backend_unavailable_total`, behind the BackendUnavailable alert).
#[derive(Debug, Clone, Copy)]
pub struct BackendUnreachable;

/// The parts of an error only OpenAI's shape carries.
#[derive(Debug, Clone, Default)]
struct OpenAiExtra {
    /// The request field at fault, as an OpenAI client writes it (`messages[0].content`):
    /// OpenAI's `param`. From llm-gateway's `x-iaf-param` metadata or the edge's own checks.
    param: Option<String>,
    /// The upstream provider's own error code (`context_length_exceeded`), from llm-gateway's
    /// `x-iaf-upstream-code`: OpenAI's `code`, on which clients branch.
    upstream_code: Option<String>,
    /// The message in English (OpenAI clients and their users expect English on `/v1`) when
    /// `error.message` is the French one of the browser routes.
    english: Option<Cow<'static, str>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            error: ServiceError::new(code, message),
            flavor: Flavor::Rest,
            openai: None,
            unreachable: false,
        }
    }

    fn extra(&mut self) -> &mut OpenAiExtra {
        self.openai.get_or_insert_with(Box::default)
    }

    /// An error the edge writes itself, in French for the browser routes and English on `/v1`.
    pub fn bilingual(
        code: ErrorCode,
        french: impl Into<String>,
        english: impl Into<Cow<'static, str>>,
    ) -> ApiError {
        let mut e = ApiError::new(code, french);
        e.extra().english = Some(english.into());
        e
    }

    /// Names the request field at fault (OpenAI's `param`).
    pub fn with_param(mut self, param: impl Into<String>) -> ApiError {
        self.extra().param = Some(param.into());
        self
    }

    /// The request field at fault, if one is.
    pub fn param(&self) -> Option<&str> {
        self.openai.as_ref().and_then(|x| x.param.as_deref())
    }

    /// The message as this error's flavor sends it.
    pub fn message(&self) -> &str {
        match (
            self.flavor,
            self.openai.as_ref().and_then(|x| x.english.as_ref()),
        ) {
            (Flavor::OpenAi, Some(en)) => en,
            _ => &self.error.message,
        }
    }

    pub fn openai(mut self) -> ApiError {
        self.flavor = Flavor::OpenAi;
        self
    }

    pub fn with_flavor(mut self, flavor: Flavor) -> ApiError {
        self.flavor = flavor;
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> ApiError {
        self.error.retry_after_secs = Some(secs);
        self
    }

    /// A gRPC status received from a backend. Statuses produced by the transport itself (the
    /// backend is down, the connection broke) carry no platform code: they become `unavailable`
    /// with a neutral message, never the transport's wording (which names hosts and ports).
    pub fn from_status(status: &tonic::Status) -> ApiError {
        let mut error = ServiceError::from_status(status);
        let mut english: Option<Cow<'static, str>> = None;
        let mut unreachable = false;
        let has_code = status
            .metadata()
            .get(iafactory::error::ERROR_CODE_METADATA)
            .is_some();
        if !has_code {
            // A status the client side made itself (tonic sets its `source`): the connection was
            // refused, reset or told to go away (GOAWAY, including ENHANCE_YOUR_CALM, which tonic
            // reports as RESOURCE_EXHAUSTED), or tonic's own per-call deadline passed (CANCELLED
            // "Timeout expired"). None of it is the caller's doing: 504 for the deadline, 503 +
            // Retry-After for the rest — never 429 (slow down) or 500.
            let transport = std::error::Error::source(status).is_some();
            // CANCELLED without a platform code comes from the transport, never from our client
            // (a client that went away gets no answer at all).
            if transport || error.code == ErrorCode::Cancelled {
                error.code =
                    if status.message() == "Timeout expired" || error.code == ErrorCode::Timeout {
                        ErrorCode::Timeout
                    } else {
                        ErrorCode::Unavailable
                    };
            }
            match error.code {
                ErrorCode::Unavailable => {
                    unreachable = true;
                    tracing::warn!(status = %status.message(), "backend unavailable");
                    error.message =
                        "Service momentanément indisponible, veuillez réessayer.".into();
                    english = Some("The service is temporarily unavailable, please retry.".into());
                }
                ErrorCode::Timeout => {
                    error.message = "Le service n'a pas répondu à temps.".into();
                    english = Some("The service did not answer in time.".into());
                }
                ErrorCode::Internal => {
                    tracing::warn!(status = ?status, "backend failed");
                }
                _ => {}
            }
        }
        if error.code == ErrorCode::Internal {
            english = Some("Internal error, please retry.".into());
        }
        if matches!(error.code, ErrorCode::Unavailable) && error.retry_after_secs.is_none() {
            error.retry_after_secs = Some(1);
        }
        let md = status.metadata();
        let text = |key: &str| {
            md.get(key)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let extra = OpenAiExtra {
            param: text(iafactory::error::PARAM_METADATA),
            upstream_code: text(iafactory::error::UPSTREAM_CODE_METADATA),
            english,
        };
        let has_extra =
            extra.param.is_some() || extra.upstream_code.is_some() || extra.english.is_some();
        ApiError {
            error,
            flavor: Flavor::Rest,
            openai: has_extra.then(|| Box::new(extra)),
            unreachable,
        }
    }

    /// The JSON body as text (for an `error` event inside a stream).
    pub fn body_string(&self) -> String {
        String::from_utf8_lossy(&self.body()).into_owned()
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `{"code","message"}` inside the body.
    pub fn detail(&self) -> ErrorDetail<'_> {
        ErrorDetail {
            code: self.error.code.as_str(),
            message: self.message(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut detail = self.detail();
        let body = match self.flavor {
            Flavor::Rest => serde_json::to_vec(&Error { error: detail }),
            Flavor::OpenAi => {
                // OpenAI's `code` is the provider's own when it refused the call: clients branch
                // on `context_length_exceeded`, not on the platform's `invalid_argument`.
                if let Some(code) = self
                    .openai
                    .as_ref()
                    .and_then(|x| x.upstream_code.as_deref())
                {
                    detail.code = code;
                }
                serde_json::to_vec(&OpenAiError {
                    error: OpenAiErrorDetail {
                        detail,
                        kind: openai_type(self.error.code),
                        param: self.param(),
                    },
                })
            }
        };
        body.unwrap_or_else(|_| {
            br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec()
        })
    }
}

/// The error body of `/api` and the operational routes (also its OpenAPI schema).
#[derive(Serialize, ToSchema)]
pub struct Error<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable machine code (`promo_exhausted`, `invalid_email`, ...). On `/v1`, the upstream
    /// provider's own code when it refused the call (`context_length_exceeded`, ...).
    code: &'a str,
    /// Human message (French on /api routes, English on /v1).
    message: &'a str,
}

/// The error body of `/v1`: OpenAI's shape, so the official SDKs raise the right exception.
#[derive(Serialize, ToSchema)]
pub struct OpenAiError<'a> {
    error: OpenAiErrorDetail<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct OpenAiErrorDetail<'a> {
    #[serde(flatten)]
    detail: ErrorDetail<'a>,
    /// OpenAI's error class (`invalid_request_error`, `authentication_error`, ...).
    #[serde(rename = "type")]
    kind: &'static str,
    /// The request field at fault as the client wrote it (`messages[0].content[1].image_url.url`,
    /// `tools[0].function.name`, `temperature`); null when no single field is.
    param: Option<&'a str>,
}

/// OpenAI's error `type` for a code (the SDKs map the HTTP status to an exception class anyway).
fn openai_type(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Unauthenticated => "authentication_error",
        ErrorCode::PermissionDenied | ErrorCode::ModelNotAllowed => "permission_error",
        ErrorCode::RateLimited => "rate_limit_error",
        ErrorCode::QuotaExceeded | ErrorCode::BudgetExceeded => "insufficient_quota",
        ErrorCode::ModelNotFound | ErrorCode::NotFound | ErrorCode::RouteNotFound => {
            "not_found_error"
        }
        ErrorCode::Internal
        | ErrorCode::Unavailable
        | ErrorCode::UpstreamError
        | ErrorCode::UpstreamTimeout
        | ErrorCode::Timeout => "api_error",
        _ => "invalid_request_error",
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        ApiError::from_status(&status)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let retry = self.error.retry_after_secs.or(match self.error.code {
            ErrorCode::RateLimited | ErrorCode::Unavailable => Some(1),
            _ => None,
        });
        if let Some(secs) = retry {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if status.is_server_error() {
            tracing::warn!(code = %self.error.code, message = %self.error.message, "answered a server error");
        }
        if self.unreachable {
            response.extensions_mut().insert(BackendUnreachable);
        }
        response
    }
}

/// The error code for an HTTP status produced outside our handlers (axum's own rejections).
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::PermissionDenied,
        404 => ErrorCode::RouteNotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 | 504 => ErrorCode::Timeout,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        400..=499 => ErrorCode::InvalidArgument,
        _ => ErrorCode::Internal,
    }
}

/// Header name constants used across modules.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(err: impl std::error::Error + Send + Sync + 'static) -> tonic::Status {
        tonic::Status::from_error(Box::new(err))
    }

    #[test]
    fn transport_failures_are_unavailable_with_a_retry_and_a_clean_message() {
        let goaway = transport(h2::Error::from(h2::Reason::ENHANCE_YOUR_CALM));
        assert_eq!(goaway.code(), tonic::Code::ResourceExhausted);
        let reset = transport(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer 10.0.0.7:50051",
        ));
        for status in [goaway, reset] {
            let e = ApiError::from_status(&status);
            assert_eq!(e.error.code, ErrorCode::Unavailable, "{status:?}");
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.error.retry_after_secs, Some(1));
            assert!(!e.error.message.contains("h2"), "{}", e.error.message);
            assert!(!e.error.message.contains("10.0.0.7"), "{}", e.error.message);
        }
    }

    #[test]
    fn a_spent_cost_budget_is_openai_shaped_429() {
        let status: tonic::Status = ServiceError::new(
            ErrorCode::BudgetExceeded,
            "your package's monthly usage budget is spent; it resets in 60 s",
        )
        .with_retry_after(60)
        .into_status();
        let e = ApiError::from_status(&status).openai();
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.error.retry_after_secs, Some(60));
        let body: serde_json::Value = serde_json::from_slice(&e.body()).unwrap_or_default();
        assert_eq!(body["error"]["code"], "budget_exceeded");
        assert_eq!(body["error"]["type"], "insufficient_quota");
        assert!(body["error"]["param"].is_null());
    }

    #[test]
    fn the_channel_deadline_is_a_timeout() {
        let status = tonic::Status::cancelled("Timeout expired");
        let e = ApiError::from_status(&status);
        assert_eq!(e.status(), StatusCode::GATEWAY_TIMEOUT);
    }

    #[test]
    fn a_backend_answer_keeps_its_code() {
        let status: tonic::Status =
            ServiceError::new(ErrorCode::RateLimited, "slow down").into_status();
        let e = ApiError::from_status(&status);
        assert_eq!(e.error.code, ErrorCode::RateLimited);
        let plain = tonic::Status::resource_exhausted("quota");
        assert_eq!(
            ApiError::from_status(&plain).error.code,
            ErrorCode::RateLimited
        );
    }
}
