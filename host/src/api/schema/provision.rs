//! `POST /{kind}/new`: the request and the created (or handed back) resource.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;

/// The body of `POST /{kind}/new`. A kind may take further fields of its own (a webhook's
/// `secret`); fields the kind does not know are named back in `ignored_fields`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreateResource {
    /// 1-64 characters: letters, digits, '-', '_'.
    pub name: String,
    /// An environment label (default production).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub env: Option<String>,
    /// webhook only: senders must sign bodies with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub secret: Option<String>,
}

/// A new (201) or returned existing (200) resource; providers add kind-specific fields (e.g.
/// key_prefix, credentials).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Created {
    pub ok: True,
    /// The resource id.
    pub id: Uuid,
    /// The resource token: the credential to manage it.
    pub token: Uuid,
    pub name: String,
    pub kind: String,
    /// Works from anywhere the backend is reachable.
    pub connection_url: String,
    /// For apps deployed on this host; absent for kinds reached only at their public URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub internal_url: Option<String>,
    pub tier: String,
    pub limits: CreatedLimits,
    pub env: String,
    pub expires_at: Option<String>,
    pub note: String,
    /// Where a person claims the resource.
    pub upgrade: String,
    /// The upgrade token: claims, deploys.
    pub upgrade_jwt: String,
    pub claim_url: String,
    /// Broker-mode storage: where object URLs are presigned (no key is handed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub presign_url: Option<String>,
    /// Broker-mode storage: `use_presign_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub agent_action: Option<String>,
    /// Body fields the kind does not take, sorted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_fields: Option<Vec<String>>,
    /// The provider's own fields (strings, or objects of strings for `outer.inner` names).
    #[serde(flatten)]
    pub provider_fields: Map<String, Value>,
}

impl Created {
    /// Names a provider field may not take: the host's own.
    pub const HOST_FIELDS: [&'static str; 18] = [
        "ok",
        "id",
        "token",
        "name",
        "kind",
        "connection_url",
        "internal_url",
        "tier",
        "limits",
        "env",
        "expires_at",
        "note",
        "upgrade",
        "upgrade_jwt",
        "claim_url",
        "presign_url",
        "agent_action",
        "ignored_fields",
    ];
}

/// The tier's limits for the resource, and how long it has left.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CreatedLimits {
    /// `23h59m`; null for a resource that does not expire.
    pub expires_in: Option<String>,
    /// The kind's limits by name (`storage_mb`, `connections`, ...).
    #[serde(flatten)]
    pub values: BTreeMap<String, u64>,
}
