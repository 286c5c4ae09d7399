//! The circuit breaker and health statistics of one provider.
//!
//! A provider's circuit opens after `breaker_failure_threshold` consecutive failures, lets one
//! trial call through after `breaker_cooldown` (half-open), and closes on its success or reopens
//! on its failure. A client error (the provider refused the request itself) is neutral. The
//! breaker sets its provider's `iaf_llm_circuit_state` gauge on every change of state.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use iafactory::metrics::Gauge;

use super::settings::RoutingSettings;
use crate::providers::ProviderError;

/// Circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// A snapshot of a provider's health for status pages and metrics.
#[derive(Debug, Clone)]
pub struct HealthSnapshot {
    pub state: CircuitState,
    pub ewma_latency_ms: f64,
    pub requests: u64,
    pub failures: u64,
    pub consecutive_failures: u32,
    pub last_error: String,
    pub last_error_at_ms: i64,
}

#[derive(Debug)]
struct HealthState {
    state: CircuitState,
    opened_at: Option<Instant>,
    probe_started: Option<Instant>,
    consecutive_failures: u32,
    requests: u64,
    failures: u64,
    ewma_ms: f64,
    last_error: String,
    last_error_at_ms: i64,
}

/// Breaker and statistics of one provider (shared by every call in this process).
#[derive(Debug)]
pub struct Health {
    inner: Mutex<HealthState>,
    /// The state as a metric: 0 closed, 1 half-open, 2 open.
    circuit: Gauge,
}

impl CircuitState {
    /// The value of the state's gauge.
    pub fn gauge_value(self) -> i64 {
        match self {
            CircuitState::Closed => 0,
            CircuitState::HalfOpen => 1,
            CircuitState::Open => 2,
        }
    }
}

impl Default for Health {
    /// A breaker whose gauge is in no registry.
    fn default() -> Self {
        Health::new(Gauge::default())
    }
}

impl Health {
    /// A closed breaker reporting its state to `circuit`.
    pub fn new(circuit: Gauge) -> Self {
        circuit.set(CircuitState::Closed.gauge_value());
        Health {
            circuit,
            inner: Mutex::new(HealthState {
                state: CircuitState::Closed,
                opened_at: None,
                probe_started: None,
                consecutive_failures: 0,
                requests: 0,
                failures: 0,
                ewma_ms: 0.0,
                last_error: String::new(),
                last_error_at_ms: 0,
            }),
        }
    }

    /// Changes the state, under the lock so the gauge follows the order of changes.
    fn set_state(&self, h: &mut HealthState, state: CircuitState) {
        h.state = state;
        self.circuit.set(state.gauge_value());
    }

    fn lock(&self) -> MutexGuard<'_, HealthState> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// May a call go to this provider now? Open → no until the cool-down ends, then one trial
    /// call (half-open). A trial that never reported back is replaced after another cool-down.
    pub fn try_acquire(&self, s: &RoutingSettings) -> bool {
        let mut h = self.lock();
        let now = Instant::now();
        match h.state {
            CircuitState::Closed => true,
            CircuitState::Open => {
                if h.opened_at
                    .is_none_or(|t| now.duration_since(t) >= s.breaker_cooldown)
                {
                    self.set_state(&mut h, CircuitState::HalfOpen);
                    h.probe_started = Some(now);
                    true
                } else {
                    false
                }
            }
            CircuitState::HalfOpen => {
                if h.probe_started
                    .is_none_or(|t| now.duration_since(t) >= s.breaker_cooldown)
                {
                    h.probe_started = Some(now);
                    true
                } else {
                    false
                }
            }
        }
    }

    pub fn on_success(&self, latency: Duration, s: &RoutingSettings) {
        let mut h = self.lock();
        h.requests += 1;
        h.consecutive_failures = 0;
        self.set_state(&mut h, CircuitState::Closed);
        h.opened_at = None;
        h.probe_started = None;
        let ms = latency.as_secs_f64() * 1000.0;
        h.ewma_ms = if h.ewma_ms == 0.0 {
            ms
        } else {
            s.ewma_alpha * ms + (1.0 - s.ewma_alpha) * h.ewma_ms
        };
    }

    /// The provider answered but refused the request (client error): alive, no latency sample.
    pub fn on_neutral(&self) {
        let mut h = self.lock();
        h.requests += 1;
        h.consecutive_failures = 0;
        if h.state == CircuitState::HalfOpen {
            self.set_state(&mut h, CircuitState::Closed);
            h.opened_at = None;
            h.probe_started = None;
        }
    }

    pub fn on_failure(&self, err: &ProviderError, s: &RoutingSettings) {
        let mut h = self.lock();
        h.requests += 1;
        h.failures += 1;
        h.consecutive_failures = h.consecutive_failures.saturating_add(1);
        h.last_error = err.kind_label();
        h.last_error_at_ms = iafactory::db::now_millis();
        let trip = h.state == CircuitState::HalfOpen
            || (h.state == CircuitState::Closed
                && h.consecutive_failures >= s.breaker_failure_threshold.max(1));
        if trip {
            if h.state != CircuitState::Open {
                tracing::warn!(
                    failures = h.consecutive_failures,
                    "circuit opened after consecutive failures"
                );
            }
            self.set_state(&mut h, CircuitState::Open);
            h.opened_at = Some(Instant::now());
            h.probe_started = None;
        }
    }

    /// Time until an open circuit lets a trial call through (None when not open).
    pub fn open_remaining(&self, s: &RoutingSettings) -> Option<Duration> {
        let h = self.lock();
        match (h.state, h.opened_at) {
            (CircuitState::Open, Some(t)) => Some(s.breaker_cooldown.saturating_sub(t.elapsed())),
            _ => None,
        }
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let h = self.lock();
        HealthSnapshot {
            state: h.state,
            ewma_latency_ms: h.ewma_ms,
            requests: h.requests,
            failures: h.failures,
            consecutive_failures: h.consecutive_failures,
            last_error: h.last_error.clone(),
            last_error_at_ms: h.last_error_at_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(threshold: u32, cooldown_ms: u64) -> RoutingSettings {
        RoutingSettings {
            breaker_failure_threshold: threshold,
            breaker_cooldown: Duration::from_millis(cooldown_ms),
            ..RoutingSettings::default()
        }
    }

    #[test]
    fn breaker_opens_half_opens_with_one_probe_and_reopens() {
        let s = settings(3, 40);
        let h = Health::default();
        let err = ProviderError::Http {
            status: 503,
            retry_after: None,
            message: String::new(),
        };
        for _ in 0..2 {
            assert!(h.try_acquire(&s));
            h.on_failure(&err, &s);
        }
        assert_eq!(h.snapshot().state, CircuitState::Closed);
        h.on_failure(&err, &s);
        assert_eq!(h.snapshot().state, CircuitState::Open);
        assert!(!h.try_acquire(&s), "open: refused");
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.try_acquire(&s), "cool-down over: one probe");
        assert_eq!(h.snapshot().state, CircuitState::HalfOpen);
        assert!(!h.try_acquire(&s), "only one probe at a time");
        h.on_failure(&err, &s);
        assert_eq!(
            h.snapshot().state,
            CircuitState::Open,
            "failed probe reopens"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.try_acquire(&s));
        h.on_success(Duration::from_millis(10), &s);
        let snap = h.snapshot();
        assert_eq!(snap.state, CircuitState::Closed);
        assert_eq!(snap.consecutive_failures, 0);
        assert_eq!((snap.requests, snap.failures), (5, 4));
        assert_eq!(snap.last_error, "http_503");
    }

    #[test]
    fn success_resets_the_failure_run_and_client_errors_are_neutral() {
        let s = settings(2, 1000);
        let h = Health::default();
        h.on_failure(&ProviderError::Timeout, &s);
        h.on_success(Duration::from_millis(100), &s);
        h.on_failure(&ProviderError::Timeout, &s);
        h.on_neutral();
        h.on_failure(&ProviderError::Timeout, &s);
        assert_eq!(h.snapshot().state, CircuitState::Closed);
        assert!((h.snapshot().ewma_latency_ms - 100.0).abs() < 1e-9);
    }

    #[test]
    fn the_gauge_follows_the_state() {
        let s = settings(1, 40);
        let gauge = Gauge::default();
        let h = Health::new(gauge.clone());
        assert_eq!(gauge.get(), 0);
        h.on_failure(&ProviderError::Timeout, &s);
        assert_eq!(gauge.get(), 2);
        std::thread::sleep(Duration::from_millis(60));
        assert!(h.try_acquire(&s));
        assert_eq!(gauge.get(), 1);
        h.on_success(Duration::from_millis(1), &s);
        assert_eq!(gauge.get(), 0);
    }
}
