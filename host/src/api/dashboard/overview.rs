//! The overview: counts per kind against the tier, deployments, webhooks, vault, usage
//! over the week, what happened lately, and resources near their limits.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::Duration;
use maud::Markup;

use super::views::overview::{KindSummary, Overview};
use super::{Session, html, refusal, views};
use crate::api::error::ApiError;
use crate::api::resources::describe;
use crate::api::schema::Resource;
use crate::app::{App, SharedApp};
use crate::store::DeploymentStatus;

/// How many events the activity list shows.
const ACTIVITY_SHOWN: i64 = 15;
/// How many resources "recently active" lists.
const RECENT_SHOWN: usize = 5;
/// Points per chart.
const CHART_POINTS: i64 = 60;

/// The team's overview; the sign-in form for a browser without a session.
#[utoipa::path(get, path = "/dashboard", tag = "dashboard", operation_id = "dashboard",
    summary = "The team's overview, or the sign-in form",
    description = "Signed in by the session cookie an emailed link sets.",
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
    ))]
pub async fn show(State(app): State<SharedApp>, headers: HeaderMap) -> Response {
    let Some(session) = Session::of(&app, &headers).await else {
        return html(views::sign_in::page());
    };
    render(&app, &session)
        .await
        .map(html)
        .unwrap_or_else(refusal)
}

async fn render(app: &App, session: &Session) -> Result<Markup, ApiError> {
    let account = &session.account;
    let team = account.team_id;
    let rows = app
        .store
        .team_resources(team)
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<Resource> = rows.iter().map(describe).collect();
    let app_kinds = super::app_kinds(app);
    let deployments = app
        .store
        .team_deployments(team)
        .await
        .map_err(ApiError::internal)?;
    let vault_entries = app
        .store
        .vault_envs(team)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .map(|(_, count)| count)
        .sum();
    let activity = app
        .store
        .team_activity(team, ACTIVITY_SHOWN)
        .await
        .map_err(ApiError::internal)?;
    let now = app.clock.now();
    let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
    let usage = app
        .store
        .usage_series(&ids, now - Duration::days(7), now, CHART_POINTS)
        .await
        .map_err(ApiError::internal)?;

    let not_apps: Vec<&Resource> = items
        .iter()
        .filter(|i| !app_kinds.contains(&i.kind))
        .collect();
    let tier = app.plans.tier(&account.tier);
    let kinds = summarize(&not_apps, |kind| {
        tier.and_then(|t| t.resource_count_limit(kind))
    });
    let near_limit = not_apps
        .iter()
        .copied()
        .filter(|i| {
            i.storage_exceeded
                || views::parts::percent_used(i)
                    .is_some_and(|p| p >= views::parts::NEAR_LIMIT_PERCENT)
        })
        .collect();
    let mut recent: Vec<&Resource> = Vec::new();
    for token in activity.iter().filter_map(|a| a.token) {
        if recent.len() < RECENT_SHOWN
            && !recent.iter().any(|r| r.token == token)
            && let Some(item) = items.iter().find(|i| i.token == token)
        {
            recent.push(item);
        }
    }
    let overview = Overview {
        account,
        public_url: &app.public_url,
        kinds: &kinds,
        deployments_healthy: deployments
            .iter()
            .filter(|d| d.status == DeploymentStatus::Healthy)
            .count(),
        deployments_total: deployments.len(),
        webhooks: items.iter().filter(|i| i.kind == "webhook").count(),
        vault_entries,
        near_limit,
        recent,
        activity: &activity,
        usage: &usage,
        app_kinds: &app_kinds,
    };
    Ok(views::overview::page(&overview))
}

/// One line per kind: how many, how much storage and how many connections of how many.
fn summarize(items: &[&Resource], count_limit: impl Fn(&str) -> Option<u64>) -> Vec<KindSummary> {
    let mut by_kind: BTreeMap<&str, KindSummary> = BTreeMap::new();
    for item in items {
        let line = by_kind.entry(&item.kind).or_insert_with(|| KindSummary {
            kind: item.kind.clone(),
            count: 0,
            count_limit: count_limit(&item.kind),
            storage_bytes: 0,
            storage_limit_bytes: 0,
            connections: 0,
            connection_limit: 0,
        });
        line.count += 1;
        line.storage_bytes += item.storage_bytes.unwrap_or(0);
        line.storage_limit_bytes += item.storage_limit_bytes.unwrap_or(0);
        line.connections += item
            .usage
            .as_ref()
            .and_then(|u| u.get("connections")?.as_u64())
            .unwrap_or(0);
        line.connection_limit += item.limits.get("connections").copied().unwrap_or(0);
    }
    by_kind.into_values().collect()
}
