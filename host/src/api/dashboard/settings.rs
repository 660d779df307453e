//! Settings: the team's API keys, made and revoked through the API's own functions.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

use super::views::settings::Settings;
use super::{Done, Session, html, signed_in_form, signed_in_page, views};
use crate::api::auth::{api_key_name, issue_api_key, revoke_key as revoke};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::query::Query;
use crate::api::schema::{ApiKeyCreated, ApiKeyForm, CsrfForm};
use crate::app::{App, SharedApp};

/// What the page says after an action.
const NOTICES: [(&str, &str); 1] = [(
    "revoked",
    "Key revoked: requests that carry it are refused from now on.",
)];

#[utoipa::path(get, path = "/dashboard/settings", tag = "dashboard",
    operation_id = "dashboardSettings",
    summary = "The team's API keys",
    params(Done),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Query(done): Query<Done>,
) -> Response {
    let notice = done.notice(&NOTICES);
    signed_in_page(&app, &headers, async |session| {
        render(&app, session, None, notice).await
    })
    .await
}

#[utoipa::path(post, path = "/dashboard/settings/api-keys", tag = "dashboard",
    operation_id = "dashboardCreateApiKey",
    summary = "Make an API key (shown once on the page that answers)",
    request_body(content = ApiKeyForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page with the new key.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn create_key(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, fields| {
        let Some(name) = fields.get("name").and_then(|n| api_key_name(n)) else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_name",
                "A key's name must be 1-120 characters.",
            )
            .action("Go back and give the key a name, e.g. laptop agent."));
        };
        let created = issue_api_key(&app, &session.account, name.to_string(), false).await?;
        render(&app, session, Some(&created), None).await.map(html)
    })
    .await
}

#[utoipa::path(post, path = "/dashboard/settings/api-keys/{id}/revoke", tag = "dashboard",
    operation_id = "dashboardRevokeApiKey",
    summary = "Revoke one of the team's API keys",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Revoked: back to the settings."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn revoke_key(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, _| {
        revoke(&app, &session.account, &id).await?;
        Ok(Redirect::to("/dashboard/settings?done=revoked").into_response())
    })
    .await
}

async fn render(
    app: &App,
    session: &Session,
    created: Option<&ApiKeyCreated>,
    notice: Option<&str>,
) -> Result<maud::Markup, ApiError> {
    let keys = app
        .store
        .team_api_keys(session.account.team_id)
        .await
        .map_err(ApiError::internal)?;
    let settings = Settings {
        account: &session.account,
        public_url: &app.public_url,
        keys: &keys,
        created,
        notice,
        form_token: &session.form_token,
    };
    Ok(views::settings::page(&settings))
}
