//! How a provider version is doing: call counts, its last sandbox failure, and the circuit
//! breaker that stops calling a version that keeps trapping, timing out or failing to start.
//!
//! Only sandbox failures count (a trap, a timeout, an instance that could not start). A
//! provider's own typed answers, such as "backend unavailable", are answers, not failures
//! of the component. After `breaker_failures` failures in a row the breaker opens: calls
//! fail at once for `breaker_open_ms`; then one trial call is let through, and its outcome
//! closes the breaker or opens it again.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::SandboxConfig;

pub struct Health {
    threshold: u32,
    open_for: Duration,
    calls: AtomicU64,
    failures: AtomicU64,
    state: Mutex<State>,
}

struct State {
    breaker: Breaker,
    last_failure: Option<(DateTime<Utc>, String)>,
}

#[derive(Clone, Copy)]
enum Breaker {
    Closed {
        failures_in_a_row: u32,
    },
    Open {
        until: Instant,
    },
    /// One trial call is running.
    Trial,
}

/// A snapshot for `/readyz` and the operator API.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    pub failures_in_a_row: u32,
    pub calls_total: u64,
    pub failures_total: u64,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Seconds until a trial call is let through, while open.
    pub retry_after_seconds: Option<u64>,
}

impl Health {
    pub fn new(sandbox: &SandboxConfig) -> Self {
        Self {
            threshold: sandbox.breaker_failures.max(1),
            open_for: Duration::from_millis(sandbox.breaker_open_ms),
            calls: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            state: Mutex::new(State {
                breaker: Breaker::Closed {
                    failures_in_a_row: 0,
                },
                last_failure: None,
            }),
        }
    }

    /// Whether a call may run now; while open, how long until it may.
    pub fn admit(&self) -> Result<(), Duration> {
        let mut state = self.state.lock().expect("health lock");
        match state.breaker {
            Breaker::Closed { .. } => Ok(()),
            Breaker::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Err(until - now)
                } else {
                    state.breaker = Breaker::Trial;
                    Ok(())
                }
            }
            // Everyone else waits for the trial's outcome.
            Breaker::Trial => Err(Duration::from_secs(1)),
        }
    }

    /// Records a call's outcome: `None` for success, else the failure.
    pub fn record(&self, failure: Option<&str>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().expect("health lock");
        let Some(failure) = failure else {
            state.breaker = Breaker::Closed {
                failures_in_a_row: 0,
            };
            return;
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        state.last_failure = Some((Utc::now(), failure.to_string()));
        let open = Breaker::Open {
            until: Instant::now() + self.open_for,
        };
        state.breaker = match state.breaker {
            Breaker::Closed { failures_in_a_row } if failures_in_a_row + 1 < self.threshold => {
                Breaker::Closed {
                    failures_in_a_row: failures_in_a_row + 1,
                }
            }
            Breaker::Closed { .. } | Breaker::Trial => {
                tracing::warn!(failure, "provider circuit breaker opened");
                open
            }
            already_open @ Breaker::Open { .. } => already_open,
        };
    }

    pub fn report(&self) -> HealthReport {
        let state = self.state.lock().expect("health lock");
        let (breaker, failures_in_a_row, retry_after) = match state.breaker {
            Breaker::Closed { failures_in_a_row } => ("closed", failures_in_a_row, None),
            Breaker::Open { until } => (
                "open",
                self.threshold,
                Some(until.saturating_duration_since(Instant::now()).as_secs() + 1),
            ),
            Breaker::Trial => ("half_open", self.threshold, None),
        };
        HealthReport {
            breaker,
            failures_in_a_row,
            calls_total: self.calls.load(Ordering::Relaxed),
            failures_total: self.failures.load(Ordering::Relaxed),
            last_failure: state.last_failure.as_ref().map(|(_, m)| m.clone()),
            last_failure_at: state.last_failure.as_ref().map(|(at, _)| *at),
            retry_after_seconds: retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(threshold: u32, open_ms: u64) -> Health {
        Health::new(&SandboxConfig {
            breaker_failures: threshold,
            breaker_open_ms: open_ms,
            ..SandboxConfig::default()
        })
    }

    #[test]
    fn failures_in_a_row_open_the_breaker_and_a_success_resets_the_count() {
        let h = health(3, 60_000);
        h.record(Some("trap"));
        h.record(Some("trap"));
        h.record(None);
        h.record(Some("trap"));
        h.record(Some("trap"));
        assert!(h.admit().is_ok(), "two in a row after a success");
        h.record(Some("timeout"));
        let wait = h.admit().unwrap_err();
        assert!(wait > Duration::from_secs(50));
        let report = h.report();
        assert_eq!(report.breaker, "open");
        assert_eq!(report.failures_total, 5);
        assert_eq!(report.calls_total, 6);
        assert_eq!(report.last_failure.as_deref(), Some("timeout"));
    }

    #[test]
    fn after_the_pause_one_trial_call_decides() {
        let h = health(1, 0);
        h.record(Some("trap"));
        assert!(h.admit().is_ok(), "the pause is over: one trial");
        assert!(h.admit().is_err(), "others wait for the trial");
        assert_eq!(h.report().breaker, "half_open");
        h.record(Some("trap again"));
        assert_eq!(h.report().breaker, "open");
        assert!(h.admit().is_ok(), "next trial");
        h.record(None);
        assert_eq!(h.report().breaker, "closed");
        assert!(h.admit().is_ok() && h.admit().is_ok());
    }
}
