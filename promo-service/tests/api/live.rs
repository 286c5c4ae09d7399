use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::helpers::*;

async fn watch_remaining_pushes_every_change(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    let mut stream = c
        .watch_remaining(pb::GetRemainingRequest {
            code: "launch30".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        (first.code.as_str(), first.remaining, first.total),
        ("LAUNCH30", 30, 30)
    );
    for (i, expected) in [29u32, 28].into_iter().enumerate() {
        c.signup(signup_req(&format!("w{i}@x.dz"), "dev", "LAUNCH30"))
            .await
            .unwrap();
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("no update pushed")
            .unwrap()
            .unwrap();
        assert_eq!(msg.remaining, expected);
    }
    // A signup without the code changes nothing and pushes nothing.
    c.signup(signup_req("nocode@x.dz", "dev", ""))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(600), stream.next())
            .await
            .is_err()
    );
    assert_status(
        c.watch_remaining(pb::GetRemainingRequest {
            code: "GHOST".into(),
        })
        .await
        .map(|_| ()),
        Code::NotFound,
        "promo_unknown",
    );
    // Shutdown ends open streams instead of hanging.
    app.stop().await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("stream kept the server alive");
    assert!(end.is_none() || end.unwrap().is_err());
    db.close().await;
}

/// A signup on one replica reaches a watcher connected to another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_see_signups_made_on_other_replicas() {
    let db = test_db(Backend::Postgres).await;
    let a = TestApp::spawn(&db).await;
    let b = TestApp::spawn(&db).await;
    let mut ca = a.client.clone();
    let mut stream = ca
        .watch_remaining(pb::GetRemainingRequest {
            code: "LAUNCH30".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stream.next().await.unwrap().unwrap().remaining, 30);
    let mut cb = b.client.clone();
    cb.signup(signup_req("far@x.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("other replica's signup not seen")
        .unwrap()
        .unwrap();
    assert_eq!(msg.remaining, 29);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.close().await;
}

/// The status of a places-left read, reduced to what a caller can observe.
fn observed<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (tonic::Code, String, String) {
    let s = r.expect_err("a refusal");
    (s.code(), error_code(&s), s.message().to_owned())
}

async fn inactive_private_codes_answer_like_unknown_ones(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    create_code(&mut c, "VIP-ONLY", 5).await;
    assert_eq!(remaining(&mut c, "vip-only").await, 5, "active: visible");
    c.update_code(admin(pb::UpdateCodeRequest {
        code: "VIP-ONLY".into(),
        active: Some(false),
        ..Default::default()
    }))
    .await
    .unwrap();
    c.update_code(admin(pb::UpdateCodeRequest {
        code: "LAUNCH30".into(),
        active: Some(false),
        ..Default::default()
    }))
    .await
    .unwrap();
    let req = |code: &str| pb::GetRemainingRequest { code: code.into() };
    let unknown = observed(c.get_remaining(req("NO-SUCH-CODE")).await);
    assert_eq!(unknown.1, "promo_unknown");
    // Through the read cache and straight after its expiry: the same answer.
    for _ in 0..2 {
        assert_eq!(observed(c.get_remaining(req("VIP-ONLY")).await), unknown);
        assert_eq!(observed(c.watch_remaining(req("vip-only")).await), unknown);
        assert_eq!(
            observed(c.watch_remaining(req("NO-SUCH-CODE")).await),
            unknown
        );
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    // The launch code is public: its counter stays readable when it is switched off.
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 30);
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(
    watch_remaining_pushes_every_change,
    inactive_private_codes_answer_like_unknown_ones,
);
