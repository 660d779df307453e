//! Watching the providers directory: a `<name>.wasm` that appears or changes there is
//! loaded as provider `<name>`'s new version, exactly as an upload through the operator
//! API. A refused file is logged once and the live version keeps serving.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::services::Services;

/// What was last seen of one file, so unchanged files are not read again.
#[derive(PartialEq)]
struct Seen {
    modified: SystemTime,
    len: u64,
}

pub async fn spawn(services: Arc<Services>, every: Duration) {
    let Some(dir) = services.registry.providers_dir.clone() else {
        return;
    };
    let mut seen = HashMap::new();
    // The first look happens before the host serves: one started later would take the
    // files it finds for news and undo an upload that came first.
    look_logged(&services, &dir, &mut seen).await;
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(50)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            look_logged(&services, &dir, &mut seen).await;
        }
    });
}

async fn look_logged(services: &Arc<Services>, dir: &Path, seen: &mut HashMap<PathBuf, Seen>) {
    if let Err(e) = look(services, dir, seen).await {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot read the providers directory");
    }
}

async fn look(
    services: &Arc<Services>,
    dir: &Path,
    seen: &mut HashMap<PathBuf, Seen>,
) -> std::io::Result<()> {
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let path = entry.path();
        let Some(name) = provider_name(&path) else {
            continue;
        };
        if services.registry.slot(name).is_none() {
            continue;
        }
        let meta = entry.metadata().await?;
        let now = Seen {
            modified: meta.modified()?,
            len: meta.len(),
        };
        if seen.get(&path) == Some(&now) {
            continue;
        }
        seen.insert(path.clone(), now);
        let wasm: Arc<[u8]> = tokio::fs::read(&path).await?.into();
        let live = services.registry.get(name);
        if live.is_some_and(|live| hex::encode(Sha256::digest(&wasm)) == live.sha256) {
            continue;
        }
        match services
            .registry
            .replace(name, wasm, path.display().to_string())
            .await
        {
            Ok(swapped) => tracing::info!(
                provider = name, version = %swapped.live.version, path = %path.display(),
                "new version from the providers directory is live"
            ),
            Err(refusal) => tracing::error!(
                provider = name, path = %path.display(), code = refusal.code(), error = %refusal,
                "refused a new version from the providers directory; the live version keeps serving"
            ),
        }
    }
    Ok(())
}

/// `postgres.wasm` → `postgres`; hidden and temporary files are ignored.
fn provider_name(path: &Path) -> Option<&str> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (!stem.starts_with('.')).then_some(stem)
}
