//! The billing job, run by every replica (each step is safe to run concurrently): issue every
//! period invoice due and missing, from the billing start (`BILLING_START_DATE` or the signup)
//! to the period in progress (one period invoice per customer and period index, a unique
//! index, makes a second replica's attempt a no-op that gives its number back), recompute each
//! subscription's dunning state, and write the reminder, overdue and suspension e-mails once per
//! invoice (`notices`). Time comes from the injectable clock.

use std::sync::Arc;
use std::time::Duration;

use iafactory::db::Db;
use tokio::sync::{Notify, watch};

use crate::billing_config::BillingConfig;
use crate::clock::{Clock, arabic_date, french_date};
use crate::domain::billing::State;
use crate::error::Result;
use crate::outbox::{AccountMail, MailKind, NewMail};
use crate::repo::{self, billing as bill};

pub struct BillingJobs {
    pub db: Db,
    pub clock: Clock,
    pub config: BillingConfig,
    pub public_url: String,
    pub mail_wake: Arc<Notify>,
    pub interval: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassReport {
    pub issued: u32,
    pub state_changes: u32,
    /// What active and past-due subscriptions bill for their next period.
    pub mrr_dzd: u64,
}

impl BillingJobs {
    /// Runs one pass every `interval` until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.pass().await {
                tracing::warn!(error = %e, "billing pass failed; retried on the next pass");
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = iafactory::shutdown::stopped(&mut stop) => return,
            }
        }
    }

    /// One pass over every subscription; a customer's failing step is logged and the pass goes
    /// on with the next customer.
    pub async fn pass(&self) -> Result<PassReport> {
        let ctx = bill::Ctx {
            config: &self.config,
            public_url: &self.public_url,
        };
        let mut report = PassReport::default();
        let mut mails = 0;
        for sub in bill::billing_subscriptions(&self.db).await? {
            let now = self.clock.now_ms();
            match bill::issue_due_invoices(&self.db, &sub, now, ctx).await {
                Ok(n) => {
                    report.issued += n;
                    mails += n;
                }
                Err(e) => {
                    tracing::warn!(user_id = %sub.customer_id, error = %e, "cannot issue an invoice")
                }
            }
            match bill::refresh_state(&self.db, &sub.customer_id, now, &self.config.dunning).await {
                Ok(Some(_)) => report.state_changes += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(user_id = %sub.customer_id, error = %e, "cannot refresh a billing state")
                }
            }
            match self.dun(&sub, now).await {
                Ok(n) => mails += n,
                Err(e) => {
                    tracing::warn!(user_id = %sub.customer_id, error = %e, "cannot write a billing notice")
                }
            }
        }
        // After the pass: the states it changed count as they now are.
        report.mrr_dzd = bill::mrr(&self.db, self.clock.now_ms(), &self.config)
            .await?
            .0;
        if mails > 0 {
            self.mail_wake.notify_one();
        }
        Ok(report)
    }

    /// The reminder before the oldest unpaid invoice's due date, the overdue notice after it,
    /// the suspension notice past the grace period: each once per invoice.
    async fn dun(&self, sub: &bill::BillingSubscription, now: i64) -> Result<u32> {
        let (invoices, _) = bill::customer_invoices(&self.db, &sub.customer_id).await?;
        let Some(unpaid) = invoices.iter().find(|i| i.balance_dzd > 0) else {
            return Ok(0);
        };
        let rules = &self.config.dunning;
        let state = bill::billing_state(&self.db, &sub.customer_id).await?;
        let (kind, date) = match state {
            State::Suspended => (MailKind::SubscriptionSuspended, now),
            State::PastDue => (
                MailKind::PaymentOverdue,
                unpaid.due_at.saturating_add(rules.grace_ms),
            ),
            State::Active if now >= unpaid.due_at.saturating_sub(rules.remind_ms) => {
                (MailKind::PaymentReminder, unpaid.due_at)
            }
            _ => return Ok(0),
        };
        let mail = NewMail::account(
            kind,
            &sub.customer_id,
            AccountMail {
                email: sub.email.clone(),
                public_url: self.public_url.clone(),
                package_name: sub.terms_at(unpaid.period_start).package_name.clone(),
                price_dzd: unpaid.balance_dzd,
                date_fr: french_date(date),
                date_ar: arabic_date(date),
                message: bill::transfer_sentence(&self.config, &unpaid.number),
                message_ar: bill::transfer_sentence_ar(&self.config, &unpaid.number),
                invoice_number: unpaid.number.clone(),
                ..AccountMail::default()
            },
        );
        let written = repo::write_notice(
            &self.db,
            &sub.customer_id,
            kind.as_str(),
            &unpaid.id,
            &mail,
            now,
        )
        .await?;
        Ok(u32::from(written))
    }
}
