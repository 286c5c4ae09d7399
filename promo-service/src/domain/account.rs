//! The customer account's rules, without I/O: how long sign-in links and sessions live, how often
//! links may be asked for, key names and rotation grace, monthly billing periods, and what a
//! package change does to the price and the promo discount. Invariant: a package change never
//! moves a discount's end date; it keeps the discount only at the percentage the code gives the
//! new package, and says so before the customer confirms.

use super::code::Percent;
use crate::clock::french_date;
use crate::error::{PromoError, Result};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// A sign-in link works for 15 minutes: long enough to open a mailbox, short enough that an
/// e-mail read later (or the outbox row, until it is sent and scrubbed) is worth little.
pub const LINK_TTL_MS: i64 = 15 * MINUTE_MS;
/// The window of the sign-in request limits.
pub const LINK_RATE_WINDOW_MS: i64 = HOUR_MS;
/// Links asked for one address per window: stops mail-bombing a customer.
pub const LINKS_PER_ADDRESS: i64 = 5;
/// Links asked from one client IP per window: stops probing many addresses.
pub const LINKS_PER_IP: i64 = 20;
/// How long links and sessions are kept past their end (for an operator looking into a
/// complaint) before the purge deletes them; the privacy page quotes it.
pub const EXPIRED_KEPT_MS: i64 = DAY_MS;
/// A session ends after this long without use...
pub const SESSION_IDLE_MS: i64 = 2 * HOUR_MS;
/// ...and in any case this long after sign-in.
pub const SESSION_ABSOLUTE_MS: i64 = 7 * DAY_MS;
/// `last_seen_at` is written at most this often: a page's burst of calls costs one write.
pub const SESSION_TOUCH_MS: i64 = MINUTE_MS;
/// Live keys a customer may hold at once.
pub const MAX_LIVE_KEYS: i64 = 10;
/// Longest rotation grace: a week covers a deployment cycle.
pub const MAX_GRACE_SECONDS: u32 = 7 * 24 * 3600;
/// The discount-ending notice goes out this long before the end.
pub const DISCOUNT_NOTICE_MS: i64 = 15 * DAY_MS;
/// The quota thresholds that get an e-mail.
pub const QUOTA_LEVELS: [u32; 2] = [80, 100];

/// The sentence answered to every sign-in request, whether or not the address has an account.
pub const LINK_SENT_MESSAGE: &str = "Si un compte existe pour cette adresse, un lien de connexion vient de lui être envoyé. Il est valable 15 minutes et ne sert qu'une fois.";

/// A key's name: trimmed, 1 to 64 characters, no control characters.
pub fn key_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(PromoError::InvalidArgument(
            "le nom de la clé fait 1 à 64 caractères, sans caractère de contrôle".into(),
        ));
    }
    Ok(name.to_owned())
}

/// The rotation grace in milliseconds, 0 to [`MAX_GRACE_SECONDS`].
pub fn grace_ms(seconds: u32) -> Result<i64> {
    if seconds > MAX_GRACE_SECONDS {
        return Err(PromoError::InvalidArgument(format!(
            "la période de grâce va de 0 à {MAX_GRACE_SECONDS} secondes (7 jours), reçu {seconds}"
        )));
    }
    Ok(i64::from(seconds) * 1000)
}

/// A quota level reported by llm-gateway: 80 or 100.
pub fn quota_level(percent: u32) -> Result<u32> {
    if QUOTA_LEVELS.contains(&percent) {
        Ok(percent)
    } else {
        Err(PromoError::InvalidArgument(format!(
            "percent vaut 80 ou 100, reçu {percent}"
        )))
    }
}

/// The first level of the cost-budget alert (one operator e-mail per customer and month).
pub const BUDGET_ALERT_PERCENT: u32 = 80;

/// The level of the "budget spent" alert (one operator e-mail per customer and month): the spend
/// reached the budget, or llm-gateway refused a call `budget_exceeded`.
pub const BUDGET_SPENT_PERCENT: u32 = 100;

/// The `notices` occasion of a cost-budget alert: the month alone for 80 % (as written before
/// the 100 % level existed, so that an alert already sent this month is not sent again), the
/// month and the level for 100 %.
pub fn budget_occasion(period: &str, percent: u32) -> String {
    if percent == BUDGET_ALERT_PERCENT {
        period.to_owned()
    } else {
        format!("{period}:{percent}")
    }
}

/// Nano-USD as the operator reads them: `0.001234 USD` (to the micro-dollar, rounded down).
pub fn usd_of_nano(nano: u64) -> String {
    format!(
        "{}.{:06} USD",
        nano / 1_000_000_000,
        nano % 1_000_000_000 / 1_000
    )
}

/// A calendar month as llm-gateway names it: `2026-11`.
pub fn quota_period(raw: &str) -> Result<String> {
    let ok = raw.len() == 7
        && raw.as_bytes()[4] == b'-'
        && raw[..4].bytes().all(|b| b.is_ascii_digit())
        && matches!(raw[5..].parse::<u32>(), Ok(1..=12));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(PromoError::InvalidArgument(format!(
            "period s'écrit AAAA-MM, reçu {:?}",
            raw.chars().take(20).collect::<String>()
        )))
    }
}

/// The monthly billing period containing `now`: periods start at the signup instant plus whole
/// calendar months (clamped like [`super::discount_end`]). Before the signup, the first period.
pub fn period_bounds(signup_ms: i64, now_ms: i64) -> (i64, i64) {
    let n = super::billing::period_index(signup_ms, now_ms);
    (
        super::billing::period_start(signup_ms, n),
        super::billing::period_start(signup_ms, n + 1),
    )
}

/// 1234567 → "1 234 567" (French grouping, narrow no-break spaces).
pub fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

fn dzd(v: u64) -> String {
    format!("{} DZD", thousands(v))
}

/// Upgrade (effective now) or downgrade (effective at the next period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Upgrade,
    Downgrade,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Upgrade => "upgrade",
            ChangeKind::Downgrade => "downgrade",
        }
    }
}

/// What the rules need to know about the subscription in force.
#[derive(Debug, Clone)]
pub struct Current<'a> {
    pub package_id: &'a str,
    pub base_price_dzd: u64,
    /// The redeemed code, if any, and when its discount ends.
    pub promo_code: Option<&'a str>,
    pub discount_ends_at: Option<i64>,
    /// End of the current monthly period (a downgrade's effective instant).
    pub period_end: i64,
}

/// The package asked for, with the discount the redeemed code gives it (None: not allowed).
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub package_id: &'a str,
    pub name: &'a str,
    pub base_price_dzd: u64,
    pub code_discount: Option<Percent>,
}

/// What a change does, computed before it is confirmed and applied as computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangePlan {
    pub kind: ChangeKind,
    pub effective_at: i64,
    pub price_dzd: u64,
    pub base_price_dzd: u64,
    pub discount: Option<Percent>,
    pub discount_ends_at: Option<i64>,
    pub discount_lost: bool,
    pub message: String,
    /// `message` in Arabic, for the e-mail of a customer who signed up in Arabic.
    pub message_ar: String,
}

/// Plans a change from `current` to `target` at `now`. A cheaper list price is a downgrade
/// (next period: the month is paid); anything else is an upgrade (now). The discount is still
/// running if it ends after the change takes effect.
pub fn plan_change(current: &Current<'_>, target: &Target<'_>, now: i64) -> Result<ChangePlan> {
    if current.package_id == target.package_id {
        return Err(PromoError::Conflict(format!(
            "vous êtes déjà au forfait {}",
            target.name
        )));
    }
    let kind = if target.base_price_dzd < current.base_price_dzd {
        ChangeKind::Downgrade
    } else {
        ChangeKind::Upgrade
    };
    let effective_at = match kind {
        ChangeKind::Upgrade => now,
        ChangeKind::Downgrade => current.period_end,
    };
    let running = current
        .discount_ends_at
        .filter(|ends| *ends > effective_at)
        .zip(current.promo_code);
    let (discount, discount_ends_at, discount_lost) = match (running, target.code_discount) {
        (Some((ends, _)), Some(p)) => (Some(p), Some(ends), false),
        (Some(_), None) => (None, None, true),
        (None, _) => (None, None, false),
    };
    let price_dzd = discount.map_or(target.base_price_dzd, |p| p.apply(target.base_price_dzd));
    let when = match kind {
        ChangeKind::Upgrade => "dès maintenant".to_owned(),
        ChangeKind::Downgrade => format!(
            "à partir du {} (début de votre prochaine période mensuelle)",
            french_date(effective_at)
        ),
    };
    let mut message = format!(
        "Passage au forfait {} {when} : {} par mois",
        target.name,
        dzd(price_dzd)
    );
    if let (Some(p), Some(ends)) = (discount, discount_ends_at) {
        message.push_str(&format!(
            " (−{} % jusqu'au {}), puis {}",
            p.get(),
            french_date(ends),
            dzd(target.base_price_dzd)
        ));
    }
    message.push('.');
    let message_ar = plan_message_ar(
        kind,
        target,
        effective_at,
        price_dzd,
        discount.zip(discount_ends_at),
        discount_lost
            .then_some(running.map(|(_, code)| code))
            .flatten(),
    );
    if kind == ChangeKind::Downgrade {
        // Stripe's model for a downgrade: nothing back for the period already invoiced.
        message.push_str(
            " D'ici là, vous gardez votre forfait actuel, déjà facturé pour cette période : ni remboursement ni avoir.",
        );
    }
    if discount_lost && let Some((_, code)) = running {
        message.push_str(&format!(
            " Attention : le code {code} ne s'applique pas au forfait {} ; votre réduction prend fin avec ce changement.",
            target.name
        ));
    }
    Ok(ChangePlan {
        kind,
        effective_at,
        price_dzd,
        base_price_dzd: target.base_price_dzd,
        discount,
        discount_ends_at,
        discount_lost,
        message,
        message_ar,
    })
}

/// The plan's sentence in Arabic (the same facts as the French `message`).
fn plan_message_ar(
    kind: ChangeKind,
    target: &Target<'_>,
    effective_at: i64,
    price_dzd: u64,
    discount: Option<(Percent, i64)>,
    lost_code: Option<&str>,
) -> String {
    use crate::clock::arabic_date;
    let when = match kind {
        ChangeKind::Upgrade => "ابتداءً من الآن".to_owned(),
        ChangeKind::Downgrade => format!(
            "ابتداءً من {} (بداية فترتك الشهرية القادمة)",
            arabic_date(effective_at)
        ),
    };
    let mut m = format!(
        "الانتقال إلى باقة {} {when}: {} شهريًا",
        target.name,
        dzd(price_dzd)
    );
    if let Some((p, ends)) = discount {
        m.push_str(&format!(
            " (تخفيض {}% حتى {})، ثم {}",
            p.get(),
            arabic_date(ends),
            dzd(target.base_price_dzd)
        ));
    }
    m.push('.');
    if kind == ChangeKind::Downgrade {
        m.push_str(" إلى ذلك الحين، تحتفظ بباقتك الحالية المفوترة لهذه الفترة: لا استرجاع ولا رصيد.");
    }
    if let Some(code) = lost_code {
        m.push_str(&format!(
            " تنبيه: الرمز {code} لا ينطبق على باقة {}؛ ينتهي تخفيضك مع هذا التغيير.",
            target.name
        ));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn ms(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    #[test]
    fn periods_count_whole_months_from_signup() {
        let signup = ms("2026-01-31T10:00:00Z");
        assert_eq!(
            period_bounds(signup, ms("2026-02-15T00:00:00Z")),
            (signup, ms("2026-02-28T10:00:00Z"))
        );
        assert_eq!(
            period_bounds(signup, ms("2026-02-28T10:00:00Z")),
            (ms("2026-02-28T10:00:00Z"), ms("2026-03-31T10:00:00Z"))
        );
        assert_eq!(
            period_bounds(signup, ms("2026-03-31T09:59:59Z")),
            (ms("2026-02-28T10:00:00Z"), ms("2026-03-31T10:00:00Z"))
        );
        assert_eq!(period_bounds(signup, signup - 1).0, signup);
    }

    fn current(ends: Option<&str>) -> Current<'static> {
        Current {
            package_id: "dev",
            base_price_dzd: 15_000,
            promo_code: ends.map(|_| "LAUNCH30"),
            discount_ends_at: ends.map(ms),
            period_end: ms("2026-02-06T10:00:00Z"),
        }
    }

    #[test]
    fn upgrade_is_now_and_keeps_the_end_date_with_the_new_percentage() {
        let target = Target {
            package_id: "business",
            name: "Business",
            base_price_dzd: 100_000,
            code_discount: Some(Percent::new(25).unwrap()),
        };
        let now = ms("2026-01-10T00:00:00Z");
        let plan = plan_change(&current(Some("2026-06-06T10:00:00Z")), &target, now).unwrap();
        assert_eq!(plan.kind, ChangeKind::Upgrade);
        assert_eq!(plan.effective_at, now);
        assert_eq!(plan.price_dzd, 75_000);
        assert_eq!(plan.discount_ends_at, Some(ms("2026-06-06T10:00:00Z")));
        assert!(!plan.discount_lost);
        assert!(
            plan.message.contains("jusqu'au 6 juin 2026"),
            "{}",
            plan.message
        );
    }

    #[test]
    fn downgrade_waits_for_the_period_and_a_refusing_code_ends_the_discount() {
        let target = Target {
            package_id: "starter",
            name: "Starter",
            base_price_dzd: 10_000,
            code_discount: None,
        };
        let plan = plan_change(
            &current(Some("2026-06-06T10:00:00Z")),
            &target,
            ms("2026-01-10T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(plan.kind, ChangeKind::Downgrade);
        assert_eq!(plan.effective_at, ms("2026-02-06T10:00:00Z"));
        assert_eq!(plan.price_dzd, 10_000);
        assert!(plan.discount_lost);
        assert!(plan.message.contains("prend fin"), "{}", plan.message);
    }

    #[test]
    fn an_ended_discount_is_not_lost_and_same_package_is_refused() {
        let target = Target {
            package_id: "starter",
            name: "Starter",
            base_price_dzd: 10_000,
            code_discount: None,
        };
        // The discount ends before the downgrade takes effect.
        let plan = plan_change(
            &current(Some("2026-01-20T00:00:00Z")),
            &target,
            ms("2026-01-10T00:00:00Z"),
        )
        .unwrap();
        assert!(!plan.discount_lost);
        assert_eq!(plan.discount, None);
        let same = Target {
            package_id: "dev",
            ..target
        };
        assert!(plan_change(&current(None), &same, 0).is_err());
    }

    #[test]
    fn inputs_are_checked() {
        assert!(key_name("  ").is_err());
        assert!(key_name(&"x".repeat(65)).is_err());
        assert_eq!(key_name(" prod ").unwrap(), "prod");
        assert!(grace_ms(MAX_GRACE_SECONDS + 1).is_err());
        assert_eq!(grace_ms(60).unwrap(), 60_000);
        assert!(quota_level(50).is_err());
        assert!(quota_period("2026-13").is_err());
        assert!(quota_period("2026-11").is_ok());
    }

    #[test]
    fn thousands_grouping() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1\u{202f}000");
        assert_eq!(thousands(100_000_000), "100\u{202f}000\u{202f}000");
    }
}
