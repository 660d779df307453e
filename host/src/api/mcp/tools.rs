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
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::api::deploy::{self, Form};
use crate::api::idempotency::{self, Rule};
use crate::api::json::JsonObject;
use crate::api::schema::Tool;
use crate::api::{capabilities, claim, provision, resources, storage};
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

/// The tools with fixed names; no kind's `create_<label>` may take one.
const FIXED_TOOLS: [&str; 9] = [
    "list_resources",
    "get_capabilities",
    "get_resource",
    "delete_resource",
    "presign_storage",
    "claim_resource",
    "create_deploy",
    "get_deployment",
    "get_deployment_events",
];

/// The kinds provisioned by a JSON body (apps take a tarball and have their own tool),
/// each under its tool name. A label is the provider's word, so a tool name already taken
/// (by a fixed tool or a kind earlier in name order) is not offered twice.
fn json_kinds(app: &App) -> Vec<(String, KindInfo)> {
    claim_tool_names(app.kinds.json_kinds())
}

fn claim_tool_names(offered: Vec<KindInfo>) -> Vec<(String, KindInfo)> {
    let mut taken: Vec<String> = FIXED_TOOLS.iter().map(|t| t.to_string()).collect();
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
                "env": string("An environment label such as production or staging (default: production)."),
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
    tools.extend([
        tool(
            "list_resources",
            "Lists the resources of the signed-in team (needs an API key).",
            schema(json!({}), &[]),
        ),
        tool(
            "get_resource",
            "Status, kind, tier, limits, usage and expiry of one resource (never its URL).",
            token_only("The resource token returned when it was created."),
        ),
        tool(
            "delete_resource",
            "Deletes a resource and everything in it.",
            token_only("The resource token."),
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
        tool(
            "get_capabilities",
            "The tiers, their limits, and the resource kinds this host serves.",
            schema(json!({}), &[]),
        ),
    ]);
    if deploys_available(app) {
        tools.extend([
            tool(
                "create_deploy",
                "Builds and runs a container from a gzipped tarball with a Dockerfile at its top; returns the deployment id and URL while it builds.",
                schema(
                    json!({
                        "tarball_base64": string("The .tar.gz, base64-encoded (at most 10 MB decoded)."),
                        "name": string("The app's name."),
                        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port the app listens on (default 8080)."},
                        "env_vars": {"type": "object", "additionalProperties": {"type": "string"}},
                    }),
                    &["tarball_base64", "name"],
                ),
            ),
            tool(
                "get_deployment",
                "A deployment's status (building, deploying, healthy, failed, stopped), URL and error.",
                schema(json!({"id": string("The deployment id.")}), &["id"]),
            ),
            tool(
                "get_deployment_events",
                "Why a deployment failed: reason, exit code, the last log lines and a hint.",
                schema(json!({"id": string("The deployment id.")}), &["id"]),
            ),
        ]);
    }
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
    let response = match name {
        "list_resources" => resources::list(state(), caller.headers.clone())
            .await
            .into_response(),
        "get_capabilities" => capabilities::capabilities(state()).await.into_response(),
        "get_resource" => resources::get(state(), Path(segment(args, "token")?))
            .await
            .into_response(),
        "delete_resource" => resources::delete(state(), Path(segment(args, "token")?))
            .await
            .into_response(),
        "presign_storage" => {
            let token = segment(args, "token")?;
            let mut body = args.clone();
            body.remove("token");
            let path = format!("/storage/{token}/presign");
            let presign = storage::presign(state(), Path(token), JsonObject(body.clone()));
            let work = async move { presign.await.into_response() };
            at_most_once(app, caller, Rule::PathToken, &path, &body, work).await
        }
        "claim_resource" => claim::claim(state(), JsonObject(args.clone()))
            .await
            .into_response(),
        "create_deploy" if deploys_available(app) => {
            let form = deploy_form(args)?;
            let (shared, headers, client) =
                (app.clone(), caller.headers.clone(), caller.client.clone());
            let work = async move {
                let answer = async {
                    let deployer = deploy::required_bearer(&shared, &headers, &client).await?;
                    deploy::create_from_form(&shared, deployer, &form).await
                };
                answer.await.into_response()
            };
            at_most_once(app, caller, Rule::Deployer, "/deploy/new", args, work).await
        }
        "get_deployment" if deploys_available(app) => {
            deploy::get(state(), Path(segment(args, "id")?))
                .await
                .into_response()
        }
        "get_deployment_events" if deploys_available(app) => {
            deploy::events(state(), Path(segment(args, "id")?))
                .await
                .into_response()
        }
        _ => {
            return Err(refused(
                "unknown_tool",
                format!("No tool `{name}` on this host; list the tools again (tools/list)."),
            ));
        }
    };
    Ok(response)
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
    let encoded = text(args, "tarball_base64")?;
    let tarball = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| {
            refused(
                "invalid_tarball",
                format!("tarball_base64 is not base64: {e}"),
            )
        })?;
    let mut form = Form::default();
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
    form.files.insert("tarball".into(), tarball.into());
    Ok(form)
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
