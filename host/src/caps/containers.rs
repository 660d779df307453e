//! `containers`: images, containers and networks on a Docker Engine, over its unix socket.
//!
//! Every name a provider passes is checked and prefixed with the binding's namespace, and
//! everything created carries the namespace label, so a provider only ever sees and touches
//! its own objects. Containers run unprivileged, with memory, CPU and process caps, publish
//! their port on 127.0.0.1 only, and reach the host's backends as `host.docker.internal`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, EndpointSettings, HostConfig,
    HostConfigLogConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, OnceCell};
use uuid::Uuid;

use super::{HostState, cap_error};
use crate::config::ContainersBinding;
use crate::contract::instanode::provider::containers::{
    Container, ContainerState, Host, RunRequest,
};
use crate::contract::instanode::provider::types::CapabilityError;
use crate::store::Store;

/// The label every object of one namespace carries.
pub(super) const NAMESPACE_LABEL: &str = "dev.instanode.namespace";
/// Provider labels live under this prefix, apart from anything else on the engine.
pub(super) const LABEL_PREFIX: &str = "dev.instanode.label.";
/// Build output kept per build, and the most a caller asks for.
pub const MAX_LINES: usize = 200;
/// Builds whose output stays readable after they end.
const KEPT_BUILDS: usize = 256;
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a running build checks whether a redeploy replaced it.
const SUPERSEDED_POLL: Duration = Duration::from_millis(500);
/// How long a cancelled build may take to stop its last step before the next one starts.
const STEP_STOP_LIMIT: Duration = Duration::from_secs(10);
/// The network of apps outside a stack (containers on it cannot reach each other).
const SOLO_NETWORK: &str = "apps";

/// Marks a build log ended when dropped.
struct EndsOnDrop(Arc<BuildLog>);

impl Drop for EndsOnDrop {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Output of one build, readable while it runs.
#[derive(Default)]
pub struct BuildLog {
    lines: Mutex<Vec<String>>,
    finished: std::sync::atomic::AtomicBool,
    changed: Notify,
}

impl BuildLog {
    fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
            // Keep the tail only: a chatty build must not grow without bound.
            if lines.len() > 4 * MAX_LINES {
                let excess = lines.len() - MAX_LINES;
                lines.drain(..excess);
            }
        }
        self.changed.notify_waiters();
    }

    fn finish(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Lines from index `from` on, and whether the build has ended.
    pub fn read_from(&self, from: usize) -> (Vec<String>, bool) {
        let finished = self.finished.load(std::sync::atomic::Ordering::SeqCst);
        let lines = self
            .lines
            .lock()
            .map(|l| l.iter().skip(from).cloned().collect())
            .unwrap_or_default();
        (lines, finished)
    }

    /// Waits until a line is added or the build ends (or `timeout` passes).
    pub async fn changed(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.changed.notified()).await;
    }

    fn tail(&self) -> Vec<String> {
        let lines = self.lines.lock().map(|l| l.clone()).unwrap_or_default();
        let skip = lines.len().saturating_sub(MAX_LINES);
        lines.into_iter().skip(skip).collect()
    }
}

/// One Docker Engine, as one namespace on it.
pub struct ContainersBackend {
    socket: String,
    pub(super) namespace: String,
    docker: OnceCell<Docker>,
    store: Store,
    builds: Mutex<Vec<(String, Arc<BuildLog>)>>,
    pub(super) network_lock: tokio::sync::Mutex<()>,
    /// CPU a build may use, in thousandths of a core.
    build_cpu_millis: u32,
    /// Processes a build may run at once.
    build_pids: u32,
    /// The engine's cgroup driver, asked once.
    cgroup_driver: OnceCell<String>,
    warned_uncapped: std::sync::atomic::AtomicBool,
    /// Registries prebuilt images may be pulled from (`host[:port]`).
    allowed_registries: Vec<String>,
    /// Where the `services` capability pushes images for the cluster (`host[:port]`).
    pub(super) cluster_registry: Option<String>,
    /// Logins for registries that ask for one.
    registry_logins: Vec<crate::config::RegistryLogin>,
    /// The address of the engine's default bridge, where Swarm tasks reach this machine.
    pub(super) bridge_gateway: OnceCell<String>,
}

impl ContainersBackend {
    pub fn new(binding: &ContainersBinding, store: Store) -> anyhow::Result<Self> {
        if !valid_name(&binding.namespace) {
            anyhow::bail!(
                "containers.namespace must be 1-63 lowercase letters, digits or '-', got {:?}",
                binding.namespace
            );
        }
        Ok(Self {
            socket: binding.socket.clone(),
            namespace: binding.namespace.clone(),
            docker: OnceCell::new(),
            store,
            builds: Mutex::new(Vec::new()),
            network_lock: tokio::sync::Mutex::new(()),
            build_cpu_millis: binding.build_cpu_millis.max(100),
            build_pids: binding.build_pids.max(32),
            cgroup_driver: OnceCell::new(),
            warned_uncapped: std::sync::atomic::AtomicBool::new(false),
            allowed_registries: binding.allowed_registries.clone(),
            cluster_registry: binding.cluster_registry.clone(),
            registry_logins: binding.registry_logins.clone(),
            bridge_gateway: OnceCell::new(),
        })
    }

    /// The engine client, connected on first use (the engine may start after the host).
    pub(super) async fn docker(&self) -> Result<&Docker, CapabilityError> {
        self.docker
            .get_or_try_init(|| async {
                let docker =
                    Docker::connect_with_unix(&self.socket, 660, bollard::API_DEFAULT_VERSION)
                        .map_err(unavailable)?;
                docker.negotiate_version().await.map_err(unavailable)
            })
            .await
    }

    pub(super) fn full_name(&self, name: &str) -> Result<String, CapabilityError> {
        if !valid_name(name) {
            return Err(cap_error(
                "invalid",
                format!("`{name}` is not 1-63 lowercase letters, digits or '-'"),
            ));
        }
        Ok(format!("{}-{name}", self.namespace))
    }

    pub(super) fn full_tag(&self, tag: &str) -> Result<String, CapabilityError> {
        let (repository, version) = tag.split_once(':').unwrap_or((tag, "latest"));
        let version_ok = !version.is_empty()
            && version.len() <= 64
            && version
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !version_ok {
            return Err(cap_error("invalid", format!("`{tag}` is not a valid tag")));
        }
        Ok(format!("{}:{version}", self.full_name(repository)?))
    }

    pub(super) fn labels(
        &self,
        extra: &[(String, String)],
    ) -> Result<HashMap<String, String>, CapabilityError> {
        let mut labels = HashMap::from([(NAMESPACE_LABEL.to_string(), self.namespace.clone())]);
        for (key, value) in extra {
            if !valid_name(key) || value.len() > 128 {
                return Err(cap_error("invalid", format!("label `{key}` is not valid")));
            }
            labels.insert(format!("{LABEL_PREFIX}{key}"), value.clone());
        }
        Ok(labels)
    }

    /// The output of the build of `context_ref`, while it runs and for a while after.
    pub fn build_log(&self, context_ref: &str) -> Option<Arc<BuildLog>> {
        let builds = self.builds.lock().ok()?;
        builds
            .iter()
            .rev()
            .find(|(r, _)| r == context_ref)
            .map(|(_, log)| log.clone())
    }

    fn new_build_log(&self, context_ref: &str) -> Arc<BuildLog> {
        let log = Arc::new(BuildLog::default());
        if let Ok(mut builds) = self.builds.lock() {
            builds.push((context_ref.to_string(), log.clone()));
            if builds.len() > KEPT_BUILDS {
                let excess = builds.len() - KEPT_BUILDS;
                builds.drain(..excess);
            }
        }
        log
    }

    async fn build(
        &self,
        context_ref: &str,
        tag: &str,
        memory_bytes: u64,
        deadline: Duration,
    ) -> Result<Vec<String>, CapabilityError> {
        let tag = self.full_tag(tag)?;
        let (resource, generation) = parse_context_ref(context_ref)?;
        let context = self
            .store
            .deploy_context(resource, generation)
            .await
            .map_err(|e| cap_error("unavailable", format!("metadata store: {e}")))?
            .ok_or_else(|| cap_error("not-found", format!("no build context `{context_ref}`")))?;
        let docker = self.docker().await?;
        let log = self.new_build_log(context_ref);
        // A build whose caller goes away (a redeploy superseded it) still reads as ended.
        let _ended = EndsOnDrop(log.clone());
        let labels = serde_json::to_string(&self.labels(&[])?).map_err(unavailable)?;
        let memory = memory_bytes.to_string();
        let cgroup = self.build_cgroup(docker, context_ref).await;
        let query = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("dockerfile", "Dockerfile")
                .append_pair("t", &tag)
                .append_pair("rm", "1")
                .append_pair("forcerm", "1")
                .append_pair("pull", "0")
                .append_pair("memory", &memory)
                .append_pair("memswap", &memory)
                .append_pair("cpuperiod", &CPU_PERIOD_MICROS.to_string())
                .append_pair("cpuquota", &cpu_quota(self.build_cpu_millis).to_string())
                // `RUN` steps get no network: only the engine's own namespace has one, and
                // the Dockerfile check refuses what would make the engine fetch there.
                .append_pair("networkmode", "none")
                .append_pair("labels", &labels);
            if let Some(cgroup) = &cgroup {
                query.append_pair("cgroupparent", &cgroup.parent);
            }
            query.finish()
        };
        let run = async {
            let mut partial = String::new();
            let mut failed = false;
            let sent = super::engine_build::build(&self.socket, &query, context, |message| {
                if let Some(text) = message["stream"].as_str() {
                    partial.push_str(text);
                    while let Some(at) = partial.find('\n') {
                        let line: String = partial.drain(..=at).collect();
                        log.push(line.trim_end().to_string());
                    }
                }
                let error = message["errorDetail"]["message"]
                    .as_str()
                    .or_else(|| message["message"].as_str());
                if let Some(error) = error {
                    log.push(error.to_string());
                    failed = true;
                }
            })
            .await;
            if !partial.is_empty() {
                log.push(partial);
            }
            if let Err(e) = &sent {
                log.push(e.clone());
            }
            if failed || sent.is_err() {
                Err(())
            } else {
                Ok(())
            }
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(deadline, run) => outcome,
            // Dropping the request makes the engine stop the build (it kills the step
            // running); its steps are waited out before this returns and the app's next
            // build may start.
            () = self.superseded(resource, generation) => {
                if let Some(cgroup) = &cgroup {
                    cgroup.wait_empty(STEP_STOP_LIMIT).await;
                }
                log.push("Build cancelled: a newer deploy of this app replaced it.".into());
                return Err(cap_error("cancelled", log.tail().join("\n")));
            }
        };
        match outcome {
            Ok(Ok(())) => Ok(log.tail()),
            Ok(Err(())) => Err(cap_error("build-failed", log.tail().join("\n"))),
            Err(_) => Err(cap_error("deadline", log.tail().join("\n"))),
        }
    }

    /// A pids-capped cgroup for one build, when the engine manages cgroups itself
    /// (cgroupfs driver) and this host may write them; otherwise the build runs without a
    /// process cap, said once in the log.
    async fn build_cgroup(
        &self,
        docker: &Docker,
        context_ref: &str,
    ) -> Option<super::build_cgroup::BuildCgroup> {
        let driver = self
            .cgroup_driver
            .get_or_init(|| async {
                docker
                    .info()
                    .await
                    .ok()
                    .and_then(|info| info.cgroup_driver)
                    .map(|driver| format!("{driver:?}").to_ascii_lowercase())
                    .unwrap_or_default()
            })
            .await;
        let made = if driver.contains("cgroupfs") {
            super::build_cgroup::BuildCgroup::create(
                &format!("{}-{context_ref}", self.namespace),
                self.build_pids,
            )
            .map_err(|e| e.to_string())
        } else {
            Err(format!(
                "the engine's cgroup driver is {driver:?}, not cgroupfs"
            ))
        };
        match made {
            Ok(cgroup) => Some(cgroup),
            Err(e) => {
                if !self
                    .warned_uncapped
                    .swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(error = %e, "image builds run without a process cap");
                }
                None
            }
        }
    }

    /// Resolves once a newer generation of the app was asked for, or the app is gone; the
    /// metadata store says so whichever host replica took the redeploy.
    async fn superseded(&self, resource: Uuid, generation: i32) {
        loop {
            tokio::time::sleep(SUPERSEDED_POLL).await;
            match self.store.deployment_generation(resource).await {
                Ok(Some(newest)) if newest <= generation => {}
                Ok(_) => return,
                // The store is unreachable: keep building; the deadline still holds.
                Err(_) => {}
            }
        }
    }

    /// The login for `registry`, for the engine (pulls, pushes, the cluster's pulls).
    pub(super) fn credentials(&self, registry: &str) -> Option<bollard::auth::DockerCredentials> {
        let login = self.login(registry)?;
        Some(bollard::auth::DockerCredentials {
            username: Some(login.username.clone()),
            password: Some(login.password.expose().to_string()),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        })
    }

    /// The login for `registry`, if the operator gave one.
    pub(super) fn login(&self, registry: &str) -> Option<&crate::config::RegistryLogin> {
        self.registry_logins.iter().find(|l| l.registry == registry)
    }

    /// Why `reference` may not be pulled here, if it may not.
    pub fn refuse_image(&self, reference: &str) -> Option<String> {
        self.allowed_image(reference).err()
    }

    /// `reference`, parsed, if it names an image on a registry the operator allows.
    fn allowed_image(&self, reference: &str) -> Result<ImageReference, String> {
        let image = ImageReference::parse(reference)?;
        if self.allowed_registries.is_empty() {
            return Err("this host deploys no prebuilt images (no registry is allowed)".into());
        }
        if !self.allowed_registries.contains(&image.registry) {
            return Err(format!(
                "registry `{}` is not allowed here; allowed: {}",
                image.registry,
                self.allowed_registries.join(", ")
            ));
        }
        Ok(image)
    }

    async fn pull(&self, reference: &str, tag: &str) -> Result<String, CapabilityError> {
        let image = self
            .allowed_image(reference)
            .map_err(|why| cap_error("registry-not-allowed", why))?;
        let tag = self.full_tag(tag)?;
        let docker = self.docker().await?;
        let options = CreateImageOptionsBuilder::default()
            .from_image(&image.repository)
            .tag(&image.version)
            .build();
        let login = self.credentials(&image.registry);
        let mut progress = docker.create_image(Some(options), None, login);
        let mut said = Vec::new();
        while let Some(step) = progress.next().await {
            match step {
                Ok(info) => said.extend(info.status),
                Err(e) => {
                    said.push(e.to_string());
                    return Err(cap_error("pull-failed", said.join("\n")));
                }
            }
        }
        let pulled = image.pull_name();
        let inspect = docker
            .inspect_image(&pulled)
            .await
            .map_err(|e| cap_error("pull-failed", e.to_string()))?;
        let pinned = inspect
            .repo_digests
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.starts_with(&format!("{}@", image.repository)))
            .ok_or_else(|| {
                cap_error("pull-failed", format!("{reference} has no registry digest"))
            })?;
        // Tag the exact image pulled, so the app runs it even if the tag moves upstream.
        let (repository, version) = tag.split_once(':').unwrap_or((&tag, "latest"));
        let options = TagImageOptionsBuilder::default()
            .repo(repository)
            .tag(version)
            .build();
        docker
            .tag_image(&pinned, Some(options))
            .await
            .map_err(engine_error)?;
        Ok(pinned)
    }

    async fn run(&self, request: RunRequest) -> Result<Container, CapabilityError> {
        let name = self.full_name(&request.name)?;
        let image = self.full_tag(&request.image)?;
        let docker = self.docker().await?;
        self.remove(&request.name).await?;
        let port = format!("{}/tcp", request.port);
        // Apps outside a stack share one network on which they cannot reach each other.
        let network = match &request.network {
            Some(network) => self.full_name(network)?,
            None => {
                self.create_network(&self.full_name(SOLO_NETWORK)?, false)
                    .await?;
                self.full_name(SOLO_NETWORK)?
            }
        };
        let memory = i64::try_from(request.memory_bytes).unwrap_or(i64::MAX);
        let host_config = HostConfig {
            memory: Some(memory),
            // No swap: the memory cap is the whole allowance.
            memory_swap: Some(memory),
            nano_cpus: Some(i64::from(request.cpu_millis) * 1_000_000),
            pids_limit: Some(i64::from(request.pids.max(16))),
            port_bindings: Some(HashMap::from([(
                port.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(String::new()),
                }]),
            )])),
            privileged: Some(false),
            cap_drop: Some(vec!["ALL".into()]),
            // What ordinary images need to start (switching users, owning their files).
            cap_add: Some(
                [
                    "CHOWN",
                    "DAC_OVERRIDE",
                    "FOWNER",
                    "SETGID",
                    "SETUID",
                    "NET_BIND_SERVICE",
                    "KILL",
                ]
                .map(String::from)
                .to_vec(),
            ),
            security_opt: Some(vec!["no-new-privileges:true".into()]),
            extra_hosts: Some(vec!["host.docker.internal:host-gateway".into()]),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), "1m".to_string()),
                    ("max-file".to_string(), "2".to_string()),
                ])),
            }),
            network_mode: Some(network.clone()),
            ..Default::default()
        };
        let networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.clone(),
                EndpointSettings {
                    aliases: request.hostname.clone().map(|h| vec![h]),
                    ..Default::default()
                },
            )])),
        });
        let body = ContainerCreateBody {
            image: Some(image),
            env: Some(
                request
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            labels: Some(self.labels(&request.labels)?),
            exposed_ports: Some(vec![port]),
            hostname: request.hostname.clone(),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        docker
            .create_container(Some(options), body)
            .await
            .map_err(engine_error)?;
        docker
            .start_container(
                &name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(start_error)?;
        self.inspect(&request.name).await?.ok_or_else(|| {
            cap_error(
                "not-found",
                format!("container `{}` vanished", request.name),
            )
        })
    }

    async fn keep_restarting(&self, name: &str, max_retries: u32) -> Result<(), CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        let update = bollard::models::ContainerUpdateBody {
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ON_FAILURE),
                maximum_retry_count: Some(i64::from(max_retries.min(100))),
            }),
            ..Default::default()
        };
        docker
            .update_container(&full, update)
            .await
            .map_err(engine_error)
    }

    async fn inspect(&self, name: &str) -> Result<Option<Container>, CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        let info = match docker
            .inspect_container(&full, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(engine_error(e)),
        };
        if info
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(NAMESPACE_LABEL))
            != Some(&self.namespace)
        {
            return Ok(None);
        }
        let state = info.state.unwrap_or_default();
        let address = info
            .network_settings
            .and_then(|n| n.ports)
            .into_iter()
            .flat_map(|ports| ports.into_values())
            .flatten()
            .flatten()
            .find_map(|binding| {
                let port = binding.host_port.filter(|p| !p.is_empty())?;
                Some(format!("127.0.0.1:{port}"))
            });
        Ok(Some(Container {
            name: name.to_string(),
            state: state
                .status
                .map_or(ContainerState::Unknown, container_state),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            restart_count: u32::try_from(info.restart_count.unwrap_or(0)).unwrap_or(u32::MAX),
            address,
        }))
    }

    async fn probe(&self, name: &str) -> Result<bool, CapabilityError> {
        let Some(address) = self.inspect(name).await?.and_then(|c| c.address) else {
            return Ok(false);
        };
        Ok(tokio::time::timeout(PROBE_TIMEOUT, answers_http(&address))
            .await
            .unwrap_or(false))
    }

    /// The last `tail` lines `name` wrote (stdout and stderr).
    pub async fn logs(&self, name: &str, tail: u32) -> Result<Vec<String>, CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail.min(MAX_LINES as u32).to_string())
            .build();
        let mut stream = docker.logs(&full, Some(options));
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(output) => text.push_str(&output.to_string()),
                Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                Err(e) => return Err(engine_error(e)),
            }
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Follows `name`'s output from now on: each chunk as it is written.
    pub async fn follow(
        &self,
        name: &str,
    ) -> Result<impl futures_util::Stream<Item = String> + use<>, CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?.clone();
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail("0")
            .build();
        Ok(docker
            .logs(&full, Some(options))
            .take_while(|item| std::future::ready(item.is_ok()))
            .filter_map(|item| std::future::ready(item.ok().map(|o| o.to_string()))))
    }

    async fn find(&self, label: &str, value: &str) -> Result<Vec<String>, CapabilityError> {
        let docker = self.docker().await?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{NAMESPACE_LABEL}={}", self.namespace),
                format!("{LABEL_PREFIX}{label}={value}"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let prefix = format!("/{}-", self.namespace);
        Ok(docker
            .list_containers(Some(options))
            .await
            .map_err(engine_error)?
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    async fn remove(&self, name: &str) -> Result<(), CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(&full, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }

    async fn remove_images(&self, prefix: &str) -> Result<(), CapabilityError> {
        let full_prefix = self.full_name(prefix)?;
        let docker = self.docker().await?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{NAMESPACE_LABEL}={}", self.namespace)],
        )]);
        let options = ListImagesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut images = docker
            .list_images(Some(options))
            .await
            .map_err(engine_error)?;
        // Pulled images carry their publisher's labels, not ours: find them by name.
        let by_name = HashMap::from([("reference".to_string(), vec![format!("{full_prefix}*")])]);
        images.extend(
            docker
                .list_images(Some(
                    ListImagesOptionsBuilder::default()
                        .filters(&by_name)
                        .build(),
                ))
                .await
                .map_err(engine_error)?,
        );
        // `app-1` covers `app-1:latest` and `app-1-2:latest`, never `app-10`.
        let matches = |tag: &str| {
            let repository = tag.split(':').next().unwrap_or(tag);
            repository == full_prefix
                || repository
                    .strip_prefix(&full_prefix)
                    .is_some_and(|rest| rest.starts_with('-'))
        };
        for tag in images
            .into_iter()
            .flat_map(|i| i.repo_tags)
            .filter(|t| matches(t))
        {
            let options = RemoveImageOptionsBuilder::default().force(true).build();
            match docker.remove_image(&tag, Some(options), None).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(engine_error(e)),
            }
        }
        Ok(())
    }

    async fn ensure_network(&self, name: &str) -> Result<(), CapabilityError> {
        if name == SOLO_NETWORK {
            return Err(cap_error("invalid", format!("`{name}` is reserved")));
        }
        self.create_network(&self.full_name(name)?, true).await
    }

    /// Creates a bridge network unless it exists. `linked`: whether its containers may
    /// reach each other (a stack's services do; unrelated apps do not).
    async fn create_network(&self, full: &str, linked: bool) -> Result<(), CapabilityError> {
        let docker = self.docker().await?;
        // Engines before API 1.44 accept a second network of the same name: look first,
        // one creation at a time.
        let _one_at_a_time = self.network_lock.lock().await;
        match docker
            .inspect_network(
                full,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(existing) => {
                let guarded = existing
                    .options
                    .as_ref()
                    .and_then(|options| options.get(BRIDGE_NAME_OPTION))
                    .is_some_and(|bridge| bridge.starts_with(APP_BRIDGE_PREFIX));
                if guarded {
                    return Ok(());
                }
                // Made before app bridges had guarded names: replaced once nothing uses it.
                if let Err(e) = docker.remove_network(full).await {
                    tracing::warn!(network = full, error = %e, "an app network outside the firewall's reach is still in use");
                    return Ok(());
                }
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(e)),
        }
        let request = NetworkCreateRequest {
            name: full.to_string(),
            driver: Some("bridge".into()),
            labels: Some(self.labels(&[])?),
            options: Some(HashMap::from([
                (
                    "com.docker.network.bridge.enable_icc".to_string(),
                    linked.to_string(),
                ),
                (BRIDGE_NAME_OPTION.to_string(), app_bridge_name(full)),
            ])),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<(), CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        match docker.remove_network(&full).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Still in use: the last service to leave removes it.
            Err(DockerError::DockerResponseServerError {
                status_code: 403 | 409,
                ..
            }) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }
}

/// `<resource uuid>.<generation>`.
/// The engine option naming a network's Linux bridge.
const BRIDGE_NAME_OPTION: &str = "com.docker.network.bridge.name";
/// Every app network's bridge is named `inapp<10 hex>`: the host firewall
/// (`scripts/lib.sh`, `guard_app_networks`) matches interfaces `inapp+`.
pub const APP_BRIDGE_PREFIX: &str = "inapp";

/// The bridge of the network `full`: Linux allows 15 characters.
fn app_bridge_name(full: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(full.as_bytes());
    format!("{APP_BRIDGE_PREFIX}{}", &hex::encode(digest)[..10])
}

/// The CFS period builds are measured in (the engine's default).
const CPU_PERIOD_MICROS: i32 = 100_000;

/// The CFS quota for `millis` thousandths of a core.
fn cpu_quota(millis: u32) -> i32 {
    i32::try_from(u64::from(millis) * u64::from(CPU_PERIOD_MICROS.unsigned_abs()) / 1000)
        .unwrap_or(i32::MAX)
}

pub fn context_ref(resource: Uuid, generation: i32) -> String {
    format!("{}.{generation}", resource.simple())
}

fn parse_context_ref(context_ref: &str) -> Result<(Uuid, i32), CapabilityError> {
    let invalid = || {
        cap_error(
            "invalid",
            format!("`{context_ref}` is not a context reference"),
        )
    };
    let (resource, generation) = context_ref.split_once('.').ok_or_else(invalid)?;
    Ok((
        Uuid::parse_str(resource).map_err(|_| invalid())?,
        generation.parse().map_err(|_| invalid())?,
    ))
}

/// Lowercase letters, digits and '-', 1-63 characters, not starting with '-'.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether an HTTP server answers at `address` (any status line counts).
pub(super) async fn answers_http(address: &str) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
        return false;
    };
    let request = b"GET / HTTP/1.0\r\nHost: localhost\r\nUser-Agent: instanode-probe\r\n\r\n";
    if stream.write_all(request).await.is_err() {
        return false;
    }
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).await.is_ok() && &head == b"HTTP/"
}

pub(super) fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The engine's status word as the contract's state.
fn container_state(status: ContainerStateStatusEnum) -> ContainerState {
    match status {
        ContainerStateStatusEnum::CREATED => ContainerState::Created,
        ContainerStateStatusEnum::RUNNING => ContainerState::Running,
        ContainerStateStatusEnum::PAUSED => ContainerState::Paused,
        ContainerStateStatusEnum::RESTARTING => ContainerState::Restarting,
        ContainerStateStatusEnum::REMOVING => ContainerState::Removing,
        ContainerStateStatusEnum::EXITED => ContainerState::Exited,
        ContainerStateStatusEnum::DEAD => ContainerState::Dead,
        _ => ContainerState::Unknown,
    }
}

pub(super) fn engine_error(e: DockerError) -> CapabilityError {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } if status_code < 500 => cap_error(&format!("http-{status_code}"), message),
        other => unavailable(other),
    }
}

/// What the engine says when the image's own command cannot run (missing, not executable,
/// built for another CPU): the app's fault, told apart by the `start-failed` code so the
/// provider can say so instead of blaming the engine.
const START_FAILURES: [&str; 5] = [
    "executable file not found",
    "no such file or directory",
    "permission denied",
    "exec format error",
    "not a directory",
];

fn start_error(e: DockerError) -> CapabilityError {
    if let DockerError::DockerResponseServerError { message, .. } = &e
        && message.contains("exec")
        && START_FAILURES.iter().any(|m| message.contains(m))
    {
        return cap_error("start-failed", message);
    }
    engine_error(e)
}

/// A prebuilt image's reference, split the way the engine pulls it.
#[derive(Debug, PartialEq, Eq)]
struct ImageReference {
    /// `host[:port]`, or `docker.io` when the reference names none.
    registry: String,
    /// Everything before the tag or digest, e.g. `127.0.0.1:5000/team/site`.
    repository: String,
    /// The tag (`1.2`) or digest (`sha256:…`).
    version: String,
    by_digest: bool,
}

impl ImageReference {
    fn parse(reference: &str) -> Result<Self, String> {
        let valid = !reference.is_empty()
            && reference.len() <= 255
            && reference.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"._-/:@".contains(&b)
                    || b.is_ascii_uppercase()
            });
        if !valid {
            return Err(format!(
                "`{reference}` is not an image reference like registry.example.com/team/app:1.0"
            ));
        }
        let (repository, version, by_digest) = match reference.split_once('@') {
            Some((repository, digest)) => {
                let hex = digest.strip_prefix("sha256:").unwrap_or_default();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(format!("`{digest}` is not a sha256 digest"));
                }
                (repository.to_string(), digest.to_string(), true)
            }
            None => {
                // A colon after the last slash starts the tag; one before it is a port.
                let last = reference.rfind('/').map_or(0, |i| i + 1);
                match reference[last..].split_once(':') {
                    Some((name, tag)) if !tag.is_empty() => (
                        format!("{}{name}", &reference[..last]),
                        tag.to_string(),
                        false,
                    ),
                    _ => (reference.to_string(), "latest".to_string(), false),
                }
            }
        };
        let first = repository.split('/').next().unwrap_or_default();
        let registry = if repository.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            first.to_string()
        } else {
            "docker.io".to_string()
        };
        if repository.is_empty() || repository.ends_with('/') || repository.contains("//") {
            return Err(format!("`{reference}` names no repository"));
        }
        Ok(Self {
            registry,
            repository,
            version,
            by_digest,
        })
    }

    /// The name the engine knows the pulled image by.
    fn pull_name(&self) -> String {
        let separator = if self.by_digest { '@' } else { ':' };
        format!("{}{separator}{}", self.repository, self.version)
    }
}

fn unavailable(e: impl std::fmt::Display) -> CapabilityError {
    cap_error("unavailable", format!("container engine: {e}"))
}

impl HostState {
    pub(super) fn containers(&self) -> Result<&ContainersBackend, CapabilityError> {
        self.bindings
            .containers
            .as_ref()
            .ok_or_else(|| cap_error("not-granted", "containers is not granted"))
    }
}

impl Host for HostState {
    async fn build(
        &mut self,
        context_ref: String,
        tag: String,
        memory_bytes: u64,
        deadline_seconds: u32,
    ) -> Result<Vec<String>, CapabilityError> {
        let deadline = Duration::from_secs(u64::from(deadline_seconds.clamp(1, 3600)));
        self.containers()?
            .build(&context_ref, &tag, memory_bytes, deadline)
            .await
    }

    async fn pull(&mut self, reference: String, tag: String) -> Result<String, CapabilityError> {
        self.containers()?.pull(&reference, &tag).await
    }

    async fn run(&mut self, request: RunRequest) -> Result<Container, CapabilityError> {
        self.containers()?.run(request).await
    }

    async fn keep_restarting(
        &mut self,
        name: String,
        max_retries: u32,
    ) -> Result<(), CapabilityError> {
        self.containers()?.keep_restarting(&name, max_retries).await
    }

    async fn inspect(&mut self, name: String) -> Result<Option<Container>, CapabilityError> {
        self.containers()?.inspect(&name).await
    }

    async fn probe(&mut self, name: String) -> Result<bool, CapabilityError> {
        self.containers()?.probe(&name).await
    }

    async fn logs(&mut self, name: String, tail: u32) -> Result<Vec<String>, CapabilityError> {
        self.containers()?.logs(&name, tail).await
    }

    async fn find(&mut self, label: String, value: String) -> Result<Vec<String>, CapabilityError> {
        self.containers()?.find(&label, &value).await
    }

    async fn remove(&mut self, name: String) -> Result<(), CapabilityError> {
        self.containers()?.remove(&name).await
    }

    async fn remove_images(&mut self, prefix: String) -> Result<(), CapabilityError> {
        self.containers()?.remove_images(&prefix).await
    }

    async fn ensure_network(&mut self, name: String) -> Result<(), CapabilityError> {
        self.containers()?.ensure_network(&name).await
    }

    async fn remove_network(&mut self, name: String) -> Result<(), CapabilityError> {
        self.containers()?.remove_network(&name).await
    }
}

#[cfg(test)]
mod tests {
    use super::ImageReference;

    #[test]
    fn image_references_name_their_registry_and_version() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let by_digest =
            ImageReference::parse(&format!("127.0.0.1:5000/team/site@{digest}")).unwrap();
        assert_eq!(by_digest.registry, "127.0.0.1:5000");
        assert_eq!(by_digest.repository, "127.0.0.1:5000/team/site");
        assert_eq!(
            by_digest.pull_name(),
            format!("127.0.0.1:5000/team/site@{digest}")
        );
        let tagged = ImageReference::parse("registry.example.com/site:1.2").unwrap();
        assert_eq!(
            (tagged.registry.as_str(), tagged.version.as_str()),
            ("registry.example.com", "1.2")
        );
        let bare = ImageReference::parse("localhost:5000/site").unwrap();
        assert_eq!(
            (bare.registry.as_str(), bare.version.as_str()),
            ("localhost:5000", "latest")
        );
        assert_eq!(
            ImageReference::parse("nginx:1").unwrap().registry,
            "docker.io"
        );
        assert_eq!(
            ImageReference::parse("team/app").unwrap().registry,
            "docker.io"
        );
        for bad in ["", "a b", "x/y@sha256:12", "reg.io/", "reg.io//x", "x;rm"] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }
}
