//! The host's notion of now. Deadlines (TTL expiry, daily caps, idempotency windows) all
//! read this clock, so a test can move it forward and watch every deadline pass together.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Default)]
pub struct Clock {
    /// Seconds added to the system time (only tests move it).
    offset_seconds: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// Moves the clock forward by `seconds` and returns the new time.
    pub fn advance(&self, seconds: i64) -> DateTime<Utc> {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
        self.now()
    }
}
