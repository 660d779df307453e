//! Reading back what the provision saga stored: sealed credentials and the provider's
//! handle on a resource.

use serde::{Deserialize, Serialize};

use crate::contract::types::ResourceRef;
use crate::services::Services;
use crate::store::ResourceRow;

/// What is sealed into `resources.sealed_credentials`.
#[derive(Serialize, Deserialize, Default)]
pub struct Credentials {
    pub connection_url: String,
    pub internal_url: Option<String>,
    /// The provider's private state (`provisioned.state`).
    pub state: String,
    /// The provider's extra response fields.
    #[serde(default)]
    pub fields: Vec<(String, String)>,
}

impl Credentials {
    pub fn seal(&self, services: &Services, row_id: uuid::Uuid) -> anyhow::Result<Vec<u8>> {
        services
            .sealer
            .seal(&serde_json::to_vec(self)?, row_id.as_bytes())
    }

    /// Opens a row's credentials; a row without any (never activated) has empty ones.
    pub fn open(services: &Services, row: &ResourceRow) -> anyhow::Result<Self> {
        match &row.sealed_credentials {
            None => Ok(Self::default()),
            Some(sealed) => Ok(serde_json::from_slice(
                &services.sealer.open(sealed, row.id.as_bytes())?,
            )?),
        }
    }
}

/// The provider's id for a row.
pub fn resource_id(id: uuid::Uuid) -> String {
    id.simple().to_string()
}

/// The handle a provider acts on for a stored row.
pub fn resource_ref(row: &ResourceRow, state: String) -> ResourceRef {
    ResourceRef {
        resource_id: resource_id(row.id),
        kind: row.kind.clone(),
        tier: row.tier.clone(),
        limits: limits_of(row),
        state,
    }
}

/// The limits stored with a row, as the provider receives them.
pub fn limits_of(row: &ResourceRow) -> Vec<(String, u64)> {
    row.limits
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
        .collect()
}
