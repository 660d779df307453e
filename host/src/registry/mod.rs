//! The provider registry: loads, validates, swaps and serves provider components.
//!
//! Each configured provider has a [`Slot`]: what outlives its versions (config, granted
//! capabilities, backend connections, the instance limit). A version is a validated,
//! pre-linked [`Loaded`]. The live set is one `ArcSwap`: replacing a provider is a single
//! atomic pointer change, and a call already running keeps the version it started with.

mod call;
mod engine;
mod health;
mod load;
mod shared;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, Semaphore};
use wasmtime::Engine;

use crate::caps::{self, Bindings, Capability, ContainersBackend, S3Backend};
use crate::config::{Config, SandboxConfig};
use crate::contract::ProviderPre;
use crate::contract::deploy::DeployProviderPre;
use crate::contract::storage::StorageProviderPre;
use crate::contract::types::KindInfo;
use crate::store::{KeyRing, Store};

pub use call::{Answer, CallError};
pub use health::{Health, HealthReport};
pub use load::Refusal;

/// One loaded provider version.
pub struct Loaded {
    pub name: String,
    pub version: String,
    pub kinds: Vec<String>,
    /// Kinds it only looks after for the resources it made (see `retired_kinds`).
    pub retired_kinds: Vec<String>,
    /// What the component says of each configured kind, in `kinds` order.
    pub kind_info: Vec<KindInfo>,
    pub sha256: String,
    pub grants: Vec<Capability>,
    pub loaded_at: DateTime<Utc>,
    /// Where the bytes came from: a file path or `upload`.
    pub source: String,
    pub health: Health,
    wasm: Arc<[u8]>,
    pre: ProviderPre<caps::HostState>,
    /// Set when the component also exports `deployer`.
    deploy_pre: Option<DeployProviderPre<caps::HostState>>,
    /// Set when the component also exports `objects`.
    storage_pre: Option<StorageProviderPre<caps::HostState>>,
    bindings: Arc<Bindings>,
    sandbox: SandboxConfig,
    instances: Arc<Semaphore>,
}

/// A configured provider: everything that stays the same from one version to the next.
pub struct Slot {
    pub name: String,
    pub kinds: Vec<String>,
    pub retired_kinds: Vec<String>,
    pub grants: Vec<Capability>,
    pub sandbox: SandboxConfig,
    bindings: Arc<Bindings>,
    instances: Arc<Semaphore>,
    /// Held while a version is validated and swapped in, so swaps of one provider happen
    /// one at a time; keeps the version the live one replaced, for rollback.
    previous: Mutex<Option<Arc<Loaded>>>,
}

/// The live providers, by name and by kind.
struct Live {
    by_name: BTreeMap<String, Arc<Loaded>>,
    by_kind: HashMap<String, Arc<Loaded>>,
}

/// What a swap did.
pub struct Swapped {
    pub live: Arc<Loaded>,
    pub replaced: Option<Arc<Loaded>>,
    /// Time spent compiling (or loading the cached artifact), validating and swapping.
    pub elapsed: Duration,
    /// Whether a compiled artifact of the same bytes was reused.
    pub cached: bool,
}

impl Swapped {
    /// Whether the bytes were already the live version, so nothing changed.
    pub fn unchanged(&self) -> bool {
        self.replaced.is_none()
    }
}

pub struct Registry {
    engine: Engine,
    cache_dir: PathBuf,
    slots: BTreeMap<String, Arc<Slot>>,
    live: ArcSwap<Live>,
    /// Where uploaded versions are kept, and new files are picked up from.
    pub providers_dir: Option<PathBuf>,
    /// Where versions are shared with the other replicas.
    store: Store,
    /// The last shared change applied here, per provider.
    applied: std::sync::Mutex<BTreeMap<String, i64>>,
}

impl Registry {
    /// Loads every configured provider; any bad one stops the start with its reason. A
    /// version in the providers directory (an earlier upload) is preferred over the
    /// configured file.
    pub async fn load(config: &Config, store: &Store, keys: Arc<KeyRing>) -> anyhow::Result<Self> {
        let max_memory = config
            .providers
            .values()
            .map(|p| config.sandbox.with(p.sandbox).memory_mb)
            .max()
            .unwrap_or(config.sandbox.memory_mb);
        let engine = engine::build(&config.sandbox, max_memory)?;
        let cache_dir = config.data_dir.join("cache");
        let providers_dir = config.providers_dir();
        let mut slots = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        let shared = shared::read(store).await;
        let mut applied = BTreeMap::new();
        for (name, provider) in &config.providers {
            let slot = load::slot(name, provider, config, store, &keys)
                .await
                .with_context(|| format!("provider `{name}` refused"))?;
            let slot = Arc::new(slot);
            let kept = providers_dir
                .as_deref()
                .map(|dir| dir.join(format!("{name}.wasm")))
                .filter(|p| p.is_file());
            let mut loaded = None;
            if let Some(live) = shared.get(name) {
                applied.insert(name.clone(), live.changed);
                loaded = shared::load_live(&engine, &cache_dir, &slot, store, live).await;
            }
            if let Some(path) = kept.filter(|_| loaded.is_none()) {
                // An earlier upload; if it no longer loads, the configured file still does.
                match load_file(&engine, &cache_dir, &slot, &path).await {
                    Ok(version) => loaded = Some(version),
                    Err(e) => tracing::error!(
                        provider = %name, path = %path.display(), error = %e,
                        "the kept version is refused; loading the configured component"
                    ),
                }
            }
            let loaded = match loaded {
                Some(version) => version,
                None => load_file(&engine, &cache_dir, &slot, &provider.component)
                    .await
                    .with_context(|| format!("provider `{name}` refused"))?,
            };
            tracing::info!(
                provider = %loaded.name, version = %loaded.version, kinds = ?loaded.kinds,
                sha256 = %loaded.sha256, source = %loaded.source, "provider loaded"
            );
            by_name.insert(name.clone(), Arc::new(loaded));
            slots.insert(name.clone(), slot);
        }
        if let Some(dir) = &providers_dir {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(Self {
            engine,
            cache_dir,
            slots,
            live: ArcSwap::from_pointee(Live::index(by_name)),
            providers_dir,
            store: store.clone(),
            applied: std::sync::Mutex::new(applied),
        })
    }

    /// The provider serving `kind`, pinned for the duration of the caller's work.
    pub fn for_kind(&self, kind: &str) -> Option<Arc<Loaded>> {
        self.live.load().by_kind.get(kind).cloned()
    }

    /// The provider that looks after an existing resource: the one that created it (by
    /// name, whatever its version now), else the one serving its kind.
    pub fn for_resource(&self, provider: &str, kind: &str) -> Option<Arc<Loaded>> {
        let live = self.live.load();
        live.by_name
            .get(provider)
            .filter(|p| p.kinds.iter().chain(&p.retired_kinds).any(|k| k == kind))
            .or_else(|| live.by_kind.get(kind))
            .cloned()
    }

    /// The live version of provider `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Loaded>> {
        self.live.load().by_name.get(name).cloned()
    }

    /// Every live provider.
    pub fn all(&self) -> Vec<Arc<Loaded>> {
        self.live.load().by_name.values().cloned().collect()
    }

    /// Configured providers that have no live version (unloaded).
    pub fn unloaded(&self) -> Vec<String> {
        let live = self.live.load();
        self.slots
            .keys()
            .filter(|name| !live.by_name.contains_key(*name))
            .cloned()
            .collect()
    }

    /// The version a provider's live one replaced, if any.
    pub async fn previous(&self, name: &str) -> Option<Arc<Loaded>> {
        let slot = self.slots.get(name)?;
        slot.previous.lock().await.clone()
    }

    /// Validates `wasm` as a new version of provider `name` and makes it live, here and on
    /// every other replica. Calls already running finish on the version they started
    /// with. Nothing changes when the component is refused.
    pub async fn replace(
        &self,
        name: &str,
        wasm: Arc<[u8]>,
        source: String,
    ) -> Result<Swapped, Refusal> {
        let swapped = self.replace_here(name, wasm, source).await?;
        if !swapped.unchanged() {
            self.publish(name, Some(&swapped.live)).await;
        }
        Ok(swapped)
    }

    /// [`Self::replace`] on this replica only.
    async fn replace_here(
        &self,
        name: &str,
        wasm: Arc<[u8]>,
        source: String,
    ) -> Result<Swapped, Refusal> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| Refusal::ProviderNotFound(name.to_string()))?;
        let mut previous = slot.previous.lock().await;
        let started = Instant::now();
        if let Some(live) = self.get(name)
            && live.sha256 == hex::encode(Sha256::digest(&wasm))
        {
            // Already live (e.g. the providers directory showing an upload just kept).
            return Ok(Swapped {
                live,
                replaced: None,
                elapsed: started.elapsed(),
                cached: true,
            });
        }
        let (loaded, cached) =
            load::version(&self.engine, &self.cache_dir, slot, wasm, source).await?;
        self.keep(&loaded).await;
        let replaced = self.swap_in(Arc::new(loaded));
        *previous = replaced.clone();
        let live = self.get(name).expect("just swapped in");
        tracing::info!(
            provider = %name, version = %live.version, sha256 = %live.sha256,
            replaced = ?replaced.as_ref().map(|r| &r.version), "provider swapped"
        );
        Ok(Swapped {
            live,
            replaced,
            elapsed: started.elapsed(),
            cached,
        })
    }

    /// Makes the version before the live one live again (and the live one the previous),
    /// here and on every other replica.
    pub async fn rollback(&self, name: &str) -> Result<Swapped, Refusal> {
        let swapped = self.rollback_here(name).await?;
        self.publish(name, Some(&swapped.live)).await;
        Ok(swapped)
    }

    async fn rollback_here(&self, name: &str) -> Result<Swapped, Refusal> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| Refusal::ProviderNotFound(name.to_string()))?;
        let mut previous = slot.previous.lock().await;
        let started = Instant::now();
        let target = previous
            .take()
            .ok_or_else(|| Refusal::NoPreviousVersion(name.to_string()))?;
        // A fresh copy, so the rolled-back version starts with a closed breaker.
        let (restored, cached) = load::version(
            &self.engine,
            &self.cache_dir,
            slot,
            target.wasm.clone(),
            target.source.clone(),
        )
        .await?;
        self.keep(&restored).await;
        let replaced = self.swap_in(Arc::new(restored));
        *previous = replaced.clone();
        let live = self.get(name).expect("just swapped in");
        tracing::info!(provider = %name, version = %live.version, sha256 = %live.sha256, "provider rolled back");
        Ok(Swapped {
            live,
            replaced,
            elapsed: started.elapsed(),
            cached,
        })
    }

    /// Takes provider `name` out of service: its kinds are no longer offered (existing
    /// resources answer 503 until it is back). The version is kept as the previous one, so
    /// a rollback (or any upload) brings a provider back; so does a restart. Every replica
    /// follows.
    pub async fn unload(&self, name: &str) -> Result<Arc<Loaded>, Refusal> {
        let removed = self.unload_here(name).await?;
        self.publish(name, None).await;
        Ok(removed)
    }

    async fn unload_here(&self, name: &str) -> Result<Arc<Loaded>, Refusal> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| Refusal::ProviderNotFound(name.to_string()))?;
        let mut previous = slot.previous.lock().await;
        let mut removed = None;
        self.live.rcu(|live| {
            let mut by_name = live.by_name.clone();
            removed = by_name.remove(name);
            Live::index(by_name)
        });
        let removed = removed.ok_or_else(|| Refusal::NotLoaded(name.to_string()))?;
        *previous = Some(removed.clone());
        tracing::info!(provider = %name, version = %removed.version, "provider unloaded");
        Ok(removed)
    }

    /// The configured provider `name`.
    pub fn slot(&self, name: &str) -> Option<&Arc<Slot>> {
        self.slots.get(name)
    }

    /// Writes a version about to go live into the providers directory, so a restart keeps
    /// it (unless it was read from there). A failed write is logged: the swap still happens.
    async fn keep(&self, loaded: &Loaded) {
        let Some(dir) = &self.providers_dir else {
            return;
        };
        let path = dir.join(format!("{}.wasm", loaded.name));
        if loaded.source == path.display().to_string() {
            return;
        }
        let tmp = dir.join(format!(".{}.wasm.tmp", loaded.name));
        let written = async {
            tokio::fs::write(&tmp, &loaded.wasm).await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = written.await {
            tracing::error!(provider = %loaded.name, path = %path.display(), error = %e, "could not keep the new version: a restart will load the old one");
        }
    }

    fn swap_in(&self, loaded: Arc<Loaded>) -> Option<Arc<Loaded>> {
        let name = loaded.name.clone();
        let mut replaced = None;
        self.live.rcu(|live| {
            let mut by_name = live.by_name.clone();
            replaced = by_name.insert(name.clone(), loaded.clone());
            Live::index(by_name)
        });
        replaced
    }
}

async fn load_file(
    engine: &Engine,
    cache_dir: &std::path::Path,
    slot: &Slot,
    path: &std::path::Path,
) -> anyhow::Result<Loaded> {
    let wasm = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (loaded, _) = load::version(
        engine,
        cache_dir,
        slot,
        wasm.into(),
        path.display().to_string(),
    )
    .await?;
    Ok(loaded)
}

impl Loaded {
    /// The bucket this provider is bound to (conformance checks list it).
    pub fn s3(&self) -> Option<&S3Backend> {
        self.bindings.s3.as_ref()
    }

    /// The container engine this provider is bound to, for build logs and log streams.
    pub fn containers(&self) -> Option<&ContainersBackend> {
        self.bindings.containers.as_ref()
    }

    /// Whether the component exports `deployer`.
    pub fn is_deployer(&self) -> bool {
        self.deploy_pre.is_some()
    }

    /// Whether the component exports `objects`.
    pub fn exports_objects(&self) -> bool {
        self.storage_pre.is_some()
    }

    /// The limits every call of this version runs under.
    pub fn sandbox(&self) -> SandboxConfig {
        self.sandbox
    }
}

impl Live {
    fn index(by_name: BTreeMap<String, Arc<Loaded>>) -> Self {
        let by_kind = by_name
            .values()
            .flat_map(|p| p.kinds.iter().map(move |k| (k.clone(), p.clone())))
            .collect();
        Self { by_name, by_kind }
    }
}
