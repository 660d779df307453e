//! The one error envelope every failure is written in.
//!
//! `{ok: false, error, message, request_id, retry_after_seconds, agent_action?}`:
//! `error` is a stable code agents branch on; `message` is for people; `agent_action` tells
//! an agent what to do next. Internal detail is logged where the error is made and never
//! reaches a response.
//!
//! Status policy: 400 the request is wrong and will stay wrong; 402 the tier forbids it;
//! 404 no such route or resource; 409 conflicts with current state; 413 too large; 415 not
//! JSON; 429 slow down; 500 a host bug; 503 a provider or backend failed, retry later
//! (`retry_after_seconds` says when).

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::request_id;
use super::schema::{ErrorBody, False};

/// An API failure. Boxed: it travels through every `Result` of the request path.
#[derive(Debug)]
pub struct ApiError(Box<Details>);

#[derive(Debug)]
struct Details {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    agent_action: Option<String>,
    /// Overrides the status's default `retry_after_seconds`.
    retry_after: Option<u64>,
    /// Extra top-level fields (e.g. `claim_url`, the `token` of an existing resource).
    extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self(Box::new(Details {
            status,
            code: code.into(),
            message: message.into(),
            agent_action: None,
            retry_after: None,
            extra: Map::new(),
        }))
    }

    /// Sets how long the client should wait before retrying.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self
    }

    /// Adds a top-level field to the envelope.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.extra.insert(key.to_string(), value.into());
        self
    }

    /// The stable error code.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// When the client may retry: as set, else the status's default.
    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.0.retry_after.or(match self.0.status.as_u16() {
            429 => Some(60),
            503 => Some(30),
            502 | 504 => Some(10),
            _ => None,
        })
    }

    /// The sentence for people.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Adds the sentence an agent should act on.
    pub fn action(mut self, agent_action: impl Into<String>) -> Self {
        self.0.agent_action = Some(agent_action.into());
        self
    }

    /// A host bug: the detail goes to the log, the client gets a request id to quote.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Something went wrong on our side.",
        )
        .action(CONTACT_OPERATOR)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found."),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This route does not accept that method.",
        )
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {limit} bytes."),
        )
        .action("Tell the user the request was too large; send a smaller JSON body.")
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Send a JSON body with Content-Type: application/json.")
            .action("Retry with the header 'Content-Type: application/json' and a JSON object body such as {\"name\":\"my-db\"}.")
    }

    pub fn invalid_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("The body is not a valid JSON object: {detail}"),
        )
        .action("Retry with a JSON object body such as {\"name\":\"my-db\"}.")
    }

    /// A metadata database failure: an outage (the database is down or restarting) is a
    /// 503 to wait out; anything else is a host bug.
    pub fn store(error: sqlx::Error) -> Self {
        if !crate::store::unavailable(&error) {
            return Self::internal(error);
        }
        tracing::warn!(request_id = %request_id::current(), error = %error, "metadata database unavailable");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "metadata_unavailable", "The service's database is briefly unavailable; nothing was kept.")
            .action("Tell the user the service is briefly unavailable and nothing was kept; retry in 30 seconds.")
    }

    /// A provider failed (trap, timeout, bad answer, backend down): nothing was kept.
    pub fn provider_failed(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(request_id = %request_id::current(), error = %detail, "provider failed");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "provider_failed", "The provider for this resource failed; nothing was created.")
            .action("Tell the user the resource could not be created right now and nothing was kept; retry in 30 seconds, and if it keeps failing, report the request_id to the operator.")
    }
}

impl ApiError {
    /// A provider call that produced no answer: refused by the provider's breaker or
    /// instance limit, or failed in the sandbox.
    pub fn call_failed(error: crate::registry::CallError) -> Self {
        use crate::registry::CallError;
        match error {
            CallError::CircuitOpen {
                provider,
                retry_after,
                ..
            } => {
                tracing::warn!(request_id = %request_id::current(), provider, "call refused: circuit open");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", "The provider for this resource is paused after repeated failures; nothing was created.")
                    .retry_after(retry_after.as_secs() + 1)
                    .action("Tell the user this kind of resource is briefly unavailable and nothing was created; retry after retry_after_seconds, and if it keeps failing, report the request_id to the operator.")
            }
            CallError::Busy { provider, limit } => {
                tracing::warn!(request_id = %request_id::current(), provider, limit, "call refused: all instances busy");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "provider_busy", "The provider for this resource is at its concurrency limit; nothing was created.")
                    .retry_after(5)
                    .action("Retry in a few seconds; nothing was created.")
            }
            other => Self::provider_failed(other),
        }
    }
}

/// Fallback advice when only the operator can help.
const CONTACT_OPERATOR: &str = "Tell the user something went wrong on the server; retry once, then report this request_id to the operator.";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_seconds();
        let details = *self.0;
        let mut extra = details.extra;
        extra.retain(|key, _| !ErrorBody::FIELDS.contains(&key.as_str()));
        let body = ErrorBody {
            ok: False,
            error: details.code.into_owned(),
            message: details.message,
            request_id: request_id::current(),
            retry_after_seconds: retry_after,
            agent_action: details.agent_action,
            extra,
        };
        let mut response = (details.status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
