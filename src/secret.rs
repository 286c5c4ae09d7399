//! Secrets shared by the services.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The operator's admin token: compared in constant time, never shown by `Debug`.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: impl Into<String>) -> AdminToken {
        AdminToken(token.into())
    }

    /// True when `presented` is the token. Both sides are hashed first, so the comparison time
    /// depends on neither the token's content nor its length.
    pub fn matches(&self, presented: &str) -> bool {
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(presented.as_bytes());
        a.ct_eq(&b).into()
    }

    /// The token itself, for forwarding it to another service.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_comparison() {
        let t = AdminToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3crett"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "AdminToken(***)");
    }
}
