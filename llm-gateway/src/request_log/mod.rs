//! The request log (issue 16, item 4): one row per call that passed authentication — chat,
//! streamed chat, embeddings; answered, refused (quota, rate, unsupported field, ...) or failed
//! upstream — with who, which model and provider, tokens, cost, latency, attempts and outcome.
//! **Never any prompt or completion text.**
//!
//! # Off the request path
//! Unlike usage (which must be durable before an answer leaves, see [`crate::usage`]), the log
//! is an operator's view: a call hands its row to a bounded channel with `try_send` and goes on;
//! one writer task ([`writer`]) inserts the rows in batches, many rows per transaction. When the
//! channel is full (the database cannot keep up, or is down), the row is **dropped and counted**
//! (`iaf_llm_request_log_dropped_total`) instead of making the call wait: the log can miss rows
//! under overload, a call never slows down for it. Rows of calls answered just before a crash
//! (at most one batch window, [`writer::LINGER`]) are lost the same way.
//!
//! # One row per call
//! A call opens a [`Draft`] when it arrives; the handler fills it as it learns (the key after
//! authentication, the route and usage once served) and finishes it with the call's outcome. A
//! draft dropped unfinished (the client went away, a stream abandoned mid-way) records itself
//! as `cancelled` from `Drop`, so every authenticated call gives exactly one row. Calls refused
//! before authentication (no key, unknown key) belong to nobody and are not logged.
//!
//! Attempts, fallbacks and the last provider tried reach the draft through [`CallTrace`], which
//! the router fills via a task-local ([`crate::routing::trace`]) so that failed calls — whose router error
//! carries no route — still say which provider failed and how many attempts were made.

pub mod query;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use iafactory::db::now_millis;
use iafactory::metrics::{Counter, Registry};
use tokio::sync::{mpsc, oneshot};

use crate::auth::KeyInfo;
use crate::error::GatewayError;
use crate::providers::Usage;
use crate::routing::Route;
use crate::store::Store;
use crate::usage::to_nano_usd;

pub use crate::routing::trace::{self, CallTrace};

/// Characters of an API key shown to identify it: promo-service's display prefix
/// (`promo-service/src/secrets.rs`, `DISPLAY_PREFIX_LEN`), so the console's key prefixes and the
/// log's match.
pub const KEY_PREFIX_LEN: usize = 10;

/// At most 128 bytes of a client-supplied model name: a request refused for its oversized
/// name is still logged, with the name cut.
fn clip(s: &str) -> &str {
    let mut end = s.len().min(128);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What kind of call a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Chat,
    ChatStream,
    Embed,
}

impl CallKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Chat => "chat",
            CallKind::ChatStream => "chat_stream",
            CallKind::Embed => "embed",
        }
    }
}

/// One row of `llm_request_log`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRow {
    pub id: String,
    pub at_ms: i64,
    pub user_id: String,
    pub key_id: String,
    pub key_prefix: String,
    pub kind: String,
    pub model: String,
    pub provider: String,
    pub upstream_model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nano_usd: i64,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub attempts: i64,
    pub fallbacks: i64,
    /// `ok` or `error`.
    pub status: String,
    /// Empty when `ok`.
    pub error_code: String,
}

/// What goes through the channel to the writer.
enum Msg {
    Row(Box<LogRow>),
    /// Answered once every row sent before it is written (or failed).
    Flush(oneshot::Sender<()>),
}

/// The log's Prometheus series.
#[derive(Clone)]
struct LogMetrics {
    dropped: Counter,
    written: Counter,
    failed: Counter,
}

impl LogMetrics {
    fn register(registry: &mut Registry) -> LogMetrics {
        LogMetrics {
            dropped: registry.register(
                "llm_request_log_dropped",
                "Request log rows dropped because the writer's buffer was full (the database could not keep up): calls never wait for the log.",
                Counter::default(),
            ),
            written: registry.register(
                "llm_request_log_written",
                "Request log rows written to the database.",
                Counter::default(),
            ),
            failed: registry.register(
                "llm_request_log_write_failed",
                "Request log rows lost because their batch could not be written after retries.",
                Counter::default(),
            ),
        }
    }
}

/// The sending side of the log, shared by every call.
#[derive(Clone)]
pub struct RequestLog {
    tx: mpsc::Sender<Msg>,
    metrics: LogMetrics,
}

/// The writer task of a [`RequestLog`], stopped by [`RequestLog::close`].
pub struct LogWriter(tokio::task::JoinHandle<()>);

impl RequestLog {
    /// Registers the metrics and starts the writer on the current runtime; `buffer` rows at
    /// most wait for it (more are dropped and counted).
    pub fn start(store: Store, buffer: usize, registry: &mut Registry) -> (RequestLog, LogWriter) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        let metrics = LogMetrics::register(registry);
        let task = tokio::spawn(writer::run(store, rx, metrics.clone()));
        (RequestLog { tx, metrics }, LogWriter(task))
    }

    /// Opens the draft of a call that just arrived (`metadata` gives the key's display prefix).
    pub fn draft(
        &self,
        kind: CallKind,
        metadata: &tonic::metadata::MetadataMap,
        model: &str,
    ) -> Draft {
        let key_prefix = iafactory::grpc::bearer_token(metadata)
            .filter(|k| k.starts_with("iaf_"))
            .map(|k| k.chars().take(KEY_PREFIX_LEN).collect())
            .unwrap_or_default();
        Draft {
            log: Some(self.clone()),
            started: Instant::now(),
            at_ms: now_millis(),
            kind,
            model: clip(model).to_owned(),
            key_prefix,
            key: None,
            served: None,
            ttft: None,
            trace: Arc::new(CallTrace::default()),
        }
    }

    fn send(&self, row: LogRow) {
        match self.tx.try_send(Msg::Row(Box::new(row))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_) | mpsc::error::TrySendError::Closed(_)) => {
                self.metrics.dropped.inc();
            }
        }
    }

    /// Waits until every row sent so far is written (tests, diagnostics).
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Writes what is buffered and stops the writer (graceful shutdown, after the drain).
    pub async fn close(&self, writer: LogWriter) {
        self.flush().await;
        writer.0.abort();
        let _ = writer.0.await;
    }
}

/// What the route and usage of a served call add to its row.
#[derive(Debug, Clone)]
struct Served {
    provider: String,
    upstream_model: String,
    prompt_tokens: u32,
    completion_tokens: u32,
    cost_usd: f64,
}

/// The row of one call being built (see the module docs). Finished once with
/// [`Draft::finish`]; dropped unfinished, it records the call as `cancelled`.
pub struct Draft {
    /// `None` once sent.
    log: Option<RequestLog>,
    started: Instant,
    at_ms: i64,
    kind: CallKind,
    model: String,
    key_prefix: String,
    key: Option<Arc<KeyInfo>>,
    served: Option<Served>,
    ttft: Option<Duration>,
    trace: Arc<CallTrace>,
}

impl Draft {
    /// The trace the router fills while this call runs (see [`trace::scope`]).
    pub fn trace(&self) -> Arc<CallTrace> {
        self.trace.clone()
    }

    /// The call is authenticated: it will be logged, under this key's customer.
    pub fn set_key(&mut self, key: &Arc<KeyInfo>) {
        self.key = Some(key.clone());
    }

    /// What the call was served with (or, for a stream, has received so far).
    pub fn set_served(&mut self, route: &Route, usage: Usage, cost_usd: f64) {
        self.served = Some(Served {
            provider: route.provider.name.clone(),
            upstream_model: route.upstream_model.clone(),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_usd,
        });
    }

    /// A stream's time to its first content.
    pub fn set_ttft(&mut self, ttft: Duration) {
        self.ttft = Some(ttft);
    }

    /// Moves the row being built out, leaving this draft inert (it sends nothing): how a stream
    /// takes its row along when its handler returns.
    pub fn take(&mut self) -> Draft {
        Draft {
            log: self.log.take(),
            started: self.started,
            at_ms: self.at_ms,
            kind: self.kind,
            model: std::mem::take(&mut self.model),
            key_prefix: std::mem::take(&mut self.key_prefix),
            key: self.key.take(),
            served: self.served.take(),
            ttft: self.ttft,
            trace: self.trace.clone(),
        }
    }

    /// Sends the row with the call's outcome (nothing for an unauthenticated call).
    pub fn finish(mut self, outcome: Result<(), &GatewayError>) {
        let code = outcome.err().map(|e| e.code().as_str());
        self.send(code);
    }

    fn send(&mut self, error_code: Option<&str>) {
        let Some(log) = self.log.take() else { return };
        let Some(key) = self.key.take() else { return };
        let (attempts, routes, last) = self.trace.snapshot();
        let (provider, upstream_model, prompt, completion, cost) = match self.served.take() {
            Some(s) => (
                s.provider,
                s.upstream_model,
                s.prompt_tokens,
                s.completion_tokens,
                to_nano_usd(s.cost_usd),
            ),
            None => match last {
                Some(r) => (r.provider.name.clone(), r.upstream_model.clone(), 0, 0, 0),
                None => (String::new(), String::new(), 0, 0, 0),
            },
        };
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        log.send(LogRow {
            id: format!("req_{}", uuid::Uuid::now_v7().simple()),
            at_ms: self.at_ms,
            user_id: key.quota_subject().to_owned(),
            key_id: key.key_id.clone(),
            key_prefix: std::mem::take(&mut self.key_prefix),
            kind: self.kind.as_str().to_owned(),
            model: std::mem::take(&mut self.model),
            provider,
            upstream_model,
            prompt_tokens: i64::from(prompt),
            completion_tokens: i64::from(completion),
            cost_nano_usd: cost,
            latency_ms: millis(self.started.elapsed()),
            ttft_ms: self.ttft.map(millis),
            attempts: i64::from(attempts),
            fallbacks: i64::from(routes.saturating_sub(1)),
            status: if error_code.is_some() { "error" } else { "ok" }.to_owned(),
            error_code: error_code.unwrap_or_default().to_owned(),
        });
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        // Unfinished: the caller went away (a unary call cancelled, a stream abandoned).
        self.send(Some("cancelled"));
    }
}
