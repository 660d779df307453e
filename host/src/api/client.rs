//! Resolves who is calling once per request and leaves it in the request's extensions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::SharedApp;

pub async fn identify(State(app): State<SharedApp>, mut request: Request, next: Next) -> Response {
    // Without connection info (an in-process router) the caller is this machine.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip());
    let forwarded_for = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let client = app.clients.resolve(peer, Some(&forwarded_for));
    request.extensions_mut().insert(client);
    next.run(request).await
}
