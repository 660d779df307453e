//! Creating an app: the deployment record, its resource (the provision saga) and its first
//! rollout, as one step that leaves nothing behind when it fails.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::lifecycle::error::LifecycleError;
use crate::lifecycle::provision::{self, ProvisionInput};
use crate::services::Services;
use crate::store::{AppSource, NewDeployment};
use crate::tenancy::names::{EnvName, ResourceName};
use std::sync::Arc;

use super::rollout::{self, seal_env};

/// Who deploys, and whose quota the app counts against.
pub struct Deployer {
    /// Whose apps count together: a network's fingerprint, or `team:<id>`.
    pub fingerprint: String,
    pub tier: String,
    /// A signed-in caller's team.
    pub team: Option<(Uuid, String)>,
    /// The resource whose upgrade JWT an anonymous caller presented.
    pub proof: Option<Uuid>,
}

/// A new app to record and provision.
pub struct NewApp<'a> {
    pub deployer: &'a Deployer,
    pub name: ResourceName,
    pub env: EnvName,
    pub port: u16,
    pub env_vars: &'a BTreeMap<String, String>,
    /// What its rollouts run: a build context or a prebuilt image.
    pub source: AppSource<'a>,
    /// A stack service: the stack, the service name, whether it gets a URL.
    pub stack: Option<(Uuid, &'a str, bool)>,
    pub network: Option<&'a str>,
    pub ttl: Option<Duration>,
    /// A private app's allowed addresses and networks; `None`: public.
    pub allowed_ips: Option<&'a [String]>,
}

/// A recorded, provisioned app whose first rollout has started.
pub struct CreatedApp {
    pub token: Uuid,
    pub app_id: String,
    pub url: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Records the app and its upload, runs the provision saga, and starts the first rollout.
/// On failure nothing is left: the saga undoes itself and the record is removed.
pub async fn create_app(
    services: &Arc<Services>,
    new: NewApp<'_>,
    request_id: String,
) -> Result<CreatedApp, LifecycleError> {
    let (kind, _) = super::deployer(services).ok_or(LifecycleError::NoDeployer)?;
    let resource_id = Uuid::new_v4();
    let app_id = super::new_app_id();
    let exposed = new.stack.is_none_or(|(_, _, expose)| expose);
    let slug = exposed.then(|| match new.stack {
        Some((_, service, _)) => super::slug_for(service, &app_id),
        None => super::slug_for(new.name.as_str(), &app_id),
    });
    let url = slug.as_deref().map(|s| services.apps.url(s));
    let sealed_env =
        seal_env(services, resource_id, new.env_vars).map_err(LifecycleError::internal)?;
    services
        .store
        .insert_deployment(&NewDeployment {
            resource_id,
            app_id: &app_id,
            slug: slug.as_deref(),
            fingerprint: &new.deployer.fingerprint,
            name: new.name.as_str(),
            port: new.port,
            sealed_env: &sealed_env,
            stack_id: new.stack.map(|(id, _, _)| id),
            service: new.stack.map(|(_, service, _)| service),
            source: new.source,
            allowed_ips: new.allowed_ips,
            now: services.clock.now(),
        })
        .await?;
    let mut options = vec![(
        "url".to_string(),
        url.clone()
            .unwrap_or_else(|| format!("{}/api/v1/deployments/{resource_id}", services.public_url)),
    )];
    if let Some(network) = new.network {
        options.push(("network".into(), network.to_string()));
    }
    let input = ProvisionInput {
        kind,
        name: new.name,
        env: new.env,
        fingerprint: Some(new.deployer.fingerprint.clone()),
        request_id,
        fault: None,
        id: Some(resource_id),
        options,
        ttl: new.ttl,
        team: new.deployer.team.clone(),
        hand_back_existing: false,
        proven_tokens: Vec::new(),
    };
    let output = match provision::provision(services.clone(), input).await {
        Ok(output) => output,
        Err(e) => {
            if let Err(cleanup) = services.store.delete_deployment(resource_id).await {
                tracing::error!(resource.id = %resource_id, error = %cleanup, "cannot remove the record of a failed deploy");
            }
            return Err(e);
        }
    };
    rollout::spawn(services.clone(), resource_id, 1);
    Ok(CreatedApp {
        token: output.token,
        app_id,
        url,
        expires_at: output.expires_at,
    })
}
