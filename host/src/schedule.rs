//! Runs the reaper, the meter and the takeover of interrupted rollouts on their intervals, for as long as the process lives.
//! Each pass is idempotent and safe beside other replicas' passes.

use std::sync::Arc;
use std::time::Duration;

use crate::services::Services;

use crate::lifecycle::{meter, reaper};

/// How often rollouts left by a replica that died are looked for.
const ORPHAN_CHECK: Duration = Duration::from_secs(5);

pub fn spawn(services: Arc<Services>) {
    let every = |secs: u64| Duration::from_secs(secs.max(1));
    let reap_every = every(services.lifecycle.reap_interval_secs);
    let meter_every = every(services.lifecycle.meter_interval_secs);
    {
        let services = services.clone();
        tokio::spawn(async move {
            // The first pass waits one interval: a host just started (or a test that moves
            // its clock at once) is not raced by a pass it did not ask for.
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + reap_every, reap_every);
            loop {
                ticks.tick().await;
                reaper::reap_once(&services).await;
                crate::deploy::rollout::fail_stale(&services).await;
            }
        });
    }
    {
        let services = services.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(ORPHAN_CHECK);
            loop {
                ticks.tick().await;
                crate::deploy::rollout::take_over_orphans(&services).await;
            }
        });
    }
    tokio::spawn(async move {
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + meter_every, meter_every);
        loop {
            ticks.tick().await;
            meter::meter_once(&services, false).await;
        }
    });
}
