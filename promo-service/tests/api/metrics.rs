use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use crate::helpers::*;

async fn scrape(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

async fn prometheus_metrics_show_calls_places_and_revenue(backend: Backend) {
    let db = test_db(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, maddr) = (
        listener.local_addr().unwrap(),
        metrics.local_addr().unwrap(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(promo_service::serve_all(
        promo_service::Config::new(db.url.clone(), ADMIN_TOKEN),
        listener,
        Some(metrics),
        async move {
            let _ = stopped.await;
        },
    ));
    let mut c = connect(addr).await;
    c.signup(signup_req("m@x.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    assert_status(
        c.signup(signup_req("bad", "dev", "")).await,
        Code::InvalidArgument,
        "invalid_email",
    );

    let text = scrape(maddr, "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"));
    for expected in [
        "iaf_grpc_requests_total{method=\"/iafactory.promo.v1.PromoService/Signup\",code=\"Ok\"} 1",
        "iaf_grpc_requests_total{method=\"/iafactory.promo.v1.PromoService/Signup\",code=\"InvalidArgument\"} 1",
        "iaf_grpc_request_duration_seconds_count{method=\"/iafactory.promo.v1.PromoService/Signup\"} 2",
        "iaf_promo_places_remaining{code=\"LAUNCH30\"} 29",
        "iaf_promo_places_used{code=\"LAUNCH30\"} 1",
        "iaf_promo_customers 1",
        "iaf_promo_revenue_monthly_dzd 10050",
        "iaf_outbox_messages{status=\"pending\"} 1",
        "# TYPE iaf_grpc_request_duration_seconds histogram",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(scrape(maddr, "/other").await.starts_with("HTTP/1.1 404"));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    db.close().await;
}

crate::on_both_backends!(prometheus_metrics_show_calls_places_and_revenue);
