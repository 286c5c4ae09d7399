//! Secrets the service hands out or checks: customer API keys, the admin token, and the sealing
//! of stored idempotent answers.
//!
//! API keys are 256 random bits; only their SHA-256 is stored (a fast hash is right for
//! high-entropy keys, and it lets the gateway's lookups stay cheap). An idempotent signup must
//! replay its first answer, API key included, yet the key must not sit in the database in clear:
//! the answer is sealed with ChaCha20-Poly1305 under a key derived from the client's
//! Idempotency-Key, and only the Idempotency-Key's hash is stored. Whoever can replay the request
//! can read the answer; a database dump alone cannot.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
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

pub use iafactory::secret::AdminToken;

/// Lookup hash of an Idempotency-Key (domain-separated from the sealing key).
pub fn idempotency_key_hash(idempotency_key: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"iaf-idempotency-lookup\0");
    h.update(idempotency_key.as_bytes());
    hex::encode(h.finalize())
}

fn sealing_cipher(idempotency_key: &str) -> ChaCha20Poly1305 {
    let mut h = Sha256::new();
    h.update(b"iaf-idempotency-seal\0");
    h.update(idempotency_key.as_bytes());
    let key: [u8; 32] = h.finalize().into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

/// Seals `plaintext` for storage; base64 of nonce ‖ ciphertext.
pub fn seal(idempotency_key: &str, plaintext: &[u8]) -> Option<String> {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ct = sealing_cipher(idempotency_key)
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Some(STANDARD.encode(out))
}

/// Opens what [`seal`] produced; `None` if it was tampered with or the key differs.
pub fn open(idempotency_key: &str, sealed: &str) -> Option<Vec<u8>> {
    let raw = STANDARD.decode(sealed).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    sealing_cipher(idempotency_key)
        .decrypt(Nonce::from_slice(nonce), ct)
        .ok()
}

/// Hash of the request an idempotency key was first used with.
pub fn request_fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

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
    fn sealed_answers_open_only_with_the_same_key() {
        let sealed = seal("key-123456789", b"answer").unwrap_or_default();
        assert_eq!(
            open("key-123456789", &sealed).as_deref(),
            Some(&b"answer"[..])
        );
        assert_eq!(open("key-123456780", &sealed), None);
        assert_eq!(open("key-123456789", "garbage"), None);
        assert_ne!(idempotency_key_hash("a"), idempotency_key_hash("b"));
    }

    #[test]
    fn fingerprints_are_unambiguous() {
        assert_ne!(
            request_fingerprint(&["ab", "c"]),
            request_fingerprint(&["a", "bc"])
        );
    }
}
