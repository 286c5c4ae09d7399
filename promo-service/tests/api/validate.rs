use iafactory::proto::iafactory::promo::v1 as pb;
use tonic::Code;

use crate::helpers::*;

async fn validate(
    client: &mut pb::promo_service_client::PromoServiceClient<tonic::transport::Channel>,
    code: &str,
    package: &str,
) -> pb::ValidateCodeResponse {
    client
        .validate_code(pb::ValidateCodeRequest {
            code: code.into(),
            package: package.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn launch30_is_seeded_and_case_insensitive(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();

    let r = validate(&mut c, "LAUNCH30", "dev").await;
    assert!(r.valid);
    assert_eq!(r.discount_percent, 33);
    assert_eq!(r.duration_months, 6);
    assert_eq!(r.message, "Réduction de 33% pendant 6 mois !");
    assert_eq!(r.remaining, Some(30));

    for (pkg, pct) in [("starter", 25), ("business", 25), ("premium", 30)] {
        let r = validate(&mut c, "  launch30 ", pkg).await;
        assert!(r.valid, "{pkg}");
        assert_eq!(r.discount_percent, pct, "{pkg}");
        assert_eq!(r.code, "LAUNCH30");
    }
    let best = validate(&mut c, "Launch30", "").await;
    assert!(best.valid);
    assert_eq!(best.discount_percent, 33);

    let rem = c
        .get_remaining(pb::GetRemainingRequest {
            code: "launch30".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rem.remaining, rem.total, rem.unlimited), (30, 30, false));
    assert_eq!(rem.percent_filled, 0.0);

    let packages = c
        .list_packages(pb::ListPackagesRequest {})
        .await
        .unwrap()
        .into_inner()
        .packages;
    let table: Vec<_> = packages
        .iter()
        .map(|p| {
            (
                p.id.as_str(),
                p.monthly_price_dzd,
                p.tokens_per_month,
                p.requests_per_minute,
            )
        })
        .collect();
    assert_eq!(
        table,
        vec![
            ("starter", 10_000, 1_000_000, 30),
            ("dev", 15_000, 5_000_000, 60),
            ("business", 100_000, 30_000_000, 300),
            ("premium", 200_000, 100_000_000, 1_000),
        ]
    );
    app.stop().await.unwrap();
    db.close().await;
}

async fn refusals_say_why(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();

    let unknown = validate(&mut c, "NOPE2025", "dev").await;
    assert!(!unknown.valid);
    assert_eq!(unknown.reason(), pb::RefusalReason::Unknown);
    assert_eq!(unknown.message, "Ce code promo n'existe pas.");

    // A code for the starter package only, one that starts tomorrow, one that has ended.
    let mk =
        |code: &str, from: &str, until: &str, discounts: Vec<(&str, u32)>| pb::CreateCodeRequest {
            code: code.into(),
            description: String::new(),
            max_redemptions: Some(5),
            duration_months: 3,
            valid_from: from.into(),
            valid_until: until.into(),
            discounts: discounts
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        };
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    c.create_code(admin(mk("STARTONLY", "", "", vec![("starter", 10)])))
        .await
        .unwrap();
    c.create_code(admin(mk("LATER", &tomorrow, "", vec![("dev", 10)])))
        .await
        .unwrap();
    c.create_code(admin(mk(
        "OLD",
        "2025-01-01T00:00:00Z",
        "2025-02-01T00:00:00Z",
        vec![("dev", 10)],
    )))
    .await
    .unwrap();

    let r = validate(&mut c, "startonly", "dev").await;
    assert_eq!(
        (r.valid, r.reason()),
        (false, pb::RefusalReason::NotForPackage)
    );
    assert_eq!(r.message, "Ce code promo ne s'applique pas à ce forfait.");
    assert_eq!(
        validate(&mut c, "LATER", "dev").await.reason(),
        pb::RefusalReason::NotYetValid
    );
    assert_eq!(
        validate(&mut c, "OLD", "dev").await.reason(),
        pb::RefusalReason::Expired
    );

    c.update_code(admin(pb::UpdateCodeRequest {
        code: "startonly".into(),
        active: Some(false),
        ..Default::default()
    }))
    .await
    .unwrap();
    let r = validate(&mut c, "STARTONLY", "starter").await;
    assert_eq!((r.valid, r.reason()), (false, pb::RefusalReason::Inactive));

    // Signups with a refused code fail with the matching error and write nothing.
    assert_status(
        c.signup(signup_req("a@b.dz", "dev", "LATER")).await,
        Code::FailedPrecondition,
        "promo_not_yet_valid",
    );
    assert_status(
        c.signup(signup_req("a@b.dz", "dev", "OLD")).await,
        Code::FailedPrecondition,
        "promo_expired",
    );
    assert_status(
        c.signup(signup_req("a@b.dz", "starter", "STARTONLY")).await,
        Code::FailedPrecondition,
        "promo_inactive",
    );
    assert_status(
        c.signup(signup_req("a@b.dz", "dev", "NOPE2025")).await,
        Code::NotFound,
        "promo_unknown",
    );
    assert_eq!(db.count("customers").await, 0);

    // Unknown package is an input error, not a refusal.
    assert_status(
        c.validate_code(pb::ValidateCodeRequest {
            code: "LAUNCH30".into(),
            package: "gold".into(),
        })
        .await,
        Code::InvalidArgument,
        "unknown_package",
    );
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(launch30_is_seeded_and_case_insensitive, refusals_say_why);
