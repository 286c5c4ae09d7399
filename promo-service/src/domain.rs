//! The business rules, without I/O: e-mail and code normalisation, prices and rounding, discount
//! periods, and why a code is or is not usable. Repositories and handlers call these; the unit
//! tests below pin them down. Invariant: an e-mail or a code exists in the rest of the service
//! only in the canonical form built here ([`Email`], [`CodeName`]), so uniqueness checked on
//! that form is uniqueness of the mailbox or code.

use chrono::{DateTime, Months, Utc};
use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

use crate::error::PromoError;

/// Longest e-mail accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest promo code looked up; longer input cannot be a code.
pub const MAX_CODE_LEN: usize = 64;
/// Longest package id looked up.
pub const MAX_PACKAGE_LEN: usize = 64;

/// An e-mail address in its one canonical form: what "one account per e-mail" and "one place of
/// a limited code per mailbox" are checked on (the `customers.email` and `redemptions` keys).
///
/// The rule, applied by [`Email::parse`] and nowhere else:
/// 1. Surrounding whitespace is dropped and the whole address is NFKC-normalised, so full-width
///    (`ｅｘａｍｐｌｅ`), mathematical (`𝟏`), circled (`ⓔ`) and superscript (`²`) forms become the
///    plain letters and digits they stand for (and a full-width `＠` is an `@`).
/// 2. Local part: full Unicode case folding (lower-casing, plus `ß` → `ss` and final `ς` → `σ`),
///    then NFKC again (folding can denormalise). Plus-tags (`a+news@`) and dots (`a.b@`) are
///    **kept**: they are provider-specific (Gmail ignores dots, most providers do not; `+` is a
///    sub-address on some servers and a plain character on others), and guessing would merge
///    distinct mailboxes. Each address is one mailbox here.
/// 3. Domain: IDNA UTS #46 (non-transitional, STD3 ASCII rules, DNS lengths), stored in its
///    **ASCII (punycode) form**: `bücher.dz` and `xn--bcher-kva.dz` are the same domain, stored
///    `xn--bcher-kva.dz`. ASCII is what DNS and SMTP use, and an address that was already plain
///    ASCII (nearly every existing row) is unchanged by this rule.
/// 4. Look-alikes are refused rather than guessed at (UTS #39): a non-ASCII character outside the
///    General Security Profile (e.g. `ǃ`, a letter that looks like `!`), or a local part or
///    domain label that mixes scripts beyond UTS #39's "moderately restrictive" level (Latin with
///    Cyrillic or Greek, as in `pаypal` with a Cyrillic `а`), is [`PromoError::EmailLookalike`].
///    A name written entirely in one script (`иван@почта.рф`, `élise@exemple.dz`) is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// Characters allowed in an ASCII local part besides letters and digits (RFC 5322 `atext` + `.`).
const LOCAL_ASCII_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl Email {
    pub fn parse(raw: &str) -> Result<Email, PromoError> {
        let shown = || raw.chars().take(80).collect::<String>();
        let invalid = || PromoError::InvalidEmail(shown());
        let trimmed = raw.trim();
        // Bound the work before normalising: NFKC can expand a character up to 18-fold.
        if trimmed.is_empty() || trimmed.chars().count() > MAX_EMAIL_LEN {
            return Err(invalid());
        }
        let nfkc: String = trimmed.nfkc().collect();
        let (local, domain) = nfkc.rsplit_once('@').ok_or_else(invalid)?;
        let local: String = fold_case(local).nfkc().collect();
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| {
                if c.is_ascii() {
                    c.is_ascii_alphanumeric() || LOCAL_ASCII_SPECIALS.contains(c)
                } else {
                    // Letters, marks and digits of the UTS #39 General Security Profile; no
                    // spaces, symbols or control characters.
                    c.is_alphanumeric() || c.identifier_allowed()
                }
            });
        if !local_ok {
            return Err(invalid());
        }
        let domain = idna::uts46::Uts46::new()
            .to_ascii(
                domain.as_bytes(),
                idna::uts46::AsciiDenyList::STD3,
                // The old rule accepted `ab--cd.dz`; only leading/trailing hyphens are refused.
                idna::uts46::Hyphens::CheckFirstLast,
                idna::uts46::DnsLength::Verify,
            )
            .map_err(|_| invalid())?;
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
        if !domain_ok {
            return Err(invalid());
        }
        let lookalike = || PromoError::EmailLookalike(shown());
        if !single_script(&local) {
            return Err(lookalike());
        }
        for label in labels {
            if let Some(puny) = label.strip_prefix("xn--") {
                // UTS #46 has just produced this label, so it decodes; refuse if it ever does not.
                let unicode = idna::punycode::decode_to_string(puny).ok_or_else(invalid)?;
                if !single_script(&unicode) {
                    return Err(lookalike());
                }
            }
        }
        let email = format!("{local}@{domain}");
        if email.len() > MAX_EMAIL_LEN {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Full case folding for identity (Unicode `CaseFolding.txt`, statuses C and F), as far as it
/// differs from per-character lower-casing on NFKC text: `ß`/`ẞ` fold to `ss` and the final
/// sigma `ς` to `σ`. Per character on purpose: `str::to_lowercase` turns a word-final `Σ` into
/// `ς`, which would make `ΟΔΟΣ` and `οδοσ` differ.
fn fold_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'ß' => out.push_str("ss"),
            'ς' => out.push('σ'),
            other => out.push(other),
        }
    }
    out
}

/// True when `text` is safe against mixed-script spoofing: every non-ASCII character is allowed
/// by the UTS #39 General Security Profile and the letters stay within UTS #39's "moderately
/// restrictive" level (one script, or Latin with Han/Hiragana/Katakana/Hangul, or Latin with one
/// other recommended script that is neither Cyrillic nor Greek, whose letters imitate Latin ones).
/// ASCII punctuation (`.`, `+`, `-`, ...) belongs to no script and is left out of the check.
fn single_script(text: &str) -> bool {
    if text.is_ascii() {
        return true;
    }
    if text
        .chars()
        .any(|c| !c.is_ascii() && !c.identifier_allowed())
    {
        return false;
    }
    let letters: String = text
        .chars()
        .filter(|c| !c.is_ascii() || c.is_ascii_alphanumeric())
        .collect();
    letters
        .as_str()
        .check_restriction_level(RestrictionLevel::ModeratelyRestrictive)
}

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

/// Why a code cannot be used; mirrors the contract's `RefusalReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Unknown,
    Inactive,
    NotYetValid,
    Expired,
    Exhausted,
    NotForPackage,
}

impl Refusal {
    /// The sentence shown on the landing page.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Unknown => "Ce code promo n'existe pas.",
            Refusal::Inactive => "Ce code promo n'est plus actif.",
            Refusal::NotYetValid => "Ce code promo n'est pas encore valable.",
            Refusal::Expired => "Ce code promo a expiré.",
            Refusal::Exhausted => "Désolé, toutes les places de ce code promo ont été prises.",
            Refusal::NotForPackage => "Ce code promo ne s'applique pas à ce forfait.",
        }
    }
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
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  A@B.dz ").map(|e| e.0).ok().as_deref(),
            Some("a@b.dz")
        );
        assert!(Email::parse("élise@exemple.dz").is_ok());
        for bad in [
            "",
            "a",
            "a@",
            "@b.dz",
            "a@b",
            "a@@b.dz",
            "a b@c.dz",
            "a@b..dz",
            "a@-b.dz",
            ".a@b.dz",
            "a@b.1",
            "<script>@x.dz",
            "a@b.dz\n",
            "a'; DROP TABLE customers;--@x.dz",
        ] {
            assert!(
                Email::parse(bad).is_err() || bad.trim() != bad,
                "{bad:?} accepted"
            );
        }
        assert!(Email::parse(&format!("{}@b.dz", "a".repeat(65))).is_err());
        assert!(Email::parse(&format!("a@{}.dz", "b".repeat(260))).is_err());
    }

    fn canon(raw: &str) -> Option<String> {
        Email::parse(raw).ok().map(|e| e.0)
    }

    #[test]
    fn one_mailbox_has_one_canonical_form() {
        // Each family: every spelling of one mailbox gives the first entry's canonical form.
        let families: &[(&str, &[&str])] = &[
            (
                "idn@xn--bcher-kva.dz",
                &[
                    "idn@bücher.dz",
                    "idn@BÜCHER.dz",
                    "IDN@xn--bcher-kva.dz",
                    "idn@XN--BCHER-KVA.DZ",
                    // `ü` written as `u` + combining diaeresis.
                    "idn@bu\u{308}cher.dz",
                ],
            ),
            (
                "contact@example.dz",
                &[
                    "contact@ｅｘａｍｐｌｅ.dz",
                    "ｃｏｎｔａｃｔ＠ｅｘａｍｐｌｅ．ｄｚ",
                    "ＣＯＮＴＡＣＴ@example.dz",
                ],
            ),
            (
                "user1@example.dz",
                &["user𝟏@example.dz", "user\u{2460}@example.dz"],
            ),
            (
                "hello@example.dz",
                &["ⓗⓔⓛⓛⓞ@example.dz", "hello@ⓔxample.dz", "ℌello@example.dz"],
            ),
            (
                "x2@example.dz",
                &["x²@example.dz", "x₂@example.dz", "ˣ2@example.dz"],
            ),
            (
                "strasse@example.dz",
                &[
                    "straße@example.dz",
                    "STRASSE@example.dz",
                    "STRAẞE@example.dz",
                ],
            ),
            ("οδοσ@example.dz", &["ΟΔΟΣ@example.dz", "οδος@example.dz"]),
            (
                "élise@exemple.dz",
                &["Élise@exemple.dz", "e\u{301}lise@exemple.dz"],
            ),
        ];
        for (expected, spellings) in families {
            assert_eq!(canon(expected).as_deref(), Some(*expected), "{expected}");
            for s in *spellings {
                assert_eq!(canon(s).as_deref(), Some(*expected), "{s:?}");
            }
        }
    }

    #[test]
    fn plus_tags_and_dots_are_kept() {
        assert_eq!(
            canon("a.b+news@gmail.com").as_deref(),
            Some("a.b+news@gmail.com")
        );
        assert_ne!(canon("a.b@gmail.com"), canon("ab@gmail.com"));
        assert_ne!(canon("a+x@gmail.com"), canon("a@gmail.com"));
    }

    #[test]
    fn mixed_script_lookalikes_are_refused() {
        for spoof in [
            "contact@p\u{430}ypal.dz",  // Cyrillic а in a Latin domain label
            "p\u{430}ypal@example.dz",  // ... in the local part
            "contact@xn--pypal-4ve.dz", // the same domain, sent in punycode
            "\u{3bf}mar@example.dz",    // Greek ο in a Latin name
            "a\u{1c3}b@example.dz",     // ǃ (a letter that looks like `!`): outside the profile
        ] {
            assert!(
                matches!(Email::parse(spoof), Err(PromoError::EmailLookalike(_))),
                "{spoof:?}: {:?}",
                Email::parse(spoof)
            );
        }
        // One script at a time is fine, even a non-Latin one.
        assert_eq!(
            canon("Иван@Почта.рф").as_deref(),
            Some("иван@xn--80a1acny.xn--p1ai")
        );
        assert!(canon("山田@example.jp").is_some());
        assert!(
            canon("yamada山田@example.jp").is_some(),
            "Latin + Han is allowed"
        );
    }

    #[test]
    fn rows_of_the_old_rule_in_ascii_are_already_canonical() {
        // The old rule (trim + lower-case) stored these; the new one must leave them unchanged.
        for old in [
            "a@b.dz",
            "a.b+c@x-y.dz",
            "o'neil@ab--cd.dz",
            "x_y@sub.example.com",
        ] {
            assert_eq!(canon(old).as_deref(), Some(old));
        }
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
