//! A cgroup per image build that caps its processes. The engine's build API takes no pids
//! limit, but it starts every build step under the parent cgroup it is given
//! (`cgroupparent`, with the engine's cgroupfs driver), and that parent's `pids.max` holds.

use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Where build cgroups live, below the root of the pids hierarchy.
const BUILDS: &str = "instanode-builds";
/// Longer than any build may run.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// One build's cgroup, removed when dropped (once its steps are gone).
pub struct BuildCgroup {
    dir: PathBuf,
    /// The engine's `cgroupparent` for this build.
    pub parent: String,
}

impl BuildCgroup {
    /// Makes `<builds>/<name>` with at most `pids` processes.
    pub fn create(name: &str, pids: u32) -> std::io::Result<Self> {
        let root = Path::new(CGROUP_ROOT);
        // cgroup v2 has one hierarchy; v1 a pids hierarchy of its own.
        let unified = root.join("cgroup.controllers").exists();
        let base = if unified {
            root.to_path_buf()
        } else {
            root.join("pids")
        };
        let builds = base.join(BUILDS);
        std::fs::create_dir_all(&builds)?;
        if unified {
            // A v2 child gets the pids controller only when each ancestor hands it down.
            std::fs::write(root.join("cgroup.subtree_control"), "+pids")?;
            std::fs::write(builds.join("cgroup.subtree_control"), "+pids")?;
        }
        // Cgroups of builds that ended while a step was still inside, once no build could
        // still be using them (builds of other hosts share this directory).
        for entry in std::fs::read_dir(&builds)?.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at.elapsed().is_ok_and(|age| age > STALE_AFTER));
            if stale && entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir(entry.path());
            }
        }
        let dir = builds.join(name);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("pids.max"), pids.to_string())?;
        if unified {
            std::fs::write(dir.join("cgroup.subtree_control"), "+pids")?;
        }
        Ok(Self {
            dir,
            parent: format!("/{BUILDS}/{name}"),
        })
    }

    /// Waits (at most `limit`) until no process of the build is left. The engine stops a
    /// build whose request was dropped on its own time, so a step may outlive the request.
    pub async fn wait_empty(&self, limit: std::time::Duration) {
        let processes = || {
            std::fs::read_to_string(self.dir.join("pids.current"))
                .ok()
                .and_then(|n| n.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let deadline = tokio::time::Instant::now() + limit;
        while processes() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        // Fails while a step's cgroup is still inside; an empty directory left is harmless.
        let _ = std::fs::remove_dir(&self.dir);
    }
}
