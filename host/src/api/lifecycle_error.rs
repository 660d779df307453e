//! The one place lifecycle errors become HTTP answers: status codes, stable codes and the
//! text that tells an agent what to do next.

use axum::http::StatusCode;

use super::error::ApiError;
use super::request_id;
use crate::contract::types::ProviderError;
use crate::lifecycle::error::LifecycleError;
use crate::tenancy::caps::Denial;

/// The request header in which an anonymous caller proves which resources it holds.
pub const PROOF_HEADER: &str = "X-Instanode-Token";

/// The answer for `error`; `public_url` builds the claim links in refusals.
pub fn lifecycle_error(public_url: &str, error: LifecycleError) -> ApiError {
    match error {
        LifecycleError::UnknownKind(kind) => {
            ApiError::not_found(&format!("Resource kind `{kind}`"))
        }
        LifecycleError::NoDeployer => super::deploy::no_deployer(),
        LifecycleError::Denied(denial) => denied(public_url, denial),
        LifecycleError::Refused(refusal) => provider_refusal(refusal),
        LifecycleError::Call(e) => ApiError::call_failed(e),
        LifecycleError::UnusableAnswer(detail) => ApiError::provider_failed(detail),
        LifecycleError::Store(e) => ApiError::store(e),
        LifecycleError::Fault(point) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "fault_injected",
            format!("Injected failure {point:?}."),
        ),
        LifecycleError::NotFound => super::resources::not_found(),
        LifecycleError::Ended(row) => super::resources::ended(&row),
        LifecycleError::NotReady => ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            "The resource is still being created.",
        )
        .action("Wait a second, then retry.")
        .retry_after(1),
        LifecycleError::Unfinished(detail) => {
            tracing::warn!(request_id = %request_id::current(), error = %detail, "delete did not finish");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provider_failed", "The delete started, but the backend did not finish it; it is retried automatically.")
                .action("Tell the user the delete has started but the backend did not finish it; it will be retried automatically, or retry the DELETE in 30 seconds.")
        }
        LifecycleError::Internal(detail) => ApiError::internal(detail),
    }
}

/// A provider's classified refusal.
fn provider_refusal(refusal: ProviderError) -> ApiError {
    match refusal {
        ProviderError::InvalidRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m),
        ProviderError::QuotaExceeded(m) => ApiError::new(StatusCode::PAYMENT_REQUIRED, "quota_exceeded", m)
            .action("Tell the user this tier's limit for the resource is reached; claim the resource or upgrade to raise it."),
        ProviderError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
        ProviderError::BackendUnavailable(m) => {
            tracing::warn!(request_id = %request_id::current(), error = %m, "backend unavailable");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "provision_failed", "The backend for this resource is unavailable; nothing was created.")
                .action("Tell the user the service is briefly unavailable and nothing was created; retry in 30 seconds.")
        }
        ProviderError::Internal(m) => ApiError::provider_failed(m),
    }
}

/// The answer to a provision the caps refuse.
fn denied(public_url: &str, denial: Denial) -> ApiError {
    let claim_url = format!("{public_url}/claim");
    match denial {
        Denial::RecycleRequiresClaim => ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "free_tier_recycle_requires_claim",
            "This network's earlier free resources have ended; claim an account before creating new ones.",
        )
        .action(format!("Tell the user their previous free resource expired and this network must claim an account once (email only, no card) before provisioning again: {claim_url} - then retry."))
        .with("claim_url", claim_url),
        Denial::ProvisionLimitReached { limit } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "provision_limit_reached",
            format!("This network reached its {limit} free provisions for today (UTC)."),
        )
        .action(format!("Tell the user the free daily provisioning limit is reached. To get back a resource you already hold, send its token or upgrade_jwt in the {PROOF_HEADER} header; otherwise retry after midnight UTC, or claim an account to lift the limit: {claim_url}"))
        .with("claim_url", claim_url),
        Denial::ResourceCountLimit { kind, limit, existing } => {
            let mut error = ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "resource_count_limit_exceeded",
                format!("This tier allows {limit} active `{kind}` resource(s) per network, and that many exist."),
            )
            .with("claim_url", claim_url.clone())
            .with("limit", limit);
            error = if let Some(token) = existing {
                error
                    .with("token", token.to_string())
                    .action(format!("Tell the user they already have an active {kind} resource (token {token}); reuse it, delete it with DELETE {}/api/v1/resources/{token}, or claim an account for more: {claim_url}", public_url))
            } else if limit == 0 {
                error.action(format!("Tell the user this tier cannot create {kind} resources; claim an account and upgrade: {claim_url}"))
            } else {
                // Held by someone on this network, who may not be this caller: named to no one.
                error.action(format!("Tell the user an active {kind} resource already exists for this network. If it is theirs, reuse it with the token they hold (send it or its upgrade_jwt in the {PROOF_HEADER} header to have it named here), or delete it with DELETE {}/api/v1/resources/{{token}}; otherwise claim an account for more: {claim_url}", public_url))
            };
            error
        }
    }
}
