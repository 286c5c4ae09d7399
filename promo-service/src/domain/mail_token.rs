//! Signed links in e-mails that act without a login: unsubscribe (every campaign e-mail) and
//! waitlist confirmation. A token is `base64url(purpose:issued_ms:email).hex(HMAC-SHA256)` under
//! the server's link secret, so it needs no storage, works on every replica, and cannot be made
//! for another address without the secret. The purpose is inside the signed text, so an
//! unsubscribe token cannot confirm a waitlist entry or the reverse. The unsubscribe link of a
//! campaign message also signs the campaign (`unsub/<campaign id>`), so the campaign's metrics
//! count who left through it and nobody can claim another campaign's link.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::Email;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    ConfirmWaitlist,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "unsub",
            Purpose::ConfirmWaitlist => "waitlist",
        }
    }
}

/// Longest token accepted (a 254-character address gives about 420).
pub const MAX_TOKEN_LEN: usize = 600;

/// A confirmation link stays valid this long; an unsubscribe link never expires (RFC 8058: the
/// link of an old message must still work).
pub const CONFIRM_VALID_MS: i64 = 7 * 24 * 3_600_000;

/// The token for `email` (stored, canonical form) and `purpose`, issued at `now`.
pub fn sign(secret: &[u8], purpose: Purpose, email: &str, now: i64) -> String {
    let text = format!("{}:{now}:{email}", purpose.tag());
    let mac = iafactory::webhook::sign(secret, text.as_bytes());
    format!("{}.{mac}", URL_SAFE_NO_PAD.encode(text))
}

/// The unsubscribe token of `email`, naming the campaign whose message carries it (None: a
/// test copy, which no campaign counts).
pub fn sign_unsubscribe(secret: &[u8], email: &str, campaign: Option<&str>, now: i64) -> String {
    let tag = match campaign {
        Some(id) => format!("{}/{id}", Purpose::Unsubscribe.tag()),
        None => Purpose::Unsubscribe.tag().to_owned(),
    };
    let text = format!("{tag}:{now}:{email}");
    let mac = iafactory::webhook::sign(secret, text.as_bytes());
    format!("{}.{mac}", URL_SAFE_NO_PAD.encode(text))
}

/// Why a token is refused (one message for all: a link that does not work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

/// The address a token was made for, if its signature holds, its purpose is `purpose` and (for
/// a confirmation) it is recent enough.
pub fn verify(secret: &[u8], purpose: Purpose, token: &str, now: i64) -> Result<Email, TokenError> {
    verify_with_campaign(secret, purpose, token, now).map(|(email, _)| email)
}

/// [`verify`], with the campaign an unsubscribe token names (None for older links and test
/// copies).
pub fn verify_with_campaign(
    secret: &[u8],
    purpose: Purpose,
    token: &str,
    now: i64,
) -> Result<(Email, Option<String>), TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Invalid);
    }
    let (body, mac) = token.split_once('.').ok_or(TokenError::Invalid)?;
    let text = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(TokenError::Invalid)?;
    if !iafactory::webhook::verify(secret, text.as_bytes(), mac) {
        return Err(TokenError::Invalid);
    }
    let mut parts = text.splitn(3, ':');
    let (Some(tag), Some(issued), Some(email)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Invalid);
    };
    let campaign = match tag.split_once('/') {
        None if tag == purpose.tag() => None,
        Some((base, id))
            if base == purpose.tag() && purpose == Purpose::Unsubscribe && !id.is_empty() =>
        {
            Some(id.to_owned())
        }
        _ => return Err(TokenError::Invalid),
    };
    let issued: i64 = issued.parse().map_err(|_| TokenError::Invalid)?;
    if purpose == Purpose::ConfirmWaitlist && now.saturating_sub(issued) > CONFIRM_VALID_MS {
        return Err(TokenError::Expired);
    }
    let email = Email::parse(email).map_err(|_| TokenError::Invalid)?;
    Ok((email, campaign))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_purpose_and_tampering() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let email = Email::parse("a@b.dz").unwrap();
        let t = sign(secret, Purpose::Unsubscribe, email.as_str(), 1000);
        assert_eq!(
            verify(secret, Purpose::Unsubscribe, &t, 10_i64.pow(13)),
            Ok(email.clone())
        );
        assert_eq!(
            verify(secret, Purpose::ConfirmWaitlist, &t, 1000),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            verify(b"another secret", Purpose::Unsubscribe, &t, 1000),
            Err(TokenError::Invalid)
        );
        let forged = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("unsub:1000:victim@b.dz"),
            t.split_once('.').unwrap().1
        );
        assert_eq!(
            verify(secret, Purpose::Unsubscribe, &forged, 1000),
            Err(TokenError::Invalid)
        );
        for junk in ["", ".", "a.b", &"x".repeat(5000)] {
            assert_eq!(
                verify(secret, Purpose::Unsubscribe, junk, 1000),
                Err(TokenError::Invalid)
            );
        }
        // A campaign's link names it; it still only unsubscribes.
        let u = sign_unsubscribe(secret, email.as_str(), Some("cmp_1"), 1000);
        assert_eq!(
            verify_with_campaign(secret, Purpose::Unsubscribe, &u, 2000),
            Ok((email.clone(), Some("cmp_1".to_owned())))
        );
        assert_eq!(
            verify(secret, Purpose::ConfirmWaitlist, &u, 2000),
            Err(TokenError::Invalid)
        );
        let other = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode("unsub/cmp_2:1000:a@b.dz"),
            u.split_once('.').unwrap().1
        );
        assert_eq!(
            verify(secret, Purpose::Unsubscribe, &other, 2000),
            Err(TokenError::Invalid)
        );
        let c = sign(secret, Purpose::ConfirmWaitlist, email.as_str(), 1000);
        assert!(verify(secret, Purpose::ConfirmWaitlist, &c, 2000).is_ok());
        assert_eq!(
            verify(
                secret,
                Purpose::ConfirmWaitlist,
                &c,
                1000 + CONFIRM_VALID_MS + 1
            ),
            Err(TokenError::Expired)
        );
    }
}
