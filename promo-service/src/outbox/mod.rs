//! Transactional outbox for signup, account, campaign and waitlist e-mails.
//!
//! A customer's e-mails are written in the language they signed up in (`signups.lang`): the
//! signup's in its payload, the account e-mails' read by the worker when it sends them (their
//! payload carries the French and Arabic forms of the computed sentences and dates); e-mails to
//! the operator stay French.
//!
//! The transaction that causes an e-mail writes its row (signup: customer confirmation, operator
//! notice; account: sign-in link, key and package notices), so an e-mail exists if and only if
//! what it reports committed. A worker in every replica claims due rows
//! with a guarded single-row `UPDATE` (the claim succeeds for one worker only, on SQLite and on
//! PostgreSQL), sends them over SMTP and marks them sent. Delivery is at-least-once: a worker that
//! dies after the relay accepted a message but before marking it leaves a claim that expires, and
//! another attempt sends it again. Every message carries `Message-ID: <row id@iafactory>` so a
//! receiver can drop such a duplicate.

pub mod eligibility;
pub mod store;
pub mod templates;
pub mod worker;

use serde::{Deserialize, Serialize};

pub use store::MailRow;

/// What an outbox e-mail is for; also the template name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    CustomerConfirmation,
    OperatorNotification,
    SignInLink,
    KeyCreated,
    KeyRevoked,
    PackageChanged,
    DiscountEnding,
    QuotaLevel,
    InvoiceIssued,
    PaymentReminder,
    PaymentOverdue,
    SubscriptionSuspended,
    /// To the operator: a customer spent 80 % of their package's upstream-cost budget.
    BudgetAlert,
    /// A campaign message (or its test copy to the operator): a [`CampaignMail`].
    Campaign,
    /// The double opt-in e-mail of the waitlist: a [`CampaignMail`] with `confirm_url`.
    WaitlistConfirm,
}

/// Every kind, for tests and template registration.
pub const ALL_KINDS: [MailKind; 15] = [
    MailKind::CustomerConfirmation,
    MailKind::OperatorNotification,
    MailKind::SignInLink,
    MailKind::KeyCreated,
    MailKind::KeyRevoked,
    MailKind::PackageChanged,
    MailKind::DiscountEnding,
    MailKind::QuotaLevel,
    MailKind::InvoiceIssued,
    MailKind::PaymentReminder,
    MailKind::PaymentOverdue,
    MailKind::SubscriptionSuspended,
    MailKind::BudgetAlert,
    MailKind::Campaign,
    MailKind::WaitlistConfirm,
];

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::CustomerConfirmation => "customer_confirmation",
            MailKind::OperatorNotification => "operator_notification",
            MailKind::SignInLink => "sign_in_link",
            MailKind::KeyCreated => "key_created",
            MailKind::KeyRevoked => "key_revoked",
            MailKind::PackageChanged => "package_changed",
            MailKind::DiscountEnding => "discount_ending",
            MailKind::QuotaLevel => "quota_level",
            MailKind::InvoiceIssued => "invoice_issued",
            MailKind::PaymentReminder => "payment_reminder",
            MailKind::PaymentOverdue => "payment_overdue",
            MailKind::SubscriptionSuspended => "subscription_suspended",
            MailKind::BudgetAlert => "budget_alert",
            MailKind::Campaign => "campaign",
            MailKind::WaitlistConfirm => "waitlist_confirm",
        }
    }

    pub fn parse(s: &str) -> Option<MailKind> {
        ALL_KINDS.into_iter().find(|k| k.as_str() == s)
    }

    /// Signup e-mails carry a [`SignupMail`], the others an [`AccountMail`].
    pub fn is_signup(self) -> bool {
        matches!(
            self,
            MailKind::CustomerConfirmation | MailKind::OperatorNotification
        )
    }

    /// Campaign and waitlist e-mails carry a [`CampaignMail`] and may go to non-customers.
    pub fn is_campaign(self) -> bool {
        matches!(self, MailKind::Campaign | MailKind::WaitlistConfirm)
    }
}

/// Delivery state of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailStatus {
    Pending,
    Sent,
    Dead,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Dead => "dead",
        }
    }

    fn parse(s: &str) -> MailStatus {
        match s {
            "sent" => MailStatus::Sent,
            "dead" => MailStatus::Dead,
            _ => MailStatus::Pending,
        }
    }
}

/// Template variables of a signup e-mail. Never holds the API key, only its display prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignupMail {
    pub user_id: String,
    pub email: String,
    pub package_id: String,
    pub package_name: String,
    pub base_price_dzd: u64,
    pub price_dzd: u64,
    pub discount_percent: u32,
    pub promo_code: String,
    /// "6 juin 2026"; empty without a discount.
    pub discount_ends_at_fr: String,
    /// "6 جوان 2026"; empty without a discount (and in rows written before Arabic existed).
    #[serde(default)]
    pub discount_ends_at_ar: String,
    pub tokens_per_month: u64,
    pub requests_per_minute: u32,
    pub api_key_prefix: String,
    pub created_at: String,
    /// Base URL of the public REST API, for the quick-start snippet.
    pub public_url: String,
    /// The customer's language: the confirmation is written in it (the operator's notice stays
    /// French). Rows written before Arabic existed read as French.
    #[serde(default)]
    pub lang: crate::domain::Lang,
}

/// Template variables of an account e-mail; a kind leaves the fields it does not use empty.
/// `link` (a sign-in link) is a credential: the row's payload is scrubbed once it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountMail {
    pub email: String,
    /// Base URL of the public site, for links to `/compte/`.
    pub public_url: String,
    pub link: String,
    pub key_prefix: String,
    pub key_name: String,
    pub package_name: String,
    pub from_package_name: String,
    pub price_dzd: u64,
    pub base_price_dzd: u64,
    pub discount_percent: u32,
    /// The date the e-mail is about (link expiry, change, revocation, discount end), in French.
    pub date_fr: String,
    /// The same date in Arabic, for a customer who signed up in Arabic (empty in rows written
    /// before: the Arabic templates then show `date_fr`).
    pub date_ar: String,
    /// A sentence computed by the rules (package change plan, who revoked a key, the period).
    pub message: String,
    /// The same sentence in Arabic (empty: as for `date_ar`).
    pub message_ar: String,
    pub percent: u32,
    pub tokens_used: u64,
    pub tokens_per_month: u64,
    /// The invoice a billing e-mail is about (`2026-000123`).
    pub invoice_number: String,
    /// The customer an operator e-mail is about (budget alert).
    pub customer_email: String,
    /// Upstream cost this month and the package's budget, `12.345678 USD` (budget alert).
    pub cost_used_usd: String,
    pub cost_budget_usd: String,
}

/// Who the e-mails come from, as every e-mail's footer shows it (from the configuration: the
/// invoice identity and `SELLER_EMAIL` / `SELLER_PHONE`), and where replies go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MailIdentity {
    /// The seller's name, or the brand when none is configured.
    pub name: String,
    pub address: String,
    /// The contact address and `Reply-To`; empty: no reply is invited.
    pub email: String,
    pub phone: String,
    /// The phone number as a `tel:` URI wants it (digits and a leading `+`).
    pub phone_link: String,
    pub legal_url: String,
    pub privacy_url: String,
}

impl MailIdentity {
    pub fn new(
        seller: &crate::billing_config::Seller,
        site: &crate::site_config::SiteConfig,
        public_url: &str,
    ) -> MailIdentity {
        let base = public_url.trim_end_matches('/');
        MailIdentity {
            name: if seller.name.is_empty() {
                "IAFactory".to_owned()
            } else {
                seller.name.clone()
            },
            address: seller.address.clone(),
            email: site.contact_email.clone().unwrap_or_default(),
            phone: site.contact_phone.clone(),
            phone_link: site
                .contact_phone
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect(),
            legal_url: format!("{base}{LEGAL_PATH}"),
            privacy_url: format!("{base}{PRIVACY_PATH}"),
        }
    }
}

/// Where the legal notice and the privacy page are served (gateway-rest's static files).
pub const LEGAL_PATH: &str = "/api-packages/mentions-legales/";
pub const PRIVACY_PATH: &str = "/api-packages/confidentialite/";

/// Template variables of a campaign or waitlist e-mail (see `domain::campaign`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CampaignMail {
    pub email: String,
    /// The contact's name as imported; may be empty.
    pub name: String,
    /// Empty for a test copy and the waitlist confirmation.
    pub campaign_id: String,
    /// `announcement`, `reminder`, `waitlist_over`, `waitlist_back`.
    pub template: String,
    /// `fr` or `ar`.
    pub locale: String,
    /// The signed one-click unsubscribe link (also the `List-Unsubscribe` header's URL).
    pub unsubscribe_url: String,
    /// The signed double opt-in link of a waitlist confirmation.
    pub confirm_url: String,
    /// The landing page.
    pub site_url: String,
    pub launch_code: String,
    /// A test copy to the operator: marked as such, never checked against the audience.
    pub test: bool,
}

/// What a row's template is rendered with; stored as the bare JSON object of either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MailPayload {
    Signup(SignupMail),
    Account(AccountMail),
    Campaign(CampaignMail),
}

/// A row to write in the transaction that causes it.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub id: String,
    pub kind: MailKind,
    pub recipient: String,
    /// Empty for an e-mail to someone who is not a customer (stored as NULL).
    pub customer_id: String,
    pub payload: MailPayload,
}

impl NewMail {
    /// An account e-mail to the customer, with a fresh id.
    pub fn account(kind: MailKind, customer_id: &str, mail: AccountMail) -> NewMail {
        NewMail {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            kind,
            recipient: mail.email.clone(),
            customer_id: customer_id.to_owned(),
            payload: MailPayload::Account(mail),
        }
    }

    /// A campaign or waitlist e-mail, to whoever `mail.email` is.
    pub fn campaign(kind: MailKind, id: String, mail: CampaignMail) -> NewMail {
        NewMail {
            id,
            kind,
            recipient: mail.email.clone(),
            customer_id: String::new(),
            payload: MailPayload::Campaign(mail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in ALL_KINDS {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
    }
}
