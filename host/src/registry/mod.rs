//! The provider registry: loads, validates and serves provider components.
//!
//! Each provider is loaded once (compiled and cached by content hash), checked against its
//! config (imports only granted capabilities, `describe()` answers with the configured
//! kinds), and kept as a pre-linked [`Loaded`]. The live set is one `ArcSwap`: replacing a
//! provider later is a single atomic pointer change, and calls already running keep the
//! version they started with.

pub mod bindings;
mod call;
mod engine;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::caps::{
    self, Bindings, Capability, ContainersBackend, MongoBackend, NatsBackend, RedisBackend,
    S3Backend, SignerBackend, SqlBackend,
};
use crate::config::{Config, ProviderConfig, SandboxConfig};
use crate::store::{KeyRing, Store};
use bindings::ProviderPre;
use bindings::deploy::DeployProviderPre;

pub use call::CallError;

/// One loaded provider version.
pub struct Loaded {
    pub name: String,
    pub version: String,
    pub kinds: Vec<String>,
    pub sha256: String,
    pub grants: Vec<Capability>,
    pub loaded_at: DateTime<Utc>,
    pre: ProviderPre<caps::HostState>,
    /// Set when the component also exports `deployer`.
    deploy_pre: Option<DeployProviderPre<caps::HostState>>,
    bindings: Arc<Bindings>,
    sandbox: SandboxConfig,
}

/// The live providers, by name and by kind.
struct Live {
    by_name: BTreeMap<String, Arc<Loaded>>,
    by_kind: HashMap<String, Arc<Loaded>>,
}

pub struct Registry {
    live: ArcSwap<Live>,
}

impl Registry {
    /// Loads every configured provider; any bad one stops the start with its reason.
    pub async fn load(config: &Config, store: &Store, keys: Arc<KeyRing>) -> anyhow::Result<Self> {
        let max_memory = config
            .providers
            .values()
            .map(|p| config.sandbox.with(p.sandbox).memory_mb)
            .max()
            .unwrap_or(config.sandbox.memory_mb);
        let engine = engine::build(&config.sandbox, max_memory)?;
        let cache_dir = config.data_dir.join("cache");
        let mut by_name = BTreeMap::new();
        for (name, provider) in &config.providers {
            let loaded = load_provider(&engine, name, provider, config, store, &keys, &cache_dir)
                .await
                .with_context(|| format!("provider `{name}` refused"))?;
            tracing::info!(
                provider = %loaded.name, version = %loaded.version, kinds = ?loaded.kinds,
                sha256 = %loaded.sha256, "provider loaded"
            );
            by_name.insert(name.clone(), Arc::new(loaded));
        }
        Ok(Self {
            live: ArcSwap::from_pointee(Live::index(by_name)),
        })
    }

    /// The provider serving `kind`, pinned for the duration of the caller's work.
    pub fn for_kind(&self, kind: &str) -> Option<Arc<Loaded>> {
        self.live.load().by_kind.get(kind).cloned()
    }

    /// Every live provider.
    pub fn all(&self) -> Vec<Arc<Loaded>> {
        self.live.load().by_name.values().cloned().collect()
    }
}

impl Loaded {
    /// The bucket this provider is bound to, for URLs the host presigns on its behalf.
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

async fn load_provider(
    engine: &Engine,
    name: &str,
    provider: &ProviderConfig,
    config: &Config,
    store: &Store,
    keys: &Arc<KeyRing>,
    cache_dir: &Path,
) -> anyhow::Result<Loaded> {
    let grants = parse_grants(&provider.grants)?;
    let wasm = tokio::fs::read(&provider.component)
        .await
        .with_context(|| format!("cannot read {}", provider.component.display()))?;
    let compiled = engine::compile(engine, wasm, cache_dir).await?;
    check_imports(engine, &compiled.component, &grants)?;
    let linker = caps::linker(engine, &grants)?;
    let instance_pre = linker.instantiate_pre(&compiled.component)?;
    let pre = ProviderPre::new(instance_pre.clone())?;
    let deploy_pre = DeployProviderPre::new(instance_pre).ok();
    let bindings = Arc::new(Bindings {
        provider: name.to_string(),
        settings: provider.config.clone(),
        sql: match (&provider.sql, grants.contains(&Capability::Sql)) {
            (Some(binding), true) => Some(SqlBackend::connect_lazy(binding)?),
            _ => None,
        },
        redis: match (&provider.redis, grants.contains(&Capability::Redis)) {
            (Some(binding), true) => Some(RedisBackend::new(binding)?),
            _ => None,
        },
        mongo: match (&provider.mongo, grants.contains(&Capability::Mongo)) {
            (Some(binding), true) => Some(MongoBackend::new(binding).await?),
            _ => None,
        },
        nats: match (&provider.nats, grants.contains(&Capability::Nats)) {
            (Some(binding), true) => Some(NatsBackend::new(binding, keys.clone())),
            _ => None,
        },
        signer: match (&provider.signer, grants.contains(&Capability::Signer)) {
            (Some(binding), true) => {
                let granted = binding
                    .keys
                    .iter()
                    .map(|k| k.parse().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()?;
                Some(SignerBackend::new(keys.clone(), granted))
            }
            _ => None,
        },
        s3: match (&provider.s3, grants.contains(&Capability::S3)) {
            (Some(binding), true) => Some(S3Backend::new(binding)?),
            _ => None,
        },
        containers: match (
            &provider.containers,
            grants.contains(&Capability::Containers),
        ) {
            (Some(binding), true) => Some(ContainersBackend::new(binding, store.clone())?),
            _ => None,
        },
        kv: grants.contains(&Capability::Kv).then(|| store.kv(name)),
    });
    let mut loaded = Loaded {
        name: name.to_string(),
        version: String::new(),
        kinds: provider.kinds.clone(),
        sha256: compiled.sha256,
        grants,
        loaded_at: Utc::now(),
        pre,
        deploy_pre,
        bindings,
        sandbox: config.sandbox.with(provider.sandbox),
    };
    let info = loaded.describe("load").await.context("describe() failed")?;
    if let Some(kind) = provider.kinds.iter().find(|k| !info.kinds.contains(k)) {
        bail!(
            "configured kind `{kind}` is not among the kinds it serves: {:?}",
            info.kinds
        );
    }
    loaded.version = info.version;
    Ok(loaded)
}

fn parse_grants(grants: &[String]) -> anyhow::Result<Vec<Capability>> {
    let mut parsed = Vec::new();
    for grant in grants {
        let capability: Capability = grant.parse().map_err(anyhow::Error::msg)?;
        parsed.push(capability);
    }
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

/// Refuses a component that imports a capability it was not granted, or anything that is
/// neither WASI nor part of the contract.
fn check_imports(
    engine: &Engine,
    component: &Component,
    grants: &[Capability],
) -> anyhow::Result<()> {
    for (import, _) in component.component_type().imports(engine) {
        if import.starts_with("wasi:") {
            continue;
        }
        let Some(interface) = import.strip_prefix("instanode:provider/") else {
            bail!("it imports `{import}`, which is not part of the instanode:provider contract");
        };
        let interface = interface.split('@').next().unwrap_or(interface);
        if interface == "types" {
            continue;
        }
        let capability: Capability = interface
            .parse()
            .map_err(|_| anyhow::anyhow!("it imports unknown interface `{import}`"))?;
        if !capability.is_implicit() && !grants.contains(&capability) {
            bail!(
                "it imports capability `{capability}`, which its config does not grant \
                 (add \"{capability}\" to its grants to allow it)"
            );
        }
    }
    Ok(())
}
