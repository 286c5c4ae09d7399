//! Instants as the service stores them (milliseconds since the Unix epoch, UTC, in `BIGINT`
//! columns: the same type on SQLite and PostgreSQL) and as it reads and shows them: RFC 3339 on
//! the wire, a French date in e-mails; and [`Clock`], the "now" of the rules that depend on dates
//! (sign-in links and sessions expiring, billing periods, notices), injectable so tests can move
//! time instead of waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

/// The service's "now". The system clock in production; tests hand the service a manual one and
/// move it (`set`, `advance`) to reach an expiry or a period boundary.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock(system)"),
            Some(ms) => write!(f, "Clock(manual {})", rfc3339(ms.load(Ordering::Relaxed))),
        }
    }
}

impl Clock {
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock standing at `ms` until moved.
    pub fn manual(ms: i64) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(ms))))
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            None => iafactory::db::now_millis(),
            Some(ms) => ms.load(Ordering::Relaxed),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        to_datetime(self.now_ms())
    }

    /// Moves a manual clock to `ms` (no effect on the system clock).
    pub fn set(&self, ms: i64) {
        if let Some(c) = &self.0 {
            c.store(ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: std::time::Duration) {
        if let Some(c) = &self.0 {
            c.fetch_add(
                i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
                Ordering::Relaxed,
            );
        }
    }
}

use crate::error::{PromoError, Result};

/// A stored instant. Out-of-range values (never written by this service) read as the epoch.
pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The wire form of a stored instant: `2026-06-06T12:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    to_datetime(ms).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An instant sent by a client in RFC 3339, as stored; `field` names it in the refusal.
pub fn parse_rfc3339(field: &str, raw: &str) -> Result<i64> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|d| d.timestamp_millis())
        .map_err(|_| {
            PromoError::InvalidArgument(format!(
                "{field} doit être une date RFC 3339 (2026-01-31T00:00:00Z), reçu {:?}",
                raw.chars().take(40).collect::<String>()
            ))
        })
}

/// "6 juin 2026".
pub fn french_date(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let d = to_datetime(ms);
    let month = MONTHS.get(d.month0() as usize).copied().unwrap_or_default();
    format!("{} {month} {}", d.day(), d.year())
}

/// The date in Arabic as written in Algeria: day, month by its Maghreb name (جوان for June),
/// year, in Western digits ("6 جوان 2026"), which Algerian readers use.
pub fn arabic_date(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "جانفي",
        "فيفري",
        "مارس",
        "أفريل",
        "ماي",
        "جوان",
        "جويلية",
        "أوت",
        "سبتمبر",
        "أكتوبر",
        "نوفمبر",
        "ديسمبر",
    ];
    let d = to_datetime(ms);
    let month = MONTHS.get(d.month0() as usize).copied().unwrap_or_default();
    format!("{} {month} {}", d.day(), d.year())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_dates() {
        // 2026-06-06T12:00:00Z
        assert_eq!(french_date(1_780_747_200_000), "6 juin 2026");
        assert_eq!(arabic_date(1_780_747_200_000), "6 جوان 2026");
    }
}
