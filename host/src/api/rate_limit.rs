//! The per-caller request limit on every route: one token bucket per client network
//! (`tenancy::rate_limit`). Kept in memory: each replica limits on its own, so N replicas
//! behind a balancer allow up to N times the rate.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::SharedApp;
use crate::tenancy::client::Client;
use crate::tenancy::rate_limit::limit_key;

pub async fn middleware(State(app): State<SharedApp>, request: Request, next: Next) -> Response {
    let Some(client) = request.extensions().get::<Client>() else {
        return next.run(request).await;
    };
    // Webhook senders are shared services delivering for many tenants from few addresses:
    // their deliveries are limited per receiver and in total (`webhooks::receive`), never
    // per sender address, so one tenant's busy sender cannot block the others'.
    if request.uri().path().starts_with("/webhook/receive/") {
        return next.run(request).await;
    }
    match app.rate_limiter.take(limit_key(client.ip), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let seconds = wait.as_secs().max(1);
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "Too many requests from this address (limit {} per minute).",
                    app.rate_limiter.per_minute()
                ),
            )
            .action(format!(
                "Tell the user the API is rate limiting this network; wait {seconds} seconds before the next request."
            ))
            .retry_after(seconds)
            .into_response()
        }
    }
}
