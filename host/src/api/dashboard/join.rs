//! The page an invitation link opens. Opening it changes nothing (mail scanners open
//! links); the person accepts with the page's button, which makes them a member and signs
//! this browser in.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{guard, html, refusal, views};
use crate::api::auth::{hash, session_cookie};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::query::Query;
use crate::api::schema::JoinForm;
use crate::app::SharedApp;
use crate::store::Joined;

/// The link's token.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JoinLink {
    /// From the emailed link.
    pub t: Option<String>,
}

fn gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "invitation_invalid",
        "This invitation is unknown, already used, revoked, or older than 7 days.",
    )
    .action("Ask a member of the team to invite you again.")
}

#[utoipa::path(get, path = "/team/join", tag = "accounts", operation_id = "joinTeamPage",
    summary = "The page an invitation link opens",
    description = "Shows the team and who invited whom, with a button to accept. Opening it changes nothing.",
    params(JoinLink),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 410, description = "The link cannot be used, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn page(State(app): State<SharedApp>, Query(link): Query<JoinLink>) -> Response {
    let token = link.t.unwrap_or_default();
    let open = match app
        .store
        .open_invitation(&hash(&token), app.clock.now())
        .await
    {
        Ok(open) => open,
        Err(e) => return refusal(ApiError::internal(e)),
    };
    match open {
        Some(invitation) => html(views::join::page(&invitation, &token)),
        None => refusal(gone()),
    }
}

#[utoipa::path(post, path = "/team/join", tag = "accounts", operation_id = "joinTeam",
    summary = "Accept an invitation",
    description = "From the page the link opens: the invited address becomes a member (moved from its own team, unless it is that team's only member and it still holds resources: 409 team_has_resources) and the browser is signed in.",
    request_body(content = JoinForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "A member now, signed in: to the team page."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn accept(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    if let Err(error) = guard::check_origin(&app, &headers) {
        return refusal(error);
    }
    let token = guard::form(&body).remove("t").unwrap_or_default();
    let now = app.clock.now();
    let account = match app.store.accept_invitation(&hash(&token), now).await {
        Ok(Joined::Member(account)) => account,
        Ok(Joined::Gone) => return refusal(gone()),
        Ok(Joined::WouldStrand { resources }) => {
            return refusal(
                ApiError::new(
                    StatusCode::CONFLICT,
                    "team_has_resources",
                    format!("You are the only member of a team that still holds {resources} resources; joining another team would leave them with nobody."),
                )
                .action("Delete those resources (or invite someone to your team to keep them), then open the invitation again."),
            );
        }
        Err(e) => return refusal(ApiError::internal(e)),
    };
    let session = app
        .tokens
        .session_token(account.user_id, account.team_id, &account.email, now);
    let (token, claims) = match session {
        Ok(session) => session,
        Err(e) => return refusal(ApiError::internal(e)),
    };
    let cookie = session_cookie(&app, &token, claims.exp - now.timestamp());
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/dashboard/team".to_string()),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response()
}
