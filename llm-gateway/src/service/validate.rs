//! Checks of a chat request and its translation from protobuf to the domain's [`ChatInput`].

use iafactory::proto::iafactory::llm::v1 as pb;

use crate::catalog::Policy;
use crate::error::GatewayError;
use crate::providers::{ChatInput, Message, Role};

/// Request limits (beyond the 1 MiB gRPC message limit).
pub const MAX_MESSAGES: usize = 256;
pub const MAX_STOP: usize = 4;
pub const MAX_STOP_BYTES: usize = 256;
pub const MAX_CONTENT_BYTES: usize = 1024 * 1024;
pub const MAX_MAX_TOKENS: u32 = 1_000_000;

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

pub(super) fn policy_to_pb(p: Policy) -> pb::RoutingPolicy {
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
