//! The operator API (`/admin/*`): providers, their versions and health, quota failures.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;
use crate::store::ResourceStatus;

/// `GET /admin/providers`: every live provider and those taken out of service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Providers {
    pub ok: True,
    pub providers: Vec<Provider>,
    pub unloaded: Vec<String>,
}

/// A live provider.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Provider {
    pub name: String,
    pub version: String,
    pub kinds: Vec<String>,
    pub sha256: String,
    pub loaded_at: DateTime<Utc>,
    /// `config`, `upload`, `rollback`, ...
    pub source: String,
    pub grants: Vec<String>,
    /// Whether it builds and runs apps.
    pub deployer: bool,
    pub sandbox: Sandbox,
    pub health: ProviderHealth,
    /// The version it replaced, which a rollback brings back.
    pub previous: Option<PreviousVersion>,
}

/// A provider's sandbox limits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sandbox {
    pub call_timeout_ms: u64,
    pub host_wait_ms: u64,
    pub memory_mb: u64,
    pub max_instances: u32,
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
}

/// A provider's calls and circuit breakers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderHealth {
    /// The worst of the functions' breakers: `closed`, `half_open` or `open`.
    pub breaker: String,
    /// Functions whose breaker is not closed.
    pub tripped: Vec<String>,
    pub failures_in_a_row: u32,
    pub calls_total: u64,
    pub failures_total: u64,
    pub last_failure: Option<String>,
    pub last_failure_at: Option<DateTime<Utc>>,
    /// Seconds until a trial call is let through, while open.
    pub retry_after_seconds: Option<u64>,
}

/// The version a provider replaced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PreviousVersion {
    pub version: String,
    pub sha256: String,
    pub loaded_at: DateTime<Utc>,
}

/// A provider swapped to an uploaded or previous version (or left as it was).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Swap {
    pub ok: True,
    /// The bytes were already the live version.
    pub unchanged: bool,
    pub provider: Provider,
    pub swap_ms: f64,
    /// A compiled artifact of the same bytes was reused.
    pub compiled_artifact_cached: bool,
}

/// A provider taken out of service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Unloaded {
    pub ok: True,
    pub unloaded: Provider,
    pub kinds_no_longer_served: Vec<String>,
}

/// `GET /admin/quota`: resources whose quota verdict keeps failing, longest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotaFailures {
    pub ok: True,
    pub failing: Vec<QuotaFailure>,
}

/// A resource the meter could not suspend (or resume).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct QuotaFailure {
    pub id: Uuid,
    pub kind: String,
    pub provider: String,
    pub status: ResourceStatus,
    pub error: String,
    pub failing_since: DateTime<Utc>,
    pub attempts: i32,
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
}
