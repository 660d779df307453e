//! The deploy provider: every resource is an app, built from the caller's Dockerfile context
//! into an image and run as one container per rollout on the host's container engine.
//!
//! The host drives a rollout (`deployer.build`, then `deployer.start`) and routes the app's
//! URL to the loopback address `start` answers. This component owns the policy: names,
//! limits from the tier, what "healthy" means, and how a failure is classified and
//! explained to an agent.
//!
//! Isolation: the `containers` capability namespaces and labels everything; each app's
//! containers and images carry its resource id, so `deprovision` finds exactly them.

mod app;
mod autopsy;
mod image;

use std::time::{Duration, Instant};

use instanode_provider_kit::containers::{self, ContainerState, RunRequest};
use instanode_provider_kit::deployer::{App, Built, Started};
use instanode_provider_kit::log::{self, Level};
use instanode_provider_kit::types::{
    CapabilityError, Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use instanode_provider_kit::{Deployer, Provider, settings};

use autopsy::Reason;
use image::unavailable;

const DEFAULT_MEMORY_MB: u64 = 256;
const DEFAULT_CPU_MILLIS: u64 = 500;
const DEFAULT_START_TIMEOUT_SECONDS: u64 = 60;
const PIDS: u32 = 256;
/// Restarts the engine grants a serving app that later crashes.
const RESTARTS: u32 = 5;
const POLL: Duration = Duration::from_millis(100);

struct Deploy;

impl Provider for Deploy {
    fn describe() -> Info {
        Info {
            name: "deploy".into(),
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
        for name in containers::find("app", hex).map_err(unavailable)? {
            containers::remove(&name).map_err(unavailable)?;
        }
        containers::remove_images(&prefix).map_err(unavailable)?;
        if !target.state.is_empty() {
            // The last service of a stack to go takes the network with it.
            containers::remove_network(&target.state).map_err(unavailable)?;
        }
        Ok(())
    }

    fn usage(target: ResourceRef) -> Result<UsageReport, ProviderError> {
        let prefix = app::prefix(&target.resource_id)?;
        let hex = prefix.trim_start_matches("app-");
        let running = containers::find("app", hex).map_err(unavailable)?.len();
        Ok(UsageReport {
            storage_bytes: 0,
            connections: 0,
            extra: vec![("containers".into(), running as u64)],
        })
    }

    // suspend, resume: the SDK's defaults, which do nothing.

    fn check() -> Result<String, ProviderError> {
        containers::find("app", "none").map_err(unavailable)?;
        Ok("container engine reachable".into())
    }
}

impl Deployer for Deploy {
    fn build(target: App) -> Result<Built, ProviderError> {
        let tag = format!("{}-{}", app::prefix(&target.app_id)?, target.generation);
        image::make(&target, tag)
    }

    fn start(target: App, image: String) -> Result<Started, ProviderError> {
        let prefix = app::prefix(&target.app_id)?;
        let hex = prefix.trim_start_matches("app-").to_string();
        let name = format!("{prefix}-{}", target.generation);
        if let Some(network) = &target.network {
            containers::ensure_network(network).map_err(unavailable)?;
        }
        let request = RunRequest {
            name: name.clone(),
            image,
            env: target.env.clone(),
            port: target.port,
            memory_bytes: target.limits().get_or("memory_mb", DEFAULT_MEMORY_MB) << 20,
            cpu_millis: u32::try_from(target.limits().get_or("cpu_millis", DEFAULT_CPU_MILLIS))
                .unwrap_or(u32::MAX),
            pids: PIDS,
            labels: vec![
                ("app".into(), hex.clone()),
                ("generation".into(), target.generation.to_string()),
            ],
            network: target.network.clone(),
            hostname: target.hostname.clone(),
        };
        let timeout = Duration::from_secs(settings::parse_or(
            "start_timeout_seconds",
            DEFAULT_START_TIMEOUT_SECONDS,
        ));
        let outcome = match containers::run(&request) {
            Ok(started) => wait_until_serving(&name, started, target.port, timeout)?,
            // The engine could not run the image's command: the app's fault, and retrying
            // the same image fails the same way.
            Err(CapabilityError::Backend(e)) if e.code == "start-failed" => Started::Failed(
                autopsy::failure(Reason::StartFailed, None, vec![e.message], target.port),
            ),
            Err(e) => return Err(unavailable(e)),
        };
        match &outcome {
            Started::Running(_) => {
                containers::keep_restarting(&name, RESTARTS).map_err(unavailable)?;
                retire_older(&hex, &prefix, &name, target.generation)?;
            }
            Started::Failed(failure) => {
                log::write(
                    Level::Info,
                    &format!("rollout {name} failed: {:?}", failure.reason),
                );
                containers::remove(&name).map_err(unavailable)?;
                containers::remove_images(&name).map_err(unavailable)?;
            }
        }
        Ok(outcome)
    }

    fn logs(target: App, tail: u32) -> Result<Vec<String>, ProviderError> {
        let prefix = app::prefix(&target.app_id)?;
        let hex = prefix.trim_start_matches("app-");
        let newest = containers::find("app", hex)
            .map_err(unavailable)?
            .into_iter()
            .max_by_key(|n| app::generation_of(n));
        match newest {
            Some(name) => containers::logs(&name, tail).map_err(unavailable),
            None => Ok(Vec::new()),
        }
    }
}

/// Polls the new container until it answers HTTP, exits, restarts, or runs out of time.
fn wait_until_serving(
    name: &str,
    mut container: containers::Container,
    port: u16,
    timeout: Duration,
) -> Result<Started, ProviderError> {
    let began = Instant::now();
    loop {
        let crashed = container.restart_count > 0
            || matches!(
                container.state,
                ContainerState::Exited | ContainerState::Dead | ContainerState::Restarting
            );
        if crashed {
            let reason = if container.oom_killed {
                Reason::OomKilled
            } else {
                Reason::CrashLoopBackOff
            };
            let output = containers::logs(name, 200).map_err(unavailable)?;
            return Ok(Started::Failed(autopsy::failure(
                reason,
                container.exit_code,
                output,
                port,
            )));
        }
        if container.state == ContainerState::Running
            && let Some(address) = &container.address
            && containers::probe(name).map_err(unavailable)?
        {
            return Ok(Started::Running(address.clone()));
        }
        if began.elapsed() >= timeout {
            let output = containers::logs(name, 200).map_err(unavailable)?;
            return Ok(Started::Failed(autopsy::failure(
                Reason::NotAnswering,
                None,
                output,
                port,
            )));
        }
        std::thread::sleep(POLL);
        container = containers::inspect(name)
            .map_err(unavailable)?
            .ok_or_else(|| ProviderError::Internal(format!("container {name} vanished")))?;
    }
}

/// Once a rollout serves, earlier generations' containers and images go.
fn retire_older(
    hex: &str,
    prefix: &str,
    current: &str,
    generation: u32,
) -> Result<(), ProviderError> {
    for name in containers::find("app", hex).map_err(unavailable)? {
        if name != current && app::generation_of(&name) < generation {
            containers::remove(&name).map_err(unavailable)?;
            containers::remove_images(&name).map_err(unavailable)?;
        }
    }
    if generation > 1 {
        containers::remove_images(&format!("{prefix}-{}", generation - 1)).map_err(unavailable)?;
    }
    Ok(())
}

instanode_provider_kit::export_deploy_provider!(Deploy);
