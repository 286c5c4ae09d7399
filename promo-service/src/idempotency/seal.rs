//! What is stored instead of the client's Idempotency-Key and of the answer: a lookup hash of the
//! key, a fingerprint of the request, and the answer sealed with ChaCha20-Poly1305 under a key
//! derived from the Idempotency-Key (domain-separated from the lookup hash). Whoever can replay
//! the request can read the answer (an API key in clear); a database dump alone cannot.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Lookup hash of an Idempotency-Key (domain-separated from the sealing key).
pub(super) fn idempotency_key_hash(idempotency_key: &str) -> String {
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
pub(super) fn seal(idempotency_key: &str, plaintext: &[u8]) -> Option<String> {
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
pub(super) fn open(idempotency_key: &str, sealed: &str) -> Option<Vec<u8>> {
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
pub(super) fn request_fingerprint(parts: &[&str]) -> String {
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
