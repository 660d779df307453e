//! `sql`: statements on the PostgreSQL server bound to a provider, as its admin role.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Column, ConnectOptions, Connection, Executor, Postgres, Row, TypeInfo, ValueRef};

use super::{HostState, cap_error};
use crate::config::SqlBinding;
use crate::contract::instanode::provider::sql::{Host, Value};
use crate::contract::instanode::provider::types::CapabilityError;

/// The admin side of one PostgreSQL server: a pool on its maintenance database, and
/// one-off connections to tenant databases.
pub struct SqlBackend {
    pool: PgPool,
    options: PgConnectOptions,
}

impl SqlBackend {
    /// A lazily connected pool, so the host starts even when the server is down.
    pub fn connect_lazy(binding: &SqlBinding) -> anyhow::Result<Self> {
        let options: PgConnectOptions = binding
            .url
            .expose()
            .parse()
            .context("sql.url is not a PostgreSQL URL")?;
        let timeout = format!("{}ms", binding.statement_timeout_ms);
        let admin = options.get_username().to_string();
        let options = options
            .options(pinned_settings(&timeout, &admin))
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(binding.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.clone());
        Ok(Self { pool, options })
    }

    async fn execute(
        &self,
        database: Option<&str>,
        statement: &str,
        params: Vec<Value>,
    ) -> Result<u64, sqlx::Error> {
        match database {
            None => run_execute(&self.pool, statement, params).await,
            Some(db) => {
                let mut conn = self.options.clone().database(db).connect().await?;
                let done = run_execute(&mut conn, statement, params).await;
                let _ = conn.close().await;
                done
            }
        }
    }

    async fn query(
        &self,
        database: Option<&str>,
        statement: &str,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, sqlx::Error> {
        let rows = match database {
            None => bind(statement, params).fetch_all(&self.pool).await?,
            Some(db) => {
                let mut conn = self.options.clone().database(db).connect().await?;
                let rows = bind(statement, params).fetch_all(&mut conn).await;
                let _ = conn.close().await;
                rows?
            }
        };
        Ok(rows.iter().map(decode_row).collect())
    }
}

/// Settings every admin session starts with. These sessions also run inside tenants'
/// databases, whose owners can `ALTER DATABASE ... SET` almost any setting for every role
/// that connects there, superusers included (`role`, `search_path`, read-only, timeouts).
/// Startup options take precedence over those, so the tenant cannot redirect what the admin
/// runs: only `pg_catalog` resolves names (a tenant's `public.format()` is never called),
/// the session stays the admin and writable, and triggers fire as usual.
fn pinned_settings<'a>(timeout: &'a str, admin: &'a str) -> [(&'static str, &'a str); 16] {
    [
        ("search_path", "pg_catalog,pg_temp"),
        ("role", "none"),
        ("session_authorization", admin),
        ("default_transaction_read_only", "off"),
        ("transaction_read_only", "off"),
        ("session_replication_role", "origin"),
        // A stuck statement must not hold a provider call (or a pool slot) forever:
        // dropping a future does not cancel the statement on the server.
        ("statement_timeout", timeout),
        ("lock_timeout", timeout),
        ("idle_in_transaction_session_timeout", "0"),
        ("idle_session_timeout", "0"),
        ("standard_conforming_strings", "on"),
        ("transform_null_equals", "off"),
        ("check_function_bodies", "on"),
        ("default_tablespace", ""),
        ("temp_tablespaces", ""),
        ("local_preload_libraries", ""),
    ]
}

/// Statements without parameters go through the simple protocol: utility statements such as
/// `CREATE DATABASE` and one-of-a-kind DDL need no prepared-statement round trip or cache slot.
async fn run_execute<'c, E>(
    executor: E,
    statement: &str,
    params: Vec<Value>,
) -> Result<u64, sqlx::Error>
where
    E: Executor<'c, Database = Postgres>,
{
    let done = if params.is_empty() {
        executor.execute(sqlx::raw_sql(statement)).await?
    } else {
        executor.execute(bind(statement, params)).await?
    };
    Ok(done.rows_affected())
}

fn bind(statement: &str, params: Vec<Value>) -> Query<'_, Postgres, PgArguments> {
    let mut query = sqlx::query(statement).persistent(false);
    for param in params {
        query = match param {
            Value::Null => query.bind(None::<String>),
            Value::Boolean(b) => query.bind(b),
            Value::Int(n) => query.bind(n),
            Value::Float(f) => query.bind(f),
            Value::Text(s) => query.bind(s),
            Value::Bytes(b) => query.bind(b),
        };
    }
    query
}

fn decode_row(row: &PgRow) -> Vec<Value> {
    (0..row.len()).map(|i| decode_column(row, i)).collect()
}

fn decode_column(row: &PgRow, i: usize) -> Value {
    if row.try_get_raw(i).map(|v| v.is_null()).unwrap_or(true) {
        return Value::Null;
    }
    let decoded = match row.column(i).type_info().name() {
        "BOOL" => row.try_get(i).map(Value::Boolean),
        "INT2" => row.try_get::<i16, _>(i).map(|n| Value::Int(n.into())),
        "INT4" => row.try_get::<i32, _>(i).map(|n| Value::Int(n.into())),
        "INT8" => row.try_get(i).map(Value::Int),
        "OID" => row
            .try_get::<sqlx::postgres::types::Oid, _>(i)
            .map(|n| Value::Int(n.0.into())),
        "FLOAT4" => row.try_get::<f32, _>(i).map(|f| Value::Float(f.into())),
        "FLOAT8" => row.try_get(i).map(Value::Float),
        "BYTEA" => row.try_get(i).map(Value::Bytes),
        _ => row.try_get(i).map(Value::Text),
    };
    decoded.unwrap_or_else(|_| {
        Value::Text(format!(
            "<unsupported type {}>",
            row.column(i).type_info().name()
        ))
    })
}

fn sql_error(e: sqlx::Error) -> CapabilityError {
    match e {
        sqlx::Error::Database(db) => {
            cap_error(db.code().as_deref().unwrap_or("internal"), db.message())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            cap_error("unavailable", format!("database unreachable: {e}"))
        }
        other => cap_error("internal", other),
    }
}

impl HostState {
    fn sql(&self) -> Result<&SqlBackend, CapabilityError> {
        self.bindings
            .sql
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "sql is not granted"))
    }
}

impl Host for HostState {
    async fn execute(
        &mut self,
        database: Option<String>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<u64, CapabilityError> {
        self.sql()?
            .execute(database.as_deref(), &statement, params)
            .await
            .map_err(sql_error)
    }

    async fn query(
        &mut self,
        database: Option<String>,
        statement: String,
        params: Vec<Value>,
    ) -> Result<Vec<Vec<Value>>, CapabilityError> {
        self.sql()?
            .query(database.as_deref(), &statement, params)
            .await
            .map_err(sql_error)
    }
}
