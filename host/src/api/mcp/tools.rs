//! The MCP tools: their catalog (one `create_*` tool per kind the live providers serve, plus
//! a fixed set), and how a call becomes a request on the REST API.
//!
//! A tool call is answered by the same function the REST route calls (with the same
//! idempotency rules), so the two surfaces cannot drift: same validation, limits, errors
//! and audit.
//!
//! Tool input schemas are JSON Schema documents written out with `json!`: they describe
//! arguments (some from the live providers' request fields), not a type of this crate.

use axum::extract::{Extension, Path, State};

use crate::api::query::Query;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::api::deploy::{self, Form};
use crate::api::idempotency::{self, Rule};
use crate::api::json::JsonObject;
use crate::api::schema::Tool;
use crate::api::{
    capabilities, claim, deletion, domains, env_updates, lifetime, provision, resources, stacks,
    storage, vault, webhooks,
};
use crate::app::{App, SharedApp};
use crate::kinds::KindInfo;
use crate::tenancy::client::Client;

/// A tool call the host refuses before any request is made.
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

fn refused(code: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        code,
        message: message.into(),
    }
}

/// The tool that creates resources of a kind: `create_<label>`, the label the kind's
/// provider gives (`create_postgres` for `db`, the name agents know).
pub fn create_tool_name(kind: &KindInfo) -> String {
    format!("create_{}", kind.label)
}

/// Each tool with a fixed name and the REST operation it calls (`method path`, as the
/// OpenAPI document names it). No kind's `create_<label>` may take one of these names.
const ROUTED_TOOLS: [(&str, &str); 14] = [
    ("list_resources", "get /api/v1/resources"),
    ("get_capabilities", "get /api/v1/capabilities"),
    ("get_resource", "get /api/v1/resources/{token}"),
    ("delete_resource", "delete /api/v1/resources/{token}"),
    (
        "get_credentials",
        "get /api/v1/resources/{token}/credentials",
    ),
    (
        "rotate_credentials",
        "post /api/v1/resources/{token}/rotate-credentials",
    ),
    ("presign_storage", "post /storage/{token}/presign"),
    (
        "list_webhook_requests",
        "get /api/v1/webhooks/{token}/requests",
    ),
    ("claim_resource", "post /claim"),
    ("set_vault_key", "put /api/v1/vault/{env}/{key}"),
    ("get_vault_key", "get /api/v1/vault/{env}/{key}"),
    ("list_vault_keys", "get /api/v1/vault/{env}"),
    ("delete_vault_key", "delete /api/v1/vault/{env}/{key}"),
    ("rotate_vault_key", "post /api/v1/vault/{env}/{key}/rotate"),
];

/// The tools for apps and stacks, offered while a deploy provider is live.
const DEPLOY_TOOLS: [(&str, &str); 25] = [
    ("create_deploy", "post /deploy/new"),
    ("get_deployment", "get /api/v1/deployments/{id}"),
    (
        "get_deployment_events",
        "get /api/v1/deployments/{id}/events",
    ),
    ("redeploy", "post /deploy/{id}/redeploy"),
    ("delete_deployment", "delete /api/v1/deployments/{id}"),
    (
        "cancel_deployment_deletion",
        "delete /api/v1/deployments/{id}/confirm-deletion",
    ),
    ("update_deploy_env", "patch /deploy/{id}/env"),
    ("set_deployment_ttl", "post /api/v1/deployments/{id}/ttl"),
    (
        "make_deployment_permanent",
        "post /api/v1/deployments/{id}/make-permanent",
    ),
    (
        "add_deployment_domain",
        "post /api/v1/deployments/{id}/domains",
    ),
    (
        "list_deployment_domains",
        "get /api/v1/deployments/{id}/domains",
    ),
    (
        "verify_deployment_domain",
        "post /api/v1/deployments/{id}/domains/{domain}/verify",
    ),
    (
        "remove_deployment_domain",
        "delete /api/v1/deployments/{id}/domains/{domain}",
    ),
    ("create_stack", "post /stacks/new"),
    ("get_stack", "get /api/v1/stacks/{slug}"),
    ("delete_stack", "delete /api/v1/stacks/{slug}"),
    (
        "cancel_stack_deletion",
        "delete /api/v1/stacks/{slug}/confirm-deletion",
    ),
    ("redeploy_stack", "post /stacks/{slug}/redeploy"),
    ("update_stack_env", "patch /stacks/{slug}/env"),
    ("set_stack_ttl", "post /api/v1/stacks/{slug}/ttl"),
    (
        "make_stack_permanent",
        "post /api/v1/stacks/{slug}/make-permanent",
    ),
    ("add_stack_domain", "post /api/v1/stacks/{slug}/domains"),
    ("list_stack_domains", "get /api/v1/stacks/{slug}/domains"),
    (
        "verify_stack_domain",
        "post /api/v1/stacks/{slug}/domains/{domain}/verify",
    ),
    (
        "remove_stack_domain",
        "delete /api/v1/stacks/{slug}/domains/{domain}",
    ),
];

/// The kinds provisioned by a JSON body (apps take a tarball and have their own tool),
/// each under its tool name. A label is the provider's word, so a tool name already taken
/// (by a fixed tool or a kind earlier in name order) is not offered twice.
fn json_kinds(app: &App) -> Vec<(String, KindInfo)> {
    claim_tool_names(app.kinds.json_kinds())
}

fn claim_tool_names(offered: Vec<KindInfo>) -> Vec<(String, KindInfo)> {
    let mut taken: Vec<String> = (ROUTED_TOOLS.iter().chain(&DEPLOY_TOOLS))
        .map(|(tool, _)| tool.to_string())
        .collect();
    let mut kinds = Vec::new();
    for kind in offered {
        let tool = create_tool_name(&kind);
        if taken.contains(&tool) {
            tracing::warn!(kind = %kind.name, tool, "kind not offered over MCP: its tool name is taken");
            continue;
        }
        taken.push(tool.clone());
        kinds.push((tool, kind));
    }
    kinds
}

fn deploys_available(app: &App) -> bool {
    app.kinds.app_kind().is_some()
}

fn string(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

fn schema(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn tool(name: &str, description: &str, input_schema: Value) -> Tool {
    Tool {
        name: name.to_string(),
        description: description.to_string(),
        input_schema,
    }
}

fn token_only(description: &str) -> Value {
    schema(json!({"token": string(description)}), &["token"])
}

/// Every tool this host offers right now.
pub fn catalog(app: &App) -> Vec<Tool> {
    let mut tools: Vec<Tool> = json_kinds(app)
        .iter()
        .map(|(tool_name, kind)| {
            let mut properties = json!({
                "name": string("A name for the resource: letters, digits, '-' and '_', up to 64."),
                "env": string("An environment label such as development, staging or production (default: development)."),
            });
            for field in &kind.request_fields {
                properties[field.name.as_str()] = string(&field.description);
            }
            let kind_name = &kind.name;
            tool(
                tool_name,
                &format!(
                    "Creates a `{kind_name}` resource (POST /{kind_name}/new) and returns its connection URL and token. Anonymous resources expire after 24 hours unless claimed."
                ),
                schema(properties, &["name"]),
            )
        })
        .collect();
    tools.extend(fixed_tools(deploys_available(app)));
    tools
}

/// The tools with fixed names, in the order of [`ROUTED_TOOLS`] then [`DEPLOY_TOOLS`].
fn fixed_tools(deploys: bool) -> Vec<Tool> {
    let token = || token_only("The resource token returned when it was created.");
    let id = || {
        schema(
            json!({"id": string("The deployment id (from create_deploy).")}),
            &["id"],
        )
    };
    let slug = || {
        schema(
            json!({"stack_id": string("The stack's id, its slug (from create_stack).")}),
            &["stack_id"],
        )
    };
    let env_vars = json!({"type": "object", "additionalProperties": {"type": "string"},
        "description": "Names to values; an empty value removes the variable."});
    let hours = json!({"type": "integer", "minimum": 1, "maximum": 8760,
        "description": "Hours from now until it is removed."});
    let domain = string("The domain, e.g. shop.example.com.");
    let mut tools = vec![
        tool(
            "list_resources",
            "Lists the resources of the signed-in team (needs an API key).",
            schema(json!({}), &[]),
        ),
        tool(
            "get_capabilities",
            "The tiers, their limits, and the resource kinds this host serves.",
            schema(json!({}), &[]),
        ),
        tool(
            "get_resource",
            "Status, kind, tier, limits, usage and expiry of one resource (never its URL).",
            token(),
        ),
        tool(
            "delete_resource",
            "Deletes a resource and everything in it.",
            token(),
        ),
        tool(
            "get_credentials",
            "A team resource's connection URL (needs the team's API key; every read is recorded).",
            token(),
        ),
        tool(
            "rotate_credentials",
            "Replaces a team resource's password; the old URL stops working.",
            token(),
        ),
        tool(
            "presign_storage",
            "A presigned URL for one object of a storage resource.",
            schema(
                json!({
                    "token": string("The storage resource token."),
                    "operation": {"type": "string", "enum": ["PUT", "GET", "HEAD"]},
                    "key": string("The object key, relative to the resource's prefix."),
                    "expires_in": {"type": "integer", "minimum": 1, "maximum": 3600},
                }),
                &["token", "operation", "key"],
            ),
        ),
        tool(
            "list_webhook_requests",
            "The requests a webhook receiver stored, newest first.",
            schema(
                json!({
                    "token": string("The webhook resource token."),
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "before": {"type": "integer", "description": "The next_before of the previous page."},
                }),
                &["token"],
            ),
        ),
        tool(
            "claim_resource",
            "Claims anonymous resources for a person: emails them a link that keeps the resources past 24 hours.",
            schema(
                json!({
                    "token": string("The upgrade token (upgrade_jwt) from a create answer."),
                    "email": string("The person's email address."),
                }),
                &["token", "email"],
            ),
        ),
    ];
    let entry = |what: &str| {
        schema(
            json!({"env": string("The env, e.g. production."), "key": string(what)}),
            &["env", "key"],
        )
    };
    let with_value = |what: &str| {
        schema(
            json!({"env": string("The env, e.g. production."), "key": string(what), "value": string("The secret.")}),
            &["env", "key", "value"],
        )
    };
    tools.extend([
        tool(
            "set_vault_key",
            "Stores a secret in the team's vault as its next version; apps read it as vault://KEY in their env.",
            with_value("The secret's name, e.g. STRIPE_SECRET_KEY."),
        ),
        tool(
            "get_vault_key",
            "A secret's newest value (every read is recorded).",
            entry("The secret's name."),
        ),
        tool(
            "list_vault_keys",
            "The secret names in one env of the team's vault (no values).",
            schema(json!({"env": string("The env, e.g. production.")}), &["env"]),
        ),
        tool(
            "delete_vault_key",
            "Removes a secret and all its versions.",
            entry("The secret's name."),
        ),
        tool(
            "rotate_vault_key",
            "Replaces an existing secret with a new version; apps read it on their next rollout.",
            with_value("The secret's name."),
        ),
    ]);
    if !deploys {
        return tools;
    }
    tools.extend([
        tool(
            "create_deploy",
            "Builds and runs a container from a gzipped tarball with a Dockerfile at its top (or runs a prebuilt image from a registry the operator allows); returns the deployment id and URL while it builds. Needs a bearer (an upgrade_jwt or API key).",
            schema(
                json!({
                    "tarball_base64": string("The .tar.gz, base64-encoded (at most 10 MB decoded)."),
                    "image": string("Instead of a tarball: a prebuilt image reference on an allowed registry, ideally by digest (registry.example.com/team/app@sha256:...)."),
                    "name": string("The app's name."),
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port the app listens on (default 8080)."},
                    "env_vars": env_vars.clone(),
                }),
                &["name"],
            ),
        ),
        tool(
            "get_deployment",
            "A deployment's status (building, deploying, healthy, failed, stopped), URL, error and expiry.",
            id(),
        ),
        tool(
            "get_deployment_events",
            "Why a deployment failed: reason, exit code, the last log lines and a hint.",
            id(),
        ),
        tool(
            "redeploy",
            "Rebuilds a deployment from its last upload and current env; the running version serves until the new one is healthy.",
            id(),
        ),
        tool(
            "delete_deployment",
            "Stops and removes an app; a paid team's app only once a person confirms through the emailed link.",
            id(),
        ),
        tool(
            "cancel_deployment_deletion",
            "Withdraws a delete waiting for its emailed confirmation: the app keeps running.",
            id(),
        ),
        tool(
            "update_deploy_env",
            "Merges env vars into an app and rebuilds it when they changed.",
            schema(
                json!({"id": string("The deployment id."), "env_vars": env_vars.clone()}),
                &["id", "env_vars"],
            ),
        ),
        tool(
            "set_deployment_ttl",
            "Removes a team's app after the given hours (within the tier).",
            schema(json!({"id": string("The deployment id."), "hours": hours.clone()}), &["id", "hours"]),
        ),
        tool(
            "make_deployment_permanent",
            "Keeps a team's app until it is deleted (paid tiers).",
            id(),
        ),
        tool(
            "add_deployment_domain",
            "Asks to serve a team's app at a domain of its own over HTTPS; answers the TXT record that proves it and the CNAME target.",
            schema(
                json!({"id": string("The deployment id."), "domain": domain.clone()}),
                &["id", "domain"],
            ),
        ),
        tool(
            "list_deployment_domains",
            "An app's custom domains and where each stands (pending_verification, issuing, active, failed).",
            id(),
        ),
        tool(
            "verify_deployment_domain",
            "Looks for a custom domain's TXT record now.",
            schema(
                json!({"id": string("The deployment id."), "domain": domain.clone()}),
                &["id", "domain"],
            ),
        ),
        tool(
            "remove_deployment_domain",
            "Stops serving an app at a custom domain and drops its certificate.",
            schema(
                json!({"id": string("The deployment id."), "domain": domain.clone()}),
                &["id", "domain"],
            ),
        ),
        tool(
            "create_stack",
            "Deploys several services from an instant.yaml manifest, each from its own tarball, on one private network.",
            schema(
                json!({
                    "name": string("The stack's name."),
                    "manifest": string("The instant.yaml text."),
                    "service_tarballs": {"type": "object", "additionalProperties": {"type": "string"},
                        "description": "Each service's .tar.gz, base64-encoded, by service name."},
                }),
                &["name", "manifest", "service_tarballs"],
            ),
        ),
        tool(
            "get_stack",
            "A stack's manifest, status and services (needs its stack_token, upgrade_jwt or the team's key as bearer).",
            slug(),
        ),
        tool(
            "delete_stack",
            "Stops and removes every service of a stack; a paid team's stack only once a person confirms through the emailed link.",
            slug(),
        ),
        tool(
            "cancel_stack_deletion",
            "Withdraws a stack delete waiting for its emailed confirmation.",
            slug(),
        ),
        tool(
            "redeploy_stack",
            "Rebuilds every service of a stack, or one.",
            schema(
                json!({"stack_id": string("The stack's slug."), "service": string("One service to rebuild; all when absent.")}),
                &["stack_id"],
            ),
        ),
        tool(
            "update_stack_env",
            "Merges env vars into every service of a stack and rebuilds the services they changed.",
            schema(
                json!({"stack_id": string("The stack's slug."), "env_vars": env_vars}),
                &["stack_id", "env_vars"],
            ),
        ),
        tool(
            "set_stack_ttl",
            "Removes a team's stack after the given hours (within the tier).",
            schema(json!({"stack_id": string("The stack's slug."), "hours": hours}), &["stack_id", "hours"]),
        ),
        tool(
            "make_stack_permanent",
            "Keeps a team's stack until it is deleted (paid tiers).",
            slug(),
        ),
        tool(
            "add_stack_domain",
            "Asks to serve a stack's exposed service at a domain of its own over HTTPS.",
            schema(
                json!({"stack_id": string("The stack's slug."), "domain": domain.clone(),
                    "service": string("The exposed service the domain serves.")}),
                &["stack_id", "domain", "service"],
            ),
        ),
        tool(
            "list_stack_domains",
            "A stack's custom domains, each with its service and state.",
            slug(),
        ),
        tool(
            "verify_stack_domain",
            "Looks for a stack domain's TXT record now.",
            schema(
                json!({"stack_id": string("The stack's slug."), "domain": domain.clone()}),
                &["stack_id", "domain"],
            ),
        ),
        tool(
            "remove_stack_domain",
            "Stops serving a stack's service at a custom domain.",
            schema(
                json!({"stack_id": string("The stack's slug."), "domain": domain}),
                &["stack_id", "domain"],
            ),
        ),
    ]);
    tools
}

/// Who is calling, as the `/mcp` request showed it.
pub struct Caller {
    pub client: Client,
    /// The caller's headers a route reads: its credentials and idempotency key.
    pub headers: HeaderMap,
}

/// Answers a call of tool `name` with the function its REST route calls, so the two
/// surfaces share validation, limits, errors and audit.
pub async fn call(
    app: &SharedApp,
    caller: &Caller,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Response, Refused> {
    let state = || State(app.clone());
    if let Some((_, kind)) = json_kinds(app).into_iter().find(|(tool, _)| tool == name) {
        let path = format!("/{}/new", kind.name);
        let create = provision::create(
            state(),
            Path(kind.name),
            Extension(caller.client.clone()),
            caller.headers.clone(),
            JsonObject(args.clone()),
        );
        let work = async move { create.await.into_response() };
        return Ok(at_most_once(app, caller, Rule::Account, &path, args, work).await);
    }
    let deploy_tool = DEPLOY_TOOLS.iter().any(|(tool, _)| *tool == name);
    if deploy_tool && !deploys_available(app) {
        return Err(unknown(name));
    }
    let headers = || caller.headers.clone();
    let response = match name {
        "list_resources" => resources::list(state(), headers()).await.into_response(),
        "get_capabilities" => capabilities::capabilities(state()).await.into_response(),
        "get_resource" => resources::get(state(), Path(segment(args, "token")?))
            .await
            .into_response(),
        "delete_resource" => resources::delete(state(), Path(segment(args, "token")?))
            .await
            .into_response(),
        "get_credentials" => {
            resources::credentials(state(), headers(), Path(segment(args, "token")?))
                .await
                .into_response()
        }
        "rotate_credentials" => {
            resources::rotate_credentials(state(), headers(), Path(segment(args, "token")?))
                .await
                .into_response()
        }
        "presign_storage" => {
            let token = segment(args, "token")?;
            let mut body = args.clone();
            body.remove("token");
            let path = format!("/storage/{token}/presign");
            let presign = storage::presign(state(), Path(token), JsonObject(body.clone()));
            let work = async move { presign.await.into_response() };
            at_most_once(app, caller, Rule::PathToken, &path, &body, work).await
        }
        "list_webhook_requests" => {
            let page = webhooks::Page {
                limit: integer(args, "limit")?,
                before: integer(args, "before")?,
            };
            webhooks::list(state(), Path(segment(args, "token")?), Query(page))
                .await
                .into_response()
        }
        "claim_resource" => claim::claim(state(), JsonObject(args.clone()))
            .await
            .into_response(),
        "set_vault_key" => {
            let (env, key) = (segment(args, "env")?, segment(args, "key")?);
            let body = without(&without(args, "env"), "key");
            vault::put(state(), Path((env, key)), headers(), JsonObject(body))
                .await
                .into_response()
        }
        "rotate_vault_key" => {
            let (env, key) = (segment(args, "env")?, segment(args, "key")?);
            let body = without(&without(args, "env"), "key");
            vault::rotate(state(), Path((env, key)), headers(), JsonObject(body))
                .await
                .into_response()
        }
        "get_vault_key" => {
            let path = Path((segment(args, "env")?, segment(args, "key")?));
            let version = vault::VersionQuery { version: None };
            vault::get(state(), path, Query(version), headers())
                .await
                .into_response()
        }
        "list_vault_keys" => vault::list(state(), Path(segment(args, "env")?), headers())
            .await
            .into_response(),
        "delete_vault_key" => {
            let path = Path((segment(args, "env")?, segment(args, "key")?));
            vault::delete(state(), path, headers())
                .await
                .into_response()
        }
        "create_deploy" => {
            let form = deploy_form(args)?;
            let (shared, headers, client) = (app.clone(), headers(), caller.client.clone());
            let work = async move {
                let answer = async {
                    let deployer = deploy::required_bearer(&shared, &headers, &client).await?;
                    deploy::create_from_form(&shared, deployer, &form).await
                };
                answer.await.into_response()
            };
            at_most_once(app, caller, Rule::Deployer, "/deploy/new", args, work).await
        }
        "get_deployment" => deploy::get(state(), Path(segment(args, "id")?))
            .await
            .into_response(),
        "get_deployment_events" => deploy::events(state(), Path(segment(args, "id")?))
            .await
            .into_response(),
        "redeploy" => deploy::redeploy(state(), Path(segment(args, "id")?))
            .await
            .into_response(),
        "delete_deployment" => deploy::delete(state(), Path(segment(args, "id")?), headers())
            .await
            .into_response(),
        "cancel_deployment_deletion" => {
            deletion::cancel_deployment(state(), Path(segment(args, "id")?))
                .await
                .into_response()
        }
        "cancel_stack_deletion" => {
            deletion::cancel_stack(state(), Path(segment(args, "stack_id")?), headers())
                .await
                .into_response()
        }
        "update_deploy_env" => {
            let id = segment(args, "id")?;
            env_updates::deployment(state(), Path(id), JsonObject(without(args, "id")))
                .await
                .into_response()
        }
        "set_deployment_ttl" => {
            let id = segment(args, "id")?;
            lifetime::deployment_ttl(state(), Path(id), JsonObject(without(args, "id")))
                .await
                .into_response()
        }
        "make_deployment_permanent" => {
            lifetime::deployment_permanent(state(), Path(segment(args, "id")?))
                .await
                .into_response()
        }
        "add_deployment_domain" => {
            let id = segment(args, "id")?;
            domains::add(state(), Path(id), JsonObject(without(args, "id")))
                .await
                .into_response()
        }
        "list_deployment_domains" => domains::list(state(), Path(segment(args, "id")?))
            .await
            .into_response(),
        "verify_deployment_domain" => {
            let path = (segment(args, "id")?, segment(args, "domain")?);
            domains::verify(state(), Path(path)).await.into_response()
        }
        "remove_deployment_domain" => {
            let path = (segment(args, "id")?, segment(args, "domain")?);
            domains::remove(state(), Path(path)).await.into_response()
        }
        "add_stack_domain" => {
            let slug = segment(args, "stack_id")?;
            domains::add_to_stack(
                state(),
                Path(slug),
                headers(),
                JsonObject(without(args, "stack_id")),
            )
            .await
            .into_response()
        }
        "list_stack_domains" => {
            domains::list_for_stack(state(), Path(segment(args, "stack_id")?), headers())
                .await
                .into_response()
        }
        "verify_stack_domain" => {
            let path = (segment(args, "stack_id")?, segment(args, "domain")?);
            domains::verify_for_stack(state(), Path(path), headers())
                .await
                .into_response()
        }
        "remove_stack_domain" => {
            let path = (segment(args, "stack_id")?, segment(args, "domain")?);
            domains::remove_from_stack(state(), Path(path), headers())
                .await
                .into_response()
        }
        "create_stack" => {
            let form = stack_form(args)?;
            let (shared, headers, client) = (app.clone(), headers(), caller.client.clone());
            let work = async move {
                let answer = async {
                    let deployer = stacks::stack_deployer(&shared, &headers, &client).await?;
                    stacks::create_from_form(&shared, deployer, form).await
                };
                answer.await.into_response()
            };
            at_most_once(app, caller, Rule::Deployer, "/stacks/new", args, work).await
        }
        "get_stack" => stacks::get(state(), Path(segment(args, "stack_id")?), headers())
            .await
            .into_response(),
        "delete_stack" => stacks::delete(state(), Path(segment(args, "stack_id")?), headers())
            .await
            .into_response(),
        "redeploy_stack" => {
            let query = stacks::ServiceQuery {
                service: args
                    .get("service")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            stacks::redeploy(
                state(),
                Path(segment(args, "stack_id")?),
                Query(query),
                headers(),
            )
            .await
            .into_response()
        }
        "update_stack_env" => {
            let slug = segment(args, "stack_id")?;
            env_updates::stack(
                state(),
                Path(slug),
                headers(),
                JsonObject(without(args, "stack_id")),
            )
            .await
            .into_response()
        }
        "set_stack_ttl" => {
            let slug = segment(args, "stack_id")?;
            lifetime::stack_ttl(
                state(),
                Path(slug),
                headers(),
                JsonObject(without(args, "stack_id")),
            )
            .await
            .into_response()
        }
        "make_stack_permanent" => {
            lifetime::stack_permanent(state(), Path(segment(args, "stack_id")?), headers())
                .await
                .into_response()
        }
        _ => return Err(unknown(name)),
    };
    Ok(response)
}

fn unknown(name: &str) -> Refused {
    refused(
        "unknown_tool",
        format!("No tool `{name}` on this host; list the tools again (tools/list)."),
    )
}

/// The arguments but `field` (which went into the path): the route's body.
fn without(args: &Map<String, Value>, field: &str) -> Map<String, Value> {
    let mut body = args.clone();
    body.remove(field);
    body
}

/// An optional whole-number argument.
fn integer(args: &Map<String, Value>, field: &str) -> Result<Option<i64>, Refused> {
    match args.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_i64().map(Some).ok_or_else(|| {
            refused(
                "invalid_arguments",
                format!("`{field}` must be a whole number."),
            )
        }),
    }
}

/// Runs `work` under the idempotency rules of `POST path`, the route the tool stands for;
/// the tool's arguments are its body.
async fn at_most_once(
    app: &SharedApp,
    caller: &Caller,
    rule: Rule,
    path: &str,
    args: &Map<String, Value>,
    work: impl Future<Output = Response> + Send + 'static,
) -> Response {
    let principal = idempotency::principal(app, rule, &caller.headers, &caller.client, path).await;
    let content = idempotency::canonical_body(&serde_json::to_vec(args).unwrap_or_default());
    let call = idempotency::Call {
        principal,
        client: &caller.client,
        headers: &caller.headers,
        route: format!("POST {path}"),
        content: &content,
    };
    idempotency::at_most_once(app, call, work).await
}

/// `create_deploy`'s arguments as the form `POST /deploy/new` reads.
fn deploy_form(args: &Map<String, Value>) -> Result<Form, Refused> {
    let mut form = Form::default();
    if let Some(image) = args.get("image").and_then(Value::as_str) {
        form.fields.insert("image".into(), image.to_string());
    }
    // Both sent: the route refuses the pair, as it does over REST.
    if args.contains_key("tarball_base64") || !form.fields.contains_key("image") {
        let tarball = decoded_tarball(Some(text(args, "tarball_base64")?), "tarball_base64")?;
        form.files.insert("tarball".into(), tarball.into());
    }
    form.fields
        .insert("name".into(), text(args, "name")?.to_string());
    if let Some(port) = args.get("port") {
        let port = port
            .as_u64()
            .ok_or_else(|| refused("invalid_port", "port must be an integer"))?;
        form.fields.insert("port".into(), port.to_string());
    }
    if let Some(env) = args.get("env_vars") {
        form.fields.insert("env_vars".into(), env.to_string());
    }
    Ok(form)
}

/// `create_stack`'s arguments as the form `POST /stacks/new` reads.
fn stack_form(args: &Map<String, Value>) -> Result<Form, Refused> {
    let mut form = Form::default();
    form.fields
        .insert("name".into(), text(args, "name")?.to_string());
    form.fields
        .insert("manifest".into(), text(args, "manifest")?.to_string());
    let tarballs = args
        .get("service_tarballs")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            refused(
                "invalid_arguments",
                "`service_tarballs` is required: an object of service names to base64 tarballs.",
            )
        })?;
    for (service, encoded) in tarballs {
        form.files.insert(
            service.clone(),
            decoded_tarball(encoded.as_str(), service)?.into(),
        );
    }
    Ok(form)
}

/// A base64 tarball argument, decoded.
fn decoded_tarball(encoded: Option<&str>, what: &str) -> Result<Vec<u8>, Refused> {
    let encoded = encoded.ok_or_else(|| {
        refused(
            "invalid_arguments",
            format!("the tarball of `{what}` must be a base64 string"),
        )
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            refused(
                "invalid_tarball",
                format!("the tarball of `{what}` is not base64: {e}"),
            )
        })
}

fn text<'a>(args: &'a Map<String, Value>, field: &str) -> Result<&'a str, Refused> {
    args.get(field).and_then(Value::as_str).ok_or_else(|| {
        refused(
            "invalid_arguments",
            format!("`{field}` is required and must be a string."),
        )
    })
}

/// A token or id placed in a path (see [`crate::wire::plain_segment`]).
fn segment(args: &Map<String, Value>, field: &str) -> Result<String, Refused> {
    let value = text(args, field)?;
    if crate::wire::plain_segment(value) {
        Ok(value.to_string())
    } else {
        Err(refused(
            "invalid_arguments",
            format!("`{field}` must be a token or id as the API returned it."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The tags of the operations agents call.
    const AGENT_TAGS: [&str; 7] = [
        "provision",
        "storage",
        "webhooks",
        "deploys",
        "stacks",
        "resources",
        "vault",
    ];

    /// Agent operations with no fixed tool, and why.
    const NOT_TOOLS: [(&str, &str); 10] = [
        ("post /{kind}/new", "one create_<label> tool per kind"),
        (
            "post /webhook/receive/{receive_id}",
            "called by the webhook's sender, not the agent",
        ),
        ("get /deploy/{id}", "the short path of get_deployment"),
        ("delete /deploy/{id}", "the short path of delete_deployment"),
        ("get /stacks/{slug}", "the short path of get_stack"),
        ("delete /stacks/{slug}", "the short path of delete_stack"),
        ("get /deploy/{id}/logs", "a live stream; tools answer once"),
        (
            "get /stacks/{slug}/logs/{service}",
            "a live stream; tools answer once",
        ),
        (
            "post /api/v1/deployments/{id}/confirm-deletion",
            "a person confirms from the emailed link",
        ),
        (
            "post /api/v1/stacks/{slug}/confirm-deletion",
            "a person confirms from the emailed link",
        ),
    ];

    fn operations() -> Vec<(String, String)> {
        let document = crate::api::openapi::document();
        let mut out = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("a path item") {
                let tag = operation["tags"][0].as_str().unwrap_or_default();
                out.push((format!("{method} {path}"), tag.to_string()));
            }
        }
        out
    }

    /// Every agent route has a tool (or a reason it has none), and every tool stands for
    /// a route of the document: the two surfaces cannot drift apart.
    #[test]
    fn the_tools_and_the_agent_routes_match() {
        let operations = operations();
        let routed: BTreeSet<&str> = (ROUTED_TOOLS.iter().chain(&DEPLOY_TOOLS))
            .map(|(_, route)| *route)
            .collect();
        for (operation, tag) in &operations {
            if !AGENT_TAGS.contains(&tag.as_str()) {
                continue;
            }
            let excused = NOT_TOOLS.iter().any(|(route, _)| route == operation);
            assert!(
                routed.contains(operation.as_str()) || excused,
                "`{operation}` has no MCP tool: add one to the tables, or to NOT_TOOLS with why"
            );
        }
        for route in routed {
            assert!(
                operations.iter().any(|(operation, _)| operation == route),
                "a tool stands for `{route}`, which the API does not have"
            );
        }
        let offered: Vec<String> = fixed_tools(true).into_iter().map(|t| t.name).collect();
        let table: Vec<&str> = (ROUTED_TOOLS.iter().chain(&DEPLOY_TOOLS))
            .map(|(tool, _)| *tool)
            .collect();
        assert_eq!(
            offered, table,
            "the catalog lists the tables' tools in order"
        );
        let without_deploys: Vec<String> = fixed_tools(false).into_iter().map(|t| t.name).collect();
        assert_eq!(without_deploys, table[..ROUTED_TOOLS.len()]);
    }

    #[test]
    fn tools_are_named_by_the_kind_label() {
        let kind = crate::webhooks::Webhooks::kind_info();
        assert_eq!(create_tool_name(&kind), "create_webhook");
    }

    /// A provider's label cannot take over a fixed tool or another kind's tool.
    #[test]
    fn a_label_never_shadows_a_taken_tool_name() {
        let with_label = |name: &str, label: &str| KindInfo {
            name: name.into(),
            label: label.into(),
            ..crate::webhooks::Webhooks::kind_info()
        };
        let claimed = claim_tool_names(vec![
            with_label("aaa", "deploy"),
            with_label("db", "postgres"),
            with_label("zzz", "postgres"),
            with_label("cache", "cache"),
        ]);
        let names: Vec<(&str, &str)> = claimed
            .iter()
            .map(|(tool, kind)| (tool.as_str(), kind.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [("create_postgres", "db"), ("create_cache", "cache")]
        );
    }
}
