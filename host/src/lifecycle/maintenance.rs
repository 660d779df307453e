//! Provider upkeep: calls every provider's `maintain` every few seconds, and once a burst
//! of provisions has settled (so a warm pool refills without competing with the burst for
//! the backend; a pool that runs dry mid-burst falls back to creating inline).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::services::Services;

/// A burst has settled once no provision happened for this long.
const QUIET: Duration = Duration::from_millis(250);

/// Wakes the upkeep task early.
#[derive(Default)]
pub struct Maintenance {
    wake: Notify,
}

impl Maintenance {
    /// Asks for a run soon; several requests before it starts make one run.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Waits until provisions pause for [`QUIET`], or `interval` at most.
    async fn settle(&self, interval: Duration) {
        let give_up = tokio::time::Instant::now() + interval;
        while tokio::time::timeout_at(give_up, tokio::time::timeout(QUIET, self.wake.notified()))
            .await
            .is_ok_and(|nudged| nudged.is_ok())
        {}
    }
}

/// Runs forever (until the process exits).
pub fn spawn(services: Arc<Services>) {
    // Upkeep runs at least this often (`lifecycle.maintain_interval_ms`).
    let interval = Duration::from_millis(services.lifecycle.maintain_interval_ms.max(10));
    tokio::spawn(async move {
        loop {
            run_once(&services).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = services.maintenance.wake.notified() => services.maintenance.settle(interval).await,
            }
        }
    });
}

/// One pass over every provider. Failures are logged, never fatal.
pub async fn run_once(services: &Services) {
    for provider in services.registry.all() {
        let request_id = format!("maintain-{}", uuid::Uuid::new_v4().simple());
        match provider.maintain(&request_id).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(provider = %provider.name, error = ?e, "provider upkeep failed")
            }
            Err(e) => {
                tracing::warn!(provider = %provider.name, error = %e, "provider upkeep failed")
            }
        }
    }
}
