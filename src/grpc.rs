//! Serving a tonic router the same way in every service: reflection for `grpcurl`, a tracing span
//! per call, size limits, and a graceful shutdown that lets in-flight calls finish.
//!
//! Invariant of the RPC metrics: every label value comes from a set fixed at build time (the
//! methods of the platform's contracts, health and reflection; the gRPC status codes), whatever
//! path a client sends — any other path is counted under `method="unknown"`. A label fed by the
//! network would otherwise make one time series per bogus path, kept forever.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::{Channel, Endpoint, Server};

use crate::metrics::Registry;
use crate::metrics::rpc::RpcMetrics;
use crate::proto::FILE_DESCRIPTOR_SET;

/// Largest gRPC message accepted or sent (requests are small; this bounds hostile clients).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Largest answer llm-gateway sends and gateway-rest takes from it: an embeddings answer of
/// 2048 vectors of 4096 floats fits (the largest OpenAI allows is 2048 × 3072).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Knobs common to every gRPC server of the platform.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Deadline applied to every unary call (streams are bounded by the client).
    pub request_timeout: Duration,
    /// Concurrent calls per HTTP/2 connection.
    pub concurrency_per_connection: usize,
    /// Where per-RPC request counts and latencies go (RED metrics, see [`rpc_metrics`]); `None`
    /// records nothing.
    pub metrics: Option<Arc<RpcMetrics>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            request_timeout: Duration::from_secs(30),
            concurrency_per_connection: 1024,
            metrics: None,
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

/// Mirrors whether the service's database accepts writes (see `Db::probe_writes`) into its health
/// status, both under the service's name and overall (`""`, what load balancers and gateway-rest
/// ask): NOT_SERVING while writes fail, SERVING again when they succeed. Ends when `writable`'s
/// sender goes away.
pub async fn follow_storage_health(
    reporter: tonic_health::server::HealthReporter,
    service_name: &'static str,
    mut writable: tokio::sync::watch::Receiver<bool>,
) {
    use tonic_health::ServingStatus;
    loop {
        let status = if *writable.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status(service_name, status).await;
        reporter.set_service_status("", status).await;
        if writable.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    options: &ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .layer(RpcMetricsLayer {
            metrics: options.metrics.clone(),
        })
        .timeout(options.request_timeout)
        .concurrency_limit_per_connection(options.concurrency_per_connection)
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
        .serve_with_incoming_shutdown(incoming(listener), shutdown)
        .await
}

/// Accepted connections with TCP_NODELAY: tonic applies its own `tcp_nodelay` only to listeners
/// it binds itself, and with Nagle's algorithm on, calls multiplexed on one HTTP/2 connection
/// stall ~40 ms on delayed ACKs.
pub fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|conn| {
        if let Ok(stream) = &conn {
            let _ = stream.set_nodelay(true);
        }
        conn
    })
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

/// Sets `authorization: Bearer <token>` on an outgoing call (a token that is not a valid header
/// value is not sent, and the callee refuses the call as unauthenticated).
pub fn set_bearer<T>(req: &mut tonic::Request<T>, token: &str) {
    if let Ok(value) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", value);
    }
}

/// The `method` label of calls to a path outside [`known_methods`].
pub const UNKNOWN_METHOD: &str = "unknown";

/// gRPC reflection's paths (its descriptors are not in the sets read by [`known_methods`]).
const REFLECTION_METHODS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Every `/package.Service/Method` path of the platform's contracts, gRPC health and reflection,
/// read once from the embedded descriptors.
pub fn known_methods() -> &'static BTreeSet<String> {
    static KNOWN: OnceLock<BTreeSet<String>> = OnceLock::new();
    KNOWN.get_or_init(|| {
        use prost::Message as _;
        let mut known: BTreeSet<String> =
            REFLECTION_METHODS.iter().map(|m| (*m).to_owned()).collect();
        for bytes in [FILE_DESCRIPTOR_SET, tonic_health::pb::FILE_DESCRIPTOR_SET] {
            // Built into the binary by build.rs and tonic-health: decoding cannot fail at run
            // time unless the build is broken, and then the paths are merely labelled `unknown`.
            let Ok(set) = prost_types::FileDescriptorSet::decode(bytes) else {
                continue;
            };
            for file in &set.file {
                let package = file.package();
                for service in &file.service {
                    let full = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    for method in &service.method {
                        known.insert(format!("/{full}/{}", method.name()));
                    }
                }
            }
        }
        known
    })
}

/// Registers the per-RPC metrics of a server in `registry` (at start-up, before it is shared),
/// labelled by the methods of [`known_methods`].
pub fn rpc_metrics(registry: &mut Registry) -> Arc<RpcMetrics> {
    RpcMetrics::register(
        registry,
        known_methods().iter().map(String::as_str),
        UNKNOWN_METHOD,
    )
}

/// The metric label of a request path: the path itself if it is a known method, else `unknown`.
pub fn method_label(path: &str) -> &'static str {
    known_methods()
        .get(path)
        .map_or(UNKNOWN_METHOD, String::as_str)
}

/// Records every call's method, gRPC status and latency.
#[derive(Clone)]
struct RpcMetricsLayer {
    metrics: Option<Arc<RpcMetrics>>,
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RecordRpc<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RecordRpc {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
struct RecordRpc<S> {
    inner: S,
    metrics: Option<Arc<RpcMetrics>>,
}

impl<S, B, R> tower::Service<http::Request<B>> for RecordRpc<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RpcMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let record = self.metrics.clone().map(|m| {
            let slot = m.method_slot(req.uri().path());
            (m, slot, Instant::now())
        });
        RpcMetricsFuture {
            inner: self.inner.call(req),
            record,
        }
    }
}

pin_project_lite::pin_project! {
    struct RpcMetricsFuture<F> {
        #[pin]
        inner: F,
        record: Option<(Arc<RpcMetrics>, usize, Instant)>,
    }
}

impl<F, R, E> Future for RpcMetricsFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let Some((metrics, slot, started)) = this.record.take() {
            // Errors are trailers-only responses: their grpc-status is in the headers. A response
            // without it in the headers carries OK (or a later stream error) in its trailers.
            let code = match &out {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(tonic::Code::Ok, tonic::Code::from_i32),
                Err(_) => tonic::Code::Unavailable,
            };
            metrics.record(slot, code, started.elapsed());
        }
        Poll::Ready(out)
    }
}

/// A lazily connecting channel to a backend given as one URL or a comma-separated list of
/// replicas (`http://promo-a:50051,http://promo-b:50051`). With several, calls are balanced
/// (power of two choices over the replicas that are up): a replica that is down gets no calls
/// while it is unreachable, and traffic returns to it when it is back. `configure` sets the
/// timeouts and keep-alives of every endpoint. Needs a Tokio runtime.
pub fn balanced_channel(
    urls: &str,
    configure: impl Fn(Endpoint) -> Endpoint,
) -> Result<Channel, tonic::transport::Error> {
    let endpoints = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(|u| Endpoint::from_shared(u.to_owned()).map(&configure))
        .collect::<Result<Vec<_>, _>>()?;
    match endpoints.as_slice() {
        [] => Endpoint::from_shared(String::new()).map(|e| e.connect_lazy()),
        [one] => Ok(one.connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_connections_do_not_use_nagle() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = Box::pin(incoming(listener));
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), incoming.next());
        assert!(client.is_ok());
        assert!(accepted.unwrap().unwrap().nodelay().unwrap());
    }

    #[tokio::test]
    async fn channels_from_one_or_several_urls() {
        assert!(balanced_channel("http://127.0.0.1:1", |e| e).is_ok());
        assert!(balanced_channel("http://127.0.0.1:1, http://127.0.0.1:2", |e| e).is_ok());
        assert!(balanced_channel("not a url", |e| e).is_err());
    }

    #[test]
    fn method_labels_come_from_the_contracts_only() {
        assert_eq!(
            method_label("/iafactory.promo.v1.PromoService/Signup"),
            "/iafactory.promo.v1.PromoService/Signup"
        );
        assert_eq!(
            method_label("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check"
        );
        assert_eq!(method_label(REFLECTION_METHODS[0]), REFLECTION_METHODS[0]);
        for bogus in ["/x.Y/Z", "/iafactory.promo.v1.PromoService/Nope", "", "/"] {
            assert_eq!(method_label(bogus), UNKNOWN_METHOD);
        }
        // Bounded by the contracts: a few dozen paths, not one per request.
        assert!((20..200).contains(&known_methods().len()));
    }

    #[test]
    fn bearer_tokens() {
        let mut md = tonic::metadata::MetadataMap::new();
        assert_eq!(bearer_token(&md), None);
        md.insert("authorization", "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer_token(&md), Some("abc"));
        md.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&md), None);
    }
}
