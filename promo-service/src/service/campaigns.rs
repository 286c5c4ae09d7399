//! The `Campaigns` service: contacts and their import, the suppression list, campaigns (create,
//! test copy, schedule, progress), the waitlist, and the two signed links of e-mails
//! (unsubscribe, waitlist confirmation). Operator RPCs authenticate like the console's; public
//! ones answer gateway-rest (internal token), which rate-limits the browser.

use iafactory::proto::iafactory::promo::v1 as pb;
use pb::campaigns_server::Campaigns;
use tonic::{Request, Response, Status};

use super::PromoApi;
use crate::audit::Audit;
use crate::clock::{parse_rfc3339, rfc3339};
use crate::domain::campaign::{Audience, Locale, Template, audience_for};
use crate::domain::contacts_csv;
use crate::domain::mail_token::{self, Purpose, TokenError};
use crate::domain::operator::Actor;
use crate::domain::{Email, Lang};
use crate::error::{PromoError, Result};
use crate::outbox::{MailKind, NewMail};
use crate::repo::campaigns::{self, CampaignRow};
use crate::repo::contacts::{self, SuppressionReason};
use crate::repo::waitlist;

/// Longest campaign name.
const MAX_NAME_CHARS: usize = 100;
/// Most rows a list answers.
const MAX_LIST: u32 = 1000;

fn limit(asked: u32) -> u32 {
    if asked == 0 { 200 } else { asked.min(MAX_LIST) }
}

fn campaign_pb(c: CampaignRow) -> pb::Campaign {
    pb::Campaign {
        id: c.id,
        name: c.name,
        template: c.template,
        locale: c.locale,
        audience: c.audience,
        status: c.status,
        send_at: c.send_at.map(rfc3339).unwrap_or_default(),
        created_at: rfc3339(c.created_at),
        progress: Some(pb::CampaignProgress {
            recipients: c.progress.recipients,
            sent: c.progress.sent,
            suppressed: c.progress.suppressed,
            failed: c.progress.failed,
            pending: c.progress.pending,
            unsubscribed: c.progress.unsubscribed,
            conversions: c.progress.conversions,
            audience: c.progress.audience,
        }),
    }
}

fn link_refused(e: TokenError, lang: Lang) -> PromoError {
    PromoError::InvalidArgument(
        match (e, lang) {
            (TokenError::Invalid, Lang::Fr) => {
                "ce lien n'est pas valide : vérifiez qu'il a été copié en entier depuis l'e-mail"
            }
            (TokenError::Invalid, Lang::Ar) => {
                "هذا الرابط غير صالح: تحقّق من أنه نُسخ كاملًا من الرسالة"
            }
            (TokenError::Expired, Lang::Fr) => {
                "ce lien a expiré : inscrivez-vous de nouveau depuis la page pour en recevoir un autre"
            }
            (TokenError::Expired, Lang::Ar) => {
                "انتهت صلاحية هذا الرابط: سجّل من جديد من الصفحة لتصلك رسالة أخرى"
            }
        }
        .into(),
    )
}

/// The one answer to a waitlist request, whatever the address's state (no enumeration).
pub(super) const WAITLIST_ANSWER: &str = "Merci ! Si cette adresse peut être inscrite, un e-mail de \
     confirmation vient de lui être envoyé : ouvrez le lien qu'il contient pour confirmer. Sans \
     confirmation, elle ne recevra rien.";

/// [`WAITLIST_ANSWER`] for the Arabic page.
pub(super) const WAITLIST_ANSWER_AR: &str = "شكرًا! إذا كان من الممكن تسجيل هذا العنوان، فقد أُرسلت إليه \
     للتو رسالة تأكيد: افتح الرابط الذي تحتويه لتأكيد التسجيل. دون تأكيد، لن يصله أي شيء.";

impl PromoApi {
    async fn import_contacts(
        &self,
        req: pb::ImportContactsRequest,
        actor: &Actor,
    ) -> Result<pb::ImportContactsResponse> {
        let now = self.clock.now_ms();
        let parsed = contacts_csv::parse(req.csv.as_bytes(), &req.default_source, now)
            .map_err(|e| PromoError::InvalidArgument(e.to_string()))?;
        let refused =
            u32::try_from(parsed.problems.len()).unwrap_or(u32::MAX) + parsed.more_problems;
        let done = contacts::import(
            &self.db,
            &parsed.rows,
            refused,
            &Audit::new(actor, "contacts.import", "contacts"),
            now,
        )
        .await?;
        let mut problems: Vec<pb::ImportProblem> = parsed
            .problems
            .into_iter()
            .map(|p| pb::ImportProblem {
                line: p.line,
                reason: p.reason,
            })
            .collect();
        if parsed.more_problems > 0 {
            problems.push(pb::ImportProblem {
                line: 0,
                reason: format!(
                    "… et {} autre(s) ligne(s) refusée(s), non détaillées",
                    parsed.more_problems
                ),
            });
        }
        Ok(pb::ImportContactsResponse {
            created: done.created,
            merged: done.merged,
            problems,
            rows: parsed.read,
        })
    }

    async fn create_campaign(
        &self,
        req: pb::CreateCampaignRequest,
        actor: &Actor,
    ) -> Result<pb::Campaign> {
        let name = req.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(PromoError::InvalidArgument(format!(
                "nom de campagne requis, {MAX_NAME_CHARS} caractères au plus, sans caractère de contrôle"
            )));
        }
        let template = Template::parse(&req.template)?;
        let locale = Locale::parse(&req.locale)?;
        let asked = if req.audience.trim().is_empty() {
            if matches!(template, Template::WaitlistOver | Template::WaitlistBack) {
                Audience::Waitlist
            } else {
                Audience::Contacts
            }
        } else {
            Audience::parse(&req.audience)?
        };
        let audience = audience_for(template, asked)?;
        let c = campaigns::create(
            &self.db,
            name,
            template,
            locale,
            audience,
            &Audit::new(actor, "campaign.create", ""),
            self.clock.now_ms(),
        )
        .await?;
        Ok(campaign_pb(c))
    }

    async fn test_send(&self, id: &str, actor: &Actor) -> Result<pb::TestSendResponse> {
        let campaign = campaigns::find(&self.db, id).await?;
        let recipient = match actor {
            Actor::Operator { email, .. } => email.clone(),
            Actor::AdminToken => self.mail.operator_email.clone().ok_or_else(|| {
                PromoError::Conflict(
                    "aucune adresse d'opérateur : connectez-vous à la console ou configurez OPERATOR_EMAIL"
                        .into(),
                )
            })?,
        };
        let mail = NewMail::campaign(
            MailKind::Campaign,
            format!("msg_{}", uuid::Uuid::now_v7().simple()),
            self.campaign_jobs.message(&campaign, &recipient, "", true),
        );
        campaigns::write_test_copy(
            &self.db,
            &mail,
            &Audit::new(actor, "campaign.test_send", id),
            self.clock.now_ms(),
        )
        .await?;
        self.mail_wake.notify_waiters();
        Ok(pb::TestSendResponse { recipient })
    }

    async fn schedule_campaign(
        &self,
        req: pb::ScheduleCampaignRequest,
        actor: &Actor,
    ) -> Result<pb::Campaign> {
        let now = self.clock.now_ms();
        let send_at = if req.send_at.trim().is_empty() {
            now
        } else {
            parse_rfc3339("send_at", &req.send_at)?
        };
        campaigns::schedule(
            &self.db,
            &req.id,
            send_at,
            &Audit::new(actor, "campaign.schedule", req.id.clone()),
            now,
        )
        .await?;
        if send_at <= now {
            // Due now: start at once rather than at the job's next pass (another replica's job
            // may win; either way it starts once). The schedule is saved: if starting fails
            // (storage refusing writes), the answer still says what is stored — `scheduled` —
            // and the job starts it once it can, rather than an error for a saved change.
            if let Err(e) = self.campaign_jobs.start_due().await {
                tracing::warn!(campaign = %req.id, error = %e, "campaign scheduled; starting it is left to the campaign job");
            }
        }
        Ok(campaign_pb(campaigns::find(&self.db, &req.id).await?))
    }

    async fn join_waitlist(
        &self,
        req: pb::JoinWaitlistRequest,
    ) -> Result<pb::JoinWaitlistResponse> {
        if !req.consent {
            return Err(PromoError::InvalidArgument(
                "cochez la case pour accepter de recevoir l'e-mail de confirmation et l'annonce des places"
                    .into(),
            ));
        }
        let email = Email::parse(&req.email)?;
        let lang = Lang::parse(&req.lang)?;
        let sent = waitlist::join(&self.db, &email, lang, self.clock.now_ms(), || {
            self.campaign_jobs
                .waitlist_confirmation(email.as_str(), lang)
        })
        .await?;
        if sent {
            self.mail_wake.notify_waiters();
        }
        Ok(pb::JoinWaitlistResponse {
            message: match lang {
                Lang::Fr => WAITLIST_ANSWER,
                Lang::Ar => WAITLIST_ANSWER_AR,
            }
            .into(),
        })
    }

    /// The address (and, for an unsubscribe link, the campaign) a link was signed for; a
    /// refusal is written in `lang`, the language of the page that shows it.
    fn verified(
        &self,
        purpose: Purpose,
        token: &str,
        lang: Lang,
    ) -> Result<(Email, Option<String>)> {
        mail_token::verify_with_campaign(
            &self.campaign_jobs.config.link_secret,
            purpose,
            token,
            self.clock.now_ms(),
        )
        .map_err(|e| link_refused(e, lang))
    }
}

#[tonic::async_trait]
impl Campaigns for PromoApi {
    async fn import_contacts(
        &self,
        req: Request<pb::ImportContactsRequest>,
    ) -> Result<Response<pb::ImportContactsResponse>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            PromoApi::import_contacts(self, req.into_inner(), &actor).await?,
        ))
    }

    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        self.operator_actor(&req, false).await?;
        let (rows, totals) = contacts::list(&self.db, limit(req.get_ref().limit)).await?;
        Ok(Response::new(pb::ListContactsResponse {
            contacts: rows
                .into_iter()
                .map(|c| pb::Contact {
                    email: c.email,
                    name: c.name,
                    source: c.source,
                    consent_at: c.consent_at.map(rfc3339).unwrap_or_default(),
                    created_at: rfc3339(c.created_at),
                    suppressed: c.suppressed,
                    customer: c.customer,
                })
                .collect(),
            total: totals.total,
            with_consent: totals.with_consent,
            suppressed: totals.suppressed,
        }))
    }

    async fn suppress(
        &self,
        req: Request<pb::SuppressRequest>,
    ) -> Result<Response<pb::Suppression>, Status> {
        let actor = self.owner(&req).await?;
        let req = req.into_inner();
        let email = Email::parse(&req.email)?;
        let reason = SuppressionReason::parse(&req.reason).ok_or_else(|| {
            PromoError::InvalidArgument(
                "motif inconnu : unsubscribed, bounced ou complained".into(),
            )
        })?;
        let note: String = req
            .note
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let row = contacts::suppress_by_operator(
            &self.db,
            &email,
            reason,
            &note,
            &Audit::new(&actor, "suppression.add", email.as_str()),
            self.clock.now_ms(),
        )
        .await?;
        Ok(Response::new(pb::Suppression {
            email: row.email,
            reason: row.reason,
            note: row.note,
            created_at: rfc3339(row.created_at),
        }))
    }

    async fn list_suppressions(
        &self,
        req: Request<pb::ListSuppressionsRequest>,
    ) -> Result<Response<pb::ListSuppressionsResponse>, Status> {
        self.operator_actor(&req, false).await?;
        let rows = contacts::list_suppressions(&self.db, limit(req.get_ref().limit)).await?;
        Ok(Response::new(pb::ListSuppressionsResponse {
            suppressions: rows
                .into_iter()
                .map(|s| pb::Suppression {
                    email: s.email,
                    reason: s.reason,
                    note: s.note,
                    created_at: rfc3339(s.created_at),
                })
                .collect(),
        }))
    }

    async fn create_campaign(
        &self,
        req: Request<pb::CreateCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            PromoApi::create_campaign(self, req.into_inner(), &actor).await?,
        ))
    }

    async fn list_campaigns(
        &self,
        req: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        self.operator_actor(&req, false).await?;
        Ok(Response::new(pb::ListCampaignsResponse {
            campaigns: campaigns::list(&self.db)
                .await?
                .into_iter()
                .map(campaign_pb)
                .collect(),
        }))
    }

    async fn get_campaign(
        &self,
        req: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        self.operator_actor(&req, false).await?;
        Ok(Response::new(campaign_pb(
            campaigns::find(&self.db, &req.get_ref().id).await?,
        )))
    }

    async fn test_send_campaign(
        &self,
        req: Request<pb::GetCampaignRequest>,
    ) -> Result<Response<pb::TestSendResponse>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            self.test_send(&req.get_ref().id, &actor).await?,
        ))
    }

    async fn schedule_campaign(
        &self,
        req: Request<pb::ScheduleCampaignRequest>,
    ) -> Result<Response<pb::Campaign>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            PromoApi::schedule_campaign(self, req.into_inner(), &actor).await?,
        ))
    }

    async fn list_waitlist(
        &self,
        req: Request<pb::ListWaitlistRequest>,
    ) -> Result<Response<pb::ListWaitlistResponse>, Status> {
        self.operator_actor(&req, false).await?;
        let (rows, confirmed, unconfirmed) =
            waitlist::list(&self.db, limit(req.get_ref().limit)).await?;
        Ok(Response::new(pb::ListWaitlistResponse {
            entries: rows
                .into_iter()
                .map(|w| pb::WaitlistEntry {
                    email: w.email,
                    confirmed_at: w.confirmed_at.map(rfc3339).unwrap_or_default(),
                    created_at: rfc3339(w.created_at),
                    lang: w.lang.as_str().to_owned(),
                })
                .collect(),
            confirmed,
            unconfirmed,
        }))
    }

    async fn join_waitlist(
        &self,
        req: Request<pb::JoinWaitlistRequest>,
    ) -> Result<Response<pb::JoinWaitlistResponse>, Status> {
        self.require_internal(&req)?;
        Ok(Response::new(
            PromoApi::join_waitlist(self, req.into_inner()).await?,
        ))
    }

    async fn confirm_waitlist(
        &self,
        req: Request<pb::MailTokenRequest>,
    ) -> Result<Response<pb::MailTokenResponse>, Status> {
        self.require_internal(&req)?;
        let lang = Lang::parse(&req.get_ref().lang)?;
        let (email, _) = self.verified(Purpose::ConfirmWaitlist, &req.get_ref().token, lang)?;
        waitlist::confirm(&self.db, &email, self.clock.now_ms()).await?;
        Ok(Response::new(pb::MailTokenResponse {
            message: match lang {
                Lang::Fr => {
                    "Votre inscription sur la liste d'attente est confirmée : nous vous écrirons \
                     si des places reviennent."
                }
                Lang::Ar => "تم تأكيد تسجيلك في قائمة الانتظار: سنراسلك إذا عادت الأماكن.",
            }
            .into(),
        }))
    }

    async fn unsubscribe(
        &self,
        req: Request<pb::MailTokenRequest>,
    ) -> Result<Response<pb::MailTokenResponse>, Status> {
        self.require_internal(&req)?;
        let lang = Lang::parse(&req.get_ref().lang)?;
        let (email, campaign) = self.verified(Purpose::Unsubscribe, &req.get_ref().token, lang)?;
        contacts::unsubscribe(&self.db, &email, campaign.as_deref(), self.clock.now_ms()).await?;
        Ok(Response::new(pb::MailTokenResponse {
            message: match lang {
                Lang::Fr => {
                    "C'est fait : cette adresse ne recevra plus aucune campagne d'IAFactory. \
                     Les e-mails liés à un compte (connexion, factures) ne sont pas concernés."
                }
                Lang::Ar => {
                    "تمّ ذلك: لن يصل هذا العنوان بعد الآن أي حملة من IAFactory. \
                     الرسائل المرتبطة بحساب (تسجيل الدخول، الفواتير) غير معنية."
                }
            }
            .into(),
        }))
    }
}
