//! Malformed, oversized and hostile input: a clear INVALID_ARGUMENT (or NOT_FOUND), never an
//! internal error, and nothing written.

use iafactory::proto::iafactory::promo::v1 as pb;
use tonic::Code;

use crate::helpers::*;

async fn bad_signups_are_refused_and_write_nothing(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    let huge = "a".repeat(100_000);
    let cases: Vec<(pb::SignupRequest, Code, &str)> = vec![
        (
            signup_req("", "dev", ""),
            Code::InvalidArgument,
            "invalid_email",
        ),
        (
            signup_req("not-an-email", "dev", ""),
            Code::InvalidArgument,
            "invalid_email",
        ),
        (
            signup_req("a@b", "dev", ""),
            Code::InvalidArgument,
            "invalid_email",
        ),
        (
            signup_req(&format!("{huge}@x.dz"), "dev", ""),
            Code::InvalidArgument,
            "invalid_email",
        ),
        (
            signup_req("x'; DROP TABLE customers; --@x.dz", "dev", ""),
            Code::InvalidArgument,
            "invalid_email",
        ),
        (
            signup_req("nul\0byte@x.dz", "dev", ""),
            Code::InvalidArgument,
            "invalid_email",
        ),
        (
            signup_req("ok@x.dz", "", ""),
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            signup_req("ok@x.dz", "gold", ""),
            Code::InvalidArgument,
            "unknown_package",
        ),
        (
            signup_req("ok@x.dz", "dev' OR '1'='1", ""),
            Code::InvalidArgument,
            "unknown_package",
        ),
        (
            signup_req("ok@x.dz", &huge, ""),
            Code::InvalidArgument,
            "unknown_package",
        ),
        (
            signup_req("ok@x.dz", "dev", &huge),
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            signup_req("ok@x.dz", "dev", "LAUNCH30' --"),
            Code::NotFound,
            "promo_unknown",
        ),
        (
            signup_req("ok@x.dz", "dev", "ЛАУНЧ30"),
            Code::NotFound,
            "promo_unknown",
        ),
        (
            signup_req("ok@x.dz", "dev", "\u{202e}03HCNUAL"),
            Code::NotFound,
            "promo_unknown",
        ),
    ];
    for (req, code, err) in cases {
        let shown = format!("{:?}", &req.email.chars().take(30).collect::<String>());
        let got = c.signup(req).await;
        match got {
            Ok(v) => panic!("{shown}: expected {err}, got {v:?}"),
            Err(s) => {
                assert_eq!(
                    (s.code(), error_code(&s).as_str()),
                    (code, err),
                    "{shown}: {s:?}"
                );
                assert!(!s.message().is_empty());
            }
        }
    }
    // A message larger than the server's limit is refused by the transport, not a crash.
    let too_big = c
        .signup(signup_req(&"b".repeat(2 * 1024 * 1024), "dev", ""))
        .await;
    assert!(
        matches!(too_big, Err(ref s) if s.code() == Code::ResourceExhausted || s.code() == Code::InvalidArgument || s.code() == Code::OutOfRange),
        "{too_big:?}"
    );
    assert_eq!(db.count("customers").await, 0);
    assert_eq!(db.count("signups").await, 0);
    assert_eq!(db.count("api_keys").await, 0);
    assert_eq!(remaining(&mut c, "LAUNCH30").await, 30);
    // The service is still healthy after all that.
    c.signup(signup_req("ok@x.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    app.stop().await.unwrap();
    db.close().await;
}

async fn absurd_admin_values_are_refused(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    let base = || pb::CreateCodeRequest {
        code: "VALID-1".into(),
        description: String::new(),
        max_redemptions: Some(10),
        duration_months: 6,
        valid_from: String::new(),
        valid_until: String::new(),
        discounts: [("dev".to_owned(), 10)].into_iter().collect(),
    };
    let cases: Vec<(pb::CreateCodeRequest, Code, &str)> = vec![
        (
            pb::CreateCodeRequest {
                code: "x".into(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                code: "has space".into(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                code: "A".repeat(33),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                max_redemptions: Some(0),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                max_redemptions: Some(u32::MAX),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                duration_months: 0,
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                duration_months: 10_000,
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                discounts: Default::default(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                discounts: [("dev".to_owned(), 0)].into_iter().collect(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                discounts: [("dev".to_owned(), 101)].into_iter().collect(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                discounts: [("gold".to_owned(), 10)].into_iter().collect(),
                ..base()
            },
            Code::InvalidArgument,
            "unknown_package",
        ),
        (
            pb::CreateCodeRequest {
                valid_from: "yesterday".into(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                valid_from: "2026-02-01T00:00:00Z".into(),
                valid_until: "2026-01-01T00:00:00Z".into(),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
        (
            pb::CreateCodeRequest {
                description: "d".repeat(501),
                ..base()
            },
            Code::InvalidArgument,
            "invalid_argument",
        ),
    ];
    for (req, code, err) in cases {
        let shown = format!("{req:?}").chars().take(120).collect::<String>();
        match c.create_code(admin(req)).await {
            Ok(v) => panic!("{shown}: accepted as {v:?}"),
            Err(s) => assert_eq!(
                (s.code(), error_code(&s).as_str()),
                (code, err),
                "{shown}: {s:?}"
            ),
        }
    }
    let updates: Vec<pb::UpdateCodeRequest> = vec![
        pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            max_redemptions: Some(0),
            ..Default::default()
        },
        pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            max_redemptions: Some(5),
            unlimited: Some(true),
            ..Default::default()
        },
        pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            valid_until: Some("2020-01-01T00:00:00Z".into()),
            ..Default::default()
        },
        pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            duration_months: Some(0),
            ..Default::default()
        },
        pb::UpdateCodeRequest {
            code: "LAUNCH30".into(),
            discounts: [("dev".to_owned(), 500)].into_iter().collect(),
            ..Default::default()
        },
        pb::UpdateCodeRequest {
            code: String::new(),
            active: Some(false),
            ..Default::default()
        },
    ];
    for req in updates {
        let shown = format!("{req:?}");
        let got = c.update_code(admin(req)).await;
        assert!(
            matches!(got, Err(ref s) if s.code() == Code::InvalidArgument),
            "{shown}: {got:?}"
        );
    }
    assert_eq!(db.count("promo_codes").await, 1);
    let launch = c
        .list_codes(admin(pb::ListCodesRequest {}))
        .await
        .unwrap()
        .into_inner()
        .codes
        .remove(0);
    assert_eq!(
        (
            launch.max_redemptions,
            launch.duration_months,
            launch.active,
            launch.valid_until
        ),
        (Some(30), 6, true, None)
    );
    assert_eq!(launch.discounts.get("dev"), Some(&33));
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(
    bad_signups_are_refused_and_write_nothing,
    absurd_admin_values_are_refused
);
