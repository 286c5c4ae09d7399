//! Instants as the service stores them (milliseconds since the Unix epoch, UTC, in `BIGINT`
//! columns: the same type on SQLite and PostgreSQL) and as it reads and shows them: RFC 3339 on
//! the wire, a French date in e-mails.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_dates() {
        // 2026-06-06T12:00:00Z
        assert_eq!(french_date(1_780_747_200_000), "6 juin 2026");
    }
}
