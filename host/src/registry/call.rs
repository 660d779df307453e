//! Calling a provider: a fresh sandboxed instance per call, bounded in time and memory.

use std::future::Future;
use std::time::{Duration, Instant};

use wasmtime::{Store, StoreLimitsBuilder, Trap, UpdateDeadline};

use super::Loaded;
use super::bindings::Provider;
use super::bindings::types::{
    Info, ProviderError, ProvisionRequest, Provisioned, ResourceRef, UsageReport,
};
use super::engine::EPOCH_TICK;
use crate::caps::HostState;

/// Why a call produced no answer from the provider.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("provider `{provider}` trapped: {detail}")]
    Trapped { provider: String, detail: String },
    #[error("provider `{provider}` exceeded its {budget:?} deadline")]
    TimedOut { provider: String, budget: Duration },
    #[error("provider `{provider}` could not be instantiated: {detail}")]
    Instantiate { provider: String, detail: String },
}

/// The outcome of a call that ran to completion: the provider's own answer.
pub type Answer<T> = Result<Result<T, ProviderError>, CallError>;

impl Loaded {
    pub async fn describe(&self, request_id: &str) -> Result<Info, CallError> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_describe(&mut store)).await
    }

    pub async fn provision(
        &self,
        request_id: &str,
        request: &ProvisionRequest,
    ) -> Answer<Provisioned> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_provision(&mut store, request))
            .await
    }

    pub async fn deprovision(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_deprovision(&mut store, resource))
            .await
    }

    pub async fn usage(&self, request_id: &str, resource: &ResourceRef) -> Answer<UsageReport> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_usage(&mut store, resource)).await
    }

    pub async fn suspend(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_suspend(&mut store, resource)).await
    }

    pub async fn resume(&self, request_id: &str, resource: &ResourceRef) -> Answer<()> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_resume(&mut store, resource)).await
    }

    pub async fn check(&self, request_id: &str) -> Answer<String> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_check(&mut store)).await
    }

    pub async fn maintain(&self, request_id: &str) -> Answer<()> {
        let (mut store, provider) = self.instantiate(request_id).await?;
        let guest = provider.instanode_provider_provisioner();
        self.bounded(guest.call_maintain(&mut store)).await
    }

    fn budget(&self) -> Duration {
        Duration::from_millis(self.sandbox.call_timeout_ms)
    }

    /// A fresh store and instance: nothing survives from one call to the next.
    async fn instantiate(
        &self,
        request_id: &str,
    ) -> Result<(Store<HostState>, Provider), CallError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(self.sandbox.memory_mb << 20).unwrap_or(usize::MAX))
            .trap_on_grow_failure(true)
            .build();
        let state = HostState::new(self.bindings.clone(), limits, request_id);
        let mut store = Store::new(self.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        let deadline = Instant::now() + self.budget();
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                return Err(Trap::Interrupt.into());
            }
            // Yield to the runtime at every tick so a spinning guest cannot starve other
            // requests of this worker thread.
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(tokio::task::yield_now()),
            ))
        });
        let provider =
            self.pre
                .instantiate_async(&mut store)
                .await
                .map_err(|e| CallError::Instantiate {
                    provider: self.name.clone(),
                    detail: format!("{e:#}"),
                })?;
        Ok((store, provider))
    }

    /// Runs a call under the wall-clock budget. The epoch deadline stops a spinning guest;
    /// this outer timeout also stops one parked in a host import that hangs.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = wasmtime::Result<T>>,
    ) -> Result<T, CallError> {
        let budget = self.budget();
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
