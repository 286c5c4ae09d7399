//! The seller's public identity and contact (e-commerce law 18-05, art. 11: an online seller shows
//! who it is and how to reach it), read from the configuration — never written in a page or a
//! template — and what the public pages quote from it: the footer, the legal notice, the terms of
//! sale, the privacy page (through the `Site` RPC) and every e-mail's footer and `Reply-To`.
//! The invoice identity (name, address, NIF, NIS, RC, article) stays in [`crate::billing_config`];
//! this module adds the contact and the publication facts and joins both.

use iafactory::proto::iafactory::promo::v1 as pb;

use crate::billing_config::BillingConfig;
use crate::domain::Email;
use crate::domain::account::{
    DISCOUNT_NOTICE_MS, EXPIRED_KEPT_MS, LINK_RATE_WINDOW_MS, LINK_TTL_MS, SESSION_ABSOLUTE_MS,
    SESSION_IDLE_MS,
};
use crate::idempotency::store::IDEMPOTENCY_TTL_MS;

/// Contact and publication flags of the `promo-service` binary.
#[derive(Debug, Clone, clap::Args)]
pub struct SiteArgs {
    /// Seller's contact e-mail, shown in the footer and the legal pages, and the `Reply-To` of
    /// every e-mail (so "reply to this message" reaches someone). Empty: no contact shown, e-mails
    /// carry no Reply-To and do not invite a reply.
    #[arg(long, env = "SELLER_EMAIL", default_value = "")]
    pub seller_email: String,

    /// Seller's telephone number, shown in the footer and the legal notice.
    #[arg(long, env = "SELLER_PHONE", default_value = "")]
    pub seller_phone: String,

    /// Seller's legal form and share capital, for the legal notice ("SARL au capital de …").
    #[arg(long, env = "SELLER_LEGAL_FORM", default_value = "")]
    pub seller_legal_form: String,

    /// Director of publication (directeur de la publication), for the legal notice.
    #[arg(long, env = "PUBLICATION_DIRECTOR", default_value = "")]
    pub publication_director: String,

    /// Hosting provider's name, for the legal notice.
    #[arg(long, env = "HOSTING_NAME", default_value = "")]
    pub hosting_name: String,

    /// Hosting provider's address, for the legal notice.
    #[arg(long, env = "HOSTING_ADDRESS", default_value = "")]
    pub hosting_address: String,

    /// Receipt number of the declaration to the personal-data authority (ANPDP, law 18-07),
    /// shown on the privacy page.
    #[arg(long, env = "DATA_PROTECTION_RECEIPT", default_value = "")]
    pub data_protection_receipt: String,
}

/// The validated contact and publication facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteConfig {
    /// Canonical form; `None`: no contact configured.
    pub contact_email: Option<String>,
    pub contact_phone: String,
    pub legal_form: String,
    pub publication_director: String,
    pub hosting_name: String,
    pub hosting_address: String,
    pub data_protection_receipt: String,
}

/// A contact setting that cannot be shown as given, naming it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SiteConfigError {
    #[error("SELLER_EMAIL is not a valid e-mail address: {0:?}")]
    Email(String),
    #[error(
        "SELLER_PHONE must hold 6 to 20 digits and only digits, spaces, '+', '-', '.', '(' or ')': {0:?}"
    )]
    Phone(String),
    #[error("{0} holds a line break or a control character")]
    Control(&'static str),
}

impl SiteArgs {
    pub fn validate(&self) -> Result<SiteConfig, SiteConfigError> {
        let text = |name: &'static str, v: &str| {
            let v = v.trim();
            if v.chars().any(char::is_control) {
                Err(SiteConfigError::Control(name))
            } else {
                Ok(v.to_owned())
            }
        };
        let email = self.seller_email.trim();
        let contact_email = if email.is_empty() {
            None
        } else {
            // Also a header value (Reply-To): the canonical form, checked like customers' ones.
            Some(
                Email::parse(email)
                    .map_err(|_| SiteConfigError::Email(email.to_owned()))?
                    .as_str()
                    .to_owned(),
            )
        };
        Ok(SiteConfig {
            contact_email,
            contact_phone: phone(&self.seller_phone)?,
            legal_form: text("SELLER_LEGAL_FORM", &self.seller_legal_form)?,
            publication_director: text("PUBLICATION_DIRECTOR", &self.publication_director)?,
            hosting_name: text("HOSTING_NAME", &self.hosting_name)?,
            hosting_address: text("HOSTING_ADDRESS", &self.hosting_address)?,
            data_protection_receipt: text(
                "DATA_PROTECTION_RECEIPT",
                &self.data_protection_receipt,
            )?,
        })
    }
}

/// A telephone number as people write it; it becomes a `tel:` link, so nothing else passes.
fn phone(raw: &str) -> Result<String, SiteConfigError> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok(String::new());
    }
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let allowed = v
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if !allowed || !(6..=20).contains(&digits) {
        return Err(SiteConfigError::Phone(v.to_owned()));
    }
    Ok(v.to_owned())
}

const DAY_MS: i64 = 86_400_000;

fn whole(ms: i64, unit_ms: i64) -> u32 {
    u32::try_from(ms / unit_ms).unwrap_or(u32::MAX)
}

/// What the `Site` RPC answers: the configuration joined with the retention the code applies.
pub fn site_info(site: &SiteConfig, billing: &BillingConfig) -> pb::SiteInfo {
    let seller = &billing.seller;
    let transfer = &billing.transfer;
    pb::SiteInfo {
        seller_name: seller.name.clone(),
        seller_address: seller.address.clone(),
        seller_legal_form: site.legal_form.clone(),
        seller_nif: seller.nif.clone(),
        seller_nis: seller.nis.clone(),
        seller_rc: seller.rc.clone(),
        seller_article: seller.article.clone(),
        contact_email: site.contact_email.clone().unwrap_or_default(),
        contact_phone: site.contact_phone.clone(),
        publication_director: site.publication_director.clone(),
        hosting_name: site.hosting_name.clone(),
        hosting_address: site.hosting_address.clone(),
        data_protection_receipt: site.data_protection_receipt.clone(),
        tax_rate_bp: billing.tax.rate_bp,
        prices_include_tax: billing.tax.prices_include_tax,
        invoice_due_days: whole(billing.dunning.due_ms, DAY_MS),
        suspension_grace_days: whole(billing.dunning.grace_ms, DAY_MS),
        first_invoice_prepaid: billing.dunning.first_invoice_prepaid,
        card_payment: billing.chargily.is_some(),
        bank_transfer: !transfer.bank_account.is_empty(),
        ccp_transfer: !transfer.ccp_account.is_empty(),
        baridimob_transfer: !transfer.baridimob_rip.is_empty(),
        sign_in_link_minutes: whole(LINK_TTL_MS, 60_000),
        session_max_days: whole(SESSION_ABSOLUTE_MS, DAY_MS),
        idempotency_hours: whole(IDEMPOTENCY_TTL_MS, 3_600_000),
        discount_notice_days: whole(DISCOUNT_NOTICE_MS, DAY_MS),
        sign_in_rate_window_minutes: whole(LINK_RATE_WINDOW_MS, 60_000),
        session_idle_hours: whole(SESSION_IDLE_MS, 3_600_000),
        expired_kept_hours: whole(EXPIRED_KEPT_MS, 3_600_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SiteArgs {
        SiteArgs {
            seller_email: String::new(),
            seller_phone: String::new(),
            seller_legal_form: String::new(),
            publication_director: String::new(),
            hosting_name: String::new(),
            hosting_address: String::new(),
            data_protection_receipt: String::new(),
        }
    }

    #[test]
    fn contact_is_checked_and_canonical() {
        let mut a = args();
        assert_eq!(a.validate().map(|c| c.contact_email), Ok(None));
        a.seller_email = " Contact@IAFactory.DZ ".into();
        assert_eq!(
            a.validate().map(|c| c.contact_email),
            Ok(Some("contact@iafactory.dz".into()))
        );
        a.seller_email = "contact@\r\nBcc: x@y.z".into();
        assert!(matches!(a.validate(), Err(SiteConfigError::Email(_))));
    }

    #[test]
    fn phone_is_a_number_people_write() {
        for ok in ["+213 21 00 00 00", "021-00.00.00", "(021) 000 000"] {
            assert_eq!(phone(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "12345",
            "+213 21 00 00 00 x",
            "javascript:1",
            "0".repeat(21).as_str(),
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_line_break_in_a_shown_field() {
        let mut a = args();
        a.hosting_name = "OVH\nSAS".into();
        assert_eq!(a.validate(), Err(SiteConfigError::Control("HOSTING_NAME")));
    }
}
