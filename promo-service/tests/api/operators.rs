//! The operator console's RPCs (`Operators`): the first owner made with the admin token,
//! sign-in (one answer for a wrong e-mail or password, a failed-attempt budget), roles enforced
//! on every RPC, the audit log written with every admin change (also the admin token's), the
//! dashboard's figures on days reached by moving the manual clock, customers and their CSV.

use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::operators_client::OperatorsClient;
use promo_service::clock::Clock;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::helpers::*;

const DAY: i64 = 24 * 3_600_000;
pub(crate) const OWNER_PASSWORD: &str = "owner passphrase 2026";
pub(crate) const SUPPORT_PASSWORD: &str = "support passphrase 2026";

/// 2026-06-10T12:00:00Z: LAUNCH30 is valid, a whole month around.
const NOW: i64 = 1_781_092_800_000;

pub(crate) async fn spawn(db: &TestDb) -> (TestApp, OperatorsClient<Channel>, Clock) {
    let clock = Clock::manual(NOW);
    let c = clock.clone();
    let app = TestApp::spawn_with(db, move |config| {
        config.clock = c;
        config.account_jobs_interval = Duration::from_millis(50);
    })
    .await;
    let ops = OperatorsClient::connect(format!("http://{}", app.addr))
        .await
        .unwrap();
    (app, ops, clock)
}

/// A signed-in operator: the session token and its CSRF token.
pub(crate) struct Session {
    pub(crate) token: String,
    pub(crate) csrf: String,
}

impl Session {
    /// A read in this session.
    pub(crate) fn read<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert("x-iaf-operator-session", self.token.parse().unwrap());
        r
    }

    /// A change in this session (with the CSRF token).
    pub(crate) fn change<T>(&self, msg: T) -> Request<T> {
        let mut r = self.read(msg);
        r.metadata_mut()
            .insert("x-iaf-csrf", self.csrf.parse().unwrap());
        r
    }
}

pub(crate) async fn create_operator(
    ops: &mut OperatorsClient<Channel>,
    email: &str,
    name: &str,
    role: pb::OperatorRole,
    password: &str,
) -> pb::Operator {
    ops.create_operator(admin(pb::CreateOperatorRequest {
        email: email.into(),
        display_name: name.into(),
        role: role.into(),
        password: password.into(),
    }))
    .await
    .unwrap()
    .into_inner()
}

pub(crate) fn sign_in_req(
    email: &str,
    password: &str,
    ip: &str,
) -> Request<pb::OperatorSignInRequest> {
    let mut r = internal(pb::OperatorSignInRequest {
        email: email.into(),
        password: password.into(),
    });
    r.metadata_mut()
        .insert("x-iaf-client-ip", ip.parse().unwrap());
    r
}

pub(crate) async fn sign_in(
    ops: &mut OperatorsClient<Channel>,
    email: &str,
    password: &str,
) -> Session {
    let s = ops
        .sign_in(sign_in_req(email, password, "192.0.2.1"))
        .await
        .unwrap()
        .into_inner();
    Session {
        token: s.session_token,
        csrf: s.csrf_token,
    }
}

pub(crate) async fn audit(ops: &mut OperatorsClient<Channel>) -> Vec<pb::AuditEntry> {
    ops.list_audit(admin(pb::ListAuditRequest {
        page_size: 500,
        page_token: String::new(),
    }))
    .await
    .unwrap()
    .into_inner()
    .entries
}

async fn operators_sign_in_with_roles(backend: Backend) {
    let db = test_db(backend).await;
    let (_app, mut ops, _clock) = spawn(&db).await;

    // The first owner exists only through the admin token; nobody signs in before.
    assert_status(
        ops.create_operator(Request::new(pb::CreateOperatorRequest {
            email: "x@exemple.dz".into(),
            display_name: "X".into(),
            role: pb::OperatorRole::Owner.into(),
            password: OWNER_PASSWORD.into(),
        }))
        .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    let owner = create_operator(
        &mut ops,
        " Amel@Exemple.DZ ",
        "Amel",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    assert_eq!(owner.email, "amel@exemple.dz");
    // Bad input: a short password, no role, a taken e-mail; nothing written.
    for (email, role, password) in [
        ("s@exemple.dz", pb::OperatorRole::Support, "short"),
        (
            "s@exemple.dz",
            pb::OperatorRole::Unspecified,
            SUPPORT_PASSWORD,
        ),
        ("not-an-email", pb::OperatorRole::Support, SUPPORT_PASSWORD),
    ] {
        let r = ops
            .create_operator(admin(pb::CreateOperatorRequest {
                email: email.into(),
                display_name: "S".into(),
                role: role.into(),
                password: password.into(),
            }))
            .await;
        assert_eq!(r.unwrap_err().code(), Code::InvalidArgument);
    }
    assert_status(
        ops.create_operator(admin(pb::CreateOperatorRequest {
            email: "amel@exemple.dz".into(),
            display_name: "Autre".into(),
            role: pb::OperatorRole::Support.into(),
            password: SUPPORT_PASSWORD.into(),
        }))
        .await,
        Code::FailedPrecondition,
        "conflict",
    );
    // No hash leaves the service; the one row of the operators table is argon2id.
    assert_eq!(db.count("operators").await, 1);
    let hash = db
        .query_strings("SELECT password_hash FROM operators")
        .await
        .remove(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(OWNER_PASSWORD));

    // Sign-in needs the internal token (gateway-rest's).
    assert_status(
        ops.sign_in(Request::new(pb::OperatorSignInRequest {
            email: "amel@exemple.dz".into(),
            password: OWNER_PASSWORD.into(),
        }))
        .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    let amel = sign_in(&mut ops, "AMEL@exemple.dz", OWNER_PASSWORD).await;
    let me = ops
        .who_am_i(amel.read(pb::WhoAmIRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.role(), pb::OperatorRole::Owner);
    assert_eq!(me.operator.unwrap().display_name, "Amel");
    assert_eq!(me.csrf_token, amel.csrf);

    // The owner makes a support operator in the session (CSRF required).
    let support_req = || pb::CreateOperatorRequest {
        email: "sami@exemple.dz".into(),
        display_name: "Sami".into(),
        role: pb::OperatorRole::Support.into(),
        password: SUPPORT_PASSWORD.into(),
    };
    assert_status(
        ops.create_operator(amel.read(support_req())).await,
        Code::PermissionDenied,
        "csrf_failed",
    );
    ops.create_operator(amel.change(support_req()))
        .await
        .unwrap();
    let sami = sign_in(&mut ops, "sami@exemple.dz", SUPPORT_PASSWORD).await;

    // Support reads everything a console shows...
    ops.get_dashboard(sami.read(pb::GetDashboardRequest { days: 7 }))
        .await
        .unwrap();
    ops.list_customers(sami.read(pb::ListCustomersRequest::default()))
        .await
        .unwrap();
    ops.list_audit(sami.read(pb::ListAuditRequest::default()))
        .await
        .unwrap();
    ops.list_codes(sami.read(pb::ListCodesRequest {}))
        .await
        .unwrap();
    // ...and changes nothing, exports nothing.
    assert_status(
        ops.export_customers(sami.read(pb::ListCustomersRequest::default()))
            .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_status(
        ops.update_package(sami.change(pb::UpdatePackageRequest {
            id: "dev".into(),
            monthly_price_dzd: Some(1),
            ..Default::default()
        }))
        .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_status(
        ops.update_code(sami.change(pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            active: Some(false),
            ..Default::default()
        }))
        .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_status(
        ops.add_spend(sami.change(pb::AddSpendRequest {
            day: "2026-06-01".into(),
            channel: "radio".into(),
            amount_dzd: 1000,
        }))
        .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_status(
        ops.create_operator(sami.change(pb::CreateOperatorRequest {
            email: "evil@exemple.dz".into(),
            display_name: "Evil".into(),
            role: pb::OperatorRole::Owner.into(),
            password: OWNER_PASSWORD.into(),
        }))
        .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_eq!(db.count("operators").await, 2);

    // Signed out: the session no longer opens anything.
    ops.sign_out(sami.change(pb::OperatorSignOutRequest {}))
        .await
        .unwrap();
    assert_status(
        ops.get_dashboard(sami.read(pb::GetDashboardRequest::default()))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    // A made-up session, a missing one.
    let fake = Session {
        token: "A".repeat(43),
        csrf: String::new(),
    };
    assert_status(
        ops.list_customers(fake.read(pb::ListCustomersRequest::default()))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        ops.list_customers(Request::new(pb::ListCustomersRequest::default()))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
}

async fn failed_sign_ins_tell_nothing_and_are_budgeted(backend: Backend) {
    let db = test_db(backend).await;
    let (_app, mut ops, clock) = spawn(&db).await;
    create_operator(
        &mut ops,
        "amel@exemple.dz",
        "Amel",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    // A wrong password and an unknown e-mail: the same code and the same message.
    let wrong = ops
        .sign_in(sign_in_req(
            "amel@exemple.dz",
            "wrong password!!",
            "192.0.2.7",
        ))
        .await
        .unwrap_err();
    let unknown = ops
        .sign_in(sign_in_req(
            "nobody@exemple.dz",
            OWNER_PASSWORD,
            "192.0.2.7",
        ))
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        (wrong.code(), wrong.message()),
        (unknown.code(), unknown.message())
    );
    // Four more failures on the e-mail (from other IPs) spend its budget of five: then even the
    // right password is refused, with a wait, until the window has passed.
    for i in 0..4 {
        let e = ops
            .sign_in(sign_in_req(
                "amel@exemple.dz",
                "wrong password!!",
                &format!("198.51.100.{i}"),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
    }
    let locked = ops
        .sign_in(sign_in_req(
            "amel@exemple.dz",
            OWNER_PASSWORD,
            "203.0.113.9",
        ))
        .await
        .unwrap_err();
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(error_code(&locked), "rate_limited");
    assert!(locked.metadata().get("retry-after").is_some() || locked.message().contains(" s"));
    clock.advance(Duration::from_secs(3601));
    sign_in(&mut ops, "amel@exemple.dz", OWNER_PASSWORD).await;
    // A burst of 40 concurrent sign-ins (hashing work queued, not run all at once): every one
    // answered, none a server error.
    let mut burst = Vec::new();
    for i in 0..40 {
        let mut ops = ops.clone();
        burst.push(tokio::spawn(async move {
            ops.sign_in(sign_in_req(
                &format!("burst{i}@exemple.dz"),
                "whatever password",
                &format!("203.0.113.{i}"),
            ))
            .await
        }));
    }
    for t in burst {
        assert_eq!(t.await.unwrap().unwrap_err().code(), Code::Unauthenticated);
    }
    // One IP trying many e-mails is stopped too (20 failures per hour).
    for i in 0..20 {
        let e = ops
            .sign_in(sign_in_req(
                &format!("guess{i}@exemple.dz"),
                "whatever password",
                "192.0.2.99",
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "attempt {i}");
    }
    let e = ops
        .sign_in(sign_in_req("amel@exemple.dz", OWNER_PASSWORD, "192.0.2.99"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
}

async fn every_admin_change_is_audited_with_its_author(backend: Backend) {
    let db = test_db(backend).await;
    let (app, mut ops, _clock) = spawn(&db).await;
    let mut c = app.client.clone();
    create_operator(
        &mut ops,
        "amel@exemple.dz",
        "Amel",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    let amel = sign_in(&mut ops, "amel@exemple.dz", OWNER_PASSWORD).await;
    let customer = c
        .signup(signup_req("client@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();

    // The admin token's RPCs.
    create_code(&mut c, "SPRING", 10).await;
    c.update_code(admin(pb::UpdateCodeRequest {
        code: "spring".into(),
        discounts: [("premium".to_owned(), 40)].into_iter().collect(),
        ..Default::default()
    }))
    .await
    .unwrap();
    c.set_account_suspended(admin(pb::SetAccountSuspendedRequest {
        user_id: customer.user_id.clone(),
        suspended: true,
    }))
    .await
    .unwrap();
    // Already suspended: nothing changes, nothing is written.
    c.set_account_suspended(admin(pb::SetAccountSuspendedRequest {
        user_id: customer.user_id.clone(),
        suspended: true,
    }))
    .await
    .unwrap();
    // The operator's, in the session.
    let code = ops
        .update_code(amel.change(pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            discounts: [("premium".to_owned(), 40)].into_iter().collect(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    // The merge kept the other packages' discounts.
    assert_eq!(code.discounts.len(), 4);
    assert_eq!(code.discounts["dev"], 33);
    assert_eq!(code.discounts["premium"], 40);
    let pkg = ops
        .update_package(amel.change(pb::UpdatePackageRequest {
            id: "starter".into(),
            monthly_price_dzd: Some(12_000),
            set_allowed_models: true,
            allowed_models: vec!["gpt-4o-mini".into(), "llama-3.1-8b-instant".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pkg.monthly_price_dzd, 12_000);
    assert_eq!(
        pkg.tokens_per_month, 1_000_000,
        "an absent field keeps its value"
    );
    // The public list shows the new price at once (the read cache was dropped).
    let listed = c
        .list_packages(pb::ListPackagesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.packages[0].monthly_price_dzd, 12_000);
    assert_eq!(listed.packages[0].allowed_models.len(), 2);
    let detail = ops
        .get_customer(amel.read(pb::GetCustomerRequest {
            user_id: customer.user_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let key_id = detail.keys[0].id.clone();
    ops.revoke_customer_key(amel.change(pb::RevokeCustomerKeyRequest {
        user_id: customer.user_id.clone(),
        key_id: key_id.clone(),
    }))
    .await
    .unwrap();
    ops.set_customer_suspended(amel.change(pb::SetAccountSuspendedRequest {
        user_id: customer.user_id.clone(),
        suspended: false,
    }))
    .await
    .unwrap();
    ops.add_spend(amel.change(pb::AddSpendRequest {
        day: "2026-06-01".into(),
        channel: "facebook".into(),
        amount_dzd: 30_000,
    }))
    .await
    .unwrap();
    // Refused changes write nothing: a limit under the places used, an unknown package.
    let before = db.count("audit_log").await;
    assert!(
        ops.update_code(amel.change(pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            discounts: [("nope".to_owned(), 10)].into_iter().collect(),
            ..Default::default()
        }))
        .await
        .is_err()
    );
    assert_status(
        ops.update_package(amel.change(pb::UpdatePackageRequest {
            id: "nope".into(),
            monthly_price_dzd: Some(1),
            ..Default::default()
        }))
        .await,
        Code::InvalidArgument,
        "unknown_package",
    );
    assert_eq!(db.count("audit_log").await, before);

    let log = audit(&mut ops).await;
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.actor.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    let amel_label = "Amel <amel@exemple.dz>";
    assert_eq!(
        seen,
        vec![
            ("admin-token", "operator.create", "amel@exemple.dz"),
            ("admin-token", "code.create", "SPRING"),
            ("admin-token", "code.update", "SPRING"),
            ("admin-token", "customer.suspend", customer.user_id.as_str()),
            (amel_label, "code.update", "LAUNCH30"),
            (amel_label, "package.update", "starter"),
            (amel_label, "key.revoke", key_id.as_str()),
            (amel_label, "customer.resume", customer.user_id.as_str()),
            (amel_label, "spend.add", log[0].target.as_str()),
        ]
    );
    // Before and after are the states, as JSON.
    let launch = log.iter().find(|e| e.target == "LAUNCH30").unwrap();
    let b: serde_json::Value = serde_json::from_str(&launch.before_json).unwrap();
    let a: serde_json::Value = serde_json::from_str(&launch.after_json).unwrap();
    assert_eq!(b["discounts"]["premium"], 30);
    assert_eq!(a["discounts"]["premium"], 40);
    assert_eq!(a["discounts"]["dev"], 33);
    assert!(!log.iter().any(|e| e.before_json.contains("argon2")));
    // Pages: newest first, a token to the next.
    let first = ops
        .list_audit(admin(pb::ListAuditRequest {
            page_size: 4,
            page_token: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 4);
    let second = ops
        .list_audit(admin(pb::ListAuditRequest {
            page_size: 10,
            page_token: first.next_page_token,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.entries.len(), 5);
    assert_eq!(second.next_page_token, "");
}

async fn the_dashboard_counts_days_funnel_spend_and_mrr(backend: Backend) {
    let db = test_db(backend).await;
    let (app, mut ops, clock) = spawn(&db).await;
    let mut c = app.client.clone();
    // Signups on three days (the clock moves between them): 2 on day -2, 0 on day -1, 1 today.
    clock.set(NOW - 2 * DAY);
    for e in ["a@exemple.dz", "b@exemple.dz"] {
        c.signup(signup_req(e, "dev", "LAUNCH30")).await.unwrap();
    }
    clock.set(NOW);
    c.signup(signup_req("c@exemple.dz", "premium", ""))
        .await
        .unwrap();
    // Page events: only the three names, only with the internal token.
    for (event, n) in [("landing_view", 10), ("cta_click", 4), ("code_check", 3)] {
        for _ in 0..n {
            ops.record_event(internal(pb::RecordEventRequest {
                event: event.into(),
            }))
            .await
            .unwrap();
        }
    }
    assert_status(
        ops.record_event(internal(pb::RecordEventRequest {
            event: "signup".into(),
        }))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_status(
        ops.record_event(Request::new(pb::RecordEventRequest {
            event: "landing_view".into(),
        }))
        .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_eq!(db.count("daily_events").await, 3);
    ops.add_spend(admin(pb::AddSpendRequest {
        day: "2026-06-09".into(),
        channel: "facebook".into(),
        amount_dzd: 10_000,
    }))
    .await
    .unwrap();
    for bad in [
        pb::AddSpendRequest {
            day: "05/06/2026".into(),
            channel: "x".into(),
            amount_dzd: 1,
        },
        pb::AddSpendRequest {
            day: "2026-06-05".into(),
            channel: " ".into(),
            amount_dzd: 1,
        },
        pb::AddSpendRequest {
            day: "2026-06-05".into(),
            channel: "x".into(),
            amount_dzd: 0,
        },
    ] {
        assert_status(
            ops.add_spend(admin(bad)).await,
            Code::InvalidArgument,
            "invalid_argument",
        );
    }
    // The periodic job writes today's MRR snapshot (a pass after the last signup).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = ops
            .get_dashboard(admin(pb::GetDashboardRequest { days: 1 }))
            .await
            .unwrap()
            .into_inner();
        if d.mrr.iter().any(|m| m.mrr_dzd == 220_100) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no MRR snapshot");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = ops
        .get_dashboard(admin(pb::GetDashboardRequest { days: 3 }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (d.from_day.as_str(), d.to_day.as_str()),
        ("2026-06-08", "2026-06-10")
    );
    let per_day: Vec<(String, u64)> = d
        .signups_per_day
        .iter()
        .map(|p| (p.day.clone(), p.count))
        .collect();
    assert_eq!(
        per_day,
        vec![
            ("2026-06-08".to_owned(), 2),
            ("2026-06-09".to_owned(), 0),
            ("2026-06-10".to_owned(), 1)
        ]
    );
    assert_eq!(
        (d.launch_used, d.launch_total, d.launch_remaining),
        (2, Some(30), 28)
    );
    // 2 × 10 050 (dev with LAUNCH30) + 200 000 (premium).
    assert_eq!(d.mrr_now_dzd, 220_100);
    assert_eq!(d.total_customers, 3);
    let dev = d
        .revenue_by_package
        .iter()
        .find(|p| p.package == "dev")
        .unwrap();
    assert_eq!((dev.customers, dev.revenue_monthly_dzd), (2, 20_100));
    let starter = d
        .revenue_by_package
        .iter()
        .find(|p| p.package == "starter")
        .unwrap();
    assert_eq!((starter.customers, starter.revenue_monthly_dzd), (0, 0));
    let f = d.funnel.unwrap();
    assert_eq!(
        (f.landing_views, f.cta_clicks, f.code_checks, f.signups),
        (10, 4, 3, 3)
    );
    assert_eq!(d.landing_views_per_day.last().unwrap().count, 10);
    let today = d.mrr.iter().find(|m| m.day == "2026-06-10").unwrap();
    assert_eq!((today.mrr_dzd, today.active_customers), (220_100, 3));
    // June: 10 000 DZD for 3 signups → 3 333 DZD each.
    let june = d.cac.iter().find(|m| m.month == "2026-06").unwrap();
    assert_eq!(
        (june.spend_dzd, june.signups, june.cac_dzd),
        (10_000, 3, Some(3_333))
    );
    assert_eq!(d.spend.len(), 1);
    assert_status(
        ops.get_dashboard(admin(pb::GetDashboardRequest { days: 367 }))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );

    // Six months later the discounts have ended: the snapshot of that day shows the step up to
    // the base prices (2 × 15 000 + 200 000).
    clock.set(NOW + 200 * DAY);
    let later = promo_service::domain::operator::day_of(NOW + 200 * DAY);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = ops
            .get_dashboard(admin(pb::GetDashboardRequest { days: 1 }))
            .await
            .unwrap()
            .into_inner();
        if let Some(m) = d.mrr.iter().find(|m| m.day == later) {
            assert_eq!(m.mrr_dzd, 230_000);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no snapshot on {later}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn customers_are_searched_filtered_and_exported_by_owners(backend: Backend) {
    let db = test_db(backend).await;
    let (app, mut ops, _clock) = spawn(&db).await;
    let mut c = app.client.clone();
    let mut ids = Vec::new();
    for (e, p) in [
        ("ali@exemple.dz", "dev"),
        ("=cmd@exemple.dz", "starter"),
        ("nadia_b@exemple.dz", "dev"),
        ("nadiaxb@exemple.dz", "premium"),
    ] {
        ids.push(
            c.signup(signup_req(e, p, ""))
                .await
                .unwrap()
                .into_inner()
                .user_id,
        );
    }
    c.set_account_suspended(admin(pb::SetAccountSuspendedRequest {
        user_id: ids[0].clone(),
        suspended: true,
    }))
    .await
    .unwrap();
    let list = |search: &str, package: &str, status: &str| pb::ListCustomersRequest {
        search: search.into(),
        package: package.into(),
        status: status.into(),
        ..Default::default()
    };
    let emails = |r: pb::ListCustomersResponse| -> (Vec<String>, u64) {
        (r.customers.into_iter().map(|c| c.email).collect(), r.total)
    };
    let all = emails(
        ops.list_customers(admin(list("", "", "")))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(all.1, 4);
    assert_eq!(all.0[0], "nadiaxb@exemple.dz", "newest first");
    // `_` is searched literally, not as LIKE's wildcard; case does not matter.
    let r = emails(
        ops.list_customers(admin(list("NADIA_", "", "")))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(r, (vec!["nadia_b@exemple.dz".to_owned()], 1));
    let r = emails(
        ops.list_customers(admin(list("", "dev", "")))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(r.1, 2);
    let r = emails(
        ops.list_customers(admin(list("", "", "suspended")))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(r, (vec!["ali@exemple.dz".to_owned()], 1));
    let r = emails(
        ops.list_customers(admin(list("", "dev", "active")))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(r, (vec!["nadia_b@exemple.dz".to_owned()], 1));
    assert_status(
        ops.list_customers(admin(list("", "", "deleted"))).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    // Pages of two.
    let p1 = ops
        .list_customers(admin(pb::ListCustomersRequest {
            page_size: 2,
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let p2 = ops
        .list_customers(admin(pb::ListCustomersRequest {
            page_size: 2,
            page_token: p1.next_page_token.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p1.customers.len() + p2.customers.len(), 4);
    assert!(
        p2.customers
            .iter()
            .all(|x| !p1.customers.iter().any(|y| y.user_id == x.user_id))
    );
    // CSV: a header, one line per customer, formulas neutralised.
    let csv = ops
        .export_customers(admin(list("", "", "")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(csv.rows, 4);
    let lines: Vec<&str> = csv.csv.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("user_id,email,package"));
    assert!(csv.csv.contains("\"'=cmd@exemple.dz\""), "{}", csv.csv);
    assert!(csv.csv.contains("\"suspended\""));
    // Unknown customer.
    assert_status(
        ops.get_customer(admin(pb::GetCustomerRequest {
            user_id: "usr_nope".into(),
        }))
        .await,
        Code::NotFound,
        "not_found",
    );
}

async fn concurrent_events_and_sessions_add_up(backend: Backend) {
    let db = test_db(backend).await;
    let (_app, ops, clock) = spawn(&db).await;
    // 60 events at once from many connections: the upsert adds, never overwrites.
    let mut tasks = Vec::new();
    for i in 0..60 {
        let mut ops = ops.clone();
        let event = ["landing_view", "cta_click", "code_check"][i % 3];
        tasks.push(tokio::spawn(async move {
            ops.record_event(internal(pb::RecordEventRequest {
                event: event.into(),
            }))
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut ops = ops;
    let f = ops
        .get_dashboard(admin(pb::GetDashboardRequest { days: 1 }))
        .await
        .unwrap()
        .into_inner()
        .funnel
        .unwrap();
    assert_eq!((f.landing_views, f.cta_clicks, f.code_checks), (20, 20, 20));
    // A session ends after 2 h without use, and its row goes a day after its absolute end.
    create_operator(
        &mut ops,
        "amel@exemple.dz",
        "Amel",
        pb::OperatorRole::Owner,
        OWNER_PASSWORD,
    )
    .await;
    let amel = sign_in(&mut ops, "amel@exemple.dz", OWNER_PASSWORD).await;
    clock.advance(Duration::from_secs(2 * 3600 + 1));
    assert_status(
        ops.who_am_i(amel.read(pb::WhoAmIRequest {})).await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_eq!(db.count("operator_sessions").await, 1);
    clock.advance(Duration::from_secs(8 * 24 * 3600));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.count("operator_sessions").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the session row stays"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

crate::on_both_backends!(
    concurrent_events_and_sessions_add_up,
    operators_sign_in_with_roles,
    failed_sign_ins_tell_nothing_and_are_budgeted,
    every_admin_change_is_audited_with_its_author,
    the_dashboard_counts_days_funnel_spend_and_mrr,
    customers_are_searched_filtered_and_exported_by_owners,
);
