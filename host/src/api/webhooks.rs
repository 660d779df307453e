//! Webhook routes: `ANY /webhook/receive/{token}[/...]` stores what arrives, and
//! `GET /api/v1/webhooks/{token}/requests` lists it, newest first.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};

use super::query::Query;
use axum::http::StatusCode;
use base64::Engine;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::resources::{ended, find, not_found};
use super::schema::{Received, True, WebhookRequest, WebhookRequests};
use crate::app::SharedApp;
use crate::lifecycle::stored::{Credentials, limits_of};
use crate::store::{ReceivedRequest, ResourceRow, ResourceStatus};
use crate::webhooks::{self, WebhookState};

/// Stored requests kept when the tier names no number.
const DEFAULT_KEEP: u64 = 100;

/// Served for every method and sub-path; documented as the `POST` senders use.
#[utoipa::path(post, path = "/webhook/receive/{receive_id}", tag = "webhooks",
    operation_id = "receiveWebhook",
    summary = "Deliver a request to a webhook receiver",
    description = "Any method and sub-path is accepted; the method, path, query, headers (credentials redacted) and body (at most 1 MiB) are stored.",
    request_body(content = String, content_type = "application/octet-stream"),
    responses((status = 200, description = "Stored.", body = Received)))]
pub async fn receive(
    State(app): State<SharedApp>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
) -> Result<Json<Received>, ApiError> {
    let token = params
        .iter()
        .find(|(k, _)| k == "receive_id")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let row = live_webhook(&app, token).await?;
    admit_delivery(&app, &row)?;
    let (parts, body) = request.into_parts();
    let body = read_body(body).await?;
    // Fail closed: a receiver whose settings cannot be read accepts nothing.
    let state: WebhookState = Credentials::open(&app, &row)
        .map_err(ApiError::internal)
        .and_then(|c| serde_json::from_str(&c.state).map_err(ApiError::internal))?;
    if let Some(secret) = &state.hmac_secret {
        let signature = parts
            .headers
            .get(webhooks::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok());
        if !webhooks::signature_matches(secret, &body, signature) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_signature",
                "This receiver requires an X-Hub-Signature-256 header: sha256=<hex HMAC-SHA256 of the body with the shared secret>.",
            )
            .action("Sign the exact request body with the webhook's secret and send it as X-Hub-Signature-256: sha256=<hex>."));
        }
    }
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = webhooks::stored_header_value(
            name.as_str(),
            &String::from_utf8_lossy(value.as_bytes()),
        );
        match headers.get_mut(name.as_str()) {
            // Repeated headers are kept in order, comma-joined as HTTP allows.
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name.as_str().to_string(), Value::String(value));
            }
        }
    }
    let keep = ring_size(&row);
    let request = ReceivedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: Value::Object(headers),
        body,
        received_at: app.clock.now(),
    };
    let id = app
        .webhook_ingest
        .store(row.id, i64::try_from(keep).unwrap_or(i64::MAX), request)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(receiver_ended)?;
    Ok(Json(Received { ok: True, id }))
}

/// `?limit=` (1-100, default 20) and `?before=<id>` page through the stored requests.
#[derive(serde::Deserialize)]
pub struct Page {
    pub limit: Option<i64>,
    pub before: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/webhooks/{token}/requests", tag = "webhooks",
    operation_id = "listWebhookRequests",
    summary = "Stored webhook requests, newest first",
    params(
        ("limit" = Option<i64>, Query, nullable = false, description = "1-100 (default 20)."),
        ("before" = Option<i64>, Query, nullable = false, description = "The next_before of the previous page."),
    ),
    responses((status = 200, description = "A page of requests.", body = WebhookRequests)))]
pub async fn list(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<WebhookRequests>, ApiError> {
    let row = find_webhook(&app, &token).await?;
    if row.status == ResourceStatus::Deleted {
        return Err(ended(&row));
    }
    let limit = page.limit.unwrap_or(20).clamp(1, 100);
    let stored = app
        .store
        .webhook_requests(row.id, limit, page.before)
        .await
        .map_err(ApiError::internal)?;
    let next_before = (stored.len() == usize::try_from(limit).unwrap_or(0))
        .then(|| stored.last().map(|r| r.id))
        .flatten();
    let requests: Vec<WebhookRequest> = stored
        .into_iter()
        .map(|r| {
            let (body, encoding) = match String::from_utf8(r.body) {
                Ok(text) => (text, "utf8"),
                Err(e) => (
                    base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                    "base64",
                ),
            };
            WebhookRequest {
                id: r.id,
                received_at: r.received_at,
                method: r.method,
                path: r.path,
                query: r.query,
                // Stored as an object of names to values (see `receive`).
                headers: match r.headers {
                    Value::Object(headers) => headers,
                    _ => Map::new(),
                },
                body,
                body_encoding: encoding.to_string(),
            }
        })
        .collect();
    Ok(Json(WebhookRequests {
        ok: True,
        token: row.token,
        count: requests.len(),
        requests,
        next_before,
    }))
}

async fn find_webhook(app: &SharedApp, token: &str) -> Result<ResourceRow, ApiError> {
    let token = uuid::Uuid::parse_str(token).map_err(|_| not_found())?;
    let row = find(app, token).await?;
    if !webhooks::is_receiver(&row) || row.status == ResourceStatus::Pending {
        return Err(not_found());
    }
    Ok(row)
}

/// The webhook behind a receive id that may still receive: not deleted, not past its
/// lifetime.
async fn live_webhook(app: &SharedApp, receive_id: &str) -> Result<Arc<ResourceRow>, ApiError> {
    let receive_id = uuid::Uuid::parse_str(receive_id).map_err(|_| not_found())?;
    let row = app
        .webhook_receivers
        .find(&app.store, receive_id)
        .await
        .map_err(ApiError::store)?
        .filter(|row| row.status != ResourceStatus::Failed && row.status != ResourceStatus::Pending)
        .ok_or_else(not_found)?;
    let expired = row.expires_at.is_some_and(|at| at <= app.clock.now());
    if row.status == ResourceStatus::Deleted || row.status == ResourceStatus::Deleting || expired {
        return Err(receiver_ended());
    }
    Ok(row)
}

/// Deliveries a receiver takes per minute for each request its ring keeps.
const DELIVERIES_PER_STORED: u32 = 10;

/// How many requests the receiver's tier keeps.
fn ring_size(row: &ResourceRow) -> u64 {
    limits_of(row)
        .into_iter()
        .find(|(name, _)| name == "requests_stored")
        .map_or(DEFAULT_KEEP, |(_, n)| n)
}

/// Admits one delivery to `row`: within the receiver's own rate (ten times its tier's ring
/// size a minute) and the host's ceiling across all receivers.
fn admit_delivery(app: &SharedApp, row: &ResourceRow) -> Result<(), ApiError> {
    let now = std::time::Instant::now();
    let per_minute = u32::try_from(ring_size(row))
        .unwrap_or(u32::MAX)
        .saturating_mul(DELIVERIES_PER_STORED);
    let refused = |wait: std::time::Duration, message: String| {
        let seconds = wait.as_secs().max(1);
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
            .action(format!(
                "Deliveries are arriving faster than this receiver takes them; retry in {seconds} seconds."
            ))
            .retry_after(seconds)
    };
    // An operator who turned rate limits off (`rate_limit_per_minute = 0`) turned this off too.
    let per_minute = if app.rate_limiter.per_minute() == 0 {
        0
    } else {
        per_minute
    };
    app.delivery_limiter
        .take_at(row.id, per_minute, now)
        .map_err(|wait| {
            refused(
                wait,
                format!("This receiver takes {per_minute} deliveries a minute."),
            )
        })?;
    app.delivery_ceiling.take((), now).map_err(|wait| {
        refused(
            wait,
            "The host is taking no more webhook deliveries right now.".into(),
        )
    })
}

fn receiver_ended() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "resource_expired",
        "This webhook receiver has ended.",
    )
    .action("Point the sender at a new receiver from POST /webhook/new.")
}

async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    match tokio::time::timeout(
        webhooks::BODY_TIMEOUT,
        axum::body::to_bytes(body, webhooks::MAX_BODY),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes.to_vec()),
        Ok(Err(_)) => Err(ApiError::payload_too_large(webhooks::MAX_BODY)),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "The request body did not arrive in time.",
        )
        .action("Send the whole body within 30 seconds.")),
    }
}
