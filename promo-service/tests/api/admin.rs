use iafactory::proto::iafactory::promo::v1 as pb;
use tonic::{Code, Request};

use crate::helpers::*;

async fn admin_rpcs_need_the_admin_token(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    let new_code = || pb::CreateCodeRequest {
        code: "NOAUTH1".into(),
        duration_months: 1,
        discounts: [("dev".to_owned(), 10)].into_iter().collect(),
        ..Default::default()
    };
    // No token, a wrong token, a wrong scheme, an empty bearer, a token with one more character.
    let headers: Vec<Option<String>> = vec![
        None,
        Some("Bearer wrong-token-123456".into()),
        Some(format!("Basic {ADMIN_TOKEN}")),
        Some("Bearer ".into()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(ADMIN_TOKEN.into()),
    ];
    fn auth<T>(msg: T, header: &Option<String>) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(h) = header {
            r.metadata_mut().insert("authorization", h.parse().unwrap());
        }
        r
    }
    for h in &headers {
        assert_status(
            c.get_stats(auth(pb::GetStatsRequest {}, h)).await,
            Code::Unauthenticated,
            "unauthenticated",
        );
        assert_status(
            c.list_codes(auth(pb::ListCodesRequest {}, h)).await,
            Code::Unauthenticated,
            "unauthenticated",
        );
        assert_status(
            c.create_code(auth(new_code(), h)).await,
            Code::Unauthenticated,
            "unauthenticated",
        );
        assert_status(
            c.update_code(auth(
                pb::UpdateCodeRequest {
                    code: "LAUNCH30".into(),
                    active: Some(false),
                    ..Default::default()
                },
                h,
            ))
            .await,
            Code::Unauthenticated,
            "unauthenticated",
        );
        assert_status(
            c.list_signups(auth(pb::ListSignupsRequest::default(), h))
                .await,
            Code::Unauthenticated,
            "unauthenticated",
        );
        assert_status(
            c.revoke_api_key(auth(
                pb::RevokeApiKeyRequest {
                    user_id: "usr_x".into(),
                },
                h,
            ))
            .await,
            Code::Unauthenticated,
            "unauthenticated",
        );
    }
    assert_eq!(db.count("promo_codes").await, 1);
    let launch = c
        .list_codes(admin(pb::ListCodesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .codes;
    assert!(launch[0].active);
    app.stop().await.unwrap();
    db.close().await;
}

async fn operators_manage_codes(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    let created = create_code(&mut c, "summer-26", 3).await;
    assert_eq!(created.code, "SUMMER-26");
    assert_eq!(
        (created.max_redemptions, created.used, created.active),
        (Some(3), 0, true)
    );
    assert_eq!(created.discounts.get("dev"), Some(&33));
    // Case-insensitive uniqueness.
    let dup = c
        .create_code(admin(pb::CreateCodeRequest {
            code: "Summer-26".into(),
            duration_months: 1,
            discounts: [("dev".to_owned(), 5)].into_iter().collect(),
            ..Default::default()
        }))
        .await;
    assert_status(dup, Code::AlreadyExists, "already_exists");

    c.signup(signup_req("s1@x.dz", "dev", "SUMMER-26"))
        .await
        .unwrap();
    c.signup(signup_req("s2@x.dz", "dev", "SUMMER-26"))
        .await
        .unwrap();
    // Cannot lower the limit under the places used; can lower it to exactly that.
    assert_status(
        c.update_code(admin(pb::UpdateCodeRequest {
            code: "summer-26".into(),
            max_redemptions: Some(1),
            ..Default::default()
        }))
        .await,
        Code::FailedPrecondition,
        "conflict",
    );
    let capped = c
        .update_code(admin(pb::UpdateCodeRequest {
            code: "summer-26".into(),
            max_redemptions: Some(2),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((capped.max_redemptions, capped.used), (Some(2), 2));
    assert_status(
        c.signup(signup_req("s3@x.dz", "dev", "SUMMER-26")).await,
        Code::FailedPrecondition,
        "promo_exhausted",
    );
    // Unlimited again, premium discounted, dev's discount removed, new description.
    let open = c
        .update_code(admin(pb::UpdateCodeRequest {
            code: "SUMMER-26".into(),
            unlimited: Some(true),
            description: Some("été".into()),
            discounts: [("premium".to_owned(), 50)].into_iter().collect(),
            remove_discounts: vec!["DEV".into()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(open.max_redemptions, None);
    assert_eq!(
        open.discounts,
        [("business", 25), ("premium", 50), ("starter", 25)]
            .into_iter()
            .map(|(p, v)| (p.to_owned(), v))
            .collect(),
        "dev removed, premium added, the others kept"
    );
    assert_eq!(open.description, "été");
    // Discounts merge: changing one package's percentage keeps the others'.
    let before = c
        .list_codes(admin(pb::ListCodesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .codes
        .into_iter()
        .find(|c| c.code == "LAUNCH30")
        .unwrap()
        .discounts;
    let merged = c
        .update_code(admin(pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            discounts: [("premium".to_owned(), 40)].into_iter().collect(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .discounts;
    let mut expected = before.clone();
    expected.insert("premium".into(), 40);
    assert_eq!(merged, expected);
    assert!(merged.len() >= 4, "{merged:?}");
    // Removing the last discount, or setting and removing one package, is refused and changes
    // nothing.
    let all = vec!["business", "premium", "starter"];
    // Removing a discount the code does not have (dev went above) is refused too: a mistyped
    // package must not pass for done.
    for (set, remove) in [
        (vec![], all),
        (vec![("dev", 10)], vec!["dev"]),
        (vec![], vec!["dev"]),
    ] {
        assert_status(
            c.update_code(admin(pb::UpdateCodeRequest {
                code: "SUMMER-26".into(),
                description: Some("changed".into()),
                discounts: set.into_iter().map(|(p, v)| (p.to_owned(), v)).collect(),
                remove_discounts: remove.into_iter().map(str::to_owned).collect(),
                ..Default::default()
            }))
            .await,
            Code::InvalidArgument,
            "invalid_argument",
        );
    }
    let summer = c
        .list_codes(admin(pb::ListCodesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .codes
        .into_iter()
        .find(|c| c.code == "SUMMER-26")
        .unwrap();
    assert_eq!(summer.description, "été");
    assert_eq!(summer.discounts, open.discounts);
    let r = c
        .signup(signup_req("s3@x.dz", "premium", "SUMMER-26"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.price_dzd, 100_000);
    let rem = c
        .get_remaining(pb::GetRemainingRequest {
            code: "summer-26".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rem.unlimited);
    // Deactivation is visible to validation; unknown codes are NOT_FOUND.
    c.update_code(admin(pb::UpdateCodeRequest {
        code: "LAUNCH30".into(),
        active: Some(false),
        ..Default::default()
    }))
    .await
    .unwrap();
    let v = c
        .validate_code(pb::ValidateCodeRequest {
            code: "launch30".into(),
            package: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.reason(), pb::RefusalReason::Inactive);
    assert_status(
        c.update_code(admin(pb::UpdateCodeRequest {
            code: "GHOST".into(),
            active: Some(true),
            ..Default::default()
        }))
        .await,
        Code::NotFound,
        "not_found",
    );
    let codes = c
        .list_codes(admin(pb::ListCodesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .codes;
    assert_eq!(
        codes.iter().map(|c| c.code.as_str()).collect::<Vec<_>>(),
        vec!["LAUNCH30", "SUMMER-26"]
    );
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(admin_rpcs_need_the_admin_token, operators_manage_codes);
