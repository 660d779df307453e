//! The redis provider: one ACL user per resource on a shared Redis server, confined to its
//! own key and channel prefix, reached only through the host's `redis` capability.
//!
//! Isolation: the user sees keys and channels matching `<prefix>*` only, and loses every
//! command that could reach past that prefix or the server itself: `@admin`, `@dangerous`
//! and `@scripting`, and the commands that list or count the whole keyspace (a key pattern
//! alone still leaks other tenants' key and channel *names* through SCAN, RANDOMKEY,
//! DBSIZE, PUBSUB, OBJECT).
//!
//! Limits: Redis has no per-user memory or connection cap, so both are measured.
//! - memory: `usage` walks the tenant's keys (`SCAN MATCH <prefix>* COUNT 1000`, then
//!   `MEMORY USAGE` per key, pipelined). SCAN visits the whole keyspace to find one
//!   tenant's keys, so one measurement costs in proportion to the *server's* key count
//!   (about 0.2 s at 50k keys, 2 s at 1M). That is fine for one small shared server per
//!   host; past that, shard tenants over several servers (one binding per provider) or give
//!   a paid tier its own server with a hard `maxmemory`. Over the limit the host calls
//!   `suspend`, which leaves reads and deletes (`-@write +del +unlink`).
//! - connections: `usage` also counts the user's clients in `CLIENT LIST` and closes the
//!   newest ones beyond the tier's `connections` (the cost is one CLIENT LIST, linear in
//!   the server's clients).

#![expect(
    unsafe_code,
    reason = "the glue wit-bindgen generates for the component ABI is unsafe"
)]

wit_bindgen::generate!({
    world: "provider",
    path: "../../wit",
});

use exports::instanode::provider::provisioner::Guest;
use instanode::provider::config;
use instanode::provider::redis::{self, ReplyNode};
use instanode::provider::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::endpoint::Endpoint;

/// Commands every tenant user runs under, applied after `+@all`.
const COMMAND_RULES: &[&str] = &[
    "+@all",
    "-@admin",
    "-@dangerous",
    "-@scripting",
    "-select",
    "-move",
    "-scan",
    "-randomkey",
    "-dbsize",
    "-pubsub",
    "-object",
    "-wait",
    "-failover",
    "-readonly",
    "-readwrite",
];
/// Added while suspended: no writes, but deleting to get back under the limit.
const SUSPENDED_RULES: &[&str] = &["-@write", "+del", "+unlink"];
/// Keys deleted or measured per round trip.
const BATCH: usize = 500;

struct Redis;

/// The names that belong to one resource.
struct Tenant {
    user: String,
    prefix: String,
}

impl Tenant {
    /// Derived from the host's resource id (32 lowercase hex characters) only.
    fn for_resource(resource_id: &str) -> Result<Self, ProviderError> {
        let hex = instanode_provider_kit::resource_hex(resource_id)
            .map_err(ProviderError::InvalidRequest)?;
        Ok(Self {
            user: format!("t_{hex}"),
            prefix: format!("{hex}:"),
        })
    }

    /// `ACL SETUSER <user> <rules...>` with the command rules (and `extra`) applied.
    fn set_commands(&self, extra: &[&str]) -> Vec<Vec<u8>> {
        let mut args = args(&["ACL", "SETUSER", &self.user]);
        args.extend(
            COMMAND_RULES
                .iter()
                .chain(extra)
                .map(|r| r.as_bytes().to_vec()),
        );
        args
    }
}

impl Guest for Redis {
    fn describe() -> Info {
        Info {
            name: "redis".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec!["cache".into()],
            capabilities: vec!["redis".into()],
            config_schema: instanode_provider_kit::endpoint::config_schema(""),
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        if request.kind != "cache" {
            return Err(ProviderError::InvalidRequest(format!(
                "unknown kind {}",
                request.kind
            )));
        }
        let tenant = Tenant::for_resource(&request.resource_id)?;
        let password = random_password()?;
        // `reset` first: provisioning the same id again adopts the user with a new password.
        let mut create = args(&["ACL", "SETUSER", &tenant.user, "reset", "on"]);
        for rule in [
            format!(">{password}"),
            format!("~{}*", tenant.prefix),
            "resetchannels".into(),
            format!("&{}*", tenant.prefix),
        ] {
            create.push(rule.into_bytes());
        }
        create.extend(COMMAND_RULES.iter().map(|r| r.as_bytes().to_vec()));
        run_all(vec![create, args(&["ACL", "SAVE"])])?;

        let (connection_url, internal_url) = Endpoint::from_settings(config::get)
            .map_err(internal)?
            .urls(|h, p| format!("redis://{}:{password}@{h}:{p}/0", tenant.user));
        Ok(Provisioned {
            connection_url,
            internal_url,
            fields: vec![("key_prefix".into(), tenant.prefix.clone())],
            state: String::new(),
        })
    }

    fn deprovision(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        // The user goes first (closing its connections), so nothing writes while the keys go.
        run_all(vec![
            args(&["ACL", "DELUSER", &tenant.user]),
            args(&["ACL", "SAVE"]),
        ])?;
        for_each_key_batch(&tenant.prefix, |keys| {
            let mut unlink = args(&["UNLINK"]);
            unlink.extend(keys.iter().cloned());
            run(unlink).map(|_| ())
        })
    }

    fn usage(resource: ResourceRef) -> Result<UsageReport, ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        let mut bytes = 0u64;
        let mut keys = 0u64;
        for_each_key_batch(&tenant.prefix, |batch| {
            keys += batch.len() as u64;
            let sizes = redis::pipeline(
                &batch
                    .iter()
                    .map(|k| {
                        let mut c = args(&["MEMORY", "USAGE"]);
                        c.push(k.clone());
                        c
                    })
                    .collect::<Vec<_>>(),
            )
            .map_err(from_redis)?;
            for size in sizes {
                if let Ok(reply) = size
                    && let Some(ReplyNode::Int(n)) = reply.first()
                {
                    bytes += u64::try_from(*n).unwrap_or(0);
                }
            }
            Ok(())
        })?;
        let connections = enforce_connections(&tenant, limit(&resource.limits, "connections"))?;
        Ok(UsageReport {
            storage_bytes: bytes,
            connections,
            extra: vec![("keys".into(), keys)],
        })
    }

    fn suspend(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        if !user_exists(&tenant)? {
            return Ok(());
        }
        run_all(vec![
            tenant.set_commands(SUSPENDED_RULES),
            args(&["ACL", "SAVE"]),
        ])
    }

    fn resume(resource: ResourceRef) -> Result<(), ProviderError> {
        let tenant = Tenant::for_resource(&resource.resource_id)?;
        if !user_exists(&tenant)? {
            return Err(ProviderError::Conflict(
                "the resource no longer exists".into(),
            ));
        }
        // The whole command rule again: `+@write` alone would also re-allow dangerous writes.
        run_all(vec![tenant.set_commands(&[]), args(&["ACL", "SAVE"])])
    }

    fn check() -> Result<String, ProviderError> {
        let reply = run(args(&["INFO", "server"]))?;
        let version = match reply.first() {
            Some(ReplyNode::Bulk(text)) => String::from_utf8_lossy(text)
                .lines()
                .find_map(|l| l.strip_prefix("redis_version:").map(str::to_string))
                .unwrap_or_else(|| "unknown".into()),
            _ => "unknown".into(),
        };
        Ok(format!("redis {} reachable", version.trim()))
    }

    fn maintain() -> Result<(), ProviderError> {
        Ok(())
    }
}

export!(Redis);

/// Calls `each` with the tenant's keys, a batch at a time.
fn for_each_key_batch(
    prefix: &str,
    mut each: impl FnMut(&[Vec<u8>]) -> Result<(), ProviderError>,
) -> Result<(), ProviderError> {
    // Glob metacharacters cannot occur: the prefix is hex and a colon.
    let pattern = format!("{prefix}*");
    let mut cursor = "0".to_string();
    let mut pending: Vec<Vec<u8>> = Vec::new();
    loop {
        let reply = run(args(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"]))?;
        // [array(2), bulk(cursor), array(n), bulk(key)...]
        let mut nodes = reply.into_iter();
        let (Some(ReplyNode::Array(2)), Some(ReplyNode::Bulk(next)), Some(ReplyNode::Array(_))) =
            (nodes.next(), nodes.next(), nodes.next())
        else {
            return Err(internal("unexpected SCAN reply"));
        };
        pending.extend(nodes.filter_map(|n| match n {
            ReplyNode::Bulk(key) => Some(key),
            _ => None,
        }));
        while pending.len() >= BATCH {
            let rest = pending.split_off(BATCH);
            each(&pending)?;
            pending = rest;
        }
        cursor = String::from_utf8_lossy(&next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    if !pending.is_empty() {
        each(&pending)?;
    }
    Ok(())
}

/// Counts the user's connections and closes the newest beyond `limit`.
fn enforce_connections(tenant: &Tenant, limit: Option<u64>) -> Result<u32, ProviderError> {
    let reply = run(args(&["CLIENT", "LIST"]))?;
    let Some(ReplyNode::Bulk(text)) = reply.first() else {
        return Err(internal("unexpected CLIENT LIST reply"));
    };
    let wanted = format!("user={}", tenant.user);
    // (id, age in seconds) of each of the user's clients.
    let mut clients: Vec<(u64, u64)> = String::from_utf8_lossy(text)
        .lines()
        .filter(|line| line.split(' ').any(|field| field == wanted))
        .filter_map(|line| {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|f| f.strip_prefix(name)?.parse::<u64>().ok())
            };
            Some((field("id=")?, field("age=")?))
        })
        .collect();
    let count = u32::try_from(clients.len()).unwrap_or(u32::MAX);
    if let Some(limit) = limit.and_then(|l| usize::try_from(l).ok())
        && clients.len() > limit
    {
        // Oldest first; the ones past the limit are the newest.
        clients.sort_by_key(|(id, age)| (std::cmp::Reverse(*age), *id));
        for (id, _) in &clients[limit..] {
            run(args(&["CLIENT", "KILL", "ID", &id.to_string()]))?;
        }
    }
    Ok(count)
}

fn user_exists(tenant: &Tenant) -> Result<bool, ProviderError> {
    let reply = run(args(&["ACL", "GETUSER", &tenant.user]))?;
    Ok(!matches!(reply.first(), Some(ReplyNode::Nil) | None))
}

fn args(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

fn run(command: Vec<Vec<u8>>) -> Result<Vec<ReplyNode>, ProviderError> {
    redis::command(&command).map_err(from_redis)
}

/// Runs commands in one round trip; the first failure fails the call.
fn run_all(commands: Vec<Vec<Vec<u8>>>) -> Result<(), ProviderError> {
    for answer in redis::pipeline(&commands).map_err(from_redis)? {
        answer.map_err(from_redis)?;
    }
    Ok(())
}

fn from_redis(e: CapabilityError) -> ProviderError {
    match e.code.as_str() {
        "unavailable" | "timeout" | "LOADING" | "BUSY" | "MASTERDOWN" => {
            ProviderError::BackendUnavailable(e.message)
        }
        code => ProviderError::Internal(format!("redis error {code}: {}", e.message)),
    }
}

fn limit(limits: &[(String, u64)], name: &str) -> Option<u64> {
    limits.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn internal(message: impl Into<String>) -> ProviderError {
    ProviderError::Internal(message.into())
}

fn random_password() -> Result<String, ProviderError> {
    instanode_provider_kit::random_password().map_err(ProviderError::Internal)
}
