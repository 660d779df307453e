//! `POST /{kind}/new`: create one resource of a kind some provider serves.

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::json::JsonObject;
use super::lifecycle_error::{PROOF_HEADER, lifecycle_error};
use super::schema::{CreateResource, Created, CreatedLimits, True};
use crate::app::{App, SharedApp};
use crate::kinds::{KindInfo, is_app};
use crate::lifecycle::provision::{self, FaultPoint, ProvisionInput, ProvisionOutput};
use crate::tenancy::client::Client;
use crate::tenancy::names::{EnvName, NameError, ResourceName};

/// Body fields this route understands; anything else is echoed back in `ignored_fields`.
const KNOWN_FIELDS: [&str; 2] = ["name", "env"];

/// The body is read field by field (not into [`CreateResource`]) so that each bad field gets
/// its own error code, and unknown ones are named back instead of refused.
#[utoipa::path(post, path = "/{kind}/new", tag = "provision", operation_id = "createResource",
    summary = "Create a resource of a kind",
    description = "Kinds: db (PostgreSQL), vector (PostgreSQL with pgvector), cache (Redis), nosql (MongoDB), queue (NATS JetStream), storage (S3 prefix), webhook, and whatever else the live providers serve (GET /api/v1/capabilities lists them). Over the daily cap, a caller proving a resource it holds (X-Instanode-Token) gets it back (200). Idempotency-Key makes retries safe. The answer's Instanode-Provider header names the provider version.",
    security((), ("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Retries with the same key answer the first result (to a signed-in team, or to an anonymous caller on the same network presenting the same key)."),
        ("X-Instanode-Token" = Option<String>, Header, nullable = false, description = "Resource tokens or upgrade JWTs the caller holds, comma separated: over an anonymous cap, only these are handed back or named."),
    ),
    request_body = CreateResource,
    responses(
        (status = 201, description = "Created.", body = Created),
        (status = 200, description = "The caller's existing resource of that name.", body = Created),
    ))]
pub async fn create(
    State(app): State<SharedApp>,
    Path(kind): Path<String>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, [(HeaderName, HeaderValue); 1], Json<Created>), ApiError> {
    let Some(kind_info) = app.kinds.kind(&kind).filter(|k| !is_app(k)) else {
        return Err(ApiError::not_found(&format!("Resource kind `{kind}`")));
    };
    // Signed-in callers provision for their team, at its tier, under its caps; a bad
    // token is refused rather than treated as anonymous.
    let team = match headers.get(axum::http::header::AUTHORIZATION) {
        Some(_) => {
            let account = super::auth::account(&app, &headers).await?;
            Some((account.team_id, account.tier))
        }
        None => None,
    };
    let name = parse_name(&body)?;
    let env = parse_env(&body)?;
    let options = request_fields(&kind_info, &body)?;
    let fault = app
        .fault_injection
        .then(|| {
            headers
                .get("x-instanode-fault")?
                .to_str()
                .ok()
                .and_then(FaultPoint::parse)
        })
        .flatten();
    let input = ProvisionInput {
        kind,
        name,
        env,
        fingerprint: Some(client.fingerprint),
        request_id: super::request_id::current(),
        fault,
        id: None,
        options,
        ttl: None,
        team,
        hand_back_existing: true,
        proven_tokens: proven_tokens(&app, &headers)?,
    };
    let output = provision::provision(app.services.clone(), input)
        .await
        .map_err(|e| lifecycle_error(&app.public_url, e))?;
    let existing = output.existing;
    let provider = HeaderValue::from_str(&output.provider)
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    let status = if existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = created_body(&app.public_url, app.clock.now(), kind_info.internal, output);
    // The kind's own fields apply to a new resource only; an existing one keeps its own.
    let applied = |field: &str| {
        KNOWN_FIELDS.contains(&field)
            || (!existing && kind_info.request_fields.iter().any(|f| f.name == field))
    };
    let mut ignored: Vec<String> = body.keys().filter(|k| !applied(k)).cloned().collect();
    if !ignored.is_empty() {
        ignored.sort();
        response.ignored_fields = Some(ignored);
    }
    Ok((status, [(PROVIDER_HEADER, provider)], Json(response)))
}

/// Names the provider version that created the resource: `postgres@0.1.0`.
pub const PROVIDER_HEADER: HeaderName = HeaderName::from_static("instanode-provider");

/// A `name` sent as a form field (`/deploy/new`, `/stacks/new`).
pub(super) fn name_field(value: Option<&str>) -> Result<ResourceName, ApiError> {
    let mut body = Map::new();
    if let Some(value) = value {
        body.insert("name".into(), Value::String(value.to_string()));
    }
    parse_name(&body)
}

/// An `env` sent as a form field.
pub(super) fn env_field(value: Option<&str>) -> Result<EnvName, ApiError> {
    match value {
        None => Ok(EnvName::default()),
        Some(s) => EnvName::parse(s).ok_or_else(invalid_env),
    }
}

fn parse_name(body: &Map<String, Value>) -> Result<ResourceName, ApiError> {
    let required = || {
        ApiError::new(StatusCode::BAD_REQUEST, "name_required", "A `name` field is required.")
            .action("Tell the user the request needs a name: add a \"name\" field with a short label (1-64 characters: letters, digits, spaces, '_' or '-'), e.g. {\"name\":\"prod-db\"}, and retry.")
    };
    let invalid = || {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_name", "`name` must be 1-64 characters, start with a letter or digit, and contain only letters, digits, spaces, '_' or '-'.")
            .action("Retry with a name such as \"prod-db\": 1-64 characters, starting with a letter or digit, then letters, digits, spaces, '_' or '-'.")
    };
    match body.get("name") {
        None | Some(Value::Null) => Err(required()),
        Some(Value::String(s)) => ResourceName::parse(s).map_err(|e| match e {
            NameError::Missing => required(),
            NameError::Invalid => invalid(),
        }),
        Some(_) => Err(invalid()),
    }
}

/// The kind's own request fields the caller sent, checked against what the kind declares;
/// other kinds' fields are not read here (they end up in `ignored_fields`).
fn request_fields(
    kind: &KindInfo,
    body: &Map<String, Value>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut options = Vec::new();
    for field in &kind.request_fields {
        let name = field.name.as_str();
        let (min, max) = (field.min_length as usize, field.max_length as usize);
        match body.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s))
                if (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic()) =>
            {
                options.push((name.to_string(), s.clone()));
            }
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("invalid_{name}"),
                    format!(
                        "`{name}` must be {min}-{max} printable ASCII characters without spaces."
                    ),
                )
                .action(format!(
                    "Retry with a `{name}` of {min}-{max} printable characters without spaces, or without it."
                )));
            }
        }
    }
    Ok(options)
}

fn parse_env(body: &Map<String, Value>) -> Result<EnvName, ApiError> {
    match body.get("env") {
        None | Some(Value::Null) => Ok(EnvName::default()),
        Some(Value::String(s)) => EnvName::parse(s).ok_or_else(invalid_env),
        Some(_) => Err(invalid_env()),
    }
}

fn invalid_env() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_env",
        "`env` must be 1-32 characters of a-z, 0-9 or '-'.",
    )
    .action("Retry without `env`, or with a lowercase label such as \"production\".")
}

/// The 201 body (or 200, for an existing resource handed back): the host's fields, then the
/// provider's extra fields where they do not collide with the host's.
fn created_body(
    public_url: &str,
    now: chrono::DateTime<chrono::Utc>,
    internal: bool,
    out: ProvisionOutput,
) -> Created {
    let upgrade = format!("{public_url}/start?t={}", out.upgrade_jwt);
    let claim_url = format!("{public_url}/claim?t={}", out.upgrade_jwt);
    let remaining = out
        .expires_at
        .map(|at| (at - now).max(chrono::Duration::zero()));
    let expires_in = remaining.map(|r| format!("{}h{:02}m", r.num_hours(), r.num_minutes() % 60));
    let note = match (&expires_in, out.existing) {
        (Some(left), true) => format!(
            "Returning your existing resource. Expires in {left}. Claim it to keep it: {upgrade}"
        ),
        (None, true) => "Returning your existing resource.".to_string(),
        (Some(_), false) => format!("Works for 24h free. Claim it to keep it: {upgrade}"),
        (None, false) => "Ready.".to_string(),
    };
    // Broker-mode storage: no key is handed out; objects are reached through presigned URLs.
    let broker = out.fields.iter().any(|(k, v)| k == "mode" && v == "broker");
    Created {
        ok: True,
        id: out.id,
        token: out.token,
        name: out.name.as_str().to_string(),
        kind: out.kind,
        // Some kinds are reached only at their public URL.
        internal_url: internal.then(|| {
            out.internal_url
                .clone()
                .unwrap_or_else(|| out.connection_url.clone())
        }),
        connection_url: out.connection_url,
        tier: out.tier,
        limits: CreatedLimits {
            expires_in,
            values: out.limits.into_iter().collect(),
        },
        env: out.env.as_str().to_string(),
        expires_at: out
            .expires_at
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        note,
        upgrade,
        upgrade_jwt: out.upgrade_jwt,
        claim_url,
        presign_url: broker.then(|| format!("{public_url}/storage/{}/presign", out.token)),
        agent_action: broker.then(|| "use_presign_endpoint".to_string()),
        ignored_fields: None,
        provider_fields: provider_fields(out.fields),
    }
}

/// The provider's extra fields. `outer.inner` nests (`credentials.nats_jwt` lands in
/// `credentials`), but only under an object of the provider's own, never inside (or in place
/// of) the host's fields.
fn provider_fields(fields: Vec<(String, String)>) -> Map<String, Value> {
    let host = |name: &str| Created::HOST_FIELDS.contains(&name);
    let mut map = Map::new();
    for (key, value) in fields {
        match key.split_once('.') {
            Some((outer, _)) if host(outer) => {}
            Some((outer, inner)) => {
                if let Some(object) = map
                    .entry(outer)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                {
                    object.entry(inner).or_insert(Value::String(value));
                }
            }
            None if host(&key) => {}
            None => {
                map.entry(key).or_insert(Value::String(value));
            }
        }
    }
    map
}

/// The resources the caller proves it holds: `X-Instanode-Token` carries one or more (comma
/// separated) resource tokens or upgrade JWTs. Only these of its network's resources are
/// handed back or named to an anonymous caller.
fn proven_tokens(app: &App, headers: &HeaderMap) -> Result<Vec<Uuid>, ApiError> {
    let Some(value) = headers.get(PROOF_HEADER) else {
        return Ok(Vec::new());
    };
    let refuse = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_resource_token",
            format!(
                "{} must hold resource tokens or upgrade JWTs, separated by commas.",
                PROOF_HEADER
            ),
        )
        .action("Send the `token` or `upgrade_jwt` a creation answer gave you, or leave the header out.")
    };
    let text = value.to_str().map_err(|_| refuse())?;
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .take(16)
        .map(|part| app.tokens.resource_proven_by(part).ok_or_else(refuse))
        .collect()
}
