//! The per-caller request limit on every route: one token bucket per client network
//! (`tenancy::rate_limit`). Kept in memory: each replica limits on its own, so N replicas
//! behind a balancer allow up to N times the rate.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::wants_html;
use super::dashboard::assets::ASSETS_PREFIX;
use super::dashboard::refusal;
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
    // The dashboard's stylesheet and icon are hash-named and served from memory: limiting
    // them only leaves a page unstyled, and the page itself was already counted.
    let path = request.uri().path();
    if path.starts_with("/webhook/receive/") || path.starts_with(ASSETS_PREFIX) {
        return next.run(request).await;
    }
    let Err(wait) = app.rate_limiter.take(limit_key(client.ip), Instant::now()) else {
        return next.run(request).await;
    };
    let seconds = wait.as_secs().max(1);
    let error = ApiError::new(
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
    .retry_after(seconds);
    if wants_html(request.headers()) {
        refusal(error)
    } else {
        error.into_response()
    }
}
