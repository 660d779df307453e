//! Stacks: several services from one `instant.yaml` manifest, each built from its own
//! tarball, sharing a private network (`service://name` reaches a sibling) and reading the
//! caller's resources (`needs`) from injected env vars such as `DATABASE_URL`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Extension, Multipart, Path, State};

use super::query::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::deploy::{Form, bearer, check_app_quota, item, read_form, source_error, start_redeploy};
use super::error::ApiError;
use super::lifecycle_error::lifecycle_error;
use super::provision::{env_field, name_field};
use super::schema::{
    DeletionPending, Stack, StackCreated, StackDeleted, StackForm, StackRedeployed, StackService,
    StackServiceCreated, True,
};
use crate::app::{App, SharedApp};
use crate::deploy::apps::Deployer;
use crate::deploy::manifest::{self, Manifest};
use crate::deploy::source::{self, SourceLimits};
use crate::deploy::stacks::{CreatedStack, NewStack, create_stack, delete_apps};
use crate::lifecycle::stored::Credentials;
use crate::store::{DeploymentRow, DeploymentStatus, ResourceStatus, StackRow};
use crate::tenancy::client::Client;

/// The whole upload: manifest plus every service's tarball.
pub const MAX_STACK_BODY: usize = 50 * 1024 * 1024;

/// `POST /stacks/new`: multipart `manifest` (instant.yaml), `name`, one tarball per service.
#[utoipa::path(post, path = "/stacks/new", tag = "stacks", operation_id = "createStack",
    summary = "Deploy several services from a manifest",
    security(("bearer" = [])),
    request_body(content = StackForm, content_type = "multipart/form-data"),
    responses((status = 202, description = "Building.", body = StackCreated)))]
pub async fn create(
    State(app): State<SharedApp>,
    Extension(client): Extension<Client>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<StackCreated>), ApiError> {
    let multipart = multipart.map_err(|e| super::deploy::not_multipart(&e))?;
    let deployer = stack_deployer(&app, &headers, &client).await?;
    let form = read_form(multipart, &[]).await?;
    create_from_form(&app, deployer, form).await
}

/// Who a new stack is made for: the bearer's owner, or the anonymous caller.
pub(super) async fn stack_deployer(
    app: &App,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Deployer, ApiError> {
    Ok(match bearer(app, headers, client).await? {
        Some(deployer) => deployer,
        None => Deployer {
            fingerprint: client.fingerprint.clone(),
            tier: crate::tenancy::plans::ANONYMOUS.into(),
            team: None,
            proof: None,
        },
    })
}

/// The stack a form asks for. Also what the MCP `create_stack` tool calls.
pub(super) async fn create_from_form(
    app: &SharedApp,
    deployer: Deployer,
    mut form: Form,
) -> Result<(StatusCode, Json<StackCreated>), ApiError> {
    form.refuse_private()?;
    let name = name_field(form.field("name"))?;
    let env = env_field(form.field("env"))?;
    let manifest_text = match (
        form.fields.remove("manifest"),
        form.files.remove("manifest"),
    ) {
        (Some(text), _) => text,
        (None, Some(file)) => String::from_utf8(file.to_vec())
            .map_err(|_| invalid_manifest("the manifest is not UTF-8 text".into()))?,
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_manifest",
                "A `manifest` field with the instant.yaml text is required.",
            )
            .action("Send the manifest as -F manifest=@instant.yaml along with one tarball per service (-F <service>=@<service>.tar.gz)."));
        }
    };
    let (manifest, warnings) = manifest::parse(&manifest_text).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()).action(
            "Fix instant.yaml (services.<name>.{build, port, expose, needs, env}) and retry.",
        )
    })?;

    let ignored_fields = form.ignored(|field| {
        ["name", "env", "private"].contains(&field) || manifest.services.contains_key(field)
    });
    // Every check before anything is created.
    let mut contexts = BTreeMap::new();
    for (service, spec) in &manifest.services {
        let tarball = form.files.get(service).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_tarball",
                format!("No tarball for service `{service}`."),
            )
            .action(format!("Send each service's build context as a file field named after it, e.g. -F {service}=@{service}.tar.gz."))
        })?;
        let context = source::build_context(tarball, &spec.build, &SourceLimits::default())
            .map_err(|e| source_error(&e).with("service", service.clone()))?;
        contexts.insert(service.clone(), context);
    }
    let team_id = deployer.team.as_ref().map(|(team, _)| *team);
    for service in manifest.services.keys() {
        let env_vars = manifest.resolved_env(service);
        super::vault::check_references(app, team_id, env.as_str(), &env_vars).await?;
    }
    let injected = needed_env(app, &deployer, &manifest).await?;
    check_app_quota(app, &deployer).await?;

    // An anonymous stack's reader and deleter is whoever holds this token (or the upgrade
    // JWT it was made with); a team's stack answers the team.
    let stack_token = deployer
        .team
        .is_none()
        .then(|| format!("stt_{}", super::auth::new_secret()));
    let CreatedStack {
        row: stack,
        services: created,
    } = create_stack(
        &app.services,
        NewStack {
            deployer: &deployer,
            name: name.clone(),
            env,
            manifest: &manifest,
            manifest_text,
            contexts: &contexts,
            injected: &injected,
            secret_hash: stack_token.as_deref().map(super::auth::hash),
        },
        &super::request_id::current(),
    )
    .await
    .map_err(|e| lifecycle_error(&app.public_url, e))?;
    let slug = stack.slug.clone();

    let services: Vec<StackServiceCreated> = created
        .iter()
        .map(|(service, c)| StackServiceCreated {
            name: service.clone(),
            id: c.token,
            app_id: c.app_id.clone(),
            url: c.url.clone(),
            status: "building".into(),
        })
        .collect();
    let stack_url = created.iter().find_map(|(_, c)| c.url.clone());
    let mut note =
        String::from("Building. Poll GET /api/v1/stacks/{slug} until status is healthy.");
    if !warnings.is_empty() {
        note = format!(
            "{} warning(s) from manifest parsing: {}. {note}",
            warnings.len(),
            warnings.join("; ")
        );
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(StackCreated {
            ok: True,
            stack_id: slug.clone(),
            name: name.as_str().to_string(),
            status: "building".into(),
            tier: deployer.tier,
            stack_url,
            services,
            expires_in: stack
                .expires_at
                .map(|at| format!("{}h", (at - stack.created_at).num_hours()))
                .unwrap_or_default(),
            expires_at: stack.expires_at,
            stack_token,
            ignored_fields,
            note: note.replace("{slug}", &slug),
            agent_action: format!(
                "Poll GET {}/api/v1/stacks/{slug} (Authorization: Bearer <stack_token, the upgrade_jwt you created it with, or your session/API key>) until status is \"healthy\", then give the user the service URLs.",
                app.public_url
            ),
            slug,
        }),
    ))
}

/// Env vars from each service's `needs`: `DATABASE_URL`, `REDIS_URL`, ... pointing at the
/// resource's internal URL (reachable from containers). Only the caller's own live
/// resources may be named.
async fn needed_env(
    app: &App,
    deployer: &Deployer,
    manifest: &Manifest,
) -> Result<BTreeMap<String, BTreeMap<String, String>>, ApiError> {
    let mut out = BTreeMap::new();
    for (service, spec) in &manifest.services {
        let mut env = BTreeMap::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for token in &spec.needs {
            let not_found = || {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "resource_not_found",
                    format!("Service `{service}` needs `{token}`, which is not a live resource of yours."),
                )
                .action("Use the `token` of a resource you provisioned (from its provisioning response) in `needs`.")
            };
            let token_id = Uuid::parse_str(token).map_err(|_| not_found())?;
            let row = app
                .store
                .find_by_token(token_id)
                .await
                .map_err(ApiError::internal)?
                .filter(|r| r.status.is_live())
                .filter(|r| match (&deployer.team, r.team_id) {
                    (Some((team, _)), Some(owner)) => *team == owner,
                    (None, None) => r.fingerprint.as_deref() == Some(deployer.fingerprint.as_str()),
                    _ => false,
                })
                .ok_or_else(not_found)?;
            let credentials = Credentials::open(app, &row).map_err(ApiError::internal)?;
            let url = credentials
                .internal_url
                .unwrap_or(credentials.connection_url);
            let base = app
                .kinds
                .kind(&row.kind)
                .map_or_else(|| manifest::fallback_env_var(&row.kind), |k| k.env_var);
            // Numbered per variable, not per kind: kinds may share one (`db` and `vector`
            // both say DATABASE_URL), and a second must not overwrite the first.
            let ordinal = seen.entry(base.clone()).or_default();
            env.insert(manifest::needs_env_name(&base, *ordinal), url);
            *ordinal += 1;
        }
        out.insert(service.clone(), env);
    }
    Ok(out)
}

/// Who may read or delete a stack.
const STACK_OWNER: &str = "Bearer: an anonymous stack's stack_token (from POST /stacks/new) or the upgrade_jwt it was created with; a team's stack, the team's session or API key. The slug alone is a public handle.";

/// `GET /api/v1/stacks/{slug}`: for a caller proving it owns the stack.
#[utoipa::path(get, path = "/api/v1/stacks/{slug}", tag = "stacks", operation_id = "getStack",
    summary = "A stack's services",
    description = STACK_OWNER,
    security(("bearer" = [])),
    responses((status = 200, description = "The stack.", body = Stack)))]
pub async fn get(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Stack>, ApiError> {
    let (stack, services) = find(&app, &slug, &headers).await?;
    let items: Vec<StackService> = services
        .iter()
        .map(|row| {
            let view = item(&app, row);
            StackService {
                name: row.service.clone().unwrap_or_default(),
                id: view.id,
                app_id: view.app_id,
                status: view.status,
                url: view.url,
                expose: row.slug.is_some(),
                port: row.port,
                error: row.error.clone(),
                failure: row.failure.clone(),
                env: redacted_env(&app, row),
            }
        })
        .collect();
    Ok(Json(Stack {
        ok: True,
        stack_id: stack.slug.clone(),
        slug: stack.slug,
        name: stack.name,
        status: overall_status(&services),
        tier: services.first().map(|s| s.tier.clone()),
        manifest: stack.manifest,
        services: items,
        created_at: stack.created_at,
        expires_at: stack.expires_at,
    }))
}

/// `GET /stacks/{slug}`: the same, under the short path.
#[utoipa::path(get, path = "/stacks/{slug}", tag = "stacks", operation_id = "getStackShort",
    summary = "A stack's services (short path)",
    description = STACK_OWNER,
    security(("bearer" = [])),
    responses((status = 200, description = "The stack.", body = Stack)))]
pub async fn get_short(
    app: State<SharedApp>,
    slug: Path<String>,
    headers: HeaderMap,
) -> Result<Json<Stack>, ApiError> {
    get(app, slug, headers).await
}

/// `DELETE /api/v1/stacks/{slug}`: stops and removes every service; a paid team's stack
/// once a person confirms (see [`super::deletion`]).
#[utoipa::path(delete, path = "/api/v1/stacks/{slug}", tag = "stacks", operation_id = "deleteStack",
    summary = "Delete every service of a stack",
    description = STACK_OWNER,
    security(("bearer" = [])),
    params(("X-Skip-Email-Confirmation" = Option<String>, Header, description = "yes: delete at once (an API key that allows it).")),
    responses(
        (status = 200, description = "Deleted.", body = StackDeleted),
        (status = 202, description = "A paid team's stack: waiting for the emailed confirmation.", body = DeletionPending),
    ))]
pub async fn delete(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (stack, services) = find(&app, &slug, &headers).await?;
    let deletable = super::deletion::Deletable {
        target: stack.id,
        kind: "stack",
        handle: stack.slug.clone(),
        name: stack.name.clone(),
        team_id: (stack.fingerprint.strip_prefix("team:")).and_then(|team| team.parse().ok()),
        tier: services
            .first()
            .map(|row| row.tier.clone())
            .unwrap_or_default(),
    };
    if let Some(pending) = super::deletion::hold_for_confirmation(&app, &headers, deletable).await?
    {
        return Ok((StatusCode::ACCEPTED, Json(pending)).into_response());
    }
    let tokens: Vec<Uuid> = services.iter().map(|row| row.token).collect();
    delete_apps(&app, &tokens, &super::request_id::current()).await;
    Ok(Json(StackDeleted {
        ok: True,
        slug: stack.slug,
        status: "deleted".into(),
        message: "Stack deleted.".into(),
    })
    .into_response())
}

/// `DELETE /stacks/{slug}`: the same, under the short path.
#[utoipa::path(delete, path = "/stacks/{slug}", tag = "stacks", operation_id = "deleteStackShort",
    summary = "Delete a stack (short path)",
    description = STACK_OWNER,
    security(("bearer" = [])),
    params(("X-Skip-Email-Confirmation" = Option<String>, Header, description = "yes: delete at once (an API key that allows it).")),
    responses(
        (status = 200, description = "Deleted.", body = StackDeleted),
        (status = 202, description = "A paid team's stack: waiting for the emailed confirmation.", body = DeletionPending),
    ))]
pub async fn delete_short(
    app: State<SharedApp>,
    slug: Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    delete(app, slug, headers).await
}

/// The stack `slug` and its services, for a caller that proves it may act on it; a stack
/// it may not see is not found.
pub(super) async fn find(
    app: &App,
    slug: &str,
    headers: &HeaderMap,
) -> Result<(StackRow, Vec<DeploymentRow>), ApiError> {
    let Some(presented) = super::auth::bearer_token(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Stacks are read and deleted with a credential of their owner.",
        )
        .action("Send `Authorization: Bearer <stack_token>` (from POST /stacks/new), the upgrade_jwt the stack was created with, or the owning team's session or API key."));
    };
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "stack_not_found",
            "No stack has this slug.",
        )
        .action("Use the `slug` from the POST /stacks/new response.")
    };
    if !slug.starts_with("stk-") || slug.len() > 32 {
        return Err(not_found());
    }
    let stack = app
        .store
        .stack_by_slug(slug)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    if !may_act_on(app, &stack, presented, headers).await {
        return Err(not_found());
    }
    let services = app
        .store
        .stack_services(stack.id)
        .await
        .map_err(ApiError::internal)?;
    Ok((stack, services))
}

/// `healthy` only when every service is; `failed` when any failed; `stopped` once gone;
/// `building` while any is on its way.
fn overall_status(services: &[DeploymentRow]) -> DeploymentStatus {
    let status = |row: &DeploymentRow| match (row.resource_status, row.status) {
        (ResourceStatus::Deleted, _) => DeploymentStatus::Stopped,
        (_, DeploymentStatus::Deploying) => DeploymentStatus::Building,
        (_, status) => status,
    };
    let all = |wanted| services.iter().all(|s| status(s) == wanted);
    if services.is_empty() || all(DeploymentStatus::Stopped) {
        DeploymentStatus::Stopped
    } else if services
        .iter()
        .any(|s| status(s) == DeploymentStatus::Failed)
    {
        DeploymentStatus::Failed
    } else if all(DeploymentStatus::Healthy) {
        DeploymentStatus::Healthy
    } else {
        DeploymentStatus::Building
    }
}

/// Env var names with values hidden (they carry credentials), except sibling links.
fn redacted_env(app: &App, row: &DeploymentRow) -> BTreeMap<String, String> {
    let env =
        crate::deploy::rollout::open_env(app, row.resource_id, &row.sealed_env).unwrap_or_default();
    redacted(env)
}

/// `env` with each value hidden but links to a sibling service (`http://` without a
/// password) and `vault://` references.
pub(super) fn redacted(env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.into_iter()
        .map(|(k, v)| {
            // Sibling links and vault references name no secret.
            let shown = if (v.starts_with("http://") && !v.contains('@'))
                || v.starts_with(crate::vault::PREFIX)
            {
                v
            } else {
                "***".to_string()
            };
            (k, shown)
        })
        .collect()
}

/// `?service=`: one service of the stack; all when absent.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceQuery {
    /// The service to act on; every service when absent.
    pub service: Option<String>,
}

/// `POST /stacks/{slug}/redeploy`: rebuilds every service (or `?service=`) from its last
/// upload and current env.
#[utoipa::path(post, path = "/stacks/{slug}/redeploy", tag = "stacks", operation_id = "redeployStack",
    summary = "Rebuild a stack's services in place",
    description = STACK_OWNER,
    security(("bearer" = [])),
    params(ServiceQuery),
    responses((status = 202, description = "Rebuilding.", body = StackRedeployed)))]
pub async fn redeploy(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    Query(query): Query<ServiceQuery>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<StackRedeployed>), ApiError> {
    let (stack, services) = find(&app, &slug, &headers).await?;
    let chosen = chosen_services(services, query.service.as_deref())?;
    let mut rebuilding = Vec::new();
    for row in chosen {
        let name = row.service.clone().unwrap_or_default();
        let row = start_redeploy(&app, row, None, None).await?;
        let view = item(&app, &row);
        rebuilding.push(StackServiceCreated {
            name,
            id: view.id,
            app_id: view.app_id,
            url: view.url,
            status: "building".into(),
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(StackRedeployed {
            ok: True,
            note: format!(
                "Rebuilding; each service's running version serves until the new one is healthy. Poll GET /api/v1/stacks/{}.",
                stack.slug
            ),
            slug: stack.slug,
            services: rebuilding,
        }),
    ))
}

/// `GET /stacks/{slug}/logs/{service}`: one service's build and output, as
/// `GET /deploy/{id}/logs` streams an app's.
#[utoipa::path(get, path = "/stacks/{slug}/logs/{service}", tag = "stacks",
    operation_id = "followStackServiceLogs",
    summary = "Follow a stack service's build and output",
    description = STACK_OWNER,
    security(("bearer" = [])),
    responses((status = 200, description = "Server-sent events, one line per data field, `[end]` last.", body = String, content_type = "text/event-stream")))]
pub async fn logs(
    State(app): State<SharedApp>,
    Path((slug, service)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, services) = find(&app, &slug, &headers).await?;
    let mut chosen = chosen_services(services, Some(&service))?;
    let row = chosen.remove(0);
    super::deploy::log_stream(&app, row)
}

/// The live services named by `service` (all of them when `None`).
fn chosen_services(
    services: Vec<DeploymentRow>,
    service: Option<&str>,
) -> Result<Vec<DeploymentRow>, ApiError> {
    let live: Vec<DeploymentRow> = services
        .into_iter()
        .filter(|row| row.resource_status.is_live())
        .collect();
    let known: Vec<String> = live.iter().filter_map(|row| row.service.clone()).collect();
    let chosen: Vec<DeploymentRow> = live
        .into_iter()
        .filter(|row| service.is_none_or(|wanted| row.service.as_deref() == Some(wanted)))
        .collect();
    if chosen.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "service_not_found",
            match service {
                Some(name) => format!("This stack runs no service named `{name}`."),
                None => "No service of this stack is running.".to_string(),
            },
        )
        .with("services", known)
        .action(
            "Use a service name from the stack's manifest (GET /api/v1/stacks/<slug> lists them).",
        ));
    }
    Ok(chosen)
}

fn invalid_manifest(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_manifest", message)
        .action("Fix instant.yaml (services.<name>.{build, port, expose, needs, env}) and retry.")
}

/// Whether `presented` (a bearer) may read or delete `stack`.
async fn may_act_on(app: &App, stack: &StackRow, presented: &str, headers: &HeaderMap) -> bool {
    match stack.fingerprint.strip_prefix("team:") {
        Some(team) => super::auth::account(app, headers)
            .await
            .is_ok_and(|account| account.team_id.to_string() == team),
        None => {
            // Digests are compared: timing reveals nothing about the token itself.
            let by_secret =
                stack.secret_hash.as_deref() == Some(super::auth::hash(presented).as_slice());
            by_secret
                || stack
                    .made_with
                    .is_some_and(|made| app.tokens.resource_proven_by(presented) == Some(made))
        }
    }
}
