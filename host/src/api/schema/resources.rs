//! `/api/v1/resources`: one resource, a team's list, credentials; and the capabilities.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;
use crate::store::ResourceStatus;

/// One resource as its holder sees it (never its URL).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Resource {
    /// Present on `GET /api/v1/resources/{token}`; list items leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ok: Option<True>,
    pub id: Uuid,
    pub token: Uuid,
    pub name: String,
    pub kind: String,
    pub env: String,
    pub tier: String,
    pub status: ResourceStatus,
    pub limits: BTreeMap<String, u64>,
    /// What the meter last measured (`storage_bytes`, ...).
    #[schema(value_type = Option<Object>)]
    pub usage: Option<Value>,
    pub storage_bytes: Option<u64>,
    pub storage_limit_bytes: Option<u64>,
    pub storage_exceeded: bool,
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `GET /api/v1/resources`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceList {
    pub ok: True,
    pub total: usize,
    pub items: Vec<Resource>,
}

/// A claimed resource's credentials, revealed or just rotated.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceCredentials {
    pub ok: True,
    pub token: Uuid,
    pub kind: String,
    pub connection_url: String,
    pub internal_url: Option<String>,
    /// The kind's own credential fields.
    pub fields: BTreeMap<String, String>,
    /// `true` after a rotation; absent on a reveal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub rotated: Option<bool>,
}

/// `DELETE /api/v1/resources/{token}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResourceDeleted {
    pub ok: True,
    pub id: Uuid,
    pub token: Uuid,
    /// `deleted`.
    pub status: String,
}

/// `GET /api/v1/capabilities`: what agents plan with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Capabilities {
    pub ok: True,
    /// Every kind this host provisions now, sorted.
    pub kinds: Vec<String>,
    /// The tiers, cheapest first.
    pub tiers: Vec<TierInfo>,
    /// The value a limit has when there is none (-1).
    pub unlimited: i64,
}

/// One tier of the plans.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TierInfo {
    pub tier: String,
    pub display_name: String,
    pub rank: u32,
    pub price_usd_monthly: u32,
    pub provisions_per_day: i64,
    pub ttl_hours: u32,
    /// Live resources at once, by kind.
    pub resource_count_limit: BTreeMap<String, i64>,
    /// Each kind's limits by name.
    pub limits: BTreeMap<String, BTreeMap<String, i64>>,
    /// Apps running at once.
    pub deployments_apps: u64,
    /// How long a new stack lives, in hours; 0: it does not expire.
    pub stack_ttl_hours: u32,
    /// Whether apps may be private (`private=true` with `allowed_ips`).
    pub private_deploys: bool,
    /// Vault entries a team may keep (0: no vault).
    pub vault_max_entries: i64,
    /// The envs the vault may hold (`*`: any).
    pub vault_envs: Vec<String>,
}
