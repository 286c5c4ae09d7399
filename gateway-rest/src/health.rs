//! The backends' `grpc.health.v1` state, as `/healthz` and `/readyz` report it, and the cached
//! readiness verdict.

use std::time::{Duration, Instant};

use serde::Serialize;
use tonic_health::pb::health_check_response::ServingStatus;
use utoipa::ToSchema;

use crate::backend::Backend;

/// One backend's state.
#[derive(Serialize, Clone, ToSchema)]
pub struct BackendHealth {
    #[schema(inline)]
    pub status: Serving,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Serving {
    Serving,
    NotServing,
    Unreachable,
}

/// Each backend's `grpc.health.v1` state, by name.
#[derive(Serialize, Clone, ToSchema)]
pub struct Backends {
    #[serde(rename = "promo-service")]
    pub promo: BackendHealth,
    #[serde(rename = "llm-gateway")]
    pub llm: BackendHealth,
}

impl Backends {
    /// The names of the backends that are not SERVING.
    pub fn not_serving(&self) -> Vec<&'static str> {
        [("promo-service", &self.promo), ("llm-gateway", &self.llm)]
            .into_iter()
            .filter(|(_, b)| b.status != Serving::Serving)
            .map(|(name, _)| name)
            .collect()
    }
}

fn backend_health(result: Result<ServingStatus, String>) -> BackendHealth {
    match result {
        Ok(ServingStatus::Serving) => BackendHealth {
            status: Serving::Serving,
            detail: None,
        },
        Ok(other) => BackendHealth {
            status: Serving::NotServing,
            detail: Some(other.as_str_name().to_ascii_lowercase()),
        },
        Err(detail) => BackendHealth {
            status: Serving::Unreachable,
            detail: Some(detail),
        },
    }
}

/// Time each backend has to answer `grpc.health.v1` for `/healthz` and `/readyz`.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a `/readyz` verdict is reused: a load balancer (or a crowd) polling it costs the
/// backends at most one health check each per this interval.
pub const READY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Asks both backends at once.
pub async fn check(promo: &Backend, llm: &Backend) -> Backends {
    let (promo, llm) = tokio::join!(
        promo.health(HEALTH_CHECK_TIMEOUT),
        llm.health(HEALTH_CHECK_TIMEOUT)
    );
    Backends {
        promo: backend_health(promo),
        llm: backend_health(llm),
    }
}

/// The last `/readyz` verdict, reused for [`READY_CACHE_TTL`].
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Backends)>>,
}

impl Readiness {
    /// Both backends' state, checked at most once per [`READY_CACHE_TTL`]. The lock is held
    /// during a check, so concurrent requests wait for it (at most [`HEALTH_CHECK_TIMEOUT`])
    /// instead of each sending checks of their own.
    pub async fn backends(&self, promo: &Backend, llm: &Backend) -> Backends {
        let mut last = self.last.lock().await;
        if let Some((at, backends)) = last.as_ref()
            && at.elapsed() < READY_CACHE_TTL
        {
            return backends.clone();
        }
        let backends = check(promo, llm).await;
        *last = Some((Instant::now(), backends.clone()));
        backends
    }
}
