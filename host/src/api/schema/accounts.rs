//! Accounts: claiming, email sign-in, sessions, API keys, the CLI's device flow, billing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;
use crate::store::ResourceStatus;

/// The body of `POST /claim` (`jwt` is an older name for `token`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimRequest {
    /// The upgrade token of the resource to claim.
    pub token: String,
    /// The older name for `token`, still read when `token` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, deprecated)]
    pub jwt: Option<String>,
    pub email: String,
    /// Upgrade JWTs or tokens of further resources to claim with it; nothing else of the
    /// network moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_items = 50)]
    pub tokens: Option<Vec<String>>,
}

/// `GET /claim/preview`: what a claim with the upgrade token would move.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimPreview {
    pub ok: True,
    pub token_valid: bool,
    pub already_claimed: bool,
    pub items: Vec<ClaimItem>,
    /// The same as `items`.
    pub resources: Vec<ClaimItem>,
    /// When the upgrade token stops working; absent once it was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A resource a claim would move: kind, name and lifetime (never tokens).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimItem {
    pub name: String,
    pub kind: String,
    pub tier: String,
    pub status: ResourceStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /claim`: the claim link was sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClaimSent {
    pub ok: True,
    pub message: String,
    pub email: String,
    pub agent_action: String,
}

/// The body of `POST /auth/email/start`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EmailStart {
    pub email: String,
}

/// `POST /auth/email/start`: a link is on its way if the address can receive mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkSent {
    pub ok: True,
    pub message: String,
    pub expires_in_minutes: i64,
}

/// `GET /auth/email/callback`: a session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub ok: True,
    pub session_token: String,
    /// `Bearer`.
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub user_id: Uuid,
    pub team_id: Uuid,
    pub email: String,
    pub tier: String,
    /// Resources a claim link moved into the team.
    pub claimed_resources: u64,
}

/// `GET /auth/me`: the signed-in account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Me {
    pub ok: True,
    pub user_id: Uuid,
    pub team_id: Uuid,
    pub team_name: String,
    pub email: String,
    pub tier: String,
}

/// `POST /auth/logout`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignedOut {
    pub ok: True,
    pub message: String,
}

/// The body of `POST /api/v1/auth/api-keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewApiKey {
    /// A label for the key, 1-120 characters.
    pub name: String,
    /// true: the key may delete a paid team's apps and stacks at once with
    /// `X-Skip-Email-Confirmation: yes` (default false: a person confirms by email).
    pub skip_delete_confirmation: Option<bool>,
}

/// A new API key, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyCreated {
    pub ok: True,
    pub id: Uuid,
    pub key: String,
    pub name: String,
    /// Whether the key may delete a paid team's apps and stacks at once with
    /// `X-Skip-Email-Confirmation: yes`.
    pub skip_delete_confirmation: bool,
    pub created_at: DateTime<Utc>,
    pub note: String,
}

/// The team's API keys (never their secrets).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyList {
    pub ok: True,
    pub total: usize,
    pub items: Vec<ApiKey>,
}

/// One API key, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart (absent for older keys).
    pub prefix: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// `DELETE /api/v1/auth/api-keys/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyRevoked {
    pub ok: True,
    pub id: Uuid,
    pub revoked: bool,
}

/// `POST /auth/cli`: a device sign-in session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliSession {
    pub ok: True,
    pub session_id: Uuid,
    /// Open it in a browser to approve.
    pub auth_url: String,
    /// Seconds the session waits for approval.
    pub expires_in: i64,
    /// When it stops waiting.
    pub expires_at: DateTime<Utc>,
    pub agent_action: String,
}

/// `GET /auth/cli/{id}` while the session waits (202).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliPending {
    pub ok: True,
    pub pending: bool,
    /// `pending`.
    pub status: String,
}

/// `GET /auth/cli/{id}` once approved (200): the API key, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliApproved {
    pub ok: True,
    /// `approved`.
    pub status: String,
    pub api_key: String,
    /// The same key, under the name the device flow's spec uses.
    pub api_token: String,
    pub email: String,
    pub team_id: Uuid,
    pub team_name: String,
    pub tier: String,
}

/// `POST /auth/cli/{id}/approve`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CliApproval {
    pub ok: True,
    pub approved: bool,
    pub session_id: Uuid,
}

/// A payment event, signed in `X-Instanode-Signature: sha256=<hex>`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BillingEvent {
    /// Unique per event (1-200 characters).
    pub id: String,
    /// When it was made, in Unix seconds.
    pub created: i64,
    /// `subscription.activated` or `subscription.cancelled`.
    pub event: String,
    /// The team's id or a member's email.
    pub team: String,
    /// The new tier (activations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub tier: Option<String>,
}

/// What a payment event did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum BillingOutcome {
    Applied(BillingApplied),
    Skipped(BillingSkipped),
}

/// The team moved to the event's tier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BillingApplied {
    pub applied: bool,
    pub ok: True,
    pub team_id: Uuid,
    pub tier: String,
    /// The team's live resources moved with it.
    pub resources: usize,
    /// Resources whose backend did not take the new limits.
    pub failed: Vec<Uuid>,
}

/// An event already applied (`duplicate`) or older than one applied (`superseded`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BillingSkipped {
    pub ok: True,
    pub team_id: Uuid,
    pub applied: bool,
    pub reason: String,
}

/// A team's settings (`GET`/`PATCH /api/v1/team/settings`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamSettings {
    pub ok: True,
    /// New apps' lifetime: `permanent` (the tier's: none on paid tiers) or `auto_24h` (a
    /// day, unless kept with make-permanent or a ttl).
    pub default_deployment_ttl_policy: String,
}

/// The body of `PATCH /api/v1/team/settings`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamSettingsUpdate {
    /// `auto_24h` or `permanent`.
    pub default_deployment_ttl_policy: String,
}

/// A delete waiting for a person: `DELETE` of a paid team's app or stack.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletionPending {
    pub ok: True,
    /// The deployment id or the stack slug.
    pub id: String,
    /// `deployment` or `stack`.
    pub resource_type: String,
    /// `pending_confirmation`.
    pub deletion_status: String,
    /// When the emailed link stops working; the delete is then dropped.
    pub confirmation_expires_at: DateTime<Utc>,
    pub note: String,
    pub agent_action: String,
}

/// A pending delete, confirmed or cancelled.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletionSettled {
    pub ok: True,
    pub id: String,
    pub resource_type: String,
    /// `confirmed` (removed now) or `cancelled` (it keeps running).
    pub deletion_status: String,
    pub note: String,
}
