//! Promo codes and packages as the rules see them: canonical names, discounts and their
//! rounding, discount periods, and why a code is or is not usable now.

use chrono::{DateTime, Months, Utc};

use crate::error::{PromoError, Refusal};

/// Longest promo code looked up; longer input cannot be a code.
pub const MAX_CODE_LEN: usize = 64;
/// Longest package id looked up.
pub const MAX_PACKAGE_LEN: usize = 64;

/// A promo code in canonical form: trimmed and upper-cased, so `launch30` = `LAUNCH30`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeName(String);

impl CodeName {
    /// For lookups: any non-empty input of sane length. An odd string simply finds no code.
    pub fn lookup(raw: &str) -> Result<CodeName, PromoError> {
        let code = raw.trim().to_uppercase();
        if code.is_empty() {
            return Err(PromoError::InvalidArgument("le code promo est vide".into()));
        }
        if code.chars().count() > MAX_CODE_LEN || code.chars().any(char::is_control) {
            return Err(PromoError::InvalidArgument(
                "le code promo est trop long ou contient des caractères invalides".into(),
            ));
        }
        Ok(CodeName(code))
    }

    /// For creation: 3 to 32 characters among A-Z, 0-9, '-' and '_'.
    pub fn new_code(raw: &str) -> Result<CodeName, PromoError> {
        let code = raw.trim().to_ascii_uppercase();
        let ok = (3..=32).contains(&code.len())
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(CodeName(code))
        } else {
            Err(PromoError::InvalidArgument(
                "un code promo fait 3 à 32 caractères parmi A-Z, 0-9, '-' et '_'".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The launch code, the default of `LAUNCH_CODE` (already canonical, so no validation).
    pub fn launch30() -> CodeName {
        CodeName("LAUNCH30".to_owned())
    }
}

/// Validates a package id's shape before looking it up.
pub fn package_id(raw: &str) -> Result<String, PromoError> {
    let id = raw.trim().to_ascii_lowercase();
    if id.is_empty() {
        return Err(PromoError::InvalidArgument(
            "le forfait est obligatoire".into(),
        ));
    }
    if id.len() > MAX_PACKAGE_LEN
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(PromoError::UnknownPackage(raw.chars().take(64).collect()));
    }
    Ok(id)
}

/// Eligible packages of a code, each with its discount.
pub type Discounts = Vec<(String, Percent)>;

/// A discount in percent, 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent(u8);

impl Percent {
    pub fn new(value: u32) -> Result<Percent, PromoError> {
        u8::try_from(value)
            .ok()
            .filter(|v| (1..=100).contains(v))
            .map(Percent)
            .ok_or_else(|| {
                PromoError::InvalidArgument(format!(
                    "une réduction est comprise entre 1 et 100 % (reçu {value})"
                ))
            })
    }

    pub fn get(self) -> u32 {
        u32::from(self.0)
    }

    /// The price after this discount, in whole dinars, rounded half up.
    pub fn apply(self, price_dzd: u64) -> u64 {
        let kept = u128::from(100 - u64::from(self.0));
        let cents = u128::from(price_dzd) * kept;
        // (x + 50) / 100 is half-up rounding for non-negative integers.
        u64::try_from((cents + 50) / 100).unwrap_or(u64::MAX)
    }
}

/// End of the discount period: the signup instant plus `months` calendar months (clamped to the
/// last day of a shorter month, e.g. 31 August + 6 months = 28/29 February).
pub fn discount_end(signup: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    signup
        .checked_add_months(Months::new(months))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// What the rules need to know about a code.
#[derive(Debug, Clone)]
pub struct CodeRules {
    pub active: bool,
    pub max_redemptions: Option<u32>,
    pub used: u32,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub duration_months: u32,
    /// Eligible packages and their discount.
    pub discounts: Discounts,
}

impl CodeRules {
    /// Whether a public read of places left (`GetRemaining`, `WatchRemaining`) may show this
    /// code. The launch code is public (the landing page counts its places) and always shows;
    /// any other code is handed out privately, and once inactive it answers exactly like an
    /// unknown code — otherwise those RPCs would tell which guessed names exist or existed.
    pub fn publicly_visible(&self, is_launch_code: bool) -> bool {
        self.active || is_launch_code
    }

    pub fn remaining(&self) -> Option<u32> {
        self.max_redemptions.map(|m| m.saturating_sub(self.used))
    }

    /// The discount this code gives now, on `package` or (when `None`) at best; or why not.
    /// Order matters: a deactivated or expired code says so even when it is also full.
    pub fn check(&self, package: Option<&str>, now: DateTime<Utc>) -> Result<Percent, Refusal> {
        if !self.active {
            return Err(Refusal::Inactive);
        }
        if now < self.valid_from {
            return Err(Refusal::NotYetValid);
        }
        if self.valid_until.is_some_and(|end| now >= end) {
            return Err(Refusal::Expired);
        }
        if self.remaining() == Some(0) {
            return Err(Refusal::Exhausted);
        }
        let found = match package {
            Some(p) => self
                .discounts
                .iter()
                .find(|(id, _)| id == p)
                .map(|(_, d)| *d),
            None => self.discounts.iter().map(|(_, d)| *d).max(),
        };
        found.ok_or(Refusal::NotForPackage)
    }
}

/// "Réduction de 33% pendant 6 mois !" — the prototype's wording.
pub fn discount_message(percent: Percent, months: u32, best_of_several: bool) -> String {
    if best_of_several {
        format!(
            "Jusqu'à {}% de réduction pendant {months} mois !",
            percent.get()
        )
    } else {
        format!("Réduction de {}% pendant {months} mois !", percent.get())
    }
}

/// Percent of places used, one decimal (1 of 30 → 3.3).
pub fn percent_filled(used: u32, total: u32) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (f64::from(used.min(total)) * 1000.0 / f64::from(total)).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn launch30_prices_match_the_brief() {
        let cases = [
            (10_000, 25, 7_500),
            (15_000, 33, 10_050),
            (100_000, 25, 75_000),
            (200_000, 30, 140_000),
        ];
        for (price, pct, expected) in cases {
            assert_eq!(
                Percent::new(pct).map(|p| p.apply(price)).ok(),
                Some(expected)
            );
        }
    }

    #[test]
    fn rounding_is_half_up_to_the_dinar() {
        let p33 = Percent::new(33).ok();
        // 15 dinars at -33 % = 10.05 → 10; 150 → 100.5 → 101; 1 → 0.67 → 1.
        assert_eq!(p33.map(|p| p.apply(15)), Some(10));
        assert_eq!(p33.map(|p| p.apply(150)), Some(101));
        assert_eq!(p33.map(|p| p.apply(1)), Some(1));
        assert_eq!(Percent::new(100).map(|p| p.apply(999)).ok(), Some(0));
        assert_eq!(
            Percent::new(50).map(|p| p.apply(u64::MAX)).ok(),
            Some(u64::MAX / 2 + 1)
        );
    }

    #[test]
    fn percent_bounds() {
        assert!(Percent::new(0).is_err());
        assert!(Percent::new(101).is_err());
        assert!(Percent::new(u32::MAX).is_err());
    }

    #[test]
    fn codes_are_case_insensitive() {
        assert_eq!(
            CodeName::lookup(" launch30 ").ok(),
            CodeName::lookup("LAUNCH30").ok()
        );
        assert!(CodeName::lookup("").is_err());
        assert!(CodeName::lookup(&"x".repeat(65)).is_err());
        assert!(CodeName::new_code("ab").is_err());
        assert!(CodeName::new_code("SUMMER 25").is_err());
        assert_eq!(
            CodeName::new_code("summer-25").map(|c| c.0).ok().as_deref(),
            Some("SUMMER-25")
        );
    }

    #[test]
    fn discount_ends_after_calendar_months() {
        assert_eq!(discount_end(at(2025, 12, 6), 6), at(2026, 6, 6));
        assert_eq!(discount_end(at(2026, 8, 31), 6), at(2027, 2, 28));
        assert_eq!(discount_end(at(2027, 8, 31), 6), at(2028, 2, 29));
    }

    fn launch30(used: u32) -> CodeRules {
        CodeRules {
            active: true,
            max_redemptions: Some(30),
            used,
            valid_from: at(2025, 12, 6),
            valid_until: Some(at(2026, 12, 31)),
            duration_months: 6,
            discounts: vec![("starter".into(), Percent(25)), ("dev".into(), Percent(33))],
        }
    }

    #[test]
    fn refusals_say_why() {
        let now = at(2026, 1, 1);
        assert_eq!(launch30(0).check(Some("dev"), now), Ok(Percent(33)));
        assert_eq!(launch30(0).check(None, now), Ok(Percent(33)));
        assert_eq!(launch30(29).check(Some("starter"), now), Ok(Percent(25)));
        assert_eq!(
            launch30(30).check(Some("starter"), now),
            Err(Refusal::Exhausted)
        );
        assert_eq!(
            launch30(0).check(Some("premium"), now),
            Err(Refusal::NotForPackage)
        );
        assert_eq!(
            launch30(0).check(Some("dev"), at(2025, 12, 5)),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(
            launch30(0).check(Some("dev"), at(2027, 1, 1)),
            Err(Refusal::Expired)
        );
        let mut off = launch30(30);
        off.active = false;
        assert_eq!(off.check(Some("dev"), now), Err(Refusal::Inactive));
    }

    #[test]
    fn percent_filled_has_one_decimal() {
        assert!((percent_filled(1, 30) - 3.3).abs() < 1e-9);
        assert!((percent_filled(30, 30) - 100.0).abs() < 1e-9);
        assert!((percent_filled(0, 0)).abs() < 1e-9);
    }
}
