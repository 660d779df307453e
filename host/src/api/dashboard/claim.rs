//! The claim page an `upgrade` link opens (`/start?t=<upgrade_jwt>`): the resource the link
//! stands for, and a form that emails the link that moves it into the person's account.
//! A `claim_url` (`/claim?t=...`, or plain `/claim` from the recycle gate) opens in a
//! browser too: `POST /claim` is the API, `GET /claim` the page.

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

#[utoipa::path(get, path = "/claim", tag = "accounts", operation_id = "claimPage",
    summary = "What a claim_url opens in a browser",
    description = "With an upgrade token, the claim page (as /start); without one (the recycle gate's claim_url), the sign-in form that makes an account.",
    params(("t" = Option<String>, Query, nullable = false, description = "The upgrade token.")),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn open(app: State<SharedApp>, Query(query): Query<TokenQuery>) -> Html<String> {
    match query.t {
        Some(token) if !token.is_empty() => start(app, Query(TokenQuery { t: Some(token) })).await,
        _ => Html(views::sign_in::page().into_string()),
    }
}
