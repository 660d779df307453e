//! Two-step deletes: a paid team's app or stack is deleted only once a person of the team
//! confirms it through an emailed link (15 minutes), or at once by an API key made to skip
//! the confirmation (`X-Skip-Email-Confirmation: yes`). Anonymous and free apps and stacks
//! are deleted at once. Until confirmed, the app keeps running and keeps its slot.

use axum::Json;
use axum::extract::{Path, State};

use super::query::Query;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use uuid::Uuid;

use super::error::ApiError;
use super::resources::{delete_now, parse_token};
use super::schema::{DeletionPending, DeletionSettled, True};
use crate::app::{App, SharedApp};
use crate::store::PendingDeletion;

/// How long a confirmation link works.
const CONFIRM_MINUTES: i64 = 15;

/// An app or stack someone asked to delete.
pub(super) struct Deletable {
    /// The app's resource token or the stack's id.
    pub target: Uuid,
    /// `deployment` or `stack`.
    pub kind: &'static str,
    /// The app's id or the stack's slug.
    pub handle: String,
    pub name: String,
    pub team_id: Option<Uuid>,
    pub tier: String,
}

/// `None`: delete now. `Some`: the delete waits for the emailed confirmation (the answer
/// to give, 202).
pub(super) async fn hold_for_confirmation(
    app: &App,
    headers: &HeaderMap,
    deletable: Deletable,
) -> Result<Option<DeletionPending>, ApiError> {
    let Some(team_id) = deletable.team_id else {
        return Ok(None);
    };
    if !app.plans.is_paid(&deletable.tier) {
        return Ok(None);
    }
    if asks_to_skip(headers) {
        let allowed = match super::auth::bearer_token(headers) {
            Some(key) => app
                .store
                .key_skips_delete_confirmation(&super::auth::hash(key))
                .await
                .map_err(ApiError::internal)?,
            None => None,
        };
        if allowed == Some(team_id) {
            return Ok(None);
        }
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "skip_confirmation_not_allowed",
            "Only the team's API key made with skip_delete_confirmation may skip the emailed confirmation.",
        )
        .action("Drop X-Skip-Email-Confirmation and let the user confirm by email, or send an API key created with {\"skip_delete_confirmation\": true} as the bearer (only with the user's consent)."));
    }
    let Some(mailer) = app.mailer.as_ref() else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deletion_email_disabled",
            "This server sends no email, so a paid team's delete cannot be confirmed by a link.",
        )
        .action("Delete with an API key created with {\"skip_delete_confirmation\": true} and X-Skip-Email-Confirmation: yes, with the user's consent."));
    };
    let now = app.clock.now();
    let secret = format!("del_{}", super::auth::new_secret());
    let pending = PendingDeletion {
        target: deletable.target,
        kind: deletable.kind.into(),
        label: format!(
            "{} `{}` ({})",
            deletable.kind, deletable.name, deletable.handle
        ),
        handle: deletable.handle.clone(),
        team_id,
        expires_at: now + chrono::Duration::minutes(CONFIRM_MINUTES),
    };
    let started = app
        .store
        .begin_deletion(&pending, &super::auth::hash(&secret), now)
        .await
        .map_err(ApiError::internal)?;
    if !started {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "deletion_already_pending",
            "A delete of this is already waiting for its emailed confirmation.",
        )
        .action("Ask the user to open the confirmation email we sent; it works for 15 minutes, after which a new DELETE sends another."));
    }
    let link = format!("{}/confirm-deletion?t={secret}", app.public_url);
    let body = format!(
        "Someone asked to delete the {label}.\n\nTo delete it, open this link and confirm:\n\n{link}\n\nThe link works for {CONFIRM_MINUTES} minutes. If you did not ask for this, ignore this message: nothing is deleted.\n",
        label = pending.label
    );
    let recipients = app
        .store
        .team_emails(team_id)
        .await
        .map_err(ApiError::internal)?;
    for to in &recipients {
        if let Err(e) = mailer
            .send(to, "Confirm a delete on instanode", body.clone())
            .await
        {
            tracing::warn!(error = %e, "sending a delete confirmation failed");
            let _ = app.store.cancel_deletion(deletable.target, now).await;
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "email_send_failed",
                "The confirmation email could not be sent; nothing was deleted.",
            )
            .action("Retry the DELETE in a minute.")
            .retry_after(60));
        }
    }
    let path = format!("/api/v1/{}s/{}", deletable.kind, deletable.handle);
    Ok(Some(DeletionPending {
        ok: True,
        id: deletable.handle,
        resource_type: deletable.kind.into(),
        deletion_status: "pending_confirmation".into(),
        confirmation_expires_at: pending.expires_at,
        note: format!(
            "Nothing is deleted yet: it keeps running until a person of the team confirms through the emailed link. DELETE {path}/confirm-deletion withdraws the request."
        ),
        agent_action: format!(
            "Tell the user: we emailed the team a link to confirm deleting the {}; it works for {CONFIRM_MINUTES} minutes, and nothing is deleted until they confirm.",
            pending.label
        ),
    }))
}

/// `X-Skip-Email-Confirmation: yes`.
fn asks_to_skip(headers: &HeaderMap) -> bool {
    headers
        .get("x-skip-email-confirmation")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| ["yes", "true", "1"].contains(&v.trim().to_ascii_lowercase().as_str()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfirmQuery {
    /// The `del_...` token from the emailed link.
    pub token: Option<String>,
}

/// `POST /api/v1/deployments/{id}/confirm-deletion?token=`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/confirm-deletion", tag = "deploys",
    operation_id = "confirmDeploymentDeletion",
    summary = "Confirm a pending delete with the emailed token",
    params(ConfirmQuery),
    responses((status = 200, description = "Deleted.", body = DeletionSettled)))]
pub async fn confirm_deployment(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    Query(query): Query<ConfirmQuery>,
) -> Result<Json<DeletionSettled>, ApiError> {
    let secret = token_param(query)?;
    let row = super::deploy::find_row(&app, parse_token(&id)?).await?;
    take(&app, row.token, &secret).await?;
    delete_now(&app, row.token).await?;
    Ok(settled(row.token.to_string(), "deployment", "confirmed"))
}

/// `DELETE /api/v1/deployments/{id}/confirm-deletion`: withdraws a pending delete.
#[utoipa::path(delete, path = "/api/v1/deployments/{id}/confirm-deletion", tag = "deploys",
    operation_id = "cancelDeploymentDeletion",
    summary = "Withdraw a pending delete",
    responses((status = 200, description = "Withdrawn: the app keeps running.", body = DeletionSettled)))]
pub async fn cancel_deployment(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Json<DeletionSettled>, ApiError> {
    let row = super::deploy::find_row(&app, parse_token(&id)?).await?;
    withdraw(&app, row.token).await?;
    Ok(settled(row.token.to_string(), "deployment", "cancelled"))
}

/// `POST /api/v1/stacks/{slug}/confirm-deletion?token=`.
#[utoipa::path(post, path = "/api/v1/stacks/{slug}/confirm-deletion", tag = "stacks",
    operation_id = "confirmStackDeletion",
    summary = "Confirm a pending stack delete with the emailed token",
    params(ConfirmQuery),
    responses((status = 200, description = "Deleted.", body = DeletionSettled)))]
pub async fn confirm_stack(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    Query(query): Query<ConfirmQuery>,
) -> Result<Json<DeletionSettled>, ApiError> {
    let secret = token_param(query)?;
    let stack = app
        .store
        .stack_by_slug(&slug)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(token_invalid)?;
    take(&app, stack.id, &secret).await?;
    let services = app
        .store
        .stack_services(stack.id)
        .await
        .map_err(ApiError::internal)?;
    let tokens: Vec<Uuid> = services.iter().map(|row| row.token).collect();
    crate::deploy::stacks::delete_apps(&app, &tokens, &super::request_id::current()).await;
    Ok(settled(stack.slug, "stack", "confirmed"))
}

/// `DELETE /api/v1/stacks/{slug}/confirm-deletion`.
#[utoipa::path(delete, path = "/api/v1/stacks/{slug}/confirm-deletion", tag = "stacks",
    operation_id = "cancelStackDeletion",
    summary = "Withdraw a pending stack delete",
    security(("bearer" = [])),
    responses((status = 200, description = "Withdrawn: the stack keeps running.", body = DeletionSettled)))]
pub async fn cancel_stack(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DeletionSettled>, ApiError> {
    let (stack, _) = super::stacks::find(&app, &slug, &headers).await?;
    withdraw(&app, stack.id).await?;
    Ok(settled(stack.slug, "stack", "cancelled"))
}

fn token_param(query: ConfirmQuery) -> Result<String, ApiError> {
    query.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_token",
            "`token` (the del_ token from the emailed link) is required.",
        )
        .action("Open the emailed link, or pass its token as ?token=del_...")
    })
}

/// Ends the pending delete of `target` with `secret`, or says why not.
async fn take(app: &App, target: Uuid, secret: &str) -> Result<(), ApiError> {
    let confirmed = app
        .store
        .confirm_deletion(target, &super::auth::hash(secret), app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    if confirmed {
        Ok(())
    } else {
        Err(token_invalid())
    }
}

async fn withdraw(app: &App, target: Uuid) -> Result<(), ApiError> {
    let cancelled = app
        .store
        .cancel_deletion(target, app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    if cancelled {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "no_pending_deletion",
        "No delete of this is waiting for confirmation.",
    )
    .action("Nothing to withdraw: it keeps running."))
}

fn token_invalid() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "deletion_token_invalid",
        "This confirmation token is not valid: it expired, was used, or was withdrawn.",
    )
    .action("Send the DELETE again for a new confirmation email.")
}

fn settled(id: String, kind: &str, status: &str) -> Json<DeletionSettled> {
    let note = match status {
        "confirmed" => format!("The {kind} was deleted."),
        _ => format!("The delete was withdrawn; the {kind} keeps running."),
    };
    Json(DeletionSettled {
        ok: True,
        id,
        resource_type: kind.into(),
        deletion_status: status.into(),
        note,
    })
}
