//! A team's members and invitations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;

/// One member of the team.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamMember {
    pub email: String,
    pub joined_at: DateTime<Utc>,
}

/// `GET /api/v1/team/members`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TeamMembers {
    pub ok: True,
    pub items: Vec<TeamMember>,
}

/// The body of `POST /api/v1/team/invitations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewInvitationRequest {
    /// The address to invite; the link goes there.
    pub email: String,
}

/// An invitation that can still be accepted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    /// The member who sent it.
    pub invited_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/v1/team/invitations`: the invitation, emailed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationSent {
    pub ok: True,
    #[serde(flatten)]
    pub invitation: Invitation,
    pub note: String,
}

/// `GET /api/v1/team/invitations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Invitations {
    pub ok: True,
    pub items: Vec<Invitation>,
}

/// `DELETE /api/v1/team/invitations/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationRevoked {
    pub ok: True,
    pub id: Uuid,
    pub revoked: bool,
}

/// The form on the page an invitation link opens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JoinForm {
    /// The token from the emailed link.
    pub t: String,
}
