//! A service's gRPC health as the fault tests watch it: the overall status (service `""`),
//! which turns NOT_SERVING while the database refuses writes and back by itself.

use std::net::SocketAddr;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The overall status of the gRPC service at `addr`; `Unknown` when it cannot be asked.
pub async fn grpc_health(addr: SocketAddr) -> ServingStatus {
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")) else {
        return ServingStatus::Unknown;
    };
    let Ok(channel) = endpoint.connect().await else {
        return ServingStatus::Unknown;
    };
    match HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
    {
        Ok(r) => ServingStatus::try_from(r.into_inner().status).unwrap_or(ServingStatus::Unknown),
        Err(_) => ServingStatus::Unknown,
    }
}

/// Asks every `poll` until the status is `want`; `false` if it is not within `within`.
pub async fn wait_grpc_health(
    addr: SocketAddr,
    want: ServingStatus,
    within: Duration,
    poll: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if grpc_health(addr).await == want {
            return true;
        }
        tokio::time::sleep(poll).await;
    }
    false
}
