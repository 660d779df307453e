//! Runs the reaper and the meter on their intervals, for as long as the process lives.
//! Each pass is idempotent and safe beside other replicas' passes.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

use crate::lifecycle::{meter, reaper};

pub fn spawn(app: Arc<App>) {
    let every = |secs: u64| Duration::from_secs(secs.max(1));
    let reap_every = every(app.lifecycle.reap_interval_secs);
    let meter_every = every(app.lifecycle.meter_interval_secs);
    {
        let app = app.clone();
        tokio::spawn(async move {
            // The first pass waits one interval: a host just started (or a test that moves
            // its clock at once) is not raced by a pass it did not ask for.
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::now() + reap_every, reap_every);
            loop {
                ticks.tick().await;
                reaper::reap_once(&app).await;
                crate::deploy::rollout::fail_stale(&app).await;
            }
        });
    }
    tokio::spawn(async move {
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + meter_every, meter_every);
        loop {
            ticks.tick().await;
            meter::meter_once(&app, false).await;
        }
    });
}
