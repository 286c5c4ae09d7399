//! E-mail identity: the one canonical form of an address, and the look-alikes refused.

use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

use crate::error::PromoError;

/// Longest e-mail accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
