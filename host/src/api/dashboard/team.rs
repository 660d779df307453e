//! The team page: members, waiting invitations (sent and revoked here), and settings.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::{Done, Session, signed_in_form, signed_in_page, views};
use crate::api::auth::parse_email;
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::members::{pending, revoke_invitation as revoke, send_invitation};
use crate::api::query::Query;
use crate::api::schema::{CsrfForm, NewInvitationRequest};
use crate::app::{App, SharedApp};

/// What the page says after an action.
const NOTICES: [(&str, &str); 2] = [
    (
        "invited",
        "Invitation sent: the link works once, for 7 days.",
    ),
    ("revoked", "Invitation revoked: its link no longer works."),
];

#[utoipa::path(get, path = "/dashboard/team", tag = "dashboard",
    operation_id = "dashboardTeam",
    summary = "The team's members, waiting invitations and settings",
    params(Done),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Response {
    let notice = done.notice(&NOTICES);
    signed_in_page(&app, &headers, async |session| {
        render(&app, session, notice).await
    })
    .await
}

#[utoipa::path(post, path = "/dashboard/team/invitations", tag = "dashboard",
    operation_id = "dashboardInvite",
    summary = "Invite someone to the team (the link is emailed)",
    request_body(content = NewInvitationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Sent: back to the team page."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn invite(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, fields| {
        let email = parse_email(fields.get("email").map(|e| serde_json::json!(e)).as_ref())?;
        send_invitation(&app, &session.account, &email).await?;
        Ok(Redirect::to("/dashboard/team?done=invited").into_response())
    })
    .await
}

#[utoipa::path(post, path = "/dashboard/team/invitations/{id}/revoke", tag = "dashboard",
    operation_id = "dashboardRevokeInvitation",
    summary = "Revoke a waiting invitation",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Revoked: back to the team page."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn revoke_invitation(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, _| {
        revoke(&app, &session.account, &id).await?;
        Ok(Redirect::to("/dashboard/team?done=revoked").into_response())
    })
    .await
}

async fn render(
    app: &App,
    session: &Session,
    notice: Option<&str>,
) -> Result<maud::Markup, ApiError> {
    let team = session.account.team_id;
    let members = app
        .store
        .team_members(team)
        .await
        .map_err(ApiError::internal)?;
    let invitations = pending(app, &session.account).await?;
    let policy = app
        .store
        .team_ttl_policy(team)
        .await
        .map_err(ApiError::internal)?;
    let shown = views::team::Team {
        account: &session.account,
        public_url: &app.public_url,
        members: &members,
        invitations: &invitations,
        ttl_policy: &policy,
        notice,
        form_token: &session.form_token,
    };
    Ok(views::team::page(&shown))
}
