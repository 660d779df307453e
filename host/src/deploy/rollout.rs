//! One rollout of an app: build its image, start it, record the outcome.
//!
//! Rollouts run as background tasks; the status (`building` → `deploying` → `healthy` |
//! `failed`) lives in the metadata store, and only the current generation may write it, so
//! a redeploy simply supersedes a rollout still running.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::caps::context_ref;
use crate::contract::deploy::deployer::{App as Target, Built, Failure, FailureReason, Started};
use crate::contract::types::ProviderError;
use crate::registry::{CallError, Loaded};
use crate::request_id;
use crate::services::Services;
use crate::store::{DeploymentRow, DeploymentStatus, Outcome, ResourceStatus};
use std::sync::Arc;

/// Longest a whole rollout may take: the build's own 10-minute deadline, the start, slack.
pub const ROLLOUT_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// How often a running rollout renews its lease (a third of its length).
const LEASE_RENEWAL: Duration = Duration::from_secs(10);
/// Starts after which an interrupted rollout is given up on.
const MAX_ATTEMPTS: i32 = 3;

/// Starts the rollout of `generation` of the app in the background, leased to this replica.
pub fn spawn(services: Arc<Services>, resource_id: Uuid, generation: i32) {
    let request_id = request_id::current();
    tokio::spawn(request_id::scope(request_id.clone(), async move {
        match services
            .store
            .lease_rollout(resource_id, generation, services.replica)
            .await
        {
            Ok(true) => drive(&services, resource_id, generation, &request_id).await,
            // Superseded already, or another replica runs it.
            Ok(false) => {}
            Err(e) => {
                // Unleased, it is taken over by whichever replica looks first.
                tracing::warn!(resource.id = %resource_id, error = %e, "cannot lease a rollout");
            }
        }
    }));
}

/// Takes over rollouts whose replica stopped renewing their lease (it died or lost the
/// database), and runs each again from its build.
pub async fn take_over_orphans(services: &Arc<Services>) {
    loop {
        let orphan = match services.store.take_orphaned_rollout(services.replica).await {
            Ok(Some(orphan)) => orphan,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for interrupted rollouts");
                return;
            }
        };
        let (resource_id, generation) = (orphan.resource_id, orphan.generation);
        if orphan.attempts > MAX_ATTEMPTS {
            let failure = host_failure(
                FailureReason::Error,
                "The rollout was interrupted every time it ran (the platform restarted during it): redeploy.",
            );
            record_failure(services, resource_id, generation, &failure).await;
            continue;
        }
        tracing::info!(resource.id = %resource_id, generation, attempt = orphan.attempts, "taking over an interrupted rollout");
        let services = services.clone();
        let request_id = format!("req_takeover_{}", resource_id.simple());
        tokio::spawn(request_id::scope(request_id.clone(), async move {
            drive(&services, resource_id, generation, &request_id).await;
        }));
    }
}

/// Runs a leased rollout to its end within [`ROLLOUT_DEADLINE`], renewing the lease.
async fn drive(services: &Services, resource_id: Uuid, generation: i32, request_id: &str) {
    let run = tokio::time::timeout(
        ROLLOUT_DEADLINE,
        run(services, resource_id, generation, request_id),
    );
    let renew = async {
        let mut ticks = tokio::time::interval(LEASE_RENEWAL);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            match services
                .store
                .renew_rollout_lease(resource_id, generation, services.replica)
                .await
            {
                Ok(true) => {}
                // Ended, superseded, or taken over by a replica that thought this one dead:
                // the work is someone else's now.
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(resource.id = %resource_id, error = %e, "cannot renew a rollout lease")
                }
            }
        }
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        () = renew => {
            tracing::info!(resource.id = %resource_id, generation, "rollout handed over");
            return;
        }
    };
    let failure = match outcome {
        Ok(Ok(())) => return,
        Ok(Err(failure)) => failure,
        Err(_) => host_failure(
            FailureReason::DeadlineExceeded,
            "The rollout ran past its 15-minute deadline: use a smaller base image, drop slow steps, and redeploy.",
        ),
    };
    record_failure(services, resource_id, generation, &failure).await;
}

async fn run(
    services: &Services,
    resource_id: Uuid,
    generation: i32,
    request_id: &str,
) -> Result<(), Failure> {
    let row = services
        .store
        .deployment_by_resource(resource_id)
        .await
        .map_err(|e| internal(format!("metadata store: {e}")))?
        .ok_or_else(|| internal("the app vanished".into()))?;
    let provider = super::deployer_of(services, &row)
        .ok_or_else(|| internal("no provider serves deploys any more".into()))?;
    let mut target = target(services, &row, generation).await?;
    crate::vault::resolve(services, row.team_id, &row.env, &mut target.env, request_id)
        .await
        .map_err(|detail| {
            host_failure(
                FailureReason::Error,
                &format!("A vault reference could not be resolved ({detail}): store the secret (PUT /api/v1/vault/<env>/<key>) or fix the reference, then redeploy."),
            )
        })?;

    let owner = match row.team_id {
        Some(team) => team.to_string(),
        None => row.fingerprint.clone(),
    };
    let Some(turn) = services
        .builds
        .wait_turn(resource_id, generation, &owner)
        .await
    else {
        // A newer rollout of the app was asked for while this one waited: it builds instead.
        return Ok(());
    };
    // A build that a newer rollout replaces is stopped by the engine capability itself, so
    // the turn passes on only once the engine has let go of it.
    let built = provider.deploy_build(request_id, &target).await;
    drop(turn);
    let image = match built {
        Ok(Ok(Built::Image(image))) => image,
        Ok(Ok(Built::Failed(failure))) => return Err(failure),
        other => return Err(call_failure(&provider, other.map(|a| a.map(|_| ())))),
    };
    let deploying = Outcome {
        status: DeploymentStatus::Deploying,
        upstream: None,
        error: None,
        failure: None,
    };
    if !record(services, resource_id, generation, &deploying).await {
        clean_up_if_gone(services, &provider, resource_id, request_id).await;
        return Ok(());
    }
    let upstream = match provider.deploy_start(request_id, &target, &image).await {
        Ok(Ok(Started::Running(upstream))) => super::routes::recorded(&provider.name, &upstream),
        Ok(Ok(Started::Failed(failure))) => return Err(failure),
        other => return Err(call_failure(&provider, other.map(|a| a.map(|_| ())))),
    };
    let healthy = Outcome {
        status: DeploymentStatus::Healthy,
        upstream: Some(&upstream),
        error: None,
        failure: None,
    };
    if record(services, resource_id, generation, &healthy).await {
        tracing::info!(request_id, resource.id = %resource_id, generation, "app healthy");
    } else {
        clean_up_if_gone(services, &provider, resource_id, request_id).await;
    }
    Ok(())
}

/// A rollout that outlived its app (deleted or expired while building) removes what it
/// made after the delete had run.
async fn clean_up_if_gone(
    services: &Services,
    provider: &Loaded,
    resource_id: Uuid,
    request_id: &str,
) {
    let Ok(Some(row)) = services.store.deployment_by_resource(resource_id).await else {
        return;
    };
    if row.status != DeploymentStatus::Stopped && row.resource_status != ResourceStatus::Deleted {
        // Superseded by a newer rollout, which retires this one's container.
        return;
    }
    let Ok(Some(resource)) = services.store.find_by_token(row.token).await else {
        return;
    };
    let state = crate::lifecycle::stored::Credentials::open(services, &resource)
        .map(|c| c.state)
        .unwrap_or_default();
    let target = crate::lifecycle::stored::resource_ref(&resource, state);
    if let Err(e) = provider.deprovision(request_id, &target).await {
        tracing::warn!(resource.id = %resource_id, error = %e, "cannot remove a late rollout");
    }
}

/// What the provider needs to know about the app for one rollout.
pub async fn target(
    services: &Services,
    row: &DeploymentRow,
    generation: i32,
) -> Result<Target, Failure> {
    let env = open_env(services, row.resource_id, &row.sealed_env)
        .map_err(|e| internal(format!("cannot open the app's env: {e}")))?;
    let network = match row.stack_id {
        Some(stack) => Some(
            services
                .store
                .stack_by_id(stack)
                .await
                .map_err(|e| internal(format!("metadata store: {e}")))?
                .ok_or_else(|| internal("the app's stack vanished".into()))?
                .slug,
        ),
        None => None,
    };
    Ok(Target {
        app_id: row.resource_id.simple().to_string(),
        tier: row.tier.clone(),
        limits: row
            .limits
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .collect(),
        generation: u32::try_from(generation).unwrap_or_default(),
        context_ref: context_ref(row.resource_id, generation),
        image: row.image.clone(),
        port: u16::try_from(row.port).unwrap_or(8080),
        env: env.into_iter().collect(),
        network,
        hostname: row.service.clone(),
    })
}

async fn record(
    services: &Services,
    resource_id: Uuid,
    generation: i32,
    outcome: &Outcome<'_>,
) -> bool {
    let recorded = services
        .store
        .record_rollout(resource_id, generation, outcome, services.clock.now())
        .await;
    // After the write: a lookup racing it must not cache the old route again.
    services.route_changed().await;
    match recorded {
        Ok(current) => current,
        Err(e) => {
            tracing::error!(resource.id = %resource_id, error = %e, "cannot record a rollout");
            false
        }
    }
}

/// Records a failed rollout with its autopsy.
pub async fn record_failure(
    services: &Services,
    resource_id: Uuid,
    generation: i32,
    failure: &Failure,
) {
    let autopsy = autopsy_json(failure, services.clock.now());
    let error = error_message(failure);
    let outcome = Outcome {
        status: DeploymentStatus::Failed,
        upstream: None,
        error: Some(&error),
        failure: Some(&autopsy),
    };
    tracing::info!(resource.id = %resource_id, generation, reason = reason_name(failure.reason), "rollout failed");
    record(services, resource_id, generation, &outcome).await;
}

/// A failure reason as the API spells it.
fn reason_name(reason: FailureReason) -> &'static str {
    match reason {
        FailureReason::BuildFailed => "BuildFailed",
        FailureReason::CrashLoopBackOff => "CrashLoopBackOff",
        FailureReason::OomKilled => "OOMKilled",
        FailureReason::DeadlineExceeded => "DeadlineExceeded",
        FailureReason::StartFailed => "StartFailed",
        FailureReason::Error => "Error",
        FailureReason::Unknown => "Unknown",
    }
}

/// `<reason>: <first sentence of the hint>`.
fn error_message(failure: &Failure) -> String {
    let first = failure
        .hint
        .split_once(": ")
        .map_or(failure.hint.as_str(), |(head, _)| head);
    format!(
        "{}: {}",
        reason_name(failure.reason),
        first.trim_end_matches('.')
    )
}

fn autopsy_json(failure: &Failure, at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "kind": "failure_autopsy",
        "reason": reason_name(failure.reason),
        "exit_code": failure.exit_code,
        "event": match failure.reason {
            FailureReason::BuildFailed | FailureReason::DeadlineExceeded => "build",
            _ => "run",
        },
        "last_lines": failure.last_lines,
        "hint": failure.hint,
        "created_at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// A provider that could not answer: the cause goes to the log, the agent gets `Error`.
fn call_failure(
    provider: &Loaded,
    answer: Result<Result<(), ProviderError>, CallError>,
) -> Failure {
    let detail = match answer {
        Ok(Ok(())) => "no answer".to_string(),
        Ok(Err(e)) => format!("{e:?}"),
        Err(e) => e.to_string(),
    };
    tracing::warn!(provider = %provider.name, error = %detail, "rollout step failed");
    host_failure(
        FailureReason::Error,
        "The platform could not complete the rollout (the container engine was unavailable or timed out); this is usually transient: redeploy in a minute.",
    )
}

fn internal(detail: String) -> Failure {
    tracing::error!(error = %detail, "rollout failed on the host");
    host_failure(
        FailureReason::Unknown,
        "The rollout stopped for a reason on our side: redeploy, and stream GET /deploy/{id}/logs to watch it.",
    )
}

fn host_failure(reason: FailureReason, hint: &str) -> Failure {
    Failure {
        reason,
        exit_code: None,
        last_lines: Vec::new(),
        hint: hint.into(),
    }
}

/// Seals an app's env vars (they may hold credentials) with its resource id as context.
pub fn seal_env(
    services: &Services,
    resource_id: Uuid,
    env: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<u8>> {
    let plain = serde_json::to_vec(env)?;
    services.sealer.seal(&plain, resource_id.as_bytes())
}

pub fn open_env(
    services: &Services,
    resource_id: Uuid,
    sealed: &[u8],
) -> anyhow::Result<BTreeMap<String, String>> {
    let plain = services.sealer.open(sealed, resource_id.as_bytes())?;
    Ok(serde_json::from_slice(&plain)?)
}

/// Fails rollouts that stopped moving (their host restarted mid-build, or hung).
pub async fn fail_stale(services: &Services) {
    let before = services.clock.now()
        - chrono::Duration::from_std(ROLLOUT_DEADLINE + Duration::from_secs(60))
            .unwrap_or_default();
    let Ok(stale) = services.store.stale_rollouts(before).await else {
        return;
    };
    for (resource_id, generation) in stale {
        let failure = host_failure(
            FailureReason::DeadlineExceeded,
            "The rollout stopped making progress (the platform restarted during it): redeploy.",
        );
        record_failure(services, resource_id, generation, &failure).await;
    }
}
