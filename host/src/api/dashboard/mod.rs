//! The dashboard: server-rendered pages for people, signed in by an emailed link (the link
//! sets the session cookie; see `auth::email_callback`). Pages read the same store the API
//! does and act through the same functions; the little JavaScript they carry only counts
//! down lifetimes, follows log streams and sends forms. The handlers here gather what a
//! page shows; `views` turns it into HTML.

pub(super) mod claim;
pub(super) mod deletion;
mod guard;
pub(super) mod operator;
pub(super) mod resource;
mod views;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::auth;
use super::error::ApiError;
use crate::app::{App, SharedApp};
use crate::store::Account;

pub fn routes() -> Router<SharedApp> {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/confirm-deletion", get(deletion::page))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/resources/{token}", get(resource::show))
        .route(
            "/dashboard/resources/{token}/reveal",
            post(resource::reveal),
        )
        .route(
            "/dashboard/resources/{token}/rotate",
            post(resource::rotate),
        )
        .route("/dashboard/deployments/{id}", get(deployment))
        .route("/dashboard/operator", get(operator::show))
        .route("/dashboard/operator/sign-in", post(operator::sign_in))
        .route("/dashboard/operator/sign-out", post(operator::sign_out))
        .route(
            "/dashboard/operator/providers/{name}/rollback",
            post(operator::rollback),
        )
        .route(
            "/dashboard/operator/providers/{name}/unload",
            post(operator::unload),
        )
        .route(
            "/dashboard/operator/providers/{name}/upload",
            post(operator::upload).layer(DefaultBodyLimit::max(super::admin::MAX_COMPONENT_BYTES)),
        )
        .route("/start", get(claim::start))
}

/// `GET /claim`, routed with the API's `POST /claim`.
pub(super) use claim::open as claim_page;

/// A browser signed in by the session cookie.
struct Session {
    account: Account,
    /// The token this session's forms carry (see `guard`).
    form_token: String,
}

impl Session {
    async fn of(app: &App, headers: &HeaderMap) -> Option<Self> {
        let cookie = auth::cookie(headers, auth::SESSION_COOKIE)?;
        let account = auth::cookie_account(app, cookie).await?;
        Some(Self {
            account,
            form_token: guard::token_for(cookie),
        })
    }

    /// Refuses a form that did not come from this session's pages.
    fn check(
        &self,
        app: &App,
        headers: &HeaderMap,
        form_token: Option<&str>,
    ) -> Result<(), ApiError> {
        guard::check(app, headers, &self.form_token, form_token)
    }
}

/// A refusal as a page, with the API's status and code.
fn refusal(error: ApiError) -> Response {
    let status = error.status();
    let page = views::refusal::page(error.code(), error.message());
    (status, Html(page.into_string())).into_response()
}

/// The team's resources; the sign-in form for a browser without a session.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", operation_id = "dashboard",
    summary = "The team's resources, or the sign-in form",
    description = "Signed in by the session cookie an emailed link sets.",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
    ))]
async fn overview(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    let Some(session) = Session::of(&app, &headers).await else {
        return Html(views::sign_in::page().into_string()).into_response();
    };
    let rows = match app.store.team_resources(session.account.team_id).await {
        Ok(rows) => rows,
        Err(e) => return refusal(ApiError::internal(e)),
    };
    let items: Vec<_> = rows.iter().map(super::resources::describe).collect();
    let app_kinds: Vec<String> = app.kinds.app_kind().into_iter().map(|k| k.name).collect();
    let page = views::overview::page(&session.account, &items, &app_kinds);
    Html(page.into_string()).into_response()
}

/// Signs the browser out: the session itself is revoked (its `jti`), so a copy of the cookie
/// stops working too, and the cookie is cleared.
#[utoipa::path(post, path = "/dashboard/logout", tag = "dashboard", operation_id = "dashboardLogout",
    summary = "Sign the browser out",
    responses(
        (status = 303, description = "The cookie is cleared; back to /dashboard."),
    ))]
async fn logout(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::cookie(&headers, auth::SESSION_COOKIE)
        && let Err(e) = auth::revoke_session_token(&app, token).await
    {
        return refusal(e);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/dashboard".to_string()),
            (header::SET_COOKIE, auth::session_cookie(&app, "", 0)),
        ],
    )
        .into_response()
}

/// Pages behind the sign-in send a browser without a session to the sign-in form.
fn to_sign_in() -> Response {
    Redirect::to("/dashboard").into_response()
}

/// One deployment: its status, live log lines and, when it failed, the autopsy. The id in
/// the path is the credential, as on the API.
#[utoipa::path(get, path = "/dashboard/deployments/{id}", tag = "dashboard",
    operation_id = "dashboardDeployment",
    summary = "A deployment's status, live log and autopsy",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
async fn deployment(Path(id): Path<String>) -> Response {
    if !crate::wire::plain_segment(&id) {
        return refusal(ApiError::not_found("Deployment"));
    }
    Html(views::deployment::page(&id).into_string()).into_response()
}
