//! The console's operator accounts and cost budgets over REST: an owner changes roles and
//! deactivates operators (the session ends at once, 409 for the last active owner), everyone
//! changes their own password (current one required), the cost budget is read and changed under
//! `/api/admin/forfaits` and never shown by the public package list.

use iafactory::proto::iafactory::promo::v1 as pb;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::admin::{admin, operator_cookie, operators, send};
use crate::helpers::*;

const PASSWORD: &str = "a passphrase long enough";

/// Signs in; returns (cookie pair, CSRF token).
async fn session(s: &Stack, email: &str, password: &str) -> (String, String) {
    let signed = s
        .post(
            "/api/admin/session",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{signed:?}");
    let (cookie, _) = operator_cookie(&signed);
    (
        cookie,
        signed.body["csrf_token"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_manage_operators_and_cost_budgets() {
    let s = Stack::spawn().await;
    let mut ops = operators(&s).await;
    let mut ids = Vec::new();
    for (email, role) in [
        ("owner@iafactory.dz", pb::OperatorRole::Owner),
        ("support@iafactory.dz", pb::OperatorRole::Support),
    ] {
        let o = ops
            .create_operator(admin(pb::CreateOperatorRequest {
                email: email.into(),
                display_name: email.split('@').next().unwrap().into(),
                role: role.into(),
                password: PASSWORD.into(),
            }))
            .await
            .unwrap()
            .into_inner();
        ids.push(o.id);
    }
    let (owner_id, support_id) = (ids[0].clone(), ids[1].clone());
    let (owner, csrf) = session(&s, "owner@iafactory.dz", PASSWORD).await;
    let (support, support_csrf) = session(&s, "support@iafactory.dz", PASSWORD).await;

    // Cost budgets: read by operators, changed by owners, never public.
    let no_session = s.get("/api/admin/forfaits").await;
    no_session.assert_error(401, "unauthenticated");
    let listed = send(&s, Method::GET, "/api/admin/forfaits", &support, None, None).await;
    assert_eq!(listed.status, StatusCode::OK, "{listed:?}");
    assert!(listed.body["packages"][0]["monthly_cost_budget_nano_usd"].is_null());
    let set = send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/business",
        &owner,
        Some(&csrf),
        Some(json!({"monthly_cost_budget_nano_usd": 12_500_000_000_u64})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{set:?}");
    assert_eq!(set.body["monthly_cost_budget_nano_usd"], 12_500_000_000_u64);
    assert_eq!(set.body["monthly_price_dzd"], 100_000, "other fields kept");
    let public = s.get("/api/promo/packages").await;
    assert!(!public.text.contains("budget"), "{}", public.text);
    send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/business",
        &owner,
        Some(&csrf),
        Some(json!({"monthly_cost_budget_nano_usd": 0})),
    )
    .await
    .assert_error(400, "invalid_argument");
    send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/business",
        &owner,
        Some(&csrf),
        Some(json!({"monthly_cost_budget_nano_usd": "12"})),
    )
    .await
    .assert_error(400, "invalid_argument");
    send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/business",
        &support,
        Some(&support_csrf),
        Some(json!({"monthly_cost_budget_nano_usd": null})),
    )
    .await
    .assert_error(403, "permission_denied");
    let cleared = send(
        &s,
        Method::PATCH,
        "/api/admin/forfaits/business",
        &owner,
        Some(&csrf),
        Some(json!({"monthly_cost_budget_nano_usd": null})),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::OK, "{cleared:?}");
    assert!(cleared.body["monthly_cost_budget_nano_usd"].is_null());

    // Operator accounts.
    let path = |id: &str| format!("/api/admin/operateurs/{id}");
    send(
        &s,
        Method::PATCH,
        &path(&owner_id),
        &support,
        Some(&support_csrf),
        Some(json!({"active": false})),
    )
    .await
    .assert_error(403, "permission_denied");
    send(
        &s,
        Method::PATCH,
        &path(&owner_id),
        &owner,
        Some(&csrf),
        Some(json!({"role": "support"})),
    )
    .await
    .assert_error(409, "conflict");
    send(
        &s,
        Method::PATCH,
        &path(&owner_id),
        &owner,
        Some(&csrf),
        Some(json!({"role": "support", "active": true})),
    )
    .await
    .assert_error(400, "invalid_argument");
    send(
        &s,
        Method::PATCH,
        &path(&support_id),
        &owner,
        None,
        Some(json!({"active": false})),
    )
    .await
    .assert_error(403, "csrf_failed");
    let off = send(
        &s,
        Method::PATCH,
        &path(&support_id),
        &owner,
        Some(&csrf),
        Some(json!({"active": false})),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{off:?}");
    assert_eq!(off.body["active"], false);
    send(&s, Method::GET, "/api/admin/moi", &support, None, None)
        .await
        .assert_error(401, "unauthenticated");
    let accounts = send(
        &s,
        Method::GET,
        "/api/admin/operateurs/comptes",
        &owner,
        None,
        None,
    )
    .await;
    assert_eq!(accounts.status, StatusCode::OK, "{accounts:?}");
    let states: Vec<(String, bool)> = accounts.body["operators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["operator"]["email"].as_str().unwrap().to_owned(),
                a["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("owner@iafactory.dz".to_owned(), true),
            ("support@iafactory.dz".to_owned(), false)
        ]
    );

    // Own password.
    send(
        &s,
        Method::PUT,
        "/api/admin/moi/mot-de-passe",
        &owner,
        Some(&csrf),
        Some(json!({"current_password": "not the password", "new_password": "a new passphrase here"})),
    )
    .await
    .assert_error(401, "unauthenticated");
    let changed = send(
        &s,
        Method::PUT,
        "/api/admin/moi/mot-de-passe",
        &owner,
        Some(&csrf),
        Some(json!({"current_password": PASSWORD, "new_password": "a new passphrase here"})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{changed:?}");
    assert_eq!(changed.body["sessions_ended"], 0);
    session(&s, "owner@iafactory.dz", "a new passphrase here").await;

    let log = send(&s, Method::GET, "/api/admin/journal", &owner, None, None).await;
    let actions: Vec<&str> = log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .take(4)
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "operator.password",
            "operator.deactivate",
            "package.update",
            "package.update"
        ]
    );
}
