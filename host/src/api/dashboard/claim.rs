//! The claim page an `upgrade` link opens (`/start?t=<upgrade_jwt>`): the resource the link
//! stands for, and a form that emails the link that moves it into the person's account.

use axum::extract::State;
use axum::response::Html;

use super::views;
use crate::api::claim::{TokenQuery, preview_of};
use crate::api::query::Query;
use crate::app::SharedApp;

#[utoipa::path(get, path = "/start", tag = "accounts", operation_id = "startPage",
    summary = "The claim page an upgrade link opens",
    description = "The resource the upgrade token stands for and a form that emails the claim link.",
    params(("t" = Option<String>, Query, nullable = false, description = "The upgrade token.")),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn start(State(app): State<SharedApp>, Query(query): Query<TokenQuery>) -> Html<String> {
    let token = query.t.unwrap_or_default();
    let preview = preview_of(&app, &token).await;
    Html(views::claim::page(&token, &preview).into_string())
}
