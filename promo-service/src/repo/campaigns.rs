//! Campaigns (`campaigns`), their recipients (`campaign_recipients`) and the shared pacing slot
//! (`campaign_pacing`). Sending starts with one transaction that moves the campaign from
//! `scheduled` to `sending` with a guarded update (one replica wins), writes each recipient once
//! (the `(campaign, e-mail)` key refuses a second) and its outbox row due at its pacing slot.
//! The delivery worker asks `outbox::eligibility` right before sending, so an address
//! suppressed (or, for a reminder, signed up) after the campaign was queued gets nothing.

use iafactory::db::Db;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::u32_of;
use crate::audit::{self, Audit};
use crate::domain::campaign::{self, Audience, Locale, Template};
use crate::error::{PromoError, Result};
use crate::outbox::NewMail;
use crate::outbox::store::insert_due_in_tx;

/// A campaign as stored, with its progress.
#[derive(Debug, Clone)]
pub struct CampaignRow {
    pub id: String,
    pub name: String,
    pub template: String,
    pub audience: String,
    pub locale: String,
    pub status: String,
    pub send_at: Option<i64>,
    pub created_at: i64,
    pub progress: Progress,
}

/// Where a campaign's messages stand.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub recipients: u32,
    pub sent: u32,
    pub suppressed: u32,
    pub failed: u32,
    pub pending: u32,
    /// Left through this campaign's unsubscribe link.
    pub unsubscribed: u32,
    /// Sent this campaign, then signed up (signup after the message's `sent_at`).
    pub conversions: u32,
    /// See [`audience_size`]: the recipients once sending started, the would-be audience before.
    pub audience: u32,
}

macro_rules! campaign_select {
    () => {
        "SELECT c.id, c.name, c.template, c.audience, c.locale, c.status, \
     c.send_at, c.created_at, \
     COUNT(r.email) AS recipients, \
     COALESCE(SUM(CASE WHEN r.status = 'suppressed' THEN 1 ELSE 0 END), 0) AS suppressed, \
     COALESCE(SUM(CASE WHEN r.status = 'queued' AND o.status = 'sent' THEN 1 ELSE 0 END), 0) AS sent, \
     COALESCE(SUM(CASE WHEN r.status = 'queued' AND o.status = 'dead' THEN 1 ELSE 0 END), 0) AS failed, \
     COALESCE(SUM(CASE WHEN r.status = 'queued' AND o.status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN r.status = 'queued' AND o.status = 'sent' AND EXISTS (\
         SELECT 1 FROM customers u JOIN signups g ON g.customer_id = u.id \
         WHERE u.email = r.email AND g.created_at > o.sent_at) THEN 1 ELSE 0 END), 0) AS conversions, \
     (SELECT COUNT(*) FROM suppressions s WHERE s.campaign_id = c.id) AS unsubscribed \
     FROM campaigns c LEFT JOIN campaign_recipients r ON r.campaign_id = c.id \
     LEFT JOIN outbox o ON o.id = r.outbox_id"
    };
}

macro_rules! campaign_group {
    () => {
        " GROUP BY c.id, c.name, c.template, c.audience, c.locale, c.status, c.send_at, c.created_at"
    };
}

fn campaign_of(r: &AnyRow) -> Result<CampaignRow> {
    Ok(CampaignRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        template: r.try_get("template")?,
        audience: r.try_get("audience")?,
        locale: r.try_get("locale")?,
        status: r.try_get("status")?,
        send_at: r.try_get("send_at")?,
        created_at: r.try_get("created_at")?,
        progress: Progress {
            recipients: u32_of(r.try_get("recipients")?),
            sent: u32_of(r.try_get("sent")?),
            suppressed: u32_of(r.try_get("suppressed")?),
            failed: u32_of(r.try_get("failed")?),
            pending: u32_of(r.try_get("pending")?),
            unsubscribed: u32_of(r.try_get("unsubscribed")?),
            conversions: u32_of(r.try_get("conversions")?),
            audience: 0,
        },
    })
}

/// How many each audience would reach now (with consent or confirmed, not suppressed), by
/// [`Audience`]: what a campaign not yet sending shows as its audience.
#[derive(Debug, Clone, Copy, Default)]
pub struct AudienceSizes {
    contacts: u32,
    prospects: u32,
    waitlist: u32,
}

impl AudienceSizes {
    async fn read(db: &Db) -> Result<AudienceSizes> {
        let r = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM contacts c WHERE c.consent_at IS NOT NULL \
                AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = c.email)) AS contacts, \
             (SELECT COUNT(*) FROM contacts c WHERE c.consent_at IS NOT NULL \
                AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = c.email) \
                AND NOT EXISTS (SELECT 1 FROM customers u WHERE u.email = c.email)) AS prospects, \
             (SELECT COUNT(*) FROM waitlist w WHERE w.confirmed_at IS NOT NULL \
                AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = w.email)) AS waitlist",
        )
        .fetch_one(&db.read)
        .await?;
        Ok(AudienceSizes {
            contacts: u32_of(r.try_get("contacts")?),
            prospects: u32_of(r.try_get("prospects")?),
            waitlist: u32_of(r.try_get("waitlist")?),
        })
    }

    /// Fills `c.progress.audience`.
    fn fill(self, mut c: CampaignRow) -> CampaignRow {
        c.progress.audience = if c.status == "sending" {
            c.progress.recipients
        } else {
            match Audience::parse(&c.audience) {
                Ok(Audience::Contacts) => self.contacts,
                Ok(Audience::Prospects) => self.prospects,
                Ok(Audience::Waitlist) => self.waitlist,
                Err(_) => 0,
            }
        };
        c
    }
}

/// One campaign with its progress.
pub async fn find(db: &Db, id: &str) -> Result<CampaignRow> {
    let row = sqlx::query(concat!(
        campaign_select!(),
        " WHERE c.id = $1",
        campaign_group!()
    ))
    .bind(id)
    .fetch_optional(&db.write)
    .await?
    .ok_or_else(|| PromoError::NotFound(format!("campagne inconnue : {id}")))?;
    let c = campaign_of(&row)?;
    if c.status == "sending" {
        return Ok(AudienceSizes::default().fill(c));
    }
    Ok(AudienceSizes::read(db).await?.fill(c))
}

/// Every campaign, newest first.
pub async fn list(db: &Db) -> Result<Vec<CampaignRow>> {
    let rows = sqlx::query(concat!(
        campaign_select!(),
        campaign_group!(),
        " ORDER BY c.created_at DESC, c.id DESC"
    ))
    .fetch_all(&db.read)
    .await?
    .iter()
    .map(campaign_of)
    .collect::<Result<Vec<_>>>()?;
    let sizes = if rows.iter().any(|c| c.status != "sending") {
        AudienceSizes::read(db).await?
    } else {
        AudienceSizes::default()
    };
    Ok(rows.into_iter().map(|c| sizes.fill(c)).collect())
}

/// A new draft, with its audit row.
pub async fn create(
    db: &Db,
    name: &str,
    template: Template,
    locale: Locale,
    audience: Audience,
    audit: &Audit<'_>,
    now: i64,
) -> Result<CampaignRow> {
    let id = format!("cmp_{}", uuid::Uuid::now_v7().simple());
    let mut tx = db.write.begin().await?;
    sqlx::query(
        "INSERT INTO campaigns (id, name, template, audience, locale, status, created_by, \
         created_at) VALUES ($1, $2, $3, $4, $5, 'draft', $6, $7)",
    )
    .bind(&id)
    .bind(name)
    .bind(template.as_str())
    .bind(audience.as_str())
    .bind(locale.as_str())
    .bind(audit.actor.label())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        &Audit {
            target: id.clone(),
            ..audit.clone()
        },
        &serde_json::Value::Null,
        &serde_json::json!({
            "name": name, "template": template.as_str(), "locale": locale.as_str(),
            "audience": audience.as_str()
        }),
        now,
    )
    .await?;
    tx.commit().await?;
    find(db, &id).await
}

/// Schedules a draft or moves a scheduled campaign; refused once it is sending.
pub async fn schedule(
    db: &Db,
    id: &str,
    send_at: i64,
    audit: &Audit<'_>,
    now: i64,
) -> Result<CampaignRow> {
    let before = find(db, id).await?;
    let mut tx = db.write.begin().await?;
    let done = sqlx::query(
        "UPDATE campaigns SET status = 'scheduled', send_at = $2 \
         WHERE id = $1 AND status IN ('draft', 'scheduled')",
    )
    .bind(id)
    .bind(send_at)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Err(PromoError::Conflict(
            "cette campagne est déjà en cours d'envoi : elle ne peut plus être reprogrammée".into(),
        ));
    }
    audit::record(
        &mut tx,
        audit,
        &serde_json::json!({ "status": before.status, "send_at": before.send_at }),
        &serde_json::json!({ "status": "scheduled", "send_at": send_at }),
        now,
    )
    .await?;
    tx.commit().await?;
    find(db, id).await
}

/// Scheduled campaigns whose time has come (service clock).
pub async fn due(db: &Db, now: i64) -> Result<Vec<CampaignRow>> {
    sqlx::query(concat!(
        campaign_select!(),
        " WHERE c.status = 'scheduled' AND c.send_at <= $1",
        campaign_group!(),
        " ORDER BY c.send_at, c.id"
    ))
    .bind(now)
    .fetch_all(&db.write)
    .await?
    .iter()
    .map(campaign_of)
    .collect()
}

/// One person a campaign goes to.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub email: String,
    pub name: String,
    pub suppressed: bool,
}

/// Starts sending `campaign`: in one transaction, takes it from `scheduled` to `sending`
/// (nothing happens if another replica did first: returns None), reserves `n` pacing slots
/// from the shared cursor (not before `now`, real time: the outbox's clock), writes every
/// recipient (suppressed ones as such, without a message) and each message due at its slot.
/// Returns the number of messages queued.
pub async fn start_sending(
    db: &Db,
    campaign: &CampaignRow,
    rate_per_min: u32,
    now: i64,
    mail: impl Fn(&Recipient) -> NewMail,
) -> Result<Option<usize>> {
    let audience = Audience::parse(&campaign.audience)?;
    let mut tx = db.write.begin().await?;
    let won = sqlx::query(
        "UPDATE campaigns SET status = 'sending', enqueued_at = $2 \
         WHERE id = $1 AND status = 'scheduled'",
    )
    .bind(&campaign.id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if won.rows_affected() == 0 {
        return Ok(None);
    }
    let audience_sql = match audience {
        Audience::Contacts => {
            "SELECT c.email, c.name, (SELECT COUNT(*) FROM suppressions s WHERE s.email = c.email) \
             AS suppressed FROM contacts c WHERE c.consent_at IS NOT NULL ORDER BY c.email"
        }
        Audience::Prospects => {
            "SELECT c.email, c.name, (SELECT COUNT(*) FROM suppressions s WHERE s.email = c.email) \
             AS suppressed FROM contacts c WHERE c.consent_at IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM customers u WHERE u.email = c.email) ORDER BY c.email"
        }
        Audience::Waitlist => {
            "SELECT w.email, '' AS name, (SELECT COUNT(*) FROM suppressions s WHERE s.email = w.email) \
             AS suppressed FROM waitlist w WHERE w.confirmed_at IS NOT NULL ORDER BY w.email"
        }
    };
    let recipients = sqlx::query(audience_sql)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            Ok(Recipient {
                email: r.try_get("email")?,
                name: r.try_get("name")?,
                suppressed: r.try_get::<i64, _>("suppressed")? > 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let queued = recipients.iter().filter(|r| !r.suppressed).count();
    // One statement moves the shared cursor past this campaign's slots; its row stays locked
    // until commit, so a campaign started at once on another replica takes the slots after.
    let span = campaign::slot(0, queued, rate_per_min);
    sqlx::query(
        "UPDATE campaign_pacing SET next_slot = \
         (CASE WHEN next_slot > $1 THEN next_slot ELSE $1 END) + $2 WHERE id = 1",
    )
    .bind(now)
    .bind(span)
    .execute(&mut *tx)
    .await?;
    let end: i64 = sqlx::query("SELECT next_slot FROM campaign_pacing WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?
        .try_get("next_slot")?;
    let first = end - span;
    let mut index = 0;
    for r in &recipients {
        if r.suppressed {
            sqlx::query(
                "INSERT INTO campaign_recipients (campaign_id, email, status) \
                 VALUES ($1, $2, 'suppressed')",
            )
            .bind(&campaign.id)
            .bind(&r.email)
            .execute(&mut *tx)
            .await?;
            continue;
        }
        let message = mail(r);
        sqlx::query(
            "INSERT INTO campaign_recipients (campaign_id, email, status, outbox_id) \
             VALUES ($1, $2, 'queued', $3)",
        )
        .bind(&campaign.id)
        .bind(&r.email)
        .bind(&message.id)
        .execute(&mut *tx)
        .await?;
        insert_due_in_tx(
            &mut tx,
            &message,
            now,
            campaign::slot(first, index, rate_per_min),
        )
        .await?;
        index += 1;
    }
    tx.commit().await?;
    Ok(Some(queued))
}

/// The operator's test copy: one outbox row and its audit row, the campaign unchanged.
pub async fn write_test_copy(db: &Db, mail: &NewMail, audit: &Audit<'_>, now: i64) -> Result<()> {
    let mut tx = db.write.begin().await?;
    crate::outbox::store::insert_in_tx(&mut tx, mail, now).await?;
    audit::record(
        &mut tx,
        audit,
        &serde_json::Value::Null,
        &serde_json::json!({ "test_copy_to": mail.recipient, "message": mail.id }),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
