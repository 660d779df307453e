//! Quota enforcement: measures each live resource through its provider's `usage`,
//! suspends it once it is over its tier's size limit, and resumes it once it is back
//! under 90% of it (the gap keeps a resource at the edge from flapping).

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::services::Services;
use crate::store::{ResourceRow, ResourceStatus};

use super::stored::{Credentials, limits_of, resource_ref};

/// Rows claimed per round trip.
const BATCH: i64 = 64;
/// Limits (in MiB) that bound a resource's stored bytes.
const SIZE_LIMITS: [&str; 2] = ["storage_mb", "memory_mb"];

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MeterReport {
    pub measured: u32,
    pub suspended: u32,
    pub resumed: u32,
    pub failed: u32,
}

/// One pass over the resources due for a measurement (`every` resource when `all`).
pub async fn meter_once(services: &Services, all: bool) -> MeterReport {
    let mut report = MeterReport::default();
    let now = services.clock.now();
    let interval =
        Duration::seconds(i64::try_from(services.lifecycle.meter_interval_secs).unwrap_or(60));
    // Rows measured in this pass are stamped `now`, so they are not claimed twice.
    let due_before = if all { now } else { now - interval };
    loop {
        let batch = match services
            .store
            .claim_for_metering(now, due_before, BATCH)
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "meter cannot claim work");
                return report;
            }
        };
        for row in &batch {
            match meter(services, row).await {
                Ok(change) => {
                    report.measured += 1;
                    match change {
                        Some(true) => report.suspended += 1,
                        Some(false) => report.resumed += 1,
                        None => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(resource.id = %row.id, error = %e, "metering failed");
                    report.failed += 1;
                }
            }
        }
        if batch.len() < BATCH as usize {
            if let Err(e) = services.store.compact_usage_samples(now).await {
                tracing::warn!(error = %e, "meter cannot compact usage samples");
            }
            return report;
        }
    }
}

/// Measures one resource and applies the verdict. `Some(true)` when it was suspended,
/// `Some(false)` when it was resumed.
async fn meter(services: &Services, row: &ResourceRow) -> Result<Option<bool>, String> {
    let provider = services
        .kinds
        .for_resource(&row.provider, &row.kind)
        .ok_or_else(|| format!("no provider serves kind `{}`", row.kind))?;
    let state = Credentials::open(services, row)
        .map_err(|e| e.to_string())?
        .state;
    let target = resource_ref(row, state);
    let request_id = format!("meter-{}", uuid::Uuid::new_v4().simple());
    let usage = match provider.usage(&request_id, &target).await {
        // Nothing to measure: the resource bounds itself.
        Ok(Ok(None)) => return Ok(None),
        Ok(Ok(Some(usage))) => usage,
        Ok(Err(e)) => return Err(format!("{e:?}")),
        Err(e) => return Err(e.to_string()),
    };
    let mut report = json!({
        "storage_bytes": usage.storage_bytes,
        "connections": usage.connections,
        "measured_at": services.clock.now(),
    });
    for (name, value) in &usage.extra {
        report[name] = json!(value);
    }
    services
        .store
        .record_measurement(
            row.id,
            &report,
            services.clock.now(),
            usage.storage_bytes,
            Some(usage.connections),
        )
        .await
        .map_err(|e| e.to_string())?;

    let Some(limit_bytes) = size_limit_bytes(row) else {
        return Ok(None);
    };
    let over = usage.storage_bytes > limit_bytes;
    let well_under = usage.storage_bytes < limit_bytes / 10 * 9;
    let suspend = match row.status {
        ResourceStatus::Active if over => true,
        ResourceStatus::Suspended if well_under => false,
        _ => {
            // Nothing to apply: a verdict that failed before no longer matters.
            services
                .store
                .clear_enforcement_failure(row.id)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(None);
        }
    };
    let answer = if suspend {
        provider.suspend(&request_id, &target).await
    } else {
        provider.resume(&request_id, &target).await
    };
    let failure = match answer {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:?}")),
        Err(e) => Some(e.to_string()),
    };
    // A verdict that cannot be applied is retried on every pass and shown to operators
    // (`/readyz`, `GET /admin/quota`) until it is, never left silently growing.
    if let Some(error) = failure {
        let verb = if suspend { "suspend" } else { "resume" };
        let error = format!("{verb} failed: {error}");
        if let Err(e) = services
            .store
            .record_enforcement_failure(row.id, &error, services.clock.now())
            .await
        {
            tracing::warn!(resource.id = %row.id, error = %e, "cannot record the failure");
        }
        return Err(error);
    }
    services
        .store
        .clear_enforcement_failure(row.id)
        .await
        .map_err(|e| e.to_string())?;
    let flipped = services
        .store
        .set_suspended(row.id, suspend, services.clock.now())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(resource.id = %row.id, suspend, storage_bytes = usage.storage_bytes, limit_bytes, "quota state changed");
    Ok(flipped.then_some(suspend))
}

fn size_limit_bytes(row: &ResourceRow) -> Option<u64> {
    let limits = limits_of(row);
    SIZE_LIMITS.iter().find_map(|name| {
        limits
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, mb)| mb.saturating_mul(1024 * 1024))
    })
}
