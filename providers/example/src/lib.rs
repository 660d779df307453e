//! The example provider: the smallest complete provider, written to be read.
//!
//! Kind `schema`: a private PostgreSQL schema in the maintenance database of the server the
//! operator bound to the `sql` capability, owned by a new login role. Both are named
//! `ex_<resource-id>`. It follows every rule of the contract (`wit/`) in the plainest way;
//! `providers/postgres` shows the same ideas tuned for production. The SDK
//! (`instanode-provider-kit`) brings the contract, so this file is only what it decides.
//!
//! Settings (`[providers.<name>.config]`): `public_host` (default `127.0.0.1`),
//! `public_port` (default `5432`) and `database` (default `postgres`) say where tenants
//! connect. `fault` breaks the provider on purpose, to show what `instanode provider check`
//! catches: `adopt` (a second provision of the same id fails with "already exists" instead
//! of adopting: the classic mistake), `deprovision-twice` (deprovisioning what is already
//! gone fails), `suspend` (suspend answers success and changes nothing).

use instanode_provider_kit::errors::{SQL, gone, internal};
use instanode_provider_kit::log::{self, Level};
use instanode_provider_kit::sql::{self, Value};
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Provider, data_kind, random_password, resource_hex, settings};

/// Connections a tenant may hold when its tier names no `connections` limit.
const DEFAULT_CONNECTIONS: u64 = 2;

struct Example;

impl Provider for Example {
    /// Only static facts: the host calls this at load time, before any backend is needed.
    fn describe() -> Info {
        Info {
            name: "example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![data_kind("schema", "schema", "SCHEMA_URL")],
        }
    }

    /// Creates the role and its schema, or adopts them when an earlier attempt with the same
    /// resource id got there first.
    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        // Every name comes from the checked resource id; `request.name` is the caller's
        // label and never goes near a statement.
        let role = role_name(&request.resource_id)?;
        let connections = request.limits().get_or("connections", DEFAULT_CONNECTIONS);
        // `[A-Za-z0-9]` only, so it can sit inside a SQL literal and a URL unescaped. Role
        // statements cannot bind parameters, so the password is spelled out (`providers/
        // postgres` sends a SCRAM verifier, which keeps it out of the server's log).
        let password = random_password()?;
        let create = format!(
            r#"CREATE ROLE "{role}" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
               NOBYPASSRLS CONNECTION LIMIT {connections} PASSWORD '{password}'"#
        );
        match sql::execute(None, &create, &[]) {
            Ok(_) => {}
            // 42710 duplicate_object: the role exists, so this is a retry. Adopt it with a
            // fresh password: the caller only ever sees the credentials of the last success.
            Err(CapabilityError::Backend(e)) if e.code == "42710" && fault("adopt") => {
                return Err(ProviderError::Conflict("already exists".into()));
            }
            Err(CapabilityError::Backend(e)) if e.code == "42710" => {
                log::write(Level::Info, &format!("adopting existing role {role}"));
                execute(&format!(
                    r#"ALTER ROLE "{role}" WITH LOGIN CONNECTION LIMIT {connections} PASSWORD '{password}'"#
                ))?;
            }
            Err(e) => return Err(SQL.error(e)),
        }
        // Unqualified names resolve to the tenant's schema, the only place the role can
        // create anything (PostgreSQL 15 took CREATE on `public` from PUBLIC).
        execute(&format!(
            r#"ALTER ROLE "{role}" SET search_path = "{role}""#
        ))?;
        execute(&format!(
            r#"CREATE SCHEMA IF NOT EXISTS "{role}" AUTHORIZATION "{role}""#
        ))?;
        // Servers that revoke CONNECT from PUBLIC (as they should) need it granted per role.
        let database = database()?;
        execute(&format!(
            r#"GRANT CONNECT ON DATABASE "{database}" TO "{role}""#
        ))?;

        let host = settings::get_or("public_host", "127.0.0.1");
        let port = settings::get_or("public_port", "5432");
        Ok(Provisioned {
            connection_url: format!("postgres://{role}:{password}@{host}:{port}/{database}"),
            internal_url: None,
            fields: vec![("schema".into(), role)],
            // The host seals the state and hands it back on later calls. Nothing later needs
            // the password, but state is where a secret belongs, never `fields`.
            state: password,
        })
    }

    /// Removes the schema and the role, and succeeds when they are already gone.
    fn deprovision(target: ResourceRef) -> Result<(), ProviderError> {
        let role = role_name(&target.resource_id)?;
        // Open sessions hold locks that would make DROP SCHEMA wait.
        lock_out(&role)?;
        execute(&format!(r#"DROP SCHEMA IF EXISTS "{role}" CASCADE"#))?;
        if role_exists(&role)? {
            // A role holding a privilege cannot be dropped.
            let database = database()?;
            execute(&format!(
                r#"REVOKE CONNECT ON DATABASE "{database}" FROM "{role}""#
            ))?;
        }
        if fault("deprovision-twice") {
            // Without IF EXISTS the second deprovision fails: 42704 undefined_object.
            return execute(&format!(r#"DROP ROLE "{role}""#));
        }
        execute(&format!(r#"DROP ROLE IF EXISTS "{role}""#))
    }

    /// Storage is the size of every table in the schema, indexes and TOAST included
    /// (`pg_total_relation_size` of a table already counts them). Connections are the
    /// role's open sessions.
    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError> {
        let role = role_name(&target.resource_id)?;
        let rows = query(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relkind IN ('r', 'm'))::int8,
                    (SELECT count(*) FROM pg_stat_activity WHERE usename = $1)::int8",
            &[Value::Text(role)],
        )?;
        match rows.first().map(Vec::as_slice) {
            Some([Value::Int(bytes), Value::Int(sessions)]) => Ok(UsageReport {
                storage_bytes: (*bytes).max(0) as u64,
                connections: (*sessions).clamp(0, u32::MAX.into()) as u32,
                extra: vec![],
            }),
            other => Err(internal(format!("unexpected usage row {other:?}"))),
        }
    }

    /// Over quota: the role may no longer log in, and its open sessions end. This is the
    /// bluntest choice; `providers/postgres` keeps tenants able to read and delete instead.
    fn suspend(target: ResourceRef) -> Result<(), ProviderError> {
        let role = role_name(&target.resource_id)?;
        if fault("suspend") {
            return Ok(()); // Claims success and changes nothing: the credentials keep working.
        }
        lock_out(&role)
    }

    /// Lets the role log in again with the tier's connection limit. The host also calls
    /// this after the owner's tier changed, so it always applies the current limits.
    fn resume(target: ResourceRef) -> Result<(), ProviderError> {
        let role = role_name(&target.resource_id)?;
        if !role_exists(&role)? {
            return Err(gone());
        }
        let connections = target.limits().get_or("connections", DEFAULT_CONNECTIONS);
        execute(&format!(
            r#"ALTER ROLE "{role}" LOGIN CONNECTION LIMIT {connections}"#
        ))
    }

    /// One round trip through the `sql` capability proves the server answers.
    fn check() -> Result<String, ProviderError> {
        query("SELECT 1", &[])?;
        Ok("postgres reachable".into())
    }

    // `maintain` keeps the SDK's default, which does nothing: there is no pool to refill.
}

instanode_provider_kit::export_provider!(Example);

/// `ex_<resource-id>`, the name of both the role and the schema. The id is checked to be 32
/// lowercase hex characters, which is what makes the name safe inside double quotes.
fn role_name(resource_id: &str) -> Result<String, ProviderError> {
    Ok(format!("ex_{}", resource_hex(resource_id)?))
}

/// The database tenants connect to (the `sql` server's maintenance database). It is quoted
/// into statements, so only plain names are accepted.
fn database() -> Result<String, ProviderError> {
    let database = settings::get_or("database", "postgres");
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if (1..=63).contains(&database.len()) && database.chars().all(plain) {
        return Ok(database);
    }
    Err(ProviderError::InvalidRequest(format!(
        "setting `database` must be a plain database name, not {database:?}"
    )))
}

/// Whether the operator asked for the deliberate fault `name`.
fn fault(name: &str) -> bool {
    settings::get("fault").as_deref() == Some(name)
}

/// A bound parameter, not string formatting: the role name is a value here.
fn role_exists(role: &str) -> Result<bool, ProviderError> {
    let rows = query(
        "SELECT 1 FROM pg_roles WHERE rolname = $1",
        &[Value::Text(role.into())],
    )?;
    Ok(!rows.is_empty())
}

/// Refuses new logins first, so no session sneaks in, then ends the open ones (login rights
/// are checked only when a session starts).
fn lock_out(role: &str) -> Result<(), ProviderError> {
    if role_exists(role)? {
        execute(&format!(r#"ALTER ROLE "{role}" NOLOGIN"#))?;
    }
    query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        &[Value::Text(role.into())],
    )
    .map(drop)
}

/// Runs one statement in the maintenance database.
fn execute(statement: &str) -> Result<(), ProviderError> {
    sql::execute(None, statement, &[])
        .map(drop)
        .map_err(|e| SQL.error(e))
}

/// Runs one query in the maintenance database.
fn query(statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, ProviderError> {
    sql::query(None, statement, params).map_err(|e| SQL.error(e))
}
