//! Webhook receivers: a delivery's receipt and the stored requests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::True;

/// A delivery, stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Received {
    pub ok: True,
    /// The stored request's id.
    pub id: i64,
}

/// A page of stored requests, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookRequests {
    pub ok: True,
    pub token: Uuid,
    pub count: usize,
    pub requests: Vec<WebhookRequest>,
    /// Pass as `before` for the next (older) page; null on the last.
    pub next_before: Option<i64>,
}

/// One stored request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookRequest {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Header names to values (credentials redacted; repeats comma-joined).
    #[schema(value_type = Object)]
    pub headers: Map<String, Value>,
    pub body: String,
    /// `utf8`, or `base64` for a body that is not UTF-8 text.
    pub body_encoding: String,
}
