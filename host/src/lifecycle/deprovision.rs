//! The deprovision saga, shared by an owner's delete and the reaper: the row is already
//! `deleting` (so nothing else hands it out); remove the backend objects, then mark the row
//! ended. A failure leaves the row `deleting`, and the reaper retries it later.

use uuid::Uuid;

use crate::kinds::is_app;
use crate::services::Services;
use crate::store::{DeleteStart, ResourceRow};

use super::error::LifecycleError;
use super::stored::{Credentials, resource_ref};

/// An owner's delete: marks the resource `deleting`, then removes its backend objects.
/// A delete that fails half-way is finished by the reaper.
pub async fn delete_now(
    services: &Services,
    token: Uuid,
    request_id: &str,
) -> Result<ResourceRow, LifecycleError> {
    let row = match services
        .store
        .begin_delete(token, services.clock.now())
        .await?
    {
        DeleteStart::Started(row) => row,
        DeleteStart::Ended(row) => return Err(LifecycleError::Ended(Box::new(row))),
        DeleteStart::NotFound => return Err(LifecycleError::NotFound),
        DeleteStart::Pending => return Err(LifecycleError::NotReady),
    };
    deprovision(services, &row, request_id)
        .await
        .map_err(LifecycleError::Unfinished)?;
    Ok(row)
}

pub async fn deprovision(
    services: &Services,
    row: &ResourceRow,
    request_id: &str,
) -> Result<(), String> {
    let service = services
        .kinds
        .for_resource(&row.provider, &row.kind)
        .ok_or_else(|| format!("no provider serves kind `{}` any more", row.kind))?;
    let state = Credentials::open(services, row)
        .map_err(|e| format!("cannot open the stored credentials: {e}"))?
        .state;
    match service
        .deprovision(request_id, &resource_ref(row, state))
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("provider refused: {e:?}")),
        Err(e) => return Err(e.to_string()),
    }
    if service
        .kinds()
        .iter()
        .any(|k| k.name == row.kind && is_app(k))
    {
        services
            .store
            .stop_deployment(row.id, services.clock.now())
            .await
            .map_err(|e| format!("cannot record the stopped app: {e}"))?;
        services.route_changed().await;
    }
    services
        .store
        .finish_delete(row.id, services.clock.now())
        .await
        .map_err(|e| format!("cannot record the delete: {e}"))?;
    tracing::info!(request_id, resource.id = %row.id, kind = %row.kind, "resource deprovisioned");
    Ok(())
}
