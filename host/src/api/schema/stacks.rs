//! Stacks: several services from one manifest.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;
use crate::store::DeploymentStatus;

/// The multipart form of `POST /stacks/new`; each service's tarball is a file field named
/// after it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackForm {
    /// instant.yaml: services, their build folders, ports and env.
    pub manifest: String,
    pub name: Option<String>,
}

/// `POST /stacks/new`: building.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackCreated {
    pub ok: True,
    pub slug: String,
    pub stack_id: String,
    pub name: String,
    /// `building`.
    pub status: String,
    pub tier: String,
    /// The first exposed service's URL.
    pub stack_url: Option<String>,
    pub services: Vec<StackServiceCreated>,
    /// `6h` for an anonymous stack, empty otherwise.
    pub expires_in: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// Anonymous stacks: the credential to read and delete it, shown once.
    pub stack_token: Option<String>,
    pub note: String,
    pub agent_action: String,
    /// Form fields this route does not read, named back rather than dropped unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_fields: Option<Vec<String>>,
}

/// A service of a stack being created.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackServiceCreated {
    pub name: String,
    pub id: Uuid,
    pub app_id: String,
    pub url: Option<String>,
    /// `building`.
    pub status: String,
}

/// A stack and its services.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Stack {
    pub ok: True,
    pub slug: String,
    pub stack_id: String,
    pub name: String,
    pub status: DeploymentStatus,
    pub tier: Option<String>,
    /// The instant.yaml it was created from.
    pub manifest: String,
    pub services: Vec<StackService>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One service of a stack.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackService {
    pub name: String,
    pub id: Uuid,
    pub app_id: String,
    pub status: DeploymentStatus,
    pub url: Option<String>,
    pub expose: bool,
    pub port: i32,
    pub error: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub failure: Option<Value>,
    /// Env var names; values are `***` except links to sibling services.
    pub env: BTreeMap<String, String>,
}

/// A stack's services stopped and removed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackDeleted {
    pub ok: True,
    pub slug: String,
    /// `deleted`.
    pub status: String,
    pub message: String,
}

/// Services rebuilding after `POST /stacks/{slug}/redeploy`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StackRedeployed {
    pub ok: True,
    pub slug: String,
    pub services: Vec<StackServiceCreated>,
    pub note: String,
}
