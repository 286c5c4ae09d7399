//! The `/metrics` HTTP endpoint of the gRPC services (gateway-rest serves its registry on its own
//! router).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::{Registry, content_type};

/// Refreshes scrape-time gauges before a render.
pub type Refresh = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// Serves `GET /metrics` (any other path: 404) on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    refresh: Option<Refresh>,
    shutdown: impl Future<Output = ()> + Send,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let registry = Arc::clone(&registry);
        let refresh = refresh.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let registry = Arc::clone(&registry);
                let refresh = refresh.clone();
                async move {
                    let accept = req
                        .headers()
                        .get(hyper::header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    let kind = content_type(accept);
                    let (status, body) = if req.uri().path() == "/metrics" {
                        if let Some(r) = refresh {
                            r().await;
                        }
                        (StatusCode::OK, registry.render())
                    } else {
                        (StatusCode::NOT_FOUND, "not found\n".to_owned())
                    };
                    let mut resp = Response::new(Full::new(Bytes::from(body)));
                    *resp.status_mut() = status;
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(kind),
                    );
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}
