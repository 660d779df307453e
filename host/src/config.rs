//! Host configuration: typed settings read from `instanode.toml`, then overridden by
//! `INSTANODE_*` environment variables.
//!
//! Every environment variable `INSTANODE_A__B__C=value` sets the key `a.b.c` (sections are
//! separated by a double underscore, names are lower-cased). A value that parses as a TOML
//! scalar or array (`8080`, `true`, `["a","b"]`) keeps that type; anything else is a string.
//! `INSTANODE_CONFIG` names the file; `INSTANODE_LISTEN`, `INSTANODE_PUBLIC_URL` and
//! `INSTANODE_DATA_DIR` are the usual top-level overrides. Variables whose first segment is
//! not a top-level key (such as `INSTANODE_LOG`, or the scripts' own) are left alone.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The placeholder `jwt_secret` of `instanode.example.toml`.
const EXAMPLE_JWT_SECRET: &str = "change-me-to-something-long-and-random";

/// Everything the host needs to run. See `instanode.example.toml` for every key.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The URL agents reach this host at; used in claim links and docs.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// Where the host keeps compiled components and other local state.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    pub metadata: MetadataConfig,
    pub secrets: SecretsConfig,
    /// Providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// A plans file replacing the built-in tiers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plans: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed: CIDRs, as a list or one comma-separated
    /// string (`INSTANODE_TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1`). None by default.
    #[serde(default, skip_serializing_if = "StringList::is_empty")]
    pub trusted_proxies: StringList,
    /// Requests per minute one client address may make (0 turns the limit off).
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_minute: u32,
    /// Webhook deliveries the host takes per minute across all receivers (0: no ceiling).
    #[serde(default = "default_webhook_deliveries")]
    pub webhook_deliveries_per_minute: u32,
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub testing: TestingConfig,
    #[serde(default)]
    pub apps: AppsConfig,
    /// Outgoing email (claim and sign-in links); without it, those answer 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
    #[serde(default, skip_serializing_if = "BillingConfig::is_unset")]
    pub billing: BillingConfig,
    /// Bearer token of the operator API (`/admin/*`); without it, that API is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// Directory of provider versions: uploads are kept here, and a `<name>.wasm` dropped
    /// here is loaded as provider `<name>`'s new version. Default `<data_dir>/providers`;
    /// an empty string turns it off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub providers_dir: Option<PathBuf>,
    /// How often the providers directory is looked at.
    #[serde(default = "default_providers_poll_ms")]
    pub providers_poll_ms: u64,
    /// HTTPS at the edge; off unless `[tls] listen` is set.
    #[serde(default, skip_serializing_if = "TlsConfig::is_off")]
    pub tls: TlsConfig,
}

/// HTTPS for app URLs, custom domains and the API.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// Where HTTPS is served, e.g. `0.0.0.0:443`. Unset: no HTTPS, nothing else here applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// A PEM certificate chain served for the API's name and any name without a certificate
    /// of its own (with `private_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// The PEM private key of `certificate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PathBuf>,
    /// Keep answering app hosts and custom domains over plain HTTP instead of redirecting them
    /// to HTTPS (ACME challenges are always answered).
    pub keep_http: bool,
    /// The DNS server asked for custom domains' TXT records, e.g. `127.0.0.1:53`. Default: the
    /// machine's resolvers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_resolver: Option<SocketAddr>,
    /// Certificates from an ACME CA; without it only `certificate` is served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme: Option<AcmeConfig>,
}

impl TlsConfig {
    pub fn is_off(&self) -> bool {
        self.listen.is_none()
    }
}

/// The ACME CA certificates come from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeConfig {
    /// The CA's directory URL, e.g. `https://acme-v02.api.letsencrypt.org/directory`.
    pub directory: String,
    /// Contact addresses for the account (`mailto:ops@example.com`).
    #[serde(default)]
    pub contact: Vec<String>,
    /// A PEM root trusted for the CA's own HTTPS (a private or test CA). Default: the public
    /// web roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<PathBuf>,
    /// A command that publishes DNS-01 answers: run as `<command...> set <name> <value>` and
    /// later `<command...> clear <name> <value>`, where name is `_acme-challenge.<domain>.`.
    /// With it the apps domain gets one wildcard certificate; without it each app gets its
    /// own through HTTP-01.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_hook: Vec<String>,
    /// Also get a certificate for `public_url`'s host (through HTTP-01, or DNS-01 with a hook).
    #[serde(default)]
    pub api_certificate: bool,
    /// A certificate is renewed once this share of its lifetime is left.
    #[serde(default = "default_renew_share")]
    pub renew_when_left: f64,
}

fn default_renew_share() -> f64 {
    1.0 / 3.0
}

/// Subscription events from a payment system (`POST /billing/webhook`).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    /// The HMAC-SHA256 key events are signed with; unset, the webhook answers 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
}

impl BillingConfig {
    /// Nothing set: the section is left out of a generated file.
    pub fn is_unset(&self) -> bool {
        self.webhook_secret.is_none()
    }
}

/// The SMTP relay that carries sign-in links.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `smtp://host:port` (plain, for a local relay), `smtp://user:pass@host:587?tls=required`,
    /// or `smtps://user:pass@host`.
    pub smtp_url: Secret,
    /// The sender, e.g. `instanode <no-reply@example.com>`.
    pub from: String,
}

/// Where deployed apps are reached, and how many of them build at once.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppsConfig {
    /// App URL pattern: `*` becomes the app's slug, e.g. `https://*.apps.example.com`.
    /// Default: `http://*.deployment.localhost:<listen port>`, which browsers and curl
    /// resolve to this machine with no DNS setup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Image builds one owner (a team, or an anonymous network) runs at once; more wait.
    pub builds_per_owner: usize,
    /// Image builds the host runs at once, all owners together.
    pub concurrent_builds: usize,
}

impl Default for AppsConfig {
    fn default() -> Self {
        Self {
            url: None,
            builds_per_owner: 2,
            concurrent_builds: 4,
        }
    }
}

impl Config {
    /// The providers directory in effect (see [`Config::providers_dir`]).
    pub fn providers_dir(&self) -> Option<PathBuf> {
        match &self.providers_dir {
            None => Some(self.data_dir.join("providers")),
            Some(dir) if dir.as_os_str().is_empty() => None,
            Some(dir) => Some(dir.clone()),
        }
    }

    /// The app URL pattern in effect (see [`AppsConfig::url`]).
    pub fn apps_url(&self) -> String {
        self.apps
            .url
            .clone()
            .unwrap_or_else(|| format!("http://*.deployment.localhost:{}", self.listen.port()))
    }
}

/// A list that may also be written as one comma-separated string.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(untagged)]
pub enum StringList {
    #[default]
    Empty,
    One(String),
    Many(Vec<String>),
}

impl StringList {
    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    pub fn items(&self) -> Vec<&str> {
        match self {
            Self::Empty => vec![],
            Self::One(s) => s.split(',').collect(),
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// The HTTP listener's defences against slow and greedy clients.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A connection must send a whole request head within this long, or it is closed.
    pub header_read_timeout_ms: u64,
    /// A request body must arrive within this long (uploads included).
    pub body_read_timeout_ms: u64,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 120_000,
            max_connections: 10_000,
        }
    }
}

/// Background lifecycle tasks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// How often the reaper looks for expired, abandoned and half-deleted resources.
    pub reap_interval_secs: u64,
    /// How often each live resource's usage is measured against its limits.
    pub meter_interval_secs: u64,
    /// A provision or delete untouched this long is taken to have died with its host.
    pub stale_after_secs: u64,
    /// How often providers' upkeep (`maintain`: warm pools and the like) runs at least.
    pub maintain_interval_ms: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            reap_interval_secs: 60,
            meter_interval_secs: 60,
            stale_after_secs: 600,
            maintain_interval_ms: 5000,
        }
    }
}

/// The metadata database (resources, provider state).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataConfig {
    pub url: Secret,
    #[serde(default = "default_metadata_pool")]
    pub max_connections: u32,
}

/// Keys the host signs and seals with. Never logged.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// 64 hex characters: the AES-256-GCM key that seals credentials at rest.
    pub seal_key: Secret,
    /// HMAC key for upgrade tokens (HS256).
    pub jwt_secret: Secret,
}

/// One provider component and what it may do.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Path to the `.wasm` component.
    pub component: PathBuf,
    /// Resource kinds this provider serves here (each must be in its `describe().kinds`).
    pub kinds: Vec<String>,
    /// Kinds this provider no longer creates but still looks after: the resources it made
    /// stay its own (redeploys, logs, deletes) while another provider serves the kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired_kinds: Vec<String>,
    /// Capabilities the component may import (`sql`, `kv`, `log`, ...).
    #[serde(default)]
    pub grants: Vec<String>,
    /// Settings the component reads through `config.get`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// The PostgreSQL server behind the `sql` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlBinding>,
    /// The Redis server behind the `redis` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisBinding>,
    /// The MongoDB server behind the `mongo` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mongo: Option<MongoBinding>,
    /// The NATS server behind the `nats` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsBinding>,
    /// The host keys behind the `signer` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerBinding>,
    /// The bucket behind the `s3` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Binding>,
    /// The container engine behind the `containers` capability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containers: Option<ContainersBinding>,
    /// Per-call limits; unset fields take `[sandbox]` values.
    #[serde(default, skip_serializing_if = "SandboxOverrides::is_empty")]
    pub sandbox: SandboxOverrides,
}

/// Connection settings for the `sql` capability.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlBinding {
    /// Admin connection URL (a role allowed to create roles and databases).
    pub url: Secret,
    #[serde(default = "default_sql_pool")]
    pub max_connections: u32,
    /// Server-side cap on each statement, so a stuck statement cannot hold a call forever.
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
}

/// Connection settings for the `redis` capability.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RedisBinding {
    /// Admin URL (`redis://USER:PASS@HOST:PORT`): a user allowed to manage ACLs.
    pub url: Secret,
}

/// Connection settings for the `mongo` capability.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MongoBinding {
    /// Admin URL (`mongodb://USER:PASS@HOST:PORT/?authSource=admin`): a user allowed to
    /// manage users, roles and databases.
    pub url: Secret,
}

/// Connection settings for the `nats` capability.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsBinding {
    /// Server URL (`nats://HOST:PORT`). The server must trust the host's operator: write its
    /// trust settings with `instanode nats-server-config`.
    pub url: String,
}

/// The bucket behind the `s3` capability: any S3-compatible server, addressed path-style.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Binding {
    /// Server URL, e.g. `https://s3.us-east-1.amazonaws.com` or `http://127.0.0.1:59000`.
    pub endpoint: String,
    /// The server as tenants reach it, when that differs from `endpoint` (presigned URLs
    /// sign the host name, so they must name the one tenants use).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_endpoint: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    pub bucket: String,
    /// The host's key; it signs every URL and never reaches a tenant or a component.
    pub access_key: Secret,
    pub secret_key: Secret,
}

/// The Docker Engine behind the `containers` capability.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContainersBinding {
    /// The engine's unix socket.
    #[serde(default = "default_docker_socket")]
    pub socket: String,
    /// Prefix of every container, image and network name the host creates, and the value
    /// of the label that marks them: hosts sharing one engine must use different ones.
    #[serde(default = "default_container_namespace")]
    pub namespace: String,
    /// CPU one image build may use, in thousandths of a core.
    #[serde(default = "default_build_cpu_millis")]
    pub build_cpu_millis: u32,
    /// Processes one image build may run at once (needs the engine's cgroupfs driver and a
    /// host allowed to write `/sys/fs/cgroup`; otherwise builds run uncapped, with a warning).
    #[serde(default = "default_build_pids")]
    pub build_pids: u32,
    /// Registries (`host[:port]`) apps may be deployed from as prebuilt images
    /// (`/deploy/new` with `image=`). Empty: only uploaded build contexts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_registries: Vec<String>,
    /// The registry (`host[:port]`, served without a login) the `services` capability
    /// pushes images to, so every node of the engine's Swarm can pull them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_registry: Option<String>,
    /// Logins for the registries above that ask for one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_logins: Vec<RegistryLogin>,
}

/// A user and password the host presents to one registry (`host[:port]`) when it pulls,
/// pushes, deletes or has the cluster pull. Never handed to a component or a tenant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryLogin {
    pub registry: String,
    pub username: String,
    pub password: Secret,
}

fn default_build_pids() -> u32 {
    512
}

fn default_build_cpu_millis() -> u32 {
    1000
}

fn default_docker_socket() -> String {
    "/var/run/docker.sock".into()
}

fn default_container_namespace() -> String {
    "instanode".into()
}

fn default_region() -> String {
    "us-east-1".into()
}

/// Which host keys the `signer` capability may use.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignerBinding {
    /// Host key names, e.g. `["nats-operator"]`.
    pub keys: Vec<String>,
}

/// Limits applied to every provider call.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// Budget of one call: the guest's own computing, and (with `host_wait_ms`) the wall
    /// clock, host imports included.
    pub call_timeout_ms: u64,
    /// Extra wall-clock time a call may spend waiting in host imports, e.g. a deploy
    /// provider waiting on an image build. Guest computing stays within `call_timeout_ms`.
    #[serde(default)]
    pub host_wait_ms: u64,
    /// Linear memory a component instance may grow to.
    pub memory_mb: u64,
    /// Instances alive at once: across all providers in `[sandbox]` (the pooling
    /// allocator's size), for one provider in `[providers.X.sandbox]`. A call waits for a
    /// free instance within its budget, then fails with 503.
    pub max_instances: u32,
    /// Sandbox failures in a row (traps, timeouts) that open a provider's circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting one trial call through.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
}

fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    30_000
}

/// Per-provider overrides of [`SandboxConfig`].
#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_failures: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_open_ms: Option<u64>,
}

/// Switches that only tests turn on.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestingConfig {
    /// Honour the `X-Instanode-Fault` request header, which fails a provision after a named
    /// saga step. Never enable in production.
    #[serde(default)]
    pub fault_injection: bool,
    /// Serve `/testing/*`: move the clock forward, run the reaper or the meter now.
    /// Never enable in production.
    #[serde(default)]
    pub control_routes: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: 10_000,
            host_wait_ms: 0,
            memory_mb: 64,
            max_instances: 256,
            breaker_failures: default_breaker_failures(),
            breaker_open_ms: default_breaker_open_ms(),
        }
    }
}

impl SandboxOverrides {
    pub fn is_empty(&self) -> bool {
        self.call_timeout_ms.is_none()
            && self.host_wait_ms.is_none()
            && self.memory_mb.is_none()
            && self.max_instances.is_none()
            && self.breaker_failures.is_none()
            && self.breaker_open_ms.is_none()
    }
}

impl SandboxConfig {
    /// These limits with a provider's overrides applied.
    pub fn with(self, overrides: SandboxOverrides) -> Self {
        Self {
            call_timeout_ms: overrides.call_timeout_ms.unwrap_or(self.call_timeout_ms),
            host_wait_ms: overrides.host_wait_ms.unwrap_or(self.host_wait_ms),
            memory_mb: overrides.memory_mb.unwrap_or(self.memory_mb),
            max_instances: overrides
                .max_instances
                .unwrap_or(self.max_instances)
                .min(self.max_instances),
            breaker_failures: overrides.breaker_failures.unwrap_or(self.breaker_failures),
            breaker_open_ms: overrides.breaker_open_ms.unwrap_or(self.breaker_open_ms),
        }
    }
}

/// A string that never prints: connection URLs with passwords, keys.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_public_url() -> String {
    "http://127.0.0.1:8080".into()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(".instanode")
}
fn default_providers_poll_ms() -> u64 {
    1000
}
fn default_rate_limit() -> u32 {
    100
}
fn default_metadata_pool() -> u32 {
    16
}
fn default_sql_pool() -> u32 {
    16
}
fn default_webhook_deliveries() -> u32 {
    600_000
}
fn default_statement_timeout_ms() -> u64 {
    15_000
}

impl Config {
    /// Reads `path` (when given or when `instanode.toml` exists), applies the environment,
    /// and validates the result.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let default_path = Path::new("instanode.toml");
        let path = path.or_else(|| default_path.exists().then_some(default_path));
        let mut value = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<toml::Table>(&text)
                    .with_context(|| format!("{} is not valid TOML", path.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut value, std::env::vars())?;
        let config: Config = toml::Value::Table(value)
            .try_into()
            .context("invalid configuration")?;
        config.validate()?;
        Ok(config)
    }

    /// The example file's secrets are public: a host serving with them would seal every
    /// credential with a known key and accept forged tokens. Only a test host may use them.
    fn refuse_example_secrets(&self) -> anyhow::Result<()> {
        if self.testing.control_routes || self.testing.fault_injection {
            return Ok(());
        }
        if self.secrets.seal_key.expose().bytes().all(|b| b == b'0') {
            bail!(
                "secrets.seal_key is the example's all-zero key; generate one with \
                 `openssl rand -hex 32` (INSTANODE_SECRETS__SEAL_KEY)"
            );
        }
        if self.secrets.jwt_secret.expose() == EXAMPLE_JWT_SECRET {
            bail!(
                "secrets.jwt_secret is the example's placeholder; set a long random one \
                 (INSTANODE_SECRETS__JWT_SECRET)"
            );
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        url::Url::parse(&self.public_url)
            .with_context(|| format!("public_url {:?} is not a URL", self.public_url))?;
        let key = self.secrets.seal_key.expose();
        if key.len() != 64 || hex::decode(key).is_err() {
            bail!("secrets.seal_key must be 64 hexadecimal characters (32 bytes)");
        }
        if self.secrets.jwt_secret.expose().len() < 16 {
            bail!("secrets.jwt_secret must be at least 16 characters");
        }
        self.refuse_example_secrets()?;
        if self.http.max_connections == 0 || self.http.header_read_timeout_ms == 0 {
            bail!("http.max_connections and http.header_read_timeout_ms must be above zero");
        }
        crate::tenancy::client::parse_cidrs(&self.trusted_proxies.items())
            .context("trusted_proxies")?;
        crate::deploy::AppUrls::parse(&self.apps_url()).context("apps.url")?;
        let mut kinds = BTreeMap::new();
        for (name, provider) in &self.providers {
            for kind in &provider.kinds {
                if let Some(other) = kinds.insert(kind.as_str(), name.as_str()) {
                    bail!("kind `{kind}` is served by both providers `{other}` and `{name}`");
                }
            }
            if let Some(kind) = provider
                .retired_kinds
                .iter()
                .find(|k| provider.kinds.contains(k))
            {
                bail!("provider `{name}` lists kind `{kind}` as both served and retired");
            }
            if provider.grants.iter().any(|g| g == "sql") && provider.sql.is_none() {
                bail!("provider `{name}` is granted `sql` but has no [providers.{name}.sql] url");
            }
            if provider.grants.iter().any(|g| g == "mongo") && provider.mongo.is_none() {
                bail!(
                    "provider `{name}` is granted `mongo` but has no [providers.{name}.mongo] url"
                );
            }
            if provider.grants.iter().any(|g| g == "s3") && provider.s3.is_none() {
                bail!("provider `{name}` is granted `s3` but has no [providers.{name}.s3] bucket");
            }
            if provider.grants.iter().any(|g| g == "nats") && provider.nats.is_none() {
                bail!("provider `{name}` is granted `nats` but has no [providers.{name}.nats] url");
            }
            match (
                &provider.signer,
                provider.grants.iter().any(|g| g == "signer"),
            ) {
                (None, true) => bail!(
                    "provider `{name}` is granted `signer` but has no [providers.{name}.signer] keys"
                ),
                (Some(signer), _) => {
                    for key in &signer.keys {
                        key.parse::<crate::store::HostKey>()
                            .map_err(anyhow::Error::msg)
                            .with_context(|| format!("providers.{name}.signer.keys"))?;
                    }
                }
                (None, false) => {}
            }
            if provider.grants.iter().any(|g| g == "containers") && provider.containers.is_none() {
                bail!(
                    "provider `{name}` is granted `containers` but has no [providers.{name}.containers] engine"
                );
            }
            if provider.grants.iter().any(|g| g == "services")
                && provider
                    .containers
                    .as_ref()
                    .is_none_or(|c| c.cluster_registry.is_none())
            {
                bail!(
                    "provider `{name}` is granted `services` but [providers.{name}.containers] has no cluster_registry"
                );
            }
            if provider.grants.iter().any(|g| g == "redis") && provider.redis.is_none() {
                bail!(
                    "provider `{name}` is granted `redis` but has no [providers.{name}.redis] url"
                );
            }
        }
        Ok(())
    }
}

/// The keys of [`Config`], the only ones the environment may set.
const TOP_LEVEL_KEYS: [&str; 20] = [
    "listen",
    "webhook_deliveries_per_minute",
    "http",
    "public_url",
    "data_dir",
    "metadata",
    "secrets",
    "providers",
    "sandbox",
    "plans",
    "trusted_proxies",
    "rate_limit_per_minute",
    "lifecycle",
    "testing",
    "apps",
    "email",
    "billing",
    "admin_token",
    "providers_dir",
    "providers_poll_ms",
];

/// Overlays `INSTANODE_*` variables onto the parsed file.
fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (name, raw) in vars {
        let Some(path) = name.strip_prefix("INSTANODE_") else {
            continue;
        };
        let keys: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        if !TOP_LEVEL_KEYS.contains(&keys[0].as_str()) {
            continue;
        }
        let (last, sections) = keys.split_last().expect("split yields at least one item");
        let mut current = &mut *table;
        for section in sections {
            let entry = current
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry
                .as_table_mut()
                .with_context(|| format!("{name}: `{section}` is not a section"))?;
        }
        current.insert(last.clone(), parse_env_value(&raw));
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table())
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_nested_keys_and_keeps_types() {
        let mut table: toml::Table = toml::from_str("listen = \"127.0.0.1:1\"").unwrap();
        let vars = [
            ("INSTANODE_LISTEN", "127.0.0.1:9"),
            ("INSTANODE_PROVIDERS__POSTGRES__SQL__MAX_CONNECTIONS", "4"),
            ("INSTANODE_METADATA__URL", "postgres://u:p@h/db"),
            ("OTHER", "x"),
            ("INSTANODE_LOG", "debug"),
            ("INSTANODE_TEST_PG_PORT", "1"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        apply_env(&mut table, vars.into_iter()).unwrap();
        assert_eq!(table["listen"].as_str(), Some("127.0.0.1:9"));
        assert_eq!(
            table["providers"]["postgres"]["sql"]["max_connections"].as_integer(),
            Some(4)
        );
        assert_eq!(
            table["metadata"]["url"].as_str(),
            Some("postgres://u:p@h/db")
        );
        assert!(!table.contains_key("other"));
        assert!(!table.contains_key("log") && !table.contains_key("test_pg_port"));
    }

    /// The example file with real secrets in place of its public placeholders.
    fn example_with_secrets() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../instanode.example.toml"),
        )
        .unwrap()
        .replace(&"0".repeat(64), &"5a".repeat(32))
        .replace(EXAMPLE_JWT_SECRET, "a-real-and-long-random-secret")
    }

    #[test]
    fn the_example_secrets_are_refused_outside_test_mode() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../instanode.example.toml");
        let example = std::fs::read_to_string(path).unwrap();
        let config: Config = toml::from_str(&example).unwrap();
        let error = format!("{:#}", config.validate().unwrap_err());
        assert!(error.contains("seal_key"), "{error}");
        let zero_key_fixed = example.replace(&"0".repeat(64), &"5a".repeat(32));
        let config: Config = toml::from_str(&zero_key_fixed).unwrap();
        let error = format!("{:#}", config.validate().unwrap_err());
        assert!(error.contains("jwt_secret"), "{error}");
        let test_mode = example.replace("control_routes = false", "control_routes = true");
        let config: Config = toml::from_str(&test_mode).unwrap();
        config.validate().expect("a test host may use them");
    }

    #[test]
    fn the_example_config_is_valid() {
        let config: Config = toml::from_str(&example_with_secrets()).unwrap();
        config.validate().unwrap();
        assert_eq!(config.rate_limit_per_minute, 100);
        assert!(config.trusted_proxies.items().is_empty());
    }

    #[test]
    fn trusted_proxies_take_a_list_or_a_comma_separated_string() {
        let mut table = toml::Table::new();
        let vars = [("INSTANODE_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        apply_env(&mut table, vars.into_iter()).unwrap();
        let list: StringList = table["trusted_proxies"].clone().try_into().unwrap();
        assert_eq!(list.items(), ["10.0.0.0/8", "127.0.0.1"]);
    }

    #[test]
    fn signer_grants_name_known_host_keys() {
        let base = example_with_secrets();
        let bad = base.replace(r#"keys = ["nats-operator"]"#, r#"keys = ["nats-sytem"]"#);
        let config: Config = toml::from_str(&bad).unwrap();
        let error = format!("{:#}", config.validate().unwrap_err());
        assert!(error.contains("nats-sytem"), "{error}");
        let ungranted = base.replace("[providers.nats.signer]\nkeys = [\"nats-operator\"]\n", "");
        let config: Config = toml::from_str(&ungranted).unwrap();
        assert!(config.validate().is_err(), "signer granted without keys");
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret("hunter2".into());
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }
}
