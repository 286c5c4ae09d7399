//! Chargily Pay V2 (Edahabia of Algérie Poste, CIB of SATIM), as its public API documentation
//! and official client libraries describe it:
//!
//! - `POST {base}/checkouts` with `Authorization: Bearer <secret key>` and a JSON body
//!   `{amount, currency: "dzd", success_url, failure_url, webhook_endpoint, description, locale,
//!   metadata}`; the answer is the checkout object (`id`, `amount`, `currency`, `status`,
//!   `checkout_url`, `metadata`, …) whose `checkout_url` the customer is sent to.
//! - Webhooks: a POST whose `signature` header is the hex HMAC-SHA256 of the raw body with the
//!   secret key, carrying an event `{id, entity: "event", type: "checkout.paid" |
//!   "checkout.failed" | …, data: <checkout>}`.
//!
//! The redirect back to `success_url` proves nothing: only a verified webhook records a payment.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::billing_config::ChargilyConfig;
use crate::error::PromoError;

/// What a checkout is created with.
#[derive(Debug, Clone, Serialize)]
pub struct NewCheckout {
    pub amount: u64,
    pub currency: &'static str,
    pub success_url: String,
    pub failure_url: String,
    pub webhook_endpoint: String,
    pub description: String,
    pub locale: &'static str,
    pub metadata: Value,
}

/// A checkout as Chargily describes it (the fields this service reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Checkout {
    pub id: String,
    /// A JSON number; read through [`Checkout::amount_dzd`].
    pub amount: Value,
    pub currency: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub checkout_url: Option<String>,
}

impl Checkout {
    /// The amount as whole dinars; None for anything else (a fraction, a string, negative).
    pub fn amount_dzd(&self) -> Option<u64> {
        match &self.amount {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
                    .map(|f| f as u64)
            }),
            _ => None,
        }
    }
}

/// A webhook event.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Checkout,
}

/// Calls Chargily's API.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: ChargilyConfig,
}

impl Client {
    pub fn new(config: ChargilyConfig) -> Result<Client, PromoError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(PromoError::internal)?;
        Ok(Client { http, config })
    }

    /// The secret that signs webhooks.
    pub fn secret(&self) -> &[u8] {
        self.config.secret_key.expose().as_bytes()
    }

    /// Creates a checkout; Chargily being unreachable or refusing is `unavailable` (the
    /// customer retries), its answer is logged, never sent to the customer.
    pub async fn create_checkout(&self, new: &NewCheckout) -> Result<Checkout, PromoError> {
        let unavailable = || {
            PromoError::ServiceUnavailable(
                "le paiement par carte est momentanément indisponible : réessayez dans un instant ou payez par virement",
            )
        };
        let r = self
            .http
            .post(format!("{}/checkouts", self.config.base_url))
            .bearer_auth(self.config.secret_key.expose())
            .header("accept", "application/json")
            .json(new)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "Chargily unreachable");
                unavailable()
            })?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| {
            tracing::warn!(error = %e, "Chargily answer cut");
            unavailable()
        })?;
        if !status.is_success() {
            tracing::warn!(%status, body = %String::from_utf8_lossy(&body).chars().take(300).collect::<String>(), "Chargily refused a checkout");
            return Err(unavailable());
        }
        let checkout: Checkout = serde_json::from_slice(&body).map_err(|e| {
            tracing::warn!(error = %e, "Chargily answered an unreadable checkout");
            unavailable()
        })?;
        if checkout.checkout_url.as_deref().is_none_or(str::is_empty) {
            tracing::warn!(id = %checkout.id, "Chargily checkout without checkout_url");
            return Err(unavailable());
        }
        Ok(checkout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_amounts_are_whole_dinars() {
        let e: Event = serde_json::from_str(
            r#"{"id":"evt_1","entity":"event","livemode":"false","type":"checkout.paid",
                "data":{"id":"chk_1","entity":"checkout","amount":10050,"currency":"dzd","status":"paid","metadata":{"invoice_number":"2026-000001"}}}"#,
        )
        .unwrap();
        assert_eq!(e.kind, "checkout.paid");
        assert_eq!(e.data.amount_dzd(), Some(10_050));
        let mut c = e.data;
        c.amount = serde_json::json!(10050.0);
        assert_eq!(c.amount_dzd(), Some(10_050));
        c.amount = serde_json::json!(10050.5);
        assert_eq!(c.amount_dzd(), None);
        c.amount = serde_json::json!("10050");
        assert_eq!(c.amount_dzd(), None);
        c.amount = serde_json::json!(-1);
        assert_eq!(c.amount_dzd(), None);
    }
}
