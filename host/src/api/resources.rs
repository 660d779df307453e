//! `/api/v1/resources/{token}`: an anonymous owner's view of one resource, and its delete.
//! The token is the credential. The connection URL is never shown here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use uuid::Uuid;

use super::error::ApiError;
use super::lifecycle_error::lifecycle_error;
use super::schema::{Resource, ResourceCredentials, ResourceDeleted, ResourceList, True};
use crate::app::{App, SharedApp};
use crate::lifecycle::deprovision;
use crate::lifecycle::stored::{Credentials, limits_of};
use crate::store::{Account, CredentialEvent, ResourceRow, ResourceStatus};

#[utoipa::path(get, path = "/api/v1/resources/{token}", tag = "resources", operation_id = "getResource",
    summary = "One resource (never its URL)",
    responses((status = 200, description = "The resource.", body = Resource)))]
pub async fn get(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
) -> Result<Json<Resource>, ApiError> {
    let row = find(&app, parse_token(&token)?).await?;
    if row.status == ResourceStatus::Deleted {
        return Err(ended(&row));
    }
    Ok(Json(Resource {
        ok: Some(True),
        ..describe(&row)
    }))
}

/// `GET /api/v1/resources`: the signed-in team's resources (never their URLs).
#[utoipa::path(get, path = "/api/v1/resources", tag = "resources", operation_id = "listResources",
    summary = "The signed-in team's resources",
    security(("bearer" = [])),
    responses((status = 200, description = "The resources.", body = ResourceList)))]
pub async fn list(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<ResourceList>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let rows = app
        .store
        .team_resources(account.team_id)
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<Resource> = rows.iter().map(describe).collect();
    Ok(Json(ResourceList {
        ok: True,
        total: items.len(),
        items,
    }))
}

/// `GET /api/v1/resources/{token}/credentials`: the URLs, for the owning team only.
#[utoipa::path(get, path = "/api/v1/resources/{token}/credentials", tag = "resources",
    operation_id = "getCredentials",
    summary = "A claimed resource's connection URL",
    security(("bearer" = [])),
    responses((status = 200, description = "The credentials.", body = ResourceCredentials)))]
pub async fn credentials(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Json<ResourceCredentials>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let row = owned_by(&app, &account, &token).await?;
    Ok(Json(reveal(&app, &account, &row, Via::Api).await?))
}

/// `POST /api/v1/resources/{token}/rotate-credentials`: new credentials from the provider;
/// the old ones stop working where the backend allows it (Postgres: the old password).
#[utoipa::path(post, path = "/api/v1/resources/{token}/rotate-credentials", tag = "resources",
    operation_id = "rotateCredentials",
    summary = "Replace a claimed resource's password",
    security(("bearer" = [])),
    responses((status = 200, description = "The new credentials.", body = ResourceCredentials)))]
pub async fn rotate_credentials(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Json<ResourceCredentials>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let row = owned_by(&app, &account, &token).await?;
    Ok(Json(rotate(&app, &account, &row, Via::Api).await?))
}

/// The surface a credential reveal or rotation came through, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via {
    Api,
    Dashboard,
}

/// The resource's credentials, recorded in the audit trail before they are shown.
pub(super) async fn reveal(
    app: &App,
    account: &Account,
    row: &ResourceRow,
    via: Via,
) -> Result<ResourceCredentials, ApiError> {
    let credentials = Credentials::open(app, row).map_err(ApiError::internal)?;
    audit(app, account, row, "reveal", via).await?;
    Ok(credentials_body(row, credentials))
}

/// New credentials from the provider. The attempt is recorded before the provider is asked,
/// so the trail also shows rotations that failed.
pub(super) async fn rotate(
    app: &App,
    account: &Account,
    row: &ResourceRow,
    via: Via,
) -> Result<ResourceCredentials, ApiError> {
    // A suspended resource rotates too (leaked credentials must be replaceable at any time);
    // providers keep the suspension through the rotation.
    let rotatable = app.kinds.kind(&row.kind).is_some_and(|k| k.rotatable);
    if !row.status.is_live() || !rotatable {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rotation_not_possible",
            format!(
                "A {} resource in status `{}` has no credentials to rotate.",
                row.kind, row.status
            ),
        )
        .action("Rotate a live (active or suspended) database, cache, document store or queue."));
    }
    audit(app, account, row, "rotate", via).await?;
    let request_id = super::request_id::current();
    let credentials = crate::lifecycle::provision::rotate(app, row, &request_id)
        .await
        .map_err(|e| super::lifecycle_error::lifecycle_error(&app.public_url, e))?;
    Ok(ResourceCredentials {
        rotated: Some(true),
        ..credentials_body(row, credentials)
    })
}

async fn audit(
    app: &App,
    account: &Account,
    row: &ResourceRow,
    action: &str,
    via: Via,
) -> Result<(), ApiError> {
    let event = CredentialEvent {
        resource_token: row.token,
        team_id: account.team_id,
        actor: account.email.clone(),
        action: action.to_string(),
        via: match via {
            Via::Api => "api",
            Via::Dashboard => "dashboard",
        }
        .to_string(),
        request_id: super::request_id::current(),
        at: app.clock.now(),
    };
    app.store
        .record_credential_event(&event)
        .await
        .map_err(ApiError::internal)
}

/// The team's live resource behind `token`; another team's is answered exactly like a
/// missing one.
pub(super) async fn owned_by(
    app: &App,
    account: &Account,
    token: &str,
) -> Result<ResourceRow, ApiError> {
    let row = find(app, parse_token(token)?).await?;
    if row.team_id != Some(account.team_id) {
        return Err(not_found());
    }
    if row.status == ResourceStatus::Deleted {
        return Err(ended(&row));
    }
    Ok(row)
}

fn credentials_body(row: &ResourceRow, credentials: Credentials) -> ResourceCredentials {
    ResourceCredentials {
        ok: True,
        token: row.token,
        kind: row.kind.clone(),
        connection_url: credentials.connection_url,
        internal_url: credentials.internal_url,
        fields: credentials.fields.into_iter().collect(),
        rotated: None,
    }
}

/// The resource behind `token` (of `kind`, when given), unless it never came to exist.
pub(super) async fn find(app: &App, token: Uuid) -> Result<ResourceRow, ApiError> {
    app.store
        .find_by_token(token)
        .await
        .map_err(ApiError::internal)?
        .filter(|row| row.status != ResourceStatus::Failed)
        .ok_or_else(not_found)
}

#[utoipa::path(delete, path = "/api/v1/resources/{token}", tag = "resources",
    operation_id = "deleteResource",
    summary = "Delete a resource and its data",
    responses((status = 200, description = "Deleted.", body = ResourceDeleted)))]
pub async fn delete(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
) -> Result<Json<ResourceDeleted>, ApiError> {
    let row = delete_now(&app, parse_token(&token)?).await?;
    Ok(Json(ResourceDeleted {
        ok: True,
        id: row.id,
        token: row.token,
        status: "deleted".into(),
    }))
}

/// Deletes the resource behind `token` now: marks it, then removes its backend objects.
pub(super) async fn delete_now(app: &App, token: Uuid) -> Result<ResourceRow, ApiError> {
    deprovision::delete_now(app, token, &super::request_id::current())
        .await
        .map_err(|e| lifecycle_error(&app.public_url, e))
}

/// A resource as its holder sees it, without `ok` (list items leave it out).
pub(super) fn describe(row: &ResourceRow) -> Resource {
    let limits: std::collections::BTreeMap<String, u64> = limits_of(row).into_iter().collect();
    let storage_limit_bytes = ["storage_mb", "memory_mb"]
        .iter()
        .find_map(|k| limits.get(*k))
        .map(|mb| mb * 1024 * 1024);
    let storage_bytes = row
        .usage
        .as_ref()
        .and_then(|u| u.get("storage_bytes")?.as_u64());
    Resource {
        ok: None,
        id: row.id,
        token: row.token,
        name: row.name.clone(),
        kind: row.kind.clone(),
        env: row.env.clone(),
        tier: row.tier.clone(),
        status: row.status,
        limits,
        usage: row.usage.clone(),
        storage_bytes,
        storage_limit_bytes,
        storage_exceeded: row.status == ResourceStatus::Suspended,
        suspended_at: row.suspended_at,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

pub(super) fn parse_token(token: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(token).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "The resource token must be a UUID.",
        )
        .action("Use the `token` field from the provisioning response.")
    })
}

pub(super) fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "resource_not_found",
        "No resource has this token.",
    )
    .action("Check the token from the provisioning response; if it is right, the resource never finished being created - provision a new one.")
}

pub(super) fn ended(row: &ResourceRow) -> ApiError {
    let (code, message) = match row.end_reason.as_deref() {
        Some("expired") => (
            "resource_expired",
            "This resource reached the end of its lifetime and was removed.",
        ),
        _ => ("resource_deleted", "This resource was deleted."),
    };
    ApiError::new(StatusCode::GONE, code, message)
        .action("Tell the user this resource no longer exists and its data is gone; provision a new one if they still need it.")
        // As serde writes a timestamp everywhere else.
        .with(
            "ended_at",
            row.ended_at
                .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        )
}
