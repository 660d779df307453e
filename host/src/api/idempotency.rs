//! Idempotent creation, scoped to the caller's *principal*: replays go only to whoever made
//! the first request. With an `Idempotency-Key` header the first answer is kept 24 hours and
//! replayed for the same key and body; for a signed-in team the key is the team's, for the
//! holder of a resource's secret (an upgrade token deploying, a storage token presigning)
//! it is that resource's, and for an anonymous caller the key itself is the proof (scoped
//! to its network, which alone proves nothing), so it must be unguessable. Without a key, a
//! team's or holder's identical request (same route and body content) within 120 seconds
//! gets the first answer; an anonymous request without a key is never replayed, since a
//! neighbour on the same network could send the same body. Entries live in the metadata
//! database so every replica shares them, and their bodies are sealed because a creation
//! answer carries credentials. Only successes are kept: refusals and failures are judged
//! again on a retry.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::error::ApiError;
use crate::app::{App, SharedApp};
use crate::store::{Claim, EntryKey};
use crate::tenancy::client::Client;

const EXPLICIT_TTL: Duration = Duration::hours(24);
const FINGERPRINT_TTL: Duration = Duration::seconds(120);

#[derive(Clone, Copy)]
enum Source {
    Explicit,
    Fingerprint,
    Miss,
}

impl Source {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Explicit => "explicit",
            Self::Fingerprint => "fingerprint",
            Self::Miss => "miss",
        })
    }
}

/// Whose kept answers a request may get back.
pub enum Principal {
    /// A signed-in team (session or API key).
    Team(Uuid),
    /// Whoever holds the secret that acts for one resource.
    Holder(Uuid),
    /// No credential: only an explicit key, scoped to the caller's network, keeps answers.
    Anonymous,
    /// Credentials the route refuses: nothing is kept.
    Refused,
}

/// How a route's principal is found.
#[derive(Clone, Copy)]
pub enum Rule {
    /// A session or API key, or none.
    Account,
    /// A deploy's bearer: a session or API key, or a resource's upgrade token, or none.
    Deployer,
    /// The resource token in the path (`/storage/{token}/...`).
    PathToken,
}

/// Finds the principal of a request under `rule`.
pub async fn principal(
    app: &App,
    rule: Rule,
    headers: &HeaderMap,
    client: &Client,
    path: &str,
) -> Principal {
    match rule {
        Rule::Account => match headers.get(header::AUTHORIZATION) {
            None => Principal::Anonymous,
            Some(_) => match super::auth::account(app, headers).await {
                Ok(account) => Principal::Team(account.team_id),
                Err(_) => Principal::Refused,
            },
        },
        Rule::Deployer => match super::deploy::bearer(app, headers, client).await {
            Ok(None) => Principal::Anonymous,
            Ok(Some(deployer)) => match (deployer.team, deployer.proof) {
                (Some((team, _)), _) => Principal::Team(team),
                (None, Some(resource)) => Principal::Holder(resource),
                (None, None) => Principal::Refused,
            },
            Err(_) => Principal::Refused,
        },
        Rule::PathToken => path
            .split('/')
            .nth(2)
            .and_then(|token| Uuid::parse_str(token).ok())
            .map_or(Principal::Refused, Principal::Holder),
    }
}

/// The state of the route layer: the app, how the route's principal is found, and its
/// largest body.
#[derive(Clone)]
pub struct Guarded {
    pub app: SharedApp,
    pub rule: Rule,
    pub max_body: usize,
    /// The route's own refusal of a body over `max_body`.
    pub too_large: fn() -> ApiError,
}

/// The route layer on the creating routes.
pub async fn middleware(State(guard): State<Guarded>, request: Request, next: Next) -> Response {
    let Some(client) = request.extensions().get::<Client>().cloned() else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, guard.max_body).await else {
        return (guard.too_large)().into_response();
    };
    let route = format!("{} {}", parts.method, parts.uri.path());
    let headers = parts.headers.clone();
    let principal = principal(&guard.app, guard.rule, &headers, &client, parts.uri.path()).await;
    let content = content_of(&headers, &bytes).await;
    let request = Request::from_parts(parts, Body::from(bytes));
    let call = Call {
        principal,
        client: &client,
        headers: &headers,
        route,
        content: &content,
    };
    at_most_once(&guard.app, call, next.run(request)).await
}

/// One creating request, as the idempotency rules see it.
pub struct Call<'a> {
    pub principal: Principal,
    pub client: &'a Client,
    pub headers: &'a HeaderMap,
    /// `METHOD /path`.
    pub route: String,
    /// The body's content in a canonical form (see [`content_of`]).
    pub content: &'a [u8],
}

/// Runs `work`, the creation `call` asks for, unless its principal already did (see the
/// module's rules): then the first answer is replayed, or a 409 says why not. Used by the
/// route layer above and by MCP tool calls.
pub async fn at_most_once<F>(app: &SharedApp, call: Call<'_>, work: F) -> Response
where
    F: Future<Output = Response> + Send + 'static,
{
    let explicit_key = match call.headers.get("idempotency-key").map(parse_key) {
        None => None,
        Some(Ok(key)) => Some(key),
        Some(Err(e)) => return e.into_response(),
    };
    let principal_scope = match call.principal {
        Principal::Team(team) => Some(format!("team:{team}")),
        Principal::Holder(resource) => Some(format!("holder:{resource}")),
        Principal::Anonymous => None,
        // The route refuses these credentials itself.
        Principal::Refused => return work.await,
    };
    if explicit_key.is_none() && principal_scope.is_none() {
        return with_source(work.await, Source::Miss);
    }
    let scope = principal_scope.unwrap_or_else(|| call.client.fingerprint.clone());
    let route = call.route;
    let request_hash = hex_sha256(&[route.as_bytes(), call.content]);
    let (key_hash, ttl, source) = match &explicit_key {
        Some(key) => (
            hex_sha256(&[key.as_bytes()]),
            EXPLICIT_TTL,
            Source::Explicit,
        ),
        None => (
            hex_sha256(&[scope.as_bytes(), request_hash.as_bytes()]),
            FINGERPRINT_TTL,
            Source::Fingerprint,
        ),
    };
    let key = Key {
        scope,
        route,
        key_hash,
    };
    let claim = app
        .store
        .claim_idempotency_key(&key.entry(), &request_hash, app.clock.now(), ttl)
        .await;
    let fresh_source = match source {
        Source::Fingerprint => Source::Miss,
        other => other,
    };
    let response = match claim {
        Ok(Claim::Taken) => {
            // Run to completion even if the client hangs up, so the entry is settled.
            let app = app.clone();
            let id = super::request_id::current();
            let answer = tokio::spawn(super::request_id::scope(id, async move {
                run_and_store(&app, &key, work).await
            }))
            .await
            .unwrap_or_else(|e| ApiError::internal(e).into_response());
            return with_source(answer, fresh_source);
        }
        Ok(Claim::InProgress) => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_progress",
            "An identical request is still being processed.",
        )
        .action("Wait a second, then retry the same request to get its answer.")
        .retry_after(1)
        .into_response(),
        Ok(Claim::Mismatch) => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_conflict",
            "This Idempotency-Key was already used with a different request body.",
        )
        .action("Use a new Idempotency-Key for a different request; reuse a key only to retry the exact same request.")
        .into_response(),
        Ok(Claim::Done {
            status,
            sealed_body,
        }) => replay(app, &key, status, &sealed_body),
        Err(e) => {
            // The cache is a convenience: without it, run the request uncached.
            tracing::warn!(error = %e, "idempotency cache unavailable");
            return with_source(work.await, Source::Miss);
        }
    };
    with_source(response, source)
}

fn with_source(mut response: Response, source: Source) -> Response {
    response
        .headers_mut()
        .insert("x-idempotency-source", source.header());
    response
}

/// An owned [`EntryKey`].
struct Key {
    scope: String,
    route: String,
    key_hash: String,
}

impl Key {
    fn entry(&self) -> EntryKey<'_> {
        EntryKey {
            scope: &self.scope,
            route: &self.route,
            key_hash: &self.key_hash,
        }
    }

    fn aad(&self) -> Vec<u8> {
        [&self.scope, "\0", &self.route, "\0", &self.key_hash]
            .concat()
            .into_bytes()
    }
}

async fn run_and_store(app: &App, key: &Key, work: impl Future<Output = Response>) -> Response {
    let response = work.await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let status = parts.status.as_u16();
    // Only work done is kept. A refusal changed nothing (a bad field, a credential, a cap
    // that may lift) and a failure may pass, so a retry is judged afresh, under its own
    // request id.
    let stored = if parts.status.is_success() {
        match app.sealer.seal(&bytes, &key.aad()) {
            Ok(sealed) => app
                .store
                .complete_idempotency_key(&key.entry(), status, &sealed)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }
    } else {
        app.store
            .release_idempotency_key(&key.entry())
            .await
            .map_err(anyhow::Error::from)
    };
    if let Err(e) = stored {
        tracing::warn!(error = %e, "cannot settle an idempotency entry");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(app: &App, key: &Key, status: u16, sealed_body: &[u8]) -> Response {
    let Ok(body) = app.sealer.open(sealed_body, &key.aad()) else {
        return ApiError::internal("a cached answer cannot be opened").into_response();
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        Bytes::from(body),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-idempotent-replay", HeaderValue::from_static("true"));
    response
}

/// 1-255 printable ASCII characters, not all blank.
fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let key = value.to_str().unwrap_or_default();
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if key.trim().is_empty() || key.len() > 255 || !printable {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key must be 1-255 printable ASCII characters.",
        )
        .action("Retry with a fresh UUID as the Idempotency-Key header, or without the header."));
    }
    Ok(key.to_string())
}

/// A body as idempotency compares it: a multipart form by its parts' names and content
/// hashes (sorted; the boundary and part order a client picks do not count), anything else
/// as [`canonical_body`] has it.
pub async fn content_of(headers: &HeaderMap, bytes: &Bytes) -> Vec<u8> {
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok());
    let Some(boundary) = boundary else {
        return canonical_body(bytes);
    };
    let body = bytes.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                match field.bytes().await {
                    Ok(content) => parts.push(format!("{name}\0{}", hex_sha256(&[&content]))),
                    // Malformed: compared byte for byte; the route refuses it anyway.
                    Err(_) => return bytes.to_vec(),
                }
            }
            Ok(None) => break,
            Err(_) => return bytes.to_vec(),
        }
    }
    parts.sort();
    parts.join("\n").into_bytes()
}

/// JSON bodies compare by content (keys sorted at every level, whitespace ignored); any
/// other body compares byte for byte.
pub fn canonical_body(bytes: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => {
            let mut out = String::new();
            write_canonical(&value, &mut out);
            out.into_bytes()
        }
        Err(_) => bytes.to_vec(),
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Hex SHA-256 of the parts, each length-prefixed so no two splits collide.
fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_ignores_key_order_and_spacing() {
        let a = canonical_body(br#"{"name":"x","env":{"b":1,"a":[1,{"d":2,"c":3}]}}"#);
        let b = canonical_body(
            b"{ \"env\": {\"a\": [1, {\"c\":3,\"d\":2}], \"b\": 1}, \"name\": \"x\" }",
        );
        assert_eq!(a, b);
        assert_ne!(a, canonical_body(br#"{"name":"y"}"#));
        assert_eq!(canonical_body(b"not json"), b"not json");
    }

    #[test]
    fn keys_must_be_printable_and_short() {
        let ok = |s: &str| parse_key(&HeaderValue::from_str(s).unwrap()).is_ok();
        assert!(ok("a3f1-retry-1"));
        assert!(!ok("   "));
        assert!(!ok(&"k".repeat(256)));
        assert!(ok(&"k".repeat(255)));
    }
}
