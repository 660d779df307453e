//! `POST /billing/webhook`: a payment system tells the host a team's subscription changed.
//!
//! The body is JSON `{"id": "<unique event id>", "created": <unix seconds>, "event":
//! "subscription.activated", "team": "<team id or email>", "tier": "hobby"}` or the same
//! with `"event": "subscription.cancelled"` (back to `free`), signed with HMAC-SHA256 over
//! the raw body under `billing.webhook_secret`, sent as `X-Instanode-Signature:
//! sha256=<hex>`. A signed event is good for [`EVENT_TOLERANCE_SECS`] after `created`,
//! applies once per `id`, and never undoes a newer event of its team: a captured event
//! cannot be replayed later to change a team's tier.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::error::ApiError;
use super::json::RawBody;
use super::schema::{BillingApplied, BillingEvent, BillingOutcome, BillingSkipped, True};
use crate::app::SharedApp;
use crate::lifecycle::tiers;
use crate::store::BillingEventFate;
use crate::tenancy::plans;

/// How far an event's `created` may be from this host's clock.
const EVENT_TOLERANCE_SECS: i64 = 300;

/// The body is checked against its signature as bytes, then read field by field (not into
/// [`BillingEvent`]) so that each missing field is named in the refusal.
#[utoipa::path(post, path = "/billing/webhook", tag = "accounts", operation_id = "billingWebhook",
    summary = "Payment events (signed by the billing provider)",
    description = "JSON {id, created (Unix seconds), event: subscription.activated | subscription.cancelled, team, tier}, HMAC-SHA256 signed in X-Instanode-Signature: sha256=<hex>. Events created more than 5 minutes from the host's clock are refused (400 event_expired); an id already applied, or an event older than one applied to the team, answers 200 with applied: false.",
    params(("X-Instanode-Signature" = Option<String>, Header, nullable = false, description = "sha256=<hex HMAC-SHA256 of the body under the billing secret>.")),
    request_body = BillingEvent,
    responses((status = 200, description = "Applied, or already applied.", body = BillingOutcome)))]
pub async fn webhook(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<BillingOutcome>, ApiError> {
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
    let event_id = event["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.len() <= 200)
        .ok_or_else(|| invalid("an `id` (1-200 characters, unique per event)"))?;
    let created = event["created"]
        .as_i64()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| invalid("`created` (when it was made, in Unix seconds)"))?;
    let now = app.clock.now();
    if (now - created).num_seconds().abs() > EVENT_TOLERANCE_SECS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "event_expired",
            format!("The event was created more than {EVENT_TOLERANCE_SECS} seconds from now; it is not applied."),
        )
        .action("Send events as they happen, with `created` set to the current time (and check this host's clock)."));
    }
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
    let fate = app
        .store
        .billing_event_fate(event_id, team_id, created)
        .await
        .map_err(ApiError::internal)?;
    if fate != BillingEventFate::New {
        // Answered as a success, so the sender stops retrying; nothing changes.
        if fate == BillingEventFate::Stale {
            app.store
                .record_billing_event(event_id, team_id, created, now)
                .await
                .map_err(ApiError::internal)?;
        }
        let reason = if fate == BillingEventFate::Duplicate {
            "duplicate"
        } else {
            "superseded"
        };
        return Ok(Json(BillingOutcome::Skipped(BillingSkipped {
            ok: True,
            team_id,
            applied: false,
            reason: reason.into(),
        })));
    }
    let change = tiers::set_team_tier(&app, team_id, tier)
        .await
        .map_err(ApiError::internal)?;
    // After the change: a failed change is retried by the sender under the same id.
    app.store
        .record_billing_event(event_id, team_id, created, now)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(BillingOutcome::Applied(BillingApplied {
        applied: true,
        ok: True,
        team_id,
        tier: tier.to_string(),
        resources: change.resources,
        failed: change.failed,
    })))
}
