//! Retries on one provider: after a failed attempt, whether to try the same provider again and
//! after how long (exponential backoff with jitter, at least the provider's `Retry-After`), or to
//! leave it for the next route.

use std::time::{Duration, Instant};

use rand::Rng;

use super::settings::RoutingSettings;
use crate::providers::{FailureClass, ProviderError};

/// What follows a failed attempt the caller is not to blame for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try the same provider again after this wait.
    Retry(Duration),
    /// Leave this provider for the next route.
    NextRoute,
}

/// Decides after failed attempt number `try_no` (0-based) on a provider. A provider-level
/// failure, the last try, a `Retry-After` longer than [`RoutingSettings::max_retry_after`] (the
/// customer would wait for one provider while others may answer now) or a wait that would pass
/// the call's `deadline` all move on to the next route.
pub fn after_failure(
    err: &ProviderError,
    try_no: u32,
    s: &RoutingSettings,
    deadline: Instant,
) -> AfterFailure {
    if err.class() == FailureClass::Fallback || try_no + 1 >= s.max_attempts_per_provider {
        return AfterFailure::NextRoute;
    }
    let retry_after = err.retry_after();
    if retry_after.is_some_and(|ra| ra > s.max_retry_after) {
        return AfterFailure::NextRoute;
    }
    let wait = backoff(s, try_no, retry_after);
    if Instant::now() + wait >= deadline {
        return AfterFailure::NextRoute;
    }
    AfterFailure::Retry(wait)
}

/// The wait before retry number `retry` (0-based): `backoff_base` doubled per retry, capped at
/// `backoff_max`, drawn in its upper half, and never shorter than `retry_after`.
pub fn backoff(s: &RoutingSettings, retry: u32, retry_after: Option<Duration>) -> Duration {
    let exp = s
        .backoff_base
        .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX))
        .min(s.backoff_max);
    // Full jitter over the upper half keeps retries of many clients apart.
    let half = exp / 2;
    let jitter = if half.is_zero() {
        Duration::ZERO
    } else {
        Duration::from_micros(
            rand::rng().random_range(0..=u64::try_from(half.as_micros()).unwrap_or(u64::MAX)),
        )
    };
    (half + jitter).max(retry_after.unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_jittered_and_honours_retry_after() {
        let s = RoutingSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(800),
            ..RoutingSettings::default()
        };
        for retry in 0..10 {
            let d = backoff(&s, retry, None);
            let exp =
                Duration::from_millis(100 * (1u64 << retry.min(3))).min(Duration::from_millis(800));
            assert!(d >= exp / 2 && d <= exp, "retry {retry}: {d:?}");
        }
        assert!(backoff(&s, 0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn transient_failures_are_retried_until_the_last_try_or_a_long_retry_after() {
        let s = RoutingSettings::default();
        let far = Instant::now() + Duration::from_secs(600);
        let busy = |retry_after: Option<Duration>| ProviderError::Http {
            status: 503,
            retry_after,
            message: String::new(),
        };
        assert!(matches!(
            after_failure(&busy(None), 0, &s, far),
            AfterFailure::Retry(_)
        ));
        assert_eq!(
            after_failure(&busy(None), s.max_attempts_per_provider - 1, &s, far),
            AfterFailure::NextRoute
        );
        assert_eq!(
            after_failure(&busy(Some(s.max_retry_after * 2)), 0, &s, far),
            AfterFailure::NextRoute
        );
        assert_eq!(
            after_failure(&ProviderError::Timeout, 0, &s, far),
            AfterFailure::NextRoute,
            "a timeout goes to the next provider at once"
        );
        assert_eq!(
            after_failure(&busy(None), 0, &s, Instant::now()),
            AfterFailure::NextRoute,
            "no retry past the deadline"
        );
    }
}
