//! `GET /api/v1/capabilities`: the tiers, their limits and caps, for agents to plan with.

use axum::Json;
use axum::extract::State;

use super::schema::{Capabilities, TierInfo, True};
use crate::app::{App, SharedApp};

#[utoipa::path(get, path = "/api/v1/capabilities", tag = "resources", operation_id = "getCapabilities",
    summary = "Tiers, limits and the kinds served",
    responses((status = 200, description = "Capabilities.", body = Capabilities)))]
pub async fn capabilities(State(app): State<SharedApp>) -> Json<Capabilities> {
    let app_kind = app.kinds.app_kind();
    let tiers = app
        .plans
        .by_rank()
        .into_iter()
        .map(|(name, tier)| TierInfo {
            tier: name.to_string(),
            display_name: tier.display_name.clone(),
            rank: tier.rank,
            price_usd_monthly: tier.price_usd_monthly,
            provisions_per_day: tier.provisions_per_day,
            ttl_hours: tier.ttl_hours,
            resource_count_limit: tier.resource_count_limit.clone(),
            limits: tier.limits.clone(),
            deployments_apps: app_kind
                .as_ref()
                .and_then(|kind| {
                    tier.limits_for(&kind.name)
                        .into_iter()
                        .find_map(|(k, v)| (k == "apps").then_some(v))
                })
                .unwrap_or(0),
            stack_ttl_hours: tier.stack_ttl_hours,
            private_deploys: tier.private_deploys,
            vault_max_entries: tier.vault_max_entries,
            vault_envs: tier.vault_envs.clone(),
        })
        .collect();
    Json(Capabilities {
        ok: True,
        kinds: served_kinds(&app),
        tiers,
        unlimited: -1,
    })
}

/// Every kind this host provisions now, sorted.
pub fn served_kinds(app: &App) -> Vec<String> {
    app.kinds.kinds().into_iter().map(|k| k.name).collect()
}
