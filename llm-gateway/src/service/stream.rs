//! Streamed chat: committed to a provider at its first content, then relayed chunk by chunk,
//! each chunk charged durably before it leaves (see [`StreamTracker`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use iafactory::db::now_millis;
use iafactory::proto::iafactory::llm::v1 as pb;
use tonic::{Request, Status};

use super::shared::{HoldGuard, Shared, millis, new_id, short, usage_pb};
use super::translate;
use crate::auth::KeyInfo;
use crate::error::GatewayError;
use crate::providers::{self, Chunk, ChunkStream, Usage};
use crate::quota::Hold;
use crate::request_log::Draft;
use crate::routing::Route;
use crate::store::{UsageKey, UsageSums};
use crate::usage::to_nano_usd;

impl Shared {
    #[tracing::instrument(name = "chat_stream", skip_all, fields(model = short(&request.get_ref().model), key_id = tracing::field::Empty))]
    pub(super) async fn chat_stream(
        self: Arc<Self>,
        request: Request<pb::ChatRequest>,
        draft: &mut Draft,
    ) -> Result<BoxStream<'static, Result<pb::ChatStreamEvent, Status>>, GatewayError> {
        let started = Instant::now();
        let (key, model, input, policy, held) = self
            .admit(request.metadata(), request.get_ref(), draft)
            .await?;
        // Until the stream is committed (then the tracker settles), as for unary calls.
        let mut hold = HoldGuard {
            shared: Some(self.clone()),
            subject: key.quota_subject().to_owned(),
            held,
        };
        let served = self.router.stream(&model, policy, &input).await?;
        hold.shared = None;
        let ttft = started.elapsed();
        let route = served.route.clone();
        self.recent.record(&route.provider.name, ttft);
        let committed = served.value;
        // From here the stream carries its row: written when it ends, fails or is dropped.
        let mut log = draft.take();
        log.set_ttft(ttft);
        let mut tracker = StreamTracker {
            log,
            shared: self.clone(),
            key,
            model: model.name.clone(),
            route: route.clone(),
            started_ms: now_millis(),
            prompt_estimate: input.estimated_prompt_tokens(),
            held,
            received_chars: 0,
            charged_chars: 0,
            delivered_chars: 0,
            usage: None,
            charged: Charged::default(),
            charge_failed: false,
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
            let mut fingerprint: Option<String> = None;
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
                let mut chunk = match next {
                    Ok(c) => c,
                    Err(e) => {
                        let err = tracker.upstream_broke(&e, idle);
                        // What was delivered is charged; a failure to write it is logged by
                        // the writer, and the client gets the upstream error either way.
                        let _ = tracker.finish().await;
                        tracker.log.take().finish(Err(&err));
                        yield Err(Status::from(err));
                        return;
                    }
                };
                if chunk.index == 0 && chunk.finish_reason.is_some() {
                    finish_reason = chunk.finish_reason.clone();
                }
                if chunk.system_fingerprint.is_some() {
                    fingerprint = chunk.system_fingerprint.take();
                }
                if chunk.has_content() || chunk.finish_reason.is_some() {
                    let end = tracker.delivered_chars + chunk.generated_chars();
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
                            tracker.stop_charging();
                            tracker.log.take().finish(Err(&e));
                            yield Err(Status::from(e));
                            return;
                        }
                    }
                    tracker.delivered_chars = end;
                    let mut ev = header.clone();
                    ev.event = Some(pb::chat_stream_event::Event::Delta(translate::delta_pb(chunk)));
                    yield Ok(ev);
                }
            }
            match tracker.finish().await {
                Ok((usage, estimated, cost)) => {
                    tracker.log.take().finish(Ok(()));
                    let mut ev = header.clone();
                    ev.event = Some(pb::chat_stream_event::Event::End(pb::StreamEnd {
                        finish_reason: finish_reason.unwrap_or_else(|| "stop".into()),
                        usage: Some(usage_pb(usage, estimated)),
                        cost_usd: cost,
                        latency_ms: millis(started.elapsed()),
                        time_to_first_token_ms: millis(ttft),
                        attempts,
                        system_fingerprint: fingerprint.unwrap_or_default(),
                    }));
                    yield Ok(ev);
                }
                Err(e) => {
                    tracker.log.take().finish(Err(&e));
                    yield Err(Status::from(e));
                }
            }
        };
        Ok(s.boxed())
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
    /// The stream's request log row, given what was received when the stream ends.
    log: Draft,
    shared: Arc<Shared>,
    key: Arc<KeyInfo>,
    model: String,
    route: Arc<Route>,
    /// When the stream started (epoch ms): all its charges go to that month's and that day's
    /// rows, so a final correction never lands in a row it was not charged to.
    started_ms: i64,
    prompt_estimate: u32,
    /// Tokens (and cost) held at admission, settled by the accounting.
    held: Hold,
    /// Characters of content received from the provider, charged, sent to the client.
    received_chars: usize,
    charged_chars: usize,
    delivered_chars: usize,
    /// The provider's own count, when its stream reported one.
    usage: Option<Usage>,
    charged: Charged,
    /// A charge of this stream was not written: `charged` no longer says what the store holds
    /// (nothing of that charge, or all of it if only its commit's answer was lost), so no
    /// correction is computed from it. Like a unary call whose charge fails, the stream ends
    /// undelivered and is charged nothing more; its quota hold is still settled.
    charge_failed: bool,
    done: bool,
}

impl StreamTracker {
    fn received(&mut self, c: &Chunk) {
        self.received_chars += c.generated_chars();
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
        Usage::new(
            self.prompt_estimate,
            providers::estimate_tokens(self.received_chars),
        )
    }

    /// After a charge that was not written: nothing more is charged (see `charge_failed`);
    /// the quota hold is still settled when the stream ends or is dropped.
    fn stop_charging(&mut self) {
        self.charge_failed = true;
    }

    /// Moves the charged total to `usage`; returns the delta to write (`None` when nothing
    /// changes). Updated before the write is awaited: once handed to the recorder the write
    /// happens even if this stream is dropped, so it must never be charged again.
    fn delta(&mut self, usage: Usage) -> Option<(UsageKey, UsageSums)> {
        if self.charge_failed {
            return None;
        }
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
            Shared::usage_key(&self.key, &self.model, &self.route, self.started_ms),
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
        self.log.set_served(&self.route, usage, cost);
        if self.done {
            return Ok((usage, estimated, cost));
        }
        self.done = true;
        let delta = self.delta(usage);
        // In its own task: if the client goes away while this awaits, the stream is dropped
        // here but the settlement and the charge still complete.
        let (shared, subject, held, route) = (
            self.shared.clone(),
            self.key.quota_subject().to_owned(),
            self.held,
            self.route.clone(),
        );
        tokio::spawn(async move {
            let actual = Hold {
                tokens: p + c,
                cost_nano_usd: u64::try_from(to_nano_usd(cost)).unwrap_or(0),
                budgeted: held.budgeted,
            };
            shared
                .quotas
                .settle(&subject, held, actual, now_millis())
                .await;
            if let Some((k, s)) = delta {
                shared.usage.charge(k, s).await?;
            }
            route.usage.record(p, c, cost);
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
        // The row (dropped right after this, unfinished) says what was received.
        self.log
            .set_served(&self.route, usage, self.route.cost_usd(p, c));
        let delta = self.delta(usage);
        let (shared, subject, held, route) = (
            self.shared.clone(),
            self.key.quota_subject().to_owned(),
            self.held,
            self.route.clone(),
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let actual = Hold {
                    tokens: p + c,
                    cost_nano_usd: u64::try_from(to_nano_usd(route.cost_usd(p, c))).unwrap_or(0),
                    budgeted: held.budgeted,
                };
                shared
                    .quotas
                    .settle(&subject, held, actual, now_millis())
                    .await;
                if let Some((k, s)) = delta
                    && let Err(e) = shared.usage.charge(k, s).await
                {
                    tracing::error!(error = %e, "usage of an abandoned stream not charged");
                    return;
                }
                route.usage.record(p, c, route.cost_usd(p, c));
            });
        }
    }
}
