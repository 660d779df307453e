//! The postgres provider: one role and one database per resource on a shared PostgreSQL
//! server, reached only through the host's `sql` capability.
//!
//! Kinds: `db` (plain PostgreSQL) and `vector` (the same, copied from a template database
//! that already has pgvector installed, so provisioning never waits on `CREATE EXTENSION`).
//!
//! Speed: `CREATE DATABASE` costs tens of milliseconds, renaming and re-owning one costs
//! well under one. `maintain` keeps a small warm pool of databases per kind, closed to
//! everyone, and `provision` renames one to the tenant's name; an empty pool falls back to
//! creating the database directly.

mod names;
mod scram;

use instanode_provider_kit::endpoint::Endpoint;
use instanode_provider_kit::errors::{gone, internal};
use instanode_provider_kit::log::{self, Level};
use instanode_provider_kit::postgres::{
    self as pg, end_sessions_of, execute, execute_in, int_at, query, query_in, text,
};
use instanode_provider_kit::sql::{self, Value};
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Provider, data_kind, random_bytes, random_password, settings};
use names::{Ident, ResourceNames};
use serde::{Deserialize, Serialize};

/// Connection cap when the tier names none.
const DEFAULT_CONNECTIONS: u64 = 2;
/// Pre-created databases kept ready per kind unless the `warm_pool` setting says otherwise.
const DEFAULT_WARM_POOL: u64 = 16;
/// Databases created per `maintain` call, so one call stays well inside its deadline.
const MAX_REFILL_PER_RUN: u64 = 4;
/// The template every `vector` database is copied from.
const VECTOR_TEMPLATE: &str = "instanode_template_vector";

/// This build's version. The `next-version` feature marks an otherwise identical build as
/// the next one, so upgrades can be exercised against a real component.
const VERSION: &str = if cfg!(feature = "next-version") {
    concat!(env!("CARGO_PKG_VERSION"), "+next")
} else {
    env!("CARGO_PKG_VERSION")
};

/// What the host keeps (sealed) for each resource.
#[derive(Serialize, Deserialize)]
struct State {
    database: String,
    role: String,
}

struct Postgres;

impl Provider for Postgres {
    fn describe() -> Info {
        Info {
            name: "postgres".into(),
            version: VERSION.into(),
            kinds: vec![
                data_kind("db", "postgres", "DATABASE_URL"),
                data_kind("vector", "vector", "DATABASE_URL"),
            ],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        let names = ResourceNames::for_resource(&request.resource_id)?;
        let connections = request.limits().get_or("connections", DEFAULT_CONNECTIONS);
        let password = random_password()?;
        let verifier = scram::verifier(&password, &random_bytes::<16>()?);

        create_tenant(&request.kind, &names, &verifier, connections)?;

        let (connection_url, internal_url) = Endpoint::from_config()?.urls(|host, port| {
            format!(
                "postgres://{}:{password}@{host}:{port}/{}",
                names.role.as_str(),
                names.database.as_str()
            )
        });
        let fields = match request.kind.as_str() {
            "vector" => vec![("extension".to_string(), "pgvector".to_string())],
            _ => vec![],
        };
        let state = State {
            database: names.database.as_str().into(),
            role: names.role.as_str().into(),
        };
        Ok(Provisioned {
            connection_url,
            internal_url,
            fields,
            state: serde_json::to_string(&state).map_err(internal)?,
        })
    }

    fn deprovision(resource: ResourceRef) -> Result<(), ProviderError> {
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        let (db, role) = (names.database.quoted(), names.role.quoted());
        if pg::role_exists(names.role.as_str())? {
            // Stop new logins first, so nothing reconnects between terminate and drop.
            execute(&format!("ALTER ROLE {role} NOLOGIN"))?;
        }
        terminate_sessions(&names)?;
        execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
        execute(&format!("DROP ROLE IF EXISTS {role}"))?;
        execute(&format!("DROP ROLE IF EXISTS {}", names.holder.quoted()))?;
        Ok(())
    }

    fn usage(resource: ResourceRef) -> Result<UsageReport, ProviderError> {
        // Storage counts what the tenant added: the database's size less the size of the
        // template it was copied from (an empty database is already ~7.5 MB of catalog).
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        let template = match resource.kind.as_str() {
            "vector" => VECTOR_TEMPLATE,
            _ => "template1",
        };
        let rows = query(
            "SELECT coalesce((SELECT pg_database_size(datname) FROM pg_database WHERE datname = $1), 0)::int8,
                    coalesce((SELECT pg_database_size(datname) FROM pg_database WHERE datname = $3), 0)::int8,
                    (SELECT count(*) FROM pg_stat_activity WHERE usename = $2)::int8",
            &[text(names.database.as_str()), text(names.role.as_str()), text(template)],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| internal("usage query returned no row"))?;
        let (size, baseline) = (int_at(row, 0)?, int_at(row, 1)?);
        Ok(UsageReport {
            storage_bytes: (size - baseline).max(0) as u64,
            connections: int_at(row, 2)?.clamp(0, u32::MAX.into()) as u32,
            extra: vec![("database_bytes".into(), size.max(0) as u64)],
        })
    }

    /// Over quota, the tenant keeps reading and deleting but can no longer write or create.
    /// Session settings such as `default_transaction_read_only` can be switched off by the
    /// tenant, and refusing logins would leave no way to delete data and get back under
    /// the limit. So ownership of everything in the database (and of the database itself)
    /// moves to a per-resource holder role, and the tenant is granted back only SELECT,
    /// DELETE and TRUNCATE. Privileges are checked per statement, so open sessions are
    /// bound at once. TRUNCATE or DROP free space right away; DELETE frees it only once
    /// autovacuum has run.
    fn suspend(resource: ResourceRef) -> Result<(), ProviderError> {
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        if !pg::role_exists(names.role.as_str())? {
            return Ok(());
        }
        let (db, role, holder) = (
            names.database.as_str(),
            names.role.quoted(),
            names.holder.quoted(),
        );
        if !pg::role_exists(names.holder.as_str())? {
            match execute(&format!("CREATE ROLE {holder} NOLOGIN")) {
                Err(ProviderError::Conflict(_)) | Ok(()) => {}
                Err(e) => return Err(e),
            }
        }
        let reassign = format!("REASSIGN OWNED BY {role} TO {holder}");
        match sql::execute(Some(db), &reassign, &[]) {
            Ok(_) => {}
            // The tenant can hold locks on its own objects to keep its suspension waiting
            // forever. Its sessions end (logins paused so none comes back in between; it may
            // reconnect and read afterwards) and the move is tried once more.
            Err(CapabilityError::Backend(e)) if LOCKED_OUT.contains(&e.code.as_str()) => {
                let logins = |verb: &str| execute(&format!("ALTER ROLE {role} {verb}"));
                logins("NOLOGIN")?;
                let moved =
                    end_sessions_of(names.role.as_str()).and_then(|()| execute_in(db, &reassign));
                logins("LOGIN")?;
                moved?;
            }
            Err(e) => return Err(pg::error(e)),
        }
        // Schema names are the tenant's: they reach the statements only as identifiers the
        // provider quotes itself, never through SQL-side `format()` run as the admin.
        let schemas = query_in(
            db,
            "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_namespace n
              WHERE NOT pg_catalog.starts_with(n.nspname::pg_catalog.text, 'pg_')
                AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'",
        )?;
        let grants: String = schemas
            .iter()
            .filter_map(|row| match row.first() {
                Some(Value::Text(name)) => Some(names::quote_catalog_name(name)),
                _ => None,
            })
            .map(|schema| {
                format!(
                    "GRANT USAGE ON SCHEMA {schema} TO {role};
                     GRANT SELECT, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {schema} TO {role};
                     GRANT SELECT, USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role};"
                )
            })
            .collect();
        if !grants.is_empty() {
            execute_in(db, &grants)?;
        }
        execute(&format!(
            "GRANT CONNECT ON DATABASE {} TO {role}",
            names.database.quoted()
        ))
    }

    fn resume(resource: ResourceRef) -> Result<(), ProviderError> {
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        if !pg::role_exists(names.role.as_str())? {
            return Err(gone());
        }
        if pg::role_exists(names.holder.as_str())? {
            let (db, role, holder) = (
                names.database.as_str(),
                names.role.quoted(),
                names.holder.quoted(),
            );
            execute_in(db, &format!("REASSIGN OWNED BY {holder} TO {role}"))?;
            execute_in(db, &format!("DROP OWNED BY {holder}"))?;
            execute(&format!("DROP ROLE IF EXISTS {holder}"))?;
        }
        // The host also resumes after a tier change: apply the tier's connection limit.
        if let Some(connections) = resource.limits().get("connections") {
            execute(&format!(
                "ALTER ROLE {} CONNECTION LIMIT {connections}",
                names.role.quoted()
            ))?;
        }
        Ok(())
    }

    fn check() -> Result<String, ProviderError> {
        let rows = query("SELECT current_setting('server_version')", &[])?;
        let version = match rows.first().and_then(|r| r.first()) {
            Some(Value::Text(v)) => v.clone(),
            _ => "unknown".into(),
        };
        Ok(format!("postgres {version} reachable"))
    }

    fn maintain() -> Result<(), ProviderError> {
        refill_pools()
    }
}

instanode_provider_kit::export_provider!(Postgres);

/// Creates the tenant's role and database (create-or-adopt). The common case is one batch,
/// one transaction: create the role, rename a warm-pool database to the tenant's name, hand
/// it over. Without a pooled database it falls back to `CREATE DATABASE`.
fn create_tenant(
    kind: &str,
    names: &ResourceNames,
    verifier: &str,
    connections: u64,
) -> Result<(), ProviderError> {
    let facts = query(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
                EXISTS (SELECT 1 FROM pg_database WHERE datname = $2)",
        &[text(names.role.as_str()), text(names.database.as_str())],
    )?;
    let (role_exists, database_exists) = match facts.first().map(Vec::as_slice) {
        Some([Value::Boolean(r), Value::Boolean(d)]) => (*r, *d),
        other => return Err(internal(format!("unexpected existence row {other:?}"))),
    };
    let role = role_statement(&names.role, role_exists, verifier, connections);
    let hand_over = format!(
        "ALTER DATABASE {} OWNER TO {}",
        names.database.quoted(),
        names.role.quoted()
    );
    if database_exists {
        // A retry of a provision that got this far, or a rotation: adopt and finish the job.
        // Sessions opened with the old password end now (a password is only checked at
        // login), and a suspended database stays with its holder.
        execute(&role)?;
        end_sessions_of(names.role.as_str())?;
        close_database(&names.database, Some(&names.role))?;
        if pg::role_exists(names.holder.as_str())? {
            return Ok(());
        }
        return execute(&hand_over);
    }
    for pooled in pool_candidates(kind)? {
        let batch = format!(
            "{role}; ALTER DATABASE {} RENAME TO {}; {hand_over}",
            pooled.quoted(),
            names.database.quoted()
        );
        match sql::execute(None, &batch, &[]) {
            // Pooled databases were closed before they joined the pool: nothing else to do.
            Ok(_) => return Ok(()),
            // invalid_catalog_name: a concurrent provision took this one first.
            Err(CapabilityError::Backend(e))
                if e.code == "3D000" || BUSY.contains(&e.code.as_str()) =>
            {
                continue;
            }
            Err(e) => return Err(pg::error(e)),
        }
    }
    execute(&role)?;
    let template = template_for(kind)?;
    let create = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        names.database.quoted(),
        template.quoted()
    );
    retry_busy(|| match sql::execute(None, &create, &[]) {
        // Lost a race with a concurrent retry of the same provision: adopt its database.
        Err(CapabilityError::Backend(e)) if e.code == DUPLICATE_DATABASE => Ok(0),
        other => other,
    })
    .map_err(pg::error)?;
    close_database(&names.database, Some(&names.role))?;
    execute(&hand_over)
}

/// `CREATE ROLE` (or `ALTER ROLE` when adopting) for a tenant.
fn role_statement(role: &Ident, exists: bool, verifier: &str, connections: u64) -> String {
    let verb = if exists { "ALTER" } else { "CREATE" };
    // INHERIT: the owner reaches its `public` schema through `pg_database_owner`.
    // The password travels as a SCRAM verifier: the clear text never reaches the server
    // (nor its logs). The verifier alphabet is base64 plus `$:`, so it cannot close the quote.
    format!(
        "{verb} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION \
         NOBYPASSRLS CONNECTION LIMIT {connections} PASSWORD '{verifier}'",
        role.quoted()
    )
}

/// Revokes every default right of PUBLIC on `database`, then ends any session another role
/// opened before the revoke (connect rights are only checked when a session starts).
fn close_database(database: &Ident, owner: Option<&Ident>) -> Result<(), ProviderError> {
    execute(&format!(
        "REVOKE ALL ON DATABASE {} FROM PUBLIC",
        database.quoted()
    ))?;
    query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = $1 AND usename IS DISTINCT FROM $2 AND pid <> pg_backend_pid()",
        &[
            text(database.as_str()),
            owner.map_or(Value::Null, |o| text(o.as_str())),
        ],
    )?;
    Ok(())
}

/// The database every new database of `kind` is copied from.
fn template_for(kind: &str) -> Result<Ident, ProviderError> {
    match kind {
        "vector" => ensure_vector_template(),
        _ => Ident::new("template1"),
    }
}

/// The name prefix of pre-created databases waiting for a `kind` tenant.
fn pool_prefix(kind: &str) -> String {
    format!("instanode_pool_{kind}_")
}

/// A few pre-created databases of `kind`, in random order so concurrent provisions rarely
/// reach for the same one.
fn pool_candidates(kind: &str) -> Result<Vec<Ident>, ProviderError> {
    let rows = query(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname::text, $1)
         ORDER BY random() LIMIT 8",
        &[text(&pool_prefix(kind))],
    )?;
    rows.iter()
        .filter_map(|row| match row.first() {
            Some(Value::Text(name)) => Some(Ident::new(name)),
            _ => None,
        })
        .collect()
}

/// Tops the warm pool of each kind up to `warm_pool` databases (a few per run, so a call
/// stays short). Each database is created under a staging name, closed, and only then
/// renamed into the pool, so no tenant can be connected to a pooled database.
fn refill_pools() -> Result<(), ProviderError> {
    let target: u64 = settings::get("warm_pool")
        .map(|v| {
            v.parse()
                .map_err(|_| internal("warm_pool must be a number"))
        })
        .transpose()?
        .unwrap_or(DEFAULT_WARM_POOL);
    for kind in ["db", "vector"] {
        let rows = query(
            "SELECT count(*)::int8 FROM pg_database WHERE starts_with(datname::text, $1)",
            &[text(&pool_prefix(kind))],
        )?;
        let have = rows.first().map(|r| int_at(r, 0)).transpose()?.unwrap_or(0);
        let missing = target
            .saturating_sub(have.max(0) as u64)
            .min(MAX_REFILL_PER_RUN);
        let template = if missing > 0 {
            Some(template_for(kind)?)
        } else {
            None
        };
        for _ in 0..missing {
            let suffix = hex(&random_bytes::<16>()?);
            let staging = Ident::new(&format!("instanode_staging_{suffix}"))?;
            let pooled = Ident::new(&format!("{}{suffix}", pool_prefix(kind)))?;
            let template = template.as_ref().expect("set when missing > 0");
            execute(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                staging.quoted(),
                template.quoted()
            ))?;
            // The first session in a new database builds its catalog cache file; do it now so
            // the tenant's first connection does not pay for it.
            sql::execute(Some(staging.as_str()), "SELECT 1", &[]).map_err(pg::error)?;
            close_database(&staging, None)?;
            execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                staging.quoted(),
                pooled.quoted()
            ))?;
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes sure the pgvector template exists, creating it on first use. Concurrent first
/// uses race on the same catalog rows; each loser re-reads the state and carries on.
fn ensure_vector_template() -> Result<Ident, ProviderError> {
    let template = Ident::new(VECTOR_TEMPLATE)?;
    retry_busy(|| prepare_template(&template)).map_err(pg::error)?;
    Ok(template)
}

fn prepare_template(template: &Ident) -> Result<u64, CapabilityError> {
    let state = sql::query(
        None,
        "SELECT datistemplate FROM pg_database WHERE datname = $1",
        &[text(template.as_str())],
    )?;
    match state.first().and_then(|r| r.first()) {
        Some(Value::Boolean(true)) => return Ok(0),
        Some(_) => {}
        None => {
            log::write(Level::Info, "creating the pgvector template database");
            sql::execute(None, &format!("CREATE DATABASE {}", template.quoted()), &[])?;
        }
    }
    let quoted = template.quoted();
    sql::execute(
        None,
        &format!("REVOKE ALL ON DATABASE {quoted} FROM PUBLIC"),
        &[],
    )?;
    sql::execute(
        Some(template.as_str()),
        "CREATE EXTENSION IF NOT EXISTS vector",
        &[],
    )?;
    sql::execute(
        None,
        &format!("ALTER DATABASE {quoted} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
        &[],
    )
}

/// SQLSTATEs that mean "someone else is changing the same thing right now".
const BUSY: [&str; 4] = [
    "42P04", // duplicate_database
    "23505", // unique_violation
    "55006", // object_in_use: a template is being copied or set up
    "XX000", // tuple concurrently updated
];
const DUPLICATE_DATABASE: &str = "42P04";
const BUSY_ATTEMPTS: u32 = 50;

/// Repeats `step` while it fails because of concurrent work on the same objects.
fn retry_busy(
    mut step: impl FnMut() -> Result<u64, CapabilityError>,
) -> Result<u64, CapabilityError> {
    let mut attempt = 0;
    loop {
        match step() {
            Err(CapabilityError::Backend(e))
                if BUSY.contains(&e.code.as_str()) && attempt < BUSY_ATTEMPTS =>
            {
                attempt += 1;
                pause_ms(10);
            }
            other => return other,
        }
    }
}

/// Sleeps through WASI's monotonic clock (the host bounds the call's total time anyway).
fn pause_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// SQLSTATEs of a statement that gave up waiting for a lock (lock or statement timeout).
const LOCKED_OUT: [&str; 2] = ["55P03", "57014"];

fn terminate_sessions(names: &ResourceNames) -> Result<(), ProviderError> {
    query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 OR usename = $2",
        &[text(names.database.as_str()), text(names.role.as_str())],
    )?;
    Ok(())
}
