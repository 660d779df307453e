//! A NATS server per test host. Each host makes its own operator and system keys in its
//! fresh metadata database, so the server that trusts them is started after the host's
//! files exist: `instanode nats-server-config` prints the trust lines, the rest is the same
//! operator-mode setup `scripts/lib.sh` writes (full resolver, JetStream).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// A test NATS server: its client and monitoring ports and its JetStream capacity.
#[derive(Debug, Clone, Copy)]
pub struct NatsSpec {
    pub client: u16,
    pub http: u16,
    /// JetStream file storage the server may reserve for accounts, in MiB. Every account
    /// reserves its whole allowance, so this caps how many accounts it takes.
    pub max_file_store_mb: u64,
}

impl NatsSpec {
    pub fn free() -> Self {
        Self {
            client: super::free_port().expect("a free port"),
            http: super::free_port().expect("a free port"),
            max_file_store_mb: 64 * 1024,
        }
    }

    /// Whether a server already listens on the client port.
    pub fn in_use(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.client)).is_ok()
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client)
    }
}

/// A running NATS server. Killed on drop; its directory stays for inspection.
pub struct TestNats {
    pub ports: NatsSpec,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl TestNats {
    /// Writes the server config next to the host config at `host_config` and starts it.
    pub async fn start(host_config: &Path, ports: NatsSpec) -> anyhow::Result<Self> {
        let dir = host_config
            .parent()
            .context("host config has a directory")?
            .join("nats");
        std::fs::create_dir_all(dir.join("accounts"))?;
        let trust = Command::new(super::env("INSTANODE_BIN"))
            .arg("--config")
            .arg(host_config)
            .arg("nats-server-config")
            .output()
            .await?;
        if !trust.status.success() {
            bail!(
                "nats-server-config failed: {}",
                String::from_utf8_lossy(&trust.stderr)
            );
        }
        std::fs::write(dir.join("trust.conf"), &trust.stdout)?;
        std::fs::write(
            dir.join("nats.conf"),
            format!(
                "listen: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\nserver_name: test\nmax_payload: 1MB\n\
                 log_file: {:?}\n\
                 jetstream {{\n  store_dir: {:?}\n  max_file_store: {}MB\n  max_memory_store: 16MB\n}}\n\
                 resolver {{\n  type: full\n  dir: {:?}\n  allow_delete: true\n  timeout: \"1s\"\n}}\n\
                 include \"trust.conf\"\n",
                ports.client,
                ports.http,
                dir.join("nats.log"),
                dir.join("jetstream"),
                ports.max_file_store_mb,
                dir.join("accounts"),
            ),
        )?;
        let mut nats = Self {
            ports,
            dir,
            child: None,
        };
        nats.spawn().await?;
        Ok(nats)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(self.dir.join("nats.conf"))
            .kill_on_drop(true)
            .spawn()
            .context("spawning nats-server")?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if self.healthy().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "nats-server did not become healthy; see {}",
            self.dir.display()
        )
    }

    /// Stops the server gracefully (SIGTERM) and waits for it to exit.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and waits for it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.spawn().await
    }

    /// `/healthz?js-enabled-only=true` answers 200.
    pub async fn healthy(&self) -> bool {
        let url = format!(
            "http://127.0.0.1:{}/healthz?js-enabled-only=true",
            self.ports.http
        );
        reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Public keys of the accounts the resolver stores.
    pub fn stored_accounts(&self) -> Vec<String> {
        names_in(&self.dir.join("accounts"), ".jwt")
    }

    /// Accounts with JetStream data on disk.
    pub fn accounts_with_jetstream_data(&self) -> Vec<String> {
        names_in(&self.dir.join("jetstream").join("jetstream"), "")
    }
}

fn names_in(dir: &Path, suffix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_string))
        .filter(|n| n.starts_with('A'))
        .collect()
}

/// Logs in to `url` with a `.creds` file, as a tenant's client would, and proves the login
/// with a round trip.
pub async fn login(url: &str, creds: &str) -> Result<async_nats::Client, String> {
    let options = async_nats::ConnectOptions::with_credentials(creds)
        .map_err(|e| e.to_string())?
        .connection_timeout(Duration::from_secs(2));
    let client = tokio::time::timeout(Duration::from_secs(5), options.connect(url))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(3), client.flush()).await {
        Ok(Ok(())) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("login not confirmed".into()),
    }
}
