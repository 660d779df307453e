//! Liveness and readiness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::True;

/// `GET /healthz`: the process answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Liveness {
    pub ok: True,
    pub service: String,
    pub version: String,
    pub commit_id: String,
    /// When the binary was built (UTC, RFC 3339).
    pub build_time: String,
    /// `reachable` or `unreachable`: whether the metadata database answered just now. The
    /// process is alive either way; `/readyz` decides readiness.
    pub metadata_db: String,
}

/// `GET /readyz`: the metadata database and every provider's backend.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Whether the metadata database answers (the host is ready).
    pub ok: bool,
    /// `ok`, `degraded` (a provider failed) or `failed` (the metadata database is down).
    pub overall: String,
    pub commit_id: String,
    /// By name: `metadata_db`, `quota_enforcement`, `provider:<name>`.
    pub checks: BTreeMap<String, Check>,
}

/// One readiness check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// `ok` or `failed`.
    pub status: String,
    pub latency_ms: u64,
    pub last_checked: String,
    pub message: String,
}
