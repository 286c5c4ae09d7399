//! A local Chargily Pay V2 server speaking its wire format (see promo-service's
//! `billing::chargily`): `POST /api/v2/checkouts` with `Authorization: Bearer <secret key>`
//! creates a checkout and answers the checkout object with its `checkout_url`; the test then
//! plays the customer paying (or failing) and the server delivers the event to the checkout's
//! `webhook_endpoint`, signed like Chargily signs (`signature` = hex HMAC-SHA256 of the raw body
//! with the secret key). Hostile deliveries (bad signature, replay, altered amount) go through
//! [`ChargilyServer::deliver`] with a body and signature of the test's choosing.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::upstream::{Recorded, Reply, Upstream};

/// The running server.
pub struct ChargilyServer {
    upstream: Upstream,
    secret: String,
    checkouts: Arc<Mutex<Vec<Value>>>,
}

fn create(
    req: &Recorded,
    secret: &str,
    addr: Option<SocketAddr>,
    store: &Mutex<Vec<Value>>,
) -> Reply {
    if req.header("authorization") != Some(&format!("Bearer {secret}")) {
        return Reply::json(401, json!({"message": "Unauthenticated."}));
    }
    let b = &req.body;
    let mut errors = serde_json::Map::new();
    if !b["amount"].is_u64() || b["amount"].as_u64().unwrap_or(0) < 50 {
        errors.insert("amount".into(), json!(["The amount must be at least 50."]));
    }
    if b["currency"] != "dzd" {
        errors.insert(
            "currency".into(),
            json!(["The selected currency is invalid."]),
        );
    }
    if !b["success_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http"))
    {
        errors.insert(
            "success_url".into(),
            json!(["The success url field must be a valid URL."]),
        );
    }
    if !errors.is_empty() {
        return Reply::json(
            422,
            json!({"message": "The given data was invalid.", "errors": errors}),
        );
    }
    let id = format!("01{}", uuid::Uuid::new_v4().simple());
    let base = addr.map_or_else(String::new, |a| format!("http://{a}"));
    let checkout = json!({
        "id": id,
        "entity": "checkout",
        "livemode": false,
        "amount": b["amount"],
        "currency": "dzd",
        "fees": 0,
        "pass_fees_to_customer": false,
        "status": "pending",
        "locale": b["locale"].as_str().unwrap_or("ar"),
        "description": b["description"],
        "success_url": b["success_url"],
        "failure_url": b["failure_url"],
        "webhook_endpoint": b["webhook_endpoint"],
        "payment_method": null,
        "invoice_id": null,
        "customer_id": null,
        "payment_link_id": null,
        "metadata": b["metadata"],
        "created_at": 1_764_975_600,
        "updated_at": 1_764_975_600,
        "shipping_address": null,
        "collect_shipping_address": false,
        "checkout_url": format!("{base}/test/checkout/{id}/pay"),
    });
    if let Ok(mut s) = store.lock() {
        s.push(checkout.clone());
    }
    Reply::json(200, checkout)
}

impl ChargilyServer {
    /// Starts it with the merchant's secret key.
    pub async fn start(secret: &str) -> ChargilyServer {
        let checkouts: Arc<Mutex<Vec<Value>>> = Arc::default();
        let addr: Arc<OnceLock<SocketAddr>> = Arc::default();
        let (store, at, key) = (checkouts.clone(), addr.clone(), secret.to_owned());
        let upstream = Upstream::start(move |req, _| {
            if req.method == "POST" && req.path == "/api/v2/checkouts" {
                create(req, &key, at.get().copied(), &store)
            } else {
                Reply::json(404, json!({"message": "Not Found"}))
            }
        })
        .await;
        let _ = addr.set(upstream.addr);
        ChargilyServer {
            upstream,
            secret: secret.to_owned(),
            checkouts,
        }
    }

    /// The API base URL to configure (`CHARGILY_BASE_URL`).
    pub fn base_url(&self) -> String {
        self.upstream.url("/api/v2")
    }

    /// Checkouts created so far, as answered.
    pub fn checkouts(&self) -> Vec<Value> {
        self.checkouts.lock().unwrap().clone()
    }

    /// Requests received (checkout creations included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.upstream.requests()
    }

    /// The event Chargily sends when checkout `id` ends as `kind` (`checkout.paid`,
    /// `checkout.failed`), with the checkout's data in its new status.
    pub fn event(&self, kind: &str, checkout_id: &str) -> Value {
        let mut data = self
            .checkouts()
            .into_iter()
            .find(|c| c["id"] == checkout_id)
            .unwrap_or_else(|| json!({"id": checkout_id, "entity": "checkout", "amount": 1000, "currency": "dzd"}));
        data["status"] = json!(if kind == "checkout.paid" {
            "paid"
        } else {
            "failed"
        });
        json!({
            "id": format!("01{}", uuid::Uuid::new_v4().simple()),
            "entity": "event",
            "livemode": "false",
            "type": kind,
            "data": data,
            "created_at": 1_764_975_700,
            "updated_at": 1_764_975_700,
        })
    }

    /// The `signature` header Chargily would send with `body`.
    pub fn sign(&self, body: &str) -> String {
        iafactory::webhook::sign(self.secret.as_bytes(), body.as_bytes())
    }

    /// The customer pays checkout `id`: the signed `checkout.paid` event is delivered to its
    /// `webhook_endpoint` (or `to`). Returns the endpoint's status and body, and the raw event.
    pub async fn pay(&self, checkout_id: &str, to: Option<&str>) -> (u16, String, String) {
        self.finish("checkout.paid", checkout_id, to).await
    }

    /// As [`Self::pay`] for a failed payment.
    pub async fn fail(&self, checkout_id: &str, to: Option<&str>) -> (u16, String, String) {
        self.finish("checkout.failed", checkout_id, to).await
    }

    async fn finish(
        &self,
        kind: &str,
        checkout_id: &str,
        to: Option<&str>,
    ) -> (u16, String, String) {
        let event = self.event(kind, checkout_id);
        let url = to.map_or_else(
            || {
                event["data"]["webhook_endpoint"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            },
            str::to_owned,
        );
        let body = event.to_string();
        let signature = self.sign(&body);
        let (status, answer) = deliver(&url, &body, &signature).await;
        (status, answer, body)
    }
}

/// POSTs `body` to `url` (http only) with the `signature` header, as Chargily delivers
/// webhooks; returns the status and the body answered.
pub async fn deliver(url: &str, body: &str, signature: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// webhook URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut sock = tokio::net::TcpStream::connect(host).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Chargily-Webhook\r\n\
         Content-Type: application/json\r\nsignature: {signature}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}
