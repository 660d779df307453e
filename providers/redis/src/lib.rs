//! The redis provider: one ACL user per resource on a shared Redis server, confined to its
//! own key and channel prefix, reached only through the host's `redis` capability.
//!
//! Isolation: the user sees keys and channels matching `<prefix>*` only, and loses every
//! command that could reach past that prefix or the server itself: `@admin`, `@dangerous`
//! and `@scripting`, and the commands outside those categories that report keys, channels
//! or clients server-wide. Reviewed against the whole command table of Redis 7.0
//! (`COMMAND INFO`, every command and subcommand that takes no key; the test
//! `attacks_redis::no_keyless_command_outside_the_reviewed_list_is_allowed` re-checks it):
//! - removed: SCAN, RANDOMKEY, DBSIZE (the keyspace's names and size), PUBSUB (every
//!   channel), OBJECT, CLIENT TRACKING and CLIENT CACHING (with `BCAST`, invalidation
//!   pushes name every key written on the server), MEMORY STATS, DOCTOR, MALLOC-STATS
//!   (server-wide key counts and allocations) and PURGE, CLUSTER (GETKEYSINSLOT and
//!   COUNTKEYSINSLOT list every tenant's keys on a cluster), SELECT, MOVE (other
//!   databases), WAIT, FAILOVER, READONLY, READWRITE;
//! - kept, because they report only the caller's own connection or nothing of others:
//!   PING, ECHO, TIME, HELLO, AUTH, RESET, QUIT, ASKING, LOLWUT, MULTI, EXEC, DISCARD,
//!   UNWATCH, UNSUBSCRIBE, PUNSUBSCRIBE, the COMMAND family, CLIENT ID, INFO, GETNAME,
//!   SETNAME, REPLY, GETREDIR and TRACKINGINFO, ACL WHOAMI, CAT and GENPASS, and the HELP
//!   subcommands; every other command names keys or channels, which the ACL checks;
//! - SORT's `BY`/`GET` patterns are refused by Redis itself to users without `~*`.
//!
//! Limits:
//! - one command: the server runs with `proto-max-bulk-len` (no value, and no SETRANGE,
//!   SETBIT, APPEND or BITFIELD offset, past it), `maxmemory` with `noeviction` (a full
//!   server refuses writes rather than evicting other tenants' keys), and bounded client
//!   query and output buffers; `check` reports a server configured otherwise.
//! - memory: `usage` walks the tenant's keys (`SCAN MATCH <prefix>* COUNT 1000`, then
//!   `MEMORY USAGE` per key, pipelined). SCAN visits the whole keyspace to find one
//!   tenant's keys, so one measurement costs in proportion to the *server's* key count
//!   (about 0.2 s at 50k keys, 2 s at 1M). Over the limit the host calls `suspend`, which
//!   leaves reads and deletes (`-@write +del +unlink`).
//! - connections: Redis has no per-user cap. Each user's tier limit is kept in an admin-only
//!   hash, and `maintain` (every few seconds) closes the newest clients of any user past it,
//!   as `usage` also does (one CLIENT LIST, linear in the server's clients).

use instanode_provider_kit::endpoint::Endpoint;
use instanode_provider_kit::errors::{REDIS, gone, internal};
use instanode_provider_kit::redis::{self, ReplyNode};
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Limits, Provider, data_kind, random_password, resource_hex};

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
    "-client|tracking",
    "-client|caching",
    "-memory|stats",
    "-memory|doctor",
    "-memory|malloc-stats",
    "-memory|purge",
    "-cluster",
    "-wait",
    "-failover",
    "-readonly",
    "-readwrite",
];
/// Added while suspended: no writes, but deleting to get back under the limit.
const SUSPENDED_RULES: &[&str] = &["-@write", "+del", "+unlink"];
/// Keys deleted or measured per round trip.
const BATCH: usize = 500;
/// Admin-only hash of each user's connection limit (tenants' keys all start with hex, so
/// no tenant pattern reaches it).
const CONNECTION_LIMITS: &str = "instanode:connection_limits";
/// Largest single value (and string offset) a safe server accepts.
const MAX_BULK_BYTES: u64 = 64 * 1024 * 1024;

struct Redis;

/// The names that belong to one resource.
struct Tenant {
    user: String,
    prefix: String,
}

impl Tenant {
    /// Derived from the host's resource id (32 lowercase hex characters) only.
    fn for_resource(resource_id: &str) -> Result<Self, ProviderError> {
        let hex = resource_hex(resource_id)?;
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

impl Provider for Redis {
    fn describe() -> Info {
        Info {
            name: "redis".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![data_kind("cache", "cache", "REDIS_URL")],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        let tenant = Tenant::for_resource(&request.resource_id)?;
        let password = random_password()?;
        let setup = if user_exists(&tenant)? {
            // A rotation (or a retried provision): only the password changes, so a
            // suspended user stays suspended; connections of the old password are closed.
            vec![
                args(&[
                    "ACL",
                    "SETUSER",
                    &tenant.user,
                    "resetpass",
                    &format!(">{password}"),
                ]),
                args(&["ACL", "SAVE"]),
                args(&["CLIENT", "KILL", "USER", &tenant.user]),
                connection_limit_command(&tenant, request.limits()),
            ]
        } else {
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
            vec![
                create,
                args(&["ACL", "SAVE"]),
                connection_limit_command(&tenant, request.limits()),
            ]
        };
        run_all(setup)?;

        let (connection_url, internal_url) = Endpoint::from_config()?
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
            args(&["HDEL", CONNECTION_LIMITS, &tenant.user]),
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
        let connections = enforce_connections(&tenant, resource.limits().get("connections"))?;
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
            return Err(gone());
        }
        // The whole command rule again: `+@write` alone would also re-allow dangerous writes.
        // The host also resumes after a tier change: keep its connection limit.
        run_all(vec![
            tenant.set_commands(&[]),
            args(&["ACL", "SAVE"]),
            connection_limit_command(&tenant, resource.limits()),
        ])
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
        let unsafe_settings = unsafe_server_settings()?;
        if unsafe_settings.is_empty() {
            Ok(format!("redis {} reachable", version.trim()))
        } else {
            Ok(format!(
                "redis {} reachable; one tenant can exhaust it: {}",
                version.trim(),
                unsafe_settings.join(", ")
            ))
        }
    }

    /// Closes the newest connections of every user past its limit.
    fn maintain() -> Result<(), ProviderError> {
        let limits = pairs(run(args(&["HGETALL", CONNECTION_LIMITS]))?);
        if limits.is_empty() {
            return Ok(());
        }
        let clients = client_list()?;
        for (user, limit) in limits {
            if let Ok(limit) = limit.parse::<usize>() {
                close_beyond(&clients, &user, limit)?;
            }
        }
        Ok(())
    }
}

instanode_provider_kit::export_provider!(Redis);

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

/// One client of the server: (user, id, age in seconds).
type Client = (String, u64, u64);

fn client_list() -> Result<Vec<Client>, ProviderError> {
    let reply = run(args(&["CLIENT", "LIST"]))?;
    let Some(ReplyNode::Bulk(text)) = reply.first() else {
        return Err(internal("unexpected CLIENT LIST reply"));
    };
    Ok(String::from_utf8_lossy(text)
        .lines()
        .filter_map(|line| {
            let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name));
            Some((
                field("user=")?.to_string(),
                field("id=")?.parse().ok()?,
                field("age=")?.parse().ok()?,
            ))
        })
        .collect())
}

/// Closes the newest of `user`'s clients beyond `limit`; how many it had.
fn close_beyond(clients: &[Client], user: &str, limit: usize) -> Result<u32, ProviderError> {
    let mut own: Vec<(u64, u64)> = clients
        .iter()
        .filter(|(u, _, _)| u == user)
        .map(|(_, id, age)| (*id, *age))
        .collect();
    let count = u32::try_from(own.len()).unwrap_or(u32::MAX);
    if own.len() > limit {
        // Oldest first; the ones past the limit are the newest.
        own.sort_by_key(|(id, age)| (std::cmp::Reverse(*age), *id));
        for (id, _) in &own[limit..] {
            run(args(&["CLIENT", "KILL", "ID", &id.to_string()]))?;
        }
    }
    Ok(count)
}

/// Counts the user's connections and closes the newest beyond `limit`.
fn enforce_connections(tenant: &Tenant, limit: Option<u64>) -> Result<u32, ProviderError> {
    let limit = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    close_beyond(&client_list()?, &tenant.user, limit)
}

/// Records (or, without a limit, forgets) the user's connection limit for `maintain`.
fn connection_limit_command(tenant: &Tenant, limits: Limits) -> Vec<Vec<u8>> {
    match limits.get("connections") {
        Some(n) => args(&["HSET", CONNECTION_LIMITS, &tenant.user, &n.to_string()]),
        None => args(&["HDEL", CONNECTION_LIMITS, &tenant.user]),
    }
}

/// The server settings that would let one tenant's command or client take memory from
/// everyone, described.
fn unsafe_server_settings() -> Result<Vec<String>, ProviderError> {
    let config = |name: &str| -> Result<String, ProviderError> {
        Ok(pairs(run(args(&["CONFIG", "GET", name]))?)
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .unwrap_or_default())
    };
    let mut found = Vec::new();
    if config("maxmemory")? == "0" {
        found.push("no maxmemory".to_string());
    }
    let policy = config("maxmemory-policy")?;
    if policy != "noeviction" {
        found.push(format!(
            "maxmemory-policy {policy} evicts other tenants' keys"
        ));
    }
    let bulk: u64 = config("proto-max-bulk-len")?.parse().unwrap_or(u64::MAX);
    if bulk > MAX_BULK_BYTES {
        found.push(format!(
            "proto-max-bulk-len {bulk} (one command allocates that much)"
        ));
    }
    let query_buffer: u64 = config("client-query-buffer-limit")?
        .parse()
        .unwrap_or(u64::MAX);
    if query_buffer > 2 * MAX_BULK_BYTES {
        found.push(format!("client-query-buffer-limit {query_buffer}"));
    }
    let output = config("client-output-buffer-limit")?;
    if output.starts_with("normal 0 0 0") {
        found.push("no client-output-buffer-limit for normal clients".to_string());
    }
    Ok(found)
}

/// A flat array reply of bulk strings as (name, value) pairs.
fn pairs(reply: Vec<ReplyNode>) -> Vec<(String, String)> {
    let texts: Vec<String> = reply
        .into_iter()
        .filter_map(|n| match n {
            ReplyNode::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        })
        .collect();
    texts
        .chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
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
    REDIS.error(e)
}
