//! The CLI's device flow: `POST /auth/cli` opens a session and names the page where its
//! user approves it; the CLI polls `GET /auth/cli/{id}` and, once approved, receives an
//! API key (once). A signed-in browser approves with `POST /auth/cli/{id}/approve`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::response::{IntoResponse, Response};
use maud::html;
use uuid::Uuid;

use super::auth::{account, hash, new_api_key};
use super::error::ApiError;
use super::schema::{CliApproval, CliApproved, CliPending, CliSession, ErrorBody, True};
use crate::app::SharedApp;
use crate::store::{CliPoll, NewKey};

/// A CLI session waits this long for approval.
const SESSION_SECONDS: i64 = 600;

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "session_not_found",
        "No CLI sign-in is waiting under this id: unknown, expired, or already collected.",
    )
    .action("Start again with POST /auth/cli.")
}

/// A session nobody approved in time: said as such, so a polling CLI stops and starts over.
fn expired() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "session_expired",
        "This CLI sign-in was not approved in time.",
    )
    .with("status", "expired")
    .action("Start again with POST /auth/cli and approve the new link within 10 minutes.")
}

fn session_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

/// `POST /auth/cli`.
#[utoipa::path(post, path = "/auth/cli", tag = "accounts", operation_id = "startCliSignIn",
    summary = "Open a device sign-in session",
    responses((status = 201, description = "Open auth_url in a browser; poll the session.", body = CliSession)))]
pub async fn start(
    State(app): State<SharedApp>,
) -> Result<(StatusCode, Json<CliSession>), ApiError> {
    let id = Uuid::new_v4();
    let now = app.clock.now();
    let expires_at = now + chrono::Duration::seconds(SESSION_SECONDS);
    app.store
        .insert_cli_session(id, now, expires_at)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(CliSession {
            ok: True,
            session_id: id,
            auth_url: format!("{}/auth/cli/{id}/approve", app.public_url),
            expires_in: SESSION_SECONDS,
            expires_at,
            agent_action: "Open auth_url in a browser, sign in and approve; meanwhile poll GET /auth/cli/<session_id> every few seconds.".into(),
        }),
    ))
}

/// `GET /auth/cli/{id}`: 202 while pending; 200 with the API key once approved (once).
#[utoipa::path(get, path = "/auth/cli/{id}", tag = "accounts", operation_id = "pollCliSignIn",
    summary = "Poll a device sign-in session",
    responses(
        (status = 202, description = "Waiting for approval.", body = CliPending),
        (status = 200, description = "Approved: the API key, shown once.", body = CliApproved),
        (status = 410, description = "Not approved in time (`status: expired`).", body = ErrorBody),
    ))]
pub async fn poll(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = session_id(&id)?;
    let session = match app
        .store
        .poll_cli_session(id, app.clock.now())
        .await
        .map_err(ApiError::internal)?
    {
        CliPoll::Live(session) => session,
        CliPoll::Expired => return Err(expired()),
        CliPoll::Unknown => return Err(not_found()),
    };
    let (Some(sealed), Some(user)) = (session.sealed_api_key, session.user_id) else {
        let pending = CliPending {
            ok: True,
            pending: true,
            status: "pending".into(),
        };
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    };
    let key = app
        .sealer
        .open(&sealed, id.as_bytes())
        .map_err(ApiError::internal)?;
    let account = app
        .store
        .account(user)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    let key = String::from_utf8_lossy(&key).into_owned();
    Ok(Json(CliApproved {
        ok: True,
        status: "approved".into(),
        api_token: key.clone(),
        api_key: key,
        email: account.email,
        team_id: account.team_id,
        team_name: account.team_name,
        tier: account.tier,
    })
    .into_response())
}

/// `POST /auth/cli/{id}/approve`: the signed-in user lets the waiting CLI in.
#[utoipa::path(post, path = "/auth/cli/{id}/approve", tag = "accounts", operation_id = "approveCliSignIn",
    summary = "Approve a device sign-in",
    security(("bearer" = [])),
    responses((status = 200, description = "Approved.", body = CliApproval)))]
pub async fn approve(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CliApproval>, ApiError> {
    let id = session_id(&id)?;
    let account = account(&app, &headers).await?;
    let now = app.clock.now();
    let key = new_api_key();
    let sealed = app
        .sealer
        .seal(key.as_bytes(), id.as_bytes())
        .map_err(ApiError::internal)?;
    if !app
        .store
        .approve_cli_session(id, account.user_id, &sealed, now)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(not_found());
    }
    app.store
        .insert_api_key(
            &account,
            "cli",
            &NewKey {
                hash: &hash(&key),
                prefix: super::auth::shown_part(&key),
            },
            false,
            now,
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(CliApproval {
        ok: True,
        approved: true,
        session_id: id,
    }))
}

const APPROVE_STYLE: &str =
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem}";

/// `GET /auth/cli/{id}/approve`: the page the CLI sends its user to.
#[utoipa::path(get, path = "/auth/cli/{id}/approve", tag = "accounts", operation_id = "cliApprovePage",
    summary = "The approval page",
    responses((status = 200, description = "An HTML page.", body = String, content_type = "text/html")))]
pub async fn approve_page(Path(id): Path<String>) -> Html<String> {
    let id = Uuid::parse_str(&id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    let body = html! {
        h1 { "Approve a CLI sign-in" }
        p { "A command line program asked to act for your account (session " code { (id) } ")." }
        p {
            "Signed in? Approve it with " code { "POST /auth/cli/" (id) "/approve" }
            " and your session token. Not signed in? Ask for a link with "
            code { "POST /auth/email/start" } " first."
        }
    };
    let page = crate::html_document::document("Approve CLI sign-in", APPROVE_STYLE, body);
    Html(page.into_string())
}
