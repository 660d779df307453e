//! A team's members and invitations. A member invites an address; the link emailed there
//! opens a page (`dashboard::join`) where the person accepts, which signs them in as a
//! member. Links are kept as hashes and work once, for a week.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::Duration;
use uuid::Uuid;

use super::auth::{account, hash, mailer, new_secret, parse_email, send_mail};
use super::error::ApiError;
use super::json::JsonObject;
use super::schema::{
    Invitation, InvitationRevoked, InvitationSent, Invitations, NewInvitationRequest, TeamMember,
    TeamMembers, True,
};
use crate::app::{App, SharedApp};
use crate::store::{Account, InvitationRow, NewInvitation};

/// How long an invitation link works.
const INVITATION_DAYS: i64 = 7;
/// Invitations a team may have waiting at once.
const MAX_PENDING: usize = 20;

/// `GET /api/v1/team/members`.
#[utoipa::path(get, path = "/api/v1/team/members", tag = "accounts", operation_id = "listTeamMembers",
    summary = "The team's members",
    security(("bearer" = [])),
    responses((status = 200, description = "The members, first to join first.", body = TeamMembers)))]
pub async fn list_members(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<TeamMembers>, ApiError> {
    let account = account(&app, &headers).await?;
    let members = app
        .store
        .team_members(account.team_id)
        .await
        .map_err(ApiError::internal)?;
    let items = members
        .into_iter()
        .map(|m| TeamMember {
            email: m.email,
            joined_at: m.joined_at,
        })
        .collect();
    Ok(Json(TeamMembers { ok: True, items }))
}

/// `POST /api/v1/team/invitations {email}`.
#[utoipa::path(post, path = "/api/v1/team/invitations", tag = "accounts", operation_id = "inviteTeamMember",
    summary = "Invite someone to the team",
    description = "Emails the address a link that works once, for 7 days. Inviting the same address again replaces the earlier link. Paid tiers only (402 upgrade_required); 409 already_member, 409 too_many_invitations (20 waiting).",
    security(("bearer" = [])),
    request_body = NewInvitationRequest,
    responses((status = 201, description = "Invited.", body = InvitationSent)))]
pub async fn invite(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<InvitationSent>), ApiError> {
    let account = account(&app, &headers).await?;
    let email = parse_email(body.get("email"))?;
    let sent = send_invitation(&app, &account, &email).await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

/// Invites `email` to `account`'s team and mails the link (the API and the dashboard
/// both use this).
pub(super) async fn send_invitation(
    app: &App,
    account: &Account,
    email: &str,
) -> Result<InvitationSent, ApiError> {
    if !app.plans.is_paid(&account.tier) {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "upgrade_required",
            "Teams of more than one person are for paid tiers.",
        )
        .action("Upgrade the team (Hobby or above), then invite again."));
    }
    let members = app
        .store
        .team_members(account.team_id)
        .await
        .map_err(ApiError::internal)?;
    if members.iter().any(|m| m.email == email) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_member",
            "That address is already a member of this team.",
        )
        .action("Nothing to do; GET /api/v1/team/members lists the members."));
    }
    let now = app.clock.now();
    let pending = app
        .store
        .pending_invitations(account.team_id, now)
        .await
        .map_err(ApiError::internal)?;
    let replaces = pending.iter().any(|i| i.email == email);
    if pending.len() >= MAX_PENDING && !replaces {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_invitations",
            format!("The team already has {MAX_PENDING} invitations waiting."),
        )
        .action("Revoke some with DELETE /api/v1/team/invitations/{id}, then invite again."));
    }
    let mailer = mailer(app)?;
    let secret = new_secret();
    let expires_at = now + Duration::days(INVITATION_DAYS);
    let id = app
        .store
        .insert_invitation(&NewInvitation {
            team_id: account.team_id,
            email,
            invited_by: &account.email,
            token_hash: &hash(&secret),
            now,
            expires_at,
        })
        .await
        .map_err(ApiError::internal)?;
    let body = format!(
        "{} invited you to join the team \"{}\" on instanode.\n\nOpen this link to accept:\n\n{}/team/join?t={secret}\n\nIt works once, for {INVITATION_DAYS} days. If you did not expect it, ignore this message.\n",
        account.email, account.team_name, app.public_url
    );
    send_mail(mailer, email, "You are invited to an instanode team", body).await?;
    Ok(InvitationSent {
        ok: True,
        invitation: Invitation {
            id,
            email: email.to_string(),
            invited_by: account.email.clone(),
            created_at: now,
            expires_at,
        },
        note: format!("The link is on its way; it works once, for {INVITATION_DAYS} days."),
    })
}

/// `GET /api/v1/team/invitations`.
#[utoipa::path(get, path = "/api/v1/team/invitations", tag = "accounts", operation_id = "listTeamInvitations",
    summary = "The team's invitations still waiting",
    security(("bearer" = [])),
    responses((status = 200, description = "Waiting invitations, oldest first.", body = Invitations)))]
pub async fn list_invitations(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<Invitations>, ApiError> {
    let account = account(&app, &headers).await?;
    let items = pending(&app, &account).await?;
    Ok(Json(Invitations { ok: True, items }))
}

/// The team's invitations still waiting (the API and the dashboard both use this).
pub(super) async fn pending(app: &App, account: &Account) -> Result<Vec<Invitation>, ApiError> {
    let rows = app
        .store
        .pending_invitations(account.team_id, app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    Ok(rows.into_iter().map(described).collect())
}

fn described(row: InvitationRow) -> Invitation {
    Invitation {
        id: row.id,
        email: row.email,
        invited_by: row.invited_by,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

/// `DELETE /api/v1/team/invitations/{id}`.
#[utoipa::path(delete, path = "/api/v1/team/invitations/{id}", tag = "accounts", operation_id = "revokeTeamInvitation",
    summary = "Revoke an invitation",
    security(("bearer" = [])),
    responses((status = 200, description = "Revoked: its link no longer works.", body = InvitationRevoked)))]
pub async fn revoke(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<InvitationRevoked>, ApiError> {
    let account = account(&app, &headers).await?;
    let id = revoke_invitation(&app, &account, &id).await?;
    Ok(Json(InvitationRevoked {
        ok: True,
        id,
        revoked: true,
    }))
}

/// Revokes one of `account`'s team's waiting invitations (the API and the dashboard both
/// use this).
pub(super) async fn revoke_invitation(
    app: &App,
    account: &Account,
    id: &str,
) -> Result<Uuid, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invitation_not_found",
            "Your team has no such invitation waiting.",
        )
        .action("List them with GET /api/v1/team/invitations and use one of their ids.")
    };
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let revoked = app
        .store
        .revoke_invitation(account.team_id, id, app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    if revoked { Ok(id) } else { Err(not_found()) }
}
