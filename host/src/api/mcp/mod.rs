//! The MCP server at `/mcp`: JSON-RPC 2.0 over the Streamable HTTP transport.
//!
//! Every message is one `POST`; requests are answered with one `application/json` body (the
//! transport allows it in place of a stream), notifications and client responses with 202.
//! The server keeps no session: each tool call carries the caller's own `Authorization`,
//! and the tool list is read from the live providers on every `tools/list`, so a tool
//! appears and disappears with the provider that serves its kind.

mod tools;

use axum::Json;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::schema::{
    ErrorBody, False, InitializeResult, JsonRpcAnswer, JsonRpcRequest, RawAnswer, RpcError,
    RpcResult, ServerCapabilities, ServerInfo, TextContent, ToolList, ToolResult, ToolsCapability,
};
use crate::app::SharedApp;
use crate::tenancy::client::Client;

/// Protocol revisions this server speaks, newest first.
const PROTOCOL_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The largest message: a `create_deploy` carrying the largest tarball, base64-encoded.
const MAX_MESSAGE: usize = super::deploy::MAX_TARBALL / 3 * 4 + 64 * 1024;
/// The largest message from a caller showing no credential: every tool fits but a
/// deploy, which needs one anyway.
const MAX_UNSIGNED_MESSAGE: usize = 256 * 1024;
/// The largest REST answer relayed to the client.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

#[derive(Clone)]
pub struct Mcp {
    app: SharedApp,
}

pub fn routes(app: SharedApp) -> Router {
    Router::new()
        .route("/mcp", post(handle).get(no_stream).delete(no_stream))
        // Every message counts against the caller's allowance, like a REST request (its
        // tool call is a function call, not another request).
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::rate_limit::middleware,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            super::client::identify,
        ))
        .with_state(Mcp { app })
}

/// Whether the caller shows a credential this host signed or issued (an upgrade token, a
/// session, an API key), which lets it send messages as large as a deploy.
async fn shows_credential(app: &crate::app::App, headers: &HeaderMap) -> bool {
    let Some(token) = super::auth::bearer_token(headers) else {
        return false;
    };
    app.tokens
        .verify(token)
        .is_ok_and(|claims| claims.exp > app.clock.now().timestamp())
        || super::auth::account(app, headers).await.is_ok()
}

/// No server-initiated stream and no session to end: 405, as the transport prescribes.
async fn no_stream() -> Response {
    let mut response = ApiError::method_not_allowed().into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// The body is read as any JSON (not into [`JsonRpcRequest`]) so that each way a message can
/// be malformed gets its own JSON-RPC error.
#[utoipa::path(post, path = "/mcp", tag = "docs", operation_id = "mcp",
    summary = "The MCP server (Streamable HTTP)",
    description = "One JSON-RPC 2.0 message per request: initialize, ping, tools/list, tools/call. Requests are answered with JSON; notifications with 202. Each message counts against the caller's rate limit once; a message is at most 256 KiB unless the request carries an upgrade_jwt, session or API key (413 with a JSON-RPC error).",
    security((), ("bearer" = [])),
    request_body = JsonRpcRequest,
    responses(
        (status = 200, description = "A JSON-RPC answer.", body = JsonRpcAnswer),
        (status = 400, description = "A message that is not JSON-RPC: a JSON-RPC error.", body = JsonRpcAnswer),
        (status = 413, description = "A message over the size limit: a JSON-RPC error.", body = JsonRpcAnswer),
        (status = 202, description = "A notification, accepted."),
    ))]
async fn handle(State(mcp): State<Mcp>, request: Request) -> Response {
    if !origin_allowed(&mcp.app.public_url, request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "Browser pages from other sites may not call /mcp.",
        )
        .action("Call /mcp from an MCP client, not from a web page of another origin.")
        .into_response();
    }
    let (parts, body) = request.into_parts();
    let limit = if shows_credential(&mcp.app, &parts.headers).await {
        MAX_MESSAGE
    } else {
        MAX_UNSIGNED_MESSAGE
    };
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        let message = format!(
            "The message is larger than {limit} bytes; a deploy's tarball is accepted only with `Authorization: Bearer <upgrade_jwt or API key>`."
        );
        let mut response = rpc_error(Value::Null, -32600, &message);
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
        return response;
    };
    let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
        return rpc_error(Value::Null, -32700, "The body is not JSON.");
    };
    let Some(message) = message.as_object() else {
        return rpc_error(
            Value::Null,
            -32600,
            "Send one JSON-RPC message per request (batches are not supported).",
        );
    };
    let id = message.get("id").cloned();
    let method = message.get("method").and_then(Value::as_str);
    let (Some(id), Some(method)) = (id, method) else {
        // A notification, or the client's answer to something: nothing to say back.
        return StatusCode::ACCEPTED.into_response();
    };
    if !(id.is_string() || id.is_i64() || id.is_u64()) {
        return rpc_error(
            Value::Null,
            -32600,
            "A request id is a string or an integer.",
        );
    }
    let params = message
        .get("params")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let Some(client) = parts.extensions.get::<Client>().cloned() else {
        return rpc_error(id, -32603, "The caller could not be identified.");
    };
    let mut headers = HeaderMap::new();
    for name in FORWARDED_HEADERS {
        for value in parts.headers.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    let caller = tools::Caller { client, headers };
    match method {
        "initialize" => rpc_result(id, RpcResult::Initialize(initialize(&params))),
        "ping" => rpc_result(id, RpcResult::Pong(Map::new())),
        "tools/list" => rpc_result(
            id,
            RpcResult::Tools(ToolList {
                tools: tools::catalog(&mcp.app),
            }),
        ),
        "tools/call" => {
            let Some(name) = params.get("name").and_then(Value::as_str) else {
                return rpc_error(id, -32602, "tools/call needs params.name.");
            };
            let arguments = params
                .get("arguments")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            let result = call_tool(&mcp.app, &caller, name, &arguments).await;
            rpc_result(id, RpcResult::Call(result))
        }
        other => rpc_error(id, -32601, &format!("No method `{other}` here.")),
    }
}

fn initialize(params: &Map<String, Value>) -> InitializeResult {
    let asked = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = PROTOCOL_VERSIONS
        .iter()
        .find(|v| **v == asked)
        .unwrap_or(&PROTOCOL_VERSIONS[0]);
    InitializeResult {
        protocol_version: version.to_string(),
        capabilities: ServerCapabilities {
            tools: ToolsCapability {
                list_changed: false,
            },
        },
        server_info: ServerInfo {
            name: "instanode".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        instructions: "Each tool is one call of the instanode REST API (see /llms.txt). Create tools return a connection URL that works at once; anonymous resources live 24 hours unless claimed. Pass an API key as 'Authorization: Bearer <key>' to act for a team. When a tool fails, do what its agent_action says.".into(),
    }
}

/// The caller's headers a tool's route reads.
const FORWARDED_HEADERS: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-forwarded-for",
    "idempotency-key",
];

async fn call_tool(
    app: &SharedApp,
    caller: &tools::Caller,
    name: &str,
    args: &Map<String, Value>,
) -> ToolResult {
    let response = match tools::call(app, caller, name, args).await {
        Ok(response) => response,
        Err(refused) => {
            let envelope = error_envelope(
                refused.code,
                refused.message,
                Some("Fix the arguments as the message says and call the tool again."),
            );
            return tool_result(&envelope, true);
        }
    };
    let failed = !response.status().is_success();
    let status = response.status().as_u16();
    // The route's answer is relayed as it came: any JSON the REST API answers.
    let answer = match axum::body::to_bytes(response.into_body(), MAX_ANSWER).await {
        Ok(bytes) => serde_json::from_slice::<Value>(&bytes).unwrap_or_else(|_| {
            to_json(&RawAnswer {
                ok: !failed,
                status,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        }),
        Err(e) => error_envelope("answer_unreadable", e.to_string(), None),
    };
    tool_result(&answer, failed)
}

/// A refusal made here rather than by a route, in the REST API's error envelope.
fn error_envelope(code: &str, message: String, agent_action: Option<&str>) -> Value {
    to_json(&ErrorBody {
        ok: False,
        error: code.to_string(),
        message,
        request_id: super::request_id::current(),
        retry_after_seconds: None,
        agent_action: agent_action.map(str::to_string),
        extra: Map::new(),
    })
}

/// A typed answer as the JSON a relayed REST answer is held in.
fn to_json(answer: &impl serde::Serialize) -> Value {
    serde_json::to_value(answer).unwrap_or_default()
}

/// A tool's answer: the REST body as text (what every client shows) and as structured
/// content; on an error the text leads with the code and what to do about it.
fn tool_result(answer: &Value, is_error: bool) -> ToolResult {
    let body = serde_json::to_string_pretty(answer).unwrap_or_default();
    let text = if is_error {
        let field = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or_default();
        format!(
            "{}: {}\nagent_action: {}\n\n{body}",
            field("error"),
            field("message"),
            field("agent_action")
        )
    } else {
        body
    };
    ToolResult {
        content: vec![TextContent {
            kind: "text".into(),
            text,
        }],
        structured_content: answer.clone(),
        is_error,
    }
}

fn rpc_result(id: Value, result: RpcResult) -> Response {
    Json(JsonRpcAnswer {
        jsonrpc: "2.0".into(),
        id,
        result: Some(result),
        error: None,
    })
    .into_response()
}

fn rpc_error(id: Value, code: i64, message: &str) -> Response {
    let status = if id.is_null() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let answer = JsonRpcAnswer {
        jsonrpc: "2.0".into(),
        id,
        result: None,
        error: Some(RpcError {
            code,
            message: message.to_string(),
        }),
    };
    (status, Json(answer)).into_response()
}

/// Browsers send `Origin`; only this host's own pages may call `/mcp` from one (a guard
/// against DNS rebinding). Clients that are not browsers send none.
fn origin_allowed(public_url: &str, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    origin == public_url
        || origin.strip_prefix("http://") == Some(host)
        || origin.strip_prefix("https://") == Some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_pages_may_call() {
        let mut headers = HeaderMap::new();
        assert!(origin_allowed("https://api.example", &headers));
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(origin_allowed("https://api.example", &headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://api.example"),
        );
        assert!(origin_allowed("https://api.example", &headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!origin_allowed("https://api.example", &headers));
    }

    #[test]
    fn the_client_version_is_kept_when_known() {
        let asked = |v: &str| {
            let mut params = Map::new();
            params.insert("protocolVersion".into(), Value::from(v));
            initialize(&params).protocol_version
        };
        assert_eq!(asked("2025-03-26"), "2025-03-26");
        assert_eq!(asked("1999-01-01"), PROTOCOL_VERSIONS[0]);
    }
}
