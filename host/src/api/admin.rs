//! The operator API (`/admin/*`): list providers, upload a new version, roll back. It sits
//! outside the agents' rate limit and answers only the configured admin token.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Router, extract::rejection::BytesRejection};

use super::error::ApiError;
use super::schema::{
    PreviousVersion, Provider, ProviderHealth, Providers, QuotaFailure, QuotaFailures, Sandbox,
    Swap, True, Unloaded,
};
use crate::app::{App, SharedApp};
use crate::registry::{Loaded, Refusal, Swapped};
use crate::tenancy::tokens::secrets_equal;

/// Largest component the API accepts.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

pub fn routes(app: SharedApp) -> Router<SharedApp> {
    Router::new()
        .route("/admin/providers", get(list))
        .route("/admin/quota", get(quota))
        .route(
            "/admin/providers/{name}",
            put(upload).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/admin/providers/{name}/rollback", post(rollback))
        .route("/admin/providers/{name}/unload", post(unload))
        .route_layer(middleware::from_fn_with_state(app, require_admin))
}

/// Lets through only requests bearing the admin token; the API is off without one.
async fn require_admin(
    State(app): State<SharedApp>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if app.admin_token.is_none() {
        return Err(disabled());
    }
    if !is_admin_token(&app, bearer(request.headers()).unwrap_or_default()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "The operator API needs `Authorization: Bearer <admin token>`.",
        ));
    }
    Ok(next.run(request).await)
}

pub(super) fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "admin_disabled",
        "The operator API is off on this host.",
    )
    .action("Tell the operator to set admin_token (INSTANODE_ADMIN_TOKEN) to use /admin.")
}

/// Whether `presented` is the configured admin token (never true when none is configured).
pub(super) fn is_admin_token(app: &App, presented: &str) -> bool {
    app.admin_token
        .as_ref()
        .is_some_and(|expected| secrets_equal(presented, expected))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Resources whose quota verdict (suspend or resume) their provider keeps failing to apply,
/// the longest-failing first.
#[utoipa::path(get, path = "/admin/quota", tag = "operators", operation_id = "listQuotaFailures",
    summary = "Resources whose suspension or resumption keeps failing",
    security(("admin" = [])),
    responses((status = 200, description = "Each resource the meter could not suspend (or resume): id, kind, provider, status, error, failing_since, attempts, usage.", body = QuotaFailures)))]
async fn quota(State(app): State<SharedApp>) -> Result<Json<QuotaFailures>, ApiError> {
    const LISTED: i64 = 500;
    let failing = app
        .store
        .enforcement_failures(LISTED)
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|f| QuotaFailure {
            id: f.id,
            kind: f.kind,
            provider: f.provider,
            status: f.status,
            error: f.error,
            failing_since: f.failing_since,
            attempts: f.attempts,
            usage: f.usage,
        })
        .collect();
    Ok(Json(QuotaFailures { ok: True, failing }))
}

#[utoipa::path(get, path = "/admin/providers", tag = "operators", operation_id = "listProviders",
    summary = "Live providers, versions and health",
    security(("admin" = [])),
    responses((status = 200, description = "The providers.", body = Providers)))]
async fn list(State(app): State<SharedApp>) -> Json<Providers> {
    Json(inventory(&app).await)
}

#[utoipa::path(put, path = "/admin/providers/{name}", tag = "operators", operation_id = "uploadProvider",
    summary = "Replace a provider with a new component",
    security(("admin" = [])),
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, description = "Swapped (or unchanged).", body = Swap)))]
async fn upload(
    State(app): State<SharedApp>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Swap>, ApiError> {
    Ok(Json(upload_component(&app, &name, body).await?))
}

#[utoipa::path(post, path = "/admin/providers/{name}/rollback", tag = "operators",
    operation_id = "rollbackProvider",
    summary = "Go back to the previous version",
    security(("admin" = [])),
    responses((status = 200, description = "Swapped.", body = Swap)))]
async fn rollback(
    State(app): State<SharedApp>,
    Path(name): Path<String>,
) -> Result<Json<Swap>, ApiError> {
    Ok(Json(roll_back(&app, &name).await?))
}

#[utoipa::path(post, path = "/admin/providers/{name}/unload", tag = "operators",
    operation_id = "unloadProvider",
    summary = "Take a provider out of service",
    security(("admin" = [])),
    responses((status = 200, description = "Unloaded.", body = Unloaded)))]
async fn unload(
    State(app): State<SharedApp>,
    Path(name): Path<String>,
) -> Result<Json<Unloaded>, ApiError> {
    Ok(Json(take_out_of_service(&app, &name).await?))
}

/// Every live provider (version, health, the version it replaced) and those unloaded.
pub(super) async fn inventory(app: &App) -> Providers {
    let mut providers = Vec::new();
    for live in app.registry.all() {
        let previous = app.registry.previous(&live.name).await;
        providers.push(describe(&live, previous.as_deref()));
    }
    Providers {
        ok: True,
        providers,
        unloaded: app.registry.unloaded(),
    }
}

/// Replaces provider `name` with the component in `body`, once it passes every check.
pub(super) async fn upload_component(
    app: &App,
    name: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Swap, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(MAX_COMPONENT_BYTES),
        _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_body", e.body_text()),
    })?;
    if !body.starts_with(b"\0asm") {
        return Err(refused(Refusal::InvalidComponent(
            "the body is not a WebAssembly binary (send the .wasm file's bytes)".into(),
        )));
    }
    let swapped = app
        .registry
        .replace(name, Arc::from(&body[..]), "upload".into())
        .await
        .map_err(refused)?;
    Ok(swap_report(&swapped))
}

pub(super) async fn roll_back(app: &App, name: &str) -> Result<Swap, ApiError> {
    let swapped = app.registry.rollback(name).await.map_err(refused)?;
    Ok(swap_report(&swapped))
}

/// Takes a provider out of service until a rollback, an upload or a restart.
pub(super) async fn take_out_of_service(app: &App, name: &str) -> Result<Unloaded, ApiError> {
    let removed = app.registry.unload(name).await.map_err(refused)?;
    Ok(Unloaded {
        ok: True,
        unloaded: describe(&removed, None),
        kinds_no_longer_served: removed.kinds.clone(),
    })
}

fn swap_report(swapped: &Swapped) -> Swap {
    Swap {
        ok: True,
        unchanged: swapped.unchanged(),
        provider: describe(&swapped.live, swapped.replaced.as_deref()),
        swap_ms: swapped.elapsed.as_secs_f64() * 1000.0,
        compiled_artifact_cached: swapped.cached,
    }
}

fn describe(live: &Loaded, previous: Option<&Loaded>) -> Provider {
    let sandbox = live.sandbox();
    let health = live.health.report();
    Provider {
        name: live.name.clone(),
        version: live.version.clone(),
        kinds: live.kinds.clone(),
        sha256: live.sha256.clone(),
        loaded_at: live.loaded_at,
        source: live.source.clone(),
        grants: live.grants.iter().map(ToString::to_string).collect(),
        deployer: live.is_deployer(),
        sandbox: Sandbox {
            call_timeout_ms: sandbox.call_timeout_ms,
            host_wait_ms: sandbox.host_wait_ms,
            memory_mb: sandbox.memory_mb,
            max_instances: sandbox.max_instances,
            breaker_failures: sandbox.breaker_failures,
            breaker_open_ms: sandbox.breaker_open_ms,
        },
        health: ProviderHealth {
            breaker: health.breaker.into(),
            tripped: health.tripped.iter().map(ToString::to_string).collect(),
            failures_in_a_row: health.failures_in_a_row,
            calls_total: health.calls_total,
            failures_total: health.failures_total,
            last_failure: health.last_failure,
            last_failure_at: health.last_failure_at,
            retry_after_seconds: health.retry_after_seconds,
        },
        previous: previous.map(|p| PreviousVersion {
            version: p.version.clone(),
            sha256: p.sha256.clone(),
            loaded_at: p.loaded_at,
        }),
    }
}

fn refused(refusal: Refusal) -> ApiError {
    let status = match refusal {
        Refusal::ProviderNotFound(_) => StatusCode::NOT_FOUND,
        Refusal::NoPreviousVersion(_) | Refusal::NotLoaded(_) => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    };
    let action = match refusal {
        Refusal::ProviderNotFound(_) => {
            "Add a [providers.<name>] section to the host config (component, kinds, grants, bindings) and restart; uploads replace configured providers only."
        }
        Refusal::NoPreviousVersion(_) => {
            "Nothing to roll back to: upload the version you want with PUT /admin/providers/{name}."
        }
        Refusal::NotLoaded(_) => {
            "The provider is already out of service; bring it back with POST /admin/providers/{name}/rollback or an upload."
        }
        _ => {
            "The live version keeps serving. Fix the component (see docs/providers.md; `instanode provider check` runs the same checks) and upload it again."
        }
    };
    tracing::warn!(code = refusal.code(), error = %refusal, "provider version refused");
    ApiError::new(status, refusal.code(), refusal.to_string()).action(action)
}
