//! Signatures of webhooks: hex HMAC-SHA256 of the raw body with a shared secret, the scheme of
//! Chargily Pay's `signature` header. One implementation for the service that verifies and the
//! test server that signs.

use hmac::{Hmac, KeyInit, Mac};
use sha2_hmac::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // Any key length is valid for HMAC: the error case does not happen.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// True when `signature` is the hex HMAC-SHA256 of `body` under `secret`. The comparison takes
/// the same time wherever the first wrong byte is (the MAC crate's constant-time check), so the
/// answer's timing does not reveal how much of a forged signature was right.
pub fn verify(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Ok(presented) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&presented).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2_and_verification() {
        // RFC 4231, test case 2.
        let sig = sign(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(b"Jefe", b"what do ya want for nothing?", &sig));
        assert!(verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig.to_uppercase()
        ));
        assert!(!verify(b"Jefe", b"what do ya want for nothing!", &sig));
        assert!(!verify(b"jefe", b"what do ya want for nothing?", &sig));
        assert!(!verify(b"Jefe", b"what do ya want for nothing?", "zz"));
        assert!(!verify(b"Jefe", b"what do ya want for nothing?", ""));
        assert!(!verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig[..62]
        ));
    }
}
