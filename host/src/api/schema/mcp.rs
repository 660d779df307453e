//! The MCP server's JSON-RPC 2.0 messages.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A JSON-RPC request or notification (a notification has no `id`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JsonRpcRequest {
    /// `2.0`.
    pub jsonrpc: String,
    /// A string or an integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Value)]
    pub id: Option<Value>,
    /// initialize, ping, tools/list or tools/call.
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Object>)]
    pub params: Option<Map<String, Value>>,
}

/// A JSON-RPC answer: a `result` or an `error`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = JsonRpc)]
pub struct JsonRpcAnswer {
    /// `2.0`.
    pub jsonrpc: String,
    /// The request's id; null when it could not be read.
    pub id: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Option<Object>)]
    pub result: Option<RpcResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<RpcError>,
}

/// What a request's method answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RpcResult {
    Initialize(InitializeResult),
    Tools(ToolList),
    Call(ToolResult),
    /// `ping`: an empty object.
    Pong(Map<String, Value>),
}

/// A JSON-RPC error.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

/// `initialize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    pub protocol_version: String,
    pub capabilities: ServerCapabilities,
    pub server_info: ServerInfo,
    pub instructions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerCapabilities {
    pub tools: ToolsCapability,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolsCapability {
    pub list_changed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

/// `tools/list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolList {
    pub tools: Vec<Tool>,
}

/// One tool; its input is described by a JSON Schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub input_schema: Value,
}

/// `tools/call`: the REST answer as text and as structured content.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    pub content: Vec<TextContent>,
    /// The REST answer's JSON, as the route gave it.
    pub structured_content: Value,
    pub is_error: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextContent {
    /// `text`.
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
}

/// A REST answer that was not JSON (a page, a stream), relayed as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawAnswer {
    pub ok: bool,
    pub status: u16,
    pub text: String,
}
