//! Signup e-mails through the transactional outbox, delivered to a real SMTP server on loopback.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::promo_service_client::PromoServiceClient;
use sqlx::Connection as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::helpers::*;
use iafactory_testkit::smtp_sink::{Received, SmtpSink};

const OPERATOR: &str = "ops@iafactory.dz";

fn parse(r: &Received) -> mail_parser::Message<'static> {
    mail_parser::MessageParser::default()
        .parse(r.data.as_bytes())
        .unwrap()
        .into_owned()
}

async fn outbox(
    c: &mut PromoServiceClient<Channel>,
    status: pb::OutboxStatus,
) -> Vec<pb::OutboxMessage> {
    c.list_outbox(admin(pb::ListOutboxRequest {
        status: status.into(),
        limit: 0,
    }))
    .await
    .unwrap()
    .into_inner()
    .messages
}

/// Polls the admin list until `check` holds (bounded: 30 s).
async fn wait_outbox(
    c: &mut PromoServiceClient<Channel>,
    what: &str,
    check: impl Fn(&[pb::OutboxMessage]) -> bool,
) -> Vec<pb::OutboxMessage> {
    for _ in 0..300 {
        let all = outbox(c, pb::OutboxStatus::Unspecified).await;
        if check(&all) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "outbox never reached: {what}: {:?}",
        outbox(c, pb::OutboxStatus::Unspecified).await
    );
}

pub(crate) fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn signup_emails_arrive_once_with_the_right_content(backend: Backend) {
    let db = test_db(backend).await;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(&db, |c| {
        c.mail.smtp_url = Some(url);
        c.mail.operator_email = Some(OPERATOR.into());
        c.mail.public_url = "https://api.iafactory.dz".into();
    })
    .await;
    let mut c = app.client.clone();
    let r = c
        .signup(signup_req("Nadia@Exemple.dz", "dev", "LAUNCH30"))
        .await
        .unwrap()
        .into_inner();
    let got = sink.wait_for(2).await;
    let customer = got
        .iter()
        .find(|m| m.to.iter().any(|t| t.contains("nadia@exemple.dz")))
        .expect("customer e-mail");
    let operator = got
        .iter()
        .find(|m| m.to.iter().any(|t| t.contains(OPERATOR)))
        .expect("operator e-mail");

    assert!(
        customer.from.contains("no-reply@iafactory.dz"),
        "{}",
        customer.from
    );
    let msg = parse(customer);
    assert!(
        msg.subject().unwrap().contains("Dev"),
        "{:?}",
        msg.subject()
    );
    let text = msg.body_text(0).unwrap().into_owned();
    let html = msg.body_html(0).unwrap().into_owned();
    assert!(
        text.contains("10\u{202f}050 DZD au lieu de 15\u{202f}000 DZD"),
        "{text}"
    );
    assert!(text.contains("−33 % avec le code LAUNCH30"), "{text}");
    let ends = chrono::DateTime::parse_from_rfc3339(&r.discount_ends_at).unwrap();
    assert!(text.contains(&ends.format("%Y").to_string()));
    assert!(
        text.contains("https://api.iafactory.dz/v1/chat/completions"),
        "{text}"
    );
    assert!(
        text.contains(&r.api_key[..10]),
        "the key's prefix helps recognise it"
    );
    assert!(html.contains("<strong>Dev</strong>"), "{html}");
    for m in &got {
        assert!(
            !m.data.contains(&r.api_key),
            "an e-mail contains the API key"
        );
        assert!(
            !m.data.contains(&r.api_key[10..30]),
            "an e-mail contains part of the API key"
        );
    }
    let op = parse(operator);
    assert!(op.body_text(0).unwrap().contains("nadia@exemple.dz"));
    assert_eq!(
        msg.message_id().map(|id| id.starts_with("msg_")),
        Some(true)
    );

    // Exactly once: nothing more arrives, and both rows are marked sent.
    let sent = wait_outbox(&mut c, "2 sent", |all| {
        all.len() == 2 && all.iter().all(|m| m.status() == pb::OutboxStatus::Sent)
    })
    .await;
    assert!(
        sent.iter()
            .all(|m| m.attempts == 1 && !m.sent_at.is_empty() && m.user_id == r.user_id)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.received().len(), 2);
    app.stop().await.unwrap();
    db.close().await;
}

async fn smtp_down_is_retried_until_it_comes_back(backend: Backend) {
    let db = test_db(backend).await;
    let addr = free_addr(); // nothing listens here yet
    let app = TestApp::spawn_with(&db, |c| {
        c.mail.smtp_url = Some(format!("smtp://{addr}"));
        c.mail.retry_base = Duration::from_millis(100);
        c.mail.max_attempts = 1000;
    })
    .await;
    let mut c = app.client.clone();
    c.signup(signup_req("retry@x.dz", "starter", ""))
        .await
        .unwrap();
    let failing = wait_outbox(&mut c, "2 failed attempts", |all| {
        all.len() == 1 && all[0].attempts >= 2
    })
    .await;
    assert_eq!(failing[0].status(), pb::OutboxStatus::Pending);
    assert!(!failing[0].last_error.is_empty());
    assert!(!failing[0].next_attempt_at.is_empty());
    let sink = SmtpSink::start_on(addr, false).await;
    let got = sink.wait_for(1).await;
    assert!(got[0].to[0].contains("retry@x.dz"));
    wait_outbox(&mut c, "sent", |all| {
        all[0].status() == pb::OutboxStatus::Sent
    })
    .await;
    app.stop().await.unwrap();
    db.close().await;
}

async fn without_smtp_the_outbox_keeps_everything_for_later(backend: Backend) {
    let db = test_db(backend).await;
    let app = TestApp::spawn(&db).await;
    let mut c = app.client.clone();
    for i in 0..3 {
        c.signup(signup_req(&format!("later{i}@x.dz"), "dev", "LAUNCH30"))
            .await
            .unwrap();
    }
    let pending = outbox(&mut c, pb::OutboxStatus::Pending).await;
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|m| m.attempts == 0));
    app.stop().await.unwrap();

    // Configuring SMTP later delivers the backlog.
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(&db, |c| c.mail.smtp_url = Some(url)).await;
    let got = sink.wait_for(3).await;
    let to: HashSet<_> = got.iter().map(|m| m.to[0].clone()).collect();
    assert_eq!(to.len(), 3);
    app.stop().await.unwrap();
    db.close().await;
}

async fn dead_emails_are_visible_and_can_be_retried(backend: Backend) {
    let db = test_db(backend).await;
    let addr = free_addr();
    let app = TestApp::spawn_with(&db, |c| {
        c.mail.smtp_url = Some(format!("smtp://{addr}"));
        c.mail.retry_base = Duration::from_millis(50);
        c.mail.max_attempts = 2;
    })
    .await;
    let mut c = app.client.clone();
    c.signup(signup_req("dead@x.dz", "premium", ""))
        .await
        .unwrap();
    wait_outbox(&mut c, "dead", |all| {
        all.len() == 1 && all[0].status() == pb::OutboxStatus::Dead
    })
    .await;
    let dead = outbox(&mut c, pb::OutboxStatus::Dead).await;
    assert_eq!((dead.len(), dead[0].attempts), (1, 2));
    assert!(outbox(&mut c, pb::OutboxStatus::Pending).await.is_empty());

    let sink = SmtpSink::start_on(addr, false).await;
    // Admin only; unknown ids are NOT_FOUND.
    assert_status(
        c.retry_outbox(pb::RetryOutboxRequest {
            id: dead[0].id.clone(),
        })
        .await,
        Code::Unauthenticated,
        "unauthenticated",
    );
    assert_status(
        c.retry_outbox(admin(pb::RetryOutboxRequest {
            id: "msg_nope".into(),
        }))
        .await,
        Code::NotFound,
        "not_found",
    );
    assert_status(
        c.retry_outbox(admin(pb::RetryOutboxRequest { id: String::new() }))
            .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    let requeued = c
        .retry_outbox(admin(pb::RetryOutboxRequest {
            id: dead[0].id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (requeued.status(), requeued.attempts),
        (pb::OutboxStatus::Pending, 0)
    );
    sink.wait_for(1).await;
    wait_outbox(&mut c, "sent", |all| {
        all[0].status() == pb::OutboxStatus::Sent
    })
    .await;
    assert_status(
        c.retry_outbox(admin(pb::RetryOutboxRequest {
            id: dead[0].id.clone(),
        }))
        .await,
        Code::FailedPrecondition,
        "conflict",
    );
    assert_status(
        c.list_outbox(admin(pb::ListOutboxRequest {
            status: 99,
            limit: 0,
        }))
        .await,
        Code::InvalidArgument,
        "invalid_argument",
    );
    app.stop().await.unwrap();
    db.close().await;
}

/// A signup made in Arabic is stored with its language and confirmed in Arabic; every e-mail
/// (the operator's notice too, in French) carries the seller's identity and `Reply-To` the
/// configured contact, so "reply to this message" reaches someone. A language the service does
/// not write in is refused, and nothing is written.
async fn arabic_signup_is_confirmed_in_arabic_with_reply_to(backend: Backend) {
    let db = test_db(backend).await;
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(&db, |c| {
        c.mail.smtp_url = Some(url);
        c.mail.operator_email = Some(OPERATOR.into());
        c.mail.public_url = "https://api.iafactory.dz".into();
        c.billing.seller.name = "IAFactory SARL".into();
        c.billing.seller.address = "12 rue Didouche Mourad, Alger".into();
        c.site.contact_email = Some("contact@iafactory.dz".into());
        c.site.contact_phone = "+213 21 00 00 00".into();
    })
    .await;
    let mut c = app.client.clone();

    let refused = c
        .signup(pb::SignupRequest {
            lang: "en".into(),
            ..signup_req("english@exemple.dz", "dev", "")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("langue"),
        "{}",
        refused.message()
    );

    c.signup(pb::SignupRequest {
        lang: "ar".into(),
        ..signup_req("Amina@Exemple.dz", "dev", "LAUNCH30")
    })
    .await
    .unwrap();
    let got = sink.wait_for(2).await;
    let customer = got
        .iter()
        .find(|m| m.to.iter().any(|t| t.contains("amina@exemple.dz")))
        .expect("customer e-mail");
    let operator = got
        .iter()
        .find(|m| m.to.iter().any(|t| t.contains(OPERATOR)))
        .expect("operator e-mail");
    for m in [customer, operator] {
        assert_eq!(
            m.header("Reply-To").as_deref(),
            Some("contact@iafactory.dz"),
            "{}",
            m.data
        );
    }
    let msg = parse(customer);
    assert_eq!(
        msg.subject(),
        Some("أهلًا بك في IAFactory — باقة Dev"),
        "{:?}",
        msg.subject()
    );
    let text = msg.body_text(0).unwrap().into_owned();
    let html = msg.body_html(0).unwrap().into_owned();
    assert!(text.contains("تم تأكيد اشتراكك في باقة Dev"), "{text}");
    assert!(text.contains("تخفيض بنسبة 33% بالرمز LAUNCH30"), "{text}");
    assert!(text.contains("يكفي أن ترد على هذه الرسالة"), "{text}");
    assert!(
        text.contains("IAFactory SARL — 12 rue Didouche Mourad, Alger"),
        "{text}"
    );
    assert!(html.contains("dir=\"rtl\""), "{html}");
    assert!(html.contains("mailto:contact@iafactory.dz"), "{html}");
    let op = parse(operator);
    assert!(
        op.subject()
            .unwrap_or_default()
            .starts_with("Nouvelle inscription"),
        "{:?}",
        op.subject()
    );
    assert!(
        op.body_text(0)
            .unwrap()
            .contains("Répondez simplement à ce message"),
        "the operator's notice stays French"
    );

    // Stored on the signup (the refused one wrote nothing).
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.email, s.lang FROM signups s JOIN customers c ON c.id = s.customer_id \
         ORDER BY c.email",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows, [("amina@exemple.dz".to_owned(), "ar".to_owned())]);
    drop(conn);
    app.stop().await.unwrap();
    db.close().await;
}

crate::on_both_backends!(
    arabic_signup_is_confirmed_in_arabic_with_reply_to,
    signup_emails_arrive_once_with_the_right_content,
    smtp_down_is_retried_until_it_comes_back,
    without_smtp_the_outbox_keeps_everything_for_later,
    dead_emails_are_visible_and_can_be_retried,
    crash_between_send_and_mark_sends_again,
);

/// Two replicas on one PostgreSQL share the outbox: every e-mail is sent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_send_each_email_once() {
    let db = test_db(Backend::Postgres).await;
    let sink = SmtpSink::start().await;
    let tweak = |c: &mut promo_service::Config| {
        c.mail.smtp_url = Some(sink.url());
        c.mail.poll_interval = Duration::from_millis(20);
    };
    let a = TestApp::spawn_with(&db, tweak).await;
    let b = TestApp::spawn_with(&db, tweak).await;
    let mut calls = Vec::new();
    for i in 0..40 {
        let mut c = if i % 2 == 0 {
            a.client.clone()
        } else {
            b.client.clone()
        };
        calls.push(tokio::spawn(async move {
            c.signup(signup_req(&format!("twin{i}@x.dz"), "dev", ""))
                .await
                .unwrap()
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    sink.wait_for(40).await;
    let mut c = a.client.clone();
    wait_outbox(&mut c, "40 sent", |all| {
        all.len() == 40 && all.iter().all(|m| m.status() == pb::OutboxStatus::Sent)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = sink.received();
    let ids: HashSet<_> = got
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!((got.len(), ids.len()), (40, 40), "duplicates were sent");
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    db.close().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_promo-service");

fn start_bin(db_url: &str, port: u16, smtp: &str) -> Child {
    start_bin_with(db_url, port, smtp, &[])
}

/// The binary e-mailing `smtp`, with a short outbox lease and poll, and `extra` settings.
pub(crate) fn start_bin_with(db_url: &str, port: u16, smtp: &str, extra: &[(&str, &str)]) -> Child {
    Command::new(BIN)
        .env_clear()
        .env("DATABASE_URL", db_url)
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env("INTERNAL_TOKEN", INTERNAL_TOKEN)
        .env("PROMO_SERVICE_ADDR", format!("127.0.0.1:{port}"))
        .env("PUBLIC_URL", "https://api.iafactory.test")
        .env("SMTP_URL", smtp)
        .env("OUTBOX_LEASE_SECS", "1")
        .env("OUTBOX_POLL_MS", "100")
        // Only the signup's e-mail is counted here: no invoice e-mail from the billing job.
        .env("BILLING_JOB_INTERVAL_SECS", "0")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Delivery is at-least-once: a crash after the relay accepted an e-mail but before it was marked
/// sent makes it go out again once the claim expires, with the same Message-ID.
async fn crash_between_send_and_mark_sends_again(backend: Backend) {
    let db = test_db(backend).await;
    let sink = SmtpSink::start_on("127.0.0.1:0".parse().unwrap(), true).await;
    let port = free_addr().port();
    let mut child = start_bin(&db.url, port, &sink.url());
    let mut c = connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let data_done = sink.data_done.notified();
    c.signup(signup_req("crash@x.dz", "dev", "LAUNCH30"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), data_done)
        .await
        .expect("e-mail never reached the relay");
    child.kill().unwrap(); // the relay has the message; the service dies before marking it sent
    child.wait().unwrap();
    sink.release(1);
    sink.wait_for(1).await;

    let port = free_addr().port();
    let mut child = start_bin(&db.url, port, &sink.url());
    sink.release(1);
    let got = sink.wait_for(2).await;
    assert_eq!(got[0].header("Message-ID"), got[1].header("Message-ID"));
    let mut c = connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    let all = wait_outbox(&mut c, "sent after redelivery", |all| {
        all.len() == 1 && all[0].status() == pb::OutboxStatus::Sent
    })
    .await;
    assert_eq!(all[0].attempts, 2);
    child.kill().unwrap();
    child.wait().unwrap();
    db.close().await;
}
