//! The team's deployments and stacks, and one deployment's page with its actions
//! (redeploy, delete). Actions go through the API's own functions.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::views::deployment::Owned;
use super::views::deployments::StackShown;
use super::{Done, Session, confirmed, html, refusal, signed_in_form, signed_in_page, views};
use crate::api::deletion::{Deletable, hold_for_confirmation};
use crate::api::deploy::{find_row, item, start_redeploy};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::query::Query;
use crate::api::resources::{delete_now, not_found, parse_token};
use crate::api::schema::{ConfirmedDeleteForm, CsrfForm, Deployment};
use crate::app::{App, SharedApp};
use crate::store::DeploymentRow;

/// What the app's page says after an action.
const NOTICES: [(&str, &str); 2] = [
    (
        "redeploy",
        "Rebuilding the last upload; the current version serves until the new one answers.",
    ),
    (
        "delete_pending",
        "A paid team's app goes once a person confirms: we emailed you a link.",
    ),
];

#[utoipa::path(get, path = "/dashboard/deployments", tag = "dashboard",
    operation_id = "dashboardDeployments",
    summary = "The team's apps and stacks",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn list(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    signed_in_page(&app, &headers, async |session| {
        let team = session.account.team_id;
        let rows = app
            .store
            .team_deployments(team)
            .await
            .map_err(ApiError::internal)?;
        let stacks = app
            .store
            .team_stacks(team)
            .await
            .map_err(ApiError::internal)?;
        let items: Vec<(Option<uuid::Uuid>, Deployment)> = rows
            .iter()
            .map(|row| (row.stack_id, item(&app, row)))
            .collect();
        let apps: Vec<&Deployment> = items
            .iter()
            .filter(|(s, _)| s.is_none())
            .map(|(_, d)| d)
            .collect();
        let shown: Vec<StackShown> = stacks
            .iter()
            .map(|stack| StackShown {
                stack,
                services: items
                    .iter()
                    .filter(|(s, _)| *s == Some(stack.id))
                    .map(|(_, d)| d)
                    .collect(),
            })
            .collect();
        Ok(views::deployments::page(
            &session.account,
            &app.public_url,
            &apps,
            &shown,
        ))
    })
    .await
}

/// One deployment: its status and live log for anyone holding the id; its settings and
/// actions too for a member of its team.
#[utoipa::path(get, path = "/dashboard/deployments/{id}", tag = "dashboard",
    operation_id = "dashboardDeployment",
    summary = "A deployment's status, live log and autopsy; for its team, settings and actions",
    params(Done),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    if !crate::wire::plain_segment(&id) {
        return refusal(not_found_app());
    }
    let owned = match Session::of(&app, &headers).await {
        Some(session) => match team_app(&app, &session, &id).await {
            Ok(row) => Some((session, row)),
            Err(_) => None,
        },
        None => None,
    };
    match owned {
        Some((session, row)) => owned_page(&app, &session, &row, done.notice(&NOTICES))
            .await
            .map(html)
            .unwrap_or_else(refusal),
        None => html(views::deployment::page(&id)),
    }
}

fn not_found_app() -> ApiError {
    ApiError::not_found("Deployment")
}

/// The session's team's app behind `id`.
async fn team_app(app: &App, session: &Session, id: &str) -> Result<DeploymentRow, ApiError> {
    let row = find_row(app, parse_token(id)?).await?;
    if row.team_id != Some(session.account.team_id) {
        return Err(not_found());
    }
    Ok(row)
}

async fn owned_page(
    app: &App,
    session: &Session,
    row: &DeploymentRow,
    notice: Option<&str>,
) -> Result<maud::Markup, ApiError> {
    let item = item(app, row);
    let env = crate::deploy::rollout::open_env(app, row.resource_id, &row.sealed_env)
        .map_err(ApiError::internal)?;
    let env = env_names(env);
    let domains = crate::api::domains::domains_of(app, std::slice::from_ref(row)).await?;
    let stack = match row.stack_id {
        Some(id) => app
            .store
            .stack_by_id(id)
            .await
            .map_err(ApiError::internal)?,
        None => None,
    };
    let owned = Owned {
        account: &session.account,
        public_url: &app.public_url,
        item: &item,
        env: &env,
        domains: &domains,
        stack: stack.as_ref().map(|s| (s.slug.as_str(), s.name.as_str())),
        form_token: &session.form_token,
        notice,
    };
    Ok(views::deployment::owned_page(&owned))
}

/// Env var names with the kind of resource each value points at (read from its URL's
/// scheme); the values themselves are dropped here.
fn env_names(env: BTreeMap<String, String>) -> Vec<(String, Option<&'static str>)> {
    const SCHEMES: [(&str, &str); 7] = [
        ("postgres://", "postgres"),
        ("postgresql://", "postgres"),
        ("redis://", "redis"),
        ("rediss://", "redis"),
        ("mongodb://", "mongodb"),
        ("nats://", "nats"),
        ("vault://", "vault"),
    ];
    env.into_iter()
        .map(|(name, value)| {
            let kind = SCHEMES
                .iter()
                .find(|(scheme, _)| value.starts_with(scheme))
                .map(|(_, kind)| *kind);
            (name, kind)
        })
        .collect()
}

#[utoipa::path(post, path = "/dashboard/deployments/{id}/redeploy", tag = "dashboard",
    operation_id = "dashboardRedeploy",
    summary = "Rebuild a team app's last upload",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Started: back to the deployment's page."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn redeploy(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, _| {
        let row = team_app(&app, session, &id).await?;
        let token = row.token;
        start_redeploy(&app, row, None, None).await?;
        Ok(Redirect::to(&format!("/dashboard/deployments/{token}?done=redeploy")).into_response())
    })
    .await
}

#[utoipa::path(post, path = "/dashboard/deployments/{id}/delete", tag = "dashboard",
    operation_id = "dashboardDeleteDeployment",
    summary = "Delete a team app once its name was typed to confirm",
    description = "A paid team's app waits for the emailed confirmation, as through the API.",
    request_body(content = ConfirmedDeleteForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Deleted, or waiting for the emailed confirmation."),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn delete(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, fields| {
        let row = team_app(&app, session, &id).await?;
        confirmed(fields, row.service.as_deref().unwrap_or(&row.name))?;
        let deletable = Deletable {
            target: row.token,
            kind: "deployment",
            handle: row.token.to_string(),
            name: row.name.clone(),
            team_id: row.team_id,
            tier: row.tier.clone(),
        };
        if hold_for_confirmation(&app, &headers, deletable)
            .await?
            .is_some()
        {
            let page = format!("/dashboard/deployments/{}?done=delete_pending", row.token);
            return Ok(Redirect::to(&page).into_response());
        }
        delete_now(&app, row.token).await?;
        Ok(Redirect::to("/dashboard/deployments").into_response())
    })
    .await
}

#[utoipa::path(get, path = "/dashboard/stacks/{slug}", tag = "dashboard",
    operation_id = "dashboardStack",
    summary = "One of the team's stacks with its services",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn stack(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    signed_in_page(&app, &headers, async |session| {
        let missing = || ApiError::not_found("Stack");
        let stack = app
            .store
            .stack_by_slug(&slug)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(missing)?;
        let rows = app
            .store
            .stack_services(stack.id)
            .await
            .map_err(ApiError::internal)?;
        if !rows
            .iter()
            .any(|r| r.team_id == Some(session.account.team_id))
        {
            return Err(missing());
        }
        let items: Vec<Deployment> = rows.iter().map(|row| item(&app, row)).collect();
        let shown = StackShown {
            stack: &stack,
            services: items.iter().collect(),
        };
        Ok(views::stack::page(
            &session.account,
            &app.public_url,
            &shown,
        ))
    })
    .await
}
