//! Calling a provider: a fresh sandboxed instance per call, bounded in time and memory.

use std::future::Future;
use std::time::{Duration, Instant};

use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};

use super::Loaded;
use super::engine::EPOCH_TICK;
use crate::caps::HostState;
use crate::contract::Provider;
use crate::contract::deploy::deployer::{App, Built, Started};
use crate::contract::storage::objects::Presigned;
use crate::contract::types::{
    Info, ObjectMethod, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};

/// Why a call produced no answer from the provider.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("provider `{provider}` trapped: {detail}")]
    Trapped { provider: String, detail: String },
    #[error("provider `{provider}` exceeded its {budget:?} deadline")]
    TimedOut { provider: String, budget: Duration },
    #[error("provider `{provider}` could not be instantiated: {detail}")]
    Instantiate { provider: String, detail: String },
    #[error("provider `{provider}` does not export `{interface}`")]
    NotExported {
        provider: String,
        interface: &'static str,
    },
    #[error(
        "provider `{provider}` is not being called for `{function}` after repeated failures (circuit open)"
    )]
    CircuitOpen {
        provider: String,
        function: &'static str,
        retry_after: Duration,
    },
    #[error("provider `{provider}` has all its {limit} instances busy")]
    Busy { provider: String, limit: u32 },
    /// A provider built into the host could not reach the metadata database it keeps its
    /// objects in.
    #[error("metadata database: {0}")]
    Metadata(sqlx::Error),
}

impl CallError {
    /// Whether the call was refused before the component ran (so it changed nothing).
    pub fn never_ran(&self) -> bool {
        matches!(
            self,
            Self::CircuitOpen { .. } | Self::Busy { .. } | Self::NotExported { .. }
        )
    }

    /// Failures of the component itself, which count towards opening its breaker.
    fn is_sandbox_failure(&self) -> bool {
        matches!(
            self,
            Self::Trapped { .. } | Self::TimedOut { .. } | Self::Instantiate { .. }
        )
    }
}

/// The outcome of a call that ran to completion: the provider's own answer.
pub type Answer<T> = Result<Result<T, ProviderError>, CallError>;

impl Loaded {
    pub async fn describe(&self, request_id: &str) -> Result<Info, CallError> {
        self.guarded("describe", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_describe(&mut store)).await
        })
        .await
    }

    pub async fn provision(
        &self,
        request_id: &str,
        request: &ProvisionRequest,
    ) -> Answer<Provisioned> {
        self.guarded("provision", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_provision(&mut store, request))
                .await
        })
        .await
    }

    pub async fn deprovision(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        self.guarded("deprovision", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_deprovision(&mut store, resource))
                .await
        })
        .await
    }

    pub async fn usage(&self, request_id: &str, resource: &ResourceRef) -> Answer<UsageReport> {
        self.guarded("usage", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_usage(&mut store, resource)).await
        })
        .await
    }

    pub async fn suspend(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        self.guarded("suspend", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_suspend(&mut store, resource)).await
        })
        .await
    }

    pub async fn resume(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        self.guarded("resume", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_resume(&mut store, resource)).await
        })
        .await
    }

    pub async fn check(&self, request_id: &str) -> Answer<String> {
        self.guarded("check", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_check(&mut store)).await
        })
        .await
    }

    pub async fn maintain(&self, request_id: &str) -> Answer<()> {
        self.guarded("maintain", async {
            let (mut store, provider) = self.instantiate(request_id).await?;
            let guest = provider.instanode_provider_provisioner();
            self.bounded(guest.call_maintain(&mut store)).await
        })
        .await
    }

    /// `deployer.build`: may wait minutes on the engine (see `sandbox.host_wait_ms`).
    pub async fn deploy_build(&self, request_id: &str, app: &App) -> Answer<Built> {
        self.guarded("deployer.build", async {
            let (mut store, deployer) = self.instantiate_deployer(request_id).await?;
            let guest = deployer.instanode_provider_deployer();
            self.bounded(guest.call_build(&mut store, app)).await
        })
        .await
    }

    /// `deployer.start`.
    pub async fn deploy_start(&self, request_id: &str, app: &App, image: &str) -> Answer<Started> {
        self.guarded("deployer.start", async {
            let (mut store, deployer) = self.instantiate_deployer(request_id).await?;
            let guest = deployer.instanode_provider_deployer();
            self.bounded(guest.call_start(&mut store, app, image)).await
        })
        .await
    }

    /// `deployer.logs`.
    pub async fn deploy_logs(&self, request_id: &str, app: &App, tail: u32) -> Answer<Vec<String>> {
        self.guarded("deployer.logs", async {
            let (mut store, deployer) = self.instantiate_deployer(request_id).await?;
            let guest = deployer.instanode_provider_deployer();
            self.bounded(guest.call_logs(&mut store, app, tail)).await
        })
        .await
    }

    /// `objects.presign`: a URL for one object of a storage resource.
    pub async fn presign(
        &self,
        request_id: &str,
        resource: &ResourceRef,
        method: ObjectMethod,
        key: &str,
        expires_in_seconds: u32,
    ) -> Answer<Presigned> {
        self.guarded("objects.presign", async {
            let pre = self
                .storage_pre
                .as_ref()
                .ok_or_else(|| CallError::NotExported {
                    provider: self.name.clone(),
                    interface: "objects",
                })?;
            let mut store = self.new_store(request_id);
            let storage = pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| self.instantiate_error(e))?;
            let guest = storage.instanode_provider_objects();
            self.bounded(guest.call_presign(&mut store, resource, method, key, expires_in_seconds))
                .await
        })
        .await
    }

    /// Runs one call under the provider's instance limit and circuit breaker, recording
    /// its outcome.
    async fn guarded<T>(
        &self,
        function: &'static str,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        // A call waits for a free instance at most half its budget, so a provider whose
        // instances are all stuck answers busy while callers still have time to retry.
        let queue_budget = self.budget() / 2;
        let _instance = match tokio::time::timeout(queue_budget, self.instances.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(CallError::Busy {
                    provider: self.name.clone(),
                    limit: self.sandbox.max_instances,
                });
            }
        };
        self.health
            .admit(function)
            .map_err(|retry_after| CallError::CircuitOpen {
                provider: self.name.clone(),
                function,
                retry_after,
            })?;
        let outcome = call.await;
        match &outcome {
            Err(e) if e.is_sandbox_failure() => self.health.record(function, Some(&e.to_string())),
            _ => self.health.record(function, None),
        }
        outcome
    }

    /// Guest compute per call; host imports may add up to `host_wait_ms` of waiting.
    fn budget(&self) -> Duration {
        Duration::from_millis(self.sandbox.call_timeout_ms)
    }

    fn wall_budget(&self) -> Duration {
        self.budget() + Duration::from_millis(self.sandbox.host_wait_ms)
    }

    async fn instantiate(
        &self,
        request_id: &str,
    ) -> Result<(Store<HostState>, Provider), CallError> {
        let mut store = self.new_store(request_id);
        let provider = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.instantiate_error(e))?;
        Ok((store, provider))
    }

    async fn instantiate_deployer(
        &self,
        request_id: &str,
    ) -> Result<(Store<HostState>, crate::contract::deploy::DeployProvider), CallError> {
        let pre = self
            .deploy_pre
            .as_ref()
            .ok_or_else(|| CallError::NotExported {
                provider: self.name.clone(),
                interface: "deployer",
            })?;
        let mut store = self.new_store(request_id);
        let deployer = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| self.instantiate_error(e))?;
        Ok((store, deployer))
    }

    fn instantiate_error(&self, e: wasmtime::Error) -> CallError {
        CallError::Instantiate {
            provider: self.name.clone(),
            detail: format!("{e:#}"),
        }
    }

    /// A fresh store: nothing survives from one call to the next. Its epoch callback
    /// interrupts a guest that computes past the budget, counting only the ticks the guest
    /// itself runs (a call parked in a host import for minutes is bounded by the wall
    /// budget in `bounded` instead).
    fn new_store(&self, request_id: &str) -> Store<HostState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(self.sandbox.memory_mb << 20).unwrap_or(usize::MAX))
            .trap_on_grow_failure(true)
            .build();
        let state = HostState::new(self.bindings.clone(), limits, request_id);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        let deadline = Instant::now() + self.wall_budget();
        let max_ticks = self.budget().as_millis() / EPOCH_TICK.as_millis().max(1);
        let mut ticks = 0u128;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            ticks += 1;
            if ticks > max_ticks || Instant::now() >= deadline {
                return Err(Trap::Interrupt.into());
            }
            // Yield to the runtime at every tick so a spinning guest cannot starve other
            // requests of this worker thread.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        store
    }

    /// Runs a call under the wall-clock budget. The epoch deadline stops a spinning guest;
    /// this outer timeout also stops one parked in a host import that hangs.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> Result<T, CallError> {
        let budget = self.wall_budget();
        let grace = EPOCH_TICK * 5;
        match tokio::time::timeout(budget + grace, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) => {
                Err(CallError::TimedOut {
                    provider: self.name.clone(),
                    budget,
                })
            }
            Ok(Err(e)) => Err(CallError::Trapped {
                provider: self.name.clone(),
                detail: format!("{e:#}"),
            }),
            Err(_) => Err(CallError::TimedOut {
                provider: self.name.clone(),
                budget,
            }),
        }
    }
}
