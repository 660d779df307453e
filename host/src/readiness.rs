//! The last readiness round (`/readyz`), kept so a burst of probes is answered from one
//! round instead of loading the backends once per probe.

use std::time::Instant;

use tokio::sync::Mutex;

use crate::api::schema::Readiness as Report;

#[derive(Default)]
pub struct Readiness {
    /// When the round ran, whether the host was ready, and the report.
    pub last: Mutex<Option<(Instant, bool, Report)>>,
}
