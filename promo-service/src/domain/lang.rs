//! The languages a customer can be written to in: French (the default) and Arabic. Chosen on the
//! landing page, carried by the signup request and stored on the signup, so the e-mails that
//! follow it use the customer's language.

use serde::{Deserialize, Serialize};

use crate::error::PromoError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Fr,
    Ar,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::Ar => "ar",
        }
    }

    /// `fr`, `ar` (any case, trimmed) or empty (French); anything else is refused rather than
    /// silently answered in French.
    pub fn parse(s: &str) -> Result<Lang, PromoError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "fr" => Ok(Lang::Fr),
            "ar" => Ok(Lang::Ar),
            _ => Err(PromoError::InvalidArgument(format!(
                "langue inconnue : {:?} (fr ou ar)",
                s.chars().take(16).collect::<String>()
            ))),
        }
    }

    /// A stored value; an unknown one (written by a newer version) reads as French.
    pub fn from_stored(s: &str) -> Lang {
        Lang::parse(s).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_languages_and_refuses_others() {
        assert_eq!(Lang::parse("").ok(), Some(Lang::Fr));
        assert_eq!(Lang::parse(" AR ").ok(), Some(Lang::Ar));
        assert_eq!(Lang::parse("fr").ok(), Some(Lang::Fr));
        assert!(Lang::parse("en").is_err());
        assert!(Lang::parse("ar\u{0}").is_err());
        assert_eq!(Lang::from_stored("xx"), Lang::Fr);
    }
}
