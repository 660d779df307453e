//! `POST /build` on the engine's socket, sent directly: the client library does not pass
//! `cgroupparent`, which the build's process cap needs (see [`super::build_cgroup`]).
//! Dropping the call closes the connection, and the engine then stops the build.

use axum::body::Body;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Sends the build and hands each progress message (`{"stream": ...}`,
/// `{"errorDetail": {"message": ...}}`, ...) to `on_message` until the engine ends.
pub async fn build(
    socket: &str,
    query: &str,
    context: Vec<u8>,
    mut on_message: impl FnMut(Value),
) -> Result<(), String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot reach the engine at {socket}: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("engine handshake: {e}"))?;
    // The connection is driven here, not spawned: it closes when this call is dropped.
    let mut connection = std::pin::pin!(connection);
    let request = hyper::Request::post(format!("/build?{query}"))
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, "application/x-tar")
        .body(Body::from(context))
        .map_err(|e| e.to_string())?;
    let response = tokio::select! {
        response = sender.send_request(request) => response.map_err(|e| format!("engine: {e}"))?,
        ended = &mut connection => return Err(format!("the engine closed the connection: {ended:?}")),
    };
    let status = response.status();
    let mut body = Body::new(response.into_body()).into_data_stream();
    let mut pending = Vec::new();
    let mut connection_open = true;
    loop {
        let chunk = tokio::select! {
            chunk = body.next() => chunk,
            _ = &mut connection, if connection_open => {
                connection_open = false;
                continue;
            }
        };
        let Some(chunk) = chunk else { break };
        pending.extend_from_slice(&chunk.map_err(|e| format!("engine: {e}"))?);
        while let Some(at) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=at).collect();
            if let Ok(message) = serde_json::from_slice::<Value>(&line) {
                on_message(message);
            }
        }
    }
    if let Ok(message) = serde_json::from_slice::<Value>(&pending) {
        on_message(message);
    }
    if !status.is_success() {
        let text = String::from_utf8_lossy(&pending).trim().to_string();
        return Err(format!("the engine refused the build ({status}): {text}"));
    }
    Ok(())
}
