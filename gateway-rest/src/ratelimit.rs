//! Per-client-IP rate limits on the public write-ish routes (code guessing on validate, spam on
//! signup).
//!
//! One `governor` keyed limiter per route, held in the shared application state: every
//! connection and every worker thread draws from the same buckets. (tower's `RateLimit` is per
//! service clone, so behind axum it ends up per connection — a client opening more connections
//! would get more requests.) IPv6 clients are keyed by their /64, since one host usually owns a
//! whole /64. The state is per replica: N gateway replicas allow N× the rate, which is acceptable
//! for abuse throttling (the exact limits — quotas, places — live in the shared database).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, HeaderName};

/// A limit: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Requests per minute, sustained.
    pub per_minute: NonZeroU32,
    /// Requests allowed at once after a quiet period.
    pub burst: NonZeroU32,
}

impl RateSpec {
    /// `None` when `per_minute` is 0 (no limit).
    pub fn new(per_minute: u32, burst: u32) -> Option<RateSpec> {
        let per_minute = NonZeroU32::new(per_minute)?;
        Some(RateSpec {
            per_minute,
            burst: NonZeroU32::new(burst).unwrap_or(per_minute),
        })
    }
}

/// One keyed limiter.
pub struct IpLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl IpLimiter {
    pub fn new(spec: RateSpec) -> IpLimiter {
        let quota = Quota::per_minute(spec.per_minute).allow_burst(spec.burst);
        IpLimiter {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }

    /// `Err(seconds to wait)` when `ip` is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&key(ip)).map_err(|not_until| {
            let wait: Duration = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets clients whose buckets are full again (keeps memory bounded).
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// Refused API keys per client: a client sending key after random key would make each one a
/// lookup in promo-service (the gateway's negative cache is per key). Each 401 on `/v1` draws
/// from the client's budget; past it the client is refused with 429 before anything is
/// forwarded, until its budget has room again. Clients with valid keys never draw from it.
pub struct AuthFailures {
    limiter: IpLimiter,
    /// Clients over budget, until when.
    blocked: std::sync::RwLock<std::collections::HashMap<IpAddr, std::time::Instant>>,
    /// Entries in `blocked`: the common case (none) costs one atomic load per request.
    blocked_len: std::sync::atomic::AtomicUsize,
}

impl AuthFailures {
    pub fn new(spec: RateSpec) -> AuthFailures {
        AuthFailures {
            limiter: IpLimiter::new(spec),
            blocked: std::sync::RwLock::new(std::collections::HashMap::new()),
            blocked_len: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// `Some(seconds to wait)` while `ip` is over its budget.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        if self.blocked_len.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return None;
        }
        let blocked = self.blocked.read().ok()?;
        let until = *blocked.get(&key(ip))?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then(|| left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    /// `ip` had an API key refused.
    pub fn failed(&self, ip: IpAddr) {
        if let Err(wait) = self.limiter.check(ip)
            && let Ok(mut blocked) = self.blocked.write()
        {
            let until = std::time::Instant::now() + Duration::from_secs(wait.max(1));
            blocked.insert(key(ip), until);
            self.blocked_len
                .store(blocked.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Forgets expired blocks and idle budgets (keeps memory bounded).
    pub fn shrink(&self) {
        self.limiter.shrink();
        if let Ok(mut blocked) = self.blocked.write() {
            let now = std::time::Instant::now();
            blocked.retain(|_, until| *until > now);
            blocked.shrink_to_fit();
            self.blocked_len
                .store(blocked.len(), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The client's address: the peer, or — behind a trusted proxy — the last address of the
/// configured header (the one the proxy appended; earlier entries are client-controlled).
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, header: Option<&HeaderName>) -> IpAddr {
    header
        .and_then(|name| headers.get_all(name).iter().next_back())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refused_with_a_wait() {
        let Some(spec) = RateSpec::new(60, 3) else {
            unreachable!()
        };
        let l = IpLimiter::new(spec);
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..3 {
            assert!(l.check(ip).is_ok());
        }
        let wait = l.check(ip).err();
        assert!(matches!(wait, Some(1..=2)), "{wait:?}");
        assert!(l.check([10, 0, 0, 2].into()).is_ok());
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0u8; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        assert_eq!(key(a), key(b));
        assert!(RateSpec::new(0, 5).is_none());
    }

    #[test]
    fn forwarded_header_takes_the_last_hop() {
        let peer: SocketAddr = ([127, 0, 0, 1], 9).into();
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            http::HeaderValue::from_static("1.2.3.4, 5.6.7.8"),
        );
        let name = HeaderName::from_static("x-forwarded-for");
        assert_eq!(client_ip(peer, &h, Some(&name)), IpAddr::from([5, 6, 7, 8]));
        assert_eq!(client_ip(peer, &h, None), IpAddr::from([127, 0, 0, 1]));
    }
}
