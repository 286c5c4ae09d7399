//! The model catalogue (public) and the providers' status (internal), as protobuf.

use iafactory::proto::iafactory::llm::v1 as pb;

use super::shared::Shared;
use super::validate::policy_to_pb;
use crate::routing::CircuitState;

impl Shared {
    pub(super) fn list_models(&self) -> pb::ListModelsResponse {
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
