//! The dashboard: server-rendered pages for people, signed in by an emailed link (the link
//! sets the session cookie; see `auth::email_callback`). Pages read the same store the API
//! does; the little JavaScript they carry only counts down lifetimes and follows log streams.

mod page;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::auth;
use super::error::ApiError;
use crate::app::SharedApp;

pub fn routes() -> Router<SharedApp> {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/deployments/{id}", get(deployment))
}

/// The team's resources; the sign-in form for a browser without a session.
async fn overview(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    let Some(account) = auth::cookie_account(&app, &headers).await else {
        return Html(page::sign_in()).into_response();
    };
    let rows = match app.store.team_resources(account.team_id).await {
        Ok(rows) => rows,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let items: Vec<Value> = rows.iter().map(super::resources::describe).collect();
    Html(page::overview(&account, &items)).into_response()
}

/// Signs the browser out (the cookie is cleared; the session token ends with its lifetime).
async fn logout(State(app): State<SharedApp>) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/dashboard".to_string()),
            (header::SET_COOKIE, auth::session_cookie(&app, "", 0)),
        ],
    )
        .into_response()
}

/// One deployment: its status, live log lines and, when it failed, the autopsy. The id in
/// the path is the credential, as on the API.
async fn deployment(Path(id): Path<String>) -> Response {
    if !crate::wire::plain_segment(&id) {
        return ApiError::not_found("Deployment").into_response();
    }
    Html(page::deployment(&id)).into_response()
}
