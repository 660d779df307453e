//! A team's settings: `GET`/`PATCH /api/v1/team/settings`. Today one: the default
//! lifetime of the team's new apps.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;
use super::json::JsonObject;
use super::schema::{TeamSettings, TeamSettingsUpdate, True};
use crate::app::{App, SharedApp};
use crate::deploy::apps::Deployer;

/// The lifetime `auto_24h` gives a new app.
const AUTO_TTL: Duration = Duration::from_secs(24 * 3600);
const POLICIES: [&str; 2] = ["auto_24h", "permanent"];

/// `GET /api/v1/team/settings`.
#[utoipa::path(get, path = "/api/v1/team/settings", tag = "accounts", operation_id = "getTeamSettings",
    summary = "The team's settings",
    security(("bearer" = [])),
    responses((status = 200, description = "The settings.", body = TeamSettings)))]
pub async fn get(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<TeamSettings>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let policy = app
        .store
        .team_ttl_policy(account.team_id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(TeamSettings {
        ok: True,
        default_deployment_ttl_policy: policy,
    }))
}

/// `PATCH /api/v1/team/settings`.
#[utoipa::path(patch, path = "/api/v1/team/settings", tag = "accounts", operation_id = "updateTeamSettings",
    summary = "Change the team's settings",
    description = "`default_deployment_ttl_policy`: `auto_24h` ends the team's new apps after a day unless kept; `permanent` gives them the tier's lifetime (none on paid tiers). Apps already running keep theirs.",
    security(("bearer" = [])),
    request_body = TeamSettingsUpdate,
    responses((status = 200, description = "The settings.", body = TeamSettings)))]
pub async fn update(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Json<TeamSettings>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let policy = body
        .get("default_deployment_ttl_policy")
        .and_then(serde_json::Value::as_str)
        .filter(|policy| POLICIES.contains(policy))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_ttl_policy",
                "`default_deployment_ttl_policy` must be `auto_24h` or `permanent`.",
            )
            .action(
                "Retry with {\"default_deployment_ttl_policy\": \"auto_24h\"} or \"permanent\".",
            )
        })?;
    app.store
        .set_team_ttl_policy(account.team_id, policy)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(TeamSettings {
        ok: True,
        default_deployment_ttl_policy: policy.to_string(),
    }))
}

/// The lifetime a new app of `deployer` gets beyond its tier's: a day when its team's
/// policy is `auto_24h`.
pub(super) async fn default_app_ttl(
    app: &App,
    deployer: &Deployer,
) -> Result<Option<Duration>, ApiError> {
    let Some((team_id, _)) = &deployer.team else {
        return Ok(None);
    };
    let policy = app
        .store
        .team_ttl_policy(*team_id)
        .await
        .map_err(ApiError::internal)?;
    Ok((policy == "auto_24h").then_some(AUTO_TTL))
}
