//! Deploys: `POST /deploy/new` (multipart: a gzipped tarball with a Dockerfile), the app's
//! status, failure autopsy, logs, redeploy and delete.
//!
//! The app's `id` (its resource token) is the credential for reading and deleting it, like
//! every resource token; `app_id` is public (it is part of the URL).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Extension, Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use uuid::Uuid;

use super::error::ApiError;
use super::lifecycle_error::lifecycle_error;
use super::provision::{env_field, name_field};
use super::resources::{delete_now, ended, not_found, parse_token};
use super::schema::{
    DeletionPending, DeployForm, Deployment, DeploymentAnswer, DeploymentDeleted, DeploymentEvents,
    True,
};
use crate::app::{App, SharedApp};
use crate::caps::context_ref;
use crate::deploy as apps;
use crate::deploy::apps::{Deployer, NewApp, create_app};
use crate::deploy::rollout::{self, seal_env};
use crate::deploy::source::{self, SourceError, SourceLimits};
use crate::store::{AppSource, DeploymentRow, DeploymentStatus, ResourceStatus};
use crate::tenancy::client::Client;
use crate::tenancy::plans::Tier;

/// The largest tarball accepted.
pub const MAX_TARBALL: usize = 10 * 1024 * 1024;
/// The largest plain form field (names, ports, env vars as JSON).
const MAX_FIELD: usize = 64 * 1024;
/// The largest env var set, as JSON.
const MAX_ENV_JSON: usize = 64 * 1024;
const DEFAULT_PORT: u16 = 8080;
/// The most addresses and networks a private app may allow.
const MAX_ALLOWED_IPS: usize = 32;

/// A parsed multipart form: plain fields and files.
#[derive(Default)]
pub(super) struct Form {
    pub fields: BTreeMap<String, String>,
    pub files: BTreeMap<String, Bytes>,
}

impl Form {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    /// The names of fields and files `known` does not accept, sorted; none when all are.
    pub fn ignored(&self, known: impl Fn(&str) -> bool) -> Option<Vec<String>> {
        let mut ignored: Vec<String> = (self.fields.keys())
            .chain(self.files.keys())
            .filter(|name| !known(name))
            .cloned()
            .collect();
        ignored.sort();
        ignored.dedup();
        (!ignored.is_empty()).then_some(ignored)
    }

    /// `private=true` on a stack asks for services only some addresses reach, which stacks
    /// do not offer: refused, so nobody believes a public stack is private.
    pub fn refuse_private(&self) -> Result<(), ApiError> {
        if !truthy(self.field("private")) && self.field("allowed_ips").is_none() {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "private_deploys_unavailable",
            "Stacks cannot be private: every exposed service is public at its URL.",
        )
        .action("Create the stack without private=true (and allowed_ips), or deploy the service that must be private on its own with POST /deploy/new, private=true and allowed_ips."))
    }

    /// `private=true` with `allowed_ips` (or `allowed_ips` alone): the addresses and networks
    /// that reach the app, on tiers with private deploys; `None` for a public app.
    pub fn private_access(&self, tier: &Tier) -> Result<Option<Vec<String>>, ApiError> {
        let listed = self.field("allowed_ips").filter(|v| !v.trim().is_empty());
        if !truthy(self.field("private")) && listed.is_none() {
            return Ok(None);
        }
        if !tier.private_deploys {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "private_deploy_requires_pro",
                format!("The {} tier's apps are public; private apps come with the Pro tier and above.", tier.display_name),
            )
            .action("Deploy without private=true and allowed_ips, or tell the user a private app needs an upgraded account (Pro or above)."));
        }
        let listed = listed.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "private_deploy_requires_allowed_ips",
                "A private app needs `allowed_ips`: the addresses or networks that may reach it.",
            )
            .action("Retry with -F allowed_ips=203.0.113.7,198.51.100.0/24 (addresses and CIDRs, comma-separated).")
        })?;
        let networks = crate::tenancy::client::parse_cidrs(&[listed]).map_err(|e| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_allowed_ip", e.to_string())
                .action("List addresses (203.0.113.7) or CIDRs (198.51.100.0/24), comma-separated, and retry.")
        })?;
        if networks.len() > MAX_ALLOWED_IPS {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "too_many_allowed_ips",
                format!("At most {MAX_ALLOWED_IPS} addresses or networks may be allowed."),
            )
            .action("Merge addresses into CIDRs (e.g. 198.51.100.0/24) and retry."));
        }
        Ok(Some(
            networks.iter().map(|n| n.trunc().to_string()).collect(),
        ))
    }
}

/// The form fields `POST /deploy/new` reads.
const DEPLOY_FIELDS: [&str; 9] = [
    "name",
    "image",
    "env",
    "port",
    "env_vars",
    "redeploy",
    "tarball",
    "private",
    "allowed_ips",
];

/// Reads a multipart form; parts with a file name (or named in `file_fields`) are files of
/// at most [`MAX_TARBALL`] bytes each.
pub(super) async fn read_form(
    mut multipart: Multipart,
    file_fields: &[&str],
) -> Result<Form, ApiError> {
    let mut form = Form::default();
    // An oversized file is read to its end (and dropped) before the answer, so the client,
    // still sending, gets the 413 instead of a closed connection.
    let mut refusal = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(form_error(e.status(), &e.body_text())),
        };
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field.file_name().is_some() || file_fields.contains(&name.as_str());
        let limit = if is_file { MAX_TARBALL } else { MAX_FIELD };
        let mut data = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) if refusal.is_some() => drop(chunk),
                Ok(Some(chunk)) if data.len() + chunk.len() > limit => {
                    data = Vec::new();
                    refusal = Some(if is_file {
                        tarball_too_large()
                    } else {
                        invalid_form(&format!("field `{name}` is larger than {limit} bytes"))
                    });
                }
                Ok(Some(chunk)) => data.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return Err(form_error(e.status(), &e.body_text())),
            }
        }
        if refusal.is_some() {
            continue;
        }
        if is_file {
            form.files.insert(name, Bytes::from(data));
        } else {
            let text = String::from_utf8(data)
                .map_err(|_| invalid_form(&format!("field `{name}` is not UTF-8 text")))?;
            form.fields.insert(name, text);
        }
    }
    match refusal {
        Some(error) => Err(error),
        None => Ok(form),
    }
}

fn form_error(status: StatusCode, detail: &str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        tarball_too_large()
    } else {
        invalid_form(detail)
    }
}

/// The body is not a multipart form at all.
pub(super) fn not_multipart(e: &MultipartRejection) -> ApiError {
    invalid_form(&e.body_text())
}

fn invalid_form(detail: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_form",
        format!("The request must be multipart/form-data: {detail}."),
    )
    .action("Send the upload as multipart form fields, e.g. curl -F tarball=@app.tar.gz -F name=my-app.")
}

pub(super) fn tarball_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "tarball_too_large",
        format!(
            "The tarball is larger than {} MB.",
            MAX_TARBALL / (1024 * 1024)
        ),
    )
    .action(SourceError::TooLarge.agent_action())
}

/// A refused upload: what was wrong and how to fix it.
pub(super) fn source_error(e: &SourceError) -> ApiError {
    let status = if matches!(e, SourceError::TooLarge) {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code(), e.to_string()).action(e.agent_action())
}

/// The caller behind `Authorization: Bearer <upgrade_jwt>`; none when the header is absent.
pub(super) async fn bearer(
    app: &App,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Option<Deployer>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(unauthorized)?;
    // A signed-in session or API key deploys for its team.
    if let Ok(account) = super::auth::account(app, headers).await {
        return Ok(Some(Deployer {
            fingerprint: format!("team:{}", account.team_id),
            tier: account.tier.clone(),
            team: Some((account.team_id, account.tier)),
            proof: None,
        }));
    }
    let claims = app.tokens.verify(token).map_err(|_| unauthorized())?;
    let resource = Uuid::parse_str(&claims.sub).map_err(|_| unauthorized())?;
    let row = app
        .store
        .find_by_token(resource)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unauthorized)?;
    // Once its resource is claimed (or a claim with it is under way), an upgrade token acts
    // for no one: the team deploys with its session or API key.
    let claimed = app
        .store
        .is_claimed(&claims.jti)
        .await
        .map_err(ApiError::internal)?;
    if row.team_id.is_some() || claimed {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "upgrade_token_claimed",
            "This upgrade token's resource was claimed by an account; the token deploys nothing more.",
        )
        .action("Sign in (POST /auth/email/start) and deploy with the session token or an API key as `Authorization: Bearer ...`."));
    }
    Ok(Some(Deployer {
        fingerprint: row
            .fingerprint
            .unwrap_or_else(|| client.fingerprint.clone()),
        tier: row.tier,
        team: None,
        proof: Some(resource),
    }))
}

/// The caller a deploy is made for: a bearer is required.
pub(super) async fn required_bearer(
    app: &App,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Deployer, ApiError> {
    bearer(app, headers, client).await?.ok_or_else(unauthorized)
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Deploys need `Authorization: Bearer <upgrade_jwt>`.",
    )
    .action("Send the upgrade_jwt from any provisioning response (e.g. POST /db/new) as `Authorization: Bearer <upgrade_jwt>` and retry.")
}

/// The kind apps are created as, when a deploy provider is live.
fn app_kind(app: &App) -> Result<String, ApiError> {
    apps::deployer(app)
        .map(|(kind, _)| kind)
        .ok_or_else(no_deployer)
}

pub(super) fn no_deployer() -> ApiError {
    ApiError::not_found("A deploy provider")
}

/// The deployer's tier as the plans state it.
fn tier_of<'a>(app: &'a App, deployer: &Deployer) -> Result<&'a Tier, ApiError> {
    app.plans
        .tier(&deployer.tier)
        .ok_or_else(|| ApiError::internal(format!("tier `{}` is not in the plans", deployer.tier)))
}

/// Refuses a new app past the tier's `<app kind>.apps`.
pub(super) async fn check_app_quota(app: &App, deployer: &Deployer) -> Result<(), ApiError> {
    let tier = tier_of(app, deployer)?;
    let kind = app_kind(app)?;
    let allowed = tier
        .limits_for(&kind)
        .into_iter()
        .find(|(k, _)| k == "apps")
        .map_or(0, |(_, v)| v);
    let running = app
        .store
        .live_app_count(&deployer.fingerprint)
        .await
        .map_err(ApiError::internal)?;
    if u64::try_from(running).unwrap_or(u64::MAX) >= allowed {
        let claim_url = format!("{}/claim", app.public_url);
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "deployment_limit_reached",
            format!("The {} tier runs at most {allowed} app(s) at once, and that many run.", deployer.tier),
        )
        .with("limit", allowed)
        .with("claim_url", claim_url.clone())
        .action(format!("Tell the user this tier's deployment limit ({allowed}) is reached: redeploy the existing app with redeploy=true and the same name, delete it (DELETE /api/v1/deployments/<id>), or claim an account and upgrade: {claim_url}")));
    }
    Ok(())
}

fn parse_port(value: Option<&str>) -> Result<u16, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(DEFAULT_PORT),
        Some(text) => text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_port",
                "`port` must be a number from 1 to 65535.",
            )
            .action("Retry with the port your app listens on, e.g. -F port=8080 (the default).")
        }),
    }
}

/// `env_vars`: a JSON object of names to string (or number/bool) values.
pub(super) fn parse_env_vars(value: Option<&str>) -> Result<BTreeMap<String, String>, ApiError> {
    let invalid = |detail: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_env_vars",
            format!("`env_vars` must be a JSON object of names to values: {detail}."),
        )
        .action("Retry with env_vars as a JSON object string, e.g. -F 'env_vars={\"DATABASE_URL\":\"postgres://...\"}'; names are letters, digits and '_', not starting with a digit.")
    };
    let Some(text) = value.filter(|t| !t.trim().is_empty()) else {
        return Ok(BTreeMap::new());
    };
    if text.len() > MAX_ENV_JSON {
        return Err(invalid("larger than 64 KiB"));
    }
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) else {
        return Err(invalid("not a JSON object"));
    };
    let mut env = BTreeMap::new();
    for (key, value) in object {
        let name_ok = !key.is_empty()
            && key.len() <= 256
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !name_ok {
            return Err(invalid(&format!("`{key}` is not a valid variable name")));
        }
        let value = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(invalid(&format!("the value of `{key}` is not a string"))),
        };
        if value.contains('\0') {
            return Err(invalid(&format!(
                "the value of `{key}` contains a NUL byte"
            )));
        }
        env.insert(key, value);
    }
    Ok(env)
}

fn truthy(value: Option<&str>) -> bool {
    matches!(
        value.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes")
    )
}

/// `POST /deploy/new`.
#[utoipa::path(post, path = "/deploy/new", tag = "deploys", operation_id = "createDeploy",
    summary = "Build and run a container",
    description = "A gzipped tarball with a Dockerfile at its top (at most 10 MB). Needs a bearer: a team's API key or any resource's upgrade_jwt. Builds have no network: a Dockerfile with ADD <url>, a git or $VARIABLE source, or FROM/COPY --from an image on a registry host is refused (400 dockerfile_remote_source). One build per app runs at a time; a redeploy stops the build it replaces.",
    security(("bearer" = [])),
    request_body(content = DeployForm, content_type = "multipart/form-data"),
    responses((status = 202, description = "Building.", body = DeploymentAnswer)))]
pub async fn create(
    State(app): State<SharedApp>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<DeploymentAnswer>), ApiError> {
    let multipart = multipart.map_err(|e| super::deploy::not_multipart(&e))?;
    let deployer = required_bearer(&app, &headers, &client).await?;
    let form = read_form(multipart, &["tarball"]).await?;
    create_from_form(&app, deployer, &form).await
}

/// The deploy a form asks for: a new app, or (`redeploy=true`) a new version of the
/// caller's app of that name. Also what the MCP `create_deploy` tool calls.
pub(super) async fn create_from_form(
    app: &SharedApp,
    deployer: Deployer,
    form: &Form,
) -> Result<(StatusCode, Json<DeploymentAnswer>), ApiError> {
    let ignored_fields = form.ignored(|name| DEPLOY_FIELDS.contains(&name));
    let name = name_field(form.field("name"))?;
    let env = env_field(form.field("env"))?;
    let port = parse_port(form.field("port"))?;
    let env_vars = parse_env_vars(form.field("env_vars"))?;
    let source = app_source(app, form)?;
    let tier = tier_of(app, &deployer)?;
    let allowed_ips = form.private_access(tier)?;

    if truthy(form.field("redeploy")) {
        let row = app
            .store
            .latest_deployment_named(&deployer.fingerprint, name.as_str())
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no_existing_deployment_to_redeploy",
                    format!("No running app of yours is named `{}`.", name.as_str()),
                )
                .action("Drop redeploy=true to create a new app, or use the exact name of the existing one.")
            })?;
        super::vault::check_references(app, row.team_id, &row.env, &env_vars).await?;
        let sealed = (form.field("env_vars").is_some())
            .then(|| seal_env(app, row.resource_id, &env_vars))
            .transpose()
            .map_err(ApiError::internal)?;
        // A redeploy that names its access changes it; one that does not keeps it.
        if allowed_ips.is_some() {
            app.store
                .set_allowed_ips(row.resource_id, allowed_ips.as_deref())
                .await
                .map_err(ApiError::internal)?;
        }
        let row = start_redeploy(app, row, Some(source), sealed.as_deref()).await?;
        let body = DeploymentAnswer {
            redeployed: Some(true),
            note: Some(
                "Rebuilding in place: the same URL serves the new version once it is healthy."
                    .into(),
            ),
            ignored_fields,
            ..answer(app, &row)
        };
        return Ok((StatusCode::ACCEPTED, Json(body)));
    }

    let team_id = deployer.team.as_ref().map(|(team, _)| *team);
    super::vault::check_references(app, team_id, env.as_str(), &env_vars).await?;
    check_app_quota(app, &deployer).await?;
    let ttl = super::team::default_app_ttl(app, &deployer).await?;
    let created = create_app(
        &app.services,
        NewApp {
            deployer: &deployer,
            name,
            env,
            port,
            env_vars: &env_vars,
            source,
            stack: None,
            network: None,
            ttl,
            allowed_ips: allowed_ips.as_deref(),
        },
        super::request_id::current(),
    )
    .await
    .map_err(|e| lifecycle_error(&app.public_url, e))?;
    let row = find_row(app, created.token).await?;
    let expiry = match created.expires_at {
        Some(at) => format!(
            " It expires at {} unless claimed.",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => String::new(),
    };
    let body = DeploymentAnswer {
        redeployed: Some(false),
        note: Some(format!(
            "Building. Poll GET /api/v1/deployments/{} until status is healthy.{expiry}",
            created.token
        )),
        agent_action: Some(format!(
            "Poll GET {}/api/v1/deployments/{} until status is \"healthy\", then give the user {}; on \"failed\" read GET {}/api/v1/deployments/{}/events, fix, and redeploy.",
            app.public_url,
            created.token,
            created.url.clone().unwrap_or_default(),
            app.public_url,
            created.token
        )),
        ignored_fields,
        ..answer(app, &row)
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// What a deploy form runs: its checked `tarball`, or its prebuilt `image` on a registry
/// the deploy provider's engine may pull from.
fn app_source<'a>(app: &App, form: &'a Form) -> Result<AppSource<'a>, ApiError> {
    match (form.files.get("tarball"), form.field("image")) {
        (Some(_), Some(_)) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "image_and_tarball",
            "Send either a `tarball` to build or an `image` to run, not both.",
        )
        .action("Drop one of the two fields and retry.")),
        (Some(tarball), None) => {
            if tarball.len() > MAX_TARBALL {
                return Err(tarball_too_large());
            }
            source::check(tarball, &SourceLimits::default()).map_err(|e| source_error(&e))?;
            Ok(AppSource::Context(tarball))
        }
        (None, Some(image)) => {
            let refusal = crate::deploy::deployer(app)
                .and_then(|(_, provider)| provider.containers().map(|c| c.refuse_image(image)))
                .unwrap_or_else(|| Some("this host runs no prebuilt images".into()));
            match refusal {
                None => Ok(AppSource::Image(image)),
                Some(why) => Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "image_not_allowed",
                    format!("The image cannot be deployed here: {why}."),
                )
                .action("Push the image to an allowed registry and send its reference (ideally by sha256 digest), or upload the build context as -F tarball=@app.tar.gz.")),
            }
        }
        (None, None) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_tarball",
            "A `tarball` file field (or an `image` reference) is required.",
        )
        .action("Pack the app with its Dockerfile at the top (tar czf app.tar.gz -C app .) and send it as -F tarball=@app.tar.gz.")),
    }
}

/// Starts a new rollout of an existing app (new upload, or the last one again).
pub(super) async fn start_redeploy(
    app: &SharedApp,
    row: DeploymentRow,
    source: Option<AppSource<'_>>,
    sealed_env: Option<&[u8]>,
) -> Result<DeploymentRow, ApiError> {
    if row.resource_status == ResourceStatus::Pending {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            "The app is still being created.",
        )
        .action("Wait a second, then retry the redeploy.")
        .retry_after(1));
    }
    let generation = app
        .store
        .begin_rollout(row.resource_id, source, sealed_env, app.clock.now())
        .await
        .map_err(ApiError::internal)?;
    rollout::spawn(app.services.clone(), row.resource_id, generation);
    find_row(app, row.token).await
}

/// The live app behind `token`.
pub(super) async fn find_row(app: &App, token: Uuid) -> Result<DeploymentRow, ApiError> {
    let row = app
        .store
        .deployment_by_token(token)
        .await
        .map_err(ApiError::internal)?
        .filter(|row| row.resource_status != ResourceStatus::Failed)
        .ok_or_else(not_found)?;
    if row.resource_status == ResourceStatus::Deleted {
        let resource = app
            .store
            .find_by_token(token)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(not_found)?;
        return Err(ended(&resource));
    }
    Ok(row)
}

/// The public view of an app.
pub(super) fn item(app: &App, row: &DeploymentRow) -> Deployment {
    let status = if row.resource_status == ResourceStatus::Deleted {
        DeploymentStatus::Stopped
    } else {
        row.status
    };
    Deployment {
        id: row.token,
        app_id: row.app_id.clone(),
        token: row.token,
        name: row.name.clone(),
        url: row.slug.as_deref().map(|s| app.apps.url(s)),
        status,
        port: row.port,
        tier: row.tier.clone(),
        generation: row.generation,
        error: row.error.clone(),
        error_message: row.error.clone(),
        failure: row.failure.clone(),
        service: row.service.clone(),
        private: row.allowed_ips.is_some(),
        allowed_ips: row.allowed_ips.clone().unwrap_or_default(),
        image: row.image.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        expires_at: row.expires_at,
    }
}

/// An app's answer: the headline fields beside the whole item.
fn answer(app: &App, row: &DeploymentRow) -> DeploymentAnswer {
    let item = item(app, row);
    DeploymentAnswer {
        ok: True,
        id: item.id,
        app_id: item.app_id.clone(),
        url: item.url.clone(),
        status: item.status,
        item,
        redeployed: None,
        note: None,
        agent_action: None,
        ignored_fields: None,
    }
}

/// `GET /api/v1/deployments/{id}`.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deploys", operation_id = "getDeployment",
    summary = "A deployment's status",
    responses((status = 200, description = "The deployment.", body = DeploymentAnswer)))]
pub async fn get(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Json<DeploymentAnswer>, ApiError> {
    let row = find_row(&app, parse_token(&id)?).await?;
    Ok(Json(answer(&app, &row)))
}

/// `GET /deploy/{id}`: the same, under the short path.
#[utoipa::path(get, path = "/deploy/{id}", tag = "deploys", operation_id = "getDeploymentShort",
    summary = "A deployment's status (short path)",
    responses((status = 200, description = "The deployment.", body = DeploymentAnswer)))]
pub async fn get_short(
    app: State<SharedApp>,
    id: Path<String>,
) -> Result<Json<DeploymentAnswer>, ApiError> {
    get(app, id).await
}

/// `GET /api/v1/deployments/{id}/events`: the failure autopsy, when there is one.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/events", tag = "deploys",
    operation_id = "getDeploymentEvents",
    summary = "Why a deployment failed",
    responses((status = 200, description = "The failure autopsy (reason, exit_code, last_lines, hint).", body = DeploymentEvents)))]
pub async fn events(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Json<DeploymentEvents>, ApiError> {
    let row = find_row(&app, parse_token(&id)?).await?;
    let events: Vec<Value> = row.failure.clone().into_iter().collect();
    Ok(Json(DeploymentEvents {
        ok: True,
        deployment_id: row.token,
        status: row.status,
        count: events.len(),
        events,
    }))
}

/// `POST /deploy/{id}/redeploy`: rebuild from the last upload (and current env).
#[utoipa::path(post, path = "/deploy/{id}/redeploy", tag = "deploys", operation_id = "redeploy",
    summary = "Rebuild the last upload in place",
    responses((status = 202, description = "Building again.", body = DeploymentAnswer)))]
pub async fn redeploy(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeploymentAnswer>), ApiError> {
    let row = find_row(&app, parse_token(&id)?).await?;
    let row = start_redeploy(&app, row, None, None).await?;
    let body = DeploymentAnswer {
        redeployed: Some(true),
        ..answer(&app, &row)
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// `DELETE /api/v1/deployments/{id}`: stops and removes the app now; a paid team's app
/// once a person confirms (see [`super::deletion`]).
#[utoipa::path(delete, path = "/api/v1/deployments/{id}", tag = "deploys",
    operation_id = "deleteDeployment",
    summary = "Stop and remove an app",
    description = "Anonymous and free apps go at once. A paid team's app waits for a person to confirm through an emailed link (202 pending_confirmation), unless the bearer is the team's API key made with skip_delete_confirmation and X-Skip-Email-Confirmation: yes is sent.",
    params(("X-Skip-Email-Confirmation" = Option<String>, Header, description = "yes: delete at once (an API key that allows it).")),
    responses(
        (status = 200, description = "Deleted.", body = DeploymentDeleted),
        (status = 202, description = "Waiting for the emailed confirmation.", body = DeletionPending),
    ))]
pub async fn delete(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = parse_token(&id)?;
    let deployment = find_row(&app, token).await?;
    let deletable = super::deletion::Deletable {
        target: token,
        kind: "deployment",
        handle: token.to_string(),
        name: deployment.name.clone(),
        team_id: deployment.team_id,
        tier: deployment.tier.clone(),
    };
    if let Some(pending) = super::deletion::hold_for_confirmation(&app, &headers, deletable).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    }
    delete_now(&app, token).await?;
    Ok(Json(DeploymentDeleted {
        ok: True,
        id: token,
        app_id: deployment.app_id,
        status: "deleted".into(),
        deletion_status: "confirmed".into(),
        message: "The app was stopped and removed; its URL no longer answers.".into(),
    })
    .into_response())
}

/// `DELETE /deploy/{id}`: the same, under the short path.
#[utoipa::path(delete, path = "/deploy/{id}", tag = "deploys", operation_id = "deleteDeploymentShort",
    summary = "Stop and remove an app (short path)",
    params(("X-Skip-Email-Confirmation" = Option<String>, Header, description = "yes: delete at once (an API key that allows it).")),
    responses(
        (status = 200, description = "Deleted.", body = DeploymentDeleted),
        (status = 202, description = "Waiting for the emailed confirmation.", body = DeletionPending),
    ))]
pub async fn delete_short(
    app: State<SharedApp>,
    id: Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    delete(app, id, headers).await
}

/// `GET /deploy/{id}/logs`: server-sent events, one `data:` per line, `data: [end]` last.
/// While the app builds, the build output streams live; then the app's recent output.
#[utoipa::path(get, path = "/deploy/{id}/logs", tag = "deploys", operation_id = "followDeploymentLogs",
    summary = "Follow the build and the app's output",
    responses((status = 200, description = "Server-sent events, one line per data field, `[end]` last.", body = String, content_type = "text/event-stream")))]
pub async fn logs(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let row = find_row(&app, parse_token(&id)?).await?;
    log_stream(&app, row)
}

/// An app's build output (live while it builds), then its recent output, as server-sent
/// events ending with `data: [end]`.
pub(super) fn log_stream(app: &SharedApp, row: DeploymentRow) -> Result<Response, ApiError> {
    let provider = crate::deploy::deployer_of(app, &row).ok_or_else(no_deployer)?;
    let stream = log_lines(app.clone(), provider, row);
    let sse = Sse::new(futures_util::StreamExt::map(stream, |line| {
        Ok::<_, Infallible>(Event::default().data(line))
    }))
    .keep_alive(KeepAlive::default());
    let mut response = sse.into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    Ok(response)
}

fn log_lines(
    app: SharedApp,
    provider: std::sync::Arc<crate::registry::Loaded>,
    row: DeploymentRow,
) -> impl Stream<Item = String> {
    async_stream_lines(move |tx| async move {
        let reference = context_ref(row.resource_id, row.generation);
        if let Some(build) = provider.containers().and_then(|c| c.build_log(&reference)) {
            let mut sent = 0;
            loop {
                let (lines, finished) = build.read_from(sent);
                sent += lines.len();
                for line in lines {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
                if finished {
                    break;
                }
                build.changed(Duration::from_secs(1)).await;
            }
        }
        let Ok(target) = rollout::target(&app, &row, row.generation).await else {
            let _ = tx.send("[end]".into()).await;
            return;
        };
        let request_id = super::request_id::current();
        if let Ok(Ok(lines)) = provider.deploy_logs(&request_id, &target, 200).await {
            for line in lines {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        }
        let _ = tx.send("[end]".into()).await;
    })
}

/// A stream fed by `produce` through a small channel (the producer stops when the client
/// goes away).
fn async_stream_lines<F, Fut>(produce: F) -> impl Stream<Item = String>
where
    F: FnOnce(tokio::sync::mpsc::Sender<String>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(produce(tx));
    futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((line, rx))
    })
}

/// The route's own body limit. Well above the tarball cap, so that a somewhat oversized
/// upload is read and answered with `tarball_too_large`; beyond it the connection closes.
pub const MAX_DEPLOY_BODY: usize = 64 * 1024 * 1024;
