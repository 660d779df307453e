//! Creating a stack: its record and one app per service, all or nothing.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::lifecycle::deprovision;
use crate::lifecycle::error::LifecycleError;
use crate::services::Services;
use crate::store::{AppSource, StackRow};
use crate::tenancy::names::{EnvName, ResourceName};
use std::sync::Arc;

use super::apps::{CreatedApp, Deployer, NewApp, create_app};
use super::manifest::Manifest;

/// A checked stack to create.
pub struct NewStack<'a> {
    pub deployer: &'a Deployer,
    pub name: ResourceName,
    pub env: EnvName,
    pub manifest: &'a Manifest,
    pub manifest_text: String,
    /// Each service's build context, as Docker takes it.
    pub contexts: &'a BTreeMap<String, Vec<u8>>,
    /// Each service's env vars from its `needs`.
    pub injected: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// The SHA-256 of the token that reads and deletes an anonymous stack.
    pub secret_hash: Option<Vec<u8>>,
}

/// A stack whose services' first rollouts have started.
pub struct CreatedStack {
    pub row: StackRow,
    /// Each service's app, in manifest order.
    pub services: Vec<(String, CreatedApp)>,
}

/// Records the stack and creates every service's app on one private network. When one
/// service fails, the apps made so far and the stack record are removed.
pub async fn create_stack(
    services: &Arc<Services>,
    new: NewStack<'_>,
    request_id: &str,
) -> Result<CreatedStack, LifecycleError> {
    let now = services.clock.now();
    // Anonymous stacks are live compute: the plans give them a shorter life than data.
    let ttl = services
        .plans
        .tier(&new.deployer.tier)
        .and_then(|tier| tier.stack_ttl());
    let row = StackRow {
        secret_hash: new.secret_hash,
        made_with: new.deployer.proof,
        id: Uuid::new_v4(),
        slug: format!("stk-{}", super::new_app_id()),
        fingerprint: new.deployer.fingerprint.clone(),
        name: new.name.as_str().to_string(),
        manifest: new.manifest_text,
        created_at: now,
        expires_at: ttl.map(|ttl| now + ttl),
    };
    services.store.insert_stack(&row).await?;

    let mut created: Vec<(String, CreatedApp)> = Vec::new();
    for (service, spec) in &new.manifest.services {
        // The manifest's own env wins over injected resource URLs.
        let mut env_vars = new.injected.get(service).cloned().unwrap_or_default();
        env_vars.extend(new.manifest.resolved_env(service));
        let result = create_app(
            services,
            NewApp {
                deployer: new.deployer,
                name: new.name.clone(),
                env: new.env.clone(),
                port: spec.port,
                env_vars: &env_vars,
                source: AppSource::Context(&new.contexts[service]),
                stack: Some((row.id, service, spec.expose)),
                network: Some(&row.slug),
                ttl,
                allowed_ips: None,
            },
            request_id.to_string(),
        )
        .await;
        match result {
            Ok(app) => created.push((service.clone(), app)),
            Err(e) => {
                undo_stack(services, row.id, &created, request_id).await;
                return Err(e);
            }
        }
    }
    Ok(CreatedStack {
        row,
        services: created,
    })
}

/// Removes what a half-created stack made.
async fn undo_stack(
    services: &Services,
    stack_id: Uuid,
    created: &[(String, CreatedApp)],
    request_id: &str,
) {
    let tokens: Vec<Uuid> = created.iter().map(|(_, c)| c.token).collect();
    delete_apps(services, &tokens, request_id).await;
    if let Err(e) = services.store.delete_stack(stack_id).await {
        tracing::error!(stack.id = %stack_id, error = %e, "cannot remove a failed stack");
    }
}

/// Deletes a stack's apps. Already gone is fine; a delete that does not finish is left to
/// the reaper, which retries it.
pub async fn delete_apps(services: &Services, tokens: &[Uuid], request_id: &str) {
    for &token in tokens {
        match deprovision::delete_now(services, token, request_id).await {
            Ok(_) | Err(LifecycleError::Ended(_) | LifecycleError::NotFound) => {}
            Err(e) => {
                tracing::warn!(resource.token = %token, error = %e, "stack service delete did not finish");
            }
        }
    }
}
