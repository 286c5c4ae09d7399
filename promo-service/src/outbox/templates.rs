//! The e-mail templates (files under `templates/`, embedded at build time) and their rendering
//! with minijinja. HTML templates are auto-escaped: a customer's data cannot inject markup.

use minijinja::{Environment, Value};

use super::{MailKind, SignupMail};

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Result<Templates, minijinja::Error> {
        let mut env = Environment::new();
        // Auto-escaping follows the name: `.html` escapes, `.txt` does not.
        env.add_template(
            "customer_confirmation.txt",
            include_str!("../../templates/customer_confirmation.txt"),
        )?;
        env.add_template(
            "customer_confirmation.html",
            include_str!("../../templates/customer_confirmation.html"),
        )?;
        env.add_template(
            "operator_notification.txt",
            include_str!("../../templates/operator_notification.txt"),
        )?;
        env.add_template(
            "operator_notification.html",
            include_str!("../../templates/operator_notification.html"),
        )?;
        env.add_filter("dzd", |v: u64| format!("{} DZD", thousands(v)));
        env.add_filter("thousands", thousands);
        Ok(Templates { env })
    }

    pub fn render(&self, kind: MailKind, mail: &SignupMail) -> Result<Rendered, minijinja::Error> {
        let ctx = Value::from_serialize(mail);
        let name = kind.as_str();
        let subject = match kind {
            MailKind::CustomerConfirmation => {
                format!("Bienvenue sur IAFactory — forfait {}", mail.package_name)
            }
            MailKind::OperatorNotification => format!(
                "Nouvelle inscription : {} ({})",
                mail.email, mail.package_name
            ),
        };
        Ok(Rendered {
            subject: subject.replace(['\r', '\n'], " "),
            text: self
                .env
                .get_template(&format!("{name}.txt"))?
                .render(&ctx)?,
            html: self
                .env
                .get_template(&format!("{name}.html"))?
                .render(&ctx)?,
        })
    }
}

/// 1234567 → "1 234 567" (French grouping, narrow no-break spaces).
fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> SignupMail {
        SignupMail {
            user_id: "usr_1".into(),
            email: "a@b.dz".into(),
            package_id: "dev".into(),
            package_name: "Dev <b>pro</b>".into(),
            base_price_dzd: 15_000,
            price_dzd: 10_050,
            discount_percent: 33,
            promo_code: "LAUNCH30".into(),
            discount_ends_at_fr: "6 juin 2026".into(),
            tokens_per_month: 5_000_000,
            requests_per_minute: 60,
            api_key_prefix: "iaf_AbCdEf".into(),
            created_at: "2025-12-06T10:00:00.000Z".into(),
            public_url: "http://localhost:8180".into(),
        }
    }

    #[test]
    fn confirmation_has_the_facts_and_never_a_key() {
        let t = Templates::new().unwrap();
        let r = t.render(MailKind::CustomerConfirmation, &mail()).unwrap();
        assert!(
            r.text
                .contains("10\u{202f}050 DZD au lieu de 15\u{202f}000 DZD"),
            "{}",
            r.text
        );
        assert!(r.text.contains("jusqu'au 6 juin 2026"));
        assert!(r.text.contains("iaf_AbCdEf…"));
        assert!(
            r.html.contains("Dev &lt;b&gt;pro&lt;&#x2f;b&gt;")
                || r.html.contains("Dev &lt;b&gt;pro&lt;/b&gt;"),
            "{}",
            r.html
        );
        assert!(!r.html.contains("<b>pro"));
        assert!(r.subject.starts_with("Bienvenue sur IAFactory"));
    }

    #[test]
    fn full_price_mail_mentions_no_discount() {
        let t = Templates::new().unwrap();
        let mut m = mail();
        m.discount_percent = 0;
        m.price_dzd = 15_000;
        let r = t.render(MailKind::OperatorNotification, &m).unwrap();
        assert!(!r.text.contains('%'), "{}", r.text);
        assert!(r.text.contains("a@b.dz"));
    }

    #[test]
    fn thousands_grouping() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1\u{202f}000");
        assert_eq!(thousands(100_000_000), "100\u{202f}000\u{202f}000");
    }
}
