//! Billing settings: the seller's legal identity printed on invoices, tax, due dates and dunning,
//! the transfer details customers quote, card payments. Flags with environment variables,
//! flattened into the service's `Args`. A module of its own, outside `billing`, so that `repo`
//! reads them without depending on the billing job (which depends on `repo`).

use crate::domain::billing::{Dunning, TaxRule};

/// Billing flags of the `promo-service` binary.
#[derive(Debug, Clone, clap::Args)]
pub struct BillingArgs {
    /// Seller's company name printed on invoices (raison sociale). Empty in development.
    #[arg(long, env = "SELLER_NAME", default_value = "")]
    pub seller_name: String,

    /// Seller's postal address printed on invoices.
    #[arg(long, env = "SELLER_ADDRESS", default_value = "")]
    pub seller_address: String,

    /// Seller's NIF (numéro d'identification fiscale).
    #[arg(long, env = "SELLER_NIF", default_value = "")]
    pub seller_nif: String,

    /// Seller's NIS (numéro d'identification statistique).
    #[arg(long, env = "SELLER_NIS", default_value = "")]
    pub seller_nis: String,

    /// Seller's RC (registre du commerce) number.
    #[arg(long, env = "SELLER_RC", default_value = "")]
    pub seller_rc: String,

    /// Seller's article d'imposition.
    #[arg(long, env = "SELLER_ARTICLE", default_value = "")]
    pub seller_article: String,

    /// Tax (TVA) rate in basis points: 1900 = 19 %, 0 = no tax line.
    #[arg(long, env = "BILLING_TAX_RATE_BP", default_value_t = 1900)]
    pub tax_rate_bp: u32,

    /// Whether package prices include the tax (true: the customer pays the listed price and the
    /// invoice shows the tax inside it; false: the tax is added on top).
    #[arg(long, env = "BILLING_PRICES_INCLUDE_TAX", default_value_t = true, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub prices_include_tax: bool,

    /// Days between an invoice's issue (at its period's start) and its due date.
    #[arg(long, env = "BILLING_DUE_DAYS", default_value_t = 15)]
    pub due_days: u32,

    /// Days after the due date before an unpaid subscription is suspended (its keys answer 402).
    #[arg(long, env = "BILLING_GRACE_DAYS", default_value_t = 7)]
    pub grace_days: u32,

    /// Days before the due date that the payment reminder is e-mailed.
    #[arg(long, env = "BILLING_REMINDER_DAYS", default_value_t = 3)]
    pub reminder_days: u32,

    /// The first invoice must be paid before the keys work (default: the key works at once and
    /// the first invoice is due like the others).
    #[arg(long, env = "BILLING_FIRST_INVOICE_PREPAID", default_value_t = false, action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub first_invoice_prepaid: bool,

    /// First day billed: nothing before it is ever invoiced. A customer who signed up earlier is
    /// billed from it on: the period containing it is prorated from it (days left over days in
    /// the period), every later period in full. `YYYY-MM-DD` (00:00 UTC) or an RFC 3339 instant;
    /// empty: each customer is billed from their signup. Set it to the day billing is switched on
    /// when upgrading a deployment that already has customers.
    #[arg(
        long = "billing-start-date",
        env = "BILLING_START_DATE",
        default_value = ""
    )]
    pub start_date: String,

    /// Beneficiary name of transfers, shown to customers with the details below.
    #[arg(long, env = "PAYMENT_BENEFICIARY", default_value = "")]
    pub payment_beneficiary: String,

    /// Bank account (RIB) for bank transfers; empty: not offered.
    #[arg(long, env = "PAYMENT_BANK_ACCOUNT", default_value = "")]
    pub payment_bank_account: String,

    /// CCP account (Algérie Poste) for postal transfers; empty: not offered.
    #[arg(long, env = "PAYMENT_CCP_ACCOUNT", default_value = "")]
    pub payment_ccp_account: String,

    /// RIP for BaridiMob transfers; empty: not offered.
    #[arg(long, env = "PAYMENT_BARIDIMOB_RIP", default_value = "")]
    pub payment_baridimob_rip: String,

    /// How often (s) this replica runs the billing job (invoices at period start, dunning
    /// e-mails, suspensions); 0: never on this replica (another replica, or the admin RPC
    /// `RunBilling`, does it). Every replica may run it: issuing is idempotent.
    #[arg(long, env = "BILLING_JOB_INTERVAL_SECS", default_value_t = 60)]
    pub job_interval_secs: u64,

    /// Chargily Pay V2 secret key (`test_sk_…` or `live_sk_…`): card payments (Edahabia / CIB)
    /// and the verification of Chargily's webhooks. Unset: card payment is not offered.
    #[arg(long, env = "CHARGILY_SECRET_KEY", hide_env_values = true)]
    pub chargily_secret_key: Option<String>,

    /// Chargily Pay V2 API base URL: the test mode's by default; live:
    /// `https://pay.chargily.net/api/v2`.
    #[arg(
        long,
        env = "CHARGILY_BASE_URL",
        default_value = "https://pay.chargily.net/test/api/v2"
    )]
    pub chargily_base_url: String,
}

/// The Chargily secret key; never shown by `Debug`.
#[derive(Clone)]
pub struct ChargilySecret(String);

impl ChargilySecret {
    pub fn new(key: impl Into<String>) -> ChargilySecret {
        ChargilySecret(key.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ChargilySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChargilySecret(***)")
    }
}

/// Card payments through Chargily Pay V2.
#[derive(Debug, Clone)]
pub struct ChargilyConfig {
    pub secret_key: ChargilySecret,
    /// Without a trailing slash.
    pub base_url: String,
}

/// The seller's legal identity, copied onto each invoice when it is issued.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Seller {
    pub name: String,
    pub address: String,
    pub nif: String,
    pub nis: String,
    pub rc: String,
    pub article: String,
}

/// Where customers send transfers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferDetails {
    pub beneficiary: String,
    pub bank_account: String,
    pub ccp_account: String,
    pub baridimob_rip: String,
}

/// The validated billing configuration.
#[derive(Debug, Clone)]
pub struct BillingConfig {
    pub seller: Seller,
    pub tax: TaxRule,
    pub dunning: Dunning,
    pub transfer: TransferDetails,
    /// None: card payment not offered.
    pub chargily: Option<ChargilyConfig>,
    /// `BILLING_START_DATE` (ms): nothing before it is billed. None: from each signup.
    pub start_date: Option<i64>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            seller: Seller::default(),
            tax: TaxRule {
                rate_bp: 1900,
                prices_include_tax: true,
            },
            dunning: Dunning::default(),
            transfer: TransferDetails::default(),
            chargily: None,
            start_date: None,
        }
    }
}

/// A billing setting out of range, naming it.
#[derive(Debug, thiserror::Error)]
pub enum BillingConfigError {
    #[error("BILLING_TAX_RATE_BP must be between 0 and 10000 (100 %), got {0}")]
    TaxRate(u32),
    #[error("{0} must be at most 366 days, got {1}")]
    Days(&'static str, u32),
    #[error("CHARGILY_BASE_URL must be an http:// or https:// URL, got {0:?}")]
    ChargilyUrl(String),
    #[error("BILLING_START_DATE must be YYYY-MM-DD or an RFC 3339 instant, got {0:?}")]
    StartDate(String),
}

/// `BILLING_START_DATE`: empty → None; `2026-12-01` → that day at 00:00 UTC; or an RFC 3339
/// instant.
fn start_date(raw: &str) -> Result<Option<i64>, BillingConfigError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        && let Some(midnight) = day.and_hms_opt(0, 0, 0)
    {
        return Ok(Some(midnight.and_utc().timestamp_millis()));
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|d| Some(d.timestamp_millis()))
        .map_err(|_| BillingConfigError::StartDate(raw.to_owned()))
}

impl BillingArgs {
    pub fn validate(&self) -> Result<BillingConfig, BillingConfigError> {
        if self.tax_rate_bp > 10_000 {
            return Err(BillingConfigError::TaxRate(self.tax_rate_bp));
        }
        for (name, v) in [
            ("BILLING_DUE_DAYS", self.due_days),
            ("BILLING_GRACE_DAYS", self.grace_days),
            ("BILLING_REMINDER_DAYS", self.reminder_days),
        ] {
            if v > 366 {
                return Err(BillingConfigError::Days(name, v));
            }
        }
        let start_date = start_date(&self.start_date)?;
        let t = |s: &str| s.trim().to_owned();
        let chargily = match self.chargily_secret_key.as_deref().map(str::trim) {
            Some(key) if !key.is_empty() => {
                let base = self.chargily_base_url.trim().trim_end_matches('/');
                if !(base.starts_with("https://") || base.starts_with("http://")) {
                    return Err(BillingConfigError::ChargilyUrl(base.to_owned()));
                }
                Some(ChargilyConfig {
                    secret_key: ChargilySecret::new(key),
                    base_url: base.to_owned(),
                })
            }
            _ => None,
        };
        Ok(BillingConfig {
            seller: Seller {
                name: t(&self.seller_name),
                address: t(&self.seller_address),
                nif: t(&self.seller_nif),
                nis: t(&self.seller_nis),
                rc: t(&self.seller_rc),
                article: t(&self.seller_article),
            },
            tax: TaxRule {
                rate_bp: self.tax_rate_bp,
                prices_include_tax: self.prices_include_tax,
            },
            dunning: Dunning::from_days(
                self.due_days,
                self.grace_days,
                self.reminder_days,
                self.first_invoice_prepaid,
            ),
            transfer: TransferDetails {
                beneficiary: t(&self.payment_beneficiary),
                bank_account: t(&self.payment_bank_account),
                ccp_account: t(&self.payment_ccp_account),
                baridimob_rip: t(&self.payment_baridimob_rip),
            },
            chargily,
            start_date,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_date_is_a_day_or_an_instant() {
        assert_eq!(start_date("").unwrap(), None);
        assert_eq!(
            start_date("2026-12-01").unwrap(),
            Some(1_796_083_200_000),
            "00:00 UTC"
        );
        assert_eq!(
            start_date(" 2026-12-01T01:00:00+01:00 ").unwrap(),
            Some(1_796_083_200_000)
        );
        assert!(start_date("01/12/2026").is_err());
        assert!(start_date("2026-02-30").is_err());
    }
}
