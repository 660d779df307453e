//! The HTTP listener. `axum::serve` reads headers for as long as a client cares to send
//! them and accepts without limit, so a few thousand half-sent requests (slowloris) would
//! hold the API and the app proxy forever. Here every connection must finish its request
//! head within `header_read_timeout`, request bodies arrive within `body_read_timeout`, and
//! at most `max_connections` are open at once (the rest wait in the kernel's backlog).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::config::HttpConfig;

/// Marks requests that arrived over TLS.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// How long open connections get to finish once shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then drains open connections.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpConfig,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let handshake_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    let body_timeout = Duration::from_millis(limits.body_read_timeout_ms);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms));
    let http = Arc::new(http);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let over_tls = tls.is_some();
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                if over_tls {
                    request.extensions_mut().insert(OverTls);
                }
                request
            })
            .layer(RequestBodyTimeoutLayer::new(body_timeout))
            .service(router.clone());
        let service = TowerToHyperService::new(service);
        let http = http.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(&http, TokioIo::new(stream), service, stopping).await,
                // The handshake gets the same time as a request head.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(&http, TokioIo::new(stream), service, stopping).await
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection has ended once all permits are back.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period");
    }
}

/// Serves one connection until it ends, finishing the request in flight once shutdown starts.
async fn serve_connection<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let mut asked_to_stop = false;
    loop {
        tokio::select! {
            // Timeouts and resets end connections too: nothing to report.
            _ = connection.as_mut() => break,
            _ = stopping.changed(), if !asked_to_stop => {
                asked_to_stop = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
