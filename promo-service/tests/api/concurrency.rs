use std::collections::HashMap;

use futures::future::join_all;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use tonic::transport::Channel;

use crate::helpers::*;

/// Fires `n` signups with distinct e-mails at once, round-robin over `clients`; tallies outcomes.
async fn storm(
    clients: &[PromoServiceClient<Channel>],
    n: usize,
    code: &str,
) -> HashMap<String, usize> {
    let calls = (0..n).map(|i| {
        let mut c = clients[i % clients.len()].clone();
        let req = signup_req(
            &format!("storm{i}@race.dz"),
            ["starter", "dev", "business", "premium"][i % 4],
            code,
        );
        tokio::spawn(async move {
            match c.signup(req).await {
                Ok(_) => "ok".to_owned(),
                Err(s) => error_code(&s),
            }
        })
    });
    let mut tally = HashMap::new();
    for outcome in join_all(calls).await {
        *tally.entry(outcome.unwrap()).or_insert(0) += 1;
    }
    tally
}

async fn exactly_30_of_300_concurrent_signups(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    create_code(&mut c, "RACE30", 30).await;
    // Several connections, as from several browsers through the REST shim.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(connect(app.addr).await);
    }
    let tally = storm(&clients, 300, "race30").await;
    assert_eq!(tally.get("ok"), Some(&30), "{tally:?}");
    assert_eq!(tally.get("promo_exhausted"), Some(&270), "{tally:?}");
    assert_eq!(remaining(&mut c, "RACE30").await, 0);
    assert_eq!(
        db.count("customers").await,
        30,
        "refused signups left customer rows"
    );
    assert_eq!(db.count("signups").await, 30);
    assert_eq!(db.count("api_keys").await, 30);
    assert_eq!(db.count("redemptions").await, 30);
    assert_eq!(
        db.count("outbox").await,
        30,
        "e-mails must exist only for committed signups"
    );
    let code = c
        .list_codes(admin(pb::ListCodesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .codes;
    assert_eq!(
        code.iter().find(|k| k.code == "RACE30").map(|k| k.used),
        Some(30)
    );
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(exactly_30_of_300_concurrent_signups);

/// Two replicas on one PostgreSQL, requests split between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_never_oversell() {
    let db = test_db(Backend::Postgres).await;
    let a = TestApp::spawn(&db).await;
    let b = TestApp::spawn(&db).await;
    let mut c = a.client.clone();
    create_code(&mut c, "TWIN30", 30).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(a.addr).await);
        clients.push(connect(b.addr).await);
    }
    let tally = storm(&clients, 300, "TWIN30").await;
    assert_eq!(tally.get("ok"), Some(&30), "{tally:?}");
    assert_eq!(tally.get("promo_exhausted"), Some(&270), "{tally:?}");
    assert_eq!(remaining(&mut c, "TWIN30").await, 0);
    let mut cb = b.client.clone();
    assert_eq!(remaining(&mut cb, "TWIN30").await, 0);
    assert_eq!(db.count("customers").await, 30);
    assert_eq!(db.count("redemptions").await, 30);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.close().await;
}
