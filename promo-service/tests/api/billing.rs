//! Billing over real gRPC on both backends: invoices per monthly period (LAUNCH30 `dev`: 10 050
//! DZD for 6 periods then 15 000; a January 31 signup's periods clamped to month ends), issue
//! idempotence and numbering per year, payments (partial, over-payment as credit), credit notes,
//! dunning (reminder, past due, suspension → `payment_required` on `AuthenticateKey`, payment →
//! active), hostile input, and 200 invoices issued concurrently through two replicas on one
//! PostgreSQL. Time is the service's manual clock; the job is driven by `RunBilling`. The books
//! are reconciled (`promo_service::repo::reconcile`) after every test.

use chrono::DateTime;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::billing_client::BillingClient;
use promo_service::clock::Clock;
use promo_service::domain::billing::period_start;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::account::{auth, s, sign_in};
use crate::helpers::*;

pub(crate) const DAY: i64 = 24 * 3600 * 1000;

pub(crate) fn ms(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
}

pub(crate) struct Billed {
    pub(crate) app: TestApp,
    pub(crate) billing: BillingClient<Channel>,
    pub(crate) clock: Clock,
}

pub(crate) async fn spawn_at(
    db: &TestDb,
    at: i64,
    tweak: impl FnOnce(&mut promo_service::Config),
) -> Billed {
    let clock = Clock::manual(at);
    let c = clock.clone();
    let app = TestApp::spawn_with(db, move |config| {
        config.clock = c;
        config.billing.transfer.beneficiary = "IAFactory SARL".into();
        config.billing.transfer.ccp_account = "0012345678 clé 90".into();
        config.billing.seller.name = "IAFactory SARL".into();
        config.billing.seller.nif = "001216098765432".into();
        tweak(config);
    })
    .await;
    let billing = BillingClient::connect(format!("http://{}", app.addr))
        .await
        .unwrap();
    Billed {
        app,
        billing,
        clock,
    }
}

/// The books reconcile: ledger == invoices − credit notes − payments, one ledger row per event,
/// stored states == the ledger's last state.
pub(crate) async fn assert_books(db: &TestDb) {
    let pool = iafactory::db::Db::connect(
        &db.url,
        &promo_service::migrations(),
        &iafactory::db::PoolOptions::default(),
    )
    .await
    .unwrap();
    let problems = promo_service::repo::reconcile(&pool).await.unwrap();
    pool.close().await;
    assert!(
        problems.is_empty(),
        "the books do not reconcile: {problems:#?}"
    );
}

pub(crate) async fn run(b: &mut BillingClient<Channel>) -> pb::BillingRun {
    b.run_billing(admin(pb::RunBillingRequest {}))
        .await
        .unwrap()
        .into_inner()
}

pub(crate) async fn invoices_of(b: &mut BillingClient<Channel>, user: &str) -> Vec<pb::Invoice> {
    let mut v = b
        .list_invoices(admin(pb::ListInvoicesRequest {
            customer_id: user.into(),
            status: String::new(),
            limit: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    v.reverse();
    v
}

pub(crate) fn pay(number: &str, amount: u64) -> pb::RecordPaymentRequest {
    pb::RecordPaymentRequest {
        invoice_number: number.into(),
        amount_dzd: amount,
        method: pb::PaymentMethod::Ccp as i32,
        reference: format!("CCP {number}"),
        paid_at: String::new(),
    }
}

async fn launch30_dev_is_billed_10050_six_times_then_15000(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-01-10T09:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let user = c
        .signup(signup_req("lina@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    for n in 0..8 {
        t.clock.set(period_start(signup, n) + 3_600_000);
        let report = run(&mut t.billing).await;
        assert_eq!(report.issued, 1, "period {n}");
        // A second pass issues nothing.
        assert_eq!(run(&mut t.billing).await.issued, 0);
        let last = invoices_of(&mut t.billing, &user).await.pop().unwrap();
        t.billing
            .record_payment(admin(pay(&last.number, last.total_dzd)))
            .await
            .unwrap();
    }
    let invoices = invoices_of(&mut t.billing, &user).await;
    let totals: Vec<u64> = invoices.iter().map(|i| i.total_dzd).collect();
    assert_eq!(
        totals,
        [
            10_050, 10_050, 10_050, 10_050, 10_050, 10_050, 15_000, 15_000
        ]
    );
    let numbers: Vec<&str> = invoices.iter().map(|i| i.number.as_str()).collect();
    assert_eq!(
        numbers,
        [
            "2026-000001",
            "2026-000002",
            "2026-000003",
            "2026-000004",
            "2026-000005",
            "2026-000006",
            "2026-000007",
            "2026-000008"
        ]
    );
    let first = &invoices[0];
    // 19 % included: 10 050 / 1.19 = 8 445.38 → 8 445 net, 1 605 tax.
    assert_eq!((first.net_dzd, first.tax_dzd), (8_445, 1_605));
    assert!(first.prices_include_tax && first.tax_rate_bp == 1900);
    assert_eq!(first.lines.len(), 2, "{:?}", first.lines);
    assert_eq!(first.lines[0].amount_dzd, 15_000);
    assert_eq!(first.lines[1].amount_dzd, -4_950);
    assert!(
        first.lines[1].label.contains("LAUNCH30")
            && first.lines[1].label.contains("10 juillet 2026"),
        "{:?}",
        first.lines[1]
    );
    assert_eq!(invoices[6].lines.len(), 1);
    assert!(
        invoices
            .iter()
            .all(|i| i.status == "paid" && i.balance_dzd == 0)
    );
    assert_eq!(db.count("outbox WHERE kind = 'invoice_issued'").await, 8);
    // MRR: the next period of this active subscription, at the full price.
    assert_eq!(run(&mut t.billing).await.mrr_dzd, 15_000);
    assert_books(&db).await;
}

async fn january_31_periods_end_on_month_ends_and_numbers_restart_each_year(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-01-31T10:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let user = c
        .signup(signup_req("yanis@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    let issue = |b: &mut BillingClient<Channel>| {
        let mut b = b.clone();
        let user = user.clone();
        async move {
            b.issue_invoice(admin(pb::IssueInvoiceRequest { customer_id: user }))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = issue(&mut t.billing).await;
    assert!(first.created);
    let again = issue(&mut t.billing).await;
    assert!(!again.created, "issuing twice answers the same invoice");
    assert_eq!(
        again.invoice.as_ref().unwrap().number,
        first.invoice.as_ref().unwrap().number
    );
    let mut ends = Vec::new();
    let mut last_days = Vec::new();
    for n in 1..4 {
        t.clock.set(period_start(signup, n));
        let inv = issue(&mut t.billing).await.invoice.unwrap();
        ends.push(inv.period_end);
        last_days.push(inv.period_last_day);
    }
    // Printed inclusively: each period ends the day before the next one starts (the stored
    // interval stays half-open, above).
    assert_eq!(last_days, ["2026-03-30", "2026-04-29", "2026-05-30"]);
    assert_eq!(
        ends,
        [
            "2026-03-31T10:00:00.000Z",
            "2026-04-30T10:00:00.000Z",
            "2026-05-31T10:00:00.000Z"
        ]
    );
    let first = first.invoice.unwrap();
    assert_eq!(first.period_end, "2026-02-28T10:00:00.000Z");
    assert_eq!(first.period_last_day, "2026-02-27");
    assert!(
        first.lines[0]
            .label
            .ends_with("période du 31 janvier 2026 au 27 février 2026"),
        "{:?}",
        first.lines
    );
    // The period issued in January 2027 starts the 2027 series.
    t.clock.set(period_start(signup, 12));
    let y2027 = issue(&mut t.billing).await.invoice.unwrap();
    assert_eq!(y2027.number, "2027-000001");
    assert_eq!(y2027.total_dzd, 10_000);
    assert_eq!(db.count("invoices").await, 5);
    // Unknown customer, empty id, no admin token.
    assert_status(
        t.billing
            .issue_invoice(admin(pb::IssueInvoiceRequest {
                customer_id: "usr_nobody".into(),
            }))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        t.billing
            .issue_invoice(admin(pb::IssueInvoiceRequest {
                customer_id: " ".into(),
            }))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_status(
        t.billing
            .issue_invoice(internal(pb::IssueInvoiceRequest {
                customer_id: user.clone(),
            }))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_books(&db).await;
}

async fn payments_partial_over_and_credit_notes(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-03-05T08:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let user = c
        .signup(signup_req("karim@exemple.dz", "starter", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner()
        .user_id;
    run(&mut t.billing).await;
    let inv = invoices_of(&mut t.billing, &user).await.remove(0);
    assert_eq!(inv.total_dzd, 7_500);

    // Hostile and malformed payments change nothing.
    let mut bad = pay(&inv.number, 0);
    assert_status(
        t.billing.record_payment(admin(bad.clone())).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    bad.amount_dzd = 100;
    bad.method = 0;
    assert_status(
        t.billing.record_payment(admin(bad.clone())).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    bad.method = 99;
    assert_status(
        t.billing.record_payment(admin(bad.clone())).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    bad.method = pb::PaymentMethod::BankTransfer as i32;
    bad.reference = "a\u{0}b".into();
    assert_status(
        t.billing.record_payment(admin(bad.clone())).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    bad.reference = "VIR".into();
    bad.paid_at = "hier".into();
    assert_status(
        t.billing.record_payment(admin(bad.clone())).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_status(
        t.billing
            .record_payment(admin(pay("2026-999999", 100)))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        t.billing
            .record_payment(Request::new(pay(&inv.number, 100)))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        t.billing
            .record_payment(internal(pay(&inv.number, 100)))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_eq!(db.count("payments").await, 0);
    assert_eq!(
        db.count("audit_log").await,
        0,
        "a refused payment is not audited"
    );

    // Partial, then over-payment: the excess is the customer's credit.
    let partial = t
        .billing
        .record_payment(admin(pay(&inv.number, 5_000)))
        .await
        .unwrap()
        .into_inner();
    let i = partial.invoice.unwrap();
    assert_eq!(
        (i.status.as_str(), i.balance_dzd),
        ("partially_paid", 2_500)
    );
    assert_eq!(partial.balance_dzd, 2_500);
    let over = t
        .billing
        .record_payment(admin(pay(&inv.number, 4_000)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(over.invoice.unwrap().status, "paid");
    assert_eq!(over.balance_dzd, -1_500, "an over-payment is a credit");
    // Each payment an operator records is in the audit log, with who recorded it.
    assert_eq!(
        db.query_strings(
            "SELECT actor || ' ' || action || ' ' || target FROM audit_log \
             WHERE action = 'payment.record' ORDER BY at, id"
        )
        .await,
        vec![format!("admin-token payment.record {}", inv.number); 2]
    );
    // The next invoice is settled by the credit first.
    t.clock.set(period_start(signup, 1));
    run(&mut t.billing).await;
    let second = invoices_of(&mut t.billing, &user).await.remove(1);
    assert_eq!(
        (second.status.as_str(), second.balance_dzd),
        ("partially_paid", 6_000)
    );
    // The customer sees it too.
    let who = sign_in(&mut c, &db, "karim@exemple.dz").await;
    let overview = t
        .billing
        .get_billing(s(pb::GetBillingRequest {}, &who.session, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overview.balance_dzd, 6_000);
    assert_eq!(overview.invoices.len(), 2);
    assert_eq!(overview.invoices[0].number, second.number, "newest first");
    let details = overview.payment_details.unwrap();
    assert_eq!(details.ccp_account, "0012345678 clé 90");
    assert!(details.instructions.contains(&second.number), "{details:?}");
    assert_eq!(
        overview.state,
        pb::SubscriptionState::Active as i32,
        "{}",
        overview.message
    );
    assert_status(
        t.billing
            .get_billing(Request::new(pb::GetBillingRequest {}))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );

    // Credit notes: at most what the invoice carries, own series.
    let note = |amount: u64, reason: &str| pb::IssueCreditNoteRequest {
        invoice_number: second.number.clone(),
        amount_dzd: amount,
        reason: reason.into(),
    };
    assert_status(
        t.billing
            .issue_credit_note(admin(note(7_501, "trop")))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_status(
        t.billing.issue_credit_note(admin(note(100, " "))).await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    let cn = t
        .billing
        .issue_credit_note(admin(note(6_000, "geste commercial")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cn.number, "A2026-000001");
    assert_eq!(
        db.query_strings(
            "SELECT actor || ' ' || action || ' ' || after_json FROM audit_log \
             WHERE action = 'credit_note.issue'"
        )
        .await
        .len(),
        1,
        "the credit note is audited (a refused one is not)"
    );
    let second = invoices_of(&mut t.billing, &user).await.remove(1);
    assert_eq!((second.status.as_str(), second.balance_dzd), ("paid", 0));
    assert_eq!(second.credited_dzd, 6_000);
    // 1 500 left to credit on it; 1 501 is refused.
    assert_status(
        t.billing
            .issue_credit_note(admin(note(1_501, "encore")))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    let paid = t
        .billing
        .list_invoices(admin(pb::ListInvoicesRequest {
            customer_id: String::new(),
            status: "paid".into(),
            limit: 10,
        }))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert_eq!(paid.len(), 2);
    assert_status(
        t.billing
            .list_invoices(admin(pb::ListInvoicesRequest {
                customer_id: String::new(),
                status: "void".into(),
                limit: 10,
            }))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    assert_books(&db).await;
}

async fn kinds(db: &TestDb, email: &str) -> Vec<String> {
    db.query_strings(&format!(
        "SELECT kind FROM outbox WHERE recipient = '{email}' ORDER BY created_at, id"
    ))
    .await
}

async fn unpaid_past_grace_is_suspended_and_payment_reactivates(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-02-02T12:00:00Z");
    let mut t = spawn_at(&db, signup, |_| {}).await;
    let mut c = t.app.client.clone();
    let r = c
        .signup(signup_req("amel@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    run(&mut t.billing).await;
    let inv = invoices_of(&mut t.billing, &r.user_id).await.remove(0);
    let due = ms(&inv.due_at);
    assert_eq!(due, signup + 15 * DAY, "due in 15 days by default");
    assert!(
        auth(&mut c, &r.api_key).await.is_ok(),
        "the key works at once"
    );
    let state = |b: &BillingClient<Channel>| {
        let mut b = b.clone();
        let user = r.user_id.clone();
        async move {
            let list = b
                .list_invoices(admin(pb::ListInvoicesRequest {
                    customer_id: user,
                    status: String::new(),
                    limit: 0,
                }))
                .await
                .unwrap()
                .into_inner();
            list.invoices
        }
    };
    // Reminder 3 days before the due date, once.
    t.clock.set(due - 3 * DAY);
    run(&mut t.billing).await;
    run(&mut t.billing).await;
    assert_eq!(
        kinds(&db, "amel@exemple.dz").await,
        [
            "customer_confirmation",
            "invoice_issued",
            "payment_reminder"
        ]
    );
    // Past due: still works, overdue notice.
    t.clock.set(due + DAY);
    let report = run(&mut t.billing).await;
    assert_eq!(report.state_changes, 1);
    assert!(auth(&mut c, &r.api_key).await.is_ok());
    assert_eq!(
        kinds(&db, "amel@exemple.dz").await.last().unwrap(),
        "payment_overdue"
    );
    // Past the grace period: suspended, the key answers payment_required.
    t.clock.set(due + 7 * DAY);
    run(&mut t.billing).await;
    let refused = auth(&mut c, &r.api_key).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(error_code(&refused), "payment_required");
    assert!(
        refused.message().contains(&inv.number) && refused.message().contains("10050 DZD"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("/compte/"),
        "{}",
        refused.message()
    );
    assert_eq!(
        kinds(&db, "amel@exemple.dz").await.last().unwrap(),
        "subscription_suspended"
    );
    // MRR counts active subscriptions only.
    assert_eq!(run(&mut t.billing).await.mrr_dzd, 0);
    // A partial transfer is not enough; the rest reactivates at once.
    let part = t
        .billing
        .record_payment(admin(pay(&inv.number, 10_000)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(part.state, pb::SubscriptionState::Suspended as i32);
    assert!(auth(&mut c, &r.api_key).await.is_err());
    let rest = t
        .billing
        .record_payment(admin(pay(&inv.number, 50)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.state, pb::SubscriptionState::Active as i32);
    assert!(
        auth(&mut c, &r.api_key).await.is_ok(),
        "paid: the key works again"
    );
    assert_eq!(state(&t.billing).await[0].status, "paid");
    assert_eq!(run(&mut t.billing).await.mrr_dzd, 10_050);
    // The ledger holds the path: active → past_due → suspended → active.
    let states = db
        .query_strings(
            "SELECT subject FROM billing_ledger WHERE kind = 'state_changed' ORDER BY created_at, id",
        )
        .await;
    assert_eq!(states, ["past_due", "suspended", "active"]);
    assert_books(&db).await;
}

async fn first_invoice_must_be_paid_first_when_configured(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-02-02T12:00:00Z");
    let mut t = spawn_at(&db, signup, |config| {
        config.billing.dunning.first_invoice_prepaid = true;
    })
    .await;
    let mut c = t.app.client.clone();
    let r = c
        .signup(signup_req("prepaye@exemple.dz", "starter", ""))
        .await
        .unwrap()
        .into_inner();
    let issued = t
        .billing
        .issue_invoice(admin(pb::IssueInvoiceRequest {
            customer_id: r.user_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    let refused = auth(&mut c, &r.api_key).await.unwrap_err();
    assert_eq!(error_code(&refused), "payment_required");
    t.billing
        .record_payment(admin(pay(&issued.number, issued.total_dzd)))
        .await
        .unwrap();
    assert!(auth(&mut c, &r.api_key).await.is_ok());
    assert_books(&db).await;
}

async fn card_payments_are_recorded_once_from_signed_webhooks(backend: Backend) {
    use iafactory_testkit::chargily::ChargilyServer;
    use promo_service::billing_config::{ChargilyConfig, ChargilySecret};

    const SECRET: &str = "test_sk_billing_0123456789";
    let db = test_db(backend).await;
    let server = ChargilyServer::start(SECRET).await;
    let base = server.base_url();
    let mut t = spawn_at(&db, ms("2026-05-20T10:00:00Z"), move |config| {
        config.billing.chargily = Some(ChargilyConfig {
            secret_key: ChargilySecret::new(SECRET),
            base_url: base,
        });
    })
    .await;
    let mut c = t.app.client.clone();
    let me = c
        .signup(signup_req("visa@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    c.signup(signup_req("autre@exemple.dz", "starter", ""))
        .await
        .unwrap();
    run(&mut t.billing).await;
    let mine = invoices_of(&mut t.billing, &me.user_id).await.remove(0);
    let theirs = t
        .billing
        .list_invoices(admin(pb::ListInvoicesRequest {
            customer_id: String::new(),
            status: String::new(),
            limit: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .invoices
        .into_iter()
        .find(|i| i.customer_id != me.user_id)
        .unwrap();
    let who = sign_in(&mut c, &db, "visa@exemple.dz").await;
    let pay_req = |number: &str, csrf: bool| {
        s(
            pb::PayInvoiceByCardRequest {
                invoice_number: number.into(),
            },
            &who.session,
            csrf.then_some(who.csrf.as_str()),
        )
    };
    assert_status(
        t.billing
            .pay_invoice_by_card(pay_req(&mine.number, false))
            .await,
        Code::PermissionDenied,
        "csrf_failed",
    );
    assert_status(
        t.billing
            .pay_invoice_by_card(pay_req(&theirs.number, true))
            .await,
        Code::NotFound,
        "not_found",
    );
    let checkout = t
        .billing
        .pay_invoice_by_card(pay_req(&mine.number, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checkout.amount_dzd, 10_050);
    assert_eq!(server.checkouts().len(), 1);

    let hook = |body: &str, signature: &str| {
        internal(pb::ChargilyWebhookRequest {
            raw_body: body.as_bytes().to_vec(),
            signature: signature.into(),
        })
    };
    let paid = server
        .event("checkout.paid", &checkout.checkout_id)
        .to_string();
    let signature = server.sign(&paid);
    // Refused: a bad signature, another secret's signature, no internal token, an altered
    // amount, another currency, an unknown checkout. Nothing is written.
    assert_status(
        t.billing.handle_chargily_webhook(hook(&paid, "00")).await,
        Code::PermissionDenied,
        "permission_denied",
    );
    let forged = iafactory::webhook::sign(b"another-secret", paid.as_bytes());
    assert_status(
        t.billing
            .handle_chargily_webhook(hook(&paid, &forged))
            .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    assert_status(
        t.billing
            .handle_chargily_webhook(Request::new(pb::ChargilyWebhookRequest {
                raw_body: paid.as_bytes().to_vec(),
                signature: signature.clone(),
            }))
            .await,
        Code::PermissionDenied,
        "permission_denied",
    );
    let mut cheap = server.event("checkout.paid", &checkout.checkout_id);
    cheap["data"]["amount"] = serde_json::json!(50);
    let cheap = cheap.to_string();
    assert_status(
        t.billing
            .handle_chargily_webhook(hook(&cheap, &server.sign(&cheap)))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    let unknown = server.event("checkout.paid", "01nobody").to_string();
    assert_status(
        t.billing
            .handle_chargily_webhook(hook(&unknown, &server.sign(&unknown)))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_eq!(db.count("payments").await, 0);
    assert_books(&db).await;

    // The genuine event, twice: one payment.
    let outcome = |r: Result<tonic::Response<pb::ChargilyWebhookResponse>, tonic::Status>| {
        r.unwrap().into_inner().outcome
    };
    assert_eq!(
        outcome(
            t.billing
                .handle_chargily_webhook(hook(&paid, &signature))
                .await
        ),
        "paid"
    );
    assert_eq!(
        outcome(
            t.billing
                .handle_chargily_webhook(hook(&paid, &signature))
                .await
        ),
        "duplicate"
    );
    assert_eq!(db.count("payments WHERE method = 'card'").await, 1);
    assert_eq!(
        db.count("audit_log WHERE action = 'payment.record'").await,
        0,
        "a card payment is the provider's, in the ledger, not an operator's change"
    );
    let after = invoices_of(&mut t.billing, &me.user_id).await.remove(0);
    assert_eq!((after.status.as_str(), after.balance_dzd), ("paid", 0));
    assert_status(
        t.billing
            .pay_invoice_by_card(pay_req(&mine.number, true))
            .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_books(&db).await;
}

/// `pdftotext` (poppler-utils, installed by scripts/test-setup.sh) of a PDF.
fn pdf_text(pdf: &[u8]) -> String {
    pdf_text_as(pdf, "facture")
}

/// As [`pdf_text`], keeping the copy and the picture of page 1 under `name`.
pub(crate) fn pdf_text_as(pdf: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("facture.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .unwrap_or_else(|e| panic!("pdftotext not found ({e}): run scripts/test-setup.sh"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Keep a copy and a picture of page 1 to look at (target/screenshots/billing/).
    let shots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots/billing");
    if std::fs::create_dir_all(&shots).is_ok() {
        let _ = std::fs::write(shots.join(format!("{name}.pdf")), pdf);
        let _ = std::process::Command::new("pdftoppm")
            .args(["-png", "-r", "80", "-singlefile", path.to_str().unwrap()])
            .arg(shots.join(format!("{name}-page-1")))
            .status();
    }
    String::from_utf8(out.stdout).unwrap()
}

async fn invoice_pdf_holds_number_identity_lines_and_totals(backend: Backend) {
    let db = test_db(backend).await;
    let signup = ms("2026-01-31T10:00:00Z");
    let mut t = spawn_at(&db, signup, |config| {
        config.billing.seller.address = "12 rue Didouche Mourad, 16000 Alger".into();
        config.billing.seller.nis = "098765432101234".into();
        config.billing.seller.rc = "16/00-1234567B26".into();
        config.billing.seller.article = "16012345678".into();
    })
    .await;
    let mut c = t.app.client.clone();
    let me = c
        .signup(signup_req("facture@exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    c.signup(signup_req("voisine@exemple.dz", "starter", ""))
        .await
        .unwrap();
    run(&mut t.billing).await;
    let inv = invoices_of(&mut t.billing, &me.user_id).await.remove(0);
    t.billing
        .record_payment(admin(pay(&inv.number, 5_000)))
        .await
        .unwrap();
    let pdf = t
        .billing
        .get_invoice_pdf(admin(pb::GetInvoicePdfRequest {
            invoice_number: inv.number.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .pdf;
    assert!(pdf.starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for needle in [
        format!("FACTURE n° {}", inv.number).as_str(),
        "IAFactory SARL",
        "12 rue Didouche Mourad, 16000 Alger",
        "NIF : 001216098765432",
        "NIS : 098765432101234",
        "RC : 16/00-1234567B26",
        "Article : 16012345678",
        "facture@exemple.dz",
        // The last day the period covers: the next one starts on 28 February.
        "Période : du 31 janvier 2026 au 27 février 2026",
        "Forfait Dev — période du 31 janvier 2026 au 27 février 2026",
        "15 000 DA",
        "Remise LAUNCH30 −33 % (jusqu'au 31 juillet 2026)",
        "−4 950 DA",
        "Total HT",
        "8 445 DA",
        "TVA 19 % (incluse)",
        "1 605 DA",
        "Total TTC",
        "10 050 DA",
        "Déjà réglé",
        "−5 000 DA",
        "Reste à payer",
        "5 050 DA",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    // The customer gets their own invoice, not another's; nobody else gets any.
    let who = sign_in(&mut c, &db, "facture@exemple.dz").await;
    let own = t
        .billing
        .get_invoice_pdf(s(
            pb::GetInvoicePdfRequest {
                invoice_number: inv.number.clone(),
            },
            &who.session,
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(own.pdf.starts_with(b"%PDF-"));
    let other = t
        .billing
        .list_invoices(admin(pb::ListInvoicesRequest {
            customer_id: String::new(),
            status: String::new(),
            limit: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .invoices
        .into_iter()
        .find(|i| i.customer_id != me.user_id)
        .unwrap();
    assert_status(
        t.billing
            .get_invoice_pdf(s(
                pb::GetInvoicePdfRequest {
                    invoice_number: other.number,
                },
                &who.session,
                None,
            ))
            .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        t.billing
            .get_invoice_pdf(Request::new(pb::GetInvoicePdfRequest {
                invoice_number: inv.number.clone(),
            }))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        t.billing
            .get_invoice_pdf(internal(pb::GetInvoicePdfRequest {
                invoice_number: inv.number.clone(),
            }))
            .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_books(&db).await;
}

/// 200 invoices issued at once through two replicas sharing one PostgreSQL database (plus a
/// duplicate request for every fourth customer): numbers 1..=200 of the year, no gap, no
/// duplicate, one invoice per customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_numbers_have_no_gap_across_two_replicas() {
    let db = test_db(Backend::Postgres).await;
    let at = ms("2026-04-01T00:00:00Z");
    let a = spawn_at(&db, at, |_| {}).await;
    let b = spawn_at(&db, at, |_| {}).await;
    let mut users = Vec::new();
    for n in 0..200 {
        let mut c = if n % 2 == 0 {
            a.app.client.clone()
        } else {
            b.app.client.clone()
        };
        users.push(
            c.signup(signup_req(&format!("client{n}@exemple.dz"), "starter", ""))
                .await
                .unwrap()
                .into_inner()
                .user_id,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (n, user) in users.iter().enumerate() {
        let copies = if n % 4 == 0 { 2 } else { 1 };
        for k in 0..copies {
            let mut client = if (n + k) % 2 == 0 {
                a.billing.clone()
            } else {
                b.billing.clone()
            };
            let user = user.clone();
            tasks.spawn(async move {
                // 250 calls at once all wait for the one counter row: on a loaded machine some
                // wait past the pool's acquire timeout and are refused UNAVAILABLE before
                // anything is written. A client retries those (503 + Retry-After over REST);
                // what is checked is that the numbers have no gap and no duplicate.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match client
                        .issue_invoice(admin(pb::IssueInvoiceRequest {
                            customer_id: user.clone(),
                        }))
                        .await
                    {
                        Err(s) if s.code() == tonic::Code::Unavailable && attempts < 10 => {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        }
                        r => return r.map(|r| r.into_inner()),
                    }
                }
            });
        }
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap().unwrap().created {
            created += 1;
        }
    }
    assert_eq!(created, 200);
    let mut seqs: Vec<i64> = db
        .query_strings("SELECT CAST(seq AS TEXT) FROM invoices WHERE year = 2026")
        .await
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<i64>>());
    let per_customer = db
        .query_strings("SELECT customer_id FROM invoices GROUP BY customer_id HAVING COUNT(*) > 1")
        .await;
    assert!(per_customer.is_empty());
    assert_eq!(
        db.query_strings(
            "SELECT CAST(last_number AS TEXT) FROM billing_counters WHERE series = 'F'"
        )
        .await,
        ["200"]
    );
    assert_books(&db).await;
}

crate::on_both_backends!(
    launch30_dev_is_billed_10050_six_times_then_15000,
    january_31_periods_end_on_month_ends_and_numbers_restart_each_year,
    payments_partial_over_and_credit_notes,
    unpaid_past_grace_is_suspended_and_payment_reactivates,
    first_invoice_must_be_paid_first_when_configured,
    card_payments_are_recorded_once_from_signed_webhooks,
    invoice_pdf_holds_number_identity_lines_and_totals,
);
