//! The team page: members and settings.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{signed_in_page, views};
use crate::api::error::ApiError;
use crate::app::SharedApp;

#[utoipa::path(get, path = "/dashboard/team", tag = "dashboard",
    operation_id = "dashboardTeam",
    summary = "The team's members and settings",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn show(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    signed_in_page(&app, &headers, async |session| {
        let team = session.account.team_id;
        let members = app
            .store
            .team_members(team)
            .await
            .map_err(ApiError::internal)?;
        let policy = app
            .store
            .team_ttl_policy(team)
            .await
            .map_err(ApiError::internal)?;
        Ok(views::team::page(
            &session.account,
            &app.public_url,
            &members,
            &policy,
        ))
    })
    .await
}
