//! The operator console's rules, without I/O: roles and what each may do, who acted (for the
//! audit log), what a valid operator, password, spend entry and page event are, and the days the
//! dashboard counts in. Invariant: a role's permissions are decided here and only here, so the
//! console can never grant what promo-service refuses.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{PromoError, Result};

const DAY_MS: i64 = 24 * 3_600_000;

/// Failed sign-ins allowed per e-mail per window (then refused without checking the password).
pub const FAILED_SIGN_INS_PER_EMAIL: i64 = 5;
/// Failed sign-ins allowed per client IP per window (stops trying many e-mails).
pub const FAILED_SIGN_INS_PER_IP: i64 = 20;
/// Shortest and longest operator password.
pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 200;
/// The page events counted; anything else is refused.
pub const EVENTS: [&str; 3] = ["landing_view", "cta_click", "code_check"];

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything.
    Owner,
    /// Reads; no change, no personal-data export.
    Support,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "support" => Some(Role::Support),
            _ => None,
        }
    }

    /// Changes (catalogue, customers, spend, operators) and personal-data exports.
    pub fn require_owner(self) -> Result<()> {
        match self {
            Role::Owner => Ok(()),
            Role::Support => Err(PromoError::Forbidden(
                "action réservée aux opérateurs « propriétaire » (le rôle support est en lecture seule)",
            )),
        }
    }
}

/// Who made an admin change: a named operator or the shared admin token (automation, grpcurl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    AdminToken,
    Operator {
        id: String,
        display_name: String,
        email: String,
        role: Role,
    },
}

impl Actor {
    /// The role the actor acts with (the admin token is an owner).
    pub fn role(&self) -> Role {
        match self {
            Actor::AdminToken => Role::Owner,
            Actor::Operator { role, .. } => *role,
        }
    }

    /// As written in the audit log.
    pub fn label(&self) -> String {
        match self {
            Actor::AdminToken => "admin-token".to_owned(),
            Actor::Operator {
                display_name,
                email,
                ..
            } => format!("{display_name} <{email}>"),
        }
    }

    pub fn operator_id(&self) -> Option<&str> {
        match self {
            Actor::AdminToken => None,
            Actor::Operator { id, .. } => Some(id),
        }
    }
}

/// A display name: trimmed, 1 to 80 characters, no control character.
pub fn display_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 80 || name.chars().any(char::is_control) {
        return Err(PromoError::InvalidArgument(
            "le nom affiché fait 1 à 80 caractères, sans caractère de contrôle".into(),
        ));
    }
    Ok(name.to_owned())
}

/// A new password: 12 to 200 characters (a passphrase fits; argon2 work stays bounded).
pub fn new_password(raw: &str) -> Result<&str> {
    let n = raw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(PromoError::InvalidArgument(format!(
            "le mot de passe fait {PASSWORD_MIN} à {PASSWORD_MAX} caractères"
        )));
    }
    Ok(raw)
}

/// The largest monthly upstream-cost budget: one million dollars, in nano-USD.
pub const COST_BUDGET_MAX_NANO_USD: u64 = 1_000_000_000_000_000;

/// A package's cost-budget change from the RPC's pair: `None` leaves it, `Some(None)` removes
/// it, `Some(Some(n))` sets it (1 nano-USD to [`COST_BUDGET_MAX_NANO_USD`]). Setting and
/// removing at once is refused rather than guessed.
pub fn cost_budget_change(set: Option<u64>, clear: bool) -> Result<Option<Option<u64>>> {
    match (set, clear) {
        (Some(_), true) => Err(PromoError::InvalidArgument(
            "monthly_cost_budget_nano_usd et clear_monthly_cost_budget s'excluent".into(),
        )),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
        (Some(n), false) if (1..=COST_BUDGET_MAX_NANO_USD).contains(&n) => Ok(Some(Some(n))),
        (Some(_), false) => Err(PromoError::InvalidArgument(format!(
            "monthly_cost_budget_nano_usd va de 1 à {COST_BUDGET_MAX_NANO_USD} (nano-dollars)"
        ))),
    }
}

/// A counted page event's name.
pub fn event(raw: &str) -> Result<&'static str> {
    EVENTS.iter().copied().find(|e| *e == raw).ok_or_else(|| {
        PromoError::InvalidArgument(format!(
            "événement inconnu ; attendu : {}",
            EVENTS.join(", ")
        ))
    })
}

/// A marketing channel: trimmed, 1 to 60 characters, no control character.
pub fn channel(raw: &str) -> Result<String> {
    let c = raw.trim();
    if c.is_empty() || c.chars().count() > 60 || c.chars().any(char::is_control) {
        return Err(PromoError::InvalidArgument(
            "le canal fait 1 à 60 caractères, sans caractère de contrôle".into(),
        ));
    }
    Ok(c.to_owned())
}

/// A spend amount: 1 to 1 000 000 000 DZD.
pub fn spend_amount(amount: u64) -> Result<i64> {
    match i64::try_from(amount) {
        Ok(a) if (1..=1_000_000_000).contains(&a) => Ok(a),
        _ => Err(PromoError::InvalidArgument(
            "le montant va de 1 à 1 000 000 000 DZD".into(),
        )),
    }
}

/// A day as the console writes it (`2026-11-30`).
pub fn parse_day(field: &str, raw: &str) -> Result<String> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map(|d| d.format("%Y-%m-%d").to_string())
        .map_err(|_| PromoError::InvalidArgument(format!("{field} doit être une date AAAA-MM-JJ")))
}

/// The UTC day of an instant.
pub fn day_of(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Start of the UTC day of an instant.
pub fn day_start(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// The `days` days ending with `now`'s day, oldest first, with the first day's start instant.
pub fn day_range(now: i64, days: u32) -> Result<(i64, Vec<String>)> {
    let days = match days {
        0 => 30,
        n if n <= 366 => n,
        n => {
            return Err(PromoError::InvalidArgument(format!(
                "days va de 1 à 366 (reçu {n})"
            )));
        }
    };
    let first = day_start(now) - i64::from(days - 1) * DAY_MS;
    let list = (0..i64::from(days))
        .map(|i| day_of(first + i * DAY_MS))
        .collect();
    Ok((first, list))
}

/// The cost of acquiring one customer: spend / signups, rounded half up; none without signup.
pub fn cac(spend_dzd: u64, signups: u64) -> Option<u64> {
    (signups > 0).then(|| (spend_dzd + signups / 2) / signups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert!(Role::Owner.require_owner().is_ok());
        assert!(Role::Support.require_owner().is_err());
        assert_eq!(Role::parse("owner"), Some(Role::Owner));
        assert_eq!(Role::parse("Owner"), None);
        assert_eq!(Actor::AdminToken.role(), Role::Owner);
        assert_eq!(Actor::AdminToken.label(), "admin-token");
    }

    #[test]
    fn inputs() {
        assert!(new_password("short").is_err());
        assert!(new_password("a long enough passphrase").is_ok());
        assert!(event("landing_view").is_ok());
        assert!(event("signup").is_err());
        assert!(event("LANDING_VIEW").is_err());
        assert!(channel("  ").is_err());
        assert_eq!(channel(" radio ").ok().as_deref(), Some("radio"));
        assert!(spend_amount(0).is_err());
        assert!(spend_amount(5000).is_ok());
        assert_eq!(
            parse_day("day", "2026-11-30").ok().as_deref(),
            Some("2026-11-30")
        );
        assert!(parse_day("day", "30/11/2026").is_err());
        assert!(display_name("").is_err());
        assert_eq!(cost_budget_change(None, false).ok(), Some(None));
        assert_eq!(cost_budget_change(None, true).ok(), Some(Some(None)));
        assert_eq!(cost_budget_change(Some(5), false).ok(), Some(Some(Some(5))));
        assert!(cost_budget_change(Some(5), true).is_err());
        assert!(cost_budget_change(Some(0), false).is_err());
        assert!(cost_budget_change(Some(COST_BUDGET_MAX_NANO_USD + 1), false).is_err());
    }

    #[test]
    fn days_and_cac() {
        // 2026-06-06T12:00:00Z
        let now = 1_780_747_200_000;
        assert_eq!(day_of(now), "2026-06-06");
        let (first, days) = day_range(now, 3).unwrap_or_default();
        assert_eq!(days, ["2026-06-04", "2026-06-05", "2026-06-06"]);
        assert_eq!(day_of(first), "2026-06-04");
        assert_eq!(day_start(first), first);
        assert!(day_range(now, 367).is_err());
        assert_eq!(cac(10_000, 3), Some(3_333));
        assert_eq!(cac(10_000, 6), Some(1_667));
        assert_eq!(cac(10_000, 0), None);
    }
}
