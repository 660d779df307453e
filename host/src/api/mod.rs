//! HTTP routes. Handlers are thin: parse, call one lifecycle function, shape the answer.

mod admin;
mod auth;
mod billing;
pub mod capabilities;
mod claim;
mod cli;
pub mod client;
mod dashboard;
mod deletion;
mod deploy;
mod docs;
mod domains;
mod env_updates;
pub mod error;
pub mod health;
mod mcp;
mod members;
pub mod openapi;
pub use health::COMMIT_ID;
pub mod idempotency;
pub mod json;
mod lifecycle_error;
mod lifetime;
pub mod provision;
mod query;
pub mod rate_limit;
pub mod request_id;
pub mod resources;
pub mod schema;
mod stacks;
mod storage;
mod team;
pub mod testing;
mod vault;
mod webhooks;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware;
use axum::routing::{MethodRouter, any, delete, get, patch, post};

use crate::app::SharedApp;
use error::ApiError;
use idempotency::Rule;

pub fn router(app: SharedApp) -> Router {
    let agents = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/llms.txt", get(docs::llms_txt))
        .route("/llms-full.txt", get(docs::llms_full_txt))
        .route("/openapi.json", get(openapi::serve))
        .route("/docs/{page}", get(docs::page))
        .route(
            "/{kind}/new",
            idempotent(
                post(provision::create),
                &app,
                Rule::Account,
                json::MAX_JSON_BODY,
                json_too_large,
            ),
        )
        .route(
            "/deploy/new",
            idempotent(
                post(deploy::create),
                &app,
                Rule::Deployer,
                deploy::MAX_DEPLOY_BODY,
                deploy::tarball_too_large,
            )
            .layer(DefaultBodyLimit::max(deploy::MAX_DEPLOY_BODY)),
        )
        .route("/deploy/{id}/logs", get(deploy::logs))
        .route("/deploy/{id}/redeploy", post(deploy::redeploy))
        .route("/deploy/{id}/env", patch(env_updates::deployment))
        .route(
            "/deploy/{id}",
            get(deploy::get_short).delete(deploy::delete_short),
        )
        .route(
            "/api/v1/deployments/{id}",
            get(deploy::get).delete(deploy::delete),
        )
        .route("/api/v1/deployments/{id}/events", get(deploy::events))
        .route(
            "/api/v1/deployments/{id}/confirm-deletion",
            post(deletion::confirm_deployment).delete(deletion::cancel_deployment),
        )
        .route(
            "/api/v1/deployments/{id}/ttl",
            post(lifetime::deployment_ttl),
        )
        .route(
            "/api/v1/deployments/{id}/make-permanent",
            post(lifetime::deployment_permanent),
        )
        .route(
            "/api/v1/deployments/{id}/domains",
            get(domains::list).post(domains::add),
        )
        .route(
            "/api/v1/deployments/{id}/domains/{domain}",
            delete(domains::remove),
        )
        .route(
            "/api/v1/deployments/{id}/domains/{domain}/verify",
            post(domains::verify),
        )
        .route(
            "/api/v1/stacks/{slug}/domains",
            get(domains::list_for_stack).post(domains::add_to_stack),
        )
        .route(
            "/api/v1/stacks/{slug}/domains/{domain}",
            delete(domains::remove_from_stack),
        )
        .route(
            "/api/v1/stacks/{slug}/domains/{domain}/verify",
            post(domains::verify_for_stack),
        )
        .route(
            "/.well-known/acme-challenge/{token}",
            get(domains::acme_answer),
        )
        .route(
            "/stacks/new",
            idempotent(
                post(stacks::create),
                &app,
                Rule::Deployer,
                stacks::MAX_STACK_BODY,
                stack_too_large,
            )
            .layer(DefaultBodyLimit::max(stacks::MAX_STACK_BODY)),
        )
        .route(
            "/stacks/{slug}",
            get(stacks::get_short).delete(stacks::delete_short),
        )
        .route(
            "/api/v1/stacks/{slug}",
            get(stacks::get).delete(stacks::delete),
        )
        .route("/stacks/{slug}/env", patch(env_updates::stack))
        .route(
            "/api/v1/stacks/{slug}/confirm-deletion",
            post(deletion::confirm_stack).delete(deletion::cancel_stack),
        )
        .route("/stacks/{slug}/redeploy", post(stacks::redeploy))
        .route("/stacks/{slug}/logs/{service}", get(stacks::logs))
        .route("/api/v1/stacks/{slug}/ttl", post(lifetime::stack_ttl))
        .route(
            "/api/v1/stacks/{slug}/make-permanent",
            post(lifetime::stack_permanent),
        )
        .route(
            "/storage/{token}/presign",
            idempotent(
                post(storage::presign),
                &app,
                Rule::PathToken,
                json::MAX_JSON_BODY,
                json_too_large,
            ),
        )
        .route(
            "/webhook/receive/{receive_id}",
            any(webhooks::receive).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/webhook/receive/{receive_id}/{*rest}",
            any(webhooks::receive).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/webhooks/{token}/requests", get(webhooks::list))
        .route("/api/v1/capabilities", get(capabilities::capabilities))
        .route("/claim/preview", get(claim::preview))
        .route("/claim", get(dashboard::claim_page).post(claim::claim))
        .route("/auth/email/start", post(auth::email_start))
        .route("/auth/email/callback", get(auth::email_callback))
        .route("/auth/me", get(auth::me))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/cli", post(cli::start))
        .route("/auth/cli/{id}", get(cli::poll))
        .route(
            "/auth/cli/{id}/approve",
            get(cli::approve_page).post(cli::approve),
        )
        .route("/billing/webhook", post(billing::webhook))
        .route(
            "/api/v1/auth/api-keys",
            get(auth::list_api_keys).merge(idempotent(
                post(auth::create_api_key),
                &app,
                Rule::Account,
                json::MAX_JSON_BODY,
                json_too_large,
            )),
        )
        .route("/api/v1/auth/api-keys/{id}", delete(auth::revoke_api_key))
        .route("/api/v1/vault/{env}", get(vault::list))
        .route(
            "/api/v1/vault/{env}/{key}",
            get(vault::get).put(vault::put).delete(vault::delete),
        )
        .route("/api/v1/vault/{env}/{key}/rotate", post(vault::rotate))
        .route("/api/v1/team/settings", get(team::get).patch(team::update))
        .route("/api/v1/team/members", get(members::list_members))
        .route(
            "/api/v1/team/invitations",
            get(members::list_invitations).merge(idempotent(
                post(members::invite),
                &app,
                Rule::Account,
                json::MAX_JSON_BODY,
                json_too_large,
            )),
        )
        .route("/api/v1/team/invitations/{id}", delete(members::revoke))
        .route("/api/v1/resources", get(resources::list))
        .route(
            "/api/v1/resources/{token}/credentials",
            get(resources::credentials),
        )
        .route(
            "/api/v1/resources/{token}/rotate-credentials",
            post(resources::rotate_credentials),
        )
        .route(
            "/api/v1/resources/{token}",
            get(resources::get).delete(resources::delete),
        )
        .merge(dashboard::routes())
        .route("/testing/clock", post(testing::advance_clock))
        .route("/testing/reap", post(testing::reap))
        .route("/testing/meter", post(testing::meter))
        .fallback(|| async { ApiError::not_found("Route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(json::MAX_JSON_BODY))
        // Outermost last: request id → security headers → caller → rate limit → route.
        .layer(middleware::from_fn_with_state(
            app.clone(),
            rate_limit::middleware,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            client::identify,
        ));
    let api = Router::new()
        .merge(admin::routes(app.clone()))
        .merge(agents)
        .with_state(app.clone());
    Router::new()
        .merge(mcp::routes(app))
        .merge(api)
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn(request_id::middleware))
}

/// A creating route under the idempotency rules (see [`idempotency`]).
fn idempotent(
    route: MethodRouter<SharedApp>,
    app: &SharedApp,
    rule: Rule,
    max_body: usize,
    too_large: fn() -> ApiError,
) -> MethodRouter<SharedApp> {
    let guard = idempotency::Guarded {
        app: app.clone(),
        rule,
        max_body,
        too_large,
    };
    route.route_layer(middleware::from_fn_with_state(
        guard,
        idempotency::middleware,
    ))
}

/// The refusal of a JSON body over [`json::MAX_JSON_BODY`].
fn json_too_large() -> ApiError {
    ApiError::payload_too_large(json::MAX_JSON_BODY)
}

/// The refusal of a stack's form over [`stacks::MAX_STACK_BODY`]: its tarballs are too large.
fn stack_too_large() -> ApiError {
    deploy::tarball_too_large()
}

/// Responses carry credentials: never cache them, never sniff them.
async fn security_headers(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // URLs may carry tokens (`/start?t=`): no referrer leaves for another site. Same-origin
    // keeps the dashboard's form posts carrying their real `Origin` (not `null`).
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    response
}
