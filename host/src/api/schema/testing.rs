//! `/testing/*` answers (test hosts only; not in the document).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::True;

/// The clock, moved forward.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClockMoved {
    pub ok: True,
    pub now: DateTime<Utc>,
}

/// What a reaper or meter round did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoundReport<R> {
    pub ok: True,
    pub report: R,
}
