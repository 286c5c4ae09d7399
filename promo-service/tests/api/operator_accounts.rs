//! Operator account management (`OperatorAccounts`) and the packages' cost budgets: own password
//! change (current password required, other sessions end), roles changed and operators
//! deactivated by owners only (sessions end at once, no sign-in), the last active owner kept
//! even when two owners remove each other at the same instant, every change audited with the
//! operator's name.

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::operator_accounts_client::OperatorAccountsClient;
use pb::operators_client::OperatorsClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::*;
use crate::operators::{
    OWNER_PASSWORD, SUPPORT_PASSWORD, Session, audit, create_operator, sign_in, sign_in_req, spawn,
};

async fn accounts(app: &TestApp) -> OperatorAccountsClient<Channel> {
    OperatorAccountsClient::connect(format!("http://{}", app.addr))
        .await
        .unwrap()
}

async fn who(
    ops: &mut OperatorsClient<Channel>,
    s: &Session,
) -> Result<pb::OperatorIdentity, tonic::Status> {
    ops.who_am_i(s.read(pb::WhoAmIRequest {}))
        .await
        .map(|r| r.into_inner())
}

fn role_req(id: &str, role: pb::OperatorRole) -> pb::SetOperatorRoleRequest {
    pb::SetOperatorRoleRequest {
        operator_id: id.into(),
        role: role.into(),
    }
}

fn active_req(id: &str, active: bool) -> pb::SetOperatorActiveRequest {
    pb::SetOperatorActiveRequest {
        operator_id: id.into(),
        active,
    }
}

async fn operators_manage_their_accounts(backend: Backend) {
    let db = test_db(backend).await;
    let (app, mut ops, _clock) = spawn(&db).await;
    let mut acc = accounts(&app).await;
    let amel = create_operator(
        &mut ops,
        "amel@exemple.dz",
        "Amel",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    let sami = create_operator(
        &mut ops,
        "sami@exemple.dz",
        "Sami",
        pb::OperatorRole::Support,
        SUPPORT_PASSWORD,
    )
    .await;
    let amel1 = sign_in(&mut ops, "amel@exemple.dz", OWNER_PASSWORD).await;
    let amel2 = sign_in(&mut ops, "amel@exemple.dz", OWNER_PASSWORD).await;
    let sami1 = sign_in(&mut ops, "sami@exemple.dz", SUPPORT_PASSWORD).await;

    // Own password: the current one is required, the new one checked, the CSRF token too.
    let change = |current: &str, new: &str| pb::ChangeOwnPasswordRequest {
        current_password: current.into(),
        new_password: new.into(),
    };
    const NEW: &str = "a brand new passphrase";
    assert_status(
        acc.change_own_password(amel1.change(change("wrong password!!", NEW)))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        acc.change_own_password(amel1.change(change(OWNER_PASSWORD, "short")))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_status(
        acc.change_own_password(amel1.read(change(OWNER_PASSWORD, NEW)))
            .await,
        Code::PermissionDenied,
        "csrf_failed",
    );
    assert_status(
        acc.change_own_password(admin(change(OWNER_PASSWORD, NEW)))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    let r = acc
        .change_own_password(amel1.change(change(OWNER_PASSWORD, NEW)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.sessions_ended, 1);
    assert!(
        who(&mut ops, &amel1).await.is_ok(),
        "the calling session stays"
    );
    assert_eq!(
        who(&mut ops, &amel2).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_status(
        ops.sign_in(sign_in_req("amel@exemple.dz", OWNER_PASSWORD, "192.0.2.9"))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    sign_in(&mut ops, "amel@exemple.dz", NEW).await;

    // Support changes nothing.
    assert_status(
        acc.set_operator_role(sami1.change(role_req(&amel.id, pb::OperatorRole::Support)))
            .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_status(
        acc.set_operator_active(sami1.change(active_req(&amel.id, false)))
            .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    // The last active owner can be neither demoted nor deactivated.
    assert_status(
        acc.set_operator_role(amel1.change(role_req(&amel.id, pb::OperatorRole::Support)))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_status(
        acc.set_operator_active(amel1.change(active_req(&amel.id, false)))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_status(
        acc.set_operator_active(admin(active_req(&amel.id, false)))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    // Bad input.
    assert_status(
        acc.set_operator_role(amel1.change(role_req("op_nobody", pb::OperatorRole::Owner)))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        acc.set_operator_role(
            amel1.change(role_req("'; DROP TABLE operators", pb::OperatorRole::Owner)),
        )
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_status(
        acc.set_operator_role(amel1.change(pb::SetOperatorRoleRequest {
            operator_id: sami.id.clone(),
            role: 7,
        }))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );

    // Sami becomes an owner: their running session acts as one at once.
    let a = acc
        .set_operator_role(amel1.change(role_req(&sami.id, pb::OperatorRole::Owner)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.operator.unwrap().role, pb::OperatorRole::Owner as i32);
    assert_eq!(
        who(&mut ops, &sami1).await.unwrap().role,
        pb::OperatorRole::Owner as i32
    );
    // Now Amel may step down, and Sami may deactivate Amel: her session ends at once.
    acc.set_operator_role(amel1.change(role_req(&amel.id, pb::OperatorRole::Support)))
        .await
        .unwrap();
    let a = acc
        .set_operator_active(sami1.change(active_req(&amel.id, false)))
        .await
        .unwrap()
        .into_inner();
    assert!(!a.active && !a.deactivated_at.is_empty());
    assert_eq!(
        who(&mut ops, &amel1).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    assert_status(
        ops.sign_in(sign_in_req("amel@exemple.dz", NEW, "192.0.2.10"))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    let list = acc
        .list_operator_accounts(sami1.read(pb::ListOperatorAccountsRequest {}))
        .await
        .unwrap()
        .into_inner()
        .operators;
    let states: Vec<(String, bool)> = list
        .iter()
        .map(|a| (a.operator.clone().unwrap().email, a.active))
        .collect();
    assert_eq!(
        states,
        vec![
            ("amel@exemple.dz".into(), false),
            ("sami@exemple.dz".into(), true)
        ]
    );
    // Reactivated: she signs in again with her new password.
    acc.set_operator_active(sami1.change(active_req(&amel.id, true)))
        .await
        .unwrap();
    sign_in(&mut ops, "amel@exemple.dz", NEW).await;

    // Every change is in the audit log with its author's name; no password hash anywhere.
    let entries = audit(&mut ops).await;
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .filter(|e| e.action.starts_with("operator.") && e.action != "operator.create")
        .map(|e| (e.actor.clone(), e.action.clone(), e.target.clone()))
        .rev()
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "Amel <amel@exemple.dz>".into(),
                "operator.password".into(),
                "amel@exemple.dz".into()
            ),
            (
                "Amel <amel@exemple.dz>".into(),
                "operator.role".into(),
                "sami@exemple.dz".into()
            ),
            (
                "Amel <amel@exemple.dz>".into(),
                "operator.role".into(),
                "amel@exemple.dz".into()
            ),
            (
                "Sami <sami@exemple.dz>".into(),
                "operator.deactivate".into(),
                "amel@exemple.dz".into()
            ),
            (
                "Sami <sami@exemple.dz>".into(),
                "operator.reactivate".into(),
                "amel@exemple.dz".into()
            ),
        ]
    );
    for e in &entries {
        assert!(
            !e.before_json.contains("argon2") && !e.after_json.contains("argon2"),
            "{e:?}"
        );
    }
    let demoted = entries
        .iter()
        .find(|e| e.action == "operator.role" && e.target == "amel@exemple.dz")
        .unwrap();
    assert!(
        demoted.before_json.contains("\"owner\"") && demoted.after_json.contains("\"support\"")
    );
    app.stop().await.unwrap();
}

/// Two owners deactivating each other at the same instant, round after round: exactly one of
/// the two changes wins each time, and an active owner always remains.
async fn two_owners_cannot_remove_each_other_at_once(backend: Backend) {
    let db = test_db(backend).await;
    let (app, mut ops, _clock) = spawn(&db).await;
    let a = create_operator(
        &mut ops,
        "a@exemple.dz",
        "A",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    let b = create_operator(
        &mut ops,
        "b@exemple.dz",
        "B",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    let acc = accounts(&app).await;
    for round in 0..8 {
        let sa = sign_in(&mut ops, "a@exemple.dz", OWNER_PASSWORD).await;
        let sb = sign_in(&mut ops, "b@exemple.dz", OWNER_PASSWORD).await;
        let (mut ca, mut cb) = (acc.clone(), acc.clone());
        let (ra, rb) = if round % 2 == 0 {
            let (ida, idb) = (a.id.clone(), b.id.clone());
            tokio::join!(
                async move {
                    ca.set_operator_active(sa.change(active_req(&idb, false)))
                        .await
                },
                async move {
                    cb.set_operator_active(sb.change(active_req(&ida, false)))
                        .await
                },
            )
        } else {
            let (ida, idb) = (a.id.clone(), b.id.clone());
            tokio::join!(
                async move {
                    ca.set_operator_role(sa.change(role_req(&idb, pb::OperatorRole::Support)))
                        .await
                },
                async move {
                    cb.set_operator_role(sb.change(role_req(&ida, pb::OperatorRole::Support)))
                        .await
                },
            )
        };
        let won = [ra.is_ok(), rb.is_ok()];
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "round {round}: {ra:?} / {rb:?}"
        );
        for r in [ra, rb].into_iter().filter_map(Result::err) {
            // The loser is refused by the rule, finds its own session ended (deactivated), or
            // is no longer an owner (demoted) by the time its call is checked.
            assert!(
                matches!(
                    r.code(),
                    Code::FailedPrecondition | Code::Unauthenticated | Code::PermissionDenied
                ),
                "{r:?}"
            );
        }
        let mut acc2 = acc.clone();
        let owners = acc2
            .list_operator_accounts(admin(pb::ListOperatorAccountsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .operators
            .into_iter()
            .filter(|o| {
                o.active && o.operator.as_ref().unwrap().role == pb::OperatorRole::Owner as i32
            })
            .count();
        assert_eq!(owners, 1, "round {round}");
        // Both owners and active again for the next round (admin token).
        for id in [&a.id, &b.id] {
            acc2.set_operator_active(admin(active_req(id, true)))
                .await
                .unwrap();
            acc2.set_operator_role(admin(role_req(id, pb::OperatorRole::Owner)))
                .await
                .unwrap();
        }
    }
    app.stop().await.unwrap();
}

/// The cost budget through the console's RPC: set, kept by other changes, removed, refused when
/// malformed; carried with the key (AuthenticateKey) for llm-gateway; audited.
async fn package_cost_budgets_are_set_and_cleared(backend: Backend) {
    let db = test_db(backend).await;
    let (app, mut ops, _clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let signup = c
        .signup(signup_req("budget@exemple.dz", "business", ""))
        .await
        .unwrap()
        .into_inner();
    let update = |budget: Option<u64>, clear: bool| pb::UpdatePackageRequest {
        id: "business".into(),
        monthly_cost_budget_nano_usd: budget,
        clear_monthly_cost_budget: clear,
        ..Default::default()
    };
    // As seeded: no budget, and a model list for all but Premium.
    let listed = c
        .list_packages(pb::ListPackagesRequest {})
        .await
        .unwrap()
        .into_inner()
        .packages;
    assert!(
        listed
            .iter()
            .all(|p| p.monthly_cost_budget_nano_usd.is_none())
    );
    for p in &listed {
        assert_eq!(p.allowed_models.is_empty(), p.id == "premium", "{p:?}");
    }
    let starter = listed.iter().find(|p| p.id == "starter").unwrap();
    assert!(starter.allowed_models.contains(&"gpt-4o-mini".to_owned()));
    assert!(!starter.allowed_models.contains(&"gpt-4o".to_owned()));

    let p = ops
        .update_package(admin(update(Some(25_000_000_000), false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.monthly_cost_budget_nano_usd, Some(25_000_000_000));
    let p = ops
        .update_package(admin(pb::UpdatePackageRequest {
            id: "business".into(),
            requests_per_minute: Some(120),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.monthly_cost_budget_nano_usd, Some(25_000_000_000), "kept");
    let key = c
        .authenticate_key(internal(pb::AuthenticateKeyRequest {
            api_key: signup.api_key.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        key.package.unwrap().monthly_cost_budget_nano_usd,
        Some(25_000_000_000)
    );
    for bad in [
        update(Some(0), false),
        update(Some(5), true),
        update(Some(u64::MAX), false),
    ] {
        assert_status(
            ops.update_package(admin(bad)).await,
            Code::InvalidArgument,
            "invalid_argument",
        );
    }
    let p = ops
        .update_package(admin(update(None, true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p.monthly_cost_budget_nano_usd, None);
    let budgets: Vec<(String, String)> = audit(&mut ops)
        .await
        .into_iter()
        .filter(|e| e.action == "package.update")
        .map(|e| (e.before_json, e.after_json))
        .collect();
    assert_eq!(budgets.len(), 3);
    assert!(
        budgets[0]
            .0
            .contains("\"monthly_cost_budget_nano_usd\":25000000000")
    );
    assert!(
        budgets[0]
            .1
            .contains("\"monthly_cost_budget_nano_usd\":null")
    );
    app.stop().await.unwrap();
}

crate::on_both_backends!(
    operators_manage_their_accounts,
    two_owners_cannot_remove_each_other_at_once,
    package_cost_budgets_are_set_and_cleared,
);
