//! `GET /api/v1/capabilities`: the tiers, their limits and caps, for agents to plan with.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::{App, SharedApp};

pub async fn capabilities(State(app): State<SharedApp>) -> Json<Value> {
    let app_kind = app.kinds.app_kind();
    let tiers: Vec<Value> = app
        .plans
        .by_rank()
        .into_iter()
        .map(|(name, tier)| {
            json!({
                "tier": name,
                "display_name": tier.display_name,
                "rank": tier.rank,
                "price_usd_monthly": tier.price_usd_monthly,
                "provisions_per_day": tier.provisions_per_day,
                "ttl_hours": tier.ttl_hours,
                "resource_count_limit": tier.resource_count_limit,
                "limits": tier.limits,
                "deployments_apps": app_kind
                    .as_ref()
                    .and_then(|kind| {
                        tier.limits_for(&kind.name)
                            .into_iter()
                            .find_map(|(k, v)| (k == "apps").then_some(v))
                    })
                    .unwrap_or(0),
            })
        })
        .collect();
    Json(json!({
        "ok": true,
        "kinds": served_kinds(&app),
        "tiers": tiers,
        "unlimited": -1,
    }))
}

/// Every kind this host provisions now, sorted.
pub fn served_kinds(app: &App) -> Vec<String> {
    app.kinds.kinds().into_iter().map(|k| k.name).collect()
}
