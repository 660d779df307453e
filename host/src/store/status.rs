//! Where a resource or a deployment is in its life. Stored as Postgres enum types
//! (`resource_status`, `deployment_status`), answered to agents as the same lowercase words
//! (they are part of the API's wire types, `api::schema`).

use serde::{Deserialize, Serialize};

/// A resource's status. `pending` until the provider answered; `deleting` while the provider
/// removes it; `failed` and `deleted` are ends.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "resource_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ResourceStatus {
    Pending,
    Active,
    Suspended,
    Deleting,
    Failed,
    Deleted,
}

impl ResourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }

    /// Provisioned and not on its way out: its credentials are meant to work.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Suspended)
    }

    /// On its way out or gone.
    pub fn is_ending(self) -> bool {
        matches!(self, Self::Deleting | Self::Deleted)
    }
}

/// A deployment's status: what its latest rollout reached.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[sqlx(type_name = "deployment_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Building,
    Deploying,
    Healthy,
    Failed,
    Stopped,
}

impl DeploymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Building => "building",
            Self::Deploying => "deploying",
            Self::Healthy => "healthy",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for ResourceStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
