//! Keeping every replica's providers the same. A version made live (an upload, a rollback)
//! or taken out of service on one replica is recorded in the metadata store and announced;
//! the others apply it in [`Registry::converge`].

use std::collections::BTreeMap;
use std::path::Path;

use wasmtime::Engine;

use super::{Loaded, Refusal, Registry, Slot, load};
use crate::store::{ProviderLive, Store};

/// What the store says each provider serves; empty when it cannot be read (the host then
/// starts from its own files).
pub(super) async fn read(store: &Store) -> BTreeMap<String, ProviderLive> {
    match store.providers_live().await {
        Ok(rows) => rows.into_iter().map(|r| (r.name.clone(), r)).collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the shared provider versions");
            BTreeMap::new()
        }
    }
}

/// The shared live version of a provider, loaded; none when there is none or it does not
/// load on this host (then the host's own files are used).
pub(super) async fn load_live(
    engine: &Engine,
    cache_dir: &Path,
    slot: &Slot,
    store: &Store,
    live: &ProviderLive,
) -> Option<Loaded> {
    let sha256 = live.sha256.as_deref()?;
    let (wasm, source) = match store.provider_version(sha256).await {
        Ok(found) => found?,
        Err(e) => {
            tracing::error!(provider = %live.name, error = %e, "cannot read the shared version");
            return None;
        }
    };
    match load::version(engine, cache_dir, slot, wasm.into(), source).await {
        Ok((loaded, _)) => Some(loaded),
        Err(e) => {
            tracing::error!(provider = %live.name, error = %e, "the shared version is refused here; loading this host's own");
            None
        }
    }
}

impl Registry {
    /// Records what provider `name` serves now, for the other replicas. A failure is only
    /// logged: this replica has swapped already.
    pub(super) async fn publish(&self, name: &str, live: Option<&Loaded>) {
        let published = async {
            if let Some(version) = live {
                self.store
                    .keep_provider_version(
                        &version.sha256,
                        &version.wasm,
                        &version.source,
                        chrono::Utc::now(),
                    )
                    .await?;
            }
            self.store
                .set_provider_live(name, live.map(|l| l.sha256.as_str()))
                .await
        };
        match published.await {
            Ok(changed) => self.mark_applied(name, changed),
            Err(e) => tracing::error!(
                provider = %name, error = %e,
                "cannot share the change: other replicas keep the version they have"
            ),
        }
    }

    /// Applies every change another replica shared since the last call.
    pub async fn converge(&self) {
        for (name, live) in read(&self.store).await {
            if !self.slots.contains_key(&name) {
                continue;
            }
            let seen = self.applied.lock().ok().and_then(|a| a.get(&name).copied());
            if seen.is_some_and(|seen| seen >= live.changed) {
                continue;
            }
            if self.apply(&name, live.sha256.as_deref()).await {
                self.mark_applied(&name, live.changed);
            }
        }
    }

    /// Makes `sha256` (none: nothing) what provider `name` serves here. False when it
    /// should be tried again (the store did not answer).
    async fn apply(&self, name: &str, sha256: Option<&str>) -> bool {
        let Some(sha256) = sha256 else {
            if let Err(e) = self.unload_here(name).await
                && !matches!(e, Refusal::NotLoaded(_))
            {
                tracing::error!(provider = %name, error = %e, "cannot follow an unload");
            }
            return true;
        };
        if self.get(name).is_some_and(|live| live.sha256 == sha256) {
            return true;
        }
        let (wasm, source) = match self.store.provider_version(sha256).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                tracing::error!(provider = %name, sha256, "a shared version has no bytes");
                return true;
            }
            Err(e) => {
                tracing::warn!(provider = %name, error = %e, "cannot read a shared version yet");
                return false;
            }
        };
        match self.replace_here(name, wasm.into(), source).await {
            Ok(swapped) => tracing::info!(
                provider = %name, version = %swapped.live.version, sha256,
                "followed another replica's swap"
            ),
            // Refused here (e.g. this host links another contract): keep serving the
            // version this replica has, and say so once.
            Err(e) => {
                tracing::error!(provider = %name, sha256, error = %e, "cannot follow another replica's swap")
            }
        }
        true
    }

    fn mark_applied(&self, name: &str, changed: i64) {
        if let Ok(mut applied) = self.applied.lock() {
            let entry = applied.entry(name.to_string()).or_default();
            *entry = (*entry).max(changed);
        }
    }
}
