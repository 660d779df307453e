//! Who may build now: one build per app at a time (rollouts that a newer one replaced
//! while they waited give up), a few per owner, and a ceiling for the whole host, so a
//! redeploy loop cannot fill the engine with builds. The engine capability stops a running
//! build that a newer rollout replaced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, watch};
use uuid::Uuid;

/// Builds running and waiting, by app and by owner.
pub struct BuildSlots {
    apps: Mutex<HashMap<Uuid, Arc<AppBuilds>>>,
    owners: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_owner: usize,
    host: Arc<Semaphore>,
}

/// One app's builds: the turn to build, and the newest generation asked for.
struct AppBuilds {
    turn: Arc<tokio::sync::Mutex<()>>,
    newest: watch::Sender<i32>,
}

/// The right to build one generation of an app, until dropped.
pub struct BuildTurn {
    _app: OwnedMutexGuard<()>,
    _owner: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

impl BuildSlots {
    pub fn new(per_owner: usize, host: usize) -> Self {
        Self {
            apps: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
            per_owner: per_owner.max(1),
            host: Arc::new(Semaphore::new(host.max(1))),
        }
    }

    /// Waits for the turn to build `generation` of `app` for `owner`; `None` when a newer
    /// generation was asked for meanwhile (that one builds instead).
    pub async fn wait_turn(&self, app: Uuid, generation: i32, owner: &str) -> Option<BuildTurn> {
        let builds = self.app(app);
        builds.newest.send_if_modified(|newest| {
            let newer = generation > *newest;
            if newer {
                *newest = generation;
            }
            newer
        });
        let newest = builds.newest.subscribe();
        let mut watcher = builds.newest.subscribe();
        let superseded = |newest: &watch::Receiver<i32>| *newest.borrow() > generation;
        let wait = async {
            let app_turn = builds.turn.clone().lock_owned().await;
            if superseded(&newest) {
                return None;
            }
            let owner_turn = self.owner(owner).acquire_owned().await.ok()?;
            let host_turn = self.host.clone().acquire_owned().await.ok()?;
            Some((app_turn, owner_turn, host_turn))
        };
        let turn = tokio::select! {
            turn = wait => turn,
            _ = watcher.wait_for(|newest| *newest > generation) => None,
        };
        let (app_turn, owner_turn, host_turn) = turn?;
        if superseded(&newest) {
            return None;
        }
        Some(BuildTurn {
            _app: app_turn,
            _owner: owner_turn,
            _host: host_turn,
        })
    }

    fn app(&self, app: Uuid) -> Arc<AppBuilds> {
        let mut apps = self.apps.lock().unwrap_or_else(|e| e.into_inner());
        // Apps nobody is building or waiting on are forgotten, so the map stays small.
        apps.retain(|_, builds| Arc::strong_count(builds) > 1 || builds.turn.try_lock().is_err());
        apps.entry(app)
            .or_insert_with(|| {
                Arc::new(AppBuilds {
                    turn: Arc::new(tokio::sync::Mutex::new(())),
                    newest: watch::Sender::new(i32::MIN),
                })
            })
            .clone()
    }

    fn owner(&self, owner: &str) -> Arc<Semaphore> {
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.retain(|_, slots| {
            Arc::strong_count(slots) > 1 || slots.available_permits() < self.per_owner
        });
        owners
            .entry(owner.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_owner)))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn settles<F: std::future::Future>(future: F) -> Option<F::Output> {
        tokio::time::timeout(Duration::from_millis(50), future)
            .await
            .ok()
    }

    #[tokio::test]
    async fn one_build_per_app_and_the_newest_waiting_one_goes_next() {
        let slots = Arc::new(BuildSlots::new(2, 4));
        let app = Uuid::new_v4();
        let first = slots.wait_turn(app, 1, "o").await.expect("first turn");
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.wait_turn(app, 2, "o").await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let third = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.wait_turn(app, 3, "o").await.is_some() })
        };
        assert!(!waiting.await.unwrap(), "generation 2 gave way to 3");
        drop(first);
        assert!(third.await.unwrap(), "generation 3 builds once 1 is gone");
    }

    #[tokio::test]
    async fn an_owner_runs_at_most_its_share() {
        let slots = Arc::new(BuildSlots::new(2, 10));
        let a = slots.wait_turn(Uuid::new_v4(), 1, "o").await.unwrap();
        let _b = slots.wait_turn(Uuid::new_v4(), 1, "o").await.unwrap();
        assert!(
            settles(slots.wait_turn(Uuid::new_v4(), 1, "o"))
                .await
                .is_none()
        );
        // Another owner is not held up.
        assert!(
            settles(slots.wait_turn(Uuid::new_v4(), 1, "p"))
                .await
                .is_some()
        );
        drop(a);
        assert!(
            settles(slots.wait_turn(Uuid::new_v4(), 1, "o"))
                .await
                .is_some()
        );
    }

    #[tokio::test]
    async fn the_host_ceiling_holds_across_owners() {
        let slots = BuildSlots::new(5, 1);
        let _a = slots.wait_turn(Uuid::new_v4(), 1, "o").await.unwrap();
        assert!(
            settles(slots.wait_turn(Uuid::new_v4(), 1, "p"))
                .await
                .is_none()
        );
    }
}
