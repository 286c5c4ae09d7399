//! Transactional outbox for signup e-mails.
//!
//! The signup transaction writes one row per e-mail (customer confirmation, operator notice), so
//! an e-mail exists if and only if the signup committed. A worker in every replica claims due rows
//! with a guarded single-row `UPDATE` (the claim succeeds for one worker only, on SQLite and on
//! PostgreSQL), sends them over SMTP and marks them sent. Delivery is at-least-once: a worker that
//! dies after the relay accepted a message but before marking it leaves a claim that expires, and
//! another attempt sends it again. Every message carries `Message-ID: <row id@iafactory>` so a
//! receiver can drop such a duplicate.

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
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::CustomerConfirmation => "customer_confirmation",
            MailKind::OperatorNotification => "operator_notification",
        }
    }

    pub fn parse(s: &str) -> Option<MailKind> {
        match s {
            "customer_confirmation" => Some(MailKind::CustomerConfirmation),
            "operator_notification" => Some(MailKind::OperatorNotification),
            _ => None,
        }
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
    pub tokens_per_month: u64,
    pub requests_per_minute: u32,
    pub api_key_prefix: String,
    pub created_at: String,
    /// Base URL of the public REST API, for the quick-start snippet.
    pub public_url: String,
}

/// A row to write in the signup transaction.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub id: String,
    pub kind: MailKind,
    pub recipient: String,
    pub customer_id: String,
    pub payload: SignupMail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in [
            MailKind::CustomerConfirmation,
            MailKind::OperatorNotification,
        ] {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
    }
}
