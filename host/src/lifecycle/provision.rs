//! The provision saga.
//!
//! Steps: insert a `pending` row → `provider.provision` → seal the credentials → mark the row
//! `active` → respond. Each step that creates something registers its undo *before* it runs
//! (a step that fails half-way may still have created something), and any failure unwinds
//! the registered undos in reverse: the provider's `deprovision` (which succeeds when there
//! is nothing to remove) and marking the row `failed`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::contract::types::{ProvisionRequest, Provisioned, ResourceRef};
use crate::kinds::Service;
use crate::request_id;
use crate::services::Services;
use crate::store::{NewResource, ResourceRow};
use crate::tenancy::caps::{self, Admission, Denial};
use std::sync::Arc;

use super::error::{LifecycleError, answered};
use crate::tenancy::names::{EnvName, ResourceName};
use crate::tenancy::plans;

use super::stored::{Credentials, resource_id};

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
    /// The resource id to use, when the caller recorded it already (deploys).
    pub id: Option<Uuid>,
    /// Options handed to the provider: the kind's request fields the caller sent, or what
    /// the host adds (a deploy's `url`).
    pub options: Vec<(String, String)>,
    /// A lifetime shorter than the tier's (anonymous stacks).
    pub ttl: Option<Duration>,
    /// A signed-in caller's team and its tier (none: anonymous).
    pub team: Option<(Uuid, String)>,
    /// Over the daily cap, answer with the caller's existing resource (data kinds) instead
    /// of refusing (deploys: an existing app is no substitute for a new one).
    pub hand_back_existing: bool,
    /// Resources an anonymous caller proved it holds (their token or upgrade JWT): the only
    /// ones of its network it may be handed back or shown.
    pub proven_tokens: Vec<Uuid>,
}

/// A created resource, or (over the daily cap) the caller's existing one.
pub struct ProvisionOutput {
    /// True when this is an existing resource handed back instead of a new one.
    pub existing: bool,
    pub id: Uuid,
    pub token: Uuid,
    pub kind: String,
    pub name: ResourceName,
    pub env: EnvName,
    pub tier: String,
    pub limits: Vec<(String, u64)>,
    pub connection_url: String,
    pub internal_url: Option<String>,
    pub fields: Vec<(String, String)>,
    pub expires_at: Option<DateTime<Utc>>,
    pub upgrade_jwt: String,
    /// `name@version` of the provider that created it (`host@…` for built-in kinds).
    pub provider: String,
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
    services: &'a Services,
    provider: &'a dyn Service,
    request_id: &'a str,
    undo: Vec<Undo>,
}

impl Saga<'_> {
    async fn unwind(self) {
        // A backend that died mid-provision cannot undo it either: the row then goes to
        // the reaper, which removes what is left once the backend is back.
        let mut left_behind = false;
        for step in self.undo.into_iter().rev() {
            match step {
                Undo::Deprovision(resource) => {
                    left_behind |= !undo_provider(self.provider, self.request_id, &resource).await;
                }
                Undo::MarkFailed(id) => {
                    let now = self.services.clock.now();
                    let marked = if left_behind {
                        self.services.store.abandon(id, now).await
                    } else {
                        self.services.store.mark_failed(id, now).await
                    };
                    // Unmarked, the row stays `pending` and the reaper takes it when stale.
                    if let Err(e) = marked {
                        tracing::error!(request_id = self.request_id, resource.id = %id, error = %e, "cannot mark a failed resource");
                    }
                }
            }
        }
    }
}

/// Removes what a failed provision created; false when the provider could not.
async fn undo_provider(provider: &dyn Service, request_id: &str, resource: &ResourceRef) -> bool {
    for attempt in 1..=UNDO_ATTEMPTS {
        let error = match provider.deprovision(request_id, resource).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => format!("{e:?}"),
            Err(e) => e.to_string(),
        };
        tracing::warn!(request_id, resource.id = %resource.resource_id, attempt, error, "undo of provision failed");
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt * attempt))).await;
    }
    tracing::error!(request_id, resource.id = %resource.resource_id, provider = provider.name(), "provision could not be undone; the reaper will retry");
    false
}

/// Runs the saga; on any failure nothing is left behind. The saga runs as its own task: a
/// client that hangs up must not cancel it half-way and strand what it created.
pub async fn provision(
    services: Arc<Services>,
    input: ProvisionInput,
) -> Result<ProvisionOutput, LifecycleError> {
    let request_id = input.request_id.clone();
    let saga = tokio::spawn(request_id::scope(request_id, async move {
        run_saga(&services, input).await
    }));
    saga.await.unwrap_or_else(|e| {
        Err(LifecycleError::internal(format!(
            "provision task failed: {e}"
        )))
    })
}

async fn run_saga(
    services: &Services,
    input: ProvisionInput,
) -> Result<ProvisionOutput, LifecycleError> {
    let provider = services
        .kinds
        .for_kind(&input.kind)
        .ok_or_else(|| LifecycleError::UnknownKind(input.kind.clone()))?;
    let mut saga = Saga {
        services,
        provider: provider.as_ref(),
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

async fn run(
    saga: &mut Saga<'_>,
    input: &ProvisionInput,
) -> Result<ProvisionOutput, LifecycleError> {
    let (services, provider) = (saga.services, saga.provider);
    let id = input.id.unwrap_or_else(Uuid::new_v4);
    let token = Uuid::new_v4();
    let now = services.clock.now();
    // Callers without an account are anonymous; a team brings its own tier.
    let tier_name = input
        .team
        .as_ref()
        .map_or(plans::ANONYMOUS, |(_, tier)| tier.as_str());
    let tier = services.plans.tier(tier_name).ok_or_else(|| {
        LifecycleError::internal(format!("tier `{tier_name}` is not in the plans"))
    })?;
    let limits = tier.limits_for(&input.kind);
    let expires_at = match (tier.ttl(), input.ttl) {
        (Some(tier_ttl), Some(ttl)) => Some(now + tier_ttl.min(ttl)),
        (None, Some(ttl)) => Some(now + ttl),
        (tier_ttl, None) => tier_ttl.map(|ttl| now + ttl),
    };
    let fault = |point| fail_if(input.fault, point);

    let admission = services
        .store
        .admit_pending(
            &NewResource {
                id,
                token,
                kind: &input.kind,
                name: input.name.as_str(),
                env: input.env.as_str(),
                tier: tier_name,
                provider: provider.name(),
                provider_version: provider.version(),
                fingerprint: input.fingerprint.as_deref(),
                team_id: input.team.as_ref().map(|(team, _)| *team),
                limits: serde_json::Value::Object(
                    limits
                        .iter()
                        .map(|(k, v)| (k.clone(), (*v).into()))
                        .collect(),
                ),
                request_id: &input.request_id,
                created_at: now,
                expires_at,
            },
            |holdings| {
                let visible = match input.team {
                    Some(_) => caps::Visible::All,
                    None => caps::Visible::Proven(&input.proven_tokens),
                };
                caps::decide(
                    tier,
                    tier_name == plans::ANONYMOUS,
                    &input.kind,
                    holdings,
                    visible,
                )
            },
        )
        .await?;
    match admission {
        Admission::Admit => {}
        Admission::ReturnExisting(token) if input.hand_back_existing => {
            return existing_output(services, token).await;
        }
        Admission::ReturnExisting(_) => {
            let limit = tier.provisions_per_day().unwrap_or_default();
            return Err(LifecycleError::Denied(Denial::ProvisionLimitReached {
                limit,
            }));
        }
        Admission::Deny(denial) => return Err(LifecycleError::Denied(denial)),
    }
    saga.undo.push(Undo::MarkFailed(id));
    fault(FaultPoint::AfterInsert)?;

    let resource_id = resource_id(id);
    saga.undo.push(Undo::Deprovision(ResourceRef {
        resource_id: resource_id.clone(),
        kind: input.kind.clone(),
        tier: tier_name.to_string(),
        limits: limits.clone(),
        state: String::new(),
    }));
    let request = ProvisionRequest {
        resource_id,
        name: input.name.to_string(),
        kind: input.kind.clone(),
        tier: tier_name.to_string(),
        limits: limits.clone(),
        options: input.options.clone(),
    };
    let answer = provider.provision(&input.request_id, &request).await;
    if matches!(&answer, Err(e) if e.never_ran()) {
        // Refused before the component ran: there is nothing to undo on the backend.
        saga.undo.pop();
    }
    let provisioned = answered(answer)?;
    check_answer(&provisioned).map_err(LifecycleError::UnusableAnswer)?;
    if let Some(Undo::Deprovision(resource)) = saga.undo.last_mut() {
        resource.state = provisioned.state.clone();
    }
    fault(FaultPoint::AfterProvision)?;

    let credentials = Credentials {
        connection_url: provisioned.connection_url,
        internal_url: provisioned.internal_url,
        state: provisioned.state,
        fields: provisioned.fields,
    };
    let sealed = credentials
        .seal(services, id)
        .map_err(LifecycleError::internal)?;
    fault(FaultPoint::AfterSeal)?;

    if !services
        .store
        .activate(id, &sealed, services.clock.now())
        .await?
    {
        return Err(LifecycleError::internal(format!(
            "resource {id} was no longer pending"
        )));
    }
    fault(FaultPoint::AfterActivate)?;

    services.maintenance.nudge();
    let upgrade_jwt = services
        .tokens
        .upgrade_token(token, &input.kind, now)
        .map_err(LifecycleError::internal)?;
    Ok(ProvisionOutput {
        existing: false,
        id,
        token,
        kind: input.kind.clone(),
        name: input.name.clone(),
        env: input.env.clone(),
        tier: tier_name.to_string(),
        limits,
        connection_url: credentials.connection_url,
        internal_url: credentials.internal_url,
        fields: credentials.fields,
        expires_at,
        upgrade_jwt,
        provider: provider.label(),
    })
}

/// The caller's existing resource, answered instead of a new one over the daily cap.
async fn existing_output(
    services: &Services,
    token: Uuid,
) -> Result<ProvisionOutput, LifecycleError> {
    let row: ResourceRow = services
        .store
        .find_by_token(token)
        .await?
        .ok_or_else(|| LifecycleError::internal("the existing resource vanished"))?;
    let credentials = Credentials::open(services, &row).map_err(LifecycleError::internal)?;
    let provider = format!("{}@{}", row.provider, row.provider_version);
    let upgrade_jwt = services
        .tokens
        .upgrade_token(token, &row.kind, services.clock.now())
        .map_err(LifecycleError::internal)?;
    Ok(ProvisionOutput {
        existing: true,
        id: row.id,
        token,
        limits: super::stored::limits_of(&row),
        name: ResourceName::parse(&row.name)
            .map_err(|_| LifecycleError::internal("stored name is invalid"))?,
        env: EnvName::parse(&row.env)
            .ok_or_else(|| LifecycleError::internal("stored env is invalid"))?,
        kind: row.kind,
        tier: row.tier,
        connection_url: credentials.connection_url,
        internal_url: credentials.internal_url,
        fields: credentials.fields,
        expires_at: row.expires_at,
        upgrade_jwt,
        provider,
    })
}

fn fail_if(fault: Option<FaultPoint>, point: FaultPoint) -> Result<(), LifecycleError> {
    if fault == Some(point) {
        return Err(LifecycleError::Fault(point));
    }
    Ok(())
}

/// A provider's answer must be usable before anything is stored or returned.
pub(crate) fn check_answer(provisioned: &Provisioned) -> Result<(), String> {
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

/// New credentials for a live resource: the provider's create-or-adopt run again with the
/// same id (Postgres: a new password for the same role and data). The new credentials
/// replace the stored ones.
pub async fn rotate(
    services: &Services,
    row: &ResourceRow,
    request_id: &str,
) -> Result<Credentials, LifecycleError> {
    let provider = services
        .kinds
        .for_resource(&row.provider, &row.kind)
        .ok_or_else(|| LifecycleError::UnknownKind(row.kind.clone()))?;
    let request = ProvisionRequest {
        resource_id: resource_id(row.id),
        name: row.name.clone(),
        kind: row.kind.clone(),
        tier: row.tier.clone(),
        limits: super::stored::limits_of(row),
        options: vec![],
    };
    let provisioned = answered(provider.provision(request_id, &request).await)?;
    check_answer(&provisioned).map_err(LifecycleError::UnusableAnswer)?;
    let credentials = Credentials {
        connection_url: provisioned.connection_url,
        internal_url: provisioned.internal_url,
        state: provisioned.state,
        fields: provisioned.fields,
    };
    let sealed = credentials
        .seal(services, row.id)
        .map_err(LifecycleError::internal)?;
    services
        .store
        .replace_credentials(row.id, &sealed, services.clock.now())
        .await?;
    Ok(credentials)
}
