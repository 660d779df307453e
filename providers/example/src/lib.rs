//! The example provider: the smallest complete provider, written to be read.
//!
//! Kind `schema`: a private PostgreSQL schema in the maintenance database of the server the
//! operator bound to the `sql` capability, owned by a new login role. Both are named
//! `ex_<resource-id>`. It follows every rule of the contract (`wit/`) in the
//! plainest way; `providers/postgres` shows the same ideas tuned for production.
//!
//! Settings (`[providers.<name>.config]`): `public_host` (default `127.0.0.1`),
//! `public_port` (default `5432`) and `database` (default `postgres`) say where tenants
//! connect. `fault` breaks the provider on purpose, for demonstrating what
//! `instanode provider check` catches:
//!
//! - `adopt`: a second provision of the same resource id fails with "already exists"
//!   instead of adopting what the first one created (the classic mistake);
//! - `deprovision-twice`: deprovisioning a resource that is already gone fails;
//! - `suspend`: suspend answers success without doing anything, so the credentials keep
//!   working.
//!
//! Leave `fault` unset for the correct behaviour.

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
use instanode::provider::log::{self, Level};
use instanode::provider::sql::{self, Value};
use instanode::provider::types::{
    CapabilityError, Creation, Info, KindInfo, ProviderError, ProvisionRequest, Provisioned,
    ResourceRef, UsageReport,
};

/// Connections a tenant may hold when its tier names no `connections` limit.
const DEFAULT_CONNECTIONS: u64 = 2;

struct Example;

impl Guest for Example {
    /// Only static facts: the host calls this at load time, before any backend is needed.
    fn describe() -> Info {
        Info {
            name: "example".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![KindInfo {
                name: "schema".into(),
                label: "schema".into(),
                creation: Creation::JsonBody,
                rotatable: true,
                internal: true,
                env_var: "SCHEMA_URL".into(),
                request_fields: vec![],
            }],
        }
    }

    /// Creates the role and its schema, or adopts them when an earlier attempt with the same
    /// resource id got there first (the host retries provisions with the same id).
    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        if request.kind != "schema" {
            return Err(ProviderError::InvalidRequest(format!(
                "unknown kind {}",
                request.kind
            )));
        }
        // Every name comes from the validated resource id; `request.name` is the caller's
        // label and never goes near a statement.
        let role = role_name(&request.resource_id)?;
        let connections = connection_limit(&request.limits);
        // `[A-Za-z0-9]` only, so it can sit inside a SQL literal and a URL unescaped. Role
        // statements cannot bind parameters, so the password has to be spelled out.
        // (`providers/postgres` sends a SCRAM verifier instead, which keeps the clear text
        // out of the server's statement log.)
        let password = instanode_provider_kit::random_password().map_err(internal)?;

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
            Err(e) => return Err(from_sql(e)),
        }
        // Unqualified names resolve to the tenant's schema. Since PostgreSQL 15, PUBLIC has no
        // CREATE on the `public` schema, so the schema below is the only place the role can
        // create anything. On older servers the operator must revoke that right first.
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

        let host = setting("public_host", "127.0.0.1");
        let port = setting("public_port", "5432");
        Ok(Provisioned {
            connection_url: format!("postgres://{role}:{password}@{host}:{port}/{database}"),
            internal_url: None,
            fields: vec![("schema".into(), role)],
            // The host seals the state and hands it back on later calls. Nothing later needs
            // the password (every other call works from the resource id), but state is where
            // a secret belongs, never `fields`.
            state: password,
        })
    }

    /// Removes the schema and the role. Succeeds when they are already gone, because the
    /// host repeats deprovisions (undo of a failed provision, TTL reaper, user delete).
    fn deprovision(target: ResourceRef) -> Result<(), ProviderError> {
        let role = role_name(&target.resource_id)?;
        if role_exists(&role)? {
            // Refuse new logins first, so no session sneaks in between terminate and drop.
            execute(&format!(r#"ALTER ROLE "{role}" NOLOGIN"#))?;
        }
        // Open sessions hold locks that would make DROP SCHEMA wait.
        terminate_sessions(&role)?;
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
    /// (`pg_total_relation_size` of a table already counts its indexes, so they are not
    /// summed again). Connections are the role's open sessions.
    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError> {
        let role = role_name(&target.resource_id)?;
        let rows = sql::query(
            None,
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relkind IN ('r', 'm'))::int8,
                    (SELECT count(*) FROM pg_stat_activity WHERE usename = $1)::int8",
            &[Value::Text(role)],
        )
        .map_err(from_sql)?;
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
            // Claims success and changes nothing: the credentials keep working.
            return Ok(());
        }
        if role_exists(&role)? {
            execute(&format!(r#"ALTER ROLE "{role}" NOLOGIN"#))?;
        }
        // Login rights are checked only when a session starts, so end the open ones.
        terminate_sessions(&role)
    }

    /// Lets the role log in again with the tier's connection limit. The host also calls
    /// this after the owner's tier changed, so it always applies the current limits.
    fn resume(target: ResourceRef) -> Result<(), ProviderError> {
        let role = role_name(&target.resource_id)?;
        if !role_exists(&role)? {
            return Err(ProviderError::Conflict(
                "the resource no longer exists".into(),
            ));
        }
        let connections = connection_limit(&target.limits);
        execute(&format!(
            r#"ALTER ROLE "{role}" LOGIN CONNECTION LIMIT {connections}"#
        ))
    }

    /// One round trip through the `sql` capability proves the server answers.
    fn check() -> Result<String, ProviderError> {
        sql::query(None, "SELECT 1", &[]).map_err(from_sql)?;
        Ok("postgres reachable".into())
    }

    /// Nothing to do: the provider keeps no pool of pre-created objects to refill.
    fn maintain() -> Result<(), ProviderError> {
        Ok(())
    }
}

/// The database tenants connect to (the `sql` server's maintenance database). It is quoted
/// into statements, so only plain names are accepted.
fn database() -> Result<String, ProviderError> {
    let database = setting("database", "postgres");
    let plain = !database.is_empty()
        && database.len() <= 63
        && database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        Ok(database)
    } else {
        Err(ProviderError::InvalidRequest(format!(
            "setting `database` must be a plain database name, not {database:?}"
        )))
    }
}

export!(Example);

/// `ex_<resource-id>`, the name of both the role and the schema. Checking that the id is 32
/// lowercase hex characters is what makes the name safe to put inside double quotes.
fn role_name(resource_id: &str) -> Result<String, ProviderError> {
    let hex =
        instanode_provider_kit::resource_hex(resource_id).map_err(ProviderError::InvalidRequest)?;
    Ok(format!("ex_{hex}"))
}

/// The tier's `connections` limit, or the default when the tier names none.
fn connection_limit(limits: &[(String, u64)]) -> u64 {
    limits
        .iter()
        .find(|(name, _)| name == "connections")
        .map_or(DEFAULT_CONNECTIONS, |(_, value)| *value)
}

/// An operator setting, or `default` when it is unset.
fn setting(key: &str, default: &str) -> String {
    config::get(key).unwrap_or_else(|| default.into())
}

/// Whether the operator asked for the deliberate fault `name`.
fn fault(name: &str) -> bool {
    config::get("fault").as_deref() == Some(name)
}

/// A bound parameter, not string formatting: the role name is a value here, not an
/// identifier.
fn role_exists(role: &str) -> Result<bool, ProviderError> {
    let rows = sql::query(
        None,
        "SELECT 1 FROM pg_roles WHERE rolname = $1",
        &[Value::Text(role.into())],
    )
    .map_err(from_sql)?;
    Ok(!rows.is_empty())
}

/// Ends every session of `role` (none is fine).
fn terminate_sessions(role: &str) -> Result<(), ProviderError> {
    sql::query(
        None,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
        &[Value::Text(role.into())],
    )
    .map_err(from_sql)?;
    Ok(())
}

/// Runs one statement in the maintenance database.
fn execute(statement: &str) -> Result<(), ProviderError> {
    sql::execute(None, statement, &[])
        .map(|_| ())
        .map_err(from_sql)
}

/// Tells the host whether a retry may help (503) or something is plainly wrong.
fn from_sql(e: CapabilityError) -> ProviderError {
    match e {
        // The backend is down or busy: PostgreSQL's admin_shutdown, cannot_connect_now,
        // too_many_connections.
        CapabilityError::Unavailable(m) | CapabilityError::Timeout(m) => {
            ProviderError::BackendUnavailable(m)
        }
        CapabilityError::Backend(e) if ["57P01", "57P03", "53300"].contains(&e.code.as_str()) => {
            ProviderError::BackendUnavailable(e.message)
        }
        other => ProviderError::Internal(format!("sql: {other:?}")),
    }
}

fn internal(message: impl ToString) -> ProviderError {
    ProviderError::Internal(message.to_string())
}
