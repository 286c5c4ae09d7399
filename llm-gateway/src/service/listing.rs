//! The model catalogue (public) and the providers' status (internal), as protobuf.

use iafactory::proto::iafactory::llm::v1 as pb;

use super::shared::Shared;
use super::validate::policy_to_pb;
use crate::auth::KeyInfo;
use crate::catalog::{Capabilities, ModelKind};
use crate::routing::{CircuitState, capabilities};

fn capabilities_pb(c: &Capabilities) -> pb::Capabilities {
    pb::Capabilities {
        tools: c.tools,
        vision: c.vision,
        json_object: c.json_object,
        json_schema: c.json_schema,
        logprobs: c.logprobs,
        multiple_choices: c.multiple_choices,
        reasoning: c.reasoning,
        context_length: c.context_length,
        max_output_tokens: c.max_output_tokens,
        dimensions: c.dimensions,
    }
}

impl Shared {
    /// The catalogue; with a key (`key`), only the models it can call: allowed by its
    /// package and served by a configured route or the offline mock.
    pub(super) fn list_models(&self, key: Option<&KeyInfo>) -> pb::ListModelsResponse {
        let mock = self.router.mock.is_some();
        pb::ListModelsResponse {
            models: self
                .router
                .models()
                .filter_map(|m| {
                    let available = mock || m.routes.iter().any(|r| r.provider.configured);
                    if key.is_some_and(|k| !(available && k.may_use(&m.name))) {
                        return None;
                    }
                    let mut routes: Vec<pb::ModelRoute> = m
                        .routes
                        .iter()
                        .map(|r| pb::ModelRoute {
                            provider: r.provider.name.clone(),
                            upstream_model: r.upstream_model.clone(),
                            input_usd_per_mtok: r.input_usd_per_mtok,
                            output_usd_per_mtok: r.output_usd_per_mtok,
                            configured: r.provider.configured,
                            capabilities: Some(capabilities_pb(&capabilities::effective(
                                r.provider.kind,
                                &r.capabilities,
                            ))),
                        })
                        .collect();
                    // The offline mock answers every model: listed as the route that serves.
                    if let Some(mock) = &m.mock_route {
                        routes.push(pb::ModelRoute {
                            provider: mock.provider.name.clone(),
                            upstream_model: mock.upstream_model.clone(),
                            configured: true,
                            capabilities: Some(capabilities_pb(&mock.capabilities)),
                            ..Default::default()
                        });
                    }
                    Some(pb::Model {
                        name: m.name.clone(),
                        routes,
                        default_policy: policy_to_pb(m.policy) as i32,
                        available,
                        kind: match m.kind {
                            ModelKind::Chat => pb::ModelKind::Chat,
                            ModelKind::Embedding => pb::ModelKind::Embedding,
                        } as i32,
                        created: m.created,
                        owned_by: m.owned_by.clone(),
                    })
                })
                .collect(),
        }
    }

    pub(super) fn list_providers(&self) -> pb::ListProvidersResponse {
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
