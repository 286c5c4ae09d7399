use futures::future::join_all;
use iafactory::proto::iafactory::promo::v1 as pb;
use tonic::{Code, Request};

use crate::helpers::*;

fn keyed(req: pb::SignupRequest, key: &str) -> Request<pb::SignupRequest> {
    let mut r = Request::new(req);
    r.metadata_mut()
        .insert("idempotency-key", key.parse().unwrap());
    r
}

async fn same_key_same_body_replays_the_first_answer(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    let key = uuid::Uuid::new_v4().to_string();

    let first = c
        .signup(keyed(signup_req("idem@x.dz", "dev", "LAUNCH30"), &key))
        .await
        .unwrap()
        .into_inner();
    // Same body modulo e-mail normalisation and code case.
    let again = c
        .signup(keyed(signup_req(" IDEM@x.dz", "dev", "launch30"), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first, again,
        "a retry must return the first answer, API key included"
    );
    assert_eq!(db.count("customers").await, 1);
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 29);

    // The stored answer holds the key only sealed: the clear key appears nowhere in the table.
    let stored = db
        .query_strings("SELECT response FROM idempotency_keys")
        .await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(&first.api_key) && !stored[0].contains("iaf_"));

    // Same key, other body: refused, nothing written.
    assert_status(
        c.signup(keyed(signup_req("other@x.dz", "dev", "LAUNCH30"), &key))
            .await,
        Code::InvalidArgument,
        "idempotency_key_reused",
    );
    assert_status(
        c.signup(keyed(signup_req("idem@x.dz", "starter", "LAUNCH30"), &key))
            .await,
        Code::InvalidArgument,
        "idempotency_key_reused",
    );
    assert_eq!(db.count("customers").await, 1);

    // A malformed key is refused before anything runs.
    assert_status(
        c.signup(keyed(signup_req("short@x.dz", "dev", ""), "abc"))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    // A failed signup stores no idempotency record, so a corrected retry with that key... still
    // must carry the same body; a different e-mail with a fresh key works.
    let k2 = uuid::Uuid::new_v4().to_string();
    assert_status(
        c.signup(keyed(signup_req("idem@x.dz", "dev", ""), &k2))
            .await,
        Code::AlreadyExists,
        "email_taken",
    );
    assert_eq!(db.count("idempotency_keys").await, 1);
    app.stop().await.unwrap();
    db.close().await;
}

async fn concurrent_retries_with_one_key_sign_up_once(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let key = uuid::Uuid::new_v4().to_string();
    let calls = (0..20).map(|_| {
        let mut c = app.client.clone();
        let key = key.clone();
        tokio::spawn(async move {
            c.signup(keyed(
                signup_req("burst@x.dz", "business", "LAUNCH30"),
                &key,
            ))
            .await
        })
    });
    let answers: Vec<_> = join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let oks: Vec<_> = answers
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|r| r.get_ref().clone())
        .collect();
    // Each call either replays the one answer or is told the key is busy: never a second signup.
    assert!(!oks.is_empty());
    assert!(oks.iter().all(|a| a == &oks[0]));
    for r in &answers {
        if let Err(s) = r {
            assert_eq!(error_code(s), "conflict", "{s:?}");
        }
    }
    assert_eq!(db.count("customers").await, 1);
    let mut c = app.client.clone();
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 29);
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(
    same_key_same_body_replays_the_first_answer,
    concurrent_retries_with_one_key_sign_up_once
);
