//! Hundreds of concurrent signups through the REST edge for 30 places: exactly 30 granted, every
//! other one a 409 `promo_exhausted`, no 5xx — on SQLite and on PostgreSQL.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn signups_race_for_the_last_places(s: Stack) {
    let s = Arc::new(s);
    let n = 300;
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let a = s.signup(&format!("race{i}@x.dz"), "dev", "LAUNCH30").await;
            (a.status, a.error_code().to_owned())
        }));
    }
    let mut granted = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::CREATED, _) => granted += 1,
            (StatusCode::CONFLICT, code) if code == "promo_exhausted" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((granted, refused), (30, n - 30));
    let st = s.stats().await;
    assert_eq!(st["launch30_used"], 30);
    assert_eq!(st["total_signups"], 30);
    let r = s.get("/api/promo/LAUNCH30/remaining").await;
    assert_eq!(
        r.body,
        json!({"code": "LAUNCH30", "remaining": 0, "total": 30, "percent_filled": 100.0, "unlimited": false})
    );
    let v = s
        .post(
            "/api/promo/validate",
            json!({"code": "LAUNCH30", "package": "dev"}),
        )
        .await;
    assert_eq!(v.body["reason"], "exhausted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signups_sqlite() {
    signups_race_for_the_last_places(Stack::spawn().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signups_postgres() {
    let s = Stack::spawn_postgres().await;
    assert!(s.promo.is_postgres());
    signups_race_for_the_last_places(s).await;
}
