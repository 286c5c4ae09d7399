//! The e-mail templates (files under `templates/`, embedded at build time) and their rendering
//! with minijinja. HTML templates are auto-escaped: a customer's data cannot inject markup.
//!
//! Every e-mail ends with the same footer (`footer.<lang>.*`: the seller's identity and contact,
//! links to the legal pages), appended here so no template can forget it. A kind written in
//! Arabic has `<kind>.ar.txt` / `<kind>.ar.html` beside its French files (every e-mail a
//! customer receives has them); a kind without them (the operator's) is sent in French.

use minijinja::{Environment, Value, context};

use super::{AccountMail, CampaignMail, MailIdentity, MailKind, SignupMail};
use crate::domain::Lang;
use crate::domain::account::thousands;

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `(file name, source)` of a file under `templates/`, embedded at build time.
macro_rules! template {
    ($name:literal) => {
        ($name, include_str!(concat!("../../templates/", $name)))
    };
}

/// The footers, signup and account templates (`<kind>.txt`, `<kind>.html`, and
/// `<kind>.ar.txt`, `<kind>.ar.html` for the kinds written in Arabic).
const SOURCES: [(&str, &str); 52] = [
    template!("footer.fr.txt"),
    template!("footer.fr.html"),
    template!("footer.ar.txt"),
    template!("footer.ar.html"),
    template!("customer_confirmation.ar.txt"),
    template!("customer_confirmation.ar.html"),
    template!("customer_confirmation.txt"),
    template!("customer_confirmation.html"),
    template!("operator_notification.txt"),
    template!("operator_notification.html"),
    template!("sign_in_link.txt"),
    template!("sign_in_link.html"),
    template!("key_created.txt"),
    template!("key_created.html"),
    template!("key_revoked.txt"),
    template!("key_revoked.html"),
    template!("package_changed.txt"),
    template!("package_changed.html"),
    template!("discount_ending.txt"),
    template!("discount_ending.html"),
    template!("quota_level.txt"),
    template!("quota_level.html"),
    template!("budget_alert.txt"),
    template!("budget_alert.html"),
    template!("invoice_issued.txt"),
    template!("invoice_issued.html"),
    template!("payment_reminder.txt"),
    template!("payment_reminder.html"),
    template!("payment_overdue.txt"),
    template!("payment_overdue.html"),
    template!("subscription_suspended.txt"),
    template!("subscription_suspended.html"),
    template!("sign_in_link.ar.txt"),
    template!("sign_in_link.ar.html"),
    template!("key_created.ar.txt"),
    template!("key_created.ar.html"),
    template!("key_revoked.ar.txt"),
    template!("key_revoked.ar.html"),
    template!("package_changed.ar.txt"),
    template!("package_changed.ar.html"),
    template!("discount_ending.ar.txt"),
    template!("discount_ending.ar.html"),
    template!("quota_level.ar.txt"),
    template!("quota_level.ar.html"),
    template!("invoice_issued.ar.txt"),
    template!("invoice_issued.ar.html"),
    template!("payment_reminder.ar.txt"),
    template!("payment_reminder.ar.html"),
    template!("payment_overdue.ar.txt"),
    template!("payment_overdue.ar.html"),
    template!("subscription_suspended.ar.txt"),
    template!("subscription_suspended.ar.html"),
];

/// The campaign and waitlist templates (`campaign_<template>.<locale>.<ext>`,
/// `waitlist_confirm[.ar].<ext>`).
const CAMPAIGN_SOURCES: [(&str, &str); 20] = [
    template!("campaign_announcement.fr.txt"),
    template!("campaign_announcement.fr.html"),
    template!("campaign_announcement.ar.txt"),
    template!("campaign_announcement.ar.html"),
    template!("campaign_reminder.fr.txt"),
    template!("campaign_reminder.fr.html"),
    template!("campaign_reminder.ar.txt"),
    template!("campaign_reminder.ar.html"),
    template!("campaign_waitlist_over.fr.txt"),
    template!("campaign_waitlist_over.fr.html"),
    template!("campaign_waitlist_over.ar.txt"),
    template!("campaign_waitlist_over.ar.html"),
    template!("campaign_waitlist_back.fr.txt"),
    template!("campaign_waitlist_back.fr.html"),
    template!("campaign_waitlist_back.ar.txt"),
    template!("campaign_waitlist_back.ar.html"),
    template!("waitlist_confirm.txt"),
    template!("waitlist_confirm.html"),
    template!("waitlist_confirm.ar.txt"),
    template!("waitlist_confirm.ar.html"),
];

pub struct Templates {
    env: Environment<'static>,
    identity: MailIdentity,
}

impl Templates {
    pub fn new() -> Result<Templates, minijinja::Error> {
        let mut env = Environment::new();
        // Auto-escaping follows the name: `.html` escapes, `.txt` does not.
        for (name, source) in SOURCES.into_iter().chain(CAMPAIGN_SOURCES) {
            env.add_template(name, source)?;
        }
        env.add_filter("dzd", |v: u64| format!("{} DZD", thousands(v)));
        env.add_filter("thousands", thousands);
        Ok(Templates {
            env,
            identity: MailIdentity::default(),
        })
    }

    /// The identity every footer shows and replies go to.
    pub fn with_identity(mut self, identity: MailIdentity) -> Templates {
        self.identity = identity;
        self
    }

    /// A signup e-mail (customer confirmation in the customer's language, operator notification
    /// in French).
    pub fn render(&self, kind: MailKind, mail: &SignupMail) -> Result<Rendered, minijinja::Error> {
        let (lang, subject) = match kind {
            MailKind::OperatorNotification => (
                Lang::Fr,
                format!(
                    "Nouvelle inscription : {} ({})",
                    mail.email, mail.package_name
                ),
            ),
            _ if mail.lang == Lang::Ar => (
                Lang::Ar,
                format!("أهلًا بك في IAFactory — باقة {}", mail.package_name),
            ),
            _ => (
                Lang::Fr,
                format!("Bienvenue sur IAFactory — forfait {}", mail.package_name),
            ),
        };
        self.render_with(kind, lang, subject, Value::from_serialize(mail))
    }

    /// An account e-mail, in `lang` (the customer's) when its kind is written in Arabic; the
    /// operator's budget alert is French whatever `lang` says.
    pub fn render_account(
        &self,
        kind: MailKind,
        mail: &AccountMail,
        lang: Lang,
    ) -> Result<Rendered, minijinja::Error> {
        let lang = if kind == MailKind::BudgetAlert {
            Lang::Fr
        } else {
            lang
        };
        let subject = match lang {
            Lang::Fr => Self::account_subject_fr(kind, mail),
            Lang::Ar => Self::account_subject_ar(kind, mail),
        };
        self.render_with(kind, lang, subject, Value::from_serialize(mail))
    }

    fn account_subject_fr(kind: MailKind, mail: &AccountMail) -> String {
        match kind {
            MailKind::SignInLink => "Votre lien de connexion IAFactory".to_owned(),
            MailKind::KeyCreated => {
                format!("Avis de sécurité : nouvelle clé API {}…", mail.key_prefix)
            }
            MailKind::KeyRevoked => {
                format!("Avis de sécurité : clé API {}… révoquée", mail.key_prefix)
            }
            MailKind::PackageChanged => {
                format!("Changement de forfait : {}", mail.package_name)
            }
            MailKind::DiscountEnding => {
                format!("Votre réduction se termine le {}", mail.date_fr)
            }
            MailKind::InvoiceIssued => format!("Votre facture IAFactory {}", mail.invoice_number),
            MailKind::PaymentReminder => {
                format!(
                    "Rappel : facture {} à régler avant le {}",
                    mail.invoice_number, mail.date_fr
                )
            }
            MailKind::PaymentOverdue => format!("Facture {} impayée", mail.invoice_number),
            MailKind::SubscriptionSuspended => {
                "Votre abonnement IAFactory est suspendu (facture impayée)".to_owned()
            }
            MailKind::QuotaLevel if mail.percent >= 100 => "Tokens du mois épuisés".to_owned(),
            MailKind::BudgetAlert if mail.percent >= 100 => format!(
                "Budget de coût épuisé pour {} ({}) : appels refusés",
                mail.customer_email, mail.package_name
            ),
            MailKind::BudgetAlert => format!(
                "Budget de coût : {} % atteint pour {} ({})",
                mail.percent, mail.customer_email, mail.package_name
            ),
            _ => format!("{} % de vos tokens du mois utilisés", mail.percent),
        }
    }

    fn account_subject_ar(kind: MailKind, mail: &AccountMail) -> String {
        let date = if mail.date_ar.is_empty() {
            &mail.date_fr
        } else {
            &mail.date_ar
        };
        match kind {
            MailKind::SignInLink => "رابط تسجيل الدخول إلى IAFactory".to_owned(),
            MailKind::KeyCreated => {
                format!("إشعار أمني: مفتاح API جديد {}…", mail.key_prefix)
            }
            MailKind::KeyRevoked => {
                format!("إشعار أمني: إلغاء مفتاح API {}…", mail.key_prefix)
            }
            MailKind::PackageChanged => format!("تغيير الباقة: {}", mail.package_name),
            MailKind::DiscountEnding => format!("ينتهي تخفيضك يوم {date}"),
            MailKind::InvoiceIssued => format!("فاتورتك من IAFactory رقم {}", mail.invoice_number),
            MailKind::PaymentReminder => {
                format!("تذكير: الفاتورة {} تُدفع قبل {date}", mail.invoice_number)
            }
            MailKind::PaymentOverdue => format!("الفاتورة {} غير مدفوعة", mail.invoice_number),
            MailKind::SubscriptionSuspended => {
                "اشتراكك في IAFactory معلّق (فاتورة غير مدفوعة)".to_owned()
            }
            MailKind::QuotaLevel if mail.percent >= 100 => {
                "نفدت رموز (tokens) هذا الشهر".to_owned()
            }
            _ => format!("استعملت {}% من رموز (tokens) هذا الشهر", mail.percent),
        }
    }

    /// A campaign message (its template and language are in the payload) or a waitlist
    /// confirmation.
    pub fn render_campaign(
        &self,
        kind: MailKind,
        mail: &CampaignMail,
    ) -> Result<Rendered, minijinja::Error> {
        use crate::domain::campaign::{Locale, Template};
        let unknown =
            |what: String| minijinja::Error::new(minijinja::ErrorKind::TemplateNotFound, what);
        let (base, subject) = if kind == MailKind::WaitlistConfirm {
            // In the language of the page the visitor joined from (rows written before the
            // waitlist knew it have `fr`).
            if mail.locale == "ar" {
                (
                    "waitlist_confirm.ar".to_owned(),
                    "أكّد تسجيلك في قائمة انتظار IAFactory".to_owned(),
                )
            } else {
                (
                    "waitlist_confirm".to_owned(),
                    "Confirmez votre inscription sur la liste d'attente IAFactory".to_owned(),
                )
            }
        } else {
            let template = Template::parse(&mail.template).map_err(|e| unknown(e.to_string()))?;
            let locale = Locale::parse(&mail.locale).map_err(|e| unknown(e.to_string()))?;
            let subject = template.subject(locale);
            (
                format!("campaign_{}.{}", template.as_str(), locale.as_str()),
                if mail.test {
                    format!("[TEST] {subject}")
                } else {
                    subject.to_owned()
                },
            )
        };
        // The identity footer in the message's own language, as on every other e-mail.
        let lang = if mail.locale == "ar" {
            Lang::Ar
        } else {
            Lang::Fr
        };
        self.render_body(&base, lang, subject, Value::from_serialize(mail))
    }

    fn render_with(
        &self,
        kind: MailKind,
        lang: Lang,
        subject: String,
        ctx: Value,
    ) -> Result<Rendered, minijinja::Error> {
        let name = kind.as_str();
        // The Arabic files when this kind has them; French otherwise (body and footer agree).
        let (body, lang) = match lang {
            Lang::Ar if self.env.get_template(&format!("{name}.ar.txt")).is_ok() => {
                (format!("{name}.ar"), Lang::Ar)
            }
            _ => (name.to_owned(), Lang::Fr),
        };
        self.render_body(&body, lang, subject, ctx)
    }

    /// Renders the body templates `{body}.txt` / `{body}.html` with `ctx` and appends the
    /// identity footer in `lang`.
    fn render_body(
        &self,
        body: &str,
        lang: Lang,
        subject: String,
        ctx: Value,
    ) -> Result<Rendered, minijinja::Error> {
        let footer_ctx = context! { seller => Value::from_serialize(&self.identity) };
        let footer = |ext: &str| {
            self.env
                .get_template(&format!("footer.{}.{ext}", lang.as_str()))?
                .render(&footer_ctx)
        };
        let text = self
            .env
            .get_template(&format!("{body}.txt"))?
            .render(&ctx)?;
        let html = self
            .env
            .get_template(&format!("{body}.html"))?
            .render(&ctx)?;
        Ok(Rendered {
            subject: subject.replace(['\r', '\n'], " "),
            text: format!("{}\n\n{}", text.trim_end(), footer("txt")?.trim_end()),
            html: with_footer(&html, &footer("html")?),
        })
    }
}

/// `html` with `footer` placed just before its closing `</body>` (at the end when it has none).
fn with_footer(html: &str, footer: &str) -> String {
    match html.rfind("</body>") {
        Some(at) => format!("{}{footer}\n{}", &html[..at], &html[at..]),
        None => format!("{html}\n{footer}"),
    }
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
            discount_ends_at_ar: "6 جوان 2026".into(),
            tokens_per_month: 5_000_000,
            requests_per_minute: 60,
            api_key_prefix: "iaf_AbCdEf".into(),
            created_at: "2025-12-06T10:00:00.000Z".into(),
            public_url: "http://localhost:8180".into(),
            lang: Lang::Fr,
        }
    }

    fn identity() -> MailIdentity {
        MailIdentity::new(
            &crate::billing_config::Seller {
                name: "IAFactory SARL".into(),
                address: "12 rue Didouche Mourad, Alger".into(),
                ..Default::default()
            },
            &crate::site_config::SiteConfig {
                contact_email: Some("contact@iafactory.dz".into()),
                contact_phone: "+213 21 00 00 00".into(),
                ..Default::default()
            },
            "https://api.iafactory.dz/",
        )
    }

    #[test]
    fn every_mail_ends_with_the_identity_and_invites_a_reply_only_with_a_contact() {
        let t = Templates::new().unwrap().with_identity(identity());
        let r = t.render(MailKind::CustomerConfirmation, &mail()).unwrap();
        for part in [&r.text, &r.html] {
            assert!(part.contains("IAFactory SARL"), "{part}");
            assert!(part.contains("contact@iafactory.dz"), "{part}");
            assert!(part.contains("+213 21 00 00 00"), "{part}");
            // (minijinja escapes the HTML attribute's slashes as `&#x2f;`, which browsers read.)
            assert!(
                part.contains("api-packages") && part.contains("mentions-legales"),
                "{part}"
            );
            assert!(part.contains("Répondez simplement à ce message"), "{part}");
        }
        assert!(
            r.text
                .contains("https://api.iafactory.dz/api-packages/mentions-legales/"),
            "{}",
            r.text
        );
        assert!(r.html.contains("href=\"tel:+21321000000\""), "{}", r.html);
        // The footer sits inside the body, after the message.
        let footer_at = r.html.find("IAFactory SARL").unwrap();
        assert!(footer_at < r.html.find("</body>").unwrap());
        assert!(footer_at > r.html.find("Identifiant client").unwrap());

        // No contact configured: nothing invites a reply nobody reads.
        let silent = Templates::new().unwrap();
        let r = silent
            .render(MailKind::CustomerConfirmation, &mail())
            .unwrap();
        assert!(!r.text.contains("pondez"), "{}", r.text);
        assert!(!r.html.contains("mailto:"), "{}", r.html);
        assert!(r.text.contains("Mentions légales"), "{}", r.text);
    }

    #[test]
    fn arabic_confirmation_is_arabic_right_to_left_with_an_arabic_footer() {
        let t = Templates::new().unwrap().with_identity(identity());
        let mut m = mail();
        m.lang = Lang::Ar;
        let r = t.render(MailKind::CustomerConfirmation, &m).unwrap();
        assert!(
            r.subject.starts_with("أهلًا بك في IAFactory"),
            "{}",
            r.subject
        );
        assert!(
            r.html.contains("<html lang=\"ar\" dir=\"rtl\">"),
            "{}",
            r.html
        );
        assert!(r.text.contains("تم تأكيد اشتراكك"), "{}", r.text);
        assert!(r.text.contains("حتى 6 جوان 2026"), "{}", r.text);
        assert!(r.text.contains("يكفي أن ترد على هذه الرسالة"), "{}", r.text);
        assert!(!r.text.contains("Bienvenue"), "{}", r.text);
        // Escaping holds in Arabic too.
        assert!(!r.html.contains("<b>pro"), "{}", r.html);
        // The operator's notice of the same signup stays French.
        let op = t.render(MailKind::OperatorNotification, &m).unwrap();
        assert!(
            op.subject.starts_with("Nouvelle inscription"),
            "{}",
            op.subject
        );
        assert!(op.text.contains("Répondez simplement"), "{}", op.text);
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
    fn every_account_kind_renders_and_escapes() {
        let t = Templates::new().unwrap();
        let mail = AccountMail {
            email: "a@b.dz".into(),
            public_url: "http://localhost:8180".into(),
            link: "http://localhost:8180/compte/connexion#jeton=abc".into(),
            key_prefix: "iaf_AbCdEf".into(),
            key_name: "<script>x</script>".into(),
            package_name: "Business".into(),
            from_package_name: "Dev".into(),
            price_dzd: 75_000,
            base_price_dzd: 100_000,
            discount_percent: 25,
            date_fr: "6 juin 2026".into(),
            date_ar: "6 جوان 2026".into(),
            message: "révoquée par vous".into(),
            message_ar: "أُلغي من طرفك".into(),
            percent: 80,
            tokens_used: 800_000,
            tokens_per_month: 1_000_000,
            invoice_number: "2026-000123".into(),
            customer_email: "<b>c@d.dz</b>".into(),
            cost_used_usd: "0.800000 USD".into(),
            cost_budget_usd: "1.000000 USD".into(),
        };
        let alert = t
            .render_account(MailKind::BudgetAlert, &mail, Lang::Ar)
            .unwrap();
        assert!(
            alert.subject.starts_with("Budget de coût"),
            "{}",
            alert.subject
        );
        assert!(alert.text.contains("0.800000 USD") && alert.text.contains("1.000000 USD"));
        assert!(alert.html.contains("&lt;b&gt;c@d.dz"), "{}", alert.html);
        assert!(!alert.text.contains("épuisé le budget"), "{}", alert.text);
        let spent = t
            .render_account(
                MailKind::BudgetAlert,
                &AccountMail {
                    percent: 100,
                    ..mail.clone()
                },
                Lang::Fr,
            )
            .unwrap();
        assert!(spent.subject.contains("épuisé"), "{}", spent.subject);
        assert!(spent.text.contains("épuisé le budget"), "{}", spent.text);
        assert!(spent.html.contains("&lt;b&gt;c@d.dz"), "{}", spent.html);
        for kind in super::super::ALL_KINDS
            .into_iter()
            .filter(|k| !k.is_signup() && !k.is_campaign())
        {
            let r = t.render_account(kind, &mail, Lang::Fr).unwrap();
            assert!(!r.html.contains("<script>"), "{kind:?}: {}", r.html);
            assert!(!r.text.is_empty() && !r.subject.is_empty(), "{kind:?}");
        }
        // Every kind a customer receives has its Arabic version: right to left, the Arabic
        // date and sentence, no French left but the names of things.
        for kind in super::super::ALL_KINDS
            .into_iter()
            .filter(|k| !k.is_signup() && !k.is_campaign() && *k != MailKind::BudgetAlert)
        {
            let r = t.render_account(kind, &mail, Lang::Ar).unwrap();
            assert!(r.html.contains("dir=\"rtl\""), "{kind:?}: {}", r.html);
            assert!(r.text.starts_with("مرحبًا"), "{kind:?}: {}", r.text);
            assert!(!r.text.contains("Bonjour"), "{kind:?}: {}", r.text);
            assert!(!r.subject.contains("Votre"), "{kind:?}: {}", r.subject);
            assert!(!r.html.contains("<script>"), "{kind:?}: {}", r.html);
            assert!(!r.text.contains("juin"), "{kind:?}: {}", r.text);
            assert!(r.text.contains("فريق IAFactory"), "{kind:?}");
        }
        let revoked = t
            .render_account(MailKind::KeyRevoked, &mail, Lang::Ar)
            .unwrap();
        assert!(revoked.text.contains("أُلغي من طرفك"), "{}", revoked.text);
        assert!(revoked.text.contains("6 جوان 2026"), "{}", revoked.text);
        // A row written before the Arabic forms existed shows the French ones rather than nothing.
        let old = AccountMail {
            date_ar: String::new(),
            message_ar: String::new(),
            ..mail.clone()
        };
        let revoked = t
            .render_account(MailKind::KeyRevoked, &old, Lang::Ar)
            .unwrap();
        assert!(
            revoked.text.contains("révoquée par vous"),
            "{}",
            revoked.text
        );
        let link = t
            .render_account(MailKind::SignInLink, &mail, Lang::Fr)
            .unwrap();
        assert!(link.text.contains("#jeton=abc"), "{}", link.text);
        let ending = t
            .render_account(MailKind::DiscountEnding, &mail, Lang::Fr)
            .unwrap();
        assert!(
            ending.text.contains("100\u{202f}000 DZD"),
            "{}",
            ending.text
        );
        assert!(ending.text.contains("6 juin 2026"));
    }

    #[test]
    fn every_campaign_template_renders_in_both_languages_with_its_unsubscribe_link() {
        use crate::domain::campaign::ALL_TEMPLATES;
        let t = Templates::new().unwrap();
        for template in ALL_TEMPLATES {
            for locale in ["fr", "ar"] {
                let mail = CampaignMail {
                    email: "a@b.dz".into(),
                    name: "<b>Amine</b>".into(),
                    campaign_id: "cmp_1".into(),
                    template: template.as_str().into(),
                    locale: locale.into(),
                    unsubscribe_url: "https://x.dz/desabonnement?jeton=abc.def".into(),
                    confirm_url: String::new(),
                    site_url: "https://x.dz/api-packages/".into(),
                    launch_code: "LAUNCH30".into(),
                    test: false,
                };
                let r = t.render_campaign(MailKind::Campaign, &mail).unwrap();
                assert!(
                    r.text.contains(&mail.unsubscribe_url),
                    "{template:?} {locale}"
                );
                assert!(r.html.contains("desabonnement?jeton=abc.def"), "{}", r.html);
                assert!(!r.html.contains("<b>Amine"), "{}", r.html);
                assert_eq!(r.html.contains("dir=\"rtl\""), locale == "ar");
                assert!(!r.subject.starts_with("[TEST]"));
                let test = t
                    .render_campaign(MailKind::Campaign, &CampaignMail { test: true, ..mail })
                    .unwrap();
                assert!(test.subject.starts_with("[TEST]"));
                assert!(test.text.starts_with("[TEST]"));
            }
        }
        let confirm = t
            .render_campaign(
                MailKind::WaitlistConfirm,
                &CampaignMail {
                    confirm_url: "https://x.dz/liste-attente/confirmer?jeton=t".into(),
                    ..CampaignMail::default()
                },
            )
            .unwrap();
        assert!(confirm.text.contains("confirmer?jeton=t"));
    }
}
