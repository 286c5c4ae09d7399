//! Secrets shared by the services. Invariant: a token is compared in constant time and never
//! shown by `Debug` (so never in logs of a configuration).

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

/// The token the services present to each other on internal RPCs (`INTERNAL_TOKEN`):
/// llm-gateway to promo-service's `AuthenticateKey` (which answers with a customer's e-mail),
/// gateway-rest to llm-gateway's `ListProviders`. Separate from the admin token so that a
/// service holding it gains none of the operator's powers (stats, codes, key revocation).
#[derive(Clone)]
pub struct InternalToken(AdminToken);

impl InternalToken {
    pub fn new(token: impl Into<String>) -> InternalToken {
        InternalToken(AdminToken::new(token))
    }

    /// True when `presented` is the token (constant time, see [`AdminToken::matches`]).
    pub fn matches(&self, presented: &str) -> bool {
        self.0.matches(presented)
    }

    /// The token itself, for sending it as `authorization: Bearer …`.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for InternalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalToken(***)")
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
        let i = InternalToken::new("1nternal");
        assert!(i.matches("1nternal") && !i.matches("s3cret"));
        assert_eq!(format!("{i:?}"), "InternalToken(***)");
    }
}
