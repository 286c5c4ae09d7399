//! The knobs of routing: retries, backoff, timeouts, breakers, latency averaging.

use std::time::{Duration, Instant};

/// Retry, timeout and breaker knobs.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Tries per provider for transient failures (1 = no retry).
    pub max_attempts_per_provider: u32,
    /// First backoff delay; doubles on each retry.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// A provider asking to wait longer than this (`Retry-After`) is left for the next one.
    pub max_retry_after: Duration,
    /// Budget of one upstream attempt (for streams: until the first token).
    pub attempt_timeout: Duration,
    /// Budget of the whole call, retries and fallbacks included (for streams: until the first
    /// token).
    pub overall_timeout: Duration,
    /// Longest silence allowed between two chunks of a committed stream.
    pub stream_idle_timeout: Duration,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_failure_threshold: u32,
    /// How long an open circuit stays open before a trial call.
    pub breaker_cooldown: Duration,
    /// Weight of the newest sample in the latency moving average (0..1).
    pub ewma_alpha: f64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings {
            max_attempts_per_provider: 2,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(60),
            overall_timeout: Duration::from_secs(120),
            stream_idle_timeout: Duration::from_secs(60),
            breaker_failure_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            ewma_alpha: 0.2,
        }
    }
}

/// `now + d`, saturating far in the future instead of overflowing.
pub fn deadline_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}
