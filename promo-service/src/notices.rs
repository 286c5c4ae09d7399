//! The account's periodic work, run by every replica (each step is safe to run concurrently):
//! discount-ending notices ([`DISCOUNT_NOTICE_MS`] ahead, once per customer and end date, see
//! `repo::write_notice`), downgrades whose period has come moved onto their rows, and expired
//! sign-in rows and operator sessions purged, and the day's MRR snapshot written. Time comes from the injectable
//! clock, so tests reach a date by moving it.

use std::sync::Arc;
use std::time::Duration;

use iafactory::db::Db;
use tokio::sync::{Notify, watch};

use crate::clock::{Clock, arabic_date, french_date};
use crate::domain::account::DISCOUNT_NOTICE_MS;
use crate::outbox::{AccountMail, MailKind, NewMail};
use crate::repo;

pub struct AccountJobs {
    pub db: Db,
    pub clock: Clock,
    /// What MRR is computed with (the daily snapshots).
    pub billing: crate::billing_config::BillingConfig,
    pub public_url: String,
    pub mail_wake: Arc<Notify>,
    pub interval: Duration,
}

impl AccountJobs {
    /// Runs one pass every `interval` until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            self.pass().await;
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = iafactory::shutdown::stopped(&mut stop) => return,
            }
        }
    }

    /// One pass; a failing step is logged and retried on the next pass.
    pub async fn pass(&self) {
        let now = self.clock.now_ms();
        if let Err(e) = repo::apply_due_changes(&self.db, None, now).await {
            tracing::warn!(error = %e, "cannot apply due package changes");
        }
        match repo::ending_discounts(&self.db, now, now + DISCOUNT_NOTICE_MS).await {
            Ok(rows) => {
                let mut written = 0;
                for d in rows {
                    let mail = NewMail::account(
                        MailKind::DiscountEnding,
                        &d.customer_id,
                        AccountMail {
                            email: d.email.clone(),
                            public_url: self.public_url.clone(),
                            package_name: d.package_name.clone(),
                            price_dzd: d.price_dzd,
                            base_price_dzd: d.base_price_dzd,
                            discount_percent: d.discount_percent,
                            date_fr: french_date(d.ends_at),
                            date_ar: arabic_date(d.ends_at),
                            ..AccountMail::default()
                        },
                    );
                    match repo::write_notice(
                        &self.db,
                        &d.customer_id,
                        "discount_ending",
                        &d.ends_at.to_string(),
                        &mail,
                        now,
                    )
                    .await
                    {
                        Ok(true) => written += 1,
                        Ok(false) => {}
                        Err(e) => tracing::warn!(error = %e, "cannot write a discount notice"),
                    }
                }
                if written > 0 {
                    tracing::info!(written, "discount-ending notices queued");
                    self.mail_wake.notify_one();
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list ending discounts"),
        }
        // Today's MRR snapshot (rewritten on each pass, so the day's last pass wins): the chart's
        // history, including the step down when discounts end.
        match repo::billing::mrr(&self.db, now, &self.billing).await {
            Ok((mrr, subscriptions)) => {
                let day = crate::domain::operator::day_of(now);
                if let Err(e) =
                    repo::console::write_mrr_snapshot(&self.db, &day, mrr, subscriptions, now).await
                {
                    tracing::warn!(error = %e, "cannot write the MRR snapshot");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot compute the MRR snapshot"),
        }
        if let Err(e) = repo::purge_expired(&self.db, now).await {
            tracing::warn!(error = %e, "cannot purge expired sign-in rows");
        }
        if let Err(e) = repo::operators::purge_operator_sessions(&self.db, now).await {
            tracing::warn!(error = %e, "cannot purge expired operator sessions");
        }
    }
}
