//! Billing of package changes and of the billing start, over real gRPC on both backends with the
//! service's manual clock: an upgrade on day 10 of a 30-day period invoices the exact prorated
//! difference at once (LAUNCH30 discounts applied like the regular invoices), a downgrade in the
//! same period waits for the next period with no refund or credit, concurrent upgrades of one
//! subscription give one prorated invoice, and `BILLING_START_DATE` bills nothing before it,
//! prorates the period containing it and catches up the periods after it. The books reconcile
//! after every test.

use iafactory::proto::iafactory::promo::v1 as pb;
use promo_service::domain::billing::period_start;
use tonic::Code;

use crate::account::{s, sign_in};
use crate::billing::{DAY, assert_books, invoices_of, ms, pay, pdf_text_as, run, spawn_at};
use crate::helpers::*;

fn change(package: &str) -> pb::ChangePackageRequest {
    pb::ChangePackageRequest {
        package: package.into(),
    }
}

async fn upgrade_on_day_10_is_prorated_and_a_downgrade_waits(backend: Backend) {
    let db = test_db(backend).await;
    // 10 April → 10 May: a 30-day period.
    let signup = ms("2026-04-10T09:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let user = c
        .signup(signup_req("prorata@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    run(&mut t.billing).await;
    let first = invoices_of(&mut t.billing, &user).await.remove(0);
    assert_eq!((first.total_dzd, first.kind.as_str()), (10_050, "period"));
    t.billing
        .record_payment(admin(pay(&first.number, 10_050)))
        .await
        .unwrap();

    // Day 10 (19 April): 21 days left of 30, day 10 included.
    let day10 = ms("2026-04-19T15:00:00Z");
    t.clock.set(day10);
    let me = sign_in(&mut c, &db, "prorata@exemple.dz").await;
    let preview = c
        .preview_package_change(s(
            pb::PreviewPackageChangeRequest {
                package: "business".into(),
            },
            &me.session,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    // (75 000 − 10 050) × 21 / 30 = 45 465 (LAUNCH30: Business −25 %, Dev −33 %).
    assert_eq!(preview.prorated_dzd, 45_465);
    assert!(
        preview.message.contains("45\u{202f}465 DZD TTC")
            && preview.message.contains("21 jours restants sur 30"),
        "{}",
        preview.message
    );
    assert_eq!(db.count("invoices").await, 1, "a preview writes nothing");
    let done = c
        .change_package(s(change("business"), &me.session, Some(&me.csrf)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.kind.as_str(), done.prorated_dzd), ("upgrade", 45_465));
    let invoices = invoices_of(&mut t.billing, &user).await;
    assert_eq!(invoices.len(), 2);
    let pro = &invoices[1];
    assert_eq!(pro.kind, "proration");
    assert_eq!(pro.package_id, "business");
    assert_eq!(pro.total_dzd, 45_465);
    // 19 % included, one rounding on the total: 45 465 / 1.19 = 38 205.88 → 38 206.
    assert_eq!((pro.net_dzd, pro.tax_dzd), (38_206, 7_259));
    let amounts: Vec<i64> = pro.lines.iter().map(|l| l.amount_dzd).collect();
    assert_eq!(amounts, [70_000, -17_500, -7_035], "{:?}", pro.lines);
    assert!(
        pro.lines[0]
            .label
            .contains("du 19 avril 2026 au 9 mai 2026 (21 jours sur 30)"),
        "{:?}",
        pro.lines
    );
    assert!(pro.lines[1].label.contains("LAUNCH30 −25 %"));
    assert!(pro.lines[2].label.contains("Forfait Dev déjà facturé"));
    assert_eq!(pro.period_start, "2026-04-19T15:00:00.000Z");
    assert_eq!(pro.period_last_day, "2026-05-09");
    assert_eq!(ms(&pro.due_at), day10 + 15 * DAY, "due like the others");
    assert_eq!(pro.status, "unpaid");
    assert_eq!(
        db.count(&format!(
            "billing_ledger WHERE kind = 'invoice_issued' AND subject = '{}' AND amount_dzd = 45465",
            pro.id
        ))
        .await,
        1
    );
    assert_eq!(
        db.count("invoices WHERE package_change_id IN (SELECT id FROM package_changes WHERE kind = 'upgrade')")
            .await,
        1,
        "the prorated invoice names its change"
    );
    // Its PDF: the days left, printed with their last day, and the three lines.
    let pdf = t
        .billing
        .get_invoice_pdf(admin(pb::GetInvoicePdfRequest {
            invoice_number: pro.number.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .pdf;
    let text = pdf_text_as(&pdf, "facture-prorata");
    for needle in [
        "Période : du 19 avril 2026 au 9 mai 2026",
        "Passage au forfait Business — du 19 avril 2026 au 9 mai 2026 (21 jours sur 30)",
        "70 000 DA",
        "−17 500 DA",
        "Forfait Dev déjà facturé pour ces jours (21 jours sur 30)",
        "−7 035 DA",
        "Total TTC",
        "45 465 DA",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_books(&db).await;

    // A downgrade in the same period: from the next period on, nothing back.
    t.clock.set(day10 + 2 * DAY);
    let me = sign_in(&mut c, &db, "prorata@exemple.dz").await;
    let down = c
        .change_package(s(change("starter"), &me.session, Some(&me.csrf)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(down.kind, "downgrade");
    assert_eq!(down.prorated_dzd, 0);
    assert_eq!(down.effective_at, "2026-05-10T09:00:00.000Z");
    assert!(
        down.message.contains("à partir du 10 mai 2026")
            && down.message.contains("ni remboursement ni avoir"),
        "{}",
        down.message
    );
    let account = c
        .get_account(s(pb::GetAccountRequest {}, &me.session, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        account.package.unwrap().id,
        "business",
        "until the period ends"
    );
    assert_eq!(account.pending_package, "starter");
    assert_eq!(account.pending_from, "2026-05-10T09:00:00.000Z");
    assert_eq!(account.period_last_day, "2026-05-09");
    assert_eq!(db.count("invoices").await, 2, "no refund, no credit note");
    assert_eq!(db.count("credit_notes").await, 0);
    assert_eq!(run(&mut t.billing).await.issued, 0);

    // The next period is billed on Starter (LAUNCH30 −25 %: 7 500).
    t.clock.set(period_start(signup, 1) + 3_600_000);
    assert_eq!(run(&mut t.billing).await.issued, 1);
    let invoices = invoices_of(&mut t.billing, &user).await;
    let next = invoices.last().unwrap();
    assert_eq!(
        (next.kind.as_str(), next.package_id.as_str(), next.total_dzd),
        ("period", "starter", 7_500)
    );
    assert_eq!(next.period_last_day, "2026-06-09");
    // Payments settle the oldest first: the prorated invoice before the new period.
    t.billing
        .record_payment(admin(pay(&next.number, 45_465)))
        .await
        .unwrap();
    let invoices = invoices_of(&mut t.billing, &user).await;
    let statuses: Vec<&str> = invoices.iter().map(|i| i.status.as_str()).collect();
    assert_eq!(statuses, ["paid", "paid", "unpaid"]);
    assert_books(&db).await;
}

/// An upgrade before the job issued the period in progress: that period is invoiced first on
/// the package it started with, then the difference for the last day.
async fn upgrade_before_the_period_invoice_bills_the_period_first(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-04-10T09:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let user = c
        .signup(signup_req("premier@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    // Last day of the period (9 May): 1 day left of 30.
    t.clock.set(ms("2026-05-09T20:00:00Z"));
    let me = sign_in(&mut c, &db, "premier@exemple.dz").await;
    let done = c
        .change_package(s(change("dev"), &me.session, Some(&me.csrf)))
        .await
        .unwrap()
        .into_inner();
    // (15 000 − 10 000) × 1 / 30 = 166.67 → 167.
    assert_eq!(done.prorated_dzd, 167);
    let invoices = invoices_of(&mut t.billing, &user).await;
    let got: Vec<(&str, &str, u64)> = invoices
        .iter()
        .map(|i| (i.kind.as_str(), i.package_id.as_str(), i.total_dzd))
        .collect();
    assert_eq!(
        got,
        [("period", "starter", 10_000), ("proration", "dev", 167)]
    );
    assert!(invoices[0].number < invoices[1].number);
    assert_eq!(run(&mut t.billing).await.issued, 0);
    assert_books(&db).await;
}

/// Several upgrades of one subscription sent at once (the same target, planned on the same
/// state): one change is applied and one prorated invoice issued; the others are refused and
/// write nothing.
async fn concurrent_upgrades_issue_one_prorated_invoice(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-04-10T09:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let user = c
        .signup(signup_req("double@exemple.dz", "starter", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    t.clock.set(ms("2026-04-19T15:00:00Z"));
    let me = sign_in(&mut c, &db, "double@exemple.dz").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let mut c = c.clone();
        let req = s(change("dev"), &me.session, Some(&me.csrf));
        tasks.spawn(async move { c.change_package(req).await });
    }
    let (mut ok, mut refused) = (Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(plan) => ok.push(plan.into_inner()),
            Err(status) => {
                assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                refused.push(status.message().to_owned());
            }
        }
    }
    assert_eq!((ok.len(), refused.len()), (1, 5), "{refused:?}");
    // Which refusals: planned on Starter and lost the guarded UPDATE ("changé entre-temps"), or
    // planned after the winner committed ("déjà au forfait").
    println!("{backend:?} concurrent upgrades refused: {refused:?}");
    // Starter −25 % = 7 500, Dev −33 % = 10 050: 2 550 × 21 / 30 = 1 785.
    assert_eq!(ok[0].prorated_dzd, 1_785);
    let invoices = invoices_of(&mut t.billing, &user).await;
    let got: Vec<(&str, u64)> = invoices
        .iter()
        .map(|i| (i.kind.as_str(), i.total_dzd))
        .collect();
    assert_eq!(got, [("period", 7_500), ("proration", 1_785)]);
    assert_eq!(db.count("package_changes").await, 1);
    assert_eq!(
        db.count("outbox WHERE kind = 'package_changed'").await,
        1,
        "one change, one e-mail"
    );
    let seqs = db
        .query_strings("SELECT CAST(seq AS TEXT) FROM invoices ORDER BY seq")
        .await;
    assert_eq!(seqs, ["1", "2"], "no number lost to a refused change");
    assert_books(&db).await;
}

/// `BILLING_START_DATE` = 1 March 2026. A customer who signed up on 10 January is billed nothing
/// before it; when the job runs on 20 March it issues the period containing 1 March from that
/// day on (10 days of 28, prorated) and the period that started on 10 March in full. A customer
/// who signs up after the date is billed from the signup, in full.
async fn billing_start_date_bills_nothing_before_it(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-01-10T09:00:00Z");
    let mut t = spawn_at(&db, signup, |config| {
        config.billing.start_date = Some(ms("2026-03-01T00:00:00Z"));
    })
    .await;
    let mut c = t.app.client.clone();
    let early = c
        .signup(signup_req("ancien@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    assert_eq!(run(&mut t.billing).await.issued, 0, "before the start date");
    t.clock.set(ms("2026-02-20T00:00:00Z"));
    assert_eq!(run(&mut t.billing).await.issued, 0);
    assert_status(
        t.billing
            .issue_invoice(admin(pb::IssueInvoiceRequest {
                customer_id: early.clone(),
            }))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    // The job did not run between 1 and 20 March: both periods are billed when it does.
    t.clock.set(ms("2026-03-20T00:00:00Z"));
    assert_eq!(run(&mut t.billing).await.issued, 2);
    assert_eq!(run(&mut t.billing).await.issued, 0, "once");
    let invoices = invoices_of(&mut t.billing, &early).await;
    let got: Vec<(&str, &str, &str, u64)> = invoices
        .iter()
        .map(|i| {
            (
                i.number.as_str(),
                i.period_start.as_str(),
                i.period_last_day.as_str(),
                i.total_dzd,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            // 1 March 00:00 → 10 March 09:00: 10 days of 28; 10 050 × 10 / 28 = 3 589.29.
            (
                "2026-000001",
                "2026-03-01T00:00:00.000Z",
                "2026-03-09",
                3_589
            ),
            (
                "2026-000002",
                "2026-03-10T09:00:00.000Z",
                "2026-04-09",
                10_050
            ),
        ]
    );
    let first = &invoices[0];
    assert_eq!(first.kind, "period");
    assert!(
        first.lines[0]
            .label
            .contains("du 1 mars 2026 au 9 mars 2026 (10 jours sur 28)"),
        "{:?}",
        first.lines
    );
    assert_eq!(first.lines.iter().map(|l| l.amount_dzd).sum::<i64>(), 3_589);
    // After the start date: billed from the signup, in full.
    let late = c
        .signup(signup_req("nouveau@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    run(&mut t.billing).await;
    let late_invoices = invoices_of(&mut t.billing, &late).await;
    assert_eq!(late_invoices.len(), 1);
    assert_eq!(late_invoices[0].total_dzd, 10_000);
    assert_eq!(late_invoices[0].period_start, "2026-03-20T00:00:00.000Z");
    assert_books(&db).await;
}

/// Migration 6 on a database that already bills (migrated to 5, with an invoice, its payment and
/// its ledger rows): the invoice stays, as a period invoice, still referenced by its payment;
/// references are still enforced; a second period invoice for the same period is refused while
/// a prorated one is accepted; the books still reconcile.
async fn migration_6_keeps_issued_invoices(backend: Backend) {
    use sqlx::Connection;
    let db = test_db(backend).await;
    let url = match backend {
        Backend::Sqlite => format!("{}?mode=rwc", db.url),
        Backend::Postgres => db.url.clone(),
    };
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let migrations = promo_service::migrations();
    let before = match backend {
        Backend::Sqlite => migrations.sqlite,
        Backend::Postgres => migrations.postgres,
    };
    before.run_to(5, &mut conn).await.unwrap();
    for sql in [
        "INSERT INTO customers (id, email, created_at) VALUES ('usr_old', 'old@exemple.dz', 0)",
        "INSERT INTO signups (id, customer_id, package_id, base_price_dzd, price_dzd, created_at) \
         VALUES ('sgn_old', 'usr_old', 'starter', 10000, 10000, 0)",
        "INSERT INTO invoices (id, number, year, seq, customer_id, email, period_index, period_start, \
         period_end, package_id, lines, net_dzd, tax_dzd, total_dzd, tax_rate_bp, prices_include_tax, \
         seller, issued_at, due_at) VALUES ('inv_old', '2026-000001', 2026, 1, 'usr_old', \
         'old@exemple.dz', 0, 0, 100, 'starter', '[]', 8403, 1597, 10000, 1900, 1, '{}', 0, 10)",
        "INSERT INTO payments (id, invoice_id, customer_id, amount_dzd, method, reference, paid_at, \
         recorded_at) VALUES ('pay_old', 'inv_old', 'usr_old', 10000, 'ccp', 'CCP 1', 1, 1)",
        "INSERT INTO billing_ledger (id, customer_id, kind, subject, amount_dzd, created_at) VALUES \
         ('led_1', 'usr_old', 'invoice_issued', 'inv_old', 10000, 0), \
         ('led_2', 'usr_old', 'payment_recorded', 'pay_old', -10000, 1)",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    conn.close().await.unwrap();
    // The service's own start runs migration 6.
    let pool = iafactory::db::Db::connect(&db.url, &migrations, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        db.query_strings("SELECT id || ' ' || kind || ' ' || number FROM invoices")
            .await,
        ["inv_old period 2026-000001"]
    );
    assert!(
        promo_service::repo::reconcile(&pool)
            .await
            .unwrap()
            .is_empty()
    );
    let insert = |id: &str, kind: &str, seq: i64| {
        format!(
            "INSERT INTO invoices (id, number, year, seq, customer_id, email, period_index, \
             period_start, period_end, package_id, lines, net_dzd, tax_dzd, total_dzd, tax_rate_bp, \
             prices_include_tax, seller, issued_at, due_at, kind) VALUES ('{id}', '2026-00000{seq}', \
             2026, {seq}, 'usr_old', 'old@exemple.dz', 0, 50, 100, 'dev', '[]', 0, 0, 0, 1900, 1, \
             '{{}}', 0, 10, '{kind}')"
        )
    };
    let run = |sql: String| {
        let pool = pool.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&pool.write)
                .await
        }
    };
    assert!(
        run(insert("inv_twice", "period", 2)).await.is_err(),
        "one period invoice per period"
    );
    run(insert("inv_pro", "proration", 3)).await.unwrap();
    assert!(
        run(insert("inv_bad", "refund", 4)).await.is_err(),
        "kind is checked"
    );
    assert!(
        run(
            "INSERT INTO payments (id, invoice_id, customer_id, amount_dzd, method, reference, \
             paid_at, recorded_at) VALUES ('pay_x', 'inv_nobody', 'usr_old', 1, 'ccp', 'x', 1, 1)"
                .into()
        )
        .await
        .is_err(),
        "payments still reference invoices"
    );
    assert!(
        run("DELETE FROM invoices WHERE id = 'inv_old'".into())
            .await
            .is_err(),
        "a paid invoice cannot disappear from under its payment"
    );
    pool.close().await;
}

crate::on_both_backends!(
    upgrade_on_day_10_is_prorated_and_a_downgrade_waits,
    upgrade_before_the_period_invoice_bills_the_period_first,
    concurrent_upgrades_issue_one_prorated_invoice,
    billing_start_date_bills_nothing_before_it,
    migration_6_keeps_issued_invoices,
);
