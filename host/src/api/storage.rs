//! `POST /storage/{token}/presign`: short-lived URLs for one object of a storage resource
//! ("broker" mode: tenants never hold a long-lived S3 key). The host checks the caller, the
//! resource's status and the key; the resource's provider (through its `objects` export)
//! places the key and signs; the S3 server checks the signature, so an edited URL (another
//! prefix, a longer expiry, another method) is refused there.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::json::JsonObject;
use super::lifecycle_error::lifecycle_error;
use super::request_id;
use super::resources::{ended, find, not_found, parse_token};
use super::schema::{PresignRequest, Presigned, True};
use crate::app::SharedApp;
use crate::caps::ObjectMethod;
use crate::lifecycle::error::answered;
use crate::lifecycle::stored::{Credentials, resource_ref};
use crate::store::ResourceStatus;

/// Longest key accepted, relative to the prefix (S3 allows 1024 bytes in all).
const MAX_KEY_BYTES: usize = 900;
const DEFAULT_EXPIRES_IN: u64 = 600;

/// The body is read field by field (not into [`PresignRequest`]) so that each bad field gets
/// its own error code.
#[utoipa::path(post, path = "/storage/{token}/presign", tag = "storage", operation_id = "presignStorage",
    summary = "Presign a URL for one object",
    request_body = PresignRequest,
    responses((status = 200, description = "A presigned URL.", body = Presigned)))]
pub async fn presign(
    State(app): State<SharedApp>,
    Path(token): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<Presigned>, ApiError> {
    let token = parse_token(&token)?;
    let row = find(&app, token).await?;
    // Only kinds whose provider exports `objects` have objects to sign for; a resource whose
    // provider is not live now is answered below, once the request itself is known good.
    let service = app.kinds.for_resource(&row.provider, &row.kind);
    if service.as_ref().is_some_and(|s| !s.signs_objects()) {
        return Err(not_found());
    }
    let now = app.clock.now();
    match row.status {
        ResourceStatus::Deleted | ResourceStatus::Deleting => return Err(ended(&row)),
        ResourceStatus::Pending => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_ready",
                "The resource is still being created.",
            )
            .action("Wait a second, then retry.")
            .retry_after(1));
        }
        _ if row.expires_at.is_some_and(|at| at <= now) => {
            return Err(ApiError::new(
                StatusCode::GONE,
                "resource_expired",
                "This resource reached the end of its lifetime.",
            )
            .action("Tell the user this storage expired and its objects are being removed; provision a new one if they still need it."));
        }
        _ => {}
    }
    if let Err(wait) = app.presign_limiter.take(token, Instant::now()) {
        let seconds = wait.as_secs().max(1);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "Too many presign requests for this resource (limit {PRESIGN_PER_MINUTE} per minute)."
            ),
        )
        .action(format!(
            "Wait {seconds} seconds, then retry; reuse a URL until it expires instead of signing one per request."
        ))
        .retry_after(seconds));
    }

    let method = parse_operation(&body)?;
    let expires_in = parse_expires_in(&body)?;
    let key = parse_key(&body)?;
    if method == ObjectMethod::Put && row.status == ResourceStatus::Suspended {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "storage_limit_exceeded",
            "This storage is over its size limit: uploads are paused, downloads still work.",
        )
        .action("Tell the user the storage is full: delete objects (or claim an account for a bigger tier) and retry the upload once usage is below the limit."));
    }

    // A URL never outlives its resource: uploads after the reaper emptied the prefix
    // would be orphans.
    let expires_in = match row.expires_at {
        Some(at) => expires_in.min(u64::try_from((at - now).num_seconds()).unwrap_or(1).max(1)),
        None => expires_in,
    };
    let state = Credentials::open(&app, &row)
        .map_err(ApiError::internal)?
        .state;
    let service = service.ok_or_else(|| {
        ApiError::provider_failed(format!("no live provider serves kind `{}`", row.kind))
    })?;
    let answer = service
        .presign(
            &request_id::current(),
            &resource_ref(&row, state),
            method,
            &key,
            u32::try_from(expires_in).unwrap_or(3600),
        )
        .await;
    let presigned = answered(answer).map_err(|e| lifecycle_error(&app.public_url, e))?;
    let expires_at = now + chrono::Duration::seconds(i64::try_from(expires_in).unwrap_or(3600));
    Ok(Json(Presigned {
        ok: True,
        url: presigned.url,
        method: method.as_str().to_string(),
        key,
        object_key: presigned.object_key,
        expires_at: expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}

use crate::tenancy::rate_limit::PRESIGN_PER_MINUTE;

fn parse_operation(body: &Map<String, Value>) -> Result<ObjectMethod, ApiError> {
    match body.get("operation").and_then(Value::as_str) {
        Some("PUT") => Ok(ObjectMethod::Put),
        Some("GET") => Ok(ObjectMethod::Get),
        Some("HEAD") => Ok(ObjectMethod::Head),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_operation",
            "`operation` must be \"PUT\", \"GET\" or \"HEAD\".",
        )
        .action("Retry with {\"operation\":\"PUT\",\"key\":\"path/to/file\"} to upload, or \"GET\" to download.")),
    }
}

fn parse_expires_in(body: &Map<String, Value>) -> Result<u64, ApiError> {
    match body.get("expires_in") {
        None | Some(Value::Null) => Ok(DEFAULT_EXPIRES_IN),
        Some(value) => value
            .as_u64()
            .filter(|s| (1..=3600).contains(s))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_expires_in",
                    "`expires_in` must be a whole number of seconds from 1 to 3600.",
                )
                .action(
                    "Retry with an expires_in between 1 and 3600, or leave it out for 600 seconds.",
                )
            }),
    }
}

/// The object key relative to the prefix: non-empty, relative, no `..` or empty segments,
/// no control characters, backslashes, `%` or `+`, at most [`MAX_KEY_BYTES`].
fn parse_key(body: &Map<String, Value>) -> Result<String, ApiError> {
    let invalid = |why: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_key", format!("`key` {why}."))
            .action("Retry with a relative object key such as \"reports/2026/summary.pdf\": no leading '/', no '..' or empty segments, no control characters, '%' or '+', at most 900 bytes.")
    };
    let key = match body.get("key") {
        Some(Value::String(key)) => key,
        _ => return Err(invalid("is required and must be a string")),
    };
    if key.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(invalid("is longer than 900 bytes"));
    }
    if key.starts_with('/') {
        return Err(invalid("must be relative (no leading '/')"));
    }
    // `%` and `+` are refused too: S3 listings come back URL-encoded (or, from some
    // servers, claim to be), and a key that decodes differently could name another object.
    if key
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | '%' | '+'))
    {
        return Err(invalid(
            "must not contain control characters, backslashes, '%' or '+'",
        ));
    }
    if key
        .split('/')
        .any(|segment| segment == ".." || segment == ".")
    {
        return Err(invalid("must not contain '.' or '..' segments"));
    }
    if key.contains("//") {
        return Err(invalid("must not contain empty segments ('//')"));
    }
    Ok(key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: Value) -> Result<String, String> {
        let body: Map<String, Value> = [("key".to_string(), value)].into_iter().collect();
        parse_key(&body).map_err(|e| e.code().to_string())
    }

    #[test]
    fn keys_stay_under_the_prefix() {
        assert_eq!(key(Value::from("a/b.txt")).unwrap(), "a/b.txt");
        assert_eq!(key(Value::from("dir/")).unwrap(), "dir/");
        for bad in [
            Value::from(""),
            Value::from("/etc/passwd"),
            Value::from("../other/x"),
            Value::from("a/../../b"),
            Value::from("a/./b"),
            Value::from("a//b"),
            Value::from("a\u{0}b"),
            Value::from("a\nb"),
            Value::from("a\\b"),
            Value::from("a%2e%2e/x"),
            Value::from("a+b"),
            Value::from("x".repeat(901)),
            Value::from(7),
            Value::Null,
        ] {
            assert_eq!(key(bad.clone()), Err("invalid_key".to_string()), "{bad}");
        }
    }
}
