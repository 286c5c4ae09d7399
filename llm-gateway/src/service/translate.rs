//! Domain answers to protobuf (the request direction is [`super::validate`]).

use iafactory::proto::iafactory::llm::v1 as pb;

use crate::chat::{Choice, Chunk, Logprobs, TokenLogprob, ToolCall};

fn tool_call_pb(c: ToolCall) -> pb::ToolCall {
    pb::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn token_pb(t: TokenLogprob) -> pb::TokenLogprob {
    pb::TokenLogprob {
        token: t.token,
        logprob: t.logprob,
        bytes: t.bytes,
        top_logprobs: t
            .top
            .into_iter()
            .map(|a| pb::TopLogprob {
                token: a.token,
                logprob: a.logprob,
                bytes: a.bytes,
            })
            .collect(),
    }
}

pub(super) fn logprobs_pb(l: Logprobs) -> pb::Logprobs {
    pb::Logprobs {
        content: l.content.into_iter().map(token_pb).collect(),
        refusal: l.refusal.into_iter().map(token_pb).collect(),
    }
}

/// One answer: an assistant message (text absent when the model only called tools).
pub(super) fn choice_pb(c: Choice) -> pb::Choice {
    pb::Choice {
        index: c.index,
        message: Some(pb::ChatMessage {
            role: pb::Role::Assistant as i32,
            content: c.content.map(pb::chat_message::Content::Text),
            tool_calls: c.tool_calls.into_iter().map(tool_call_pb).collect(),
            refusal: c.refusal,
            ..Default::default()
        }),
        finish_reason: c.finish_reason,
        logprobs: c.logprobs.map(logprobs_pb),
    }
}

/// A piece of a streamed answer.
pub(super) fn delta_pb(c: Chunk) -> pb::ContentDelta {
    pb::ContentDelta {
        content: c.delta,
        index: c.index,
        tool_calls: c
            .tool_calls
            .into_iter()
            .map(|d| pb::ToolCallDelta {
                index: d.index,
                id: d.id,
                name: d.name,
                arguments: d.arguments,
            })
            .collect(),
        refusal: c.refusal,
        logprobs: c.logprobs.map(logprobs_pb),
        finish_reason: c.finish_reason,
    }
}
