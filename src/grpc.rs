//! Serving a tonic router the same way in every service: reflection for `grpcurl`, a tracing span
//! per call, size limits, and a graceful shutdown that lets in-flight calls finish.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::Server;

use crate::proto::FILE_DESCRIPTOR_SET;

/// Largest gRPC message accepted or sent (requests are small; this bounds hostile clients).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Knobs common to every gRPC server of the platform.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Deadline applied to every unary call (streams are bounded by the client).
    pub request_timeout: Duration,
    /// Concurrent calls per HTTP/2 connection.
    pub concurrency_per_connection: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            request_timeout: Duration::from_secs(30),
            concurrency_per_connection: 1024,
        }
    }
}

/// Server reflection (v1 and v1alpha, for older grpcurl builds) over every platform contract.
pub fn add_reflection(routes: Routes) -> Result<Routes, tonic_reflection::server::Error> {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok(routes.add_service(v1).add_service(v1alpha))
}

/// Serves `routes` on `listener` until `shutdown` resolves, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .timeout(options.request_timeout)
        .concurrency_limit_per_connection(options.concurrency_per_connection)
        .tcp_nodelay(true)
        .trace_fn(|req| {
            tracing::info_span!(
                "grpc",
                method = %req.uri().path(),
                request_id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            )
        })
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// Reads `authorization: Bearer <token>` from request metadata.
pub fn bearer_token(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
