//! The provision saga.
//!
//! Steps: insert a `pending` row → `provider.provision` → seal the credentials → mark the row
//! `active` → respond. Each step that creates something registers its undo *before* it runs
//! (a step that fails half-way may still have created something), and any failure unwinds
//! the registered undos in reverse: the provider's `deprovision` (which succeeds when there
//! is nothing to remove) and marking the row `failed`.

use std::time::Duration;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::api::error::ApiError;
use crate::api::request_id;
use crate::app::{App, SharedApp};
use crate::registry::bindings::types::{ProviderError, ProvisionRequest, Provisioned, ResourceRef};
use crate::registry::{CallError, Loaded};
use crate::store::NewResource;
use crate::tenancy::names::{EnvName, ResourceName};
use crate::tenancy::plans;

/// Steps after which a test can force a failure (see `testing.fault_injection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPoint {
    AfterInsert,
    AfterProvision,
    AfterSeal,
    AfterActivate,
}

impl FaultPoint {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "after_insert" => Some(Self::AfterInsert),
            "after_provision" => Some(Self::AfterProvision),
            "after_seal" => Some(Self::AfterSeal),
            "after_activate" => Some(Self::AfterActivate),
            _ => None,
        }
    }
}

/// A validated request to create one resource.
pub struct ProvisionInput {
    pub kind: String,
    pub name: ResourceName,
    pub env: EnvName,
    pub fingerprint: Option<String>,
    pub request_id: String,
    pub fault: Option<FaultPoint>,
}

/// A created, active resource.
pub struct ProvisionOutput {
    pub id: Uuid,
    pub token: Uuid,
    pub kind: String,
    pub name: ResourceName,
    pub env: EnvName,
    pub tier: &'static str,
    pub limits: Vec<(String, u64)>,
    pub connection_url: String,
    pub internal_url: Option<String>,
    pub fields: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
    pub upgrade_jwt: String,
}

/// What is sealed into `resources.sealed_credentials`.
#[derive(Serialize)]
struct SealedCredentials<'a> {
    connection_url: &'a str,
    internal_url: Option<&'a str>,
    state: &'a str,
}

/// Largest provider state the host stores per resource.
const MAX_STATE: usize = 64 * 1024;
/// Attempts at undoing a provider step before giving up (and logging the orphan).
const UNDO_ATTEMPTS: u32 = 3;

enum Undo {
    MarkFailed(Uuid),
    Deprovision(ResourceRef),
}

/// The registered undos of one saga run.
struct Saga<'a> {
    app: &'a App,
    provider: &'a Loaded,
    request_id: &'a str,
    undo: Vec<Undo>,
}

impl Saga<'_> {
    async fn unwind(self) {
        for step in self.undo.into_iter().rev() {
            match step {
                Undo::Deprovision(resource) => {
                    undo_provider(self.provider, self.request_id, &resource).await
                }
                Undo::MarkFailed(id) => {
                    if let Err(e) = self.app.store.mark_failed(id).await {
                        tracing::error!(request_id = self.request_id, resource.id = %id, error = %e, "cannot mark a failed resource");
                    }
                }
            }
        }
    }
}

async fn undo_provider(provider: &Loaded, request_id: &str, resource: &ResourceRef) {
    for attempt in 1..=UNDO_ATTEMPTS {
        let error = match provider.deprovision(request_id, resource).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("{e:?}"),
            Err(e) => e.to_string(),
        };
        tracing::warn!(request_id, resource.id = %resource.resource_id, attempt, error, "undo of provision failed");
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt * attempt))).await;
    }
    tracing::error!(request_id, resource.id = %resource.resource_id, provider = %provider.name, "provision could not be undone: backend objects may be left behind");
}

/// Runs the saga; on any failure nothing is left behind. The saga runs as its own task: a
/// client that hangs up must not cancel it half-way and strand what it created.
pub async fn provision(app: SharedApp, input: ProvisionInput) -> Result<ProvisionOutput, ApiError> {
    let request_id = input.request_id.clone();
    let saga = tokio::spawn(request_id::scope(request_id, async move {
        run_saga(&app, input).await
    }));
    saga.await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("provision task failed: {e}"))))
}

async fn run_saga(app: &App, input: ProvisionInput) -> Result<ProvisionOutput, ApiError> {
    let provider = app
        .registry
        .for_kind(&input.kind)
        .ok_or_else(|| ApiError::not_found(&format!("Resource kind `{}`", input.kind)))?;
    let mut saga = Saga {
        app,
        provider: &provider,
        request_id: &input.request_id,
        undo: Vec::new(),
    };
    match run(&mut saga, &input).await {
        Ok(output) => Ok(output),
        Err(e) => {
            saga.unwind().await;
            Err(e)
        }
    }
}

async fn run(saga: &mut Saga<'_>, input: &ProvisionInput) -> Result<ProvisionOutput, ApiError> {
    let (app, provider) = (saga.app, saga.provider);
    let id = Uuid::new_v4();
    let token = Uuid::new_v4();
    let now = Utc::now();
    let tier = plans::ANONYMOUS;
    let limits = plans::limits(tier, &input.kind);
    let expires_at = now + plans::ANONYMOUS_TTL;
    let fault = |point| fail_if(input.fault, point);

    app.store
        .insert_pending(&NewResource {
            id,
            token,
            kind: &input.kind,
            name: input.name.as_str(),
            env: input.env.as_str(),
            tier,
            provider: &provider.name,
            provider_version: &provider.version,
            fingerprint: input.fingerprint.as_deref(),
            limits: serde_json::Value::Object(
                limits
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).into()))
                    .collect(),
            ),
            request_id: &input.request_id,
            expires_at: Some(expires_at),
        })
        .await
        .map_err(ApiError::internal)?;
    saga.undo.push(Undo::MarkFailed(id));
    fault(FaultPoint::AfterInsert)?;

    let resource_id = id.simple().to_string();
    saga.undo.push(Undo::Deprovision(ResourceRef {
        resource_id: resource_id.clone(),
        kind: input.kind.clone(),
        tier: tier.to_string(),
        limits: limits.clone(),
        state: String::new(),
    }));
    let request = ProvisionRequest {
        resource_id,
        name: input.name.to_string(),
        kind: input.kind.clone(),
        tier: tier.to_string(),
        limits: limits.clone(),
        options: vec![],
    };
    let provisioned = provider_answer(provider.provision(&input.request_id, &request).await)?;
    check_answer(&provisioned).map_err(ApiError::provider_failed)?;
    if let Some(Undo::Deprovision(resource)) = saga.undo.last_mut() {
        resource.state = provisioned.state.clone();
    }
    fault(FaultPoint::AfterProvision)?;

    let credentials = serde_json::to_vec(&SealedCredentials {
        connection_url: &provisioned.connection_url,
        internal_url: provisioned.internal_url.as_deref(),
        state: &provisioned.state,
    })
    .map_err(ApiError::internal)?;
    let sealed = app
        .sealer
        .seal(&credentials, id.as_bytes())
        .map_err(ApiError::internal)?;
    fault(FaultPoint::AfterSeal)?;

    if !app
        .store
        .activate(id, &sealed)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::internal(format!(
            "resource {id} was no longer pending"
        )));
    }
    fault(FaultPoint::AfterActivate)?;

    app.maintenance.nudge();
    let upgrade_jwt = app
        .tokens
        .upgrade_token(token, &input.kind, now)
        .map_err(ApiError::internal)?;
    Ok(ProvisionOutput {
        id,
        token,
        kind: input.kind.clone(),
        name: input.name.clone(),
        env: input.env.clone(),
        tier,
        limits,
        connection_url: provisioned.connection_url,
        internal_url: provisioned.internal_url,
        fields: provisioned.fields,
        expires_at,
        upgrade_jwt,
    })
}

fn fail_if(fault: Option<FaultPoint>, point: FaultPoint) -> Result<(), ApiError> {
    if fault == Some(point) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "fault_injected",
            format!("Injected failure {point:?}."),
        ));
    }
    Ok(())
}

/// Maps a provider's answer (or its failure to answer) to the API's errors.
fn provider_answer<T>(answer: Result<Result<T, ProviderError>, CallError>) -> Result<T, ApiError> {
    match answer {
        Ok(Ok(value)) => Ok(value),
        Err(e) => Err(ApiError::provider_failed(e)),
        Ok(Err(ProviderError::InvalidRequest(m))) => Err(ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m)),
        Ok(Err(ProviderError::QuotaExceeded(m))) => Err(ApiError::new(StatusCode::PAYMENT_REQUIRED, "quota_exceeded", m)
            .action("Tell the user this tier's limit for the resource is reached; claim the resource or upgrade to raise it.")),
        Ok(Err(ProviderError::Conflict(m))) => Err(ApiError::new(StatusCode::CONFLICT, "conflict", m)),
        Ok(Err(ProviderError::BackendUnavailable(m))) => {
            tracing::warn!(request_id = %request_id::current(), error = %m, "backend unavailable");
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provision_failed", "The backend for this resource is unavailable; nothing was created.")
                .action("Tell the user the service is briefly unavailable and nothing was created; retry in 30 seconds."))
        }
        Ok(Err(ProviderError::Internal(m))) => Err(ApiError::provider_failed(m)),
    }
}

/// A provider's answer must be usable before anything is stored or returned.
fn check_answer(provisioned: &Provisioned) -> Result<(), String> {
    let url_ok =
        |u: &str| u.len() <= 2048 && url::Url::parse(u).is_ok_and(|u| !u.scheme().is_empty());
    if !url_ok(&provisioned.connection_url) {
        return Err("provider returned an unusable connection_url".into());
    }
    if provisioned
        .internal_url
        .as_deref()
        .is_some_and(|u| !url_ok(u))
    {
        return Err("provider returned an unusable internal_url".into());
    }
    if provisioned.state.len() > MAX_STATE {
        return Err(format!("provider state is larger than {MAX_STATE} bytes"));
    }
    Ok(())
}
