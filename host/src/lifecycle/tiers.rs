//! Moving a team to another tier: its resources take the tier's limits and lifetime, and
//! each provider applies the new limits to the backend (through `resume`, which re-applies
//! a resource's limits).

use uuid::Uuid;

use crate::contract::types::ProviderError;
use crate::services::Services;
use crate::store::ResourceStatus;

use super::stored::{Credentials, resource_ref};

/// What a tier change did.
#[derive(Debug, Default)]
pub struct TierChange {
    pub resources: usize,
    /// Resources whose backend did not take the new limits (they keep the old ones
    /// until the next change; the rows already carry the new tier).
    pub failed: Vec<Uuid>,
}

/// Moves `team_id` and its live resources to `tier`.
pub async fn set_team_tier(
    services: &Services,
    team_id: Uuid,
    tier_name: &str,
) -> anyhow::Result<TierChange> {
    let tier = services
        .plans
        .tier(tier_name)
        .ok_or_else(|| anyhow::anyhow!("`{tier_name}` is not a tier of the plans"))?;
    services.store.set_team_tier(team_id, tier_name).await?;
    let now = services.clock.now();
    let mut change = TierChange::default();
    for row in services.store.team_resources(team_id).await? {
        if row.status == ResourceStatus::Deleting {
            continue;
        }
        let limits = tier.limits_for(&row.kind);
        let limits_json: serde_json::Value = limits
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(*v)))
            .collect::<serde_json::Map<_, _>>()
            .into();
        // Paid tiers keep resources; a tier with a lifetime counts it from creation.
        let expires_at = Some(tier.ttl().map(|ttl| row.created_at + ttl));
        services
            .store
            .set_resource_tier(row.id, tier_name, &limits_json, expires_at, now)
            .await?;
        change.resources += 1;
        let Some(provider) = services.kinds.for_resource(&row.provider, &row.kind) else {
            continue;
        };
        let state = Credentials::open(services, &row)?.state;
        let mut target = resource_ref(&row, state);
        target.tier = tier_name.to_string();
        target.limits = limits;
        let request_id = format!("tier-{}", Uuid::new_v4().simple());
        match provider.resume(&request_id, &target).await {
            Ok(Ok(())) | Ok(Err(ProviderError::Conflict(_))) => {}
            Ok(Err(e)) => {
                tracing::warn!(resource.id = %row.id, error = ?e, "new limits not applied");
                change.failed.push(row.id);
            }
            Err(e) => {
                tracing::warn!(resource.id = %row.id, error = %e, "new limits not applied");
                change.failed.push(row.id);
            }
        }
    }
    tracing::info!(team.id = %team_id, tier = tier_name, resources = change.resources, "team tier changed");
    Ok(change)
}
