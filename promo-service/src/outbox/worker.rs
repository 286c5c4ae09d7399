//! The delivery worker: claims due outbox rows, renders and sends them over SMTP, and records the
//! outcome with exponential backoff, a maximum number of attempts, then the `dead` state.

use std::sync::Arc;
use std::time::Duration;

use iafactory::db::{self, Db};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{Notify, watch};

use super::templates::Templates;
use super::{AccountMail, CampaignMail, MailIdentity, MailKind, MailRow, SignupMail};
use crate::config::MailConfig;
use crate::domain::Lang;

/// Why a delivery attempt failed, and whether trying again can help.
struct Failure {
    message: String,
    permanent: bool,
}

pub struct Worker {
    db: Db,
    config: MailConfig,
    templates: Templates,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// `SELLER_EMAIL`: replies reach the seller, not the `MAIL_FROM` mailbox (often `no-reply@`).
    reply_to: Option<Mailbox>,
    id: String,
    wake: Arc<Notify>,
}

/// Errors that stop the worker from being built (bad configuration).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("SMTP_URL is not usable: {0}")]
    SmtpUrl(String),
    #[error("MAIL_FROM is not a valid mailbox: {0}")]
    From(String),
    #[error("SELLER_EMAIL is not a valid mailbox: {0}")]
    ReplyTo(String),
    #[error("e-mail templates do not compile: {0}")]
    Templates(#[from] minijinja::Error),
}

impl Worker {
    pub fn new(
        db: Db,
        config: MailConfig,
        identity: MailIdentity,
        wake: Arc<Notify>,
    ) -> Result<Worker, WorkerError> {
        let transport = match config.smtp_url.as_deref() {
            None => None,
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| WorkerError::SmtpUrl(e.to_string()))?
                    .timeout(Some(Duration::from_secs(15)))
                    .build(),
            ),
        };
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| WorkerError::From(e.to_string()))?;
        let reply_to = if identity.email.is_empty() {
            None
        } else {
            Some(
                identity
                    .email
                    .parse::<Mailbox>()
                    .map_err(|e| WorkerError::ReplyTo(e.to_string()))?,
            )
        };
        Ok(Worker {
            db,
            templates: Templates::new()?.with_identity(identity),
            transport,
            from,
            reply_to,
            id: format!("wrk_{}", crate::secrets::random_token(9)),
            config,
            wake,
        })
    }

    /// Delivers until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Some(transport) = self.transport.as_ref() else {
            tracing::warn!(
                "SMTP_URL is not set: e-mail delivery is disabled; the outbox keeps every e-mail \
                 and delivers the backlog once SMTP is configured"
            );
            iafactory::shutdown::stopped(&mut stop).await;
            return;
        };
        tracing::info!(worker = %self.id, "outbox delivery worker started");
        let writable = self.db.watch_writable();
        loop {
            if !*writable.borrow() {
                // A message sent now could not be recorded as sent (full disk, read-only
                // database): it would go out again once the claim expires. So nothing is sent
                // while the storage probe reports that writes fail; delivery resumes by itself
                // once a write succeeds (a paced campaign then catches up with its slots).
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                    () = iafactory::shutdown::stopped(&mut stop) => return,
                }
                continue;
            }
            let delivered = self.deliver_due(transport).await;
            if *stop.borrow() {
                return;
            }
            // A full batch suggests more is due: go again at once.
            if delivered < self.config.batch_size as usize {
                tokio::select! {
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                    () = self.wake.notified() => {}
                    () = iafactory::shutdown::stopped(&mut stop) => return,
                }
            }
        }
    }

    async fn deliver_due(&self, transport: &AsyncSmtpTransport<Tokio1Executor>) -> usize {
        let now = db::now_millis();
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let rows = match super::store::claim_due(
            &self.db,
            &self.id,
            now,
            now.saturating_add(lease_ms),
            self.config.batch_size,
        )
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim outbox rows");
                return 0;
            }
        };
        let count = rows.len();
        for row in rows {
            if self.skipped(&row).await {
                continue;
            }
            let span = tracing::info_span!("outbox_delivery", id = %row.id, kind = %row.kind, attempt = row.attempts);
            let _guard = span.enter();
            let outcome = self.send(transport, &row).await;
            drop(_guard);
            let recorded = match outcome {
                Ok(()) => {
                    tracing::info!(id = %row.id, "e-mail delivered");
                    super::store::mark_sent(&self.db, &row.id, &self.id, db::now_millis()).await
                }
                Err(f) => {
                    let retry_at = (!f.permanent && row.attempts < self.config.max_attempts)
                        .then(|| db::now_millis().saturating_add(self.backoff_ms(row.attempts)));
                    if retry_at.is_some() {
                        tracing::warn!(id = %row.id, attempt = row.attempts, error = %f.message, "e-mail delivery failed, will retry");
                    } else {
                        tracing::error!(id = %row.id, attempt = row.attempts, error = %f.message, "e-mail delivery gave up: dead");
                    }
                    super::store::mark_failed(&self.db, &row.id, &self.id, &f.message, retry_at)
                        .await
                }
            };
            if let Err(e) = recorded {
                // The claim expires and the row is tried again: at-least-once.
                tracing::warn!(id = %row.id, error = %e, "cannot record delivery outcome");
            }
        }
        count
    }

    /// A campaign message whose recipient may no longer receive it (suppressed since it was
    /// queued, or signed up before a reminder) is ended unsent; true when the row was handled
    /// that way (or could not be checked, and is left for its lease to expire).
    async fn skipped(&self, row: &MailRow) -> bool {
        if row.kind != MailKind::Campaign.as_str() {
            return false;
        }
        let Ok(mail) = serde_json::from_str::<CampaignMail>(&row.payload) else {
            return false;
        };
        if mail.test {
            return false;
        }
        match super::eligibility::skip_if_ineligible(&self.db, row, &self.id, &mail.campaign_id)
            .await
        {
            Ok(skipped) => {
                if skipped {
                    tracing::info!(id = %row.id, "campaign e-mail not sent: suppressed or signed up since");
                }
                skipped
            }
            Err(e) => {
                tracing::warn!(id = %row.id, error = %e, "cannot check a campaign recipient; left for a later attempt");
                true
            }
        }
    }

    /// Exponential backoff with ±20 % jitter, capped at one hour.
    fn backoff_ms(&self, attempts: u32) -> i64 {
        let base = u64::try_from(self.config.retry_base.as_millis()).unwrap_or(u64::MAX);
        let exp = base.saturating_mul(1u64 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(3_600_000);
        let jitter = (capped / 5).max(1);
        let value = capped - jitter + rand::random::<u64>() % (2 * jitter);
        i64::try_from(value).unwrap_or(i64::MAX)
    }

    async fn send(
        &self,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
        row: &MailRow,
    ) -> Result<(), Failure> {
        let permanent = |message: String| Failure {
            message,
            permanent: true,
        };
        let kind = MailKind::parse(&row.kind)
            .ok_or_else(|| permanent(format!("unknown e-mail kind {:?}", row.kind)))?;
        let bad_payload = |e: serde_json::Error| permanent(format!("bad payload: {e}"));
        let mut unsubscribe = None;
        let rendered = if kind.is_signup() {
            let mail: SignupMail = serde_json::from_str(&row.payload).map_err(bad_payload)?;
            self.templates.render(kind, &mail)
        } else if kind.is_campaign() {
            let mail: CampaignMail = serde_json::from_str(&row.payload).map_err(bad_payload)?;
            if kind == MailKind::Campaign {
                unsubscribe = Some(mail.unsubscribe_url.clone());
            }
            self.templates.render_campaign(kind, &mail)
        } else {
            let mail: AccountMail = serde_json::from_str(&row.payload).map_err(bad_payload)?;
            // The customer's language, read now (a failed read is retried like a failed send).
            let lang = if row.customer_id.is_empty() || kind == MailKind::BudgetAlert {
                Lang::Fr
            } else {
                super::store::customer_lang(&self.db, &row.customer_id)
                    .await
                    .map_err(|e| Failure {
                        message: format!("customer's language: {e}"),
                        permanent: false,
                    })?
            };
            self.templates.render_account(kind, &mail, lang)
        }
        .map_err(|e| permanent(format!("template: {e}")))?;
        let to = row
            .recipient
            .parse::<Mailbox>()
            .map_err(|e| permanent(format!("recipient: {e}")))?;
        let mut builder = Message::builder().from(self.from.clone());
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        let mut builder = builder
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(format!("<{}@iafactory>", row.id)));
        if let Some(url) = unsubscribe {
            builder = builder
                .header(unsubscribe::ListUnsubscribe(url))
                .header(unsubscribe::ListUnsubscribePost);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| permanent(format!("message: {e}")))?;
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| Failure {
                permanent: e.is_permanent(),
                message: e.to_string(),
            })
    }
}

/// The headers of RFC 2369 and RFC 8058 on every campaign message: mail clients show an
/// "unsubscribe" button that POSTs `List-Unsubscribe=One-Click` to the URL, without a login.
mod unsubscribe {
    use lettre::message::header::{Header, HeaderName, HeaderValue};

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    #[derive(Clone)]
    pub(super) struct ListUnsubscribe(pub String);

    impl Header for ListUnsubscribe {
        fn name() -> HeaderName {
            HeaderName::new_from_ascii_str("List-Unsubscribe")
        }

        fn parse(s: &str) -> Result<Self, BoxError> {
            Ok(ListUnsubscribe(
                s.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned(),
            ))
        }

        fn display(&self) -> HeaderValue {
            HeaderValue::new(Self::name(), format!("<{}>", self.0))
        }
    }

    #[derive(Clone)]
    pub(super) struct ListUnsubscribePost;

    impl Header for ListUnsubscribePost {
        fn name() -> HeaderName {
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
        }

        fn parse(_: &str) -> Result<Self, BoxError> {
            Ok(ListUnsubscribePost)
        }

        fn display(&self) -> HeaderValue {
            HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
        }
    }
}
