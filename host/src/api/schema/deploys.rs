//! Deploys: the upload form, the deployment and what its routes answer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;
use crate::store::DeploymentStatus;

/// The multipart form of `POST /deploy/new`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeployForm {
    /// A gzipped tarball with a Dockerfile at its top (at most 10 MB).
    #[schema(value_type = String, format = Binary)]
    pub tarball: Vec<u8>,
    pub name: Option<String>,
    /// The port the app listens on (default 8080).
    pub port: Option<String>,
    /// A JSON object of environment variables.
    pub env_vars: Option<String>,
    /// true: rebuild the caller's app of the same name in place.
    pub redeploy: Option<String>,
    /// true: only `allowed_ips` reach the app (tiers with private deploys).
    pub private: Option<String>,
    /// Addresses and CIDRs, comma-separated, that reach a private app.
    pub allowed_ips: Option<String>,
}

/// An app: its status, URL and the failure that stopped it, if any.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deployment {
    /// The app's resource token: the credential to read and delete it.
    pub id: Uuid,
    /// Public: part of the URL.
    pub app_id: String,
    pub token: Uuid,
    pub name: String,
    pub url: Option<String>,
    pub status: DeploymentStatus,
    pub port: i32,
    pub tier: String,
    pub generation: i32,
    pub error: Option<String>,
    /// The same as `error`, under the spec's name.
    pub error_message: Option<String>,
    /// The failure autopsy: reason, exit_code, last_lines, hint.
    #[schema(value_type = Option<Object>)]
    pub failure: Option<Value>,
    /// The stack service it runs, if any.
    pub service: Option<String>,
    /// Whether only `allowed_ips` reach the app.
    pub private: bool,
    /// A private app's allowed addresses and networks.
    pub allowed_ips: Vec<String>,
    /// The prebuilt image the app runs (as deployed; each rollout pins its digest), or
    /// null for an app built from an upload.
    #[serde(default)]
    pub image: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A deployment's answer: its headline fields, the whole `item`, and after a build was
/// started, whether it was a redeploy and what to do next.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentAnswer {
    pub ok: True,
    pub id: Uuid,
    pub app_id: String,
    pub url: Option<String>,
    pub status: DeploymentStatus,
    pub item: Deployment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub redeployed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub agent_action: Option<String>,
    /// Form fields this route does not read, named back rather than dropped unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub ignored_fields: Option<Vec<String>>,
}

/// `GET /api/v1/deployments/{id}/events`: the failure autopsy, when there is one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentEvents {
    pub ok: True,
    pub deployment_id: Uuid,
    pub status: DeploymentStatus,
    /// Each: reason, exit_code, last_lines, hint.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    pub count: usize,
}

/// An app stopped and removed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentDeleted {
    pub ok: True,
    pub id: Uuid,
    pub app_id: String,
    /// `deleted`.
    pub status: String,
    /// `confirmed`.
    pub deletion_status: String,
    pub message: String,
}

/// The body of `POST /api/v1/deployments/{id}/ttl` (and the stack's).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TtlRequest {
    /// Hours from now until the app or stack is removed: 1 to 8760, and at most the tier's
    /// `ttl_hours` on a tier whose resources expire.
    pub hours: u32,
}

/// An app's or stack's lifetime after it was changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Lifetime {
    pub ok: True,
    /// The deployment id or the stack slug.
    pub id: String,
    /// `custom` (a set number of hours) or `permanent` (until deleted).
    pub ttl_policy: String,
    /// When it is removed; null when permanent.
    pub expires_at: Option<DateTime<Utc>>,
    pub message: String,
}

/// The body of `PATCH /deploy/{id}/env` and `PATCH /stacks/{slug}/env`: variables to merge
/// in; an empty string removes one. `env` is accepted under the same meaning.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvUpdate {
    pub env_vars: std::collections::BTreeMap<String, String>,
}

/// The env after a merge (values hidden, except links between a stack's services) and
/// what is being rebuilt to use it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnvUpdated {
    pub ok: True,
    /// The deployment id or the stack slug.
    pub id: String,
    /// Each app's or service's variables after the merge, by service name (`app` for a
    /// single deployment).
    pub env: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// The apps or services rebuilding with the new env; unchanged ones keep running.
    pub redeploying: Vec<String>,
    pub message: String,
}
