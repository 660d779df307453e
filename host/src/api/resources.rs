//! `/api/v1/resources/{token}`: an anonymous owner's view of one resource, and its delete.
//! The token is the credential. The connection URL is never shown here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::ApiError;
use super::lifecycle_error::lifecycle_error;
use crate::app::{App, SharedApp};
use crate::lifecycle::deprovision;
use crate::lifecycle::stored::{Credentials, limits_of};
use crate::store::{Account, CredentialEvent, ResourceRow, ResourceStatus};

pub async fn get(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = find(&app, parse_token(&token)?).await?;
    if row.status == ResourceStatus::Deleted {
        return Err(ended(&row));
    }
    Ok(Json(describe(&row)))
}

/// `GET /api/v1/resources`: the signed-in team's resources (never their URLs).
pub async fn list(
    State(app): State<SharedApp>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let rows = app
        .store
        .team_resources(account.team_id)
        .await
        .map_err(ApiError::internal)?;
    let items: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut item = describe(row);
            if let Some(object) = item.as_object_mut() {
                object.remove("ok");
            }
            item
        })
        .collect();
    Ok(Json(
        json!({ "ok": true, "total": items.len(), "items": items }),
    ))
}

/// `GET /api/v1/resources/{token}/credentials`: the URLs, for the owning team only.
pub async fn credentials(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let row = owned_by(&app, &account, &token).await?;
    Ok(Json(reveal(&app, &account, &row, Via::Api).await?))
}

/// `POST /api/v1/resources/{token}/rotate-credentials`: new credentials from the provider;
/// the old ones stop working where the backend allows it (Postgres: the old password).
pub async fn rotate_credentials(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Value, ApiError> {
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
) -> Result<Value, ApiError> {
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
    let mut body = credentials_body(row, credentials);
    body["rotated"] = json!(true);
    Ok(body)
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

fn credentials_body(row: &ResourceRow, credentials: Credentials) -> Value {
    let fields: serde_json::Map<String, Value> = credentials
        .fields
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({
        "ok": true,
        "token": row.token,
        "kind": row.kind,
        "connection_url": credentials.connection_url,
        "internal_url": credentials.internal_url,
        "fields": fields,
    })
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

pub async fn delete(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = delete_now(&app, parse_token(&token)?).await?;
    Ok(Json(json!({
        "ok": true,
        "id": row.id,
        "token": row.token,
        "status": "deleted",
    })))
}

/// Deletes the resource behind `token` now: marks it, then removes its backend objects.
pub(super) async fn delete_now(app: &App, token: Uuid) -> Result<ResourceRow, ApiError> {
    deprovision::delete_now(app, token, &super::request_id::current())
        .await
        .map_err(|e| lifecycle_error(&app.public_url, e))
}

pub(super) fn describe(row: &ResourceRow) -> Value {
    let limits: serde_json::Map<String, Value> = limits_of(row)
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let storage_limit_bytes = ["storage_mb", "memory_mb"]
        .iter()
        .find_map(|k| limits.get(*k)?.as_u64())
        .map(|mb| mb * 1024 * 1024);
    let storage_bytes = row
        .usage
        .as_ref()
        .and_then(|u| u.get("storage_bytes")?.as_u64());
    json!({
        "ok": true,
        "id": row.id,
        "token": row.token,
        "name": row.name,
        "kind": row.kind,
        "env": row.env,
        "tier": row.tier,
        "status": row.status,
        "limits": limits,
        "usage": row.usage,
        "storage_bytes": storage_bytes,
        "storage_limit_bytes": storage_limit_bytes,
        "storage_exceeded": row.status == ResourceStatus::Suspended,
        "suspended_at": row.suspended_at,
        "created_at": row.created_at,
        "expires_at": row.expires_at,
    })
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
        .with("ended_at", json!(row.ended_at))
}
