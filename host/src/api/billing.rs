//! `POST /billing/webhook`: a payment system tells the host a team's subscription changed.
//!
//! The body is JSON `{"event": "subscription.activated", "team": "<team id or email>",
//! "tier": "hobby"}` or `{"event": "subscription.cancelled", "team": "..."}` (back to
//! `free`), signed with HMAC-SHA256 over the raw body under `billing.webhook_secret`,
//! sent as `X-Instanode-Signature: sha256=<hex>`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::error::ApiError;
use super::json::RawBody;
use crate::app::SharedApp;
use crate::lifecycle::tiers;
use crate::tenancy::plans;

pub async fn webhook(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>, ApiError> {
    let secret = app.billing_secret.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "billing_not_configured",
            "This server takes no billing events.",
        )
        .action("Tell the operator to set billing_secret if payment events should reach this host.")
    })?;
    let signature = headers
        .get("x-instanode-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok());
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(ApiError::internal)?;
    mac.update(&body);
    if signature.is_none_or(|s| mac.verify_slice(&s).is_err()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
            "The billing event's signature does not match.",
        ));
    }
    let event: Value = serde_json::from_slice(&body).map_err(ApiError::invalid_body)?;
    let invalid = |what: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_event",
            format!("The event needs {what}."),
        )
    };
    let team = event["team"].as_str().ok_or_else(|| invalid("`team`"))?;
    let tier = match event["event"].as_str() {
        Some("subscription.activated") => {
            event["tier"].as_str().ok_or_else(|| invalid("`tier`"))?
        }
        Some("subscription.cancelled") => plans::FREE,
        _ => {
            return Err(invalid(
                "`event`: subscription.activated or subscription.cancelled",
            ));
        }
    };
    if app.plans.tier(tier).is_none() {
        return Err(invalid("a `tier` of the plans"));
    }
    let (team_id, _) = app
        .store
        .find_team(team)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "team_not_found",
                "No team has this id or member email.",
            )
        })?;
    let change = tiers::set_team_tier(&app, team_id, tier)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "ok": true,
        "team_id": team_id,
        "tier": tier,
        "resources": change.resources,
        "failed": change.failed,
    })))
}
