//! The Swarm deploy provider: every resource is an app, built from the caller's Dockerfile
//! context (or pulled as a prebuilt image) like the single-engine provider's, then run as a
//! replicated service on the engine's Docker Swarm, so any node can run it.
//!
//! A rollout is blue-green at the service level: generation N runs as its own service
//! `app-<hex>-N` beside N-1, and `start` answers only once every task of N answers HTTP.
//! The host then routes the app to N's tasks; N-1 keeps serving the requests already on
//! their way and is removed by `maintain` after a drain period. Nothing inside the image
//! (no health-check command) is needed to gate the switch. Tasks that fail later are
//! replaced by the cluster, and the host routes to whichever tasks run.
//!
//! Isolation: the `services` and `containers` capabilities prefix and label everything;
//! each app's services carry its resource id, so `deprovision` finds exactly them.

// One source for both deploy providers: what an app is, how its image is made and how
// its failures are explained.
#[path = "../../deploy/src/app.rs"]
mod app;
#[path = "../../deploy/src/autopsy.rs"]
mod autopsy;
#[path = "../../deploy/src/image.rs"]
mod image;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use instanode_provider_kit::containers;
use instanode_provider_kit::deployer::{App, Built, Started};
use instanode_provider_kit::kv;
use instanode_provider_kit::log::{self, Level};
use instanode_provider_kit::services::{self, ServiceRequest, TaskState};
use instanode_provider_kit::types::{
    Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Deployer, Provider, settings};

use autopsy::Reason;
use image::unavailable;

const DEFAULT_MEMORY_MB: u64 = 256;
const DEFAULT_CPU_MILLIS: u64 = 500;
const DEFAULT_REPLICAS: u64 = 1;
const DEFAULT_START_TIMEOUT_SECONDS: u64 = 60;
/// How long a replaced generation keeps running after its successor took the route.
const DEFAULT_DRAIN_SECONDS: u64 = 10;
const PIDS: u32 = 256;
/// Times the cluster replaces a task that fails while serving.
const RESTARTS: u32 = 5;
const POLL: Duration = Duration::from_millis(200);
/// `kv` keys `retire/<hex>/<generation>` hold when that generation may go (unix seconds).
const RETIRE: &str = "retire/";
/// What the engine says when the image's own command cannot run.
const START_FAILURES: [&str; 4] = [
    "executable file not found",
    "no such file or directory",
    "permission denied",
    "exec format error",
];

struct Swarm;

impl Provider for Swarm {
    fn describe() -> Info {
        Info {
            name: "swarm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kinds: vec![app::kind_info()],
        }
    }

    fn provision(request: ProvisionRequest) -> Result<Provisioned, ProviderError> {
        app::provision(request)
    }

    fn deprovision(target: ResourceRef) -> Result<(), ProviderError> {
        let prefix = app::prefix(&target.resource_id)?;
        let hex = prefix.trim_start_matches("app-");
        for name in services::find("app", hex).map_err(unavailable)? {
            services::remove(&name).map_err(unavailable)?;
        }
        containers::remove_images(&prefix).map_err(unavailable)?;
        for key in kv::list_keys(&format!("{RETIRE}{hex}/"), 1000).map_err(unavailable)? {
            kv::delete(&key).map_err(unavailable)?;
        }
        // The last service of a stack to go takes the network with it.
        let network = if target.state.is_empty() {
            prefix.as_str()
        } else {
            target.state.as_str()
        };
        services::remove_network(network).map_err(unavailable)?;
        Ok(())
    }

    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError> {
        let prefix = app::prefix(&target.resource_id)?;
        let hex = prefix.trim_start_matches("app-");
        let mut running = 0;
        for name in services::find("app", hex).map_err(unavailable)? {
            if let Some(service) = services::inspect(&name).map_err(unavailable)? {
                running += service
                    .tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Running)
                    .count() as u64;
            }
        }
        Ok(UsageReport {
            storage_bytes: 0,
            connections: 0,
            extra: vec![("tasks".into(), running)],
        })
    }

    fn check() -> Result<String, ProviderError> {
        services::find("app", "none").map_err(unavailable)?;
        Ok("swarm reachable".into())
    }

    /// Removes generations whose drain period is over.
    fn maintain() -> Result<(), ProviderError> {
        let now = unix_now();
        for key in kv::list_keys(RETIRE, 1000).map_err(unavailable)? {
            let due = kv::get(&key)
                .map_err(unavailable)?
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            if due > now {
                continue;
            }
            if let Some((hex, generation)) = key.trim_start_matches(RETIRE).split_once('/') {
                let name = format!("app-{hex}-{generation}");
                services::remove(&name).map_err(unavailable)?;
                containers::remove_images(&name).map_err(unavailable)?;
            }
            kv::delete(&key).map_err(unavailable)?;
        }
        Ok(())
    }
}

impl Deployer for Swarm {
    fn build(target: App) -> Result<Built, ProviderError> {
        let tag = format!("{}-{}", app::prefix(&target.app_id)?, target.generation);
        image::make(&target, tag)
    }

    fn start(target: App, image: String) -> Result<Started, ProviderError> {
        let prefix = app::prefix(&target.app_id)?;
        let hex = prefix.trim_start_matches("app-").to_string();
        let name = format!("{prefix}-{}", target.generation);
        // A stack's services share its network; an app alone gets one of its own, so its
        // traffic leaves through the cluster's gateway bridge, which the host guards.
        let network = target.network.clone().unwrap_or_else(|| prefix.clone());
        let encrypted = settings::is("encrypted_networks", "true");
        services::ensure_network(&network, encrypted).map_err(unavailable)?;
        let limits = target.limits();
        let replicas = settings::parse_or("replicas", DEFAULT_REPLICAS)
            .min(limits.get_or("replicas", u64::MAX))
            .max(1);
        let request = ServiceRequest {
            name: name.clone(),
            image,
            env: target.env.clone(),
            port: target.port,
            replicas: u32::try_from(replicas).unwrap_or(1),
            memory_bytes: limits.get_or("memory_mb", DEFAULT_MEMORY_MB) << 20,
            cpu_millis: u32::try_from(limits.get_or("cpu_millis", DEFAULT_CPU_MILLIS))
                .unwrap_or(u32::MAX),
            pids: PIDS,
            max_restarts: RESTARTS,
            labels: vec![
                ("app".into(), hex.clone()),
                ("generation".into(), target.generation.to_string()),
            ],
            network: Some(network),
            hostname: target.hostname.clone(),
        };
        let timeout = Duration::from_secs(settings::parse_or(
            "start_timeout_seconds",
            DEFAULT_START_TIMEOUT_SECONDS,
        ));
        services::create(&request).map_err(unavailable)?;
        let outcome = wait_until_serving(&name, request.replicas, target.port, timeout)?;
        match &outcome {
            Started::Running(_) => retire_older(&hex, target.generation)?,
            Started::Failed(failure) => {
                log::write(
                    Level::Info,
                    &format!("rollout {name} failed: {:?}", failure.reason),
                );
                services::remove(&name).map_err(unavailable)?;
                containers::remove_images(&name).map_err(unavailable)?;
            }
        }
        Ok(outcome)
    }

    fn logs(target: App, tail: u32) -> Result<Vec<String>, ProviderError> {
        let prefix = app::prefix(&target.app_id)?;
        let hex = prefix.trim_start_matches("app-");
        let newest = services::find("app", hex)
            .map_err(unavailable)?
            .into_iter()
            .max_by_key(|n| app::generation_of(n));
        match newest {
            Some(name) => services::logs(&name, tail).map_err(unavailable),
            None => Ok(Vec::new()),
        }
    }
}

/// Polls the new service until every task answers HTTP, a task fails, or time runs out.
fn wait_until_serving(
    name: &str,
    replicas: u32,
    port: u16,
    timeout: Duration,
) -> Result<Started, ProviderError> {
    let began = Instant::now();
    loop {
        let service = services::inspect(name)
            .map_err(unavailable)?
            .ok_or_else(|| ProviderError::Internal(format!("service {name} vanished")))?;
        // A task that ended while the service starts is the app's doing: the cluster
        // would only replace it with another that ends the same way.
        if let Some(ended) = service.tasks.iter().find(|t| {
            matches!(
                t.state,
                TaskState::Failed | TaskState::Rejected | TaskState::Complete
            )
        }) {
            let reason = if ended.oom_killed {
                Reason::OomKilled
            } else if START_FAILURES.iter().any(|m| ended.message.contains(m)) {
                Reason::StartFailed
            } else {
                Reason::CrashLoopBackOff
            };
            let mut output = services::logs(name, 200).map_err(unavailable)?;
            output.push(ended.message.clone());
            return Ok(Started::Failed(autopsy::failure(
                reason,
                ended.exit_code,
                output,
                port,
            )));
        }
        let running = service
            .tasks
            .iter()
            .filter(|t| t.desired_running && t.state == TaskState::Running)
            .count();
        if running >= replicas as usize && services::serving(name).map_err(unavailable)? >= replicas
        {
            return Ok(Started::Running(format!("service:{name}")));
        }
        if began.elapsed() >= timeout {
            let mut output = services::logs(name, 200).map_err(unavailable)?;
            // Tasks no node could take say why here (no memory left, no such image).
            output.extend(
                service
                    .tasks
                    .iter()
                    .filter(|t| t.state == TaskState::Pending && !t.message.is_empty())
                    .map(|t| t.message.clone()),
            );
            return Ok(Started::Failed(autopsy::failure(
                Reason::NotAnswering,
                None,
                output,
                port,
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// Marks every earlier generation of the app to be removed once its drain period is over.
fn retire_older(hex: &str, generation: u32) -> Result<(), ProviderError> {
    let due = unix_now() + settings::parse_or("drain_seconds", DEFAULT_DRAIN_SECONDS);
    for name in services::find("app", hex).map_err(unavailable)? {
        let older = app::generation_of(&name);
        if older < generation {
            kv::set(
                &format!("{RETIRE}{hex}/{older}"),
                due.to_string().as_bytes(),
            )
            .map_err(unavailable)?;
        }
    }
    Ok(())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

instanode_provider_kit::export_deploy_provider!(Swarm);
