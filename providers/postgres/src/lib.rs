//! The postgres provider: one role and one database per resource on a shared PostgreSQL
//! server, reached only through the host's `sql` capability.
//!
//! Kinds: `db` (plain PostgreSQL) and `vector` (the same, created from a template database
//! that already has pgvector installed, so provisioning never waits on `CREATE EXTENSION`).

#![expect(unsafe_code, reason = "the glue wit-bindgen generates for the component ABI is unsafe")]

mod names;
mod scram;

use names::{Ident, ResourceNames};
use serde::{Deserialize, Serialize};

wit_bindgen::generate!({
    world: "provider",
    path: "../../wit",
});

use exports::instanode::provider::provisioner::Guest;
use instanode::provider::log::{self, Level};
use instanode::provider::sql::{self, Value};
use instanode::provider::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode::provider::config;

/// Connection cap when the tier names none.
const DEFAULT_CONNECTIONS: u64 = 2;
/// The template every `vector` database is copied from.
const VECTOR_TEMPLATE: &str = "instanode_template_vector";

/// What the host keeps (sealed) for each resource.
#[derive(Serialize, Deserialize)]
struct State {
    database: String,
    role: String,
}

struct Postgres;

impl Guest for Postgres {
    fn describe() -> Info {
        Info {
            name: "postgres".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec!["db".into(), "vector".into()],
            capabilities: vec!["sql".into(), "log".into()],
            config_schema: CONFIG_SCHEMA.into(),
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        let names = ResourceNames::for_resource(&request.resource_id)?;
        let connections = limit(&request.limits, "connections").unwrap_or(DEFAULT_CONNECTIONS);
        let template = match request.kind.as_str() {
            "db" => None,
            "vector" => Some(ensure_vector_template()?),
            other => {
                return Err(ProviderError::InvalidRequest(format!("unknown kind {other}")));
            }
        };
        let password = random_password()?;
        let verifier = scram::verifier(&password, &random_bytes::<16>()?);

        upsert_role(&names.role, &verifier, connections)?;
        create_database(&names.database, &names.role, template.as_ref())?;

        let host = setting("public_host")?;
        let port = setting("public_port")?;
        let url = |host: &str, port: &str| {
            format!(
                "postgres://{}:{password}@{host}:{port}/{}",
                names.role.as_str(),
                names.database.as_str()
            )
        };
        let internal_url = match (config::get("internal_host"), config::get("internal_port")) {
            (Some(h), p) => Some(url(&h, p.as_deref().unwrap_or(&port))),
            (None, _) => None,
        };
        let fields = match request.kind.as_str() {
            "vector" => vec![("extension".to_string(), "pgvector".to_string())],
            _ => vec![],
        };
        let state = State {
            database: names.database.as_str().into(),
            role: names.role.as_str().into(),
        };
        Ok(Provisioned {
            connection_url: url(&host, &port),
            internal_url,
            fields,
            state: serde_json::to_string(&state).map_err(internal)?,
        })
    }

    fn deprovision(resource: ResourceRef) -> Result<(), ProviderError> {
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        let (db, role) = (names.database.quoted(), names.role.quoted());
        if role_exists(&names.role)? {
            // Stop new logins first, so nothing reconnects between terminate and drop.
            execute(&format!("ALTER ROLE {role} NOLOGIN"), &[])?;
        }
        terminate_sessions(&names)?;
        execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"), &[])?;
        execute(&format!("DROP ROLE IF EXISTS {role}"), &[])?;
        Ok(())
    }

    fn usage(resource: ResourceRef) -> Result<UsageReport, ProviderError> {
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        let rows = query(
            "SELECT coalesce((SELECT pg_database_size(datname) FROM pg_database WHERE datname = $1), 0)::int8,
                    (SELECT count(*) FROM pg_stat_activity WHERE usename = $2)::int8",
            &[text(names.database.as_str()), text(names.role.as_str())],
        )?;
        let row = rows.first().ok_or_else(|| internal("usage query returned no row"))?;
        Ok(UsageReport {
            storage_bytes: int_at(row, 0)?.max(0) as u64,
            connections: int_at(row, 1)?.clamp(0, u32::MAX.into()) as u32,
            extra: vec![],
        })
    }

    fn suspend(resource: ResourceRef) -> Result<(), ProviderError> {
        // A tenant could undo any session-level read-only switch, so suspension refuses
        // logins outright and ends the sessions already open.
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        if role_exists(&names.role)? {
            execute(&format!("ALTER ROLE {} NOLOGIN", names.role.quoted()), &[])?;
        }
        terminate_sessions(&names)
    }

    fn resume(resource: ResourceRef) -> Result<(), ProviderError> {
        let names = ResourceNames::for_resource(&resource.resource_id)?;
        if !role_exists(&names.role)? {
            return Err(ProviderError::Conflict("the resource no longer exists".into()));
        }
        execute(&format!("ALTER ROLE {} LOGIN", names.role.quoted()), &[])?;
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
}

export!(Postgres);

const CONFIG_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "required": ["public_host", "public_port"],
  "properties": {
    "public_host": {"type": "string", "description": "Host name agents connect to"},
    "public_port": {"type": "string", "description": "Port agents connect to"},
    "internal_host": {"type": "string", "description": "Host name for callers inside the deployment network"},
    "internal_port": {"type": "string", "description": "Port for internal_host (defaults to public_port)"}
  }
}"#;

/// Creates the tenant role, or adopts it (new password, current limit) on a retry.
fn upsert_role(role: &Ident, verifier: &str, connections: u64) -> Result<(), ProviderError> {
    let verb = if role_exists(role)? { "ALTER" } else { "CREATE" };
    // INHERIT: the owner reaches its `public` schema through `pg_database_owner`.
    // The password travels as a SCRAM verifier: the clear text never reaches the server
    // (nor its logs). The verifier alphabet is base64 plus `$:`, so it cannot close the quote.
    execute(
        &format!(
            "{verb} ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT \
             NOREPLICATION NOBYPASSRLS CONNECTION LIMIT {connections} PASSWORD '{verifier}'",
            role.quoted()
        ),
        &[],
    )
}

/// Creates the tenant database owned by its role, closed to everyone else.
fn create_database(
    database: &Ident,
    owner: &Ident,
    template: Option<&Ident>,
) -> Result<(), ProviderError> {
    let exists = !query(
        "SELECT 1 FROM pg_database WHERE datname = $1",
        &[text(database.as_str())],
    )?
    .is_empty();
    if !exists {
        let template = template.map(|t| format!(" TEMPLATE {}", t.quoted()));
        let statement = format!(
            "CREATE DATABASE {} OWNER {}{}",
            database.quoted(),
            owner.quoted(),
            template.unwrap_or_default()
        );
        retry_busy(|| match sql::execute(None, &statement, &[]) {
            // Lost a race with a concurrent retry of the same provision: adopt its database.
            Err(e) if e.code == DUPLICATE_DATABASE => Ok(0),
            other => other,
        })
        .map_err(from_sql)?;
    }
    execute(&format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", database.quoted()), &[])?;
    Ok(())
}

/// Makes sure the pgvector template exists, creating it on first use. Concurrent first
/// uses race on the same catalog rows; each loser re-reads the state and carries on.
fn ensure_vector_template() -> Result<Ident, ProviderError> {
    let template = Ident::new(VECTOR_TEMPLATE)?;
    retry_busy(|| prepare_template(&template)).map_err(from_sql)?;
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
    sql::execute(None, &format!("REVOKE ALL ON DATABASE {quoted} FROM PUBLIC"), &[])?;
    sql::execute(Some(template.as_str()), "CREATE EXTENSION IF NOT EXISTS vector", &[])?;
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
fn retry_busy(mut step: impl FnMut() -> Result<u64, CapabilityError>) -> Result<u64, CapabilityError> {
    let mut attempt = 0;
    loop {
        match step() {
            Err(e) if BUSY.contains(&e.code.as_str()) && attempt < BUSY_ATTEMPTS => {
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

fn terminate_sessions(names: &ResourceNames) -> Result<(), ProviderError> {
    query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 OR usename = $2",
        &[text(names.database.as_str()), text(names.role.as_str())],
    )?;
    Ok(())
}

fn role_exists(role: &Ident) -> Result<bool, ProviderError> {
    Ok(!query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[text(role.as_str())])?.is_empty())
}

fn execute(statement: &str, params: &[Value]) -> Result<(), ProviderError> {
    sql::execute(None, statement, params).map(|_| ()).map_err(from_sql)
}

fn query(statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, ProviderError> {
    sql::query(None, statement, params).map_err(from_sql)
}

/// Maps a SQL failure to the provider error the host understands.
fn from_sql(e: CapabilityError) -> ProviderError {
    match e.code.as_str() {
        // duplicate_database, duplicate_object, unique_violation: a concurrent twin won.
        "42P04" | "42710" | "23505" => ProviderError::Conflict(e.message),
        "unavailable" | "timeout" | "57P01" | "57P03" | "53300" => {
            ProviderError::BackendUnavailable(e.message)
        }
        code => ProviderError::Internal(format!("sql error {code}: {}", e.message)),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn int_at(row: &[Value], index: usize) -> Result<i64, ProviderError> {
    match row.get(index) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(internal(format!("expected an integer column, got {other:?}"))),
    }
}

fn limit(limits: &[(String, u64)], name: &str) -> Option<u64> {
    limits.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn setting(key: &str) -> Result<String, ProviderError> {
    config::get(key).ok_or_else(|| internal(format!("provider setting `{key}` is not configured")))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ProviderError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| internal(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// 32 characters from `[A-Za-z0-9]`: about 190 bits, safe in any URL without escaping.
fn random_password() -> Result<String, ProviderError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = random_bytes::<64>()?;
    // Rejection sampling keeps every character equally likely.
    let password: String = bytes
        .iter()
        .filter(|b| usize::from(**b) < 248)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .take(32)
        .collect();
    if password.len() < 32 {
        return random_password();
    }
    Ok(password)
}

fn internal(message: impl ToString) -> ProviderError {
    ProviderError::Internal(message.to_string())
}
