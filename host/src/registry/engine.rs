//! The wasmtime engine: pooling allocation, epoch interruption, and compiled-artifact cache.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::config::SandboxConfig;

/// How often the epoch advances: the granularity of call deadlines, and how often a
/// running guest yields to other tasks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine shared by every provider. `max_memory_mb` is the largest memory any
/// provider may be granted.
pub fn build(sandbox: &SandboxConfig, max_memory_mb: u64) -> anyhow::Result<Engine> {
    let instances = sandbox.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        // A Rust component holds a few core instances (the program plus adapter shims).
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(usize::try_from(max_memory_mb << 20).context("memory limit too large")?);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)?;
    start_epoch_ticker(engine.clone());
    Ok(engine)
}

fn start_epoch_ticker(engine: Engine) {
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch thread");
}

/// A compiled component and the hash of the bytes it came from.
pub struct Compiled {
    pub component: Component,
    pub sha256: String,
    /// Whether the artifact was read from the cache instead of compiled.
    pub cached: bool,
}

/// Compiles `wasm`, or loads the artifact this host compiled from the same bytes before.
/// Artifacts live in `cache_dir`, named by content hash and engine compatibility.
pub async fn compile(
    engine: &Engine,
    wasm: Arc<[u8]>,
    cache_dir: &Path,
) -> anyhow::Result<Compiled> {
    let sha256 = hex::encode(Sha256::digest(&wasm));
    let mut compat = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut compat);
    let artifact = cache_dir.join(format!("{sha256}-{:016x}.cwasm", compat.finish()));
    let engine = engine.clone();
    let cache_dir = cache_dir.to_path_buf();
    let (component, cached) =
        tokio::task::spawn_blocking(move || load_or_compile(&engine, &wasm, &cache_dir, artifact))
            .await
            .context("compile task panicked")??;
    Ok(Compiled {
        component,
        sha256,
        cached,
    })
}

fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    cache_dir: &Path,
    artifact: PathBuf,
) -> anyhow::Result<(Component, bool)> {
    if artifact.exists() {
        match deserialize_own_artifact(engine, &artifact) {
            Ok(component) => return Ok((component, true)),
            Err(e) => {
                tracing::warn!(path = %artifact.display(), error = %e, "recompiling a bad cached artifact")
            }
        }
    }
    let component = Component::new(engine, wasm)
        .map_err(|e| anyhow::anyhow!("not a valid WebAssembly component: {e:#}"))?;
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let bytes = component.serialize()?;
    // Write then rename, so a concurrent reader never sees half an artifact.
    let tmp = artifact.with_extension(format!(
        "tmp{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, &artifact)?;
    Ok((component, false))
}

#[expect(
    unsafe_code,
    reason = "deserializing native code is unsafe; see the safety note"
)]
fn deserialize_own_artifact(engine: &Engine, artifact: &Path) -> anyhow::Result<Component> {
    // SAFETY: the file is an artifact this host serialized into its own data directory
    // (named by the hash of the source and the engine's compatibility hash). Untrusted
    // bytes only ever go through `Component::new`.
    Ok(unsafe { Component::deserialize_file(engine, artifact)? })
}
