//! The console's launch campaign under `/api/admin/`: contacts (CSV import, list), the
//! suppression list, campaigns (create, test copy, schedule, progress) and the waitlist. Each
//! call goes to promo-service's `Campaigns` RPCs in the operator's session (the console) or with
//! the admin token (automation), which check the role and write the audit rows.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use http::HeaderMap;
use http::header::CONTENT_TYPE;
use iafactory::ErrorCode;
use iafactory::proto::iafactory::promo::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::admin_session::{ApiResult, ok, operator_request};
use crate::error::ApiError;
use crate::extract::{bearer, path_param, read_body, read_json};
use crate::openapi::{family, rest};
use crate::respond::non_empty;
use crate::state::AppState;

/// Largest contact file accepted (promo-service's own limit is the same).
pub const MAX_CSV_BYTES: usize = 512 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_contacts))
        .routes(routes!(list_contacts))
        .routes(routes!(list_suppressions, add_suppression))
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign))
        .routes(routes!(test_send))
        .routes(routes!(schedule))
        .routes(routes!(list_waitlist))
}

/// A `Campaigns` request in the operator's session, or with the admin token when one is sent.
fn console<T>(
    message: T,
    headers: &HeaderMap,
    change: bool,
) -> Result<tonic::Request<T>, ApiError> {
    if bearer(headers).is_none() {
        return operator_request(message, headers, change);
    }
    // The token travels as sent; promo-service checks it (the shared header forwarding refuses
    // one that cannot travel as gRPC metadata).
    crate::backend::request(message, headers, &[crate::backend::Forward::Authorization])
}

#[derive(Serialize, ToSchema)]
pub struct ImportProblem {
    /// Line of the file where the row starts (0: the summary of problems not listed).
    line: u32,
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImportResult {
    /// Data rows read.
    rows: u32,
    created: u32,
    /// Rows merged into an existing contact (same canonical address).
    merged: u32,
    /// Each refused row with its line and reason; the others were imported.
    problems: Vec<ImportProblem>,
}

/// Imports contacts from a CSV file (owner): header row with `email` and optionally `name`,
/// `source`, `consent_at`; `,` or `;`; UTF-8 (BOM allowed). Bad rows are reported by line and
/// the others imported, in one transaction.
#[utoipa::path(
    post,
    path = "/api/admin/contacts/import",
    tag = "console",
    request_body(content = String, content_type = "text/csv", description = "The CSV file, at most 512 KiB."),
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "What was imported and what was refused.", body = ImportResult),
        family::SessionJson,
    ),
)]
pub async fn import_contacts(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let is_csv = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| v == "text/csv" || v == "text/plain");
    let bytes = read_body(&headers, body, MAX_CSV_BYTES).await?;
    if !is_csv {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Le corps doit être un fichier CSV (Content-Type: text/csv).",
        ));
    }
    let csv = String::from_utf8(bytes.to_vec()).map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidArgument,
            "Le fichier n'est pas en UTF-8 : enregistrez-le en « CSV UTF-8 » depuis le tableur.",
        )
    })?;
    let req = console(
        pb::ImportContactsRequest {
            csv,
            default_source: "import".into(),
        },
        &headers,
        true,
    )?;
    let r = state
        .campaigns_client()
        .import_contacts(req)
        .await?
        .into_inner();
    ok(&ImportResult {
        rows: r.rows,
        created: r.created,
        merged: r.merged,
        problems: r
            .problems
            .into_iter()
            .map(|p| ImportProblem {
                line: p.line,
                reason: p.reason,
            })
            .collect(),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Contact {
    email: String,
    name: String,
    source: String,
    /// RFC 3339; null: no consent recorded (never targeted).
    #[schema(required = true)]
    consent_at: Option<String>,
    created_at: String,
    suppressed: bool,
    /// An account exists for the address.
    customer: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Contacts {
    contacts: Vec<Contact>,
    total: u32,
    with_consent: u32,
    suppressed: u32,
}

/// The newest contacts (at most 200) and the totals (operator).
#[utoipa::path(
    get,
    path = "/api/admin/contacts",
    tag = "console",
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "Contacts.", body = Contacts),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_contacts(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = console(pb::ListContactsRequest { limit: 200 }, &headers, false)?;
    let r = state
        .campaigns_client()
        .list_contacts(req)
        .await?
        .into_inner();
    ok(&Contacts {
        contacts: r
            .contacts
            .into_iter()
            .map(|c| Contact {
                email: c.email,
                name: c.name,
                source: c.source,
                consent_at: non_empty(c.consent_at),
                created_at: c.created_at,
                suppressed: c.suppressed,
                customer: c.customer,
            })
            .collect(),
        total: r.total,
        with_consent: r.with_consent,
        suppressed: r.suppressed,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Suppression {
    email: String,
    /// `unsubscribed`, `bounced` or `complained`.
    reason: String,
    note: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Suppressions {
    suppressions: Vec<Suppression>,
}

fn suppression(s: pb::Suppression) -> Suppression {
    Suppression {
        email: s.email,
        reason: s.reason,
        note: s.note,
        created_at: s.created_at,
    }
}

/// The suppression list, newest first (operator).
#[utoipa::path(
    get,
    path = "/api/admin/suppressions",
    tag = "console",
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "Suppressed addresses.", body = Suppressions),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_suppressions(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = console(pb::ListSuppressionsRequest { limit: 500 }, &headers, false)?;
    let r = state
        .campaigns_client()
        .list_suppressions(req)
        .await?
        .into_inner();
    ok(&Suppressions {
        suppressions: r.suppressions.into_iter().map(suppression).collect(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// `unsubscribed`, `bounced` or `complained`.
    reason: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    note: String,
}

/// Adds an address to the suppression list (owner): no campaign will write to it again.
#[utoipa::path(
    post,
    path = "/api/admin/suppressions",
    tag = "console",
    request_body = NewSuppression,
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "The suppression (the first recorded one stands).", body = Suppression),
        family::SessionJson,
    ),
)]
pub async fn add_suppression(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: NewSuppression = read_json(&headers, body, state.config.body_limit).await?;
    let req = console(
        pb::SuppressRequest {
            email: input.email,
            reason: input.reason,
            note: input.note,
        },
        &headers,
        true,
    )?;
    let s = state.campaigns_client().suppress(req).await?.into_inner();
    ok(&suppression(s))
}

#[derive(Serialize, ToSchema)]
pub struct Progress {
    /// Recipients written when sending started (sent to, or skipped as suppressed).
    recipients: u32,
    sent: u32,
    /// Skipped: suppressed, or signed up before a reminder.
    suppressed: u32,
    /// Delivery gave up.
    failed: u32,
    /// Waiting for their pacing slot or a retry.
    pending: u32,
    /// Unsubscribed through this campaign's link.
    unsubscribed: u32,
    /// Recipients sent this campaign who signed up after their message was sent.
    conversions: u32,
    /// The audience's size: `recipients` once sending started; before, who it would reach now.
    audience: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Campaign {
    id: String,
    name: String,
    /// `announcement`, `reminder`, `waitlist_over`, `waitlist_back`.
    template: String,
    /// `fr` or `ar`.
    locale: String,
    /// `contacts`, `waitlist` or `prospects`.
    audience: String,
    /// `draft`, `scheduled` or `sending`.
    status: String,
    #[schema(required = true)]
    send_at: Option<String>,
    created_at: String,
    progress: Progress,
}

impl From<pb::Campaign> for Campaign {
    fn from(c: pb::Campaign) -> Self {
        let p = c.progress.unwrap_or_default();
        Campaign {
            id: c.id,
            name: c.name,
            template: c.template,
            locale: c.locale,
            audience: c.audience,
            status: c.status,
            send_at: non_empty(c.send_at),
            created_at: c.created_at,
            progress: Progress {
                recipients: p.recipients,
                sent: p.sent,
                suppressed: p.suppressed,
                failed: p.failed,
                pending: p.pending,
                unsubscribed: p.unsubscribed,
                conversions: p.conversions,
                audience: p.audience,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Campaigns {
    campaigns: Vec<Campaign>,
}

/// Every campaign with its progress, newest first (operator).
#[utoipa::path(
    get,
    path = "/api/admin/campagnes",
    tag = "console",
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "Campaigns.", body = Campaigns),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_campaigns(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = console(pb::ListCampaignsRequest {}, &headers, false)?;
    let r = state
        .campaigns_client()
        .list_campaigns(req)
        .await?
        .into_inner();
    ok(&Campaigns {
        campaigns: r.campaigns.into_iter().map(Campaign::from).collect(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// `announcement`, `reminder`, `waitlist_over`, `waitlist_back`.
    template: String,
    /// `fr` (default) or `ar`.
    #[serde(default)]
    locale: String,
    /// `contacts`, `waitlist` or `prospects`; a reminder always goes to prospects.
    #[serde(default)]
    audience: String,
}

/// Creates a draft campaign (owner).
#[utoipa::path(
    post,
    path = "/api/admin/campagnes",
    tag = "console",
    request_body = NewCampaign,
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "The draft.", body = Campaign),
        family::SessionJson,
    ),
)]
pub async fn create_campaign(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let input: NewCampaign = read_json(&headers, body, state.config.body_limit).await?;
    let req = console(
        pb::CreateCampaignRequest {
            name: input.name,
            template: input.template,
            locale: input.locale,
            audience: input.audience,
        },
        &headers,
        true,
    )?;
    let c = state
        .campaigns_client()
        .create_campaign(req)
        .await?
        .into_inner();
    ok(&Campaign::from(c))
}

/// One campaign with its progress (operator).
#[utoipa::path(
    get,
    path = "/api/admin/campagnes/{id}",
    tag = "console",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`).")),
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "The campaign.", body = Campaign),
        (status = 400, response = inline(rest::BadRequest)),
        (status = 401, response = inline(rest::Unauthorized)),
        (status = 404, response = inline(rest::NotFound)),
    ),
)]
pub async fn get_campaign(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let id = path_param(id)?;
    let req = console(pb::GetCampaignRequest { id }, &headers, false)?;
    let c = state
        .campaigns_client()
        .get_campaign(req)
        .await?
        .into_inner();
    ok(&Campaign::from(c))
}

#[derive(Serialize, ToSchema)]
pub struct TestSent {
    /// Where the test copy goes (the operator's address).
    recipient: String,
}

/// Sends one test copy of the campaign's message to the operator (owner).
#[utoipa::path(
    post,
    path = "/api/admin/campagnes/{id}/test",
    tag = "console",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`).")),
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "The copy is queued.", body = TestSent),
        family::Session,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn test_send(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> ApiResult {
    let id = path_param(id)?;
    let req = console(pb::GetCampaignRequest { id }, &headers, true)?;
    let r = state
        .campaigns_client()
        .test_send_campaign(req)
        .await?
        .into_inner();
    ok(&TestSent {
        recipient: r.recipient,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// RFC 3339; absent or empty: now.
    #[serde(default)]
    send_at: String,
}

/// Schedules (or moves) a campaign; at that time its recipients are written once and its
/// messages paced at the relay's rate (owner).
#[utoipa::path(
    post,
    path = "/api/admin/campagnes/{id}/programmer",
    tag = "console",
    params(("id" = String, Path, description = "Campaign id (`cmp_…`).")),
    request_body = ScheduleRequest,
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "The campaign.", body = Campaign),
        family::SessionJson,
        (status = 404, response = inline(rest::NotFound)),
        (status = 409, response = inline(rest::Conflict)),
    ),
)]
pub async fn schedule(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    let id = path_param(id)?;
    let input: ScheduleRequest = read_json(&headers, body, state.config.body_limit).await?;
    let req = console(
        pb::ScheduleCampaignRequest {
            id,
            send_at: input.send_at,
        },
        &headers,
        true,
    )?;
    let c = state
        .campaigns_client()
        .schedule_campaign(req)
        .await?
        .into_inner();
    ok(&Campaign::from(c))
}

#[derive(Serialize, ToSchema)]
pub struct WaitlistEntry {
    email: String,
    confirmed_at: String,
    created_at: String,
    /// `fr` or `ar`: the page the visitor joined from (their confirmation e-mail's language).
    lang: String,
}

#[derive(Serialize, ToSchema)]
pub struct Waitlist {
    /// Confirmed entries, newest first (at most 500).
    entries: Vec<WaitlistEntry>,
    confirmed: u32,
    /// Waiting for the confirmation link to be opened (never targeted).
    unconfirmed: u32,
}

/// The confirmed waitlist (operator).
#[utoipa::path(
    get,
    path = "/api/admin/liste-attente",
    tag = "console",
    security(("adminToken" = []), ("operatorSession" = [])),
    responses(
        (status = 200, description = "The waitlist.", body = Waitlist),
        (status = 401, response = inline(rest::Unauthorized)),
    ),
)]
pub async fn list_waitlist(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    let req = console(pb::ListWaitlistRequest { limit: 500 }, &headers, false)?;
    let r = state
        .campaigns_client()
        .list_waitlist(req)
        .await?
        .into_inner();
    ok(&Waitlist {
        entries: r
            .entries
            .into_iter()
            .map(|w| WaitlistEntry {
                email: w.email,
                confirmed_at: w.confirmed_at,
                created_at: w.created_at,
                lang: w.lang,
            })
            .collect(),
        confirmed: r.confirmed,
        unconfirmed: r.unconfirmed,
    })
}
