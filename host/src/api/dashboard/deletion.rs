//! The page an emailed delete confirmation opens: what would be deleted, and a button
//! that confirms it (opening the link alone deletes nothing; mail scanners open links).

use axum::extract::State;
use axum::response::Html;

use super::views;
use crate::api::claim::TokenQuery;
use crate::api::error::ApiError;
use crate::api::query::Query;
use crate::app::SharedApp;

/// `GET /confirm-deletion?t=`: what the emailed link opens, a page naming what would be
/// deleted with a button that confirms it (opening the link deletes nothing).
#[utoipa::path(get, path = "/confirm-deletion", tag = "dashboard", operation_id = "confirmDeletionPage",
    summary = "The page an emailed delete confirmation opens",
    params(("t" = Option<String>, Query, nullable = false, description = "The del_ token.")),
    responses((status = 200, description = "An HTML page.", body = String, content_type = "text/html")))]
pub async fn page(
    State(app): State<SharedApp>,
    Query(query): Query<TokenQuery>,
) -> Result<Html<String>, ApiError> {
    let secret = query.t.unwrap_or_default();
    let pending = app
        .store
        .pending_deletion(&crate::api::auth::hash(&secret), app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    let confirm_url = pending
        .as_ref()
        .map(|p| format!("/api/v1/{}s/{}/confirm-deletion", p.kind, p.handle));
    Ok(Html(
        views::deletion::page(
            pending.as_ref().map(|p| p.label.as_str()),
            confirm_url.as_deref(),
            &secret,
        )
        .into_string(),
    ))
}
