//! The gRPC handlers: authenticate, validate, check the package, admit against quotas, route,
//! account. Handlers own translation between protobuf and the domain; the rules live in the
//! modules they call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;
use pb::llm_gateway_server::LlmGateway;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, KeyInfo};
use crate::catalog::Policy;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use crate::providers::{self, ChatInput, Chunk, ChunkStream, Message, Role, Usage};
use crate::quota::{QuotaManager, next_period_start_ms, period_of};
use crate::router::{CircuitState, ModelEntry, Route, Router};
use crate::store::{UsageKey, UsageSums};
use crate::usage::{UsageRecorder, to_nano_usd};

/// Request limits (beyond the 1 MiB gRPC message limit).
pub const MAX_MESSAGES: usize = 256;
pub const MAX_STOP: usize = 4;
pub const MAX_STOP_BYTES: usize = 256;
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;
pub const MAX_MAX_TOKENS: u32 = 1_000_000;

/// Everything the handlers share.
pub struct Shared {
    pub router: Router,
    pub auth: Authenticator,
    pub quotas: QuotaManager,
    pub usage: UsageRecorder,
    pub metrics: Arc<Metrics>,
    pub recent: RecentLatencies,
    /// Required by `ListProviders` (provider names, base URLs, error details are operator
    /// information); `None`: nobody may call it.
    pub internal: Option<iafactory::secret::InternalToken>,
}

/// Latencies of the last calls a real provider answered (whole answer for unary calls, first
/// token for streams), behind the landing page's "median latency" figure. The offline mock is
/// left out: its speed says nothing about the platform.
#[derive(Default)]
pub struct RecentLatencies {
    window: std::sync::Mutex<std::collections::VecDeque<u32>>,
}

impl RecentLatencies {
    const WINDOW: usize = 512;

    pub fn record(&self, provider: &str, latency: std::time::Duration) {
        if provider == "mock" {
            return;
        }
        let ms = u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() == Self::WINDOW {
            w.pop_front();
        }
        w.push_back(ms);
    }

    /// Median in milliseconds and the number of calls it is taken over.
    pub fn median(&self) -> Option<(f64, u32)> {
        let mut v: Vec<u32> = self
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            f64::from(v[n / 2])
        } else {
            (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
        };
        Some((median, u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

#[derive(Clone)]
pub struct GatewayApi {
    pub shared: Arc<Shared>,
}

fn role_of(v: i32, i: usize) -> Result<Role, GatewayError> {
    match pb::Role::try_from(v) {
        Ok(pb::Role::System) => Ok(Role::System),
        Ok(pb::Role::User) => Ok(Role::User),
        Ok(pb::Role::Assistant) => Ok(Role::Assistant),
        _ => Err(GatewayError::InvalidArgument(format!(
            "messages[{i}].role must be ROLE_SYSTEM, ROLE_USER or ROLE_ASSISTANT"
        ))),
    }
}

fn policy_of(v: i32) -> Result<Option<Policy>, GatewayError> {
    match pb::RoutingPolicy::try_from(v) {
        Ok(pb::RoutingPolicy::Unspecified) => Ok(None),
        Ok(pb::RoutingPolicy::Fallback) => Ok(Some(Policy::Fallback)),
        Ok(pb::RoutingPolicy::LowestLatency) => Ok(Some(Policy::LowestLatency)),
        Ok(pb::RoutingPolicy::LowestCost) => Ok(Some(Policy::LowestCost)),
        Err(_) => Err(GatewayError::InvalidArgument(format!(
            "unknown routing policy {v}"
        ))),
    }
}

fn policy_to_pb(p: Policy) -> pb::RoutingPolicy {
    match p {
        Policy::Fallback => pb::RoutingPolicy::Fallback,
        Policy::LowestLatency => pb::RoutingPolicy::LowestLatency,
        Policy::LowestCost => pb::RoutingPolicy::LowestCost,
    }
}

/// Checks a request and turns it into the domain's [`ChatInput`].
pub fn validate(req: &pb::ChatRequest) -> Result<(ChatInput, Option<Policy>), GatewayError> {
    let bad = |m: String| Err(GatewayError::InvalidArgument(m));
    if req.model.trim().is_empty() {
        return bad("model is required (see ListModels)".into());
    }
    if req.model.len() > 128 {
        return bad("model names are at most 128 bytes".into());
    }
    if req.messages.is_empty() {
        return bad("messages must contain at least one message".into());
    }
    if req.messages.len() > MAX_MESSAGES {
        return bad(format!("at most {MAX_MESSAGES} messages per request"));
    }
    let mut total = 0usize;
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        total += m.content.len();
        messages.push(Message {
            role: role_of(m.role, i)?,
            content: m.content.clone(),
        });
    }
    if total > MAX_CONTENT_BYTES {
        return bad(format!(
            "messages exceed {MAX_CONTENT_BYTES} bytes in total"
        ));
    }
    if !messages.iter().any(|m| m.role != Role::System) {
        return bad("messages need at least one user or assistant message".into());
    }
    if req
        .temperature
        .is_some_and(|t| !(t.is_finite() && (0.0..=2.0).contains(&t)))
    {
        return bad("temperature must be between 0 and 2".into());
    }
    if req
        .top_p
        .is_some_and(|p| !(p.is_finite() && (0.0..=1.0).contains(&p)))
    {
        return bad("top_p must be between 0 and 1".into());
    }
    if req.max_tokens.is_some_and(|m| m == 0 || m > MAX_MAX_TOKENS) {
        return bad(format!("max_tokens must be between 1 and {MAX_MAX_TOKENS}"));
    }
    if req.stop.len() > MAX_STOP {
        return bad(format!("at most {MAX_STOP} stop sequences"));
    }
    if req
        .stop
        .iter()
        .any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
    {
        return bad(format!(
            "stop sequences must be 1 to {MAX_STOP_BYTES} bytes"
        ));
    }
    Ok((
        ChatInput {
            messages,
            temperature: req.temperature,
            top_p: req.top_p,
            max_tokens: req.max_tokens,
            stop: req.stop.clone(),
        },
        policy_of(req.policy)?,
    ))
}

/// At most 128 bytes of a client-supplied name, for logs (validation refuses longer ones later).
fn short(s: &str) -> &str {
    let mut end = s.len().min(128);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Tokens held from the quota while a call runs: the prompt estimate plus the answer's bound
/// (`max_tokens`, or 256 when the caller sets none).
pub fn token_hold(input: &ChatInput) -> u64 {
    u64::from(input.estimated_prompt_tokens()) + u64::from(input.max_tokens.unwrap_or(256))
}

fn usage_pb(u: Usage, estimated: bool) -> pb::TokenUsage {
    pb::TokenUsage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
        estimated,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn new_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::new_v4().simple())
}

impl Shared {
    /// Authentication, validation, model and package checks, quota admission.
    async fn admit(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        req: &pb::ChatRequest,
    ) -> Result<(Arc<KeyInfo>, Arc<ModelEntry>, ChatInput, Option<Policy>), GatewayError> {
        let key = self.auth.authenticate(metadata).await?;
        tracing::Span::current().record("key_id", key.key_id.as_str());
        let (input, policy) = validate(req)?;
        let model = self
            .router
            .model(&req.model)
            .cloned()
            .ok_or_else(|| GatewayError::ModelNotFound(req.model.clone()))?;
        if !key.may_use(&model.name) {
            return Err(GatewayError::ModelNotAllowed {
                model: model.name.clone(),
                package: key.package.clone(),
            });
        }
        let hold = token_hold(&input);
        self.quotas.admit(&key.key_id, key.limits, hold).await?;
        Ok((key, model, input, policy))
    }

    /// The usage row a call of `key` on `model` through `route` is charged to in `period`.
    fn usage_key(key: &KeyInfo, model: &str, route: &Route, period: String) -> UsageKey {
        UsageKey {
            key_id: key.key_id.clone(),
            period,
            model: model.to_owned(),
            provider: route.provider.name.clone(),
        }
    }

    /// Charges a whole unary call durably (see [`crate::usage`]); returns its cost in USD.
    /// An error means the answer must not be sent.
    async fn charge_call(
        &self,
        key: &KeyInfo,
        model: &str,
        route: &Route,
        usage: Usage,
    ) -> Result<f64, GatewayError> {
        let (prompt, completion) = (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens),
        );
        let cost = route.cost_usd(prompt, completion);
        self.usage
            .charge(
                Self::usage_key(key, model, route, period_of(now_millis())),
                UsageSums {
                    user_id: key.user_id.clone(),
                    requests: 1,
                    prompt_tokens: i64::from(usage.prompt_tokens),
                    completion_tokens: i64::from(usage.completion_tokens),
                    cost_nano_usd: to_nano_usd(cost),
                },
            )
            .await?;
        self.metrics
            .usage(&route.provider.name, model, prompt, completion, cost);
        Ok(cost)
    }

    #[tracing::instrument(name = "chat", skip_all, fields(model = short(&request.get_ref().model), key_id = tracing::field::Empty))]
    async fn chat(
        self: Arc<Self>,
        request: Request<pb::ChatRequest>,
    ) -> Result<pb::ChatResponse, GatewayError> {
        let started = Instant::now();
        let (key, model, input, policy) = self.admit(request.metadata(), request.get_ref()).await?;
        // Gives the hold back if the call fails, or if the caller goes away while it runs.
        let mut hold = HoldGuard {
            shared: Some(self.clone()),
            key_id: key.key_id.clone(),
            held: token_hold(&input),
        };
        let served = self.router.chat(&model, policy, &input).await?;
        let c = served.value;
        let (usage, estimated) = match c.usage {
            Some(u) => (u, false),
            None => (
                Usage {
                    prompt_tokens: input.estimated_prompt_tokens(),
                    completion_tokens: providers::estimate_tokens(c.content.chars().count()),
                },
                true,
            ),
        };
        let actual = u64::from(usage.prompt_tokens) + u64::from(usage.completion_tokens);
        self.quotas
            .settle(&key.key_id, token_hold(&input), actual, now_millis())
            .await;
        hold.shared = None;
        // Durable before the answer leaves; if the store cannot take it, the call fails
        // `unavailable` rather than answering uncharged work.
        let cost = self
            .charge_call(&key, &model.name, &served.route, usage)
            .await?;
        self.recent
            .record(&served.route.provider.name, started.elapsed());
        Ok(pb::ChatResponse {
            id: new_id(),
            model: model.name.clone(),
            provider: served.route.provider.name.clone(),
            upstream_model: served.route.upstream_model.clone(),
            message: Some(pb::ChatMessage {
                role: pb::Role::Assistant as i32,
                content: c.content,
            }),
            finish_reason: c.finish_reason,
            usage: Some(usage_pb(usage, estimated)),
            cost_usd: cost,
            latency_ms: millis(started.elapsed()),
            attempts: served.attempts,
            created: now_millis() / 1000,
        })
    }

    #[tracing::instrument(name = "chat_stream", skip_all, fields(model = short(&request.get_ref().model), key_id = tracing::field::Empty))]
    async fn chat_stream(
        self: Arc<Self>,
        request: Request<pb::ChatRequest>,
    ) -> Result<BoxStream<'static, Result<pb::ChatStreamEvent, Status>>, GatewayError> {
        let started = Instant::now();
        let (key, model, input, policy) = self.admit(request.metadata(), request.get_ref()).await?;
        // Until the stream is committed (then the tracker settles), as for unary calls.
        let mut hold = HoldGuard {
            shared: Some(self.clone()),
            key_id: key.key_id.clone(),
            held: token_hold(&input),
        };
        let served = self.router.stream(&model, policy, &input).await?;
        hold.shared = None;
        let ttft = started.elapsed();
        let route = served.route.clone();
        self.recent.record(&route.provider.name, ttft);
        let committed = served.value;
        let mut tracker = StreamTracker {
            shared: self.clone(),
            key,
            model: model.name.clone(),
            route: route.clone(),
            period: period_of(now_millis()),
            prompt_estimate: input.estimated_prompt_tokens(),
            held: token_hold(&input),
            received_chars: 0,
            charged_chars: 0,
            delivered_chars: 0,
            usage: None,
            charged: Charged::default(),
            done: false,
        };
        let header = pb::ChatStreamEvent {
            id: new_id(),
            model: model.name.clone(),
            provider: route.provider.name.clone(),
            upstream_model: route.upstream_model.clone(),
            event: None,
        };
        let idle = self.router.settings.stream_idle_timeout;
        let attempts = served.attempts;
        let first = committed.first;
        let mut rest: ChunkStream = committed.rest;
        let s = async_stream::stream! {
            let mut finish_reason: Option<String> = None;
            let mut pending: std::collections::VecDeque<Chunk> = std::collections::VecDeque::new();
            for c in first {
                tracker.received(&c);
                pending.push_back(c);
            }
            // How the provider's stream ended, when that was read while a charge was being
            // written (`Ok` for its end): acted on once `pending` is delivered.
            let mut upstream_end: Option<Result<(), providers::ProviderError>> = None;
            loop {
                let next = match pending.pop_front() {
                    Some(c) => Ok(c),
                    None => match upstream_end.take() {
                        Some(Ok(())) => break,
                        Some(Err(e)) => Err(e),
                        None => match tokio::time::timeout(idle, rest.next()).await {
                            Ok(Some(Ok(c))) => {
                                tracker.received(&c);
                                Ok(c)
                            }
                            Ok(None) => break,
                            Ok(Some(Err(e))) => Err(e),
                            Err(_) => Err(providers::ProviderError::Timeout),
                        },
                    },
                };
                let chunk = match next {
                    Ok(c) => c,
                    Err(e) => {
                        let err = tracker.upstream_broke(&e, idle);
                        // What was delivered is charged; a failure to write it is logged by
                        // the writer, and the client gets the upstream error either way.
                        let _ = tracker.finish().await;
                        yield Err(Status::from(err));
                        return;
                    }
                };
                if chunk.finish_reason.is_some() {
                    finish_reason = chunk.finish_reason.clone();
                }
                if !chunk.delta.is_empty() {
                    let end = tracker.delivered_chars + chunk.delta.chars().count();
                    if end > tracker.charged_chars {
                        // Charge everything received before this chunk leaves: a crash after
                        // this point has charged at least what the client got, and at most
                        // what the provider produced. While the write is awaited, keep reading
                        // what the provider sends: the next write covers all of it, so a
                        // stream needs one commit per round, not one per chunk, and keeps up
                        // with its provider whatever the commit latency.
                        let mut charge = std::pin::pin!(tracker.charge_received());
                        let charged = loop {
                            tokio::select! {
                                biased;
                                r = &mut charge => break r,
                                next = rest.next(), if upstream_end.is_none() && pending.len() < MAX_READ_AHEAD => match next {
                                    Some(Ok(c)) => {
                                        tracker.received(&c);
                                        pending.push_back(c);
                                    }
                                    Some(Err(e)) => upstream_end = Some(Err(e)),
                                    None => upstream_end = Some(Ok(())),
                                },
                            }
                        };
                        if let Err(e) = charged {
                            yield Err(Status::from(e));
                            return;
                        }
                    }
                    tracker.delivered_chars = end;
                    let mut ev = header.clone();
                    ev.event = Some(pb::chat_stream_event::Event::Delta(pb::ContentDelta {
                        content: chunk.delta,
                    }));
                    yield Ok(ev);
                }
            }
            match tracker.finish().await {
                Ok((usage, estimated, cost)) => {
                    let mut ev = header.clone();
                    ev.event = Some(pb::chat_stream_event::Event::End(pb::StreamEnd {
                        finish_reason: finish_reason.unwrap_or_else(|| "stop".into()),
                        usage: Some(usage_pb(usage, estimated)),
                        cost_usd: cost,
                        latency_ms: millis(started.elapsed()),
                        time_to_first_token_ms: millis(ttft),
                        attempts,
                    }));
                    yield Ok(ev);
                }
                Err(e) => yield Err(Status::from(e)),
            }
        };
        Ok(s.boxed())
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<pb::UsageReport, GatewayError> {
        let key = self.auth.authenticate(request.metadata()).await?;
        let now = now_millis();
        let period = period_of(now);
        let rows = self.usage.report(&key.key_id, &period).await?;
        let mut report = pb::UsageReport {
            key_id: key.key_id.clone(),
            user_id: key.user_id.clone(),
            package: key.package.clone(),
            period: period.clone(),
            tokens_per_month: key.limits.tokens_per_month,
            requests_per_minute: key.limits.requests_per_minute,
            resets_at: chrono::DateTime::from_timestamp_millis(next_period_start_ms(now))
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            ..Default::default()
        };
        let mut per_model: std::collections::BTreeMap<String, pb::ModelUsage> =
            std::collections::BTreeMap::new();
        let mut cost_nano = 0i64;
        for (k, s) in rows {
            let (req, pt, ct) = (
                u64::try_from(s.requests).unwrap_or(0),
                u64::try_from(s.prompt_tokens).unwrap_or(0),
                u64::try_from(s.completion_tokens).unwrap_or(0),
            );
            report.requests += req;
            report.prompt_tokens += pt;
            report.completion_tokens += ct;
            cost_nano += s.cost_nano_usd;
            let m = per_model
                .entry(k.model.clone())
                .or_insert_with(|| pb::ModelUsage {
                    model: k.model.clone(),
                    ..Default::default()
                });
            m.requests += req;
            m.prompt_tokens += pt;
            m.completion_tokens += ct;
            m.cost_usd += s.cost_nano_usd as f64 / 1e9;
        }
        report.total_tokens = report.prompt_tokens + report.completion_tokens;
        report.cost_usd = cost_nano as f64 / 1e9;
        report.tokens_remaining = key
            .limits
            .tokens_per_month
            .saturating_sub(report.total_tokens);
        report.models = per_model.into_values().collect();
        Ok(report)
    }

    fn list_models(&self) -> pb::ListModelsResponse {
        let mock = self.router.mock.is_some();
        pb::ListModelsResponse {
            models: self
                .router
                .models()
                .map(|m| pb::Model {
                    name: m.name.clone(),
                    routes: m
                        .routes
                        .iter()
                        .map(|r| pb::ModelRoute {
                            provider: r.provider.name.clone(),
                            upstream_model: r.upstream_model.clone(),
                            input_usd_per_mtok: r.input_usd_per_mtok,
                            output_usd_per_mtok: r.output_usd_per_mtok,
                            configured: r.provider.configured,
                        })
                        .collect(),
                    default_policy: policy_to_pb(m.policy) as i32,
                    available: mock || m.routes.iter().any(|r| r.provider.configured),
                })
                .collect(),
        }
    }

    fn list_providers(&self) -> pb::ListProvidersResponse {
        pb::ListProvidersResponse {
            providers: self
                .router
                .providers
                .iter()
                .chain(self.router.mock.iter())
                .map(|p| {
                    let h = p.health.snapshot();
                    pb::ProviderStatus {
                        name: p.name.clone(),
                        kind: p.kind.to_owned(),
                        base_url: p.base_url.clone(),
                        configured: p.configured,
                        circuit_state: match h.state {
                            CircuitState::Closed => pb::CircuitState::Closed,
                            CircuitState::Open => pb::CircuitState::Open,
                            CircuitState::HalfOpen => pb::CircuitState::HalfOpen,
                        } as i32,
                        ewma_latency_ms: h.ewma_latency_ms,
                        requests: h.requests,
                        failures: h.failures,
                        consecutive_failures: h.consecutive_failures,
                        last_error: h.last_error,
                        last_error_at_ms: h.last_error_at_ms,
                    }
                })
                .collect(),
            mock_active: self.router.mock.is_some(),
            median_latency_ms: self.recent.median().map(|(m, _)| m),
            recent_calls: self.recent.median().map_or(0, |(_, n)| n),
        }
    }
}

/// Returns a token hold to the lease when a unary call is dropped before it settled.
struct HoldGuard {
    /// `None` once settled by other means.
    shared: Option<Arc<Shared>>,
    key_id: String,
    held: u64,
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let (key_id, held) = (std::mem::take(&mut self.key_id), self.held);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                shared.quotas.settle(&key_id, held, 0, now_millis()).await;
            });
        }
    }
}

/// Chunks a stream reads ahead from its provider while a charge is being written.
const MAX_READ_AHEAD: usize = 64;

/// What a stream has durably charged so far (the sum of its deltas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Charged {
    requests: i64,
    prompt: i64,
    completion: i64,
    cost_nano: i64,
}

/// Charges a stream in durable steps (see [`crate::usage`]): before a chunk leaves, everything
/// received so far; at its end or failure, the final count; when the client goes away
/// mid-stream and the stream is dropped, what was received, from a task spawned by `Drop`, so
/// an abandoned stream is still charged for what the provider generated. The quota hold is
/// settled exactly once (`done`).
struct StreamTracker {
    shared: Arc<Shared>,
    key: Arc<KeyInfo>,
    model: String,
    route: Arc<Route>,
    /// The month the stream started in: all its charges go to that month's row, so a final
    /// correction never lands in a row it was not charged to.
    period: String,
    prompt_estimate: u32,
    /// Tokens held at admission, settled by the accounting.
    held: u64,
    /// Characters of content received from the provider, charged, sent to the client.
    received_chars: usize,
    charged_chars: usize,
    delivered_chars: usize,
    /// The provider's own count, when its stream reported one.
    usage: Option<Usage>,
    charged: Charged,
    done: bool,
}

impl StreamTracker {
    fn received(&mut self, c: &Chunk) {
        self.received_chars += c.delta.chars().count();
        if let Some(u) = c.usage {
            self.usage = Some(u);
        }
    }

    /// Usage so far: the provider's count once it gave one, else estimated from what was
    /// received (flagged `true`).
    fn usage(&self) -> (Usage, bool) {
        match self.usage {
            Some(u) => (u, false),
            None => (self.estimated(), true),
        }
    }

    fn estimated(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_estimate,
            completion_tokens: providers::estimate_tokens(self.received_chars),
        }
    }

    /// Moves the charged total to `usage`; returns the delta to write (`None` when nothing
    /// changes). Updated before the write is awaited: once handed to the recorder the write
    /// happens even if this stream is dropped, so it must never be charged again.
    fn delta(&mut self, usage: Usage) -> Option<(UsageKey, UsageSums)> {
        let (p, c) = (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens),
        );
        let target = Charged {
            requests: 1,
            prompt: i64::from(usage.prompt_tokens),
            completion: i64::from(usage.completion_tokens),
            cost_nano: to_nano_usd(self.route.cost_usd(p, c)),
        };
        let before = std::mem::replace(&mut self.charged, target);
        if before == target {
            return None;
        }
        Some((
            Shared::usage_key(&self.key, &self.model, &self.route, self.period.clone()),
            UsageSums {
                user_id: self.key.user_id.clone(),
                requests: target.requests - before.requests,
                prompt_tokens: target.prompt - before.prompt,
                completion_tokens: target.completion - before.completion,
                cost_nano_usd: target.cost_nano - before.cost_nano,
            },
        ))
    }

    /// Durably charges everything received so far (estimated: the provider's own count comes
    /// at the end). The charge is taken at the call; the future only waits for its commit, and
    /// borrows nothing, so the stream can keep reading from the provider meanwhile.
    fn charge_received(
        &mut self,
    ) -> impl std::future::Future<Output = Result<(), GatewayError>> + 'static {
        self.charged_chars = self.received_chars;
        let delta = self.delta(self.estimated());
        let shared = self.shared.clone();
        async move {
            match delta {
                Some((k, s)) => shared.usage.charge(k, s).await,
                None => Ok(()),
            }
        }
    }

    /// The error a broken or silent provider ends the stream with; the provider's health
    /// counts it.
    fn upstream_broke(&self, e: &providers::ProviderError, idle: Duration) -> GatewayError {
        let name = &self.route.provider.name;
        self.route
            .provider
            .health
            .on_failure(e, &self.shared.router.settings);
        if matches!(e, providers::ProviderError::Timeout) {
            GatewayError::UpstreamTimeout(format!(
                "{name}: no data for {} s in the middle of the answer",
                idle.as_secs()
            ))
        } else {
            tracing::warn!(provider = %name, error = %e, "stream broke after the first token");
            GatewayError::Upstream(format!(
                "{name}: stream interrupted after the answer started ({})",
                e.kind_label()
            ))
        }
    }

    /// Charges the final count and settles the quota hold (once). An error means the final
    /// event must not be sent.
    async fn finish(&mut self) -> Result<(Usage, bool, f64), GatewayError> {
        let (usage, estimated) = self.usage();
        let (p, c) = (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens),
        );
        let cost = self.route.cost_usd(p, c);
        if self.done {
            return Ok((usage, estimated, cost));
        }
        self.done = true;
        let delta = self.delta(usage);
        // In its own task: if the client goes away while this awaits, the stream is dropped
        // here but the settlement and the charge still complete.
        let (shared, key_id, held, model, route) = (
            self.shared.clone(),
            self.key.key_id.clone(),
            self.held,
            self.model.clone(),
            self.route.clone(),
        );
        tokio::spawn(async move {
            shared
                .quotas
                .settle(&key_id, held, p + c, now_millis())
                .await;
            if let Some((k, s)) = delta {
                shared.usage.charge(k, s).await?;
            }
            shared
                .metrics
                .usage(&route.provider.name, &model, p, c, cost);
            Ok::<(), GatewayError>(())
        })
        .await
        .map_err(|e| GatewayError::Internal(Box::new(e)))??;
        Ok((usage, estimated, cost))
    }
}

impl Drop for StreamTracker {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let (usage, _) = self.usage();
        let (p, c) = (
            u64::from(usage.prompt_tokens),
            u64::from(usage.completion_tokens),
        );
        let delta = self.delta(usage);
        let (shared, key_id, held, model, route) = (
            self.shared.clone(),
            self.key.key_id.clone(),
            self.held,
            self.model.clone(),
            self.route.clone(),
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                shared
                    .quotas
                    .settle(&key_id, held, p + c, now_millis())
                    .await;
                if let Some((k, s)) = delta
                    && let Err(e) = shared.usage.charge(k, s).await
                {
                    tracing::error!(error = %e, "usage of an abandoned stream not charged");
                    return;
                }
                let cost = route.cost_usd(p, c);
                shared
                    .metrics
                    .usage(&route.provider.name, &model, p, c, cost);
            });
        }
    }
}

fn outcome<T>(r: &Result<T, GatewayError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code().as_str(),
    }
}

#[tonic::async_trait]
impl LlmGateway for GatewayApi {
    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<pb::ChatResponse>, Status> {
        let started = Instant::now();
        let r = self.shared.clone().chat(request).await;
        self.shared
            .metrics
            .request("Chat", outcome(&r), started.elapsed());
        r.map(Response::new).map_err(Status::from)
    }

    type ChatStreamStream = BoxStream<'static, Result<pb::ChatStreamEvent, Status>>;

    async fn chat_stream(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStreamStream>, Status> {
        let started = Instant::now();
        let r = self.shared.clone().chat_stream(request).await;
        self.shared
            .metrics
            .request("ChatStream", outcome(&r), started.elapsed());
        r.map(Response::new).map_err(Status::from)
    }

    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        Ok(Response::new(self.shared.list_models()))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let allowed = iafactory::grpc::bearer_token(request.metadata())
            .zip(self.shared.internal.as_ref())
            .is_some_and(|(presented, token)| token.matches(presented));
        if !allowed {
            return Err(GatewayError::Forbidden(
                "ListProviders is internal: send authorization: Bearer <INTERNAL_TOKEN>",
            )
            .into());
        }
        Ok(Response::new(self.shared.list_providers()))
    }

    async fn get_keys_usage(
        &self,
        request: Request<pb::GetKeysUsageRequest>,
    ) -> Result<Response<pb::KeysUsage>, Status> {
        let allowed = iafactory::grpc::bearer_token(request.metadata())
            .zip(self.shared.internal.as_ref())
            .is_some_and(|(presented, token)| token.matches(presented));
        if !allowed {
            return Err(GatewayError::Forbidden(
                "GetKeysUsage is internal: send authorization: Bearer <INTERNAL_TOKEN>",
            )
            .into());
        }
        let report =
            crate::keys_usage::keys_usage(&self.shared.usage, request.get_ref(), now_millis())
                .await?;
        Ok(Response::new(report))
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::UsageReport>, Status> {
        let started = Instant::now();
        let r = self.shared.get_usage(request).await;
        self.shared
            .metrics
            .request("GetUsage", outcome(&r), started.elapsed());
        r.map(Response::new).map_err(Status::from)
    }
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;

    fn msg(role: pb::Role, content: &str) -> pb::ChatMessage {
        pb::ChatMessage {
            role: role as i32,
            content: content.into(),
        }
    }

    #[test]
    fn validation_refuses_bad_requests_with_a_reason() {
        let ok = pb::ChatRequest {
            model: "m".into(),
            messages: vec![msg(pb::Role::System, "be brief"), msg(pb::Role::User, "hi")],
            ..Default::default()
        };
        assert!(validate(&ok).is_ok());
        let cases: Vec<(pb::ChatRequest, &str)> = vec![
            (
                pb::ChatRequest {
                    model: String::new(),
                    ..ok.clone()
                },
                "model",
            ),
            (
                pb::ChatRequest {
                    messages: vec![],
                    ..ok.clone()
                },
                "at least one",
            ),
            (
                pb::ChatRequest {
                    messages: vec![msg(pb::Role::System, "x")],
                    ..ok.clone()
                },
                "user or assistant",
            ),
            (
                pb::ChatRequest {
                    messages: vec![pb::ChatMessage {
                        role: 0,
                        content: "x".into(),
                    }],
                    ..ok.clone()
                },
                "role",
            ),
            (
                pb::ChatRequest {
                    messages: vec![pb::ChatMessage {
                        role: 42,
                        content: "x".into(),
                    }],
                    ..ok.clone()
                },
                "role",
            ),
            (
                pb::ChatRequest {
                    temperature: Some(f32::NAN),
                    ..ok.clone()
                },
                "temperature",
            ),
            (
                pb::ChatRequest {
                    temperature: Some(2.5),
                    ..ok.clone()
                },
                "temperature",
            ),
            (
                pb::ChatRequest {
                    top_p: Some(-0.1),
                    ..ok.clone()
                },
                "top_p",
            ),
            (
                pb::ChatRequest {
                    max_tokens: Some(0),
                    ..ok.clone()
                },
                "max_tokens",
            ),
            (
                pb::ChatRequest {
                    stop: vec!["a".into(); 5],
                    ..ok.clone()
                },
                "stop",
            ),
            (
                pb::ChatRequest {
                    stop: vec![String::new()],
                    ..ok.clone()
                },
                "stop",
            ),
            (
                pb::ChatRequest {
                    policy: 9,
                    ..ok.clone()
                },
                "policy",
            ),
            (
                pb::ChatRequest {
                    messages: vec![msg(pb::Role::User, "x"); MAX_MESSAGES + 1],
                    ..ok.clone()
                },
                "at most",
            ),
        ];
        for (req, needle) in cases {
            match validate(&req) {
                Err(GatewayError::InvalidArgument(m)) => assert!(m.contains(needle), "{m}"),
                other => panic!(
                    "expected InvalidArgument({needle}), got {:?}",
                    other.map(|_| ())
                ),
            }
        }
    }
}
