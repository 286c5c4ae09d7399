//! One account and one LAUNCH30 place per mailbox, whatever the spelling: Unicode variants of an
//! address are the same customer, mixed-script look-alikes are refused, and rows stored under the
//! old rule (trim + lower-case) are brought to the canonical form at start.

use tonic::Code;

use crate::helpers::*;

/// Each family: spellings of one mailbox. The first signs up with LAUNCH30; every other one must be
/// `email_taken` (same canonical form) or `invalid_email` (a look-alike refused outright).
const FAMILIES: &[&[&str]] = &[
    &[
        "idn@bücher.dz",
        "idn@xn--bcher-kva.dz",
        "IDN@BÜCHER.DZ",
        "idn@bu\u{308}cher.dz",
    ],
    &["idn2@xn--bcher-kva.dz", "idn2@bücher.dz"],
    &[
        "contact@example.dz",
        "contact@ｅｘａｍｐｌｅ.dz",
        "ｃｏｎｔａｃｔ＠ｅｘａｍｐｌｅ．ｄｚ",
    ],
    &[
        "user1@example.dz",
        "user𝟏@example.dz",
        "user\u{2460}@example.dz",
    ],
    &[
        "contact@paypal.dz",
        "contact@p\u{430}ypal.dz",
        "contact@xn--pypal-4ve.dz",
    ],
    &["paypal@example.dz", "p\u{430}ypal@example.dz"],
    &["hello@example.dz", "ⓗⓔⓛⓛⓞ@example.dz", "hello@ⓔxample.dz"],
    &["x2@example.dz", "x²@example.dz", "x₂@example.dz"],
    &["strasse@example.dz", "straße@example.dz"],
];

async fn lookalikes_get_one_account_and_one_place_per_mailbox(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    for family in FAMILIES {
        let first = c
            .signup(signup_req(family[0], "starter", "LAUNCH30"))
            .await
            .unwrap()
            .into_inner();
        for spelling in &family[1..] {
            for code in ["LAUNCH30", ""] {
                let err = c
                    .signup(signup_req(spelling, "dev", code))
                    .await
                    .expect_err(spelling);
                match (err.code(), error_code(&err).as_str()) {
                    (Code::AlreadyExists, "email_taken") => {}
                    (Code::InvalidArgument, "invalid_email") => assert!(
                        err.message().contains("alphabets"),
                        "a look-alike says why: {}",
                        err.message()
                    ),
                    other => panic!("{spelling:?} after {:?}: {other:?} {err:?}", first.email),
                }
            }
        }
    }
    let n = FAMILIES.len() as i64;
    assert_eq!(db.count("customers").await, n);
    assert_eq!(db.count("redemptions").await, n);
    assert_eq!(
        u32::try_from(30 - n).ok(),
        Some(remaining(&mut c, "LAUNCH30").await)
    );
    // Stored in the canonical form (ASCII domain), the same in both tables.
    let stored = db
        .query_strings("SELECT email FROM customers WHERE email LIKE 'idn@%' ORDER BY email")
        .await;
    assert_eq!(stored, ["idn@xn--bcher-kva.dz"]);
    let redeemed = db
        .query_strings("SELECT email FROM redemptions WHERE email LIKE 'idn@%'")
        .await;
    assert_eq!(redeemed, stored);
    app.stop().await.unwrap();
    db.close().await;
}

async fn rows_of_the_old_rule_are_brought_to_the_canonical_form(backend: Backend) {
    let db = test_db(backend).await;
    // First start: the schema.
    TestApp::spawn(&db).await.stop().await.unwrap();
    // What the old rule stored: a Unicode domain, a full-width local part, and one mailbox
    // twice (the bug), each with a LAUNCH30 redemption for the first one.
    for (id, email) in [
        ("usr_old1", "idn@bücher.dz"),
        ("usr_old2", "ｓａｒａ@mail.dz"),
        ("usr_dup1", "dup@bücher.dz"),
        ("usr_dup2", "dup@xn--bcher-kva.dz"),
    ] {
        db.exec(&format!(
            "INSERT INTO customers (id, email, created_at) VALUES ('{id}', '{email}', 1)"
        ))
        .await;
    }
    db.exec(
        "INSERT INTO redemptions (code, email, customer_id, created_at) \
         VALUES ('LAUNCH30', 'idn@bücher.dz', 'usr_old1', 1)",
    )
    .await;

    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    // A call answered means the start (and its rewrite) is done.
    for taken in [
        "idn@xn--bcher-kva.dz",
        "idn@bücher.dz",
        "sara@mail.dz",
        "dup@bücher.dz",
    ] {
        assert_status(
            c.signup(signup_req(taken, "starter", "LAUNCH30")).await,
            Code::AlreadyExists,
            "email_taken",
        );
    }
    let emails = db
        .query_strings("SELECT email FROM customers ORDER BY id")
        .await;
    assert_eq!(
        emails,
        [
            // usr_dup1 would collide with usr_dup2: left as is, for the operator.
            "dup@bücher.dz",
            "dup@xn--bcher-kva.dz",
            "idn@xn--bcher-kva.dz",
            "sara@mail.dz",
        ]
    );
    assert_eq!(
        db.query_strings("SELECT email FROM redemptions").await,
        ["idn@xn--bcher-kva.dz"]
    );
    app.stop().await.unwrap();
    // A second start finds nothing left to do and changes nothing.
    TestApp::spawn(&db).await.stop().await.unwrap();
    assert_eq!(
        db.query_strings("SELECT email FROM customers ORDER BY id")
            .await,
        emails
    );
    db.close().await;
}

crate::on_both_backends!(
    lookalikes_get_one_account_and_one_place_per_mailbox,
    rows_of_the_old_rule_are_brought_to_the_canonical_form,
);
