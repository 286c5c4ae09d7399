//! Operators use grpcurl with reflection, no proto files at hand.

use std::process::Command;

use crate::helpers::*;

fn grpcurl(args: &[&str]) -> String {
    let out = Command::new("grpcurl")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("grpcurl not found ({e}): run scripts/test-setup.sh"));
    assert!(
        out.status.success(),
        "grpcurl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_through_reflection() {
    let db = test_db(Backend::Sqlite).await;
    let app = TestApp::spawn(&db).await;
    let addr = app.addr.to_string();
    let list = tokio::task::spawn_blocking({
        let a = addr.clone();
        move || grpcurl(&["-plaintext", &a, "list"])
    })
    .await
    .unwrap();
    assert!(list.contains("iafactory.promo.v1.PromoService"), "{list}");
    assert!(list.contains("iafactory.promo.v1.Billing"), "{list}");
    assert!(list.contains("grpc.health.v1.Health"), "{list}");
    let desc = tokio::task::spawn_blocking({
        let a = addr.clone();
        move || {
            grpcurl(&[
                "-plaintext",
                &a,
                "describe",
                "iafactory.promo.v1.PromoService",
            ])
        }
    })
    .await
    .unwrap();
    assert!(desc.contains("rpc WatchRemaining"), "{desc}");
    let rem = tokio::task::spawn_blocking({
        let a = addr.clone();
        move || {
            grpcurl(&[
                "-plaintext",
                "-d",
                r#"{"code":"launch30"}"#,
                &a,
                "iafactory.promo.v1.PromoService/GetRemaining",
            ])
        }
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&rem).unwrap();
    assert_eq!(v["remaining"], 30);
    let auth = format!("authorization: Bearer {ADMIN_TOKEN}");
    let stats = tokio::task::spawn_blocking({
        let a = addr.clone();
        move || {
            grpcurl(&[
                "-plaintext",
                "-H",
                &auth,
                &a,
                "iafactory.promo.v1.PromoService/GetStats",
            ])
        }
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["launch30Remaining"], 30);
    let health = tokio::task::spawn_blocking(move || {
        grpcurl(&["-plaintext", &addr, "grpc.health.v1.Health/Check"])
    })
    .await
    .unwrap();
    assert!(health.contains("SERVING"), "{health}");
    app.stop().await.unwrap();
    db.close().await;
}

/// The README's way to make the first owner, with nothing but grpcurl and the admin token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_owner_is_made_with_grpcurl() {
    let db = test_db(Backend::Sqlite).await;
    let app = TestApp::spawn(&db).await;
    let addr = app.addr.to_string();
    let auth = format!("authorization: Bearer {ADMIN_TOKEN}");
    let made = tokio::task::spawn_blocking(move || {
        let list = grpcurl(&["-plaintext", &addr, "list"]);
        assert!(list.contains("iafactory.promo.v1.Operators"), "{list}");
        grpcurl(&[
            "-plaintext",
            "-H",
            &auth,
            "-d",
            r#"{"email":"amel@iafactory.dz","display_name":"Amel","role":"OPERATOR_ROLE_OWNER","password":"a long passphrase"}"#,
            &addr,
            "iafactory.promo.v1.Operators/CreateOperator",
        ])
    })
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&made).unwrap();
    assert_eq!(v["email"], "amel@iafactory.dz");
    assert_eq!(v["role"], "OPERATOR_ROLE_OWNER");
    assert!(!made.contains("argon2"), "{made}");
    assert_eq!(db.count("operators").await, 1);
}
