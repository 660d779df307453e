//! How a provider version is doing: call counts, its last sandbox failure, and the circuit
//! breakers that stop calling a version that keeps trapping, timing out or failing to start.
//!
//! Only sandbox failures count (a trap, a timeout, an instance that could not start). A
//! provider's own typed answers, such as "backend unavailable", are answers, not failures
//! of the component. Each exported function has its own breaker, so a `provision` that
//! traps every time is stopped even though the `deprovision` that undoes it succeeds (and
//! clean-up keeps working). After `breaker_failures` failures of a function in a row its
//! breaker opens: its calls fail at once for `breaker_open_ms`; then one trial call is let
//! through, and its outcome closes the breaker or opens it again.

use std::collections::HashMap;
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
    /// By exported function; absent means closed with no failures.
    breakers: HashMap<&'static str, Breaker>,
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
    /// The worst of the functions' breakers: `closed`, `half_open` or `open`.
    pub breaker: &'static str,
    /// Functions whose breaker is not closed.
    pub tripped: Vec<&'static str>,
    /// The longest run of failures of any one function.
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
                breakers: HashMap::new(),
                last_failure: None,
            }),
        }
    }

    /// Whether a call of `function` may run now; while its breaker is open, how long until
    /// it may.
    pub fn admit(&self, function: &'static str) -> Result<(), Duration> {
        let mut state = self.state.lock().expect("health lock");
        let Some(breaker) = state.breakers.get_mut(function) else {
            return Ok(());
        };
        match *breaker {
            Breaker::Closed { .. } => Ok(()),
            Breaker::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Err(until - now)
                } else {
                    *breaker = Breaker::Trial;
                    Ok(())
                }
            }
            // Everyone else waits for the trial's outcome.
            Breaker::Trial => Err(Duration::from_secs(1)),
        }
    }

    /// Records a call's outcome: `None` for success, else the failure.
    pub fn record(&self, function: &'static str, failure: Option<&str>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.lock().expect("health lock");
        let Some(failure) = failure else {
            state.breakers.remove(function);
            return;
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        state.last_failure = Some((Utc::now(), failure.to_string()));
        let open = Breaker::Open {
            until: Instant::now() + self.open_for,
        };
        let breaker = state.breakers.entry(function).or_insert(Breaker::Closed {
            failures_in_a_row: 0,
        });
        *breaker = match *breaker {
            Breaker::Closed { failures_in_a_row } if failures_in_a_row + 1 < self.threshold => {
                Breaker::Closed {
                    failures_in_a_row: failures_in_a_row + 1,
                }
            }
            Breaker::Closed { .. } | Breaker::Trial => {
                tracing::warn!(function, failure, "provider circuit breaker opened");
                open
            }
            already_open @ Breaker::Open { .. } => already_open,
        };
    }

    pub fn report(&self) -> HealthReport {
        let state = self.state.lock().expect("health lock");
        let (mut worst, mut failures_in_a_row, mut retry_after) = (0, 0, None);
        let mut tripped = Vec::new();
        for (function, breaker) in &state.breakers {
            let (rank, run) = match *breaker {
                Breaker::Closed { failures_in_a_row } => (0, failures_in_a_row),
                Breaker::Trial => (1, self.threshold),
                Breaker::Open { until } => {
                    let wait = until.saturating_duration_since(Instant::now()).as_secs() + 1;
                    retry_after = Some(retry_after.map_or(wait, |w: u64| w.max(wait)));
                    (2, self.threshold)
                }
            };
            if rank > 0 {
                tripped.push(*function);
            }
            worst = worst.max(rank);
            failures_in_a_row = failures_in_a_row.max(run);
        }
        tripped.sort_unstable();
        HealthReport {
            breaker: ["closed", "half_open", "open"][worst],
            tripped,
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
        h.record("provision", Some("trap"));
        h.record("provision", Some("trap"));
        h.record("provision", None);
        h.record("provision", Some("trap"));
        h.record("provision", Some("trap"));
        assert!(h.admit("provision").is_ok(), "two in a row after a success");
        h.record("provision", Some("timeout"));
        let wait = h.admit("provision").unwrap_err();
        assert!(wait > Duration::from_secs(50));
        let report = h.report();
        assert_eq!(report.breaker, "open");
        assert_eq!(report.tripped, ["provision"]);
        assert_eq!(report.failures_total, 5);
        assert_eq!(report.calls_total, 6);
        assert_eq!(report.last_failure.as_deref(), Some("timeout"));
    }

    #[test]
    fn each_function_has_its_own_breaker() {
        let h = health(2, 60_000);
        for _ in 0..2 {
            h.record("provision", Some("trap"));
            // The undo of each failed provision succeeds: it must not reset provision's run.
            h.record("deprovision", None);
        }
        assert!(h.admit("provision").is_err());
        assert!(h.admit("deprovision").is_ok(), "clean-up keeps working");
        assert!(h.admit("usage").is_ok());
    }

    #[test]
    fn after_the_pause_one_trial_call_decides() {
        let h = health(1, 0);
        h.record("provision", Some("trap"));
        assert!(h.admit("provision").is_ok(), "the pause is over: one trial");
        assert!(h.admit("provision").is_err(), "others wait for the trial");
        assert_eq!(h.report().breaker, "half_open");
        h.record("provision", Some("trap again"));
        assert_eq!(h.report().breaker, "open");
        assert!(h.admit("provision").is_ok(), "next trial");
        h.record("provision", None);
        assert_eq!(h.report().breaker, "closed");
        assert!(h.admit("provision").is_ok() && h.admit("provision").is_ok());
    }
}
