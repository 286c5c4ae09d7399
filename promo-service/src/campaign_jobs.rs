//! The campaign job, run by every replica: campaigns whose scheduled time has come (service
//! clock) start sending — one replica wins each (see `repo::campaigns::start_sending`) — and
//! the message of each recipient is built here, with its signed unsubscribe link. The RPCs use
//! the same builder for the operator's test copy and the waitlist confirmation.

use std::sync::Arc;

use iafactory::db::{self, Db};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::CampaignConfig;
use crate::domain::Lang;
use crate::domain::mail_token::{self, Purpose};
use crate::error::Result;
use crate::outbox::{CampaignMail, MailKind, NewMail};
use crate::repo::campaigns::{self, CampaignRow};

pub struct CampaignJobs {
    pub db: Db,
    pub clock: Clock,
    pub config: CampaignConfig,
    /// Public base URL (links in e-mails).
    pub public_url: String,
    pub launch_code: String,
    pub mail_wake: Arc<Notify>,
}

impl CampaignJobs {
    /// Starts due campaigns every `config.poll_interval` until `stop`.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.start_due().await {
                tracing::warn!(error = %e, "cannot start due campaigns; retried on the next pass");
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.poll_interval) => {}
                () = iafactory::shutdown::stopped(&mut stop) => return,
            }
        }
    }

    /// Starts every campaign due now; returns how many messages were queued. While the database
    /// refuses writes (storage probe), nothing starts: a due campaign stays `scheduled` and
    /// starts on the first pass after writes succeed again.
    pub async fn start_due(&self) -> Result<usize> {
        if !*self.db.watch_writable().borrow() {
            return Ok(0);
        }
        let mut queued = 0;
        for c in campaigns::due(&self.db, self.clock.now_ms()).await? {
            // Pacing slots are in real time: the outbox worker compares them with its own clock.
            let started = campaigns::start_sending(
                &self.db,
                &c,
                self.config.rate_per_min,
                db::now_millis(),
                |r| {
                    NewMail::campaign(
                        MailKind::Campaign,
                        format!("msg_{}", uuid::Uuid::now_v7().simple()),
                        self.message(&c, &r.email, &r.name, false),
                    )
                },
            )
            .await?;
            if let Some(n) = started {
                tracing::info!(campaign = %c.id, messages = n, "campaign started");
                queued += n;
                self.mail_wake.notify_waiters();
            }
        }
        Ok(queued)
    }

    /// The message of `campaign` to `email`.
    pub fn message(
        &self,
        campaign: &CampaignRow,
        email: &str,
        name: &str,
        test: bool,
    ) -> CampaignMail {
        CampaignMail {
            email: email.to_owned(),
            name: name.to_owned(),
            campaign_id: if test {
                String::new()
            } else {
                campaign.id.clone()
            },
            template: campaign.template.clone(),
            locale: campaign.locale.clone(),
            unsubscribe_url: self.unsubscribe_url(
                email,
                (!test).then_some(campaign.id.as_str()),
                Lang::from_stored(&campaign.locale),
            ),
            confirm_url: String::new(),
            site_url: format!(
                "{}/api-packages/{}",
                self.public_url,
                site_query(Lang::from_stored(&campaign.locale))
            ),
            launch_code: self.launch_code.clone(),
            test,
        }
    }

    /// The one-click unsubscribe URL of `email` (also the `List-Unsubscribe` header's), signed
    /// with the campaign it unsubscribes from (for its metrics); its page speaks `lang`.
    pub fn unsubscribe_url(&self, email: &str, campaign: Option<&str>, lang: Lang) -> String {
        let token = mail_token::sign_unsubscribe(
            &self.config.link_secret,
            email,
            campaign,
            self.clock.now_ms(),
        );
        format!(
            "{}/desabonnement?jeton={token}{}",
            self.public_url,
            lang_query(lang)
        )
    }

    /// The waitlist's double opt-in e-mail to `email`, written in `lang` (the page's language),
    /// as is the page its link opens.
    pub fn waitlist_confirmation(&self, email: &str, lang: Lang) -> NewMail {
        let token = mail_token::sign(
            &self.config.link_secret,
            Purpose::ConfirmWaitlist,
            email,
            self.clock.now_ms(),
        );
        NewMail::campaign(
            MailKind::WaitlistConfirm,
            format!("msg_{}", uuid::Uuid::now_v7().simple()),
            CampaignMail {
                email: email.to_owned(),
                locale: lang.as_str().to_owned(),
                confirm_url: format!(
                    "{}/liste-attente/confirmer?jeton={token}{}",
                    self.public_url,
                    lang_query(lang)
                ),
                site_url: format!("{}/api-packages/{}", self.public_url, site_query(lang)),
                launch_code: self.launch_code.clone(),
                ..CampaignMail::default()
            },
        )
    }
}

/// The query suffix that makes a link's page speak `lang` (French needs none: the default).
fn lang_query(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "",
        Lang::Ar => "&lang=ar",
    }
}

/// The landing page's own language parameter (`?lang=ar`, read by its `i18n.js`).
fn site_query(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "",
        Lang::Ar => "?lang=ar",
    }
}
