//! The OpenAPI 3.1 description of the REST API, served at `/openapi.json` and committed as
//! `openapi/openapi.json`. utoipa generates it from each handler's `#[utoipa::path]` and the
//! wire types of `api::schema`; this module lists the operations, in the order of the docs,
//! and adds what every operation shares.
//!
//! Tests fail when a route of `api::router` has no operation here, when the served document
//! differs from the committed one, or when a live answer does not match it (schemathesis).

use serde_json::Value;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, Required, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi};

use super::schema::ErrorBody;
use super::{
    admin, auth, billing, capabilities, claim, cli, dashboard, deletion, deploy, docs, domains,
    env_updates, health, lifetime, mcp, members, provision, resources, stacks, storage, team,
    vault, webhooks,
};

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "docs", operation_id = "openapi",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1.", body = Object)))]
pub async fn serve() -> impl axum::response::IntoResponse {
    // Built and serialized once; every request shares the bytes.
    static DOCUMENT: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    let bytes = DOCUMENT.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default().into());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes.clone(),
    )
}

/// The whole document.
pub fn document() -> Value {
    let mut document = serde_json::to_value(Api::openapi()).unwrap_or_default();
    // OpenAPI 3.1's `info.summary`, which utoipa's `Info` has no field for.
    if let Some(info) = document.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("summary".into(), SUMMARY.into());
    }
    document
}

const SUMMARY: &str = "Real infrastructure for coding agents through single HTTP calls.";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "instanode",
        description = "Each call creates or manages one resource: a PostgreSQL database (also with pgvector), a Redis namespace, a MongoDB database, a NATS account, an S3 prefix, a webhook receiver or a container deploy. Anonymous resources live 24 hours unless claimed. Every failure answers with the error envelope; its `agent_action` says what to do next. A caller's network is a quota key, never an identity: a resource's token, credentials, deliveries, apps and stacks go only to a caller proving it holds them (the resource's token or upgrade_jwt in the path, as the bearer or in X-Instanode-Token; the same Idempotency-Key from the same caller; or the owning team's session or API key). See /llms.txt.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/")),
    paths(
        // Provisioning and storage.
        provision::create,
        storage::presign,
        // Webhooks.
        webhooks::receive,
        webhooks::list,
        // Deploys.
        deploy::create,
        deploy::get,
        deploy::delete,
        deploy::events,
        deploy::get_short,
        deploy::delete_short,
        deploy::logs,
        deploy::redeploy,
        env_updates::deployment,
        deletion::confirm_deployment,
        deletion::cancel_deployment,
        lifetime::deployment_ttl,
        lifetime::deployment_permanent,
        domains::add,
        domains::list,
        domains::verify,
        domains::remove,
        domains::add_to_stack,
        domains::list_for_stack,
        domains::verify_for_stack,
        domains::remove_from_stack,
        domains::acme_answer,
        // Stacks.
        stacks::create,
        stacks::get,
        stacks::delete,
        stacks::get_short,
        stacks::delete_short,
        env_updates::stack,
        deletion::confirm_stack,
        deletion::cancel_stack,
        stacks::redeploy,
        stacks::logs,
        lifetime::stack_ttl,
        lifetime::stack_permanent,
        // Resources.
        resources::list,
        resources::get,
        resources::delete,
        resources::credentials,
        resources::rotate_credentials,
        capabilities::capabilities,
        // Claiming and accounts.
        claim::preview,
        claim::claim,
        dashboard::claim::start,
        dashboard::claim::open,
        auth::email_start,
        auth::email_callback,
        auth::me,
        auth::logout,
        cli::start,
        cli::poll,
        cli::approve_page,
        cli::approve,
        auth::list_api_keys,
        auth::create_api_key,
        auth::revoke_api_key,
        team::get,
        team::update,
        members::list_members,
        members::invite,
        members::list_invitations,
        members::revoke,
        vault::put,
        vault::get,
        vault::list,
        vault::delete,
        vault::rotate,
        billing::webhook,
        // The dashboard (people, in a browser).
        dashboard::overview::show,
        dashboard::assets::serve,
        dashboard::deletion::page,
        dashboard::logout,
        dashboard::resources::list,
        dashboard::resource::show,
        dashboard::resource::reveal,
        dashboard::resource::rotate,
        dashboard::resource::delete,
        dashboard::deployments::list,
        dashboard::deployments::show,
        dashboard::deployments::redeploy,
        dashboard::deployments::delete,
        dashboard::deployments::stack,
        dashboard::vault::show,
        dashboard::vault::reveal,
        dashboard::team::show,
        dashboard::team::invite,
        dashboard::team::revoke_invitation,
        dashboard::join::page,
        dashboard::join::accept,
        dashboard::settings::show,
        dashboard::settings::create_key,
        dashboard::settings::revoke_key,
        dashboard::operator::show,
        dashboard::operator::sign_in,
        dashboard::operator::sign_out,
        dashboard::operator::rollback,
        dashboard::operator::unload,
        dashboard::operator::upload,
        // Discovery and health.
        health::healthz,
        health::readyz,
        docs::llms_txt,
        docs::llms_full_txt,
        docs::page,
        serve,
        mcp::handle,
        // Operators.
        admin::list,
        admin::quota,
        admin::upload,
        admin::rollback,
        admin::unload,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Shared),
)]
struct Api;

/// What every operation shares, added once rather than on each annotation: the security
/// schemes, a required string parameter for each `{name}` in a path, and the error envelope
/// as the answer to every refusal or failure.
struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in [
            (
                "bearer",
                "A team's API key or session token, or (where noted) a resource's upgrade_jwt.",
            ),
            ("admin", "The operator token (admin_token)."),
        ] {
            let scheme = HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(description))
                .build();
            components.add_security_scheme(name, SecurityScheme::Http(scheme));
        }

        let refusal = ResponseBuilder::new()
            .description("A refusal or failure, in the error envelope (see its `error` code and `agent_action`).")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            )
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let names: Vec<&str> = path
                .split('/')
                .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let parameters = operation.parameters.get_or_insert_with(Vec::new);
                let declared: Vec<Parameter> = std::mem::take(parameters);
                parameters.extend(names.iter().map(|name| path_parameter(name)));
                parameters.extend(declared);
                operation
                    .responses
                    .responses
                    .insert("default".into(), refusal.clone().into());
            }
        }
    }
}

fn path_parameter(name: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}
