//! Routes `http://<slug>.<apps_domain>` to the container of a deployed app.
//!
//! The proxy sits in front of the API router rather than inside it: an app's traffic is the
//! app's, so the API's rate limits, security headers and error envelope must not touch it.
//! Bodies are streamed both ways (server-sent events, chunked downloads, large uploads), and
//! upgraded connections (WebSocket) are joined byte for byte after the upstream's `101`.
//! The only addresses ever dialled are the ones the resolver returned for the slug. An app
//! with several (a replicated service) gets requests in turn; a request without a body is
//! sent to the next one when an address refuses it, so losing one task loses no request.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use ipnet::IpNet;
use maud::{Markup, html};

use crate::serve::OverTls;

/// Where a deployed app's traffic goes right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// The app is running and listens on these addresses (one per task of a replicated
    /// app; one for a container).
    Ready(Endpoints),
    /// A private app: running at `addresses`, reachable only from `allowed` networks.
    Private {
        addresses: Endpoints,
        allowed: Arc<[IpNet]>,
    },
    /// The app exists but cannot take traffic; `status` is its lifecycle state as people
    /// read it ("building", "deploying", "failed", "stopped", ...).
    Unavailable { status: String },
    /// No app has this slug.
    Unknown,
}

/// The addresses one app answers at; never empty.
pub type Endpoints = Arc<[SocketAddr]>;

/// Looks up an app by slug (the first DNS label of the Host), e.g. from the metadata store.
pub type Resolve =
    Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Upstream> + Send>> + Send + Sync>;

/// The address a request comes from, given its peer and `X-Forwarded-For` (the host's
/// trusted-proxy rules); without one, the peer.
pub type ClientIp = Arc<dyn Fn(IpAddr, Option<&str>) -> IpAddr + Send + Sync>;

/// Only a connection that cannot be made fails fast; a slow answer or a long stream is the
/// app's business, so there is no overall timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client should wait while an app is on its way up.
const RETRY_AFTER_SECONDS: u64 = 5;

/// Statuses an app leaves by itself; the others need someone to act.
const TRANSIENT_STATUSES: [&str; 5] = ["building", "deploying", "starting", "pending", "queued"];

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Forwards requests for app hosts to the apps' containers.
pub struct Proxy {
    /// The apps domain with a leading dot, lowercase ("" when no domain was configured).
    suffix: String,
    resolve: Resolve,
    client_ip: ClientIp,
    client: Client<HttpConnector, Body>,
    /// Turns through each app's addresses.
    turn: std::sync::atomic::AtomicUsize,
    /// The slug a custom domain routes to.
    custom_domain: HostLookup,
    /// Where a plain-HTTP request for a host should be redirected, if anywhere.
    https_origin: HostLookup,
    /// Whether the host answers ACME HTTP-01 challenges under every name (it gets
    /// certificates from a CA); otherwise apps keep that path for themselves.
    acme_answers: bool,
}

/// Answers a question about a Host header.
pub type HostLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The path ACME HTTP-01 answers are asked for under, whatever the host.
pub const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("suffix", &self.suffix)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// `apps_domain` e.g. "deployment.localhost": requests whose Host (port stripped,
    /// case-insensitive) is `<slug>.<apps_domain>` are proxied. An empty domain proxies nothing.
    pub fn new(apps_domain: &str, resolve: Resolve) -> Self {
        let domain = apps_domain.trim().trim_matches('.').to_ascii_lowercase();
        let suffix = if domain.is_empty() {
            String::new()
        } else {
            format!(".{domain}")
        };
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self {
            suffix,
            resolve,
            client_ip: Arc::new(|peer: IpAddr, _: Option<&str>| peer),
            client,
            turn: std::sync::atomic::AtomicUsize::new(0),
            custom_domain: Arc::new(|_: &str| None),
            https_origin: Arc::new(|_: &str| None),
            acme_answers: false,
        }
    }

    /// Also proxies the custom domains `lookup` maps to app slugs.
    pub fn with_custom_domains(mut self, lookup: HostLookup) -> Self {
        self.custom_domain = lookup;
        self
    }

    /// Redirects plain-HTTP requests for app hosts to the origin `lookup` gives for them.
    pub fn with_https_redirects(mut self, lookup: HostLookup) -> Self {
        self.https_origin = lookup;
        self
    }

    /// Leaves ACME HTTP-01 challenges under app names to the host, which answers them.
    pub fn with_acme_answers(mut self) -> Self {
        self.acme_answers = true;
        self
    }

    /// Judges private apps' callers by `client_ip` instead of the connection's peer.
    pub fn with_client_ip(mut self, client_ip: ClientIp) -> Self {
        self.client_ip = client_ip;
        self
    }

    /// The app slug a Host header names: exactly one valid DNS label in front of the apps
    /// domain, lowercased. `None` for every other host (the API's own, the bare apps domain,
    /// deeper names, IP literals).
    pub fn slug_of(&self, host: &str) -> Option<String> {
        if self.suffix.is_empty() {
            return None;
        }
        let name = match host.split_once(':') {
            None => host,
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            // More colons or a bracketed IPv6 literal: never an app host.
            Some(_) => return None,
        };
        // "abc.deployment.localhost." is the same name, written fully qualified.
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        let slug = name.strip_suffix(&self.suffix)?;
        is_dns_label(slug).then(|| slug.to_string())
    }

    /// Sends `request` to the app `slug` and streams its answer back; answers with a small
    /// page (or the JSON envelope, for clients that prefer JSON) when the app is missing,
    /// not running or not answering.
    pub async fn forward(&self, slug: String, mut request: Request) -> Response {
        let reply = Reply {
            json: prefers_json(request.headers()),
            request_id: request_id(request.headers()),
            address: format!("{slug}{}", self.suffix),
        };
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let addresses = match (self.resolve)(slug.clone()).await {
            Upstream::Ready(addresses) => addresses,
            Upstream::Private { addresses, allowed } => {
                let forwarded = request
                    .headers()
                    .get(X_FORWARDED_FOR)
                    .and_then(|v| v.to_str().ok());
                let caller = peer.map(|peer| (self.client_ip)(peer, forwarded));
                if !caller.is_some_and(|ip| allowed.iter().any(|net| net.contains(&ip))) {
                    return reply.failure(Failure::Forbidden);
                }
                addresses
            }
            Upstream::Unknown => return reply.failure(Failure::NotFound),
            Upstream::Unavailable { status } => {
                return reply.failure(Failure::Unavailable { status });
            }
        };
        if addresses.is_empty() {
            return reply.failure(Failure::Unreachable);
        }

        let upgrade = upgrade_protocol(request.headers());
        // Taken before the request is consumed: it resolves once our 101 reaches the client.
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
        let client_ip = peer;

        let (mut parts, body) = request.into_parts();
        // An absolute-form request may carry its host only in the URI; the app still sees it.
        if !parts.headers.contains_key(header::HOST)
            && let Some(value) = parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            parts.headers.insert(header::HOST, value);
        }
        // Without a body the request can be sent again: to the next address when one
        // refuses the connection, and for reads also when one drops it mid-answer.
        let replayable = upgrade.is_none()
            && !parts.headers.contains_key(header::TRANSFER_ENCODING)
            && parts
                .headers
                .get(header::CONTENT_LENGTH)
                .is_none_or(|length| length == "0");
        let over_tls = parts.extensions.get::<OverTls>().is_some();
        prepare_request_headers(&mut parts.headers, upgrade, client_ip, over_tls);
        let idempotent = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let first = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut body = Some(body);
        let mut attempt = 0;
        let mut response = loop {
            let addr = addresses[(first + attempt) % addresses.len()];
            attempt += 1;
            let Some(uri) = upstream_uri(addr, &parts.uri) else {
                tracing::error!(%slug, %addr, uri = %parts.uri, "cannot build the upstream URI");
                return reply.failure(Failure::Unreachable);
            };
            let mut outgoing = Request::new(body.take().unwrap_or_default());
            *outgoing.method_mut() = parts.method.clone();
            *outgoing.uri_mut() = uri;
            *outgoing.version_mut() = Version::HTTP_11;
            *outgoing.headers_mut() = parts.headers.clone();
            match self.client.request(outgoing).await {
                Ok(response) => break response,
                Err(error) => {
                    let again = replayable
                        && attempt < addresses.len()
                        && (error.is_connect() || idempotent);
                    tracing::warn!(%slug, %addr, request_id = %reply.request_id, error = %error_chain(&error), again, "app unreachable");
                    if !again {
                        return reply.failure(Failure::Unreachable);
                    }
                }
            }
        };
        let addr = addresses[(first + attempt - 1) % addresses.len()];

        let upstream_upgrade = response.headers().get(header::UPGRADE).cloned();
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                // A 101 nobody asked for would leave the client's connection in limbo.
                tracing::warn!(%slug, %addr, "app switched protocols without an upgrade request");
                return reply.failure(Failure::Unreachable);
            };
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel(client_upgrade, upstream, slug));
        }
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if parts.status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(protocol) = upstream_upgrade
        {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, protocol);
        }
        parts.extensions = Default::default();
        Response::from_parts(parts, Body::new(body))
    }
}

/// Wraps the API router: app hosts are proxied, everything else goes to `api` untouched.
///
/// The dispatch runs outermost, so none of the API's own middleware (rate limits, security
/// headers, request ids) sees proxied traffic. Serve the result with
/// `into_make_service_with_connect_info::<SocketAddr>()` to get `X-Forwarded-For`.
pub fn route(api: Router, proxy: Arc<Proxy>) -> Router {
    Router::new()
        .fallback_service(api)
        .layer(middleware::from_fn_with_state(proxy, dispatch))
}

async fn dispatch(State(proxy): State<Arc<Proxy>>, request: Request, next: Next) -> Response {
    // ACME answers are the host's own, whichever name the CA asks under.
    if proxy.acme_answers && request.uri().path().starts_with(ACME_CHALLENGE_PATH) {
        return next.run(request).await;
    }
    let Some(host) = host_of(&request) else {
        return next.run(request).await;
    };
    let Some(slug) = proxy.slug_of(host).or_else(|| (proxy.custom_domain)(host)) else {
        return next.run(request).await;
    };
    if request.extensions().get::<OverTls>().is_none()
        && let Some(origin) = (proxy.https_origin)(host)
    {
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", PathAndQuery::as_str);
        return match HeaderValue::from_str(&format!("{origin}{path}")) {
            Ok(location) => (
                StatusCode::PERMANENT_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        };
    }
    proxy.forward(slug, request).await
}

/// The Host header, or the authority of an absolute-form request line.
fn host_of(request: &Request) -> Option<&str> {
    match request.headers().get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => request.uri().authority().map(Authority::as_str),
    }
}

/// One DNS label as apps and domains may use it: lowercase letters, digits and inner hyphens.
pub fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

fn upstream_uri(addr: SocketAddr, original: &Uri) -> Option<Uri> {
    let path = original
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(addr.to_string())
        .path_and_query(path)
        .build()
        .ok()
}

/// The protocol the client asks to switch to, when it asks (`Connection: upgrade` and
/// `Upgrade: <protocol>`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = connection_tokens(headers).any(|token| token.eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Removes headers that describe one connection rather than the message (RFC 9110 §7.6.1);
/// hyper frames each side's body itself.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut doomed: Vec<HeaderName> = connection_tokens(headers)
        .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
        .collect();
    doomed.extend(
        headers
            .keys()
            .filter(|name| name.as_str().starts_with("proxy-"))
            .cloned(),
    );
    doomed.extend([
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ]);
    for name in doomed {
        headers.remove(name);
    }
}

fn prepare_request_headers(
    headers: &mut HeaderMap,
    upgrade: Option<HeaderValue>,
    client_ip: Option<IpAddr>,
    over_tls: bool,
) {
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
    if let Some(ip) = client_ip {
        let mut hops: Vec<String> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty())
            .collect();
        hops.push(ip.to_string());
        let value = HeaderValue::from_str(&hops.join(", "))
            .or_else(|_| HeaderValue::from_str(&ip.to_string()));
        if let Ok(value) = value {
            headers.insert(X_FORWARDED_FOR, value);
        }
    }
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if over_tls { "https" } else { "http" }),
    );
}

/// Joins the client's and the app's upgraded connections until either side closes.
async fn tunnel(client: OnUpgrade, upstream: OnUpgrade, slug: String) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(pair) => pair,
        Err(error) => {
            tracing::debug!(%slug, %error, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        tracing::debug!(%slug, %error, "upgraded connection ended with an error");
    }
}

/// The incoming id when it is safe to echo (same rule as the API's), a fresh one otherwise.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            (1..=128).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Whether `Accept` ranks `application/json` above `text/html`: by q, then by which is named
/// more precisely (`application/json, */*` prefers JSON). Full ties (`*/*`, no header) go to
/// HTML: people in browsers get a page, agents that ask for JSON get the envelope.
fn prefers_json(headers: &HeaderMap) -> bool {
    let ranges: Vec<(String, f32)> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|range| {
            let mut pieces = range.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            let q = pieces
                .filter_map(|param| param.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                .and_then(|(_, q)| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((media, q))
        })
        .collect();
    // The q of the most specific range matching `kind/sub` (RFC 9110 §12.5.1), and how
    // specific that range was.
    let quality = |kind: &str, sub: &str| -> (f32, u8) {
        let mut best: Option<(u8, f32)> = None;
        for (media, q) in &ranges {
            let specificity = match media.split_once('/') {
                Some((k, s)) if k == kind && s == sub => 2,
                Some((k, "*")) if k == kind => 1,
                Some(("*", "*")) => 0,
                _ => continue,
            };
            if best.is_none_or(|(held, _)| specificity > held) {
                best = Some((specificity, *q));
            }
        }
        best.map_or((0.0, 0), |(specificity, q)| (q, specificity))
    };
    let (json, json_specificity) = quality("application", "json");
    let (html, html_specificity) = quality("text", "html");
    json > html || (json > 0.0 && json == html && json_specificity > html_specificity)
}

/// Why the proxy answers instead of the app.
enum Failure {
    NotFound,
    /// A private app, and the caller is not on its list.
    Forbidden,
    Unavailable {
        status: String,
    },
    Unreachable,
}

/// How to answer one request: in which format, with which id, for which address.
struct Reply {
    json: bool,
    request_id: String,
    /// `<slug>.<apps_domain>`, built from validated parts.
    address: String,
}

impl Reply {
    fn failure(&self, failure: Failure) -> Response {
        let address = &self.address;
        let (status, code, title, detail, message, action, retry_after) = match &failure {
            Failure::NotFound => (
                StatusCode::NOT_FOUND,
                "app_not_found",
                "No app is deployed at this address".to_string(),
                format!(
                    "Nothing is deployed at {address}. Check the address for typos, or deploy the app first."
                ),
                format!("No app is deployed at {address}."),
                "Check the slug in the URL against the deployment you created; if the app was deleted or never deployed, deploy it and use the URL the deploy call returned.".to_string(),
                None,
            ),
            Failure::Forbidden => (
                StatusCode::FORBIDDEN,
                "ip_not_allowed",
                "This app is private".to_string(),
                format!("The app at {address} answers only the addresses its owner allowed."),
                format!("The app at {address} is private and this address is not allowed."),
                "This app is private: call it from an allowed address, or have its owner add yours to allowed_ips (redeploy with private=true and allowed_ips).".to_string(),
                None,
            ),
            Failure::Unavailable { status } => {
                let transient = TRANSIENT_STATUSES
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(status));
                let (detail, action) = if transient {
                    (
                        format!("The app at {address} is {status} and not serving yet. Try again in a few seconds."),
                        format!("The app is still {status}; retry in {RETRY_AFTER_SECONDS} seconds."),
                    )
                } else {
                    (
                        format!("The app at {address} is {status}, so it is not serving traffic."),
                        format!("The app is {status}; retrying will not help. Check the deployment's status and logs, then fix and redeploy (or start) it."),
                    )
                };
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "app_unavailable",
                    format!("This app is {status}"),
                    detail,
                    format!("The app at {address} is {status}."),
                    action,
                    transient.then_some(RETRY_AFTER_SECONDS),
                )
            }
            Failure::Unreachable => (
                StatusCode::BAD_GATEWAY,
                "app_unreachable",
                "This app is not answering".to_string(),
                format!(
                    "The app at {address} is deployed, but its server did not answer. It may have crashed, or it may not be listening on the port it was deployed with."
                ),
                format!("The app at {address} is deployed but did not answer."),
                "The app's server is not accepting connections: check the deployment's logs and that the server listens on 0.0.0.0 at the deployed port, then redeploy.".to_string(),
                None,
            ),
        };
        let mut response = if self.json {
            let body = serde_json::json!({
                "ok": false,
                "error": code,
                "message": message,
                "request_id": self.request_id,
                "retry_after_seconds": retry_after,
                "agent_action": action,
            });
            (status, axum::Json(body)).into_response()
        } else {
            let page = failure_page(&title, &detail, &self.request_id).into_string();
            let mut response = (status, page).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            response
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(id) = HeaderValue::from_str(&self.request_id) {
            headers.insert(REQUEST_ID, id);
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The page a browser gets instead of the app: the same words as the JSON envelope.
fn failure_page(title: &str, detail: &str, request_id: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        p { (detail) }
        p { small { "Request id: " code { (request_id) } } }
    };
    crate::html_document::document(title, FAILURE_STYLE, body)
}

const FAILURE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}small{color:#666}";

/// hyper-util's errors say "client error (Connect)" on top and the cause underneath.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Instant;

    use axum::routing::get;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    fn resolver(table: Vec<(&str, Upstream)>) -> Resolve {
        let table: Arc<HashMap<String, Upstream>> = Arc::new(
            table
                .into_iter()
                .map(|(slug, upstream)| (slug.to_string(), upstream))
                .collect(),
        );
        Arc::new(move |slug: String| {
            let table = table.clone();
            Box::pin(async move { table.get(&slug).cloned().unwrap_or(Upstream::Unknown) })
        })
    }

    async fn serve(router: Router) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serve");
        });
        addr
    }

    /// The API stand-in: one route, and a middleware whose mark must never reach app traffic.
    fn api() -> Router {
        Router::new()
            .route("/healthz", get(|| async { "api ok" }))
            .layer(middleware::from_fn(
                |request: Request, next: Next| async move {
                    let mut response = next.run(request).await;
                    response
                        .headers_mut()
                        .insert("x-api-middleware", HeaderValue::from_static("ran"));
                    response
                },
            ))
    }

    /// Serves `route(api(), proxy)` for `table` and returns its address.
    async fn front(table: Vec<(&str, Upstream)>) -> SocketAddr {
        let proxy = Arc::new(Proxy::new("Deployment.Localhost", resolver(table)));
        serve(route(api(), proxy)).await
    }

    /// An upstream that answers every request with what it received, as JSON.
    async fn echo_upstream() -> SocketAddr {
        async fn echo(request: Request) -> Response {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .expect("read body");
            let headers: serde_json::Map<String, Value> = parts
                .headers
                .keys()
                .map(|name| {
                    let values: Vec<&str> = parts
                        .headers
                        .get_all(name)
                        .iter()
                        .map(|v| v.to_str().expect("ascii header"))
                        .collect();
                    (name.to_string(), Value::from(values.join(" | ")))
                })
                .collect();
            let seen = serde_json::json!({
                "method": parts.method.as_str(),
                "uri": parts.uri.to_string(),
                "version": format!("{:?}", parts.version),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            (
                StatusCode::CREATED,
                [("x-upstream", "echo")],
                axum::Json(seen),
            )
                .into_response()
        }
        serve(Router::new().fallback(echo)).await
    }

    /// An address nothing listens on.
    async fn dead_address() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("local addr")
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
    }

    async fn json_of(response: reqwest::Response) -> Value {
        let bytes = response.bytes().await.expect("body");
        serde_json::from_slice(&bytes).expect("json body")
    }

    async fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read head");
            assert_eq!(n, 1, "connection closed inside the head: {head:?}");
            head.push(byte[0]);
        }
        String::from_utf8(head).expect("ascii head")
    }

    #[test]
    fn slugs_are_one_valid_label_in_front_of_the_domain() {
        let proxy = Proxy::new(".deployment.localhost.", resolver(vec![]));
        let slug = |host: &str| proxy.slug_of(host);
        assert_eq!(slug("abc.deployment.localhost"), Some("abc".into()));
        assert_eq!(slug("abc.deployment.localhost:8080"), Some("abc".into()));
        assert_eq!(
            slug("My-App-2.DEPLOYMENT.localhost"),
            Some("my-app-2".into())
        );
        assert_eq!(slug("abc.deployment.localhost."), Some("abc".into()));
        assert_eq!(slug("deployment.localhost"), None);
        assert_eq!(slug(".deployment.localhost"), None);
        assert_eq!(slug("a.b.deployment.localhost"), None);
        assert_eq!(slug("-abc.deployment.localhost"), None);
        assert_eq!(slug("abc-.deployment.localhost"), None);
        assert_eq!(slug("a_b.deployment.localhost"), None);
        assert_eq!(
            slug(&format!("{}.deployment.localhost", "a".repeat(64))),
            None
        );
        assert_eq!(slug("abcdeployment.localhost"), None);
        assert_eq!(slug("abc.deployment.localhost.evil.com"), None);
        assert_eq!(slug("abc.deployment.localhost:80:80"), None);
        assert_eq!(slug("abc.deployment.localhost:x"), None);
        assert_eq!(slug("[::1]:8080"), None);
        assert_eq!(slug("127.0.0.1:8080"), None);
        assert_eq!(Proxy::new("", resolver(vec![])).slug_of("abc"), None);
    }

    #[test]
    fn json_only_when_ranked_above_html() {
        let wants = |accept: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(accept) = accept {
                headers.insert(
                    header::ACCEPT,
                    HeaderValue::from_str(accept).expect("value"),
                );
            }
            prefers_json(&headers)
        };
        assert!(wants(Some("application/json")));
        assert!(wants(Some("application/json, text/plain, */*")));
        assert!(wants(Some("text/html;q=0.5, application/json")));
        assert!(!wants(None));
        assert!(!wants(Some("*/*")));
        assert!(!wants(Some(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        )));
        assert!(!wants(Some("application/json;q=0.5, text/html")));
        assert!(!wants(Some("application/json;q=0, */*")));
        assert!(!wants(Some("application/json, text/html")));
    }

    #[test]
    fn hop_by_hop_headers_go_and_forwarding_headers_come() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "abc.deployment.localhost:1"),
            ("connection", "keep-alive, X-Secret-Hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-kept", "yes"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        prepare_request_headers(
            &mut headers,
            None,
            Some(IpAddr::from([127, 0, 0, 1])),
            false,
        );
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "host",
                "x-forwarded-for",
                "x-forwarded-host",
                "x-forwarded-proto",
                "x-kept"
            ]
        );
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-host"], "abc.deployment.localhost:1");
        assert_eq!(headers["x-forwarded-proto"], "http");
    }

    /// A private app answers its allowed networks only; the others get a 403 in the
    /// envelope, and the app never sees their request.
    #[tokio::test]
    async fn private_apps_answer_only_their_allowed_networks() {
        let upstream = echo_upstream().await;
        let private = |allowed: &str| Upstream::Private {
            addresses: Arc::from([upstream]),
            allowed: vec![allowed.parse::<IpNet>().unwrap()].into(),
        };
        let front = front(vec![
            ("open", private("127.0.0.0/8")),
            ("closed", private("203.0.113.0/24")),
        ])
        .await;
        let call = |slug: &str| {
            http()
                .get(format!("http://{front}/"))
                .header("host", format!("{slug}.deployment.localhost"))
                .header("accept", "application/json")
                // Forged: this proxy trusts no one, so the peer address decides.
                .header("x-forwarded-for", "203.0.113.9")
                .send()
        };
        let allowed = call("open").await.expect("request");
        assert_eq!(allowed.headers()["x-upstream"], "echo");
        let refused = call("closed").await.expect("request");
        assert_eq!(refused.status(), 403);
        assert!(refused.headers().get("x-upstream").is_none());
        let body: Value = json_of(refused).await;
        assert_eq!(body["error"], "ip_not_allowed");
        assert!(!body["agent_action"].as_str().unwrap_or_default().is_empty());
    }

    #[tokio::test]
    async fn app_hosts_reach_the_upstream_intact() {
        let upstream = echo_upstream().await;
        let front = front(vec![("abc", Upstream::Ready(Arc::from([upstream])))]).await;
        let host = format!("abc.deployment.localhost:{}", front.port());
        let response = http()
            .post(format!("http://{front}/some/path?x=1&y=two%20words"))
            .header("host", &host)
            .header("x-custom", "42")
            .header("x-forwarded-for", "10.0.0.1")
            .header("connection", "keep-alive, x-hop")
            .header("x-hop", "must not pass")
            .header("content-type", "text/plain")
            .body("hello upstream")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["x-upstream"], "echo");
        assert!(response.headers().get("x-api-middleware").is_none());
        let seen: Value = json_of(response).await;
        assert_eq!(seen["method"], "POST");
        assert_eq!(seen["uri"], "/some/path?x=1&y=two%20words");
        assert_eq!(seen["version"], "HTTP/1.1");
        assert_eq!(seen["body"], "hello upstream");
        let headers = &seen["headers"];
        assert_eq!(headers["host"], host.as_str());
        assert_eq!(headers["x-custom"], "42");
        assert_eq!(headers["content-type"], "text/plain");
        assert_eq!(headers["content-length"], "14");
        assert_eq!(headers["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers["x-forwarded-host"], host.as_str());
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert!(headers.get("x-hop").is_none(), "{headers}");
    }

    #[tokio::test]
    async fn request_bodies_stream_to_the_upstream() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("local addr");
        let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let head = read_head(&mut stream).await;
            assert!(
                head.to_ascii_lowercase()
                    .contains("transfer-encoding: chunked"),
                "{head}"
            );
            let mut body = Vec::new();
            let mut first_tx = Some(first_tx);
            let mut buf = [0u8; 256];
            while !body.ends_with(b"0\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read body");
                assert!(n > 0, "body ended early: {body:?}");
                body.extend_from_slice(&buf[..n]);
                if body.windows(4).any(|w| w == b"one ")
                    && let Some(tx) = first_tx.take()
                {
                    let _ = tx.send(());
                }
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .expect("answer");
        });
        let front = front(vec![("up", Upstream::Ready(Arc::from([upstream])))]).await;
        let mut client = TcpStream::connect(front).await.expect("connect");
        client
            .write_all(
                format!(
                    "POST /upload HTTP/1.1\r\nHost: up.deployment.localhost:{}\r\n\
                     Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\none \r\n",
                    front.port()
                )
                .as_bytes(),
            )
            .await
            .expect("first chunk");
        // The second chunk is only sent once the app has the first: nothing buffers the body.
        tokio::time::timeout(Duration::from_secs(5), first_rx)
            .await
            .expect("first chunk forwarded before the body ended")
            .expect("upstream alive");
        client
            .write_all(b"3\r\ntwo\r\n0\r\n\r\n")
            .await
            .expect("second chunk");
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.expect("answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok"), "{answer}");
    }

    #[tokio::test]
    async fn other_hosts_reach_the_api() {
        let upstream = echo_upstream().await;
        let front = front(vec![("abc", Upstream::Ready(Arc::from([upstream])))]).await;
        for host in [
            front.to_string(),
            format!("deployment.localhost:{}", front.port()),
            format!("a.abc.deployment.localhost:{}", front.port()),
            format!("abc.deployment.example:{}", front.port()),
        ] {
            let response = http()
                .get(format!("http://{front}/healthz"))
                .header("host", &host)
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 200, "{host}");
            assert_eq!(response.headers()["x-api-middleware"], "ran", "{host}");
            assert_eq!(response.text().await.expect("text"), "api ok");
        }
    }

    #[test]
    fn the_failure_page_shows_markup_as_text() {
        let hostile = r#"<script>alert(1)</script>"><img src=x onerror=alert(1)>"#;
        let page = failure_page(hostile, hostile, hostile).into_string();
        assert!(
            !page.contains("<script>alert") && !page.contains("<img"),
            "{page}"
        );
        let escaped =
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
        assert_eq!(page.matches(escaped).count(), 4, "{page}");
    }

    #[tokio::test]
    async fn unknown_slugs_get_a_404_page_or_envelope() {
        let front = front(vec![]).await;
        let host = format!("nope.deployment.localhost:{}", front.port());
        let response = http()
            .get(format!("http://{front}/healthz"))
            .header("host", &host)
            .header("accept", "text/html,*/*;q=0.8")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
        assert!(response.headers().get("x-api-middleware").is_none());
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8"
        );
        let page = response.text().await.expect("text");
        assert!(
            page.contains("No app is deployed at this address"),
            "{page}"
        );
        assert!(page.contains("nope.deployment.localhost"), "{page}");

        let response = http()
            .get(format!("http://{front}/"))
            .header("host", &host)
            .header("accept", "application/json")
            .header("x-request-id", "req-123")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()["x-request-id"], "req-123");
        let body: Value = json_of(response).await;
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], "app_not_found");
        assert_eq!(body["request_id"], "req-123");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("nope")));
        assert!(body["agent_action"].is_string());

        // Without an acceptable incoming id, one is made up.
        let response = http()
            .get(format!("http://{front}/"))
            .header("host", &host)
            .header("accept", "application/json")
            .header("x-request-id", "bad id")
            .send()
            .await
            .expect("request");
        let body: Value = json_of(response).await;
        let id = body["request_id"].as_str().expect("request id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }

    #[tokio::test]
    async fn unavailable_apps_get_a_503_naming_the_status() {
        let front = front(vec![
            (
                "new",
                Upstream::Unavailable {
                    status: "building".into(),
                },
            ),
            (
                "broken",
                Upstream::Unavailable {
                    status: "failed".into(),
                },
            ),
        ])
        .await;
        let response = http()
            .get(format!("http://{front}/"))
            .header("host", format!("new.deployment.localhost:{}", front.port()))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "5");
        let page = response.text().await.expect("text");
        assert!(page.contains("This app is building"), "{page}");

        let response = http()
            .get(format!("http://{front}/"))
            .header(
                "host",
                format!("broken.deployment.localhost:{}", front.port()),
            )
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 503);
        assert!(response.headers().get("retry-after").is_none());
        let body: Value = json_of(response).await;
        assert_eq!(body["error"], "app_unavailable");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed"))
        );
    }

    #[tokio::test]
    async fn a_down_upstream_gets_a_502() {
        let front = front(vec![(
            "gone",
            Upstream::Ready(Arc::from([dead_address().await])),
        )])
        .await;
        let host = format!("gone.deployment.localhost:{}", front.port());
        let response = http()
            .get(format!("http://{front}/"))
            .header("host", &host)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 502);
        let page = response.text().await.expect("text");
        assert!(page.contains("This app is not answering"), "{page}");

        let response = http()
            .get(format!("http://{front}/"))
            .header("host", &host)
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 502);
        let body: Value = json_of(response).await;
        assert_eq!(body["error"], "app_unreachable");
    }

    #[tokio::test]
    async fn a_task_that_refuses_is_skipped_for_requests_without_a_body() {
        let live = echo_upstream().await;
        let tasks: Endpoints = Arc::from([dead_address().await, live]);
        let front = front(vec![("two", Upstream::Ready(tasks))]).await;
        let host = format!("two.deployment.localhost:{}", front.port());
        // Every turn of the rotation, including the ones starting at the dead task.
        for _ in 0..4 {
            let response = http()
                .get(format!("http://{front}/"))
                .header("host", &host)
                .send()
                .await
                .expect("request");
            assert!(response.status().is_success(), "{}", response.status());
        }
        // A body cannot be sent twice: a request with one that meets the dead task fails.
        let mut statuses = Vec::new();
        for _ in 0..2 {
            let response = http()
                .post(format!("http://{front}/"))
                .header("host", &host)
                .body("payload")
                .send()
                .await
                .expect("request");
            statuses.push(response.status().as_u16());
        }
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 502], "the echo answers 201");
    }

    #[tokio::test]
    async fn streamed_responses_arrive_incrementally() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("local addr");
        let second_sent_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        let sent = second_sent_at.clone();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            read_head(&mut stream).await;
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                      Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
                      b\r\ndata: one\n\n\r\n",
                )
                .await
                .expect("first chunk");
            tokio::time::sleep(Duration::from_millis(300)).await;
            *sent.lock().expect("lock") = Some(Instant::now());
            stream
                .write_all(b"b\r\ndata: two\n\n\r\n0\r\n\r\n")
                .await
                .expect("second chunk");
        });
        let front = front(vec![("sse", Upstream::Ready(Arc::from([upstream])))]).await;
        let mut response = http()
            .get(format!("http://{front}/events"))
            .header("host", format!("sse.deployment.localhost:{}", front.port()))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let first = response.chunk().await.expect("chunk").expect("first chunk");
        let first_at = Instant::now();
        assert_eq!(&first[..], b"data: one\n\n");
        let mut rest = Vec::new();
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            rest.extend_from_slice(&chunk);
        }
        assert_eq!(rest, b"data: two\n\n");
        let second_at = second_sent_at.lock().expect("lock").expect("second sent");
        assert!(
            first_at < second_at,
            "the first chunk waited for the second"
        );
    }

    #[tokio::test]
    async fn upgrades_join_both_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("local addr");
        let (head_tx, head_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let head = read_head(&mut stream).await;
            stream
                .write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\
                      Upgrade: websocket\r\nSec-WebSocket-Accept: test\r\n\r\n",
                )
                .await
                .expect("101");
            let _ = head_tx.send(head);
            let (mut read, mut write) = stream.split();
            let _ = tokio::io::copy(&mut read, &mut write).await;
        });
        let front = front(vec![("ws", Upstream::Ready(Arc::from([upstream])))]).await;
        let mut client = TcpStream::connect(front).await.expect("connect");
        client
            .write_all(
                format!(
                    "GET /socket?room=1 HTTP/1.1\r\nHost: ws.deployment.localhost:{}\r\n\
                     Connection: Upgrade\r\nUpgrade: websocket\r\n\
                     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                    front.port()
                )
                .as_bytes(),
            )
            .await
            .expect("write request");
        let head = read_head(&mut client).await.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 101"), "{head}");
        assert!(head.contains("upgrade: websocket"), "{head}");
        assert!(head.contains("connection: upgrade"), "{head}");
        assert!(head.contains("sec-websocket-accept: test"), "{head}");
        assert!(!head.contains("x-api-middleware"), "{head}");

        let upstream_head = head_rx.await.expect("upstream head").to_ascii_lowercase();
        assert!(
            upstream_head.starts_with("get /socket?room=1 http/1.1"),
            "{upstream_head}"
        );
        assert!(
            upstream_head.contains("connection: upgrade"),
            "{upstream_head}"
        );
        assert!(
            upstream_head.contains("upgrade: websocket"),
            "{upstream_head}"
        );
        assert!(
            upstream_head.contains(
                "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ=="
                    .to_ascii_lowercase()
                    .as_str()
            ),
            "{upstream_head}"
        );

        for message in [&b"hello through the proxy"[..], b"and again"] {
            client.write_all(message).await.expect("write");
            let mut echoed = vec![0u8; message.len()];
            tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut echoed))
                .await
                .expect("echo in time")
                .expect("read echo");
            assert_eq!(echoed, message);
        }
    }
}
