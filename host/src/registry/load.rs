//! Turning bytes into a provider version: compile (or reuse the cached artifact), check it
//! is a component of the contract's world that imports only what its config grants, ask it
//! to describe itself, and pre-link it.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::{Mutex, Semaphore};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::engine;
use super::health::Health;
use super::{Loaded, Slot};
use crate::caps::{
    self, Bindings, Capability, ContainersBackend, MongoBackend, NatsBackend, RedisBackend,
    S3Backend, SignerBackend, SqlBackend,
};
use crate::config::{Config, ProviderConfig};
use crate::contract::ProviderPre;
use crate::contract::deploy::DeployProviderPre;
use crate::contract::storage::StorageProviderPre;
use crate::contract::types::{Creation, KindInfo};
use crate::store::{KeyRing, Store};

/// The contract package, and the versions of it this host links.
const PACKAGE: &str = "instanode:provider";
const CONTRACT_VERSIONS: &[&str] = &["0.3"];

/// Why a component was not loaded. Each case has a stable code for the operator API.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no provider named `{0}` is configured: add a [providers.{0}] section first")]
    ProviderNotFound(String),
    #[error("provider `{0}` has no earlier version to roll back to")]
    NoPreviousVersion(String),
    #[error("provider `{0}` is not loaded")]
    NotLoaded(String),
    #[error("not a WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error("not a component of the instanode:provider world: {0}")]
    WrongWorld(String),
    #[error("{0}")]
    UnsupportedContractVersion(String),
    #[error("{0}")]
    CapabilityNotGranted(String),
    #[error("describe() failed: {0}")]
    DescribeFailed(String),
    #[error("{0}")]
    KindMismatch(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::ProviderNotFound(_) => "provider_not_found",
            Self::NoPreviousVersion(_) => "no_previous_version",
            Self::NotLoaded(_) => "provider_not_loaded",
            Self::InvalidComponent(_) => "invalid_component",
            Self::WrongWorld(_) => "wrong_world",
            Self::UnsupportedContractVersion(_) => "unsupported_contract_version",
            Self::CapabilityNotGranted(_) => "capability_not_granted",
            Self::DescribeFailed(_) => "describe_failed",
            Self::KindMismatch(_) => "kind_mismatch",
        }
    }
}

/// The parts of a configured provider that every version shares: its grants, its backend
/// connections (opened once, not per version) and its instance limit.
pub async fn slot(
    name: &str,
    provider: &ProviderConfig,
    config: &Config,
    store: &Store,
    keys: &Arc<KeyRing>,
) -> anyhow::Result<Slot> {
    let grants = parse_grants(&provider.grants)?;
    let sandbox = config.sandbox.with(provider.sandbox);
    let bindings = Arc::new(bindings(name, provider, &grants, store, keys).await?);
    Ok(Slot {
        name: name.to_string(),
        kinds: provider.kinds.clone(),
        retired_kinds: provider.retired_kinds.clone(),
        grants,
        sandbox,
        bindings,
        instances: Arc::new(Semaphore::new(sandbox.max_instances as usize)),
        previous: Mutex::new(None),
    })
}

/// Compiles and validates `wasm` as a version of `slot`'s provider. Returns the version and
/// whether the compiled artifact came from the cache.
pub async fn version(
    engine: &Engine,
    cache_dir: &Path,
    slot: &Slot,
    wasm: Arc<[u8]>,
    source: String,
) -> Result<(Loaded, bool), Refusal> {
    let compiled = engine::compile(engine, wasm.clone(), cache_dir)
        .await
        .map_err(|e| Refusal::InvalidComponent(format!("{e:#}")))?;
    check_exports(engine, &compiled.component)?;
    check_imports(engine, &compiled.component, &slot.grants)?;
    let linker = caps::linker(engine, &slot.grants)
        .map_err(|e| Refusal::InvalidComponent(format!("{e:#}")))?;
    let instance_pre = linker
        .instantiate_pre(&compiled.component)
        .map_err(|e| Refusal::WrongWorld(format!("{e:#}")))?;
    let pre = ProviderPre::new(instance_pre.clone())
        .map_err(|e| Refusal::WrongWorld(format!("{e:#}")))?;
    let deploy_pre = DeployProviderPre::new(instance_pre.clone()).ok();
    let storage_pre = StorageProviderPre::new(instance_pre).ok();
    let mut loaded = Loaded {
        name: slot.name.clone(),
        version: String::new(),
        kinds: slot.kinds.clone(),
        retired_kinds: slot.retired_kinds.clone(),
        kind_info: Vec::new(),
        sha256: compiled.sha256,
        grants: slot.grants.clone(),
        loaded_at: Utc::now(),
        source,
        health: Health::new(&slot.sandbox),
        wasm,
        pre,
        deploy_pre,
        storage_pre,
        bindings: slot.bindings.clone(),
        sandbox: slot.sandbox,
        instances: slot.instances.clone(),
    };
    let info = loaded
        .describe("load")
        .await
        .map_err(|e| Refusal::DescribeFailed(e.to_string()))?;
    let mut kind_info = Vec::new();
    for kind in &slot.kinds {
        let Some(described) = info.kinds.iter().find(|k| &k.name == kind) else {
            return Err(Refusal::KindMismatch(format!(
                "configured kind `{kind}` is not among the kinds it serves: {:?}",
                info.kinds.iter().map(|k| &k.name).collect::<Vec<_>>()
            )));
        };
        check_kind(described, loaded.deploy_pre.is_some()).map_err(Refusal::DescribeFailed)?;
        kind_info.push(described.clone());
    }
    if info.version.trim().is_empty() || info.version.len() > 64 {
        return Err(Refusal::DescribeFailed(
            "describe() must name a version of 1 to 64 characters".into(),
        ));
    }
    loaded.kind_info = kind_info;
    loaded.version = info.version;
    Ok((loaded, compiled.cached))
}

/// Fields of the create request the host reads itself, which no kind may claim.
const HOST_REQUEST_FIELDS: [&str; 2] = ["name", "env"];

/// Refuses a kind description the host could not offer safely: names that would not fit a
/// route, a tool or an environment variable, or an app kind without `deployer`.
fn check_kind(kind: &KindInfo, exports_deployer: bool) -> Result<(), String> {
    let word = |s: &str| {
        !s.is_empty()
            && s.len() <= 32
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    };
    let name = &kind.name;
    if !word(name) || !word(&kind.label) {
        return Err(format!(
            "kind `{name}` (label `{}`): names and labels are 1-32 of a-z, 0-9, '-' and '_', starting with a letter",
            kind.label
        ));
    }
    let env_var_ok = !kind.env_var.is_empty()
        && kind.env_var.len() <= 64
        && kind.env_var.starts_with(|c: char| c.is_ascii_uppercase())
        && kind
            .env_var
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !env_var_ok {
        return Err(format!(
            "kind `{name}`: env-var `{}` is not an environment variable name (A-Z, 0-9, '_')",
            kind.env_var
        ));
    }
    for field in &kind.request_fields {
        if !word(&field.name) || HOST_REQUEST_FIELDS.contains(&field.name.as_str()) {
            return Err(format!(
                "kind `{name}`: request field `{}` is not allowed",
                field.name
            ));
        }
        let description_ok =
            field.description.len() <= 200 && !field.description.chars().any(char::is_control);
        if !description_ok {
            return Err(format!(
                "kind `{name}`: request field `{}` needs a one-line description of at most 200 characters",
                field.name
            ));
        }
        if field.min_length > field.max_length || field.max_length > 4096 {
            return Err(format!(
                "kind `{name}`: request field `{}` needs min-length <= max-length <= 4096",
                field.name
            ));
        }
    }
    if kind.creation == Creation::BuildContext && !exports_deployer {
        return Err(format!(
            "kind `{name}` is created from a build context, but the component does not export deployer"
        ));
    }
    Ok(())
}

async fn bindings(
    name: &str,
    provider: &ProviderConfig,
    grants: &[Capability],
    store: &Store,
    keys: &Arc<KeyRing>,
) -> anyhow::Result<Bindings> {
    let granted = |capability| grants.contains(&capability);
    Ok(Bindings {
        provider: name.to_string(),
        settings: provider.config.clone(),
        sql: match &provider.sql {
            Some(binding) if granted(Capability::Sql) => Some(SqlBackend::connect_lazy(binding)?),
            _ => None,
        },
        redis: match &provider.redis {
            Some(binding) if granted(Capability::Redis) => Some(RedisBackend::new(binding)?),
            _ => None,
        },
        mongo: match &provider.mongo {
            Some(binding) if granted(Capability::Mongo) => Some(MongoBackend::new(binding).await?),
            _ => None,
        },
        nats: match &provider.nats {
            Some(binding) if granted(Capability::Nats) => {
                Some(NatsBackend::new(binding, keys.clone()))
            }
            _ => None,
        },
        signer: match &provider.signer {
            Some(binding) if granted(Capability::Signer) => {
                let keys_granted = binding
                    .keys
                    .iter()
                    .map(|k| k.parse().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()?;
                Some(SignerBackend::new(keys.clone(), keys_granted))
            }
            _ => None,
        },
        s3: match &provider.s3 {
            Some(binding) if granted(Capability::S3) => Some(S3Backend::new(binding)?),
            _ => None,
        },
        containers: match &provider.containers {
            Some(binding) if granted(Capability::Containers) => {
                Some(ContainersBackend::new(binding, store.clone())?)
            }
            _ => None,
        },
        kv: granted(Capability::Kv).then(|| store.kv(name)),
    })
}

fn parse_grants(grants: &[String]) -> anyhow::Result<Vec<Capability>> {
    let mut parsed = Vec::new();
    for grant in grants {
        let capability: Capability = grant
            .parse()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("grant `{grant}`"))?;
        parsed.push(capability);
    }
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

/// Splits `instanode:provider/sql@0.3.0` into `sql` and its version, refusing contract
/// versions this host does not link.
fn contract_interface(name: &str) -> Result<Option<&str>, Refusal> {
    let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) else {
        return Ok(None);
    };
    let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
    let known = CONTRACT_VERSIONS
        .iter()
        .any(|v| version == *v || version.starts_with(&format!("{v}.")));
    if !known {
        return Err(Refusal::UnsupportedContractVersion(format!(
            "it was built against {PACKAGE}@{version}, which this host does not link; \
             it links {}",
            CONTRACT_VERSIONS
                .iter()
                .map(|v| format!("{PACKAGE}@{v}.x"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Some(interface))
}

/// Refuses a component that does not export the `provisioner` interface.
fn check_exports(engine: &Engine, component: &Component) -> Result<(), Refusal> {
    let mut exports = Vec::new();
    for (export, _) in component.component_type().exports(engine) {
        if contract_interface(export)? == Some("provisioner") {
            return Ok(());
        }
        exports.push(export.to_string());
    }
    Err(Refusal::WrongWorld(format!(
        "it does not export {PACKAGE}/provisioner (its exports: {exports:?}); build it \
         for a world of wit/worlds.wit"
    )))
}

/// Refuses a component that imports a capability it was not granted, or anything that is
/// neither WASI nor part of the contract.
fn check_imports(
    engine: &Engine,
    component: &Component,
    grants: &[Capability],
) -> Result<(), Refusal> {
    for (import, _) in component.component_type().imports(engine) {
        if import.starts_with("wasi:") {
            continue;
        }
        let Some(interface) = contract_interface(import)? else {
            return Err(Refusal::WrongWorld(format!(
                "it imports `{import}`, which is not part of the {PACKAGE} contract"
            )));
        };
        if interface == "types" {
            continue;
        }
        let capability: Capability = interface
            .parse()
            .map_err(|_| Refusal::WrongWorld(format!("it imports unknown interface `{import}`")))?;
        if !capability.is_implicit() && !grants.contains(&capability) {
            return Err(Refusal::CapabilityNotGranted(format!(
                "it imports capability `{capability}`, which its config does not grant \
                 (add \"{capability}\" to its grants to allow it)"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_interfaces_of_known_versions_are_recognised() {
        let interface = |name| contract_interface(name).map_err(|e| e.to_string());
        assert_eq!(interface("instanode:provider/sql@0.3.0"), Ok(Some("sql")));
        assert_eq!(interface("instanode:provider/sql@0.3.7"), Ok(Some("sql")));
        assert_eq!(interface("wasi:io/streams@0.2.0"), Ok(None));
        assert_eq!(interface("other:pkg/sql@0.1.0"), Ok(None));
    }

    #[test]
    fn unknown_contract_versions_are_refused_naming_the_known_ones() {
        for name in [
            // The contract before kinds described themselves.
            "instanode:provider/sql@0.1.0",
            // The contract before start failures had a reason of their own.
            "instanode:provider/sql@0.2.0",
            "instanode:provider/sql@1.0.0",
            "instanode:provider/sql",
            "instanode:provider/sql@0.20.0",
        ] {
            let refusal = contract_interface(name).unwrap_err();
            assert_eq!(refusal.code(), "unsupported_contract_version", "{name}");
            assert!(refusal.to_string().contains("0.3.x"), "{refusal}");
        }
    }
}
