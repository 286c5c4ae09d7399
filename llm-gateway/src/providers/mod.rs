//! Providers behind one trait, one HTTP client per wire format.
//!
//! Each client translates the gateway's [`ChatInput`] into its provider's request, and the
//! provider's answer (whole or streamed as server-sent events) back into [`Completion`] /
//! [`Chunk`]s. Failures are classified once here ([`ProviderError::class`]) so the router decides
//! retries, fallbacks and circuit breaking without knowing any wire format.

pub mod anthropic;
pub mod cohere;
pub mod gemini;
pub mod mock;
pub mod native;
pub mod openai;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use crate::catalog::{ProviderKind, ProviderSettings};
use crate::sse::{SseEvent, SseParser};

pub use crate::chat::{
    ChatInput, Choice, Chunk, Completion, Content, Message, Part, Role, ToolCall, ToolCallDelta,
    Turn, Usage, UsageDetails, estimate_tokens,
};

pub use crate::embed::{EmbedInput, Embeddings, InputType, Inputs};

/// The one HTTP client every provider shares (its pool is per host): keep-alive connections
/// reused across calls, no Nagle delay, `connect_timeout` to open a connection.
pub fn http_client(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .connect_timeout(connect_timeout)
        .user_agent(concat!("iafactory-llm-gateway/", env!("CARGO_PKG_VERSION")))
        .build()
}

pub type ChunkStream = BoxStream<'static, Result<Chunk, ProviderError>>;

/// What went wrong with one upstream attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with a non-success HTTP status.
    #[error("http {status}: {message}")]
    Http {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    /// No connection, refused, reset before the answer.
    #[error("connection failed: {0}")]
    Connect(String),
    /// The attempt's time budget ran out.
    #[error("timeout")]
    Timeout,
    /// The answer is not the provider's documented format.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The stream broke or ended before its terminal marker.
    #[error("stream broken: {0}")]
    StreamBroken(String),
    /// The provider's API reported an error inside a 200 stream (Anthropic `error` event).
    #[error("provider error: {0}")]
    Api(String),
    /// The provider's wire format cannot carry a field of the request (found while translating
    /// it, before any network call): the router tries the next route, and answers
    /// `unsupported_parameter` naming the field when no route can carry it.
    #[error("{}", .0.message)]
    Unsupported(native::Unsupported),
}

/// What the router does after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Transient (429, 5xx, connection): retry this provider with backoff, then fall back.
    Retry,
    /// This provider cannot serve the call (wrong key, unknown model, garbage, timeout): go to
    /// the next provider now.
    Fallback,
    /// The request itself is wrong (upstream 400/413/422): no other provider will do better;
    /// answer the client.
    Client,
}

impl ProviderError {
    pub fn class(&self) -> FailureClass {
        match self {
            ProviderError::Http {
                status, message, ..
            } => match status {
                408 | 409 | 425 | 429 | 500..=599 => FailureClass::Retry,
                400 | 413 | 422 if blames_the_provider_setup(message) => FailureClass::Fallback,
                400 | 413 | 422 => FailureClass::Client,
                _ => FailureClass::Fallback,
            },
            ProviderError::Connect(_) => FailureClass::Retry,
            ProviderError::Api(_) => FailureClass::Retry,
            ProviderError::Unsupported(_)
            | ProviderError::Timeout
            | ProviderError::Malformed(_)
            | ProviderError::StreamBroken(_) => FailureClass::Fallback,
        }
    }

    /// The provider's requested delay (HTTP `Retry-After`), if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The kind of failure, without its details (metrics label it without allocating).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProviderError::Http { status, .. } => ErrorKind::Http(*status),
            ProviderError::Connect(_) => ErrorKind::Connect,
            ProviderError::Timeout => ErrorKind::Timeout,
            ProviderError::Malformed(_) => ErrorKind::Malformed,
            ProviderError::StreamBroken(_) => ErrorKind::StreamBroken,
            ProviderError::Api(_) => ErrorKind::Api,
            ProviderError::Unsupported(_) => ErrorKind::Unsupported,
        }
    }

    /// A short label for status pages and metrics (`http_503`, `timeout`, ...).
    pub fn kind_label(&self) -> String {
        self.kind().to_string()
    }
}

/// A [`ProviderError`]'s kind; displayed as its label (`http_503`, `timeout`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Http(u16),
    Connect,
    Timeout,
    Malformed,
    StreamBroken,
    Api,
    Unsupported,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorKind::Http(status) => write!(f, "http_{status}"),
            ErrorKind::Connect => f.write_str("connect"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::Malformed => f.write_str("malformed"),
            ErrorKind::StreamBroken => f.write_str("stream_broken"),
            ErrorKind::Api => f.write_str("api_error"),
            ErrorKind::Unsupported => f.write_str("unsupported"),
        }
    }
}

/// Some providers answer 400 for what is their configuration's fault, not the caller's: Gemini
/// for a wrong key (`API_KEY_INVALID`), Mistral and others for an unknown model name. Those must
/// fall back to the next provider (and count against the breaker) instead of being blamed on
/// the customer.
fn blames_the_provider_setup(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("api_key_invalid")
        || m.contains("api key not valid")
        || m.contains("invalid api key")
        || m.contains("invalid_api_key")
        || (m.contains("model")
            && (m.contains("not found")
                || m.contains("does not exist")
                || m.contains("invalid model")
                || m.contains("not supported")
                || m.contains("decommissioned")))
}

/// One provider's client.
pub trait Provider: Send + Sync + 'static {
    /// A whole answer.
    fn chat<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>>;

    /// A streamed answer; the future resolves once the provider accepted the request (HTTP
    /// status received), the stream yields the pieces.
    fn stream<'a>(
        &'a self,
        model: &'a str,
        input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>>;

    /// One vector per input, in input order, and the prompt tokens counted (when the provider
    /// reports them). A field the wire format cannot carry is refused with
    /// [`ProviderError::Unsupported`] naming it, before any network call.
    fn embed<'a>(
        &'a self,
        model: &'a str,
        input: &'a EmbedInput,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>>;
}

/// Builds the client for a configured provider.
pub fn build(settings: &ProviderSettings, http: reqwest::Client) -> Arc<dyn Provider> {
    let base = HttpBase {
        http,
        base_url: settings.base_url.clone(),
        api_key: settings
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .unwrap_or_default(),
    };
    match settings.kind {
        ProviderKind::Openai => {
            let endpoint = base.url("/chat/completions");
            let embeddings = base.url("/embeddings");
            match (
                reqwest::Url::parse(&endpoint),
                reqwest::Url::parse(&embeddings),
            ) {
                (Ok(endpoint), Ok(embeddings)) => Arc::new(openai::OpenAi {
                    base,
                    endpoint,
                    embeddings,
                    stream_usage_option: settings.stream_usage_option,
                }),
                // The catalogue validated the base URL; should it still not parse, every call
                // fails as a connection error instead of the gateway refusing to start.
                (Err(e), _) | (_, Err(e)) => {
                    Arc::new(Unusable(format!("invalid endpoint {endpoint}: {e}")))
                }
            }
        }
        ProviderKind::Anthropic => Arc::new(anthropic::Anthropic { base }),
        ProviderKind::Gemini => Arc::new(gemini::Gemini { base }),
        ProviderKind::Cohere => Arc::new(cohere::Cohere { base }),
    }
}

/// A provider whose endpoint cannot be built: every call fails (and trips its breaker).
struct Unusable(String);

impl Provider for Unusable {
    fn chat<'a>(
        &'a self,
        _model: &'a str,
        _input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        let e = ProviderError::Connect(self.0.clone());
        Box::pin(async move { Err(e) })
    }

    fn stream<'a>(
        &'a self,
        _model: &'a str,
        _input: &'a ChatInput,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>> {
        let e = ProviderError::Connect(self.0.clone());
        Box::pin(async move { Err(e) })
    }

    fn embed<'a>(
        &'a self,
        _model: &'a str,
        _input: &'a EmbedInput,
    ) -> BoxFuture<'a, Result<Embeddings, ProviderError>> {
        let e = ProviderError::Connect(self.0.clone());
        Box::pin(async move { Err(e) })
    }
}

/// Joins the answers of an embeddings request sent in batches (the provider's per-call limit:
/// Cohere takes 96 texts, Gemini 100, the contract 2048), running four batches at a time, in
/// input order. Token counts add up; one batch without a count makes the whole count unknown
/// (then estimated, see [`EmbedInput::estimated_tokens`]). A failed batch fails the attempt as
/// a whole: the router retries or falls back with every input.
pub async fn join_batches<Fut>(
    batches: impl Iterator<Item = Fut>,
) -> Result<Embeddings, ProviderError>
where
    Fut: std::future::Future<Output = Result<Embeddings, ProviderError>>,
{
    let answers: Vec<Embeddings> = futures::stream::iter(batches)
        .buffered(4)
        .try_collect()
        .await?;
    let mut out = Embeddings {
        vectors: Vec::new(),
        prompt_tokens: Some(0),
    };
    for a in answers {
        out.vectors.extend(a.vectors);
        out.prompt_tokens = out
            .prompt_tokens
            .zip(a.prompt_tokens)
            .map(|(x, y)| x.saturating_add(y));
    }
    Ok(out)
}

/// Reads a JSON array of numbers as a vector (`None` when it is not one).
pub fn json_vector(v: &serde_json::Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

/// What every HTTP provider client holds. The `reqwest::Client` is shared (one connection pool
/// per process, HTTP/2 negotiated by ALPN where the provider offers it).
#[derive(Clone)]
pub struct HttpBase {
    pub http: reqwest::Client,
    pub base_url: String,
    pub api_key: String,
}

/// The start of an error answer kept.
const ERROR_BODY_BYTES: usize = 4096;

/// What an upstream said when it refused a request: its message, its own error code and the
/// field it blamed, read from the JSON error shapes of the providers (OpenAI family
/// `{"error":{"message","type","param","code"}}`, Anthropic `{"error":{"type","message"}}`,
/// Gemini `{"error":{"code":400,"message","status"}}`, Cohere `{"message"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRefusal {
    pub message: String,
    pub code: Option<String>,
    pub param: Option<String>,
}

impl UpstreamRefusal {
    pub fn parse(body: &str) -> UpstreamRefusal {
        let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let e = v.get("error").filter(|e| e.is_object()).unwrap_or(&v);
        let message = text(&e["message"])
            .or_else(|| text(&v["message"]))
            .unwrap_or_else(|| body.chars().take(300).collect());
        UpstreamRefusal {
            message,
            code: text(&e["code"])
                .or_else(|| text(&e["status"]))
                .or_else(|| text(&e["type"])),
            param: text(&e["param"]),
        }
    }
}

/// The largest answer body read into memory.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

impl HttpBase {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends the request; a non-2xx status becomes [`ProviderError::Http`] with the provider's
    /// message (first 512 bytes) and `Retry-After`.
    pub async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ProviderError> {
        let resp = req.send().await.map_err(map_reqwest)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // Only the start of an error body is kept: a broken or hostile upstream may send one
        // without end. 4 KiB holds a provider's JSON error whole (its code and param are read
        // from it, see [`UpstreamRefusal::parse`]).
        let mut resp = resp;
        let mut body = Vec::new();
        while body.len() < ERROR_BODY_BYTES
            && let Ok(Some(chunk)) = resp.chunk().await
        {
            body.extend_from_slice(&chunk);
        }
        let mut message =
            String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]).into_owned();
        if message.is_empty() {
            message = status.canonical_reason().unwrap_or("error").to_owned();
        }
        Err(ProviderError::Http {
            status: status.as_u16(),
            retry_after,
            message,
        })
    }

    /// Sends and reads the whole answer body (bounded).
    pub async fn send_bytes(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, ProviderError> {
        let mut resp = self.send(req).await?;
        let mut body = Vec::with_capacity(
            usize::try_from(resp.content_length().unwrap_or(0))
                .unwrap_or(0)
                .min(MAX_BODY_BYTES),
        );
        while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ProviderError::Malformed("answer too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Sends and parses a JSON answer.
    pub async fn send_json(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, ProviderError> {
        let body = self.send_bytes(req).await?;
        serde_json::from_slice(&body)
            .map_err(|e| ProviderError::Malformed(format!("invalid JSON: {e}")))
    }
}

/// Turns a successful streaming response into its server-sent events.
pub fn sse_events(resp: reqwest::Response) -> BoxStream<'static, Result<SseEvent, ProviderError>> {
    let mut body = resp.bytes_stream();
    let s = async_stream::try_stream! {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ProviderError::StreamBroken(error_chain(&e)))?;
            parser
                .push(&chunk, &mut events)
                .map_err(|e| ProviderError::Malformed(e.to_string()))?;
            for ev in events.drain(..) {
                yield ev;
            }
        }
        parser.finish(&mut events);
        for ev in events.drain(..) {
            yield ev;
        }
    };
    s.boxed()
}

/// Parses one event's JSON data.
pub fn event_json(ev: &SseEvent) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(&ev.data)
        .map_err(|e| ProviderError::Malformed(format!("invalid JSON in stream event: {e}")))
}

fn map_reqwest(e: reqwest::Error) -> ProviderError {
    if e.is_timeout() {
        ProviderError::Timeout
    } else if e.is_connect() || e.is_request() {
        ProviderError::Connect(error_chain(&e))
    } else if e.is_body() || e.is_decode() {
        ProviderError::StreamBroken(error_chain(&e))
    } else {
        ProviderError::Connect(error_chain(&e))
    }
}

/// The error with its causes, without the URL (which could carry a key in a query string).
fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let s = self.to_string();
        match self.url() {
            Some(u) => s.replace(u.as_str(), "<url>"),
            None => s,
        }
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.signed_duration_since(chrono::Utc::now());
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Reads a JSON number as u32 (absent or invalid → 0).
pub fn json_u32(v: &serde_json::Value) -> u32 {
    v.as_u64()
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn classification() {
        let http = |status| ProviderError::Http {
            status,
            retry_after: None,
            message: String::new(),
        };
        assert_eq!(http(429).class(), FailureClass::Retry);
        assert_eq!(http(503).class(), FailureClass::Retry);
        assert_eq!(http(401).class(), FailureClass::Fallback);
        assert_eq!(http(404).class(), FailureClass::Fallback);
        assert_eq!(http(400).class(), FailureClass::Client);
        let http400 = |message: &str| ProviderError::Http {
            status: 400,
            retry_after: None,
            message: message.into(),
        };
        assert_eq!(
            http400(r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#).class(),
            FailureClass::Fallback
        );
        assert_eq!(
            http400(r#"{"object":"error","message":"Invalid model: mistral-tiny-xyz","type":"invalid_model"}"#).class(),
            FailureClass::Fallback
        );
        assert_eq!(
            http400(r#"{"error":{"message":"The model `llama-2` has been decommissioned"}}"#)
                .class(),
            FailureClass::Fallback
        );
        assert_eq!(
            http400(
                r#"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#
            )
            .class(),
            FailureClass::Client
        );
        assert_eq!(ProviderError::Timeout.class(), FailureClass::Fallback);
        assert_eq!(
            ProviderError::Connect(String::new()).class(),
            FailureClass::Retry
        );
    }
}
