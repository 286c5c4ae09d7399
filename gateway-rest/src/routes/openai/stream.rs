//! `"stream": true`: llm-gateway's `ChatStream` events as OpenAI's `chat.completion.chunk`
//! server-sent events: a first chunk with the role, content / refusal / tool-call deltas per
//! choice, one finish chunk per choice, the usage chunk (empty `choices`) when
//! `stream_options.include_usage`, then `data: [DONE]`.
//!
//! A failure after the first byte cannot change the HTTP status any more: the stream ends with a
//! data chunk `{"error":{…}}` and no `[DONE]`, which the OpenAI SDKs raise as an `APIError`
//! (openai-python's `Stream` checks every chunk for an `error` key).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use axum::response::sse::Event;
use iafactory::ErrorCode;
use iafactory::proto::iafactory::llm::v1 as pb;

use super::answer::{
    AssistantRole, ChatCompletionChunk, ChunkChoice, ChunkObject, Delta, IafInfo, Logprobs,
    TokenUsage,
};
use super::{ApiResult, oa, set_iaf_headers};
use crate::edge::StreamSlot;
use crate::error::{ApiError, Flavor};
use crate::respond::{non_empty, sse};
use crate::state::AppState;

fn event(chunk: &ChatCompletionChunk<'_>) -> Event {
    Event::default().data(serde_json::to_string(chunk).unwrap_or_else(|_| "{}".to_owned()))
}

fn error_event(err: &ApiError) -> Event {
    Event::default().data(err.body_string())
}

/// The first gRPC event is awaited before answering, so refusals (bad key, quota, unknown model,
/// a parameter no route can carry, every provider down) are ordinary HTTP errors the SDKs
/// understand, and the serving provider is known for `x-iaf-provider`.
pub(super) async fn chat_stream(
    state: AppState,
    req: tonic::Request<pb::ChatRequest>,
    include_usage: bool,
) -> ApiResult {
    let slot = StreamSlot::acquire(&state, Flavor::OpenAi)?;
    let show_cost = state.config.show_upstream_cost;
    let mut upstream = state
        .llm_client()
        .chat_stream(req)
        .await
        .map_err(oa)?
        .into_inner();
    let first = match upstream.message().await {
        Ok(Some(ev)) => ev,
        Ok(None) => {
            return Err(ApiError::new(
                ErrorCode::UpstreamError,
                "The model stream ended before any answer.",
            )
            .openai());
        }
        Err(status) => return Err(oa(status)),
    };
    let provider = first.provider.clone();
    let created = chrono::Utc::now().timestamp();
    let mut stop = state.stop.clone();
    // OpenAI sends `"usage": null` on every chunk when the usage chunk is asked for.
    let no_usage = move || include_usage.then_some(None);
    let events = async_stream::stream! {
        let _slot = slot;
        let id = first.id.clone();
        let model = first.model.clone();
        let chunk = |choices: Vec<ChunkChoice>| ChatCompletionChunk {
            id: &id, object: ChunkObject::ChatCompletionChunk, created, model: &model,
            system_fingerprint: None, choices, usage: no_usage(), iaf: None,
        };
        // OpenAI's first chunk carries the role.
        yield Ok::<Event, Infallible>(event(&chunk(vec![ChunkChoice {
            index: 0,
            delta: Delta { role: Some(AssistantRole::Assistant), content: Some(String::new()), ..Delta::default() },
            finish_reason: None,
            logprobs: None,
        }])));
        // Choices that got their role, choices seen, and the finish reason each one reported.
        let mut roled = BTreeSet::from([0u32]);
        let mut seen = BTreeSet::from([0u32]);
        let mut finished: BTreeMap<u32, String> = BTreeMap::new();
        let mut next = Some(Ok(Some(first)));
        loop {
            let item = match next.take() {
                Some(item) => item,
                None => tokio::select! {
                    item = upstream.message() => item,
                    () = iafactory::shutdown::stopped(&mut stop) => {
                        let err = ApiError::new(ErrorCode::Unavailable, "The server is shutting down; the answer was cut.").openai();
                        yield Ok(error_event(&err));
                        break;
                    }
                },
            };
            match item {
                Ok(Some(ev)) => match ev.event {
                    Some(pb::chat_stream_event::Event::Delta(mut d)) => {
                        seen.insert(d.index);
                        if let Some(f) = d.finish_reason.take() {
                            finished.insert(d.index, f);
                        }
                        if d.content.is_empty() && d.refusal.is_empty() && d.tool_calls.is_empty() && d.logprobs.is_none() {
                            continue;
                        }
                        let role = roled.insert(d.index).then_some(AssistantRole::Assistant);
                        yield Ok(event(&chunk(vec![ChunkChoice {
                            index: d.index,
                            delta: Delta {
                                role,
                                content: non_empty(d.content),
                                refusal: non_empty(d.refusal),
                                tool_calls: d.tool_calls.into_iter().map(Into::into).collect(),
                            },
                            finish_reason: None,
                            logprobs: Logprobs::from_pb(d.logprobs),
                        }])));
                    }
                    Some(pb::chat_stream_event::Event::End(end)) => {
                        let fingerprint = non_empty(end.system_fingerprint);
                        let last = seen.last().copied().unwrap_or(0);
                        let mut info = Some(IafInfo {
                            provider: ev.provider, upstream_model: ev.upstream_model,
                            cost_usd: show_cost.then_some(end.cost_usd), latency_ms: end.latency_ms, attempts: end.attempts,
                            usage_estimated: end.usage.is_some_and(|u| u.estimated),
                        });
                        for index in seen.iter().copied() {
                            let finish = finished.remove(&index).unwrap_or_else(|| end.finish_reason.clone());
                            let mut c = chunk(vec![ChunkChoice {
                                index,
                                delta: Delta { role: roled.insert(index).then_some(AssistantRole::Assistant), ..Delta::default() },
                                finish_reason: Some(finish),
                                logprobs: None,
                            }]);
                            c.system_fingerprint = fingerprint.as_deref();
                            // The platform's figures ride on the last finish chunk.
                            if index == last {
                                c.iaf = info.take();
                            }
                            yield Ok(event(&c));
                        }
                        if include_usage {
                            let mut c = chunk(Vec::new());
                            c.system_fingerprint = fingerprint.as_deref();
                            c.usage = Some(Some(TokenUsage::from(end.usage)));
                            yield Ok(event(&c));
                        }
                        yield Ok(Event::default().data("[DONE]"));
                        break;
                    }
                    None => continue,
                },
                Ok(None) => {
                    // Ended without its `end` event: tell the client rather than fake a finish.
                    let err = ApiError::new(ErrorCode::UpstreamError, "The model stream ended early.").openai();
                    yield Ok(error_event(&err));
                    break;
                }
                Err(status) => {
                    yield Ok(error_event(&oa(status)));
                    break;
                }
            }
        }
    };
    let mut response = sse(events, state.config.sse_keep_alive);
    set_iaf_headers(&mut response, &provider, None, None);
    Ok(response)
}
