//! The reaper: ends resources whose TTL ran out, and finishes what died half-way (a
//! provision whose host crashed, a delete whose provider call failed). Work is claimed in
//! small batches with `SKIP LOCKED`, so any number of replicas can reap together, and all
//! state lives in the metadata database, so a restarted host picks up where it left off.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::services::Services;

use super::deprovision::deprovision;

/// Rows claimed per round trip.
const BATCH: i64 = 32;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReapReport {
    /// Resources whose backend objects were removed.
    pub ended: u32,
    /// Resources whose removal failed this time (retried after `stale_after_secs`).
    pub failed: u32,
}

/// One pass: works until nothing is due.
pub async fn reap_once(services: &Services) -> ReapReport {
    let mut report = ReapReport::default();
    let stale_after =
        Duration::seconds(i64::try_from(services.lifecycle.stale_after_secs).unwrap_or(600));
    loop {
        let batch = match services
            .store
            .claim_for_reaping(services.clock.now(), stale_after, BATCH)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "reaper cannot claim work");
                return report;
            }
        };
        let claimed = batch.len();
        for (row, reason) in batch {
            let request_id = format!("reap-{}", uuid::Uuid::new_v4().simple());
            match deprovision(services, &row, &request_id).await {
                Ok(()) => {
                    tracing::info!(resource.id = %row.id, reason = reason.as_str(), "reaped");
                    report.ended += 1;
                }
                Err(e) => {
                    tracing::warn!(request_id, resource.id = %row.id, reason = reason.as_str(), error = %e, "reaping failed; will retry");
                    report.failed += 1;
                }
            }
        }
        if claimed < BATCH as usize {
            break;
        }
    }
    if let Err(e) = services
        .store
        .purge_idempotency(services.clock.now(), 1000)
        .await
    {
        tracing::warn!(error = %e, "cannot purge expired idempotency entries");
    }
    report
}
