//! What a campaign is made of and the rules that do not need the database: the shipped
//! templates, the audiences, the languages, which audience a template may go to, and the pacing
//! of messages at the relay's rate.

use crate::error::PromoError;

/// A shipped template (`templates/campaign_<name>.<locale>.{txt,html}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// D-3: the offer opens soon.
    Announcement,
    /// D+3: places are left; only to contacts who have not signed up.
    Reminder,
    /// To the waitlist: the offer is over.
    WaitlistOver,
    /// To the waitlist: places are back.
    WaitlistBack,
}

pub const ALL_TEMPLATES: [Template; 4] = [
    Template::Announcement,
    Template::Reminder,
    Template::WaitlistOver,
    Template::WaitlistBack,
];

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::Announcement => "announcement",
            Template::Reminder => "reminder",
            Template::WaitlistOver => "waitlist_over",
            Template::WaitlistBack => "waitlist_back",
        }
    }

    pub fn parse(s: &str) -> Result<Template, PromoError> {
        ALL_TEMPLATES
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| {
                PromoError::InvalidArgument(format!(
                    "modèle inconnu {:?} : announcement, reminder, waitlist_over ou waitlist_back",
                    s.chars().take(40).collect::<String>()
                ))
            })
    }

    /// The subject line, in the campaign's language.
    pub fn subject(self, locale: Locale) -> &'static str {
        match (self, locale) {
            (Template::Announcement, Locale::Fr) => {
                "Dans 3 jours : l'offre de lancement IAFactory (places limitées)"
            }
            (Template::Announcement, Locale::Ar) => "بعد 3 أيام: عرض إطلاق IAFactory (أماكن محدودة)",
            (Template::Reminder, Locale::Fr) => {
                "Rappel : il reste des places à l'offre de lancement"
            }
            (Template::Reminder, Locale::Ar) => "تذكير: ما زالت هناك أماكن في عرض الإطلاق",
            (Template::WaitlistOver, Locale::Fr) => "L'offre de lancement IAFactory est terminée",
            (Template::WaitlistOver, Locale::Ar) => "انتهى عرض إطلاق IAFactory",
            (Template::WaitlistBack, Locale::Fr) => {
                "Des places sont revenues à l'offre de lancement"
            }
            (Template::WaitlistBack, Locale::Ar) => "عادت أماكن إلى عرض الإطلاق",
        }
    }
}

/// Who a campaign goes to. Every audience excludes the suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Imported contacts with a recorded consent.
    Contacts,
    /// Confirmed waitlist entries (double opt-in).
    Waitlist,
    /// Contacts with consent who have no account at send time (checked again at delivery).
    Prospects,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Contacts => "contacts",
            Audience::Waitlist => "waitlist",
            Audience::Prospects => "prospects",
        }
    }

    pub fn parse(s: &str) -> Result<Audience, PromoError> {
        match s.trim() {
            "contacts" => Ok(Audience::Contacts),
            "waitlist" => Ok(Audience::Waitlist),
            "prospects" => Ok(Audience::Prospects),
            other => Err(PromoError::InvalidArgument(format!(
                "audience inconnue {:?} : contacts, waitlist ou prospects",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// The language of a campaign's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Fr,
    Ar,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::Ar => "ar",
        }
    }

    pub fn parse(s: &str) -> Result<Locale, PromoError> {
        match s.trim() {
            "" | "fr" => Ok(Locale::Fr),
            "ar" => Ok(Locale::Ar),
            other => Err(PromoError::InvalidArgument(format!(
                "langue inconnue {:?} : fr ou ar",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }
}

/// The audience a template goes to: a reminder only ever reaches people who have not signed up
/// (whatever was asked), the waitlist templates only the waitlist; an announcement goes where
/// the operator says.
pub fn audience_for(template: Template, asked: Audience) -> Result<Audience, PromoError> {
    match (template, asked) {
        (Template::Reminder, Audience::Waitlist) => Err(PromoError::InvalidArgument(
            "un rappel va aux contacts qui ne se sont pas encore inscrits, pas à la liste d'attente"
                .into(),
        )),
        (Template::Reminder, _) => Ok(Audience::Prospects),
        (Template::WaitlistOver | Template::WaitlistBack, Audience::Waitlist) => {
            Ok(Audience::Waitlist)
        }
        (Template::WaitlistOver | Template::WaitlistBack, _) => Err(PromoError::InvalidArgument(
            "ce modèle s'adresse à la liste d'attente (audience waitlist)".into(),
        )),
        (Template::Announcement, a) => Ok(a),
    }
}

/// Milliseconds between two messages at `rate_per_min` (at least 1 ms).
pub fn interval_ms(rate_per_min: u32) -> i64 {
    (60_000 / i64::from(rate_per_min.max(1))).max(1)
}

/// The slot of the `index`-th message of a batch whose first slot is `first`: slots are exact
/// multiples of the interval, so no window of time holds more than the rate allows.
pub fn slot(first: i64, index: usize, rate_per_min: u32) -> i64 {
    first.saturating_add(
        i64::try_from(index)
            .unwrap_or(i64::MAX)
            .saturating_mul(interval_ms(rate_per_min)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reminders_go_to_prospects_only() {
        assert_eq!(
            audience_for(Template::Reminder, Audience::Contacts).unwrap(),
            Audience::Prospects
        );
        assert!(audience_for(Template::Reminder, Audience::Waitlist).is_err());
        assert!(audience_for(Template::WaitlistBack, Audience::Contacts).is_err());
        assert_eq!(
            audience_for(Template::Announcement, Audience::Waitlist).unwrap(),
            Audience::Waitlist
        );
    }

    #[test]
    fn pacing() {
        assert_eq!(interval_ms(60), 1000);
        assert_eq!(interval_ms(0), 60_000);
        assert_eq!(interval_ms(1_000_000), 1);
        assert_eq!(slot(5000, 3, 120), 6500);
    }
}
