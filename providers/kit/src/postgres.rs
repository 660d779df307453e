//! PostgreSQL through the `sql` capability, for providers that keep tenants on a shared
//! server: one call per statement with its failure mapped, and the role chores they share.
//!
//! Statements without a database run in the server's maintenance database.

use crate::errors::{SQL, internal};
use crate::sql::{self, Value};
use crate::types::{CapabilityError, ProviderError};

/// Rows as the capability returns them.
pub type Rows = Vec<Vec<Value>>;

/// duplicate_database, duplicate_object, unique_violation: a concurrent twin got there first.
const DUPLICATE: [&str; 3] = ["42P04", "42710", "23505"];

/// A SQL failure as the host understands it: a duplicate is a conflict, the SDK's retryable
/// codes are a backend outage, and any other SQLSTATE is internal, reported by code.
pub fn error(e: CapabilityError) -> ProviderError {
    match e {
        CapabilityError::Backend(e) if DUPLICATE.contains(&e.code.as_str()) => {
            ProviderError::Conflict(e.message)
        }
        CapabilityError::Backend(e) if !SQL.is_retryable(&e.code) => {
            ProviderError::Internal(format!("sql error {}: {}", e.code, e.message))
        }
        other => SQL.error(other),
    }
}

/// Runs one statement in the maintenance database (DDL binds no parameters).
pub fn execute(statement: &str) -> Result<(), ProviderError> {
    sql::execute(None, statement, &[]).map(drop).map_err(error)
}

/// Runs one statement inside the database `database`.
pub fn execute_in(database: &str, statement: &str) -> Result<(), ProviderError> {
    sql::execute(Some(database), statement, &[])
        .map(drop)
        .map_err(error)
}

/// Runs one query in the maintenance database.
pub fn query(statement: &str, params: &[Value]) -> Result<Rows, ProviderError> {
    sql::query(None, statement, params).map_err(error)
}

/// Runs one query inside the database `database`.
pub fn query_in(database: &str, statement: &str) -> Result<Rows, ProviderError> {
    sql::query(Some(database), statement, &[]).map_err(error)
}

/// A text parameter.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// The integer in column `index` of `row`.
pub fn int_at(row: &[Value], index: usize) -> Result<i64, ProviderError> {
    match row.get(index) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(internal(format!(
            "expected an integer column, got {other:?}"
        ))),
    }
}

/// Whether the login role `role` exists (a bound parameter: the name is a value here).
pub fn role_exists(role: &str) -> Result<bool, ProviderError> {
    Ok(!query(
        "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1",
        &[text(role)],
    )?
    .is_empty())
}

/// Ends every session of `role`, and no one else's.
pub fn end_sessions_of(role: &str) -> Result<(), ProviderError> {
    query(
        "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
          WHERE usename = $1",
        &[text(role)],
    )
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::tests::backend;

    #[test]
    fn a_duplicate_is_a_conflict() {
        assert!(
            matches!(error(backend("42710")), ProviderError::Conflict(m) if m == "42710 happened")
        );
        assert!(matches!(
            error(backend("42P04")),
            ProviderError::Conflict(_)
        ));
    }

    #[test]
    fn a_restarting_server_is_an_outage_and_anything_else_is_internal_by_code() {
        assert!(matches!(
            error(backend("57P03")),
            ProviderError::BackendUnavailable(_)
        ));
        assert!(matches!(
            error(backend("42704")),
            ProviderError::Internal(m) if m == "sql error 42704: 42704 happened"
        ));
    }
}
