//! Connections to the gRPC backends.
//!
//! Each backend gets a fixed set of lazily connecting tonic channels made once at start: a
//! backend that is down does not stop the gateway from starting, a call to it fails within the
//! connect timeout (503 with Retry-After), and the channel reconnects by itself when the backend
//! comes back. Calls are spread round-robin over the channels (one HTTP/2 connection each), which
//! lets several cores drive the connections under load.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::HeaderMap;
use tonic::metadata::{AsciiMetadataValue, MetadataKey, MetadataMap};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::error::{ApiError, X_REQUEST_ID};
use crate::{Config, ServeError};
use iafactory::ErrorCode;

/// One backend service.
pub struct Backend {
    pub name: &'static str,
    channels: Box<[Channel]>,
    next: AtomicUsize,
    /// A connection of its own for long-lived server streams (the live counter's upstream
    /// watches), so that nothing they do at the HTTP/2 level can disturb unary calls.
    streams: Channel,
}

impl Backend {
    /// Lazily connecting channels to `url`; `timeout` bounds each unary call.
    pub fn new(
        name: &'static str,
        url: &str,
        config: &Config,
        timeout: Duration,
    ) -> Result<Backend, ServeError> {
        let bad_url = |source| ServeError::BackendUrl {
            name,
            url: url.to_owned(),
            source,
        };
        // One URL, or several replicas (comma-separated) balanced within each channel.
        let channel = || {
            iafactory::grpc::balanced_channel(url, |e| {
                e.connect_timeout(config.backend_connect_timeout)
                    .timeout(timeout)
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .keep_alive_while_idle(true)
                    .http2_adaptive_window(true)
            })
        };
        let channels = (0..config.backend_connections.max(1))
            .map(|_| channel())
            .collect::<Result<_, _>>()
            .map_err(bad_url)?;
        Ok(Backend {
            name,
            channels,
            next: AtomicUsize::new(0),
            streams: channel().map_err(bad_url)?,
        })
    }

    /// A channel for one call.
    pub fn channel(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }

    /// The channel reserved for long-lived server streams.
    pub fn stream_channel(&self) -> Channel {
        self.streams.clone()
    }

    /// The backend's overall state from `grpc.health.v1.Health/Check`, or why it is unreachable.
    pub async fn health(&self, timeout: Duration) -> Result<ServingStatus, String> {
        let mut client = HealthClient::new(self.channel());
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        req.set_timeout(timeout);
        match tokio::time::timeout(timeout, client.check(req)).await {
            Ok(Ok(resp)) => {
                Ok(ServingStatus::try_from(resp.into_inner().status)
                    .unwrap_or(ServingStatus::Unknown))
            }
            Ok(Err(status)) => Err(format!("{:?}", status.code())),
            Err(_) => Err("timeout".to_owned()),
        }
    }
}

/// Headers copied from the HTTP request into gRPC metadata, when present.
#[derive(Debug, Clone, Copy)]
pub enum Forward {
    /// `authorization` (admin token or API key).
    Authorization,
    /// `idempotency-key`.
    IdempotencyKey,
}

impl Forward {
    fn key(self) -> &'static str {
        match self {
            Forward::Authorization => "authorization",
            Forward::IdempotencyKey => "idempotency-key",
        }
    }
}

/// A gRPC request carrying the caller's request id and the listed headers.
///
/// A header that cannot travel as gRPC ASCII metadata (control characters, non-ASCII) is the
/// client's mistake: 400, never a 5xx.
pub fn request<T>(
    message: T,
    headers: &HeaderMap,
    forward: &[Forward],
) -> Result<tonic::Request<T>, ApiError> {
    // Only the wrapping depends on `T` (called for some seventy message types).
    Ok(tonic::Request::from_parts(
        metadata(headers, forward)?,
        http::Extensions::default(),
        message,
    ))
}

/// The metadata of a call: the caller's request id and the listed headers (see [`request`]).
pub(crate) fn metadata(headers: &HeaderMap, forward: &[Forward]) -> Result<MetadataMap, ApiError> {
    let mut md = MetadataMap::new();
    if let Some(id) = headers
        .get(&X_REQUEST_ID)
        .and_then(|v| AsciiMetadataValue::try_from(v.as_bytes()).ok())
    {
        md.insert("x-request-id", id);
    }
    for f in forward {
        let name = f.key();
        let mut values = headers.get_all(name).iter();
        let Some(value) = values.next() else {
            continue;
        };
        if values.next().is_some() {
            return Err(ApiError::bilingual(
                ErrorCode::InvalidArgument,
                format!("En-tête {name} répété."),
                format!("Header {name} is repeated."),
            ));
        }
        // `to_str` accepts visible ASCII only (the metadata type alone lets other bytes pass).
        let value = value
            .to_str()
            .ok()
            .and_then(|v| AsciiMetadataValue::try_from(v).ok())
            .ok_or(())
            .map_err(|()| {
                let code = match f {
                    Forward::Authorization => ErrorCode::Unauthenticated,
                    Forward::IdempotencyKey => ErrorCode::InvalidArgument,
                };
                ApiError::bilingual(
                    code,
                    format!("En-tête {name} invalide (ASCII visible attendu)."),
                    format!("Invalid {name} header (visible ASCII expected)."),
                )
            })?;
        md.insert(MetadataKey::from_static(name), value);
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn forwards_request_id_and_listed_headers_only() {
        let mut h = HeaderMap::new();
        h.insert(&X_REQUEST_ID, HeaderValue::from_static("req-1"));
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        h.insert("idempotency-key", HeaderValue::from_static("key-12345678"));
        h.insert("cookie", HeaderValue::from_static("secret=1"));
        let req = request((), &h, &[Forward::IdempotencyKey]);
        let md = req.as_ref().map(|r| r.metadata().clone()).ok();
        let get = |k: &str| {
            md.as_ref()
                .and_then(|m| m.get(k))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(get("x-request-id").as_deref(), Some("req-1"));
        assert_eq!(get("idempotency-key").as_deref(), Some("key-12345678"));
        assert_eq!(get("authorization"), None);
        assert_eq!(get("cookie"), None);
    }

    #[test]
    fn refuses_headers_that_cannot_travel() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_bytes(b"Bearer \xc3\xa9").unwrap_or(HeaderValue::from_static("x")),
        );
        let err = request((), &h, &[Forward::Authorization]).err();
        assert_eq!(err.map(|e| e.error.code), Some(ErrorCode::Unauthenticated));
        let mut h = HeaderMap::new();
        h.append("idempotency-key", HeaderValue::from_static("aaaaaaaa1"));
        h.append("idempotency-key", HeaderValue::from_static("bbbbbbbb2"));
        let err = request((), &h, &[Forward::IdempotencyKey]).err();
        assert_eq!(err.map(|e| e.error.code), Some(ErrorCode::InvalidArgument));
    }
}
