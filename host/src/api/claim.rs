//! Claim: anonymous resources become an account's. `GET /claim/preview` shows what would
//! move (kinds, names, lifetimes; never tokens); `POST /claim` mails a single-use link;
//! following it (see `auth`) creates or joins the email's team and moves the resource whose
//! upgrade JWT the claim carried, plus any others it proved (`tokens`): never the rest of
//! the network, which is a quota key and not an identity.

use axum::Json;
use axum::extract::State;

use super::query::Query;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::auth::{parse_email, send_link};
use super::error::ApiError;
use super::json::JsonObject;
use super::schema::{ClaimItem, ClaimPreview, ClaimRequest, ClaimSent, True};
use crate::app::{App, SharedApp};
use crate::store::ResourceRow;
use crate::tenancy::tokens::UpgradeClaims;

#[derive(Deserialize)]
pub struct TokenQuery {
    pub t: Option<String>,
}

fn missing_token() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "missing_token",
        "The upgrade token is missing.",
    )
    .action("Send the `upgrade_jwt` from a provisioning response (as `token`, or `?t=` on the preview).")
}

fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_token",
        "The upgrade token is not valid: altered, expired, or from another server.",
    )
    .action(
        "Use the `upgrade_jwt` exactly as a provisioning response returned it; tokens last 7 days.",
    )
}

/// The upgrade token's claims and the resource it was issued for.
async fn verified(app: &App, token: &str) -> Result<(UpgradeClaims, Uuid), ApiError> {
    let claims = app.tokens.verify(token).map_err(|_| invalid_token())?;
    let resource = Uuid::parse_str(&claims.sub).map_err(|_| invalid_token())?;
    Ok((claims, resource))
}

/// Kinds, names and lifetimes only: a preview is no place for tokens.
fn item(row: &ResourceRow) -> ClaimItem {
    ClaimItem {
        name: row.name.clone(),
        kind: row.kind.clone(),
        tier: row.tier.clone(),
        status: row.status,
        created_at: row.created_at,
        expires_at: row.expires_at,
    }
}

/// `GET /claim/preview?t=<upgrade_jwt>`: what a claim would move. No side effects.
#[utoipa::path(get, path = "/claim/preview", tag = "accounts", operation_id = "previewClaim",
    summary = "What a claim would keep",
    params(("t" = String, Query, description = "The upgrade token.")),
    responses((status = 200, description = "The resource the token would claim: kind, name, status, expiry (never tokens).", body = ClaimPreview)))]
pub async fn preview(
    State(app): State<SharedApp>,
    Query(query): Query<TokenQuery>,
) -> Result<Json<ClaimPreview>, ApiError> {
    let token = query.t.unwrap_or_default();
    Ok(Json(preview_of(&app, &token).await?))
}

/// What a claim with the upgrade token `token` would move (also the claim page's list).
pub(super) async fn preview_of(app: &App, token: &str) -> Result<ClaimPreview, ApiError> {
    if token.is_empty() {
        return Err(missing_token());
    }
    let (claims, resource) = verified(app, token).await?;
    if app
        .store
        .is_claimed(&claims.jti)
        .await
        .map_err(ApiError::internal)?
    {
        return Ok(ClaimPreview {
            ok: True,
            token_valid: false,
            already_claimed: true,
            items: Vec::new(),
            resources: Vec::new(),
            expires_at: None,
        });
    }
    let items: Vec<ClaimItem> = app
        .store
        .claimable(&[resource])
        .await
        .map_err(ApiError::internal)?
        .iter()
        .map(item)
        .collect();
    Ok(ClaimPreview {
        ok: True,
        token_valid: true,
        already_claimed: false,
        resources: items.clone(),
        items,
        expires_at: DateTime::<Utc>::from_timestamp(claims.exp, 0),
    })
}

/// `POST /claim {token, email}` (`jwt` is an older name for `token`; `token` wins).
#[utoipa::path(post, path = "/claim", tag = "accounts", operation_id = "claim",
    summary = "Claim anonymous resources by email",
    request_body = ClaimRequest,
    responses((status = 200, description = "A claim link was sent.", body = ClaimSent)))]
pub async fn claim(
    State(app): State<SharedApp>,
    JsonObject(body): JsonObject,
) -> Result<Json<ClaimSent>, ApiError> {
    let token = ["token", "jwt"]
        .iter()
        .find_map(|k| {
            body.get(*k)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        })
        .ok_or_else(missing_token)?;
    let email = parse_email(body.get("email"))?;
    let (claims, resource) = verified(&app, token).await?;
    // The claim moves what the claimer proves it holds, never the rest of its network.
    let mut proven = vec![resource];
    proven.extend(more_proofs(&app, body.get("tokens"))?);
    if app
        .store
        .claimable(&proven)
        .await
        .map_err(ApiError::internal)?
        .is_empty()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_to_claim",
            "None of these resources is live and unclaimed.",
        )
        .action(
            "Claim with the upgrade_jwt of a resource that still exists and has no account yet.",
        ));
    }
    let now = app.clock.now();
    if !app
        .store
        .mark_claimed(&claims.jti, &email, now)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_claimed",
            "This upgrade token has already been used for a claim.",
        )
        .action("Tell the user to follow the link already emailed to them, or sign in with POST /auth/email/start."));
    }
    if let Err(e) = send_link(&app, &email, "claim", &proven).await {
        // Nothing was sent: the token stays usable for another try.
        if let Err(undo) = app.store.unmark_claimed(&claims.jti).await {
            tracing::error!(error = %undo, "cannot release a claim whose email failed");
        }
        return Err(e);
    }
    Ok(Json(ClaimSent {
        ok: True,
        message: format!("Magic link sent to {email}."),
        agent_action: format!(
            "Tell the user to open the link just emailed to {email} within 15 minutes to claim their resources."
        ),
        email,
    }))
}

/// The further resources a claim proves it holds: `tokens`, a list of upgrade JWTs or
/// resource tokens.
fn more_proofs(app: &App, tokens: Option<&Value>) -> Result<Vec<Uuid>, ApiError> {
    let Some(tokens) = tokens else {
        return Ok(Vec::new());
    };
    let refuse = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "`tokens` must be a list of upgrade JWTs or resource tokens, at most 50.",
        )
        .action("Send the `upgrade_jwt` (or `token`) of each further resource to claim.")
    };
    let list = tokens
        .as_array()
        .filter(|l| l.len() <= 50)
        .ok_or_else(refuse)?;
    list.iter()
        .map(|value| {
            value
                .as_str()
                .and_then(|proof| app.tokens.resource_proven_by(proof))
                .ok_or_else(refuse)
        })
        .collect()
}
