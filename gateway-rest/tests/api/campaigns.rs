//! The launch campaign end to end: 300 contacts imported over REST, two promo-service replicas
//! on one database delivering through the real SMTP sink at a paced rate, one-click unsubscribe
//! over real HTTP through gateway-rest, a second campaign (the reminder) that skips the
//! unsubscribed and those who signed up since. On SQLite and on PostgreSQL.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use iafactory_testkit::Backend;
use iafactory_testkit::smtp_sink::{Received, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Answer, Promo, Stack};

/// Messages per minute in these tests: one every 10 ms, so 300 take at least 3 s.
const RATE_PER_MIN: u32 = 6000;
const INTERVAL_MS: u64 = 10;

fn contact(i: usize) -> String {
    format!("contact{i:03}@exemple.dz")
}

async fn admin(stack: &Stack, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut r = stack.gw.request(method, path).bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    Answer::of(r.send().await.unwrap()).await
}

/// Creates a campaign (in French) and schedules it now; returns its id.
async fn launch(stack: &Stack, template: &str, audience: &str) -> String {
    let id = draft(stack, template, audience, "fr").await;
    schedule(stack, &id).await;
    id
}

/// Creates a draft campaign; returns its id.
async fn draft(stack: &Stack, template: &str, audience: &str, locale: &str) -> String {
    let c = admin(
        stack,
        Method::POST,
        "/api/admin/campagnes",
        Some(json!({"name": format!("{template} test"), "template": template, "locale": locale, "audience": audience})),
    )
    .await;
    assert_eq!(c.status, StatusCode::OK, "{c:?}");
    c.body["id"].as_str().unwrap().to_owned()
}

/// Schedules a campaign now.
async fn schedule(stack: &Stack, id: &str) {
    let s = admin(
        stack,
        Method::POST,
        &format!("/api/admin/campagnes/{id}/programmer"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK, "{s:?}");
    assert_eq!(s.body["status"], "sending", "{s:?}");
}

/// Waits until the campaign has nothing pending; returns its progress.
async fn finished(stack: &Stack, id: &str) -> Value {
    for _ in 0..600 {
        let c = admin(
            stack,
            Method::GET,
            &format!("/api/admin/campagnes/{id}"),
            None,
        )
        .await;
        assert_eq!(c.status, StatusCode::OK, "{c:?}");
        if c.body["progress"]["pending"] == 0 {
            return c.body["progress"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("campaign {id} did not finish");
}

fn campaign_messages(all: &[Received], subject_part: &str) -> Vec<Received> {
    all.iter()
        .filter(|r| r.header("List-Unsubscribe").is_some())
        .filter(|r| {
            let m = mail_parser::MessageParser::default()
                .parse(r.data.as_bytes())
                .unwrap();
            m.subject().unwrap_or_default().contains(subject_part)
        })
        .cloned()
        .collect()
}

/// The recipients of a message as addresses (the sink keeps `RCPT TO:<…>` as sent).
fn to(m: &Received) -> Vec<String> {
    m.to.iter()
        .map(|t| {
            t.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
        .collect()
}

fn per_recipient(msgs: &[Received]) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for m in msgs {
        for t in to(m) {
            *count.entry(t).or_insert(0) += 1;
        }
    }
    count
}

/// The path and query of a message's `List-Unsubscribe` URL (the host is the configured
/// public URL; the test sends to its gateway).
fn unsubscribe_path(m: &Received) -> String {
    let header = m.header("List-Unsubscribe").unwrap();
    let url = header.trim_start_matches('<').trim_end_matches('>');
    let at = url.find("/desabonnement?jeton=").unwrap();
    url[at..].to_owned()
}

fn ms(t: SystemTime) -> u64 {
    u64::try_from(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn campaign_to_300_contacts(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let promo = Promo::spawn_on_backend(backend, move |c| {
        c.mail.smtp_url = Some(smtp.clone());
        c.mail.poll_interval = Duration::from_millis(20);
        c.campaigns.rate_per_min = RATE_PER_MIN;
        c.campaigns.poll_interval = Duration::from_millis(50);
    })
    .await;
    // A second replica on the same database: both run the campaign job and the mail worker.
    let replica = promo.replica().await;
    let stack = Stack::spawn_on(promo, |_| {}).await;

    let mut csv = String::from("email,name,source,consent_at\r\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "{},Contact {i},salon,2025-11-0{}\r\n",
            contact(i),
            1 + i % 9
        ));
    }
    let imported = Answer::of(
        stack
            .gw
            .request(Method::POST, "/api/admin/contacts/import")
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(imported.status, StatusCode::OK, "{imported:?}");
    assert_eq!(imported.body["created"], 300, "{imported:?}");
    assert_eq!(imported.body["problems"], json!([]));

    // Campaign 1: the announcement to every contact.
    let before = ms(SystemTime::now());
    let first = launch(&stack, "announcement", "contacts").await;
    let progress = finished(&stack, &first).await;
    assert_eq!(
        progress,
        json!({"recipients": 300, "sent": 300, "suppressed": 0, "failed": 0, "pending": 0,
            "unsubscribed": 0, "conversions": 0, "audience": 300})
    );
    let announcements = campaign_messages(&sink.received(), "Dans 3 jours");
    let count = per_recipient(&announcements);
    assert_eq!(count.len(), 300, "every contact got it");
    assert!(
        count.values().all(|&n| n == 1),
        "exactly one each: {count:?}"
    );
    // The pace: the k-th message (in arrival order) never before its slot, and the slots start
    // no earlier than the schedule call: at most one message per 10 ms from there on.
    let mut arrivals: Vec<u64> = announcements.iter().map(|m| ms(m.at)).collect();
    arrivals.sort_unstable();
    for (k, at) in arrivals.iter().enumerate() {
        let slot = before + k as u64 * INTERVAL_MS;
        assert!(
            *at >= slot,
            "message {k} arrived at {at}, before its slot {slot}"
        );
    }
    eprintln!(
        "300 messages in {} ms (at least {} ms at {RATE_PER_MIN}/min)",
        arrivals[299] - before,
        299 * INTERVAL_MS
    );

    let of = |i: usize| {
        announcements
            .iter()
            .find(|m| to(m) == vec![contact(i)])
            .unwrap()
            .clone()
    };
    // Every message carries both RFC 8058 headers and a visible link, the same URL.
    for m in &announcements {
        assert_eq!(
            m.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(m.data.as_bytes())
            .unwrap();
        let text = parsed.body_text(0).unwrap();
        assert!(text.contains(&unsubscribe_path(m)), "{text}");
    }

    // One-click unsubscribe, as a mail client does it, for three contacts.
    for i in [10, 11, 12] {
        let r = stack
            .gw
            .request(Method::POST, &unsubscribe_path(&of(i)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("ne recevra plus"));
    }
    // A link scanner's GET shows the page and unsubscribes nobody.
    let page = stack.get(&unsubscribe_path(&of(13))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("<form method=\"post\""), "{}", page.text);
    // A forged token is refused with a page, nothing written.
    let forged = unsubscribe_path(&of(14)).replace("jeton=", "jeton=x");
    let r = stack
        .gw
        .request(Method::POST, &forged)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("pas valide"));

    // Two contacts sign up before the reminder.
    for i in [20, 21] {
        let s = stack
            .post(
                "/api/promo/signup",
                json!({"email": contact(i), "package": "starter"}),
            )
            .await;
        assert_eq!(s.status, StatusCode::CREATED, "{s:?}");
    }

    // Campaign 2: the reminder (prospects only).
    let second = launch(&stack, "reminder", "contacts").await;
    let progress = finished(&stack, &second).await;
    assert_eq!(
        progress,
        json!({"recipients": 298, "sent": 295, "suppressed": 3, "failed": 0, "pending": 0,
            "unsubscribed": 0, "conversions": 0, "audience": 298})
    );
    // The first campaign's results: the three who left through its links, the two who signed
    // up after receiving it.
    let first = admin(
        &stack,
        Method::GET,
        &format!("/api/admin/campagnes/{first}"),
        None,
    )
    .await;
    assert_eq!(
        first.body["progress"],
        json!({"recipients": 300, "sent": 300, "suppressed": 0, "failed": 0, "pending": 0,
            "unsubscribed": 3, "conversions": 2, "audience": 300})
    );
    let reminders = campaign_messages(&sink.received(), "Rappel");
    let count = per_recipient(&reminders);
    assert_eq!(count.len(), 295);
    assert!(count.values().all(|&n| n == 1), "{count:?}");
    for i in [10, 11, 12, 20, 21] {
        assert!(
            !count.contains_key(&contact(i)),
            "{} got the reminder",
            contact(i)
        );
    }
    assert!(
        count.contains_key(&contact(13)),
        "a GET unsubscribed nobody"
    );

    let suppressions = admin(&stack, Method::GET, "/api/admin/suppressions", None).await;
    let listed: Vec<&str> = suppressions.body["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["email"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    drop(replica);
}

/// An address suppressed after a campaign was queued gets nothing (checked at delivery).
async fn suppression_after_queueing_wins(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let promo = Promo::spawn_on_backend(backend, move |c| {
        c.mail.smtp_url = Some(smtp.clone());
        c.mail.poll_interval = Duration::from_millis(20);
        // One message a second: the last of five is due 4 s after the start.
        c.campaigns.rate_per_min = 60;
    })
    .await;
    let stack = Stack::spawn_on(promo, |_| {}).await;
    let mut csv = String::from("email;consent_at\n");
    for i in 0..5 {
        csv.push_str(&format!("{};2025-11-01\n", contact(i)));
    }
    let imported = Answer::of(
        stack
            .gw
            .request(Method::POST, "/api/admin/contacts/import")
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/csv; charset=utf-8")
            .body(csv)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(imported.body["created"], 5, "{imported:?}");
    let id = launch(&stack, "announcement", "contacts").await;
    // Queued; the last recipient is suppressed by the operator before its slot.
    let s = admin(
        &stack,
        Method::POST,
        "/api/admin/suppressions",
        Some(json!({"email": contact(4), "reason": "bounced", "note": "550 mailbox unknown"})),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK, "{s:?}");
    let progress = finished(&stack, &id).await;
    assert_eq!(
        progress,
        json!({"recipients": 5, "sent": 4, "suppressed": 1, "failed": 0, "pending": 0,
            "unsubscribed": 0, "conversions": 0, "audience": 5})
    );
    assert!(sink.received().iter().all(|m| to(m) != vec![contact(4)]));
}

/// A campaign's metrics count what happened, through the real sink and real HTTP: its audience
/// before sending (consent, not suppressed), then sent / skipped / unsubscribed through its own
/// link (not another campaign's) / conversions (signed up after their message, not before). The
/// campaign is in Arabic: its unsubscribe page is too.
async fn metrics_count_what_happened(backend: Backend) {
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let promo = Promo::spawn_on_backend(backend, move |c| {
        c.mail.smtp_url = Some(smtp.clone());
        c.mail.poll_interval = Duration::from_millis(20);
        c.campaigns.rate_per_min = RATE_PER_MIN;
    })
    .await;
    let stack = Stack::spawn_on(promo, |_| {}).await;
    let mut csv = String::from("email,consent_at\n");
    for i in 0..10 {
        csv.push_str(&format!("{},2025-11-01\n", contact(i)));
    }
    // One more without consent: never in an audience.
    csv.push_str(&format!("{},\n", contact(10)));
    let imported = Answer::of(
        stack
            .gw
            .request(Method::POST, "/api/admin/contacts/import")
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(imported.body["created"], 11, "{imported:?}");
    // Before the campaign: contact 9 bounced, contact 8 became a customer.
    let s = admin(
        &stack,
        Method::POST,
        "/api/admin/suppressions",
        Some(json!({"email": contact(9), "reason": "bounced"})),
    )
    .await;
    assert_eq!(s.status, StatusCode::OK, "{s:?}");
    let signup = |i: usize| {
        stack.post(
            "/api/promo/signup",
            json!({"email": contact(i), "package": "starter"}),
        )
    };
    assert_eq!(signup(8).await.status, StatusCode::CREATED);

    let a = draft(&stack, "announcement", "contacts", "ar").await;
    let drafted = admin(
        &stack,
        Method::GET,
        &format!("/api/admin/campagnes/{a}"),
        None,
    )
    .await;
    assert_eq!(
        drafted.body["progress"]["audience"], 9,
        "consent and not suppressed (the customer is a contact like the others): {drafted:?}"
    );
    schedule(&stack, &a).await;
    let progress = finished(&stack, &a).await;
    assert_eq!(
        progress,
        json!({"recipients": 10, "sent": 9, "suppressed": 1, "failed": 0, "pending": 0,
            "unsubscribed": 0, "conversions": 0, "audience": 10})
    );
    let sent = campaign_messages(&sink.received(), "IAFactory");
    assert_eq!(per_recipient(&sent).len(), 9);
    let of = |msgs: &[Received], i: usize| {
        msgs.iter()
            .find(|m| to(m) == vec![contact(i)])
            .unwrap()
            .clone()
    };
    // The Arabic campaign's unsubscribe link opens an Arabic page; two leave through it.
    let link = unsubscribe_path(&of(&sent, 0));
    assert!(link.ends_with("&lang=ar"), "{link}");
    let page = stack.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text.contains("<html lang=\"ar\" dir=\"rtl\">"),
        "{}",
        page.text
    );
    assert!(page.text.contains("إلغاء الاشتراك"), "{}", page.text);
    for i in [0, 1] {
        let r = stack
            .gw
            .request(Method::POST, &unsubscribe_path(&of(&sent, i)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("تمّ ذلك"));
    }
    // Three recipients sign up after their message.
    for i in [2, 3, 4] {
        assert_eq!(signup(i).await.status, StatusCode::CREATED);
    }
    let a_now = admin(
        &stack,
        Method::GET,
        &format!("/api/admin/campagnes/{a}"),
        None,
    )
    .await;
    assert_eq!(
        a_now.body["progress"],
        json!({"recipients": 10, "sent": 9, "suppressed": 1, "failed": 0, "pending": 0,
            "unsubscribed": 2, "conversions": 3, "audience": 10}),
        "contact 8 signed up before the send: not a conversion"
    );

    // A second campaign (the reminder, in French): its audience now is the contacts with
    // consent, not suppressed, not customers: 5, 6, 7.
    let b = draft(&stack, "reminder", "prospects", "fr").await;
    let drafted = admin(
        &stack,
        Method::GET,
        &format!("/api/admin/campagnes/{b}"),
        None,
    )
    .await;
    assert_eq!(drafted.body["progress"]["audience"], 3, "{drafted:?}");
    schedule(&stack, &b).await;
    finished(&stack, &b).await;
    let reminders = campaign_messages(&sink.received(), "Rappel");
    assert_eq!(per_recipient(&reminders).len(), 3);
    let link = unsubscribe_path(&of(&reminders, 5));
    assert!(!link.contains("lang="), "{link}");
    let r = stack
        .gw
        .request(Method::POST, &link)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(signup(6).await.status, StatusCode::CREATED);
    // Contact 5 left through the reminder's link: the announcement's count does not move.
    // Contact 6 received both, then signed up: a conversion of each.
    let list = admin(&stack, Method::GET, "/api/admin/campagnes", None).await;
    let progress_of = |id: &str| {
        list.body["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["progress"]
            .clone()
    };
    assert_eq!(
        progress_of(&b),
        json!({"recipients": 6, "sent": 3, "suppressed": 3, "failed": 0, "pending": 0,
            "unsubscribed": 1, "conversions": 1, "audience": 6})
    );
    assert_eq!(
        progress_of(&a),
        json!({"recipients": 10, "sent": 9, "suppressed": 1, "failed": 0, "pending": 0,
            "unsubscribed": 2, "conversions": 4, "audience": 10})
    );
}

crate::on_both_backends!(
    campaign_to_300_contacts,
    suppression_after_queueing_wins,
    metrics_count_what_happened
);
