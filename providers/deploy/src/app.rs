//! What both deploy providers (single engine and Swarm) say of an app: its kind, its
//! names, and what provisioning it records. They share this file.

use instanode_provider_kit::resource_hex;
use instanode_provider_kit::types::{
    Creation, KindInfo, ProviderError, ProvisionRequest, Provisioned,
};

/// The kind every app is.
pub fn kind_info() -> KindInfo {
    KindInfo {
        name: "deploy".into(),
        label: "deploy".into(),
        creation: Creation::BuildContext,
        rotatable: false,
        internal: true,
        env_var: "DEPLOY_URL".into(),
        request_fields: vec![],
    }
}

/// Images, containers and services of one app start with this.
pub fn prefix(app_id: &str) -> Result<String, ProviderError> {
    Ok(format!("app-{}", resource_hex(app_id)?))
}

/// Nothing runs yet: the host starts the first rollout right after. The URL is the host's
/// (it routes it), handed in as the `url` option; a stack's network comes in as `network`
/// and is kept in the state so `deprovision` can remove it.
pub fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
    prefix(&request.resource_id)?;
    let url = request
        .option("url")
        .ok_or_else(|| ProviderError::InvalidRequest("the `url` option is required".into()))?;
    Ok(Provisioned {
        connection_url: url.into(),
        internal_url: None,
        fields: vec![],
        state: request.option("network").unwrap_or_default().into(),
    })
}

/// `app-<hex>-<generation>` → generation.
pub fn generation_of(name: &str) -> u32 {
    name.rsplit('-')
        .next()
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}
