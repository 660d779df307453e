//! One resource's page: what it is, how full it is, when it ends, and its credentials on
//! request. Revealing and rotating go through the API's own functions, so both land in the
//! same audit trail whichever surface was used.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};

use super::views::resource::Resource;
use super::{Session, guard, refusal, to_sign_in, views};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::resources::{self, Via};
use crate::api::schema::CsrfForm;
use crate::app::{App, SharedApp};

/// How many audit events the page lists.
const EVENTS_SHOWN: i64 = 20;

#[derive(Clone, Copy)]
enum Action {
    View,
    Reveal,
    Rotate,
}

#[utoipa::path(get, path = "/dashboard/resources/{token}", tag = "dashboard",
    operation_id = "dashboardResource",
    summary = "One resource: status, usage, lifetime, credential history",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    act(&app, &headers, &token, None, Action::View).await
}

#[utoipa::path(post, path = "/dashboard/resources/{token}/reveal", tag = "dashboard",
    operation_id = "dashboardRevealCredentials",
    summary = "Show the credentials (recorded in the credential history)",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn reveal(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    act(&app, &headers, &token, Some(body), Action::Reveal).await
}

#[utoipa::path(post, path = "/dashboard/resources/{token}/rotate", tag = "dashboard",
    operation_id = "dashboardRotateCredentials",
    summary = "Issue new credentials (recorded in the credential history)",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = "5XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn rotate(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    act(&app, &headers, &token, Some(body), Action::Rotate).await
}

async fn act(
    app: &App,
    headers: &HeaderMap,
    token: &str,
    form: Option<Bytes>,
    action: Action,
) -> Response {
    let Some(session) = Session::of(app, headers).await else {
        return to_sign_in();
    };
    match render(app, headers, &session, token, form, action).await {
        Ok(html) => Html(html).into_response(),
        Err(error) => refusal(error),
    }
}

async fn render(
    app: &App,
    headers: &HeaderMap,
    session: &Session,
    token: &str,
    form: Option<Bytes>,
    action: Action,
) -> Result<String, ApiError> {
    if let Some(form) = form {
        let fields = guard::form(&form);
        session.check(app, headers, fields.get(guard::FIELD).map(String::as_str))?;
    }
    let row = resources::owned_by(app, &session.account, token).await?;
    let credentials = match action {
        Action::View => None,
        Action::Reveal => {
            Some(resources::reveal(app, &session.account, &row, Via::Dashboard).await?)
        }
        Action::Rotate => {
            Some(resources::rotate(app, &session.account, &row, Via::Dashboard).await?)
        }
    };
    let events = app
        .store
        .credential_events(row.token, EVENTS_SHOWN)
        .await
        .map_err(ApiError::internal)?;
    let item = resources::describe(&row);
    let shown = Resource {
        item: &item,
        rotatable: app.kinds.kind(&row.kind).is_some_and(|k| k.rotatable),
        credentials: credentials.as_ref(),
        events: &events,
    };
    Ok(views::resource::page(&shown, &session.form_token).into_string())
}
