//! The example provider: the smallest complete provider, written to be read.
//!
//! Kind `schema`: a private PostgreSQL schema in the maintenance database of the server bound
//! to the `sql` capability, owned by a login role of the same name, `ex_<resource-id>`. It
//! follows every rule of the contract (`wit/`) in the plainest way; `providers/postgres`
//! shows the same ideas tuned for production. The SDK brings the contract and the SQL
//! chores, so this file is only what this provider decides.
//!
//! Settings: `public_host` (default `127.0.0.1`), `public_port` (`5432`) and `database`
//! (`postgres`) say where tenants connect. `fault` breaks it on purpose, to show what
//! `instanode provider check` catches: `adopt` (a retried provision fails instead of
//! adopting), `deprovision-twice` (deprovisioning what is gone fails), `suspend` (suspend
//! changes nothing).

use instanode_provider_kit::errors::{gone, internal};
use instanode_provider_kit::log::{self, Level};
use instanode_provider_kit::postgres::{
    self as pg, end_sessions_of, execute, int_at, query, role_exists, text,
};
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Provider, data_kind, random_password, resource_hex, settings, sql};

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
        // `[A-Za-z0-9]` only, so it can sit in a SQL literal and a URL unescaped (role
        // statements cannot bind parameters; `providers/postgres` sends a SCRAM verifier).
        let password = random_password()?;
        let login = format!("LOGIN CONNECTION LIMIT {connections} PASSWORD '{password}'");
        let create = format!(
            r#"CREATE ROLE "{role}" WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS {login}"#
        );
        match sql::execute(None, &create, &[]) {
            Ok(_) => {}
            // 42710 duplicate_object: the role exists, so this is a retry. Adopt it with a
            // fresh password: the caller only ever sees the credentials of the last success.
            Err(CapabilityError::Backend(e))
                if e.code == "42710" && !settings::is("fault", "adopt") =>
            {
                log::write(Level::Info, &format!("adopting existing role {role}"));
                execute(&format!(r#"ALTER ROLE "{role}" WITH {login}"#))?;
            }
            Err(e) => return Err(pg::error(e)),
        }
        let database = settings::plain_name_or("database", "postgres")?;
        for statement in [
            // Unqualified names resolve to the tenant's schema, the only place the role can
            // create anything (PostgreSQL 15 took CREATE on `public` from PUBLIC).
            format!(r#"ALTER ROLE "{role}" SET search_path = "{role}""#),
            format!(r#"CREATE SCHEMA IF NOT EXISTS "{role}" AUTHORIZATION "{role}""#),
            // Servers that revoke CONNECT from PUBLIC (as they should) grant it per role.
            format!(r#"GRANT CONNECT ON DATABASE "{database}" TO "{role}""#),
        ] {
            execute(&statement)?;
        }
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
            let database = settings::plain_name_or("database", "postgres")?;
            execute(&format!(
                r#"REVOKE CONNECT ON DATABASE "{database}" FROM "{role}""#
            ))?;
        }
        // Without IF EXISTS, a second deprovision fails: 42704 undefined_object.
        let if_exists = if settings::is("fault", "deprovision-twice") {
            ""
        } else {
            "IF EXISTS"
        };
        execute(&format!(r#"DROP ROLE {if_exists} "{role}""#))
    }

    /// Storage is every table in the schema, indexes and TOAST included (which
    /// `pg_total_relation_size` counts); connections are the role's open sessions.
    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError> {
        let role = role_name(&target.resource_id)?;
        let rows = query(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relkind IN ('r', 'm'))::int8,
                    (SELECT count(*) FROM pg_stat_activity WHERE usename = $1)::int8",
            &[text(&role)],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| internal("usage returned no row"))?;
        Ok(UsageReport {
            storage_bytes: int_at(row, 0)?.max(0) as u64,
            connections: int_at(row, 1)?.clamp(0, u32::MAX.into()) as u32,
            extra: vec![],
        })
    }

    /// Over quota: the role may no longer log in, and its open sessions end. This is the
    /// bluntest choice; `providers/postgres` keeps tenants able to read and delete instead.
    fn suspend(target: ResourceRef) -> Result<(), ProviderError> {
        let role = role_name(&target.resource_id)?;
        if settings::is("fault", "suspend") {
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

/// Refuses new logins first, so no session sneaks in, then ends the open ones (login rights
/// are checked only when a session starts).
fn lock_out(role: &str) -> Result<(), ProviderError> {
    if role_exists(role)? {
        execute(&format!(r#"ALTER ROLE "{role}" NOLOGIN"#))?;
    }
    end_sessions_of(role)
}
