//! The OpenAPI 3.1 description of the REST API, served at `/openapi.json` and committed as
//! `openapi/openapi.json`.
//!
//! Tests fail when a route of `api::router` has no operation here, when the served document
//! differs from the committed one, or when a live answer does not match it (schemathesis).

mod build;

use serde_json::{Map, Value, json};

use build::{Auth, Op, nullable, object, op, reference, string};

/// `GET /openapi.json`.
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
    let mut paths: Map<String, Value> = Map::new();
    for operation in operations() {
        let path = paths
            .entry(operation.path.to_string())
            .or_insert_with(|| json!({}));
        let method = operation.method;
        path[method] = operation.finish();
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "instanode",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Real infrastructure for coding agents through single HTTP calls.",
            "description": "Each call creates or manages one resource: a PostgreSQL database (also with pgvector), a Redis namespace, a MongoDB database, a NATS account, an S3 prefix, a webhook receiver or a container deploy. Anonymous resources live 24 hours unless claimed. Every failure answers with the error envelope; its `agent_action` says what to do next. A caller's network is a quota key, never an identity: a resource's token, credentials, deliveries, apps and stacks go only to a caller proving it holds them (the resource's token or upgrade_jwt in the path, as the bearer or in X-Instanode-Token; the same Idempotency-Key from the same caller; or the owning team's session or API key). See /llms.txt.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A team's API key or session token, or (where noted) a resource's upgrade_jwt."},
                "admin": {"type": "http", "scheme": "bearer", "description": "The operator token (admin_token)."},
            },
            "schemas": schemas(),
        },
    })
}

fn schemas() -> Value {
    let timestamp = || nullable("string");
    json!({
        "Error": {
            "type": "object",
            "description": "The error envelope. Stable `error` codes include invalid_name, invalid_body, invalid_query, unsupported_media_type, payload_too_large, not_found, method_not_allowed, rate_limited, provision_limit_reached, resource_count_limit_exceeded, invalid_resource_token, nothing_to_claim, upgrade_token_claimed, resource_not_found, resource_deleted, invalid_token, unauthorized, provider_failed, provider_unavailable, provider_busy, metadata_unavailable, deployment_limit_reached, tarball_too_large, dockerfile_remote_source, event_expired, invalid_form, admin_disabled and the provider refusals (invalid_component, wrong_world, unsupported_contract_version, capability_not_granted, describe_failed, kind_mismatch, provider_not_found, no_previous_version, provider_not_loaded).",
            "properties": {
                "ok": {"const": false},
                "error": string("A stable, machine-readable code."),
                "message": string("What went wrong, for people."),
                "request_id": string("Quote it when reporting a problem."),
                "retry_after_seconds": nullable("integer"),
                "agent_action": string("What an agent should do next."),
            },
            "required": ["ok", "error", "message", "request_id"],
        },
        "Created": {
            "type": "object",
            "description": "A new (201) or returned existing (200) resource; providers add kind-specific fields (e.g. key_prefix, credentials, presign_url).",
            "properties": {
                "ok": {"const": true},
                "id": string("The resource id."),
                "token": string("The resource token: the credential to manage it."),
                "name": {"type": "string"},
                "kind": {"type": "string"},
                "connection_url": string("Works from anywhere the backend is reachable."),
                "internal_url": string("For apps deployed on this host."),
                "tier": {"type": "string"},
                "env": {"type": "string"},
                "limits": {"type": "object"},
                "expires_at": timestamp(),
                "note": {"type": "string"},
                "upgrade": string("Where a person claims the resource."),
                "upgrade_jwt": string("The upgrade token: claims, deploys."),
                "claim_url": {"type": "string"},
                "ignored_fields": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["ok", "id", "token", "name", "kind", "connection_url", "tier"],
        },
        "Resource": {
            "type": "object",
            "properties": {
                "ok": {"const": true},
                "id": {"type": "string"},
                "token": {"type": "string"},
                "name": {"type": "string"},
                "kind": {"type": "string"},
                "env": {"type": "string"},
                "tier": {"type": "string"},
                "status": {"type": "string"},
                "limits": {"type": "object"},
                "usage": {"type": ["object", "null"]},
                "storage_bytes": nullable("integer"),
                "storage_limit_bytes": nullable("integer"),
                "storage_exceeded": {"type": "boolean"},
                "created_at": {"type": "string"},
                "expires_at": timestamp(),
            },
            "required": ["token", "kind", "status"],
        },
        "Deployment": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "app_id": {"type": "string"},
                "name": {"type": "string"},
                "url": {"type": "string"},
                "status": {"enum": ["building", "deploying", "healthy", "failed", "stopped", "deleted"]},
                "port": {"type": "integer"},
                "generation": {"type": "integer"},
                "error": nullable("string"),
                "failure": {"type": ["object", "null"]},
            },
            "required": ["id", "status"],
        },
        "JsonRpc": {
            "type": "object",
            "properties": {
                "jsonrpc": {"const": "2.0"},
                "id": {"type": ["integer", "string", "null"]},
                "result": {"type": "object"},
                "error": object(&[("code", json!({"type": "integer"})), ("message", json!({"type": "string"}))], &["code", "message"]),
            },
            "required": ["jsonrpc"],
        },
        "Ok": {
            "type": "object",
            "properties": {"ok": {"const": true}},
            "required": ["ok"],
        },
    })
}

fn ok_with(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let mut all = vec![("ok", json!({"const": true}))];
    all.extend(properties.iter().cloned());
    let mut needed = vec!["ok"];
    needed.extend(required);
    object(&all, &needed)
}

fn items_of(schema: Value) -> Value {
    ok_with(
        &[("items", json!({"type": "array", "items": schema}))],
        &["items"],
    )
}

fn item(schema: Value) -> Value {
    ok_with(&[("item", schema)], &["item"])
}

/// Every operation the REST API serves, in the order of the docs.
/// Who may read or delete a stack.
const STACK_OWNER: &str = "Bearer: an anonymous stack's stack_token (from POST /stacks/new) or the upgrade_jwt it was created with; a team's stack, the team's session or API key. The slug alone is a public handle.";

pub fn operations() -> Vec<Op> {
    vec![
        // Provisioning.
        op("post", "/{kind}/new", "provision", "createResource", "Create a resource of a kind")
            .describe("Kinds: db (PostgreSQL), vector (PostgreSQL with pgvector), cache (Redis), nosql (MongoDB), queue (NATS JetStream), storage (S3 prefix), webhook, and whatever else the live providers serve (GET /api/v1/capabilities lists them). Over the daily cap, a caller proving a resource it holds (X-Instanode-Token) gets it back (200). Idempotency-Key makes retries safe. The answer's Instanode-Provider header names the provider version.")
            .auth(Auth::Optional)
            .header("Idempotency-Key", "Retries with the same key answer the first result (to a signed-in team, or to an anonymous caller on the same network presenting the same key).")
            .header("X-Instanode-Token", "Resource tokens or upgrade JWTs the caller holds, comma separated: over an anonymous cap, only these are handed back or named.")
            .json_body(object(
                &[
                    ("name", string("1-64 characters: letters, digits, '-', '_'.")),
                    ("env", string("An environment label (default production).")),
                    ("secret", string("webhook only: senders must sign bodies with it.")),
                ],
                &["name"],
            ))
            .answers(201, "Created.", reference("Created"))
            .answers(200, "The caller's existing resource of that name.", reference("Created")),
        op("post", "/storage/{token}/presign", "storage", "presignStorage", "Presign a URL for one object")
            .json_body(object(
                &[
                    ("operation", json!({"enum": ["PUT", "GET", "HEAD"]})),
                    ("key", string("The object key under the resource's prefix.")),
                    ("expires_in", json!({"type": "integer", "minimum": 1, "maximum": 3600})),
                ],
                &["operation", "key"],
            ))
            .answers(200, "A presigned URL.", ok_with(&[("url", json!({"type": "string"})), ("method", json!({"type": "string"})), ("key", json!({"type": "string"})), ("object_key", json!({"type": "string"})), ("expires_at", json!({"type": "string"}))], &["url", "method"])),
        // Webhooks.
        op("post", "/webhook/receive/{receive_id}", "webhooks", "receiveWebhook", "Deliver a request to a webhook receiver")
            .describe("Any method and sub-path is accepted; the method, path, query, headers (credentials redacted) and body (at most 1 MiB) are stored.")
            .binary_body("application/octet-stream")
            .answers(200, "Stored.", ok_with(&[("id", json!({"type": "integer"}))], &["id"])),
        op("get", "/api/v1/webhooks/{token}/requests", "webhooks", "listWebhookRequests", "Stored webhook requests, newest first")
            .query("limit", false, "integer", "1-100 (default 20).")
            .query("before", false, "integer", "The next_before of the previous page.")
            .answers(200, "A page of requests.", ok_with(&[("count", json!({"type": "integer"})), ("requests", json!({"type": "array", "items": {"type": "object"}})), ("next_before", nullable("integer"))], &["requests"])),
        // Deploys.
        op("post", "/deploy/new", "deploys", "createDeploy", "Build and run a container")
            .describe("A gzipped tarball with a Dockerfile at its top (at most 10 MB). Needs a bearer: a team's API key or any resource's upgrade_jwt. Builds have no network: a Dockerfile with ADD <url>, a git or $VARIABLE source, or FROM/COPY --from an image on a registry host is refused (400 dockerfile_remote_source). One build per app runs at a time; a redeploy stops the build it replaces.")
            .auth(Auth::Required)
            .form_body(object(
                &[
                    ("tarball", json!({"type": "string", "contentMediaType": "application/gzip"})),
                    ("name", json!({"type": "string"})),
                    ("port", string("The port the app listens on (default 8080).")),
                    ("env_vars", string("A JSON object of environment variables.")),
                    ("redeploy", string("true: rebuild the caller's app of the same name in place.")),
                ],
                &["tarball"],
            ))
            .answers(202, "Building.", ok_with(&[("id", json!({"type": "string"})), ("app_id", json!({"type": "string"})), ("url", json!({"type": "string"})), ("status", json!({"type": "string"}))], &["id", "url", "status"])),
        op("get", "/api/v1/deployments/{id}", "deploys", "getDeployment", "A deployment's status")
            .answers(200, "The deployment.", item(reference("Deployment"))),
        op("delete", "/api/v1/deployments/{id}", "deploys", "deleteDeployment", "Stop and remove an app")
            .answers(200, "Deleted.", ok_with(&[("id", json!({"type": "string"})), ("status", json!({"const": "deleted"}))], &["status"])),
        op("get", "/api/v1/deployments/{id}/events", "deploys", "getDeploymentEvents", "Why a deployment failed")
            .answers(200, "The failure autopsy (reason, exit_code, last_lines, hint).", ok_with(&[("events", json!({"type": "array", "items": {"type": "object"}})), ("count", json!({"type": "integer"}))], &["events"])),
        op("get", "/deploy/{id}", "deploys", "getDeploymentShort", "A deployment's status (short path)")
            .answers(200, "The deployment.", item(reference("Deployment"))),
        op("delete", "/deploy/{id}", "deploys", "deleteDeploymentShort", "Stop and remove an app (short path)")
            .answers(200, "Deleted.", reference("Ok")),
        op("get", "/deploy/{id}/logs", "deploys", "followDeploymentLogs", "Follow the build and the app's output")
            .answers_as(200, "Server-sent events, one line per data field, `[end]` last.", "text/event-stream"),
        op("post", "/deploy/{id}/redeploy", "deploys", "redeploy", "Rebuild the last upload in place")
            .answers(202, "Building again.", item(reference("Deployment"))),
        // Stacks.
        op("post", "/stacks/new", "stacks", "createStack", "Deploy several services from a manifest")
            .auth(Auth::Required)
            .form_body(object(
                &[
                    ("manifest", string("instant.yaml: services, their build folders, ports and env.")),
                    ("name", json!({"type": "string"})),
                ],
                &["manifest"],
            ))
            .answers(202, "Building.", ok_with(&[("slug", json!({"type": "string"})), ("stack_url", json!({"type": "string"})), ("services", json!({"type": "array"})), ("stack_token", json!({"type": ["string", "null"], "description": "Anonymous stacks: the credential to read and delete it, shown once."}))], &["slug"])),
        op("get", "/api/v1/stacks/{slug}", "stacks", "getStack", "A stack's services")
            .describe(STACK_OWNER)
            .auth(Auth::Required)
            .answers(200, "The stack.", reference("Ok")),
        op("delete", "/api/v1/stacks/{slug}", "stacks", "deleteStack", "Delete every service of a stack")
            .describe(STACK_OWNER)
            .auth(Auth::Required)
            .answers(200, "Deleted.", reference("Ok")),
        op("get", "/stacks/{slug}", "stacks", "getStackShort", "A stack's services (short path)")
            .describe(STACK_OWNER)
            .auth(Auth::Required)
            .answers(200, "The stack.", reference("Ok")),
        op("delete", "/stacks/{slug}", "stacks", "deleteStackShort", "Delete a stack (short path)")
            .answers(200, "Deleted.", reference("Ok")),
        // Resources.
        op("get", "/api/v1/resources", "resources", "listResources", "The signed-in team's resources")
            .auth(Auth::Required)
            .answers(200, "The resources.", ok_with(&[("total", json!({"type": "integer"})), ("items", json!({"type": "array", "items": reference("Resource")}))], &["items"])),
        op("get", "/api/v1/resources/{token}", "resources", "getResource", "One resource (never its URL)")
            .answers(200, "The resource.", reference("Resource")),
        op("delete", "/api/v1/resources/{token}", "resources", "deleteResource", "Delete a resource and its data")
            .answers(200, "Deleted.", reference("Ok")),
        op("get", "/api/v1/resources/{token}/credentials", "resources", "getCredentials", "A claimed resource's connection URL")
            .auth(Auth::Required)
            .answers(200, "The credentials.", reference("Ok")),
        op("post", "/api/v1/resources/{token}/rotate-credentials", "resources", "rotateCredentials", "Replace a claimed resource's password")
            .auth(Auth::Required)
            .answers(200, "The new credentials.", reference("Ok")),
        op("get", "/api/v1/capabilities", "resources", "getCapabilities", "Tiers, limits and the kinds served")
            .answers(200, "Capabilities.", ok_with(&[("kinds", json!({"type": "array", "items": {"type": "string"}})), ("tiers", json!({"type": "array", "items": {"type": "object"}}))], &["kinds", "tiers"])),
        // Claiming and accounts.
        op("get", "/claim/preview", "accounts", "previewClaim", "What a claim would keep")
            .query("t", true, "string", "The upgrade token.")
            .answers(200, "The resource the token would claim: kind, name, status, expiry (never tokens).", reference("Ok")),
        op("post", "/claim", "accounts", "claim", "Claim anonymous resources by email")
            .json_body(object(&[("token", string("The upgrade token of the resource to claim.")), ("email", json!({"type": "string"})), ("tokens", json!({"type": "array", "maxItems": 50, "items": {"type": "string"}, "description": "Upgrade JWTs or tokens of further resources to claim with it; nothing else of the network moves."}))], &["token", "email"]))
            .answers(200, "A claim link was sent.", reference("Ok")),
        op("get", "/start", "accounts", "startPage", "The claim page an upgrade link opens")
            .describe("The resource the upgrade token stands for and a form that emails the claim link.")
            .query("t", false, "string", "The upgrade token.")
            .html_page(&[]),
        op("post", "/auth/email/start", "accounts", "startEmailSignIn", "Email a sign-in link")
            .json_body(object(&[("email", json!({"type": "string"}))], &["email"]))
            .answers(202, "A link is on its way if the address can receive mail.", reference("Ok")),
        op("get", "/auth/email/callback", "accounts", "finishEmailSignIn", "Exchange an emailed link for a session")
            .query("t", true, "string", "From the emailed link.")
            .answers(200, "A session token.", ok_with(&[("session_token", json!({"type": "string"})), ("email", json!({"type": "string"}))], &["session_token"]))
            .answers_empty(303, "A browser (Accept: text/html first) gets the session as a cookie and is sent to /dashboard."),
        op("get", "/auth/me", "accounts", "me", "The signed-in account")
            .auth(Auth::Required)
            .answers(200, "The account.", ok_with(&[("email", json!({"type": "string"})), ("team_id", json!({"type": "string"})), ("tier", json!({"type": "string"}))], &["email"])),
        op("post", "/auth/logout", "accounts", "logout", "End the session")
            .auth(Auth::Required)
            .answers(200, "Signed out.", reference("Ok")),
        op("post", "/auth/cli", "accounts", "startCliSignIn", "Open a device sign-in session")
            .answers(201, "Open auth_url in a browser; poll the session.", ok_with(&[("session_id", json!({"type": "string"})), ("auth_url", json!({"type": "string"})), ("expires_in", json!({"type": "integer"}))], &["session_id", "auth_url"])),
        op("get", "/auth/cli/{id}", "accounts", "pollCliSignIn", "Poll a device sign-in session")
            .answers(202, "Waiting for approval.", reference("Ok"))
            .answers(200, "Approved: the API key, shown once.", ok_with(&[("api_key", json!({"type": "string"}))], &["api_key"])),
        op("get", "/auth/cli/{id}/approve", "accounts", "cliApprovePage", "The approval page")
            .answers_as(200, "An HTML page.", "text/html"),
        op("post", "/auth/cli/{id}/approve", "accounts", "approveCliSignIn", "Approve a device sign-in")
            .auth(Auth::Required)
            .answers(200, "Approved.", reference("Ok")),
        op("get", "/api/v1/auth/api-keys", "accounts", "listApiKeys", "The team's API keys")
            .auth(Auth::Required)
            .answers(200, "The keys (never their secrets).", items_of(json!({"type": "object"}))),
        op("post", "/api/v1/auth/api-keys", "accounts", "createApiKey", "Create an API key")
            .auth(Auth::Required)
            .json_body(object(&[("name", json!({"type": "string"}))], &[]))
            .answers(201, "The key, shown once.", ok_with(&[("key", json!({"type": "string"}))], &["key"])),
        op("delete", "/api/v1/auth/api-keys/{id}", "accounts", "revokeApiKey", "Revoke an API key")
            .auth(Auth::Required)
            .answers(200, "Revoked.", reference("Ok")),
        op("post", "/billing/webhook", "accounts", "billingWebhook", "Payment events (signed by the billing provider)")
            .describe("JSON {id, created (Unix seconds), event: subscription.activated | subscription.cancelled, team, tier}, HMAC-SHA256 signed in X-Instanode-Signature: sha256=<hex>. Events created more than 5 minutes from the host's clock are refused (400 event_expired); an id already applied, or an event older than one applied to the team, answers 200 with applied: false.")
            .binary_body("application/json")
            .answers(200, "Applied.", reference("Ok")),
        // The dashboard (people, in a browser).
        op("get", "/dashboard", "dashboard", "dashboard", "The team's resources, or the sign-in form")
            .describe("Signed in by the session cookie an emailed link sets.")
            .answers_as(200, "An HTML page.", "text/html"),
        op("post", "/dashboard/logout", "dashboard", "dashboardLogout", "Sign the browser out")
            .answers_empty(303, "The cookie is cleared; back to /dashboard."),
        op("get", "/dashboard/resources/{token}", "dashboard", "dashboardResource", "One resource: status, usage, lifetime, credential history")
            .html_page(&[400, 404, 410])
            .answers_empty(303, "No session: to the sign-in form."),
        op("post", "/dashboard/resources/{token}/reveal", "dashboard", "dashboardRevealCredentials", "Show the credentials (recorded in the credential history)")
            .url_encoded_body(object(&[("csrf", string("The form token of the page the form is on."))], &["csrf"]))
            .html_page(&[400, 403, 404, 410])
            .answers_empty(303, "No session: to the sign-in form."),
        op("post", "/dashboard/resources/{token}/rotate", "dashboard", "dashboardRotateCredentials", "Issue new credentials (recorded in the credential history)")
            .url_encoded_body(object(&[("csrf", string("The form token of the page the form is on."))], &["csrf"]))
            .html_page(&[400, 403, 404, 409, 410, 503])
            .answers_empty(303, "No session: to the sign-in form."),
        op("get", "/dashboard/deployments/{id}", "dashboard", "dashboardDeployment", "A deployment's status, live log and autopsy")
            .html_page(&[404]),
        op("get", "/dashboard/operator", "dashboard", "operatorPage", "Providers, versions and health; the operator sign-in form")
            .describe("Signed in by the `instanode_operator` cookie that the admin token is exchanged for.")
            .html_page(&[403]),
        op("post", "/dashboard/operator/sign-in", "dashboard", "operatorSignIn", "Exchange the admin token for an operator cookie")
            .url_encoded_body(object(&[("token", string("The host's admin token."))], &["token"]))
            .answers_empty(303, "Signed in; to the operator page.")
            .html_page(&[401, 403]),
        op("post", "/dashboard/operator/sign-out", "dashboard", "operatorSignOut", "Clear the operator cookie")
            .answers_empty(303, "Signed out; to the operator page."),
        op("post", "/dashboard/operator/providers/{name}/rollback", "dashboard", "operatorRollback", "Go back to a provider's previous version")
            .url_encoded_body(object(&[("csrf", string("The form token of the page the form is on."))], &["csrf"]))
            .html_page(&[400, 403, 404, 409])
            .answers_empty(303, "No operator session: to the sign-in form."),
        op("post", "/dashboard/operator/providers/{name}/unload", "dashboard", "operatorUnload", "Take a provider out of service")
            .url_encoded_body(object(&[("csrf", string("The form token of the page the form is on."))], &["csrf"]))
            .html_page(&[400, 403, 404, 409])
            .answers_empty(303, "No operator session: to the sign-in form."),
        op("post", "/dashboard/operator/providers/{name}/upload", "dashboard", "operatorUpload", "Replace a provider with an uploaded component")
            .describe("Sent by the operator page's script with the page's form token in `X-Instanode-Form-Token`; answers like PUT /admin/providers/{name}.")
            .header("X-Instanode-Form-Token", "The operator page's form token.")
            .binary_body("application/octet-stream")
            .answers(200, "Swapped (or unchanged).", ok_with(&[("unchanged", json!({"type": "boolean"})), ("provider", json!({"type": "object"})), ("swap_ms", json!({"type": "number"}))], &["provider"])),
        // Discovery and health.
        op("get", "/healthz", "health", "healthz", "Liveness")
            .answers(200, "The process answers.", ok_with(&[("version", json!({"type": "string"})), ("commit_id", json!({"type": "string"}))], &["version"])),
        op("get", "/readyz", "health", "readyz", "Readiness of the metadata database and every provider")
            .answers(200, "Ready (overall ok or degraded).", object(&[("ok", json!({"type": "boolean"})), ("overall", json!({"enum": ["ok", "degraded", "failed"]})), ("checks", json!({"type": "object"}))], &["ok", "overall", "checks"]))
            .answers(503, "The metadata database is down.", object(&[("ok", json!({"const": false})), ("overall", json!({"const": "failed"})), ("checks", json!({"type": "object"}))], &["ok", "overall"])),
        op("get", "/llms.txt", "docs", "llmsTxt", "What agents read first")
            .answers_as(200, "Markdown, served as plain text.", "text/plain"),
        op("get", "/docs/{page}", "docs", "docsPage", "A docs page as Markdown (providers.md, llms.md)")
            .answers_as(200, "Markdown.", "text/markdown"),
        op("get", "/openapi.json", "docs", "openapi", "This document")
            .answers(200, "OpenAPI 3.1.", json!({"type": "object"})),
        op("post", "/mcp", "docs", "mcp", "The MCP server (Streamable HTTP)")
            .describe("One JSON-RPC 2.0 message per request: initialize, ping, tools/list, tools/call. Requests are answered with JSON; notifications with 202. Each message counts against the caller's rate limit once; a message is at most 256 KiB unless the request carries an upgrade_jwt, session or API key (413 with a JSON-RPC error).")
            .auth(Auth::Optional)
            .json_body(object(&[("jsonrpc", json!({"const": "2.0"})), ("id", json!({"type": ["integer", "string"]})), ("method", json!({"type": "string"})), ("params", json!({"type": "object"}))], &["jsonrpc", "method"]))
            .answers(200, "A JSON-RPC answer.", reference("JsonRpc"))
            .answers(400, "A message that is not JSON-RPC: a JSON-RPC error.", reference("JsonRpc"))
            .answers(413, "A message over the size limit: a JSON-RPC error.", reference("JsonRpc"))
            .answers_empty(202, "A notification, accepted."),
        // Operators.
        op("get", "/admin/providers", "operators", "listProviders", "Live providers, versions and health")
            .auth(Auth::Admin)
            .answers(200, "The providers.", ok_with(&[("providers", json!({"type": "array", "items": {"type": "object"}})), ("unloaded", json!({"type": "array", "items": {"type": "string"}}))], &["providers"])),
        op("get", "/admin/quota", "operators", "listQuotaFailures", "Resources whose suspension or resumption keeps failing")
            .auth(Auth::Admin)
            .answers(200, "Each resource the meter could not suspend (or resume): id, kind, provider, status, error, failing_since, attempts, usage.", ok_with(&[("failing", json!({"type": "array", "items": {"type": "object"}}))], &["failing"])),
        op("put", "/admin/providers/{name}", "operators", "uploadProvider", "Replace a provider with a new component")
            .auth(Auth::Admin)
            .binary_body("application/octet-stream")
            .answers(200, "Swapped (or unchanged).", ok_with(&[("unchanged", json!({"type": "boolean"})), ("provider", json!({"type": "object"})), ("swap_ms", json!({"type": "number"}))], &["provider"])),
        op("post", "/admin/providers/{name}/rollback", "operators", "rollbackProvider", "Go back to the previous version")
            .auth(Auth::Admin)
            .answers(200, "Swapped.", reference("Ok")),
        op("post", "/admin/providers/{name}/unload", "operators", "unloadProvider", "Take a provider out of service")
            .auth(Auth::Admin)
            .answers(200, "Unloaded.", reference("Ok")),
    ]
}
