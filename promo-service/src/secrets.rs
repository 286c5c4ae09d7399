//! Secrets the service hands out or checks: customer API keys and the admin token. (The sealing
//! of replayed answers, which hold an API key, lives with idempotency.)
//!
//! API keys are 256 random bits; only their SHA-256 is stored (a fast hash is right for
//! high-entropy keys, and it lets the gateway's lookups stay cheap).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "iaf_";
/// Characters of the key kept for display (`iaf_` + 6).
const DISPLAY_PREFIX_LEN: usize = 10;

/// A freshly generated API key: the clear key (returned once) and what gets stored.
pub struct NewApiKey {
    pub key: String,
    pub hash: String,
    pub display_prefix: String,
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewApiKey")
            .field("display_prefix", &self.display_prefix)
            .finish_non_exhaustive()
    }
}

pub fn generate_api_key() -> NewApiKey {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewApiKey {
        hash: hash_api_key(&key),
        display_prefix: key.chars().take(DISPLAY_PREFIX_LEN).collect(),
        key,
    }
}

/// The stored form of an API key.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// True when `key` has the shape of one of our keys (cheap check before any lookup).
pub fn looks_like_api_key(key: &str) -> bool {
    key.len() == API_KEY_PREFIX.len() + 43
        && key.starts_with(API_KEY_PREFIX)
        && key[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A random URL-safe token (admin token in dev mode, ids).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A sign-in link or session token: 256 random bits, URL-safe (43 characters).
pub fn new_token() -> String {
    random_token(32)
}

/// The stored form of a sign-in link or session token (only this reaches the database).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// True when `token` has the shape [`new_token`] gives (cheap check before any lookup).
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The CSRF token of a session, derived from the session token: a page of another origin can
/// make the browser send the session cookie but never read it, so it cannot compute this. Being
/// derived, it needs no storage and survives on every replica.
pub fn csrf_token(session_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(
        format!("iafactory-csrf:{session_token}").as_bytes(),
    ))
}

/// Whether `presented` is the session's CSRF token, compared in constant time.
pub fn csrf_matches(session_token: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    let expected = Sha256::digest(csrf_token(session_token).as_bytes());
    let got = Sha256::digest(presented.as_bytes());
    expected.ct_eq(&got).into()
}

pub use iafactory::secret::AdminToken;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_advertised_shape() {
        let k = generate_api_key();
        assert!(looks_like_api_key(&k.key), "{}", k.key);
        assert_eq!(k.hash, hash_api_key(&k.key));
        assert!(k.key.starts_with(&k.display_prefix));
        assert!(!format!("{k:?}").contains(&k.key));
        assert_ne!(generate_api_key().key, k.key);
        assert!(!looks_like_api_key("iaf_short"));
        assert!(!looks_like_api_key(&format!("sk_{}", &k.key[3..])));
    }

    #[test]
    fn session_tokens_and_their_csrf() {
        let t = new_token();
        assert!(looks_like_token(&t), "{t}");
        assert_ne!(hash_token(&t), t);
        let csrf = csrf_token(&t);
        assert!(csrf_matches(&t, &csrf));
        assert!(!csrf_matches(&t, ""));
        assert!(!csrf_matches(&new_token(), &csrf));
    }
}
