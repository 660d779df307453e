//! Why a lifecycle step did not happen, in the domain's terms. The HTTP boundary
//! (`api::lifecycle_error`) is the one place that turns these into status codes and the
//! text agents act on.

use crate::contract::types::ProviderError;
use crate::registry::CallError;
use crate::store::ResourceRow;
use crate::tenancy::caps::Denial;

use super::provision::FaultPoint;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No live service serves the kind.
    #[error("no service serves kind `{0}`")]
    UnknownKind(String),
    /// No live provider deploys apps.
    #[error("no deploy provider is live")]
    NoDeployer,
    /// The caller's tier or network caps refuse a new resource.
    #[error("refused by the caps: {0:?}")]
    Denied(Denial),
    /// The provider answered with a classified refusal.
    #[error("the provider refused: {0:?}")]
    Refused(ProviderError),
    /// The provider produced no answer (trap, timeout, busy, circuit open).
    #[error(transparent)]
    Call(#[from] CallError),
    /// The provider answered something the host cannot use.
    #[error("unusable provider answer: {0}")]
    UnusableAnswer(String),
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Store(#[from] sqlx::Error),
    /// A failure a test asked for (`testing.fault_injection`).
    #[error("injected failure {0:?}")]
    Fault(FaultPoint),
    /// No resource has the token (or it never finished being created).
    #[error("no such resource")]
    NotFound,
    /// The resource has ended (deleted or expired).
    #[error("the resource has ended")]
    Ended(Box<ResourceRow>),
    /// The resource is still being created.
    #[error("the resource is still being created")]
    NotReady,
    /// A delete started but the backend did not finish it; the reaper retries it.
    #[error("the delete did not finish: {0}")]
    Unfinished(String),
    /// A host bug or inconsistent stored state.
    #[error("{0}")]
    Internal(String),
}

impl LifecycleError {
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }
}

/// A provider's answer, or why there is none.
pub fn answered<T>(
    answer: Result<Result<T, ProviderError>, CallError>,
) -> Result<T, LifecycleError> {
    match answer {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(refusal)) => Err(LifecycleError::Refused(refusal)),
        Err(CallError::Metadata(e)) => Err(LifecycleError::Store(e)),
        Err(e) => Err(LifecycleError::Call(e)),
    }
}
