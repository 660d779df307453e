//! The dashboard: server-rendered pages for people, signed in by an emailed link (the link
//! sets the session cookie; see `auth::email_callback`). Pages read the same store the API
//! does and act through the same functions; the little JavaScript they carry only counts
//! down lifetimes, follows log streams and sends forms. The handlers here gather what a
//! page shows; `views` turns it into HTML.

pub(super) mod assets;
pub(super) mod claim;
pub(super) mod deletion;
pub(super) mod deployments;
mod guard;
pub(super) mod join;
pub(super) mod operator;
pub(super) mod overview;
pub(super) mod resource;
pub(super) mod resources;
pub(super) mod settings;
pub(super) mod team;
pub(super) mod vault;
mod views;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;

use super::auth;
use super::error::ApiError;
use crate::app::{App, SharedApp};
use crate::store::Account;

pub fn routes() -> Router<SharedApp> {
    Router::new()
        .route("/dashboard", get(overview::show))
        .route("/dashboard/assets/{file}", get(assets::serve))
        .route("/confirm-deletion", get(deletion::page))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/resources", get(resources::list))
        .route("/dashboard/resources/{token}", get(resource::show))
        .route(
            "/dashboard/resources/{token}/reveal",
            post(resource::reveal),
        )
        .route(
            "/dashboard/resources/{token}/rotate",
            post(resource::rotate),
        )
        .route(
            "/dashboard/resources/{token}/delete",
            post(resource::delete),
        )
        .route("/dashboard/deployments", get(deployments::list))
        .route("/dashboard/deployments/{id}", get(deployments::show))
        .route(
            "/dashboard/deployments/{id}/redeploy",
            post(deployments::redeploy),
        )
        .route(
            "/dashboard/deployments/{id}/delete",
            post(deployments::delete),
        )
        .route("/dashboard/stacks/{slug}", get(deployments::stack))
        .route("/dashboard/vault", get(vault::show))
        .route("/dashboard/vault/{env}/{key}/reveal", post(vault::reveal))
        .route("/dashboard/team", get(team::show))
        .route("/dashboard/team/invitations", post(team::invite))
        .route(
            "/dashboard/team/invitations/{id}/revoke",
            post(team::revoke_invitation),
        )
        .route("/team/join", get(join::page).post(join::accept))
        .route("/dashboard/settings", get(settings::show))
        .route("/dashboard/settings/api-keys", post(settings::create_key))
        .route(
            "/dashboard/settings/api-keys/{id}/revoke",
            post(settings::revoke_key),
        )
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

/// A refusal as a page, with the API's status, code and `Retry-After`.
pub(super) fn refusal(error: ApiError) -> Response {
    let status = error.status();
    let page = views::refusal::page(error.code(), error.message());
    let mut response = (status, Html(page.into_string())).into_response();
    if let Some(seconds) = error.retry_after_seconds() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// A signed-in page: `render` makes it from the session; a browser without one goes to
/// the sign-in form, and a refusal becomes a page.
async fn signed_in_page(
    app: &App,
    headers: &HeaderMap,
    render: impl AsyncFnOnce(&Session) -> Result<Markup, ApiError>,
) -> Response {
    let Some(session) = Session::of(app, headers).await else {
        return to_sign_in();
    };
    match render(&session).await {
        Ok(page) => Html(page.into_string()).into_response(),
        Err(error) => refusal(error),
    }
}

/// A signed-in form that changes something: refused unless it carries the session's
/// form token and comes from this host; `act` gets the session and the form's fields.
async fn signed_in_form(
    app: &App,
    headers: &HeaderMap,
    body: &Bytes,
    act: impl AsyncFnOnce(
        &Session,
        &std::collections::HashMap<String, String>,
    ) -> Result<Response, ApiError>,
) -> Response {
    let Some(session) = Session::of(app, headers).await else {
        return to_sign_in();
    };
    let fields = guard::form(body);
    let checked = session.check(app, headers, fields.get(guard::FIELD).map(String::as_str));
    let answer = match checked {
        Ok(()) => act(&session, &fields).await,
        Err(error) => Err(error),
    };
    answer.unwrap_or_else(refusal)
}

/// What a page says after an action sent the browser back to it: `?done=<code>`, looked
/// up in the page's own table (so nothing from the address is ever shown).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Done {
    /// The action that just finished.
    pub done: Option<String>,
}

impl Done {
    fn notice(&self, notices: &[(&str, &'static str)]) -> Option<&'static str> {
        let done = self.done.as_deref()?;
        notices
            .iter()
            .find(|(code, _)| *code == done)
            .map(|(_, notice)| *notice)
    }
}

/// The kinds whose resources are apps: they are listed and shown as deployments.
fn app_kinds(app: &App) -> Vec<String> {
    app.kinds.app_kind().into_iter().map(|k| k.name).collect()
}

/// An HTML answer.
fn html(page: Markup) -> Response {
    Html(page.into_string()).into_response()
}

/// Refuses a delete whose typed confirmation is not the name.
fn confirmed(
    fields: &std::collections::HashMap<String, String>,
    name: &str,
) -> Result<(), ApiError> {
    if fields.get("confirm").map(|typed| typed.trim()) == Some(name) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "confirmation_mismatch",
        "The name typed to confirm the delete does not match.",
    )
    .action("Go back and type the name exactly as shown to delete it."))
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
