//! Capabilities: the host functions a provider component may import.
//!
//! Each capability is one module that implements its WIT interface on [`HostState`] and
//! adds itself to a linker. An operator grants capabilities per provider; the linker of a
//! provider holds exactly the granted ones, and a component importing anything else is
//! refused when it is loaded (see `registry`).

mod build_cgroup;
mod config;
mod containers;
mod engine_build;
mod kv;
mod log;
mod mongo;
mod nats;
mod redis;
mod s3;
mod services;
mod signer;
mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::contract::instanode::provider as wit;
use crate::store::KvStore;

pub use containers::{BuildLog, ContainersBackend, context_ref};
pub use mongo::MongoBackend;
pub use nats::{NatsBackend, server_trust_config};
pub use redis::RedisBackend;
pub use s3::{ObjectMethod, S3Backend};
pub use signer::SignerBackend;
pub use sql::SqlBackend;

/// A capability interface of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    Config,
    Log,
    Kv,
    Sql,
    Redis,
    Mongo,
    Nats,
    Signer,
    S3,
    Containers,
    Services,
}

impl Capability {
    const ALL: [Capability; 11] = [
        Self::Config,
        Self::Log,
        Self::Kv,
        Self::Sql,
        Self::Redis,
        Self::Mongo,
        Self::Nats,
        Self::Signer,
        Self::S3,
        Self::Containers,
        Self::Services,
    ];

    /// The interface name in the WIT package.
    pub fn name(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Log => "log",
            Self::Kv => "kv",
            Self::Sql => "sql",
            Self::Redis => "redis",
            Self::Mongo => "mongo",
            Self::Nats => "nats",
            Self::Signer => "signer",
            Self::S3 => "s3",
            Self::Containers => "containers",
            Self::Services => "services",
        }
    }

    /// Granted to every provider without asking: reading its own settings.
    pub fn is_implicit(self) -> bool {
        self == Self::Config
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("`{s}` is not a capability of instanode:provider"))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one provider's capabilities are bound to: its settings and backends.
pub struct Bindings {
    pub provider: String,
    pub settings: BTreeMap<String, String>,
    pub sql: Option<SqlBackend>,
    pub redis: Option<RedisBackend>,
    pub mongo: Option<MongoBackend>,
    pub nats: Option<NatsBackend>,
    pub signer: Option<SignerBackend>,
    pub s3: Option<S3Backend>,
    pub containers: Option<ContainersBackend>,
    pub kv: Option<KvStore>,
}

/// The per-call state of a component instance. A fresh one is made for every call, so
/// nothing leaks between calls or tenants.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub limits: StoreLimits,
    bindings: Arc<Bindings>,
    request_id: String,
}

impl HostState {
    pub fn new(bindings: Arc<Bindings>, limits: StoreLimits, request_id: &str) -> Self {
        Self {
            // No environment, arguments, preopened directories or sockets: a provider
            // reaches the world only through its capabilities.
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits,
            bindings,
            request_id: request_id.to_string(),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::types::Host for HostState {}

/// A linker with WASI (sandboxed, empty) and exactly the `grants`.
pub fn linker(engine: &Engine, grants: &[Capability]) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wit::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    wit::config::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
    for grant in grants {
        match grant {
            Capability::Config => {}
            Capability::Log => wit::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Kv => wit::kv::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Sql => wit::sql::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Redis => wit::redis::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Mongo => wit::mongo::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Nats => wit::nats::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Signer => wit::signer::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::S3 => wit::s3::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?,
            Capability::Containers => {
                wit::containers::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?
            }
            Capability::Services => {
                wit::services::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?
            }
        }
    }
    Ok(linker)
}

/// The error a component sees when a capability call fails: the host's own codes get their
/// case, anything else is the backend's code.
fn cap_error(code: &str, message: impl fmt::Display) -> wit::types::CapabilityError {
    use wit::types::CapabilityError as E;
    let message = message.to_string();
    match code {
        "not-granted" => E::NotGranted(message),
        "unavailable" => E::Unavailable(message),
        "timeout" => E::Timeout(message),
        "invalid" => E::Invalid(message),
        "not-found" => E::NotFound(message),
        "internal" => E::Internal(message),
        code => E::Backend(wit::types::BackendError {
            code: code.to_string(),
            message,
        }),
    }
}
