//! One resource's page: what it is, how full it is, when it ends, and its credentials on
//! request. Revealing and rotating go through the API's own functions, so both land in the
//! same audit trail whichever surface was used.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Duration;

use super::views::resource::Resource;
use super::{Session, confirmed, guard, refusal, signed_in_form, to_sign_in, views};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::resources::{self, Via};
use crate::api::schema::{ConfirmedDeleteForm, CsrfForm};
use crate::app::{App, SharedApp};

/// How many audit events the page lists.
const EVENTS_SHOWN: i64 = 20;
/// Points per usage chart.
const CHART_POINTS: i64 = 60;

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
        Ok(Page::Html(html)) => Html(html).into_response(),
        Ok(Page::Deployment(token)) => {
            Redirect::to(&format!("/dashboard/deployments/{token}")).into_response()
        }
        Err(error) => refusal(error),
    }
}

/// What a resource's address shows: its page, or (for an app) its deployment's page.
enum Page {
    Html(String),
    Deployment(uuid::Uuid),
}

async fn render(
    app: &App,
    headers: &HeaderMap,
    session: &Session,
    token: &str,
    form: Option<Bytes>,
    action: Action,
) -> Result<Page, ApiError> {
    if let Some(form) = form {
        let fields = guard::form(&form);
        session.check(app, headers, fields.get(guard::FIELD).map(String::as_str))?;
    }
    let row = resources::owned_by(app, &session.account, token).await?;
    if super::app_kinds(app).contains(&row.kind) {
        return Ok(Page::Deployment(row.token));
    }
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
    let now = app.clock.now();
    let usage = app
        .store
        .usage_series(&[row.id], now - Duration::days(7), now, CHART_POINTS)
        .await
        .map_err(ApiError::internal)?;
    let item = resources::describe(&row);
    let shown = Resource {
        account: &session.account,
        public_url: &app.public_url,
        item: &item,
        rotatable: app.kinds.kind(&row.kind).is_some_and(|k| k.rotatable),
        credentials: credentials.as_ref(),
        events: &events,
        usage: &usage,
    };
    Ok(Page::Html(
        views::resource::page(&shown, &session.form_token).into_string(),
    ))
}

#[utoipa::path(post, path = "/dashboard/resources/{token}/delete", tag = "dashboard",
    operation_id = "dashboardDeleteResource",
    summary = "Delete a resource once its name was typed to confirm",
    request_body(content = ConfirmedDeleteForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Deleted: to the resources list (or, without a session, to the sign-in form)."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn delete(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, fields| {
        let row = resources::owned_by(&app, &session.account, &token).await?;
        confirmed(fields, &row.name)?;
        resources::delete_now(&app, row.token).await?;
        Ok(Redirect::to("/dashboard/resources").into_response())
    })
    .await
}
