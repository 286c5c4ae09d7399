//! E-mails and the pages their links open, in the reader's language, through the real SMTP
//! sink and real HTTP: the waitlist's confirmation (and its confirm page) in Arabic when the
//! visitor joined from the Arabic page, French otherwise; a customer who signed up in Arabic
//! gets the account e-mails (sign-in link, package change) in Arabic, a French one in French.
//! On SQLite and on PostgreSQL.

use std::time::Duration;

use iafactory_testkit::Backend;
use iafactory_testkit::smtp_sink::{Received, SmtpSink};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::compte::{call, sign_in};
use crate::helpers::{Promo, Stack};

/// A received message, decoded: subject, text and HTML bodies.
pub(crate) struct Mail {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

pub(crate) fn decode(r: &Received) -> Mail {
    let m = mail_parser::MessageParser::default()
        .parse(r.data.as_bytes())
        .unwrap();
    Mail {
        subject: m.subject().unwrap_or_default().to_owned(),
        text: m.body_text(0).unwrap_or_default().into_owned(),
        html: m.body_html(0).unwrap_or_default().into_owned(),
    }
}

/// The messages to `to` once there are `n` of them whose subject contains `part`.
pub(crate) async fn wait_for(sink: &SmtpSink, to: &str, part: &str, n: usize) -> Vec<Mail> {
    for _ in 0..300 {
        let found: Vec<Mail> = sink
            .received()
            .iter()
            .filter(|r| r.to.iter().any(|t| t.contains(to)))
            .map(decode)
            .filter(|m| m.subject.contains(part))
            .collect();
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<String> = sink
        .received()
        .iter()
        .map(|r| format!("{:?} {}", r.to, decode(r).subject))
        .collect();
    panic!("no e-mail to {to} with {part:?} in its subject; received: {seen:#?}");
}

/// The path and query of the first link in `text` to `path` (the host is the configured public
/// URL; the test sends to its gateway).
pub(crate) fn link_path(text: &str, path: &str) -> String {
    let at = text
        .find(path)
        .unwrap_or_else(|| panic!("no {path} in {text}"));
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .next()
        .unwrap()
        .to_owned()
}

async fn page(stack: &Stack, method: Method, path: &str) -> (StatusCode, String) {
    let mut r = stack.gw.request(method.clone(), path);
    if method == Method::POST {
        r = r
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click");
    }
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn spawn(backend: Backend, sink: &SmtpSink) -> Stack {
    let smtp = sink.url();
    let promo = Promo::spawn_on_backend(backend, move |c| {
        c.mail.smtp_url = Some(smtp.clone());
        c.mail.poll_interval = Duration::from_millis(20);
    })
    .await;
    Stack::spawn_on(promo, |_| {}).await
}

async fn waitlist_confirmation_follows_the_page_language(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stack = spawn(backend, &sink).await;

    let ar = stack
        .post(
            "/api/promo/waitlist",
            json!({"email": "amina@exemple.dz", "consent": true, "lang": "ar"}),
        )
        .await;
    assert_eq!(ar.status, StatusCode::ACCEPTED, "{ar:?}");
    assert!(
        ar.body["message"].as_str().unwrap().starts_with("شكرًا"),
        "{ar:?}"
    );
    let fr = stack
        .post(
            "/api/promo/waitlist",
            json!({"email": "paul@exemple.dz", "consent": true}),
        )
        .await;
    assert_eq!(fr.status, StatusCode::ACCEPTED, "{fr:?}");
    assert!(
        fr.body["message"].as_str().unwrap().starts_with("Merci"),
        "{fr:?}"
    );
    // Another language is refused, and nothing is written.
    stack
        .post(
            "/api/promo/waitlist",
            json!({"email": "autre@exemple.dz", "consent": true, "lang": "en"}),
        )
        .await
        .assert_error(400, "invalid_argument");

    let mail = wait_for(&sink, "amina@exemple.dz", "أكّد تسجيلك", 1)
        .await
        .remove(0);
    assert!(mail.text.starts_with("مرحبًا"), "{}", mail.text);
    assert!(!mail.text.contains("Bonjour"), "{}", mail.text);
    // The identity footer in Arabic too.
    assert!(!mail.text.contains("Mentions légales"), "{}", mail.text);
    assert!(mail.html.contains("dir=\"rtl\""), "{}", mail.html);
    let confirm = link_path(&mail.text, "/liste-attente/confirmer?jeton=");
    assert!(confirm.ends_with("&lang=ar"), "{confirm}");

    let fr_mail = wait_for(&sink, "paul@exemple.dz", "Confirmez", 1)
        .await
        .remove(0);
    assert!(fr_mail.text.starts_with("Bonjour"), "{}", fr_mail.text);
    let fr_confirm = link_path(&fr_mail.text, "/liste-attente/confirmer?jeton=");
    assert!(!fr_confirm.contains("lang="), "{fr_confirm}");

    // The page of the Arabic link: right to left, Arabic words, the button keeps the language;
    // opening it confirms nothing.
    let (status, html) = page(&stack, Method::GET, &confirm).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"ar\" dir=\"rtl\">"), "{html}");
    assert!(html.contains("تأكيد التسجيل في قائمة الانتظار"), "{html}");
    assert!(html.contains("&amp;lang=ar\""), "{html}");
    assert!(!html.contains("Confirmer"), "{html}");
    let list = stack.admin_get("/api/admin/liste-attente").await;
    assert_eq!(list.body["confirmed"], 0, "{list:?}");
    let (status, html) = page(&stack, Method::POST, &confirm).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("تم تأكيد تسجيلك"), "{html}");
    // A damaged Arabic link: refused in Arabic.
    let (status, html) = page(&stack, Method::POST, &confirm.replace("jeton=", "jeton=A")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("dir=\"rtl\""), "{html}");
    assert!(html.contains("هذا الرابط غير صالح"), "{html}");

    // The French link stays French.
    let (status, html) = page(&stack, Method::GET, &fr_confirm).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    let (status, html) = page(&stack, Method::POST, &fr_confirm).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Inscription confirmée"), "{html}");

    // The operator sees each entry's language.
    let list = stack.admin_get("/api/admin/liste-attente").await;
    assert_eq!(list.body["confirmed"], 2, "{list:?}");
    let lang_of = |email: &str| {
        list.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["email"] == email)
            .map(|e| e["lang"].clone())
    };
    assert_eq!(lang_of("amina@exemple.dz"), Some(json!("ar")));
    assert_eq!(lang_of("paul@exemple.dz"), Some(json!("fr")));
}

async fn account_mail_in_the_customers_language(backend: Backend) {
    let sink = SmtpSink::start().await;
    let stack = spawn(backend, &sink).await;

    let ar = stack
        .post(
            "/api/promo/signup",
            json!({"email": "arabe@exemple.dz", "package": "dev", "promo_code": "LAUNCH30", "lang": "ar"}),
        )
        .await;
    assert_eq!(ar.status, StatusCode::CREATED, "{ar:?}");
    let fr = stack.signup("francais@exemple.dz", "dev", "LAUNCH30").await;
    assert_eq!(fr.status, StatusCode::CREATED, "{fr:?}");

    // Sign-in links (the session of each is opened from its outbox row; the e-mail itself is
    // read from the sink).
    let (ar_session, _) = sign_in(&stack, "arabe@exemple.dz", None, false).await;
    let (fr_session, _) = sign_in(&stack, "francais@exemple.dz", None, false).await;
    let link = wait_for(&sink, "arabe@exemple.dz", "رابط تسجيل الدخول", 1)
        .await
        .remove(0);
    assert!(link.text.starts_with("مرحبًا"), "{}", link.text);
    assert!(
        link.text.contains("/compte/connexion#jeton="),
        "{}",
        link.text
    );
    assert!(link.html.contains("dir=\"rtl\""), "{}", link.html);
    assert!(!link.text.contains("Bonjour"), "{}", link.text);
    let fr_link = wait_for(&sink, "francais@exemple.dz", "Votre lien de connexion", 1)
        .await
        .remove(0);
    assert!(fr_link.text.starts_with("Bonjour"), "{}", fr_link.text);
    assert!(
        !sink
            .received()
            .iter()
            .map(decode)
            .any(|m| m.subject.contains("رابط") && m.text.contains("francais@")),
        "a French customer got Arabic"
    );

    // A package change: its computed sentence in Arabic for the Arabic customer.
    for (session, email, part) in [
        (&ar_session, "arabe@exemple.dz", "تغيير الباقة"),
        (&fr_session, "francais@exemple.dz", "Changement de forfait"),
    ] {
        let done = call(
            &stack,
            Method::POST,
            "/api/compte/forfait",
            Some(session),
            true,
            Some(json!({"package": "business"})),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{done:?}");
        let mail = wait_for(&sink, email, part, 1).await.remove(0);
        if email.starts_with("arabe") {
            assert!(
                mail.text
                    .contains("الانتقال إلى باقة Business ابتداءً من الآن"),
                "{}",
                mail.text
            );
            assert!(!mail.text.contains("Passage au forfait"), "{}", mail.text);
            assert!(mail.html.contains("dir=\"rtl\""), "{}", mail.html);
        } else {
            assert!(
                mail.text.contains("Passage au forfait Business"),
                "{}",
                mail.text
            );
            assert!(!mail.html.contains("dir=\"rtl\""), "{}", mail.html);
        }
    }
}

crate::on_both_backends!(
    waitlist_confirmation_follows_the_page_language,
    account_mail_in_the_customers_language
);
