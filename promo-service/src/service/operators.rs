//! The `Operators` service (the console's RPCs): who the caller is and what their role allows,
//! operator sign-in with argon2id passwords and a failed-attempt budget, the audit log, the
//! dashboard's figures, customers, the catalogue and first-party event counts. Roles are decided
//! in `domain::operator`; every change goes through a repository function that writes its audit
//! row in the change's own transaction.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use iafactory::grpc::bearer_token;
use iafactory::proto::iafactory::promo::v1 as pb;
use pb::operators_server::Operators;
use tonic::{Request, Response, Status};

use super::account::{key_id, key_pb};
use super::admin::{page_size, page_token, parse_page_token};
use super::to_pb::package_pb;
use super::{CLIENT_IP_METADATA, CSRF_METADATA, PromoApi, metadata_str};
use crate::audit::{Audit, list_audit};
use crate::clock::rfc3339;
use crate::domain::Email;
use crate::domain::operator::{
    self, Actor, FAILED_SIGN_INS_PER_EMAIL, FAILED_SIGN_INS_PER_IP, Role, day_of, day_range,
};
use crate::error::{PromoError, Result};
use crate::repo::console::{self as store, CustomerFilter, CustomerRow, SpendRow};
use crate::repo::operators::{self as ops, OperatorRow};
use crate::repo::{self, PackageChange};
use crate::secrets;

/// Metadata key of the operator's session token (gateway-rest forwards the console's cookie).
pub(super) const OPERATOR_SESSION_METADATA: &str = "x-iaf-operator-session";

/// The one answer to a wrong e-mail or a wrong password (which it was is not told).
pub(super) fn bad_credentials() -> PromoError {
    PromoError::Unauthenticated("adresse e-mail ou mot de passe incorrect")
}

pub(super) fn session_refused() -> PromoError {
    PromoError::Unauthenticated("session d'opérateur inconnue ou expirée : reconnectez-vous")
}

/// A hash checked when the e-mail is unknown, so that an unknown e-mail costs the same argon2
/// work as a wrong password (the time taken does not tell whether an operator exists).
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&secrets::random_token(24)).unwrap_or_default());

/// argon2id with the crate's default (OWASP) parameters; a random salt per password.
pub(super) fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PromoError::internal(format!("argon2: {e}")))
}

/// Whether `password` matches the PHC string `hash` (false for an unreadable hash).
pub(super) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Password hashes computed at once. Each argon2 run holds 19 MiB for tens of milliseconds: a
/// burst of sign-ins (many e-mails, many addresses, all passing their budgets at the same
/// instant) queues here instead of taking the machine's memory and every blocking thread.
static ARGON2_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The CPU-heavy argon2 work off the async threads, at most [`ARGON2_SLOTS`] at a time.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let _slot = ARGON2_SLOTS.acquire().await.map_err(PromoError::internal)?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(PromoError::internal)
}

pub(super) fn role_pb(role: Role) -> pb::OperatorRole {
    match role {
        Role::Owner => pb::OperatorRole::Owner,
        Role::Support => pb::OperatorRole::Support,
    }
}

pub(super) fn operator_pb(o: &OperatorRow) -> pb::Operator {
    pb::Operator {
        id: o.id.clone(),
        email: o.email.clone(),
        display_name: o.display_name.clone(),
        role: role_pb(o.role).into(),
        created_at: rfc3339(o.created_at),
    }
}

fn actor_of(o: &OperatorRow) -> Actor {
    Actor::Operator {
        id: o.id.clone(),
        display_name: o.display_name.clone(),
        email: o.email.clone(),
        role: o.role,
    }
}

fn customer_pb(c: CustomerRow) -> pb::CustomerSummary {
    pb::CustomerSummary {
        user_id: c.user_id,
        email: c.email,
        package: c.package,
        price_dzd: c.price_dzd,
        base_price_dzd: c.base_price_dzd,
        discount_percent: c.discount_percent,
        promo_code: c.promo_code.unwrap_or_default(),
        discount_ends_at: c.discount_ends_at.map(rfc3339).unwrap_or_default(),
        suspended: c.suspended,
        created_at: rfc3339(c.created_at),
        live_keys: c.live_keys,
    }
}

fn customers_csv(rows: &[CustomerRow]) -> String {
    let mut out = String::from(
        "user_id,email,package,price_dzd,base_price_dzd,discount_percent,promo_code,discount_ends_at,status,created_at,live_keys\r\n",
    );
    for c in rows {
        let cells = [
            c.user_id.clone(),
            c.email.clone(),
            c.package.clone(),
            c.price_dzd.to_string(),
            c.base_price_dzd.to_string(),
            c.discount_percent.to_string(),
            c.promo_code.clone().unwrap_or_default(),
            c.discount_ends_at.map(rfc3339).unwrap_or_default(),
            if c.suspended { "suspended" } else { "active" }.to_owned(),
            rfc3339(c.created_at),
            c.live_keys.to_string(),
        ];
        out.push_str(&iafactory::csv::line(&cells));
    }
    out
}

impl PromoApi {
    /// Who calls: the admin token (an owner, for automation), or an operator session; `change`:
    /// a state-changing call, which needs the session's CSRF token too.
    pub(super) async fn operator_actor<T>(&self, req: &Request<T>, change: bool) -> Result<Actor> {
        if let Some(token) = bearer_token(req.metadata()) {
            return if self.admin.matches(token) {
                Ok(Actor::AdminToken)
            } else {
                Err(PromoError::Unauthenticated(
                    "jeton d'administration invalide",
                ))
            };
        }
        let token = metadata_str(req, OPERATOR_SESSION_METADATA)
            .filter(|t| secrets::looks_like_token(t))
            .ok_or_else(session_refused)?;
        let op = ops::session_operator(&self.db, &secrets::hash_token(token), self.clock.now_ms())
            .await?
            .ok_or_else(session_refused)?;
        if change {
            let presented = metadata_str(req, CSRF_METADATA).unwrap_or("");
            if !secrets::csrf_matches(token, presented) {
                tracing::warn!(operator = %op.id, "operator change without a valid CSRF token");
                return Err(PromoError::Csrf);
            }
        }
        Ok(actor_of(&op))
    }

    /// As [`Self::operator_actor`] for a change, refused unless the caller is an owner.
    pub(super) async fn owner<T>(&self, req: &Request<T>) -> Result<Actor> {
        let actor = self.operator_actor(req, true).await?;
        actor.role().require_owner()?;
        Ok(actor)
    }

    async fn op_create(
        &self,
        req: pb::CreateOperatorRequest,
        actor: &Actor,
    ) -> Result<pb::Operator> {
        let email = Email::parse(&req.email)?;
        let display_name = operator::display_name(&req.display_name)?;
        let role = match pb::OperatorRole::try_from(req.role) {
            Ok(pb::OperatorRole::Owner) => Role::Owner,
            Ok(pb::OperatorRole::Support) => Role::Support,
            _ => {
                return Err(PromoError::InvalidArgument(
                    "role vaut OPERATOR_ROLE_OWNER ou OPERATOR_ROLE_SUPPORT".into(),
                ));
            }
        };
        let password = operator::new_password(&req.password)?.to_owned();
        let password_hash = blocking(move || hash_password(&password)).await??;
        let row = OperatorRow {
            id: format!("op_{}", uuid::Uuid::now_v7().simple()),
            email: email.as_str().to_owned(),
            display_name,
            role,
            password_hash,
            created_at: self.clock.now_ms(),
            deactivated_at: None,
        };
        ops::create_operator(
            &self.db,
            &row,
            &Audit::new(actor, "operator.create", &row.email),
        )
        .await?;
        tracing::info!(operator = %row.id, role = role.as_str(), "operator created");
        Ok(operator_pb(&row))
    }

    async fn op_sign_in(
        &self,
        req: pb::OperatorSignInRequest,
        ip: Option<String>,
    ) -> Result<pb::OperatorSession> {
        let email = Email::parse(&req.email).map_err(|_| bad_credentials())?;
        if req.password.len() > 4 * operator::PASSWORD_MAX {
            return Err(bad_credentials());
        }
        let now = self.clock.now_ms();
        let email_hash = secrets::hash_token(email.as_str());
        if let Some(wait) = ops::sign_in_blocked(
            &self.db,
            &email_hash,
            ip.as_deref(),
            (FAILED_SIGN_INS_PER_EMAIL, FAILED_SIGN_INS_PER_IP),
            now,
        )
        .await?
        {
            return Err(PromoError::SignInLocked(wait));
        }
        let op = ops::find_operator_by_email(&self.db, email.as_str()).await?;
        let hash = op.as_ref().map(|o| o.password_hash.clone());
        let password = req.password;
        let matches = blocking(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            verify_password(&password, &hash) && known
        })
        .await?;
        // A deactivated operator gets the same answer as a wrong password (after the same work).
        let Some(op) = op.filter(|o| matches && o.deactivated_at.is_none()) else {
            ops::record_sign_in_failure(&self.db, &email_hash, ip.as_deref(), now).await?;
            tracing::info!("operator sign-in refused");
            return Err(bad_credentials());
        };
        let token = secrets::new_token();
        let expires_at =
            ops::open_operator_session(&self.db, &op.id, &secrets::hash_token(&token), now).await?;
        tracing::info!(operator = %op.id, "operator signed in");
        Ok(pb::OperatorSession {
            csrf_token: secrets::csrf_token(&token),
            session_token: token,
            expires_at: rfc3339(expires_at),
            operator: Some(operator_pb(&op)),
        })
    }

    async fn op_dashboard(&self, req: pb::GetDashboardRequest) -> Result<pb::Dashboard> {
        let now = self.clock.now_ms();
        let (first, days) = day_range(now, req.days)?;
        let from_day = days.first().cloned().unwrap_or_default();
        let to_day = days.last().cloned().unwrap_or_default();
        let launch = repo::find_code(&self.db, &self.launch_code).await?;
        let gauges = repo::gauges(&self.db, now).await?;
        let signup_times = store::signup_times(&self.db, first).await?;
        let mut per_day: std::collections::BTreeMap<String, u64> =
            days.iter().map(|d| (d.clone(), 0)).collect();
        for t in &signup_times {
            *per_day.entry(day_of(*t)).or_default() += 1;
        }
        let events = store::events_since(&self.db, &from_day).await?;
        let event_total = |name: &str| -> u64 {
            events
                .iter()
                .filter(|(_, e, _)| e == name)
                .map(|(_, _, n)| n)
                .sum()
        };
        let mut views: std::collections::BTreeMap<String, u64> =
            days.iter().map(|d| (d.clone(), 0)).collect();
        for (day, e, n) in &events {
            if e == "landing_view"
                && let Some(v) = views.get_mut(day)
            {
                *v += n;
            }
        }
        // CAC per calendar month touched by the range: all of each month's spend and signups.
        let month_start = format!("{}-01", from_day.get(..7).unwrap_or_default());
        let spend = store::spend_since(&self.db, &month_start).await?;
        let month_first_ms = chrono::NaiveDate::parse_from_str(&month_start, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map_or(first, |d| d.and_utc().timestamp_millis());
        let month_signups = store::signup_times(&self.db, month_first_ms).await?;
        let mut months: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for d in &days {
            months.entry(d[..7].to_owned()).or_default();
        }
        for s in &spend {
            if let Some(m) = months.get_mut(s.day.get(..7).unwrap_or_default()) {
                m.0 += s.amount_dzd;
            }
        }
        for t in &month_signups {
            if let Some(m) = months.get_mut(&day_of(*t)[..7]) {
                m.1 += 1;
            }
        }
        let mrr = store::mrr_since(&self.db, &from_day).await?;
        Ok(pb::Dashboard {
            launch_code: self.launch_code.as_str().to_owned(),
            launch_used: launch.as_ref().map_or(0, |c| c.rules.used),
            launch_total: launch.as_ref().and_then(|c| c.rules.max_redemptions),
            launch_remaining: launch
                .as_ref()
                .and_then(|c| c.rules.remaining())
                .unwrap_or(0),
            signups_per_day: per_day
                .into_iter()
                .map(|(day, count)| pb::DayCount { day, count })
                .collect(),
            mrr: mrr
                .into_iter()
                .map(|(day, mrr_dzd, active_customers)| pb::MrrPoint {
                    day,
                    mrr_dzd,
                    active_customers,
                })
                .collect(),
            mrr_now_dzd: crate::repo::billing::mrr(&self.db, now, &self.billing)
                .await?
                .0,
            revenue_by_package: store::revenue_by_package(&self.db, now)
                .await?
                .into_iter()
                .map(|p| pb::PackageRevenue {
                    package: p.id,
                    name: p.name,
                    customers: p.customers,
                    revenue_monthly_dzd: p.revenue_monthly_dzd,
                })
                .collect(),
            funnel: Some(pb::Funnel {
                landing_views: event_total("landing_view"),
                cta_clicks: event_total("cta_click"),
                code_checks: event_total("code_check"),
                signups: signup_times.len() as u64,
            }),
            landing_views_per_day: views
                .into_iter()
                .map(|(day, count)| pb::DayCount { day, count })
                .collect(),
            spend: spend
                .into_iter()
                .filter(|s| s.day >= from_day)
                .map(|s| pb::SpendEntry {
                    id: s.id,
                    day: s.day,
                    channel: s.channel,
                    amount_dzd: s.amount_dzd,
                    created_by: s.created_by,
                })
                .collect(),
            cac: months
                .into_iter()
                .map(|(month, (spend_dzd, signups))| pb::CacPeriod {
                    month,
                    spend_dzd,
                    signups,
                    cac_dzd: operator::cac(spend_dzd, signups),
                })
                .collect(),
            total_customers: gauges.customers,
            from_day,
            to_day,
        })
    }

    fn customer_filter(&self, req: &pb::ListCustomersRequest) -> Result<CustomerFilter> {
        let search = req.search.trim().to_lowercase();
        if search.chars().count() > 254 {
            return Err(PromoError::InvalidArgument(
                "la recherche fait au plus 254 caractères".into(),
            ));
        }
        let status = req.status.trim();
        if !["", "active", "suspended"].contains(&status) {
            return Err(PromoError::InvalidArgument(
                "status vaut active ou suspended".into(),
            ));
        }
        let package = req.package.trim();
        if package.len() > 64 {
            return Err(PromoError::UnknownPackage(
                package.chars().take(64).collect(),
            ));
        }
        Ok(CustomerFilter {
            search,
            package: package.to_owned(),
            status: status.to_owned(),
            user_id: None,
        })
    }

    async fn op_customers(
        &self,
        req: pb::ListCustomersRequest,
    ) -> Result<pb::ListCustomersResponse> {
        let filter = self.customer_filter(&req)?;
        let size = page_size("page_size", req.page_size)?;
        let after = parse_page_token(&req.page_token)?;
        let (rows, total) =
            store::list_customers(&self.db, &filter, after, Some(size), self.clock.now_ms())
                .await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() == size as usize => page_token(last.created_at, &last.user_id),
            _ => String::new(),
        };
        Ok(pb::ListCustomersResponse {
            customers: rows.into_iter().map(customer_pb).collect(),
            next_page_token,
            total,
        })
    }

    async fn op_customer(&self, user_id: &str) -> Result<pb::CustomerDetail> {
        let user_id = user_id.trim();
        if user_id.is_empty() || user_id.len() > 64 {
            return Err(PromoError::InvalidArgument("user_id invalide".into()));
        }
        let now = self.clock.now_ms();
        let filter = CustomerFilter {
            user_id: Some(user_id.to_owned()),
            ..CustomerFilter::default()
        };
        let (rows, _) = store::list_customers(&self.db, &filter, None, Some(1), now).await?;
        let customer = rows
            .into_iter()
            .next()
            .ok_or_else(|| PromoError::NotFound(format!("client inconnu : {user_id}")))?;
        let tokens_per_month = self
            .cache
            .package(&customer.package)
            .await?
            .map_or(0, |p| p.tokens_per_month);
        let keys = repo::list_keys(&self.db, user_id)
            .await?
            .iter()
            .map(|k| key_pb(k, now))
            .collect();
        Ok(pb::CustomerDetail {
            customer: Some(customer_pb(customer)),
            keys,
            tokens_per_month,
        })
    }

    async fn op_update_package(
        &self,
        req: pb::UpdatePackageRequest,
        actor: &Actor,
    ) -> Result<pb::Package> {
        let id = req.id.trim();
        let name = req
            .name
            .as_deref()
            .map(|n| {
                let n = n.trim();
                if n.is_empty() || n.chars().count() > 40 || n.chars().any(char::is_control) {
                    Err(PromoError::InvalidArgument(
                        "le nom du forfait fait 1 à 40 caractères".into(),
                    ))
                } else {
                    Ok(n.to_owned())
                }
            })
            .transpose()?;
        let limit = |field: &str, v: Option<u64>, max: u64| match v {
            Some(n) if n > max => Err(PromoError::InvalidArgument(format!(
                "{field} va de 0 à {max}"
            ))),
            _ => Ok(v),
        };
        let allowed_models = if req.set_allowed_models {
            let mut models = Vec::new();
            for m in &req.allowed_models {
                let m = m.trim();
                let ok = !m.is_empty()
                    && m.len() <= 128
                    && m.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b));
                if !ok {
                    return Err(PromoError::InvalidArgument(format!(
                        "nom de modèle invalide : {:?}",
                        m.chars().take(40).collect::<String>()
                    )));
                }
                if !models.iter().any(|x: &String| x == m) {
                    models.push(m.to_owned());
                }
            }
            if models.len() > 200 {
                return Err(PromoError::InvalidArgument(
                    "au plus 200 modèles par forfait".into(),
                ));
            }
            Some(models)
        } else if !req.allowed_models.is_empty() {
            return Err(PromoError::InvalidArgument(
                "allowed_models n'est pris en compte qu'avec set_allowed_models = true".into(),
            ));
        } else {
            None
        };
        let change = PackageChange {
            name,
            monthly_price_dzd: limit("monthly_price_dzd", req.monthly_price_dzd, 100_000_000)?,
            tokens_per_month: limit("tokens_per_month", req.tokens_per_month, 1_000_000_000_000)?,
            requests_per_minute: req
                .requests_per_minute
                .map(|r| {
                    if r > 1_000_000 {
                        Err(PromoError::InvalidArgument(
                            "requests_per_minute va de 0 à 1000000".into(),
                        ))
                    } else {
                        Ok(r)
                    }
                })
                .transpose()?,
            allowed_models,
            monthly_cost_budget_nano_usd: operator::cost_budget_change(
                req.monthly_cost_budget_nano_usd,
                req.clear_monthly_cost_budget,
            )?,
        };
        let row = repo::update_package(
            &self.db,
            id,
            &change,
            &Audit::new(actor, "package.update", id),
            self.clock.now_ms(),
        )
        .await;
        self.cache.forget_packages();
        let row = row?;
        tracing::info!(package = %row.id, "package updated");
        Ok(package_pb(row))
    }

    async fn op_add_spend(
        &self,
        req: pb::AddSpendRequest,
        actor: &Actor,
    ) -> Result<pb::SpendEntry> {
        let row = SpendRow {
            id: format!("spd_{}", uuid::Uuid::now_v7().simple()),
            day: operator::parse_day("day", &req.day)?,
            channel: operator::channel(&req.channel)?,
            amount_dzd: u64::try_from(operator::spend_amount(req.amount_dzd)?).unwrap_or(0),
            created_by: actor.label(),
        };
        store::add_spend(
            &self.db,
            &row,
            &Audit::new(actor, "spend.add", &row.id),
            self.clock.now_ms(),
        )
        .await?;
        Ok(pb::SpendEntry {
            id: row.id,
            day: row.day,
            channel: row.channel,
            amount_dzd: row.amount_dzd,
            created_by: row.created_by,
        })
    }
}

#[tonic::async_trait]
impl Operators for PromoApi {
    async fn create_operator(
        &self,
        req: Request<pb::CreateOperatorRequest>,
    ) -> Result<Response<pb::Operator>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            self.op_create(req.into_inner(), &actor).await?,
        ))
    }

    async fn list_operators(
        &self,
        req: Request<pb::ListOperatorsRequest>,
    ) -> Result<Response<pb::ListOperatorsResponse>, Status> {
        self.operator_actor(&req, false).await?;
        let list = ops::list_operators(&self.db).await?;
        Ok(Response::new(pb::ListOperatorsResponse {
            operators: list.iter().map(operator_pb).collect(),
        }))
    }

    async fn sign_in(
        &self,
        req: Request<pb::OperatorSignInRequest>,
    ) -> Result<Response<pb::OperatorSession>, Status> {
        self.require_internal(&req)?;
        let ip = metadata_str(&req, CLIENT_IP_METADATA).map(|ip| ip.chars().take(64).collect());
        Ok(Response::new(self.op_sign_in(req.into_inner(), ip).await?))
    }

    async fn sign_out(
        &self,
        req: Request<pb::OperatorSignOutRequest>,
    ) -> Result<Response<pb::OperatorSignOutResponse>, Status> {
        // A session call (the admin token has no session to end).
        let token = metadata_str(&req, OPERATOR_SESSION_METADATA)
            .filter(|t| secrets::looks_like_token(t))
            .ok_or_else(session_refused)?
            .to_owned();
        if !secrets::csrf_matches(&token, metadata_str(&req, CSRF_METADATA).unwrap_or("")) {
            return Err(PromoError::Csrf.into());
        }
        let ended =
            ops::end_operator_session(&self.db, &secrets::hash_token(&token), self.clock.now_ms())
                .await?;
        Ok(Response::new(pb::OperatorSignOutResponse { ended }))
    }

    async fn who_am_i(
        &self,
        req: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::OperatorIdentity>, Status> {
        let actor = self.operator_actor(&req, false).await?;
        let csrf_token = metadata_str(&req, OPERATOR_SESSION_METADATA)
            .map(secrets::csrf_token)
            .filter(|_| actor != Actor::AdminToken)
            .unwrap_or_default();
        let operator = match &actor {
            Actor::AdminToken => None,
            Actor::Operator {
                id,
                display_name,
                email,
                role,
            } => Some(pb::Operator {
                id: id.clone(),
                email: email.clone(),
                display_name: display_name.clone(),
                role: role_pb(*role).into(),
                created_at: String::new(),
            }),
        };
        Ok(Response::new(pb::OperatorIdentity {
            operator,
            role: role_pb(actor.role()).into(),
            csrf_token,
        }))
    }

    async fn list_audit(
        &self,
        req: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        self.operator_actor(&req, false).await?;
        let req = req.into_inner();
        let size = page_size("page_size", req.page_size)?;
        let before = parse_page_token(&req.page_token)?;
        let rows = list_audit(&self.db, before, size).await?;
        let next_page_token = match rows.last() {
            Some(last) if rows.len() == size as usize => page_token(last.at, &last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListAuditResponse {
            entries: rows
                .into_iter()
                .map(|r| pb::AuditEntry {
                    id: r.id,
                    at: rfc3339(r.at),
                    actor: r.actor,
                    operator_id: r.operator_id.unwrap_or_default(),
                    action: r.action,
                    target: r.target,
                    before_json: r.before_json,
                    after_json: r.after_json,
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_dashboard(
        &self,
        req: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::Dashboard>, Status> {
        self.operator_actor(&req, false).await?;
        Ok(Response::new(self.op_dashboard(req.into_inner()).await?))
    }

    async fn add_spend(
        &self,
        req: Request<pb::AddSpendRequest>,
    ) -> Result<Response<pb::SpendEntry>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            self.op_add_spend(req.into_inner(), &actor).await?,
        ))
    }

    async fn list_customers(
        &self,
        req: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        self.operator_actor(&req, false).await?;
        Ok(Response::new(self.op_customers(req.into_inner()).await?))
    }

    async fn get_customer(
        &self,
        req: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::CustomerDetail>, Status> {
        self.operator_actor(&req, false).await?;
        Ok(Response::new(
            self.op_customer(&req.get_ref().user_id).await?,
        ))
    }

    async fn export_customers(
        &self,
        req: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::CustomersCsv>, Status> {
        // A read, but of personal data in bulk: owners only (no CSRF needed for a read; the
        // console's GET carries no token).
        let actor = self.operator_actor(&req, false).await?;
        actor.role().require_owner()?;
        let filter = self.customer_filter(req.get_ref())?;
        let (rows, _) =
            store::list_customers(&self.db, &filter, None, None, self.clock.now_ms()).await?;
        tracing::info!(actor = %actor.label(), rows = rows.len(), "customer export");
        Ok(Response::new(pb::CustomersCsv {
            csv: customers_csv(&rows),
            rows: rows.len() as u64,
        }))
    }

    async fn revoke_customer_key(
        &self,
        req: Request<pb::RevokeCustomerKeyRequest>,
    ) -> Result<Response<pb::ApiKeyInfo>, Status> {
        let actor = self.owner(&req).await?;
        let req = req.into_inner();
        let key = key_id(&req.key_id)?;
        let user_id = req.user_id.trim();
        let now = self.clock.now_ms();
        let row = repo::revoke_key_by_operator(
            &self.db,
            user_id,
            key,
            &Audit::new(&actor, "key.revoke", key),
            now,
        )
        .await?;
        Ok(Response::new(key_pb(&row, now)))
    }

    async fn set_customer_suspended(
        &self,
        req: Request<pb::SetAccountSuspendedRequest>,
    ) -> Result<Response<pb::SetAccountSuspendedResponse>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            self.set_suspended(req.into_inner(), &actor).await?,
        ))
    }

    async fn update_package(
        &self,
        req: Request<pb::UpdatePackageRequest>,
    ) -> Result<Response<pb::Package>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(
            self.op_update_package(req.into_inner(), &actor).await?,
        ))
    }

    async fn list_codes(
        &self,
        req: Request<pb::ListCodesRequest>,
    ) -> Result<Response<pb::ListCodesResponse>, Status> {
        self.operator_actor(&req, false).await?;
        Ok(Response::new(self.codes().await?))
    }

    async fn update_code(
        &self,
        req: Request<pb::UpdateCodeRequest>,
    ) -> Result<Response<pb::PromoCode>, Status> {
        let actor = self.owner(&req).await?;
        Ok(Response::new(self.update(req.into_inner(), &actor).await?))
    }

    async fn record_event(
        &self,
        req: Request<pb::RecordEventRequest>,
    ) -> Result<Response<pb::RecordEventResponse>, Status> {
        self.require_internal(&req)?;
        let event = operator::event(&req.get_ref().event)?;
        store::record_event(&self.db, &day_of(self.clock.now_ms()), event).await?;
        Ok(Response::new(pb::RecordEventResponse {}))
    }
}
