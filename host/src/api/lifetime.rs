//! How long an app or stack lives: `POST .../ttl {"hours": N}` and `POST .../make-permanent`
//! for deployments and stacks.
//!
//! Anonymous apps and stacks keep the lifetime they were made with (claiming them is the way
//! to keep them). A team's may be set within its tier: on a tier whose resources expire
//! (`ttl_hours` above 0) at most that many hours and never permanent; on the others any
//! number of hours up to a year, or permanent.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use super::error::ApiError;
use super::json::JsonObject;
use super::resources::parse_token;
use super::schema::{Lifetime, True, TtlRequest};
use crate::app::{App, SharedApp};
use crate::store::DeploymentRow;

/// The longest lifetime that may be set: a year.
const MAX_HOURS: u64 = 8760;

/// What a lifetime change applies to: one app, or every service of a stack.
struct Target {
    id: String,
    /// Whether it belongs to a team (anonymous ones cannot be changed).
    owned_by_team: bool,
    tier: String,
    resource_ids: Vec<Uuid>,
    stack_id: Option<Uuid>,
}

/// What the caller asks for: a number of hours from now, or no end.
#[derive(Clone, Copy)]
enum Wanted {
    Hours(u64),
    Permanent,
}

/// `POST /api/v1/deployments/{id}/ttl`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/ttl", tag = "deploys",
    operation_id = "setDeploymentTtl",
    summary = "Remove an app after a number of hours",
    description = "For a team's app (anonymous apps answer 402 claim_required). The hours run from now: 1 to 8760, at most the tier's ttl_hours on a tier whose resources expire (402 upgrade_required beyond it).",
    request_body = TtlRequest,
    responses((status = 200, description = "The new lifetime.", body = Lifetime)))]
pub async fn deployment_ttl(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Lifetime>, ApiError> {
    let wanted = hours_field(&body)?;
    let target = deployment(&app, &id).await?;
    apply(&app, target, wanted).await
}

/// `POST /api/v1/deployments/{id}/make-permanent`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/make-permanent", tag = "deploys",
    operation_id = "makeDeploymentPermanent",
    summary = "Keep an app until it is deleted",
    description = "For a team's app on a tier whose resources do not expire; 402 claim_required for anonymous apps, 402 upgrade_required on tiers whose resources expire. Idempotent.",
    responses((status = 200, description = "The new lifetime.", body = Lifetime)))]
pub async fn deployment_permanent(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Json<Lifetime>, ApiError> {
    let target = deployment(&app, &id).await?;
    apply(&app, target, Wanted::Permanent).await
}

/// `POST /api/v1/stacks/{slug}/ttl`.
#[utoipa::path(post, path = "/api/v1/stacks/{slug}/ttl", tag = "stacks",
    operation_id = "setStackTtl",
    summary = "Remove a stack after a number of hours",
    description = "Every service of a team's stack; the same rules as an app's ttl.",
    security(("bearer" = [])),
    request_body = TtlRequest,
    responses((status = 200, description = "The new lifetime.", body = Lifetime)))]
pub async fn stack_ttl(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Json<Lifetime>, ApiError> {
    let wanted = hours_field(&body)?;
    let target = stack(&app, &slug, &headers).await?;
    apply(&app, target, wanted).await
}

/// `POST /api/v1/stacks/{slug}/make-permanent`.
#[utoipa::path(post, path = "/api/v1/stacks/{slug}/make-permanent", tag = "stacks",
    operation_id = "makeStackPermanent",
    summary = "Keep a stack until it is deleted",
    description = "Every service of a team's stack; the same rules as an app's make-permanent.",
    security(("bearer" = [])),
    responses((status = 200, description = "The new lifetime.", body = Lifetime)))]
pub async fn stack_permanent(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Lifetime>, ApiError> {
    let target = stack(&app, &slug, &headers).await?;
    apply(&app, target, Wanted::Permanent).await
}

async fn deployment(app: &App, id: &str) -> Result<Target, ApiError> {
    let row = super::deploy::find_row(app, parse_token(id)?).await?;
    Ok(Target {
        id: row.token.to_string(),
        owned_by_team: row.team_id.is_some(),
        tier: row.tier.clone(),
        resource_ids: vec![row.resource_id],
        stack_id: None,
    })
}

async fn stack(app: &App, slug: &str, headers: &HeaderMap) -> Result<Target, ApiError> {
    let (stack, services) = super::stacks::find(app, slug, headers).await?;
    let live: Vec<&DeploymentRow> = services
        .iter()
        .filter(|row| row.resource_status.is_live())
        .collect();
    let tier = live.first().map(|row| row.tier.clone()).ok_or_else(|| {
        ApiError::new(
            StatusCode::GONE,
            "stack_ended",
            "Every service of this stack has ended.",
        )
        .action("Deploy the stack again (POST /stacks/new) if it is still needed.")
    })?;
    Ok(Target {
        id: stack.slug,
        owned_by_team: stack.fingerprint.starts_with("team:"),
        tier,
        resource_ids: live.iter().map(|row| row.resource_id).collect(),
        stack_id: Some(stack.id),
    })
}

/// Checks `wanted` against the target's owner and tier, then stores it.
async fn apply(app: &App, target: Target, wanted: Wanted) -> Result<Json<Lifetime>, ApiError> {
    if !target.owned_by_team {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "claim_required",
            "Anonymous apps and stacks keep the lifetime they were created with.",
        )
        .with("claim_url", format!("{}/claim", app.public_url))
        .action(format!("Tell the user to claim an account ({}/claim) and deploy with its API key; a team's apps can then be kept longer or for good.", app.public_url)));
    }
    let tier = app
        .plans
        .tier(&target.tier)
        .ok_or_else(|| ApiError::internal(format!("tier `{}` is not in the plans", target.tier)))?;
    let limit_hours = u64::from(tier.ttl_hours);
    let beyond_tier = match wanted {
        Wanted::Permanent => limit_hours > 0,
        Wanted::Hours(hours) => limit_hours > 0 && hours > limit_hours,
    };
    if beyond_tier {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "upgrade_required",
            format!(
                "The {} tier keeps apps and stacks at most {limit_hours} hours.",
                tier.display_name
            ),
        )
        .with("limit_hours", limit_hours)
        .action(format!("Set at most {limit_hours} hours, or tell the user to upgrade to a paid tier to keep apps longer or for good.")));
    }
    let now = app.clock.now();
    let expires_at: Option<DateTime<Utc>> = match wanted {
        // Whole seconds: what the answer says is exactly what the store keeps.
        Wanted::Hours(hours) => Some(
            (now + chrono::Duration::hours(i64::try_from(hours).unwrap_or(1))).trunc_subsecs(0),
        ),
        Wanted::Permanent => None,
    };
    app.store
        .set_lifetime(&target.resource_ids, target.stack_id, expires_at, now)
        .await
        .map_err(ApiError::internal)?;
    let (ttl_policy, message) = match expires_at {
        Some(at) => (
            "custom",
            format!(
                "It is removed at {} unless changed again.",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
        None => ("permanent", "It runs until it is deleted.".to_string()),
    };
    Ok(Json(Lifetime {
        ok: True,
        id: target.id,
        ttl_policy: ttl_policy.into(),
        expires_at,
        message,
    }))
}

/// `hours`: a whole number from 1 to [`MAX_HOURS`].
fn hours_field(body: &serde_json::Map<String, serde_json::Value>) -> Result<Wanted, ApiError> {
    body.get("hours")
        .and_then(serde_json::Value::as_u64)
        .filter(|hours| (1..=MAX_HOURS).contains(hours))
        .map(Wanted::Hours)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_hours",
                format!("`hours` must be a whole number from 1 to {MAX_HOURS}."),
            )
            .action("Retry with a body like {\"hours\": 48}; use make-permanent to keep it until deleted.")
        })
}
