//! `services`: replicated services on the Swarm of the engine behind `containers`.
//!
//! Names, labels and limits follow `containers`: every name is prefixed with the binding's
//! namespace and everything carries its label. An image is pushed to the operator's cluster
//! registry and the service runs it by digest, so every node runs the same bytes. Each task
//! publishes the app's port in host mode on a port its node picks (the routing mesh needs
//! IPVS, which not every kernel has); the proxy routes to every running task
//! ([`ContainersBackend::service_endpoints`]). Services resolve one another by DNS
//! round robin on their overlay network for the same reason.

use std::collections::HashMap;
use std::net::SocketAddr;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Limit, NetworkAttachmentConfig, NetworkCreateRequest,
    ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigOrderEnum, Task, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecPrivileges, TaskSpecLogDriver, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState as EngineTaskState,
};
use bollard::query_parameters::{
    InspectContainerOptions, ListNodesOptions, ListServicesOptionsBuilder, ListTasksOptionsBuilder,
    LogsOptionsBuilder, PushImageOptionsBuilder, RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;

use super::containers::{
    ContainersBackend, LABEL_PREFIX, MAX_LINES, NAMESPACE_LABEL, PROBE_TIMEOUT, answers_http,
    engine_error, is_not_found,
};
use super::{HostState, cap_error};
use crate::contract::instanode::provider::services::{
    Host, Service, ServiceRequest, Task as ServiceTask, TaskState,
};
use crate::contract::instanode::provider::types::CapabilityError;

/// How long removing a service waits for its tasks to stop: their grace period, and slack.
const TASKS_STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Nanoseconds, the unit of the engine's durations.
const SECOND_NS: i64 = 1_000_000_000;

impl ContainersBackend {
    fn cluster_registry(&self) -> Result<&str, CapabilityError> {
        self.cluster_registry
            .as_deref()
            .ok_or_else(|| cap_error("unavailable", "no cluster_registry is configured"))
    }

    /// The service named `full`, if it is one of this namespace's.
    async fn own_service(
        &self,
        full: &str,
    ) -> Result<Option<bollard::models::Service>, CapabilityError> {
        let docker = self.docker().await?;
        match docker.inspect_service(full, None).await {
            Ok(service) => {
                let ours = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.labels.as_ref())
                    .and_then(|l| l.get(NAMESPACE_LABEL))
                    == Some(&self.namespace);
                Ok(ours.then_some(service))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// Pushes local image `tag` to the cluster registry and answers the reference by
    /// digest. The registry's tag is removed from this engine again: only the service
    /// names it.
    async fn push(&self, tag: &str) -> Result<String, CapabilityError> {
        let local = self.full_tag(tag)?;
        let registry = self.cluster_registry()?;
        let (repository, version) = local.split_once(':').unwrap_or((&local, "latest"));
        let remote = format!("{registry}/{repository}");
        let docker = self.docker().await?;
        docker
            .tag_image(
                &local,
                Some(
                    TagImageOptionsBuilder::default()
                        .repo(&remote)
                        .tag(version)
                        .build(),
                ),
            )
            .await
            .map_err(engine_error)?;
        let mut progress = docker.push_image(
            &remote,
            Some(PushImageOptionsBuilder::default().tag(version).build()),
            self.credentials(registry),
        );
        let mut failure = None;
        while let Some(step) = progress.next().await {
            if let Err(e) = step {
                failure = Some(e.to_string());
                break;
            }
        }
        let pinned = match failure {
            Some(why) => Err(cap_error("push-failed", why)),
            None => docker
                .inspect_image(&format!("{remote}:{version}"))
                .await
                .map_err(engine_error)?
                .repo_digests
                .unwrap_or_default()
                .into_iter()
                .find(|d| d.starts_with(&format!("{remote}@")))
                .ok_or_else(|| cap_error("push-failed", format!("{remote} has no digest"))),
        };
        let untag = RemoveImageOptionsBuilder::default().noprune(true).build();
        let _ = docker
            .remove_image(&format!("{remote}:{version}"), Some(untag), None)
            .await;
        pinned
    }

    /// Deletes the manifest `pinned` (`registry/repository@sha256:…`) from the cluster
    /// registry; its layers go at the registry's next garbage collection.
    async fn delete_pushed(&self, pinned: &str) -> Result<(), CapabilityError> {
        let registry = self.cluster_registry()?;
        let Some((repository, digest)) = pinned
            .strip_prefix(&format!("{registry}/"))
            .and_then(|rest| rest.split_once('@'))
        else {
            // Not pushed by this host: nothing of ours to delete.
            return Ok(());
        };
        let url = format!("http://{registry}/v2/{repository}/manifests/{digest}");
        let mut request = reqwest::Client::new().delete(&url);
        if let Some(login) = self.login(registry) {
            request = request.basic_auth(&login.username, Some(login.password.expose()));
        }
        let answer = request
            .send()
            .await
            .map_err(|e| cap_error("unavailable", format!("cluster registry: {e}")))?;
        match answer.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(cap_error(
                "registry-refused",
                format!("deleting {pinned}: the registry answered {status}"),
            )),
        }
    }

    /// The address of the engine's default bridge: tasks reach this machine's backends
    /// there as `host.docker.internal`, as containers do.
    async fn bridge_gateway(&self) -> Result<&str, CapabilityError> {
        let docker = self.docker().await?;
        self.bridge_gateway
            .get_or_try_init(|| async {
                docker
                    .inspect_network(
                        "bridge",
                        None::<bollard::query_parameters::InspectNetworkOptions>,
                    )
                    .await
                    .map_err(engine_error)?
                    .ipam
                    .and_then(|ipam| ipam.config)
                    .into_iter()
                    .flatten()
                    .find_map(|c| c.gateway)
                    .ok_or_else(|| cap_error("unavailable", "the default bridge has no gateway"))
            })
            .await
            .map(String::as_str)
    }

    async fn create_service(&self, request: ServiceRequest) -> Result<Service, CapabilityError> {
        let full = self.full_name(&request.name)?;
        let network = request
            .network
            .as_deref()
            .map(|n| self.full_name(n))
            .transpose()?;
        let labels = self.labels(&request.labels)?;
        let gateway = self.bridge_gateway().await?.to_string();
        self.remove_service(&request.name).await?;
        let pinned = self.push(&request.image).await?;
        let memory = i64::try_from(request.memory_bytes).unwrap_or(i64::MAX);
        let container = TaskSpecContainerSpec {
            image: Some(pinned.clone()),
            labels: Some(labels.clone()),
            env: Some(
                request
                    .env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect(),
            ),
            hosts: Some(vec![format!("{gateway} host.docker.internal")]),
            privileges: Some(TaskSpecContainerSpecPrivileges {
                no_new_privileges: Some(true),
                ..Default::default()
            }),
            capability_drop: Some(vec!["ALL".into()]),
            capability_add: Some(
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
            stop_grace_period: Some(10 * SECOND_NS),
            ..Default::default()
        };
        let spec = ServiceSpec {
            name: Some(full.clone()),
            labels: Some(labels),
            task_template: Some(TaskSpec {
                container_spec: Some(container),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: Some(i64::from(request.cpu_millis) * 1_000_000),
                        memory_bytes: Some(memory),
                        pids: Some(i64::from(request.pids.max(16))),
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
                    delay: Some(SECOND_NS),
                    max_attempts: Some(i64::from(request.max_restarts.min(100))),
                    window: None,
                }),
                networks: network.map(|target| {
                    vec![NetworkAttachmentConfig {
                        target: Some(target),
                        aliases: request.hostname.clone().map(|h| vec![h]),
                        driver_opts: None,
                    }]
                }),
                log_driver: Some(TaskSpecLogDriver {
                    name: Some("json-file".into()),
                    options: Some(HashMap::from([
                        ("max-size".to_string(), "1m".to_string()),
                        ("max-file".to_string(), "2".to_string()),
                    ])),
                }),
                ..Default::default()
            }),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(i64::from(request.replicas.clamp(1, 64))),
                }),
                ..Default::default()
            }),
            // An operator's `docker service update` replaces tasks one at a time, each
            // new one before its predecessor stops.
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism: Some(1),
                order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
                ..Default::default()
            }),
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ports: Some(vec![EndpointPortConfig {
                    protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                    target_port: Some(i64::from(request.port)),
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]),
            }),
            ..Default::default()
        };
        let docker = self.docker().await?;
        // With the registry's login, so every node can pull the image.
        let login = self.credentials(self.cluster_registry()?);
        if let Err(e) = docker.create_service(spec, login).await {
            let _ = self.delete_pushed(&pinned).await;
            return Err(engine_error(e));
        }
        self.inspect_service(&request.name)
            .await?
            .ok_or_else(|| cap_error("not-found", format!("service `{full}` vanished")))
    }

    /// The tasks of service `full`, newest first.
    async fn tasks(&self, full: &str) -> Result<Vec<Task>, CapabilityError> {
        let docker = self.docker().await?;
        let filters = HashMap::from([("service".to_string(), vec![full.to_string()])]);
        let mut tasks = docker
            .list_tasks(Some(
                ListTasksOptionsBuilder::default().filters(&filters).build(),
            ))
            .await
            .map_err(engine_error)?;
        // The filter matches name prefixes too: keep this service's own.
        let id = self
            .own_service(full)
            .await?
            .and_then(|s| s.id)
            .unwrap_or_default();
        tasks.retain(|t| t.service_id.as_deref() == Some(id.as_str()));
        tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(tasks)
    }

    async fn inspect_service(&self, name: &str) -> Result<Option<Service>, CapabilityError> {
        let full = self.full_name(name)?;
        if self.own_service(&full).await?.is_none() {
            return Ok(None);
        }
        let docker = self.docker().await?;
        let mut tasks = Vec::new();
        for task in self.tasks(&full).await? {
            let status = task.status.unwrap_or_default();
            let container = status.container_status.unwrap_or_default();
            // Only the engine the container ran on knows it was killed for its memory.
            let oom_killed = match container.container_id.as_deref() {
                Some(id) if !id.is_empty() => docker
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await
                    .ok()
                    .and_then(|c| c.state)
                    .and_then(|s| s.oom_killed)
                    .unwrap_or(false),
                _ => false,
            };
            tasks.push(ServiceTask {
                state: status.state.map_or(TaskState::Unknown, task_state),
                desired_running: task.desired_state == Some(EngineTaskState::RUNNING),
                exit_code: container.exit_code,
                oom_killed,
                message: status
                    .err
                    .filter(|e| !e.is_empty())
                    .or(status.message)
                    .unwrap_or_default(),
            });
        }
        Ok(Some(Service {
            name: name.to_string(),
            tasks,
        }))
    }

    /// Where the running tasks of service `name` answer: each task's node address and the
    /// port it published there. The proxy routes an app on a service here.
    pub async fn service_endpoints(&self, name: &str) -> Result<Vec<SocketAddr>, CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        let nodes: HashMap<String, String> = docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(engine_error)?
            .into_iter()
            .filter_map(|n| Some((n.id?, n.status?.addr?)))
            .collect();
        let mut endpoints = Vec::new();
        for task in self.tasks(&full).await? {
            let status = task.status.unwrap_or_default();
            let running = status.state == Some(EngineTaskState::RUNNING)
                && task.desired_state == Some(EngineTaskState::RUNNING);
            let Some(node) = task.node_id.as_ref().and_then(|id| nodes.get(id)) else {
                continue;
            };
            let ports = status.port_status.and_then(|p| p.ports).unwrap_or_default();
            for port in ports.into_iter().filter(|_| running) {
                if let Some(published) = port.published_port.and_then(|p| u16::try_from(p).ok())
                    && let Ok(ip) = node.parse::<std::net::IpAddr>()
                {
                    endpoints.push(SocketAddr::new(ip, published));
                    break;
                }
            }
        }
        Ok(endpoints)
    }

    async fn serving(&self, name: &str) -> Result<u32, CapabilityError> {
        let mut answering = 0;
        for endpoint in self.service_endpoints(name).await? {
            let address = endpoint.to_string();
            if tokio::time::timeout(PROBE_TIMEOUT, answers_http(&address))
                .await
                .unwrap_or(false)
            {
                answering += 1;
            }
        }
        Ok(answering)
    }

    async fn service_logs(&self, name: &str, tail: u32) -> Result<Vec<String>, CapabilityError> {
        let full = self.full_name(name)?;
        if self.own_service(&full).await?.is_none() {
            return Ok(Vec::new());
        }
        let docker = self.docker().await?;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail.min(MAX_LINES as u32).to_string())
            .build();
        let mut stream = docker.service_logs(&full, Some(options));
        let mut text = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(output) => text.push_str(&output.to_string()),
                Err(e) if is_not_found(&e) => return Ok(Vec::new()),
                Err(e) => return Err(engine_error(e)),
            }
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let skip = lines.len().saturating_sub(tail as usize);
        Ok(lines.into_iter().skip(skip).collect())
    }

    async fn find_services(
        &self,
        label: &str,
        value: &str,
    ) -> Result<Vec<String>, CapabilityError> {
        let docker = self.docker().await?;
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{NAMESPACE_LABEL}={}", self.namespace),
                format!("{LABEL_PREFIX}{label}={value}"),
            ],
        )]);
        let prefix = format!("{}-", self.namespace);
        Ok(docker
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(engine_error)?
            .into_iter()
            .filter_map(|s| s.spec?.name)
            .filter_map(|n| n.strip_prefix(&prefix).map(str::to_string))
            .collect())
    }

    async fn remove_service(&self, name: &str) -> Result<(), CapabilityError> {
        let full = self.full_name(name)?;
        let Some(service) = self.own_service(&full).await? else {
            return Ok(());
        };
        let id = service.id.unwrap_or_default();
        let pinned = service
            .spec
            .and_then(|s| s.task_template)
            .and_then(|t| t.container_spec)
            .and_then(|c| c.image);
        let docker = self.docker().await?;
        match docker.delete_service(&full).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(e)),
        }
        self.wait_for_tasks_to_stop(&id).await;
        match pinned {
            Some(pinned) => self.delete_pushed(&pinned).await,
            None => Ok(()),
        }
    }

    /// Waits (a bounded time) until no task of the removed service `id` is left, so its
    /// network can go right after.
    async fn wait_for_tasks_to_stop(&self, id: &str) {
        let Ok(docker) = self.docker().await else {
            return;
        };
        let filters = HashMap::from([("service".to_string(), vec![id.to_string()])]);
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        let deadline = tokio::time::Instant::now() + TASKS_STOP_LIMIT;
        while tokio::time::Instant::now() < deadline {
            match docker.list_tasks(Some(options.clone())).await {
                Ok(tasks) if !tasks.is_empty() => {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                _ => return,
            }
        }
    }

    /// Removes overlay `name` unless a service still uses it. Tasks of a service just
    /// removed may hold it a moment longer: that is waited out (a bounded time).
    async fn remove_overlay(&self, name: &str) -> Result<(), CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        let deadline = tokio::time::Instant::now() + TASKS_STOP_LIMIT;
        loop {
            match docker.remove_network(&full).await {
                Ok(()) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 400 | 403 | 409,
                    message,
                }) if message.contains("in use") => {
                    // Another service of the stack: the last one to go removes it.
                    if self.serves_on(&full).await? || tokio::time::Instant::now() > deadline {
                        return Ok(());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                }
                Err(e) => return Err(engine_error(e)),
            }
        }
    }

    /// Whether a service of this namespace is attached to network `full`.
    async fn serves_on(&self, full: &str) -> Result<bool, CapabilityError> {
        let docker = self.docker().await?;
        let id = match docker
            .inspect_network(
                full,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(network) => network.id.unwrap_or_default(),
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(engine_error(e)),
        };
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{NAMESPACE_LABEL}={}", self.namespace)],
        )]);
        let services = docker
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(engine_error)?;
        Ok(services.into_iter().any(|service| {
            service
                .spec
                .and_then(|s| s.task_template)
                .and_then(|t| t.networks)
                .unwrap_or_default()
                .iter()
                .any(|n| n.target.as_deref().is_some_and(|t| t == id || t == full))
        }))
    }

    async fn ensure_overlay(&self, name: &str, encrypted: bool) -> Result<(), CapabilityError> {
        let full = self.full_name(name)?;
        let docker = self.docker().await?;
        // A stack's services start together: one creation at a time here, and a name
        // another replica took first counts as made.
        let _one_at_a_time = self.network_lock.lock().await;
        match docker
            .inspect_network(
                &full,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(e)),
        }
        let mut options = HashMap::new();
        if encrypted {
            options.insert("encrypted".to_string(), String::new());
        }
        let request = NetworkCreateRequest {
            name: full,
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(self.labels(&[])?),
            options: Some(options),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("name conflicts with an existing object") =>
            {
                Ok(())
            }
            Err(e) => Err(engine_error(e)),
        }
    }
}

/// The cluster's task state as the contract's.
fn task_state(state: EngineTaskState) -> TaskState {
    use EngineTaskState as S;
    match state {
        S::NEW | S::ALLOCATED | S::PENDING | S::ASSIGNED | S::ACCEPTED => TaskState::Pending,
        S::PREPARING | S::READY | S::STARTING => TaskState::Starting,
        S::RUNNING => TaskState::Running,
        S::COMPLETE => TaskState::Complete,
        S::FAILED => TaskState::Failed,
        S::REJECTED => TaskState::Rejected,
        S::SHUTDOWN | S::REMOVE | S::ORPHANED => TaskState::Shutdown,
    }
}

impl Host for HostState {
    async fn create(&mut self, request: ServiceRequest) -> Result<Service, CapabilityError> {
        self.containers()?.create_service(request).await
    }

    async fn inspect(&mut self, name: String) -> Result<Option<Service>, CapabilityError> {
        self.containers()?.inspect_service(&name).await
    }

    async fn serving(&mut self, name: String) -> Result<u32, CapabilityError> {
        self.containers()?.serving(&name).await
    }

    async fn logs(&mut self, name: String, tail: u32) -> Result<Vec<String>, CapabilityError> {
        self.containers()?.service_logs(&name, tail).await
    }

    async fn find(&mut self, label: String, value: String) -> Result<Vec<String>, CapabilityError> {
        self.containers()?.find_services(&label, &value).await
    }

    async fn remove(&mut self, name: String) -> Result<(), CapabilityError> {
        self.containers()?.remove_service(&name).await
    }

    async fn ensure_network(
        &mut self,
        name: String,
        encrypted: bool,
    ) -> Result<(), CapabilityError> {
        self.containers()?.ensure_overlay(&name, encrypted).await
    }

    async fn remove_network(&mut self, name: String) -> Result<(), CapabilityError> {
        self.containers()?.remove_overlay(&name).await
    }
}
