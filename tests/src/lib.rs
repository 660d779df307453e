//! The harness every end-to-end test uses: it starts the real `instanode` binary against the
//! real PostgreSQL cluster that `scripts/test` runs, with a fresh metadata database per
//! host, and talks to it over HTTP like an agent.
//!
//! `scripts/test` exports what the harness needs: `INSTANODE_BIN`, `INSTANODE_TEST_REDIS_URL`,
//! `INSTANODE_TEST_REDIS_PORT`, `INSTANODE_TEST_MONGO_URL`, `INSTANODE_TEST_MONGO_PORT`,
//! `INSTANODE_TEST_PYTHON`, `INSTANODE_TEST_S3_ENDPOINT`, `INSTANODE_TEST_S3_BUCKET`,
//! `INSTANODE_TEST_S3_ACCESS_KEY`, `INSTANODE_TEST_S3_SECRET_KEY`,
//! `INSTANODE_TEST_PG_SUPERUSER_URL`, `INSTANODE_TEST_PG_HOST`, `INSTANODE_TEST_PG_PORT`,
//! `INSTANODE_TEST_PROVIDERS_DIR` and `INSTANODE_TEST_DATA_DIR`. NATS servers are started per
//! test host (see [`nats`]), since each trusts one host's keys.

pub mod acme;
pub mod deploy;
pub mod mail;
pub mod nats;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use instanode::api::schema::{
    ApiKeyCreated, Created, ErrorBody, LinkSent, Provider, Providers, RoundReport, Session,
};
use instanode::config::ProviderConfig;
use instanode::lifecycle::meter::MeterReport;
use instanode::lifecycle::reaper::ReapReport;
use instanode::local_config;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use tokio::process::{Child, Command};

pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run the tests through ./scripts/test"))
}

/// The superuser URL of the test cluster (for setup and for checking the real server).
pub fn superuser_url() -> String {
    env("INSTANODE_TEST_PG_SUPERUSER_URL")
}

/// A superuser connection to `database` on the test cluster.
pub async fn superuser(database: &str) -> PgConnection {
    let url = with_database(&superuser_url(), database);
    PgConnection::connect(&url)
        .await
        .expect("superuser connection to the test cluster")
}

/// `url` pointing at another database.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database path");
    format!("{base}/{database}")
}

/// One provider entry of a test host's config, built with the host's own config builders
/// (`instanode::local_config`), so tests and `instanode config local` write one shape.
pub struct ProviderSpec {
    pub name: &'static str,
    /// File name under `INSTANODE_TEST_PROVIDERS_DIR`.
    pub component: &'static str,
    /// The `[providers.<name>]` table.
    pub config: ProviderConfig,
    /// For the nats provider: the server to start for the host (see [`nats::TestNats`]).
    pub nats: Option<nats::NatsSpec>,
}

/// The path of a built component under `INSTANODE_TEST_PROVIDERS_DIR`.
fn component_path(file: &str) -> PathBuf {
    PathBuf::from(env("INSTANODE_TEST_PROVIDERS_DIR")).join(file)
}

fn port_of(text: &str) -> u16 {
    text.parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a port"))
}

impl ProviderSpec {
    fn new(name: &'static str, component: &'static str, config: ProviderConfig) -> Self {
        Self {
            name,
            component,
            config,
            nats: None,
        }
    }

    /// The postgres provider bound to the test cluster, serving `kinds`.
    pub fn postgres(kinds: &'static [&'static str]) -> Self {
        Self::postgres_on(kinds, &superuser_url(), &env("INSTANODE_TEST_PG_PORT"))
    }

    /// The postgres provider bound to another cluster (superuser `url`, tenants on `port`).
    pub fn postgres_on(kinds: &'static [&'static str], url: &str, port: &str) -> Self {
        let mut config = local_config::postgres(
            component_path("postgres.wasm"),
            kinds,
            url,
            &env("INSTANODE_TEST_PG_HOST"),
            port_of(port),
        );
        // DROP DATABASE waits for a checkpoint, which tests running side by side (and
        // image builds) on a small machine can stretch past the default budgets.
        if let Some(sql) = config.sql.as_mut() {
            sql.statement_timeout_ms = 30_000;
        }
        config.sandbox.call_timeout_ms = Some(45_000);
        Self::new("postgres", "postgres.wasm", config)
    }

    /// Adds a provider setting (`config.get` in the component).
    /// The same provider keeping only the resources it made: its kinds are retired.
    pub fn retired(mut self) -> Self {
        self.config.retired_kinds = std::mem::take(&mut self.config.kinds);
        self
    }

    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.config.config.insert(key.into(), value.into());
        self
    }

    /// The redis provider bound to the test Redis server (kind `cache`).
    pub fn redis() -> Self {
        Self::redis_on(
            &env("INSTANODE_TEST_REDIS_URL"),
            &env("INSTANODE_TEST_REDIS_PORT"),
        )
    }

    /// The redis provider bound to another Redis server (admin `url`, tenants on `port`).
    pub fn redis_on(url: &str, port: &str) -> Self {
        Self::new(
            "redis",
            "redis.wasm",
            local_config::redis(
                component_path("redis.wasm"),
                url,
                &env("INSTANODE_TEST_PG_HOST"),
                port_of(port),
            ),
        )
    }

    /// The mongo provider bound to the test MongoDB-wire server (kind `nosql`).
    pub fn mongo() -> Self {
        Self::mongo_on(
            &env("INSTANODE_TEST_MONGO_URL"),
            &env("INSTANODE_TEST_MONGO_PORT"),
        )
    }

    /// The mongo provider bound to another MongoDB-wire server (admin `url`, tenants on
    /// `port`).
    pub fn mongo_on(url: &str, port: &str) -> Self {
        Self::new(
            "mongo",
            "mongo.wasm",
            local_config::mongo(
                component_path("mongo.wasm"),
                url,
                &env("INSTANODE_TEST_PG_HOST"),
                port_of(port),
            ),
        )
    }

    /// The nats provider (kind `queue`) with a NATS server of its own, started with the host.
    pub fn nats() -> Self {
        Self::nats_on(nats::NatsSpec::free())
    }

    /// The nats provider bound to the server on `ports` (one a test already runs, when the
    /// host is a replacement).
    pub fn nats_on(ports: nats::NatsSpec) -> Self {
        Self {
            nats: Some(ports),
            ..Self::new(
                "nats",
                "nats.wasm",
                local_config::nats(component_path("nats.wasm"), ports.client),
            )
        }
    }

    /// The spaces provider (kind `storage`) bound to the test S3 server's bucket.
    pub fn spaces() -> Self {
        Self::spaces_on(
            &env("INSTANODE_TEST_S3_ENDPOINT"),
            &env("INSTANODE_TEST_S3_BUCKET"),
            &env("INSTANODE_TEST_S3_ACCESS_KEY"),
            &env("INSTANODE_TEST_S3_SECRET_KEY"),
        )
    }

    /// The spaces provider bound to `bucket` on another S3 server.
    pub fn spaces_on(endpoint: &str, bucket: &str, access_key: &str, secret_key: &str) -> Self {
        Self::new(
            "spaces",
            "spaces.wasm",
            local_config::spaces(
                component_path("spaces.wasm"),
                endpoint,
                bucket,
                access_key,
                secret_key,
            ),
        )
    }

    /// The deploy provider (kind `deploy`) on the machine's Docker Engine, in a namespace
    /// of its own (see [`deploy::namespace_of`]).
    pub fn deploy() -> Self {
        Self::deploy_in(&format!(
            "it{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ))
    }

    /// The deploy provider in container namespace `namespace`: replicas of one host share it.
    pub fn deploy_in(namespace: &str) -> Self {
        let mut config = local_config::deploy(component_path("deploy.wasm"), namespace);
        if let Some(containers) = config.containers.as_mut() {
            containers.allowed_registries = vec![env("INSTANODE_TEST_REGISTRY")];
            containers.registry_logins = vec![registry_login()];
        }
        config.sandbox.host_wait_ms = Some(900_000);
        Self::new("deploy", "deploy.wasm", config).setting("start_timeout_seconds", "30")
    }

    /// The Swarm deploy provider (kind `deploy`) on the machine's single-node Swarm, in a
    /// namespace of its own, pushing images to the test registry and running `replicas`
    /// tasks per app.
    pub fn swarm(replicas: u32) -> Self {
        Self::swarm_in(
            &format!("sw{}", &uuid::Uuid::new_v4().simple().to_string()[..10]),
            replicas,
        )
    }

    /// The Swarm deploy provider in namespace `namespace` (which must start with `sw`, so test
    /// cleanup finds its services): replicas of one host share it.
    pub fn swarm_in(namespace: &str, replicas: u32) -> Self {
        let registry = env("INSTANODE_TEST_REGISTRY");
        let mut config = local_config::swarm(component_path("swarm.wasm"), namespace, &registry);
        if let Some(containers) = config.containers.as_mut() {
            containers.allowed_registries = vec![registry];
            containers.registry_logins = vec![registry_login()];
        }
        config.grants.push("kv".into());
        config.sandbox.host_wait_ms = Some(900_000);
        Self::new("swarm", "swarm.wasm", config)
            .setting("start_timeout_seconds", "60")
            .setting("replicas", &replicas.to_string())
            .setting("drain_seconds", "3")
    }

    /// The misbehaving test provider, serving `kinds`.
    pub fn testing(kinds: &'static [&'static str]) -> Self {
        Self::new(
            "testing",
            "testing.wasm",
            local_config::provider(component_path("testing.wasm"), kinds, &["kv", "log"]),
        )
    }

    /// The example provider (kind `schema`) bound to the test cluster's `postgres` database;
    /// `fault` breaks it on purpose (`adopt`, `deprovision-twice` or `suspend`: see
    /// `providers/example`).
    pub fn example(fault: Option<&str>) -> Self {
        Self::example_in(fault, "postgres")
    }

    /// The example provider keeping its schemas in `database` of the test cluster (tenants
    /// connect there too, so it must allow them to: the cluster's `postgres` does not).
    pub fn example_in(fault: Option<&str>, database: &str) -> Self {
        let mut config = local_config::postgres(
            component_path("example.wasm"),
            &["schema"],
            &with_database(&superuser_url(), database),
            &env("INSTANODE_TEST_PG_HOST"),
            port_of(&env("INSTANODE_TEST_PG_PORT")),
        );
        config.config.insert("database".into(), database.into());
        if let Some(fault) = fault {
            config.config.insert("fault".into(), fault.into());
        }
        Self::new("example", "example.wasm", config)
    }
}

/// The operator API token of every test host, and its `Authorization` value.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ADMIN_BEARER: &str = "Bearer test-admin-token-0123456789";

/// A built component under `INSTANODE_TEST_PROVIDERS_DIR` (e.g. `postgres.wasm`,
/// `variants/postgres-next.wasm`).
/// The test registry's login (`scripts/lib.sh`, `start_registry`).
pub fn registry_login() -> instanode::config::RegistryLogin {
    instanode::config::RegistryLogin {
        registry: env("INSTANODE_TEST_REGISTRY"),
        username: env("INSTANODE_TEST_REGISTRY_USER"),
        password: instanode::config::Secret::new(env("INSTANODE_TEST_REGISTRY_PASSWORD")),
    }
}

pub fn component_bytes(file: &str) -> Vec<u8> {
    let path = PathBuf::from(env("INSTANODE_TEST_PROVIDERS_DIR")).join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// How to start a test host.
pub struct HostOptions {
    pub providers: Vec<ProviderSpec>,
    pub fault_injection: bool,
    /// Serve `/testing/*` (clock, reaper, meter).
    pub control_routes: bool,
    /// Believe `X-Forwarded-For` from 127.0.0.1 (the harness's way to play many clients).
    pub trust_local_proxy: bool,
    /// Share an existing metadata database (another replica's) instead of a fresh one.
    pub metadata_db: Option<String>,
    /// The superuser URL of the server holding the metadata database (default: the test
    /// cluster), e.g. one a test stops and starts.
    pub metadata_server: Option<String>,
    /// Extra top-level TOML (e.g. a `[sandbox]` section).
    pub extra: String,
    /// The HTTP port to listen on (default: a free one), when something must know it first.
    pub port: Option<u16>,
}

impl HostOptions {
    /// The defaults with `provider` as the only provider.
    pub fn only(provider: ProviderSpec) -> Self {
        Self::of(vec![provider])
    }

    /// The defaults with these providers.
    pub fn of(providers: Vec<ProviderSpec>) -> Self {
        Self {
            providers,
            ..Self::default()
        }
    }

    /// Databases (`db`, `vector`) and deploys: what apps that need a database run on.
    pub fn databases_and_deploy() -> Self {
        Self::of(vec![
            ProviderSpec::postgres(&["db", "vector"]),
            ProviderSpec::deploy(),
        ])
    }
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            providers: vec![ProviderSpec::postgres(&["db", "vector"])],
            fault_injection: false,
            control_routes: true,
            trust_local_proxy: true,
            metadata_db: None,
            metadata_server: None,
            extra: String::new(),
            port: None,
        }
    }
}

/// A running host with its own metadata database. Killed on drop; its directory (config,
/// log) stays behind for inspection.
pub struct TestHost {
    pub url: String,
    pub dir: PathBuf,
    pub metadata_db: String,
    /// The superuser URL of the server holding `metadata_db`.
    pub metadata_server: String,
    pub http: reqwest::Client,
    /// The NATS server started with this host, if its config has the nats provider and the
    /// server was not already running.
    pub nats: Option<nats::TestNats>,
    child: Child,
    /// Hands every request without its own `X-Forwarded-For` a distinct /24, so tests do
    /// not run into each other's caps; tests of caps send their own.
    next_client: AtomicU32,
}

impl Drop for TestHost {
    /// Removes what the host's deploys left on the machine's engine (containers, images,
    /// networks), so test runs do not use up the engine's network address pools.
    fn drop(&mut self) {
        let config = std::fs::read_to_string(self.dir.join("instanode.toml")).unwrap_or_default();
        for namespace in config
            .lines()
            .filter_map(|l| l.strip_prefix("namespace = "))
            .map(|n| n.trim_matches('"'))
        {
            deploy::remove_namespace(namespace);
        }
    }
}

/// A test host's directory (config, log) and its fresh metadata database.
pub struct HostFiles {
    pub dir: PathBuf,
    pub metadata_db: String,
    pub metadata_server: String,
}

impl HostFiles {
    /// Creates the metadata database and writes `instanode.toml` for a host on `port`.
    pub async fn create(options: &HostOptions, port: u16) -> anyhow::Result<Self> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let metadata_server = options
            .metadata_server
            .clone()
            .unwrap_or_else(superuser_url);
        let metadata_db = match &options.metadata_db {
            Some(shared) => shared.clone(),
            None => {
                let fresh = format!("meta_{id}");
                sqlx::query(&format!("CREATE DATABASE \"{fresh}\""))
                    .execute(&mut PgConnection::connect(&metadata_server).await?)
                    .await?;
                fresh
            }
        };
        let dir = PathBuf::from(env("INSTANODE_TEST_DATA_DIR"))
            .join("hosts")
            .join(&id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("instanode.toml"),
            render_config(
                options,
                &dir,
                port,
                &with_database(&metadata_server, &metadata_db),
            ),
        )?;
        Ok(Self {
            dir,
            metadata_db,
            metadata_server,
        })
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("instanode.toml")
    }
}

/// A process's resident memory in KiB (from `/proc`; 0 once it has exited).
pub fn rss_kib_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// An HTTP answer, body parsed as JSON (or `Null`). Read it as the API's answer types
/// (`instanode::api::schema`) with [`json`](Self::json), [`expect`](Self::expect) and
/// [`error`](Self::error); `body` stays for answers a test inspects beyond their type.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The body as `T`; panics with the body when it is not one.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        T::deserialize(&self.body).unwrap_or_else(|e| {
            panic!(
                "the {} answer is not a {}: {e}; body {}",
                self.status,
                std::any::type_name::<T>(),
                self.body
            )
        })
    }

    /// Asserts the status, then reads the body as `T`.
    pub fn expect<T: DeserializeOwned>(&self, status: u16) -> T {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        self.json()
    }

    /// The body as the error envelope.
    pub fn error(&self) -> ErrorBody {
        self.json()
    }
}

/// A provider's own field of a created resource (`Created::provider_fields`): `key_prefix`,
/// or `credentials.creds_file` for one nested under `credentials`.
pub trait ProviderFields {
    fn field(&self, name: &str) -> &str;
}

impl ProviderFields for Created {
    fn field(&self, name: &str) -> &str {
        let mut path = name.split('.');
        let first = path.next().unwrap_or_default();
        path.fold(self.provider_fields.get(first), |value, part| {
            value.and_then(|v| v.get(part))
        })
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no provider field {name}: {self:?}"))
    }
}

/// A signed-in account, or an API key of one: the credential and how to send it.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    /// The session token, or the API key.
    pub token: String,
    /// `Bearer <token>`: the `Authorization` value.
    pub bearer: String,
    /// The session the emailed link gave (for an API key: its account's).
    pub session: Session,
    /// The key, when this is an API key.
    pub key: Option<ApiKeyCreated>,
}

impl Account {
    /// The `Authorization` header carrying the credential.
    pub fn auth(&self) -> (&'static str, &str) {
        ("authorization", &self.bearer)
    }
}

impl TestHost {
    pub async fn start(options: HostOptions) -> TestHost {
        Self::try_start(options).await.expect("test host starts")
    }

    /// Writes a config, starts the binary and waits until `/healthz` answers.
    pub async fn try_start(options: HostOptions) -> anyhow::Result<TestHost> {
        let port = match options.port {
            Some(port) => port,
            None => free_port()?,
        };
        let HostFiles {
            dir,
            metadata_db,
            metadata_server,
        } = HostFiles::create(&options, port).await?;
        let mut nats = None;
        if let Some(spec) = options.providers.iter().find_map(|p| p.nats)
            && !spec.in_use()
        {
            nats = Some(nats::TestNats::start(&dir.join("instanode.toml"), spec).await?);
        }
        let log = std::fs::File::create(dir.join("host.log"))?;
        let child = Command::new(env("INSTANODE_BIN"))
            .arg("--config")
            .arg(dir.join("instanode.toml"))
            .env_remove("INSTANODE_LISTEN")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("spawning the host binary")?;
        let mut host = TestHost {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            metadata_db,
            metadata_server,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            nats,
            child,
            next_client: AtomicU32::new(u32::from(u16::from_be_bytes(
                uuid::Uuid::new_v4().as_bytes()[..2].try_into()?,
            ))),
        };
        host.wait_ready().await?;
        Ok(host)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(status) = self.child.try_wait()? {
                bail!("host exited with {status}; log: {}", self.log());
            }
            let health = self.http.get(format!("{}/healthz", self.url)).send().await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "host did not answer /healthz within 60 s; log: {}",
            self.log()
        )
    }

    /// The host's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("host.log")).unwrap_or_default()
    }

    /// The host process's resident memory in KiB (from `/proc`).
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(self.pid())
    }

    /// The host process's id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("the host is running")
    }

    /// Whether the host process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the host process with SIGKILL, as a crash would: no shutdown of any kind.
    /// Takes `&self` so a test can kill the host while requests to it are in flight.
    pub fn kill_hard(&self) {
        if let Some(pid) = self.child.id() {
            let killed = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status()
                .expect("kill runs");
            assert!(killed.success(), "the host process was killed");
        }
    }

    /// POSTs a JSON body.
    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.post(
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
            &[],
        )
        .await
    }

    /// `POST /<kind>/new {"name": name}`, which must answer 201; its body.
    pub async fn provision(&self, kind: &str, name: &str) -> Created {
        self.provision_with(kind, name, &[]).await
    }

    /// [`provision`](Self::provision) with extra headers: a client address
    /// (`x-forwarded-for`, which decides the anonymous owner) or a credential.
    pub async fn provision_with(
        &self,
        kind: &str,
        name: &str,
        headers: &[(&str, &str)],
    ) -> Created {
        let reply = self.try_provision(kind, name, headers).await;
        assert_eq!(reply.status.as_u16(), 201, "{kind}: {}", reply.body);
        reply.json()
    }

    /// `POST /<kind>/new {"name": name}` with extra headers, answered however the host answers.
    pub async fn try_provision(&self, kind: &str, name: &str, headers: &[(&str, &str)]) -> Reply {
        let body = serde_json::json!({ "name": name }).to_string().into_bytes();
        self.post(
            &format!("/{kind}/new"),
            Some("application/json"),
            body,
            headers,
        )
        .await
    }

    /// POSTs raw bytes with an optional content type and extra headers.
    pub async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.post(format!("{}{path}", self.url)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request, headers).await
    }

    /// PUTs raw bytes with extra headers.
    pub async fn put(&self, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
        self.send(
            self.http.put(format!("{}{path}", self.url)).body(body),
            headers,
        )
        .await
    }

    /// Uploads `wasm` as provider `name`'s new version through the operator API.
    pub async fn upload_provider(&self, name: &str, wasm: Vec<u8>) -> Reply {
        self.put(
            &format!("/admin/providers/{name}"),
            wasm,
            &[
                ("authorization", ADMIN_BEARER),
                ("content-type", "application/wasm"),
            ],
        )
        .await
    }

    /// The operator API's view of provider `name`, if it is live.
    pub async fn provider_status(&self, name: &str) -> Option<Provider> {
        self.get_with("/admin/providers", &[("authorization", ADMIN_BEARER)])
            .await
            .expect::<Providers>(200)
            .providers
            .into_iter()
            .find(|p| p.name == name)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.url)), headers)
            .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.delete_with(path, &[]).await
    }

    pub async fn delete_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(self.http.delete(format!("{}{path}", self.url)), headers)
            .await
    }

    /// Sends with `headers`, adding a fresh client address unless one is given.
    async fn send(&self, mut request: reqwest::RequestBuilder, headers: &[(&str, &str)]) -> Reply {
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-for"))
        {
            request = request.header("x-forwarded-for", self.fresh_client());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        reply(request.send().await.expect("request reaches the host")).await
    }

    /// An address in a /24 no other request of this host used.
    pub fn fresh_client(&self) -> String {
        let n = self
            .next_client
            .fetch_add(1, Ordering::Relaxed)
            .to_be_bytes();
        format!("10.{}.{}.7", n[2], n[3])
    }

    /// Moves the host's clock forward.
    pub async fn advance_clock(&self, seconds: i64) {
        let reply = self
            .post_json("/testing/clock", serde_json::json!({ "seconds": seconds }))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    /// Runs one reaper pass now and returns its report.
    pub async fn reap(&self) -> ReapReport {
        self.post_json("/testing/reap", serde_json::json!({}))
            .await
            .expect::<RoundReport<ReapReport>>(200)
            .report
    }

    /// Runs one metering pass over every live resource and returns its report.
    pub async fn meter(&self) -> MeterReport {
        self.post_json("/testing/meter", serde_json::json!({}))
            .await
            .expect::<RoundReport<MeterReport>>(200)
            .report
    }

    /// Asks for a sign-in link for `email` (202) and follows it.
    pub async fn sign_in(&self, email: &str) -> Account {
        self.post_json("/auth/email/start", serde_json::json!({ "email": email }))
            .await
            .expect::<LinkSent>(202);
        self.follow_link(email).await
    }

    /// Signs a new account in: a fresh address starting with `label`.
    pub async fn new_account(&self, label: &str) -> Account {
        let email = format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple());
        self.sign_in(&email).await
    }

    /// Follows the newest link mailed to `email`, which must answer 200 with a session.
    pub async fn follow_link(&self, email: &str) -> Account {
        let session: Session = self.get(&mail::link_sent_to(email).await).await.expect(200);
        Account {
            email: email.to_string(),
            token: session.session_token.clone(),
            bearer: format!("Bearer {}", session.session_token),
            session,
            key: None,
        }
    }

    /// Creates an API key named `name` for `account` (201); the account as that key.
    pub async fn api_key(&self, account: &Account, name: &str) -> Account {
        let key: ApiKeyCreated = self
            .post(
                "/api/v1/auth/api-keys",
                Some("application/json"),
                serde_json::json!({ "name": name }).to_string().into_bytes(),
                &[account.auth()],
            )
            .await
            .expect(201);
        Account {
            email: account.email.clone(),
            token: key.key.clone(),
            bearer: format!("Bearer {}", key.key),
            session: account.session.clone(),
            key: Some(key),
        }
    }

    /// Moves the team of the user with `email` to `tier` (as a paid subscription would).
    pub async fn set_team_tier(&self, email: &str, tier: &str) {
        sqlx::query(
            "UPDATE teams SET tier = $2 WHERE id = (SELECT team_id FROM users WHERE email = $1)",
        )
        .bind(email)
        .bind(tier)
        .execute(&mut self.metadata().await)
        .await
        .expect("the team's tier changes");
    }

    /// A superuser connection to this host's metadata database.
    pub async fn metadata(&self) -> PgConnection {
        PgConnection::connect(&with_database(&self.metadata_server, &self.metadata_db))
            .await
            .expect("superuser connection to the metadata database")
    }
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("response body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
    }
}

/// A TCP port nothing listens on right now, for a listener a test starts soon after.
///
/// Chosen below the kernel's ephemeral range (where `bind(0)` and every outgoing
/// connection take their ports), so no connection made meanwhile can take it; and never
/// handed out twice in one run, so parallel tests do not pick the same one.
pub fn free_port() -> anyhow::Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (FREE_PORTS_FROM, ephemeral_from.min(FREE_PORTS_BELOW));
    if high <= low + 1000 {
        // Too little room below the ephemeral range: let the kernel choose.
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        return Ok(listener.local_addr()?.port());
    }
    let mut handed_out = HANDED_OUT.lock().expect("free ports lock");
    for _ in 0..1000 {
        let random = u16::from_be_bytes(uuid::Uuid::new_v4().as_bytes()[..2].try_into()?);
        let port = low + random % (high - low);
        if !handed_out.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port between {low} and {high}")
}

/// Where [`free_port`] looks: above the well-known services, below the ephemeral range.
const FREE_PORTS_FROM: u16 = 20000;
const FREE_PORTS_BELOW: u16 = 32768;

fn render_config(
    options: &HostOptions,
    dir: &std::path::Path,
    port: u16,
    metadata_url: &str,
) -> String {
    let mut config = format!(
        "listen = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\ndata_dir = {:?}\n\
         admin_token = {ADMIN_TOKEN:?}\ntrusted_proxies = {:?}\n{}\n\
         [metadata]\nurl = {:?}\n\n[secrets]\nseal_key = \"{}\"\njwt_secret = \"test-jwt-secret-0123456789\"\n\n\
         [testing]\nfault_injection = {}\ncontrol_routes = {}\n\n",
        dir.display(),
        if options.trust_local_proxy {
            vec!["127.0.0.1"]
        } else {
            vec![]
        },
        options.extra,
        metadata_url,
        "ab".repeat(32),
        options.fault_injection,
        options.control_routes,
    );
    if let Ok(smtp_url) = std::env::var("INSTANODE_TEST_SMTP_URL") {
        let _ = write!(
            config,
            "[email]\nsmtp_url = {smtp_url:?}\nfrom = \"instanode tests <no-reply@instanode.localhost>\"\n\n"
        );
    }
    let providers: toml::Table = options
        .providers
        .iter()
        .map(|p| {
            let table = toml::Value::try_from(&p.config).expect("a provider table");
            (p.name.to_string(), table)
        })
        .collect();
    let mut root = toml::Table::new();
    root.insert("providers".into(), toml::Value::Table(providers));
    config.push_str(&toml::to_string(&root).expect("providers as TOML"));
    config
}

/// Asserts the error envelope: status, stable code, and every envelope field; the envelope.
pub fn assert_error(reply: &Reply, status: u16, code: &str) -> ErrorBody {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "status for {code}: body {}",
        reply.body
    );
    let body = &reply.body;
    // `retry_after_seconds` is sent as null rather than left out.
    assert!(
        body.as_object()
            .is_some_and(|o| o.contains_key("retry_after_seconds")),
        "{body}"
    );
    let error = reply.error();
    assert_eq!(error.error, code, "{body}");
    assert!(!error.message.is_empty(), "message: {body}");
    assert!(!error.request_id.is_empty());
    assert_eq!(
        reply
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some(error.request_id.as_str())
    );
    error
}

/// An admin connection to the test Redis server.
pub async fn redis_admin() -> redis::aio::MultiplexedConnection {
    redis::Client::open(env("INSTANODE_TEST_REDIS_URL"))
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection to the test Redis")
}

/// An admin client of the test MongoDB-wire server.
pub async fn mongo_admin() -> mongodb::Client {
    mongodb::Client::with_uri_str(env("INSTANODE_TEST_MONGO_URL"))
        .await
        .expect("admin client of the test MongoDB-wire server")
}

/// Runs a Python snippet with the test virtualenv (pymongo installed); returns stdout, or
/// panics with stderr.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env("INSTANODE_TEST_PYTHON"))
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a role and a database for this resource id exist on the real server.
pub async fn backend_objects(resource_id: &str) -> (bool, bool) {
    let hex = resource_id.replace('-', "");
    let (role, database): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
                EXISTS (SELECT 1 FROM pg_database WHERE datname = $2)",
    )
    .bind(format!("usr_{hex}"))
    .bind(format!("db_{hex}"))
    .fetch_one(&mut superuser("postgres").await)
    .await
    .expect("catalog query");
    (role, database)
}

/// Latency figures of one benchmark scenario.
pub struct Stats {
    pub samples: Vec<Duration>,
    pub wall: Duration,
}

impl Stats {
    pub fn new(mut samples: Vec<Duration>, wall: Duration) -> Self {
        samples.sort();
        Self { samples, wall }
    }

    /// Runs the concurrent `workers` (each timing its own requests) to the end, and pools
    /// their samples against the wall time since `started`.
    pub async fn of_workers<W>(workers: impl IntoIterator<Item = W>, started: Instant) -> Self
    where
        W: std::future::Future<Output = Vec<Duration>>,
    {
        let samples = futures::future::join_all(workers)
            .await
            .into_iter()
            .flatten()
            .collect();
        Self::new(samples, started.elapsed())
    }

    /// The `p`-th percentile (nearest rank).
    pub fn percentile(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.samples.len() as f64).ceil() as usize;
        self.samples[rank.clamp(1, self.samples.len()) - 1]
    }

    /// One markdown table row: measurement, concurrency, n, p50, p99, max, throughput and
    /// the command that reproduces it.
    pub fn row(&self, measurement: &str, concurrency: usize, command: &str) -> String {
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        format!(
            "| {measurement} | {concurrency} | {} | {} | {} | {} | {:.0}/s | `{command}` |",
            self.samples.len(),
            ms(self.percentile(50.0)),
            ms(self.percentile(99.0)),
            ms(*self.samples.last().expect("at least one sample")),
            self.samples.len() as f64 / self.wall.as_secs_f64(),
        )
    }
}

/// A table row for a single figure (a ratio, a memory size) rather than a distribution.
pub fn figure_row(measurement: &str, concurrency: &str, figure: &str, command: &str) -> String {
    format!("| {measurement} | {concurrency} | | | | | {figure} | `{command}` |")
}

/// The header matching [`Stats::row`] and [`figure_row`]: every bench prints it, and
/// `./scripts/bench` keeps the first, so all rows form one table.
pub const STATS_HEADER: &str = "| measurement | concurrency | n | p50 ms | p99 ms | max ms | rate or figure | command |\n|---|---:|---:|---:|---:|---:|---:|---|";
