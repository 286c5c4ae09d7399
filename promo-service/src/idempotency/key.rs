//! The client's Idempotency-Key, checked once where it enters the service.

use crate::error::{PromoError, Result};

/// An Idempotency-Key of 8 to 255 visible ASCII characters (a UUID fits), surrounding spaces
/// dropped. It opens the stored answer (see `super::seal`), so `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<IdempotencyKey> {
        let key = raw.trim();
        if !(8..=255).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(PromoError::InvalidArgument(
                "Idempotency-Key : 8 à 255 caractères ASCII visibles (un UUID convient)".into(),
            ));
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_never_shown() {
        let key = IdempotencyKey::parse("  key-12345678 ").ok();
        assert_eq!(
            key.as_ref().map(IdempotencyKey::as_str),
            Some("key-12345678")
        );
        assert!(!format!("{key:?}").contains("12345678"));
        for bad in [
            "",
            "short",
            "key with spaces",
            "clé-accentuée",
            &"k".repeat(256),
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }
}
