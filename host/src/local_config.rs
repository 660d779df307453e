//! Host configs built from a few facts (where the backends listen, where the secrets and
//! components are), so every place that writes one writes the same shape:
//! `instanode config local` prints the config `scripts/up` runs with, and the test harness
//! builds its providers' sections with the functions below.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{
    AppsConfig, Config, ContainersBinding, EmailConfig, HttpConfig, LifecycleConfig,
    MetadataConfig, MongoBinding, NatsBinding, ProviderConfig, RedisBinding, S3Binding, Secret,
    SecretsConfig, SignerBinding, SqlBinding, StringList, TestingConfig,
};

/// Where a machine's backends listen.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub postgres: u16,
    pub redis: u16,
    pub mongo: u16,
    pub nats: u16,
    pub s3: u16,
    pub smtp: u16,
}

/// The secrets a local machine keeps, one file each under `<data_dir>/secrets/`.
pub struct LocalSecrets {
    pub seal_key: String,
    pub jwt_secret: String,
    pub admin_token: String,
    pub pg_superuser_password: String,
    pub pg_instanode_password: String,
    pub redis_admin_password: String,
    pub mongo_admin_password: String,
    pub s3_access_key: String,
    pub s3_secret_key: String,
}

impl LocalSecrets {
    /// Reads every secret file in `dir`; a missing one is an error naming it.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| -> anyhow::Result<String> {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read secret {}", path.display()))?;
            Ok(text.trim().to_string())
        };
        Ok(Self {
            seal_key: read("seal_key")?,
            jwt_secret: read("jwt_secret")?,
            admin_token: read("admin_token")?,
            pg_superuser_password: read("pg_superuser_password")?,
            pg_instanode_password: read("pg_instanode_password")?,
            redis_admin_password: read("redis_admin_password")?,
            mongo_admin_password: read("mongo_admin_password")?,
            s3_access_key: read("s3_access_key")?,
            s3_secret_key: read("s3_secret_key")?,
        })
    }
}

/// Every backend on 127.0.0.1, every shipped provider, components under
/// `<data_dir>/providers/`: the whole product on one machine.
pub fn local(
    data_dir: &Path,
    listen: SocketAddr,
    ports: Ports,
    bucket: &str,
    secrets: &LocalSecrets,
) -> Config {
    let component = |name: &str| data_dir.join("providers").join(format!("{name}.wasm"));
    let loopback = "127.0.0.1";
    let superuser = format!(
        "postgres://postgres:{}@{loopback}:{}/postgres",
        secrets.pg_superuser_password, ports.postgres
    );
    let s3_endpoint = format!("http://{loopback}:{}", ports.s3);
    let mut providers = BTreeMap::new();
    providers.insert(
        "postgres".into(),
        with_setting(
            postgres(
                component("postgres"),
                &["db", "vector"],
                &superuser,
                loopback,
                ports.postgres,
            ),
            // Deployed apps reach the backends through the Docker bridge gateway.
            "internal_host",
            "host.docker.internal",
        ),
    );
    let redis_admin = format!(
        "redis://admin:{}@{loopback}:{}",
        secrets.redis_admin_password, ports.redis
    );
    providers.insert(
        "redis".into(),
        with_setting(
            redis(component("redis"), &redis_admin, loopback, ports.redis),
            "internal_host",
            "host.docker.internal",
        ),
    );
    let mongo_admin = format!(
        "mongodb://admin:{}@{loopback}:{}/?authSource=admin&directConnection=true",
        secrets.mongo_admin_password, ports.mongo
    );
    providers.insert(
        "mongo".into(),
        mongo(component("mongo"), &mongo_admin, loopback, ports.mongo),
    );
    providers.insert("nats".into(), nats(component("nats"), ports.nats));
    providers.insert(
        "spaces".into(),
        spaces(
            component("spaces"),
            &s3_endpoint,
            bucket,
            &secrets.s3_access_key,
            &secrets.s3_secret_key,
        ),
    );
    let mut deploy = deploy(component("deploy"), "instanode");
    // Builds wait on the engine for up to 15 minutes; the provider's own computing stays
    // within the usual budget.
    deploy.sandbox.host_wait_ms = Some(900_000);
    providers.insert("deploy".into(), deploy);

    Config {
        listen,
        public_url: format!("http://{listen}"),
        data_dir: data_dir.to_path_buf(),
        metadata: MetadataConfig {
            url: Secret::new(format!(
                "postgres://instanode:{}@{loopback}:{}/instanode",
                secrets.pg_instanode_password, ports.postgres
            )),
            max_connections: 16,
        },
        secrets: SecretsConfig {
            seal_key: Secret::new(&secrets.seal_key),
            jwt_secret: Secret::new(&secrets.jwt_secret),
        },
        providers,
        sandbox: Default::default(),
        plans: None,
        trusted_proxies: StringList::Empty,
        rate_limit_per_minute: 100,
        webhook_deliveries_per_minute: 600_000,
        lifecycle: LifecycleConfig::default(),
        http: HttpConfig::default(),
        testing: TestingConfig::default(),
        apps: AppsConfig::default(),
        email: Some(EmailConfig {
            smtp_url: Secret::new(format!("smtp://{loopback}:{}", ports.smtp)),
            from: "instanode <no-reply@instanode.localhost>".into(),
        }),
        billing: Default::default(),
        admin_token: Some(Secret::new(&secrets.admin_token)),
        providers_dir: None,
        providers_poll_ms: 1000,
        tls: Default::default(),
    }
}

/// A provider entry with no bindings yet.
pub fn provider(component: PathBuf, kinds: &[&str], grants: &[&str]) -> ProviderConfig {
    ProviderConfig {
        component,
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        retired_kinds: Vec::new(),
        grants: grants.iter().map(|g| g.to_string()).collect(),
        config: BTreeMap::new(),
        sql: None,
        redis: None,
        mongo: None,
        nats: None,
        signer: None,
        s3: None,
        containers: None,
        sandbox: Default::default(),
    }
}

/// `provider` with one more `config` setting.
pub fn with_setting(mut provider: ProviderConfig, key: &str, value: &str) -> ProviderConfig {
    provider.config.insert(key.into(), value.into());
    provider
}

/// Where tenants connect, as the shipped providers read it.
fn public_address(provider: &mut ProviderConfig, host: &str, port: u16) {
    provider.config.insert("public_host".into(), host.into());
    provider
        .config
        .insert("public_port".into(), port.to_string());
}

/// `providers/postgres` on the server whose superuser URL is `superuser_url`; tenants
/// connect to `public_host:public_port`.
pub fn postgres(
    component: PathBuf,
    kinds: &[&str],
    superuser_url: &str,
    public_host: &str,
    public_port: u16,
) -> ProviderConfig {
    let mut p = provider(component, kinds, &["sql", "log"]);
    p.sql = Some(SqlBinding {
        url: Secret::new(superuser_url),
        max_connections: 16,
        statement_timeout_ms: 15_000,
    });
    public_address(&mut p, public_host, public_port);
    p
}

/// `providers/redis` on the server whose ACL-admin URL is `admin_url`.
pub fn redis(
    component: PathBuf,
    admin_url: &str,
    public_host: &str,
    public_port: u16,
) -> ProviderConfig {
    let mut p = provider(component, &["cache"], &["redis"]);
    p.redis = Some(RedisBinding {
        url: Secret::new(admin_url),
    });
    public_address(&mut p, public_host, public_port);
    p
}

/// `providers/mongo` on the MongoDB-wire server whose admin URL is `admin_url`.
pub fn mongo(
    component: PathBuf,
    admin_url: &str,
    public_host: &str,
    public_port: u16,
) -> ProviderConfig {
    let mut p = provider(component, &["nosql"], &["mongo"]);
    p.mongo = Some(MongoBinding {
        url: Secret::new(admin_url),
    });
    public_address(&mut p, public_host, public_port);
    with_setting(p, "url_options", "directConnection=true")
}

/// `providers/nats` on the NATS server at `127.0.0.1:port`, which must trust this host
/// (`instanode nats-server-config`).
pub fn nats(component: PathBuf, port: u16) -> ProviderConfig {
    let mut p = provider(component, &["queue"], &["nats", "signer"]);
    p.nats = Some(NatsBinding {
        url: format!("nats://127.0.0.1:{port}"),
    });
    p.signer = Some(SignerBinding {
        keys: vec!["nats-operator".into()],
    });
    public_address(&mut p, "127.0.0.1", port);
    p
}

/// `providers/spaces` on `bucket` of the S3 server at `endpoint`, which tenants also reach.
pub fn spaces(
    component: PathBuf,
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret_key: &str,
) -> ProviderConfig {
    let mut p = provider(component, &["storage"], &["s3"]);
    p.s3 = Some(S3Binding {
        endpoint: endpoint.into(),
        public_endpoint: None,
        region: "us-east-1".into(),
        bucket: bucket.into(),
        access_key: Secret::new(access_key),
        secret_key: Secret::new(secret_key),
    });
    let p = with_setting(p, "public_endpoint", endpoint);
    with_setting(p, "bucket", bucket)
}

/// `providers/deploy` on the machine's Docker Engine, naming everything it creates with
/// `namespace`.
pub fn deploy(component: PathBuf, namespace: &str) -> ProviderConfig {
    let mut p = provider(component, &["deploy"], &["containers", "log"]);
    p.containers = Some(ContainersBinding {
        socket: "/var/run/docker.sock".into(),
        namespace: namespace.into(),
        build_cpu_millis: 1000,
        build_pids: 512,
        allowed_registries: Vec::new(),
        cluster_registry: None,
        registry_logins: Vec::new(),
    });
    p
}

/// `providers/swarm` on the machine's Docker Engine in Swarm mode, pushing images to
/// `registry` and naming everything it creates with `namespace`.
pub fn swarm(component: PathBuf, namespace: &str, registry: &str) -> ProviderConfig {
    let mut p = deploy(component, namespace);
    p.grants.push("services".into());
    if let Some(engine) = &mut p.containers {
        engine.cluster_registry = Some(registry.into());
    }
    p
}

/// The config as a TOML file, leading with a line saying where it came from.
pub fn to_toml(config: &Config) -> anyhow::Result<String> {
    let body = toml::to_string(config).context("the config does not serialize")?;
    Ok(format!(
        "# Written by `instanode config local`; every key is explained in instanode.example.toml.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> LocalSecrets {
        LocalSecrets {
            seal_key: "ab".repeat(32),
            jwt_secret: "cd".repeat(32),
            admin_token: "admin".into(),
            pg_superuser_password: "pgsuper".into(),
            pg_instanode_password: "pginst".into(),
            redis_admin_password: "redispw".into(),
            mongo_admin_password: "mongopw".into(),
            s3_access_key: "access".into(),
            s3_secret_key: "secret".into(),
        }
    }

    #[test]
    fn the_local_config_loads_back_as_written() {
        let ports = Ports {
            postgres: 55432,
            redis: 56379,
            mongo: 57017,
            nats: 54222,
            s3: 59000,
            smtp: 2525,
        };
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let written = local(
            Path::new("/srv/instanode"),
            listen,
            ports,
            "instanode",
            &secrets(),
        );
        let text = to_toml(&written).unwrap();
        let read: Config = toml::from_str(&text).unwrap();
        assert_eq!(
            toml::to_string(&read).unwrap(),
            toml::to_string(&written).unwrap()
        );
        assert_eq!(read.providers.len(), 6, "{text}");
        let postgres = &read.providers["postgres"];
        assert_eq!(postgres.config["public_port"], "55432");
        assert_eq!(postgres.config["internal_host"], "host.docker.internal");
        assert!(
            text.contains("postgres://postgres:pgsuper@127.0.0.1:55432/postgres"),
            "{text}"
        );
        assert_eq!(read.providers["deploy"].sandbox.host_wait_ms, Some(900_000));
    }
}
