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
    let mut config = promo_service::Config::new(db.url.clone(), ADMIN_TOKEN);
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    let handle = promo_service::start(config, listener).await.unwrap();
    let (addr, maddr) = (handle.addr, handle.metrics_addr.unwrap());
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
    handle.shutdown().await.unwrap();
    db.close().await;
}

/// Calls `path` on `addr` with an empty message (whatever the method expects).
async fn call_path(channel: tonic::transport::Channel, path: String) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path).unwrap();
    grpc.unary(tonic::Request::new(()), path, codec)
        .await
        .map(|_| ())
}

/// Time series in a scrape (lines that are not comments).
fn series(text: &str) -> usize {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    body.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

async fn bogus_paths_and_private_codes_do_not_grow_the_series(backend: Backend) {
    let db = test_db(backend).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = promo_service::Config::new(db.url.clone(), ADMIN_TOKEN);
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
    let handle = promo_service::start(config, listener).await.unwrap();
    let (addr, maddr) = (handle.addr, handle.metrics_addr.unwrap());
    let mut c = connect(addr).await;
    // A private code with a redemption: its name must not reach /metrics.
    create_code(&mut c, "SECRET-VIP", 5).await;
    c.signup(signup_req("vip@x.dz", "dev", "SECRET-VIP"))
        .await
        .unwrap();
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    for i in 0..10 {
        let _ = call_path(channel.clone(), format!("/warmup.Svc/M{i}")).await;
    }
    let before = series(&scrape(maddr, "/metrics").await);
    assert!(before > 20, "the scrape was read ({before} series)");

    for i in 0..200 {
        let status = call_path(channel.clone(), format!("/bogus{i}.Service/Method{i}"))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    }
    let text = scrape(maddr, "/metrics").await;
    assert_eq!(
        series(&text),
        before,
        "200 bogus paths added series:\n{text}"
    );
    assert!(
        text.contains("iaf_grpc_requests_total{method=\"unknown\",code=\"Unimplemented\"} 210"),
        "{text}"
    );
    assert!(!text.contains("bogus"), "{text}");
    assert!(
        !text.contains("SECRET-VIP"),
        "a private code leaks in /metrics:\n{text}"
    );
    assert!(
        text.contains("iaf_promo_places_used{code=\"LAUNCH30\"} 0"),
        "{text}"
    );
    handle.shutdown().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(
    prometheus_metrics_show_calls_places_and_revenue,
    bogus_paths_and_private_codes_do_not_grow_the_series,
);
