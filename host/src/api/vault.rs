//! `/api/v1/vault`: a team's secrets by env and name. Every write is a new version; values
//! are sealed like credentials and every read is recorded. Apps refer to entries as
//! `vault://KEY` in their env (see [`crate::vault`]), resolved only when they roll out.

use axum::Json;
use axum::extract::{Path, State};

use super::query::Query;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::error::ApiError;
use super::json::JsonObject;
use super::schema::{True, VaultNames, VaultSecret, VaultValue, VaultWritten};
use crate::app::{App, SharedApp};
use crate::store::{Account, VaultEvent, VaultKey, VaultWrite};
use crate::tenancy::names::EnvName;

/// The largest secret.
const MAX_VALUE: usize = 32 * 1024;

/// `?version=N`: one version; the newest when absent.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VersionQuery {
    pub version: Option<i32>,
}

/// `PUT /api/v1/vault/{env}/{key}`.
#[utoipa::path(put, path = "/api/v1/vault/{env}/{key}", tag = "vault", operation_id = "putVaultSecret",
    summary = "Store a secret as its next version",
    description = "For a team (session or API key) on a tier with a vault: 402 vault_not_available, vault_env_not_allowed or vault_quota_exceeded beyond it.",
    security(("bearer" = [])),
    request_body = VaultValue,
    responses((status = 201, description = "Stored.", body = VaultWritten)))]
pub async fn put(
    State(app): State<SharedApp>,
    Path((env, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<VaultWritten>), ApiError> {
    let written = write(&app, &headers, &env, &key, &body, false).await?;
    Ok((StatusCode::CREATED, Json(written)))
}

/// `POST /api/v1/vault/{env}/{key}/rotate`.
#[utoipa::path(post, path = "/api/v1/vault/{env}/{key}/rotate", tag = "vault", operation_id = "rotateVaultSecret",
    summary = "Replace an existing secret with a new version",
    description = "As PUT, for a name that holds a value (404 vault_key_not_found otherwise). Apps using it read the new value on their next rollout.",
    security(("bearer" = [])),
    request_body = VaultValue,
    responses((status = 200, description = "Stored.", body = VaultWritten)))]
pub async fn rotate(
    State(app): State<SharedApp>,
    Path((env, key)): Path<(String, String)>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Json<VaultWritten>, ApiError> {
    Ok(Json(write(&app, &headers, &env, &key, &body, true).await?))
}

/// `GET /api/v1/vault/{env}/{key}`.
#[utoipa::path(get, path = "/api/v1/vault/{env}/{key}", tag = "vault", operation_id = "getVaultSecret",
    summary = "A secret's value (recorded)",
    security(("bearer" = [])),
    params(VersionQuery),
    responses((status = 200, description = "The value.", body = VaultSecret)))]
pub async fn get(
    State(app): State<SharedApp>,
    Path((env, key)): Path<(String, String)>,
    Query(query): Query<VersionQuery>,
    headers: HeaderMap,
) -> Result<Json<VaultSecret>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    read_secret(&app, &account, &env, &key, query.version)
        .await
        .map(Json)
}

/// A secret's value, the read recorded (the API and the dashboard both use this).
pub(super) async fn read_secret(
    app: &App,
    account: &Account,
    env: &str,
    key: &str,
    version: Option<i32>,
) -> Result<VaultSecret, ApiError> {
    let (env, key) = (env_name(env)?, key_name(key)?);
    let entry = VaultKey {
        team_id: account.team_id,
        env: env.as_str(),
        key: &key,
    };
    let (version, sealed) = app
        .store
        .read_vault(entry, version)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(entry))?;
    let value = crate::vault::open(app, entry, &sealed).map_err(ApiError::internal)?;
    record(app, account, entry, Some(version), "read").await?;
    Ok(VaultSecret {
        ok: True,
        env: env.as_str().to_string(),
        key,
        value,
        version,
    })
}

/// `GET /api/v1/vault/{env}`.
#[utoipa::path(get, path = "/api/v1/vault/{env}", tag = "vault", operation_id = "listVaultNames",
    summary = "The names in one env of the vault",
    security(("bearer" = [])),
    responses((status = 200, description = "Names only, sorted.", body = VaultNames)))]
pub async fn list(
    State(app): State<SharedApp>,
    Path(env): Path<String>,
    headers: HeaderMap,
) -> Result<Json<VaultNames>, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let env = env_name(&env)?;
    let keys = app
        .store
        .vault_names(account.team_id, env.as_str())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(VaultNames {
        ok: True,
        env: env.as_str().to_string(),
        keys,
    }))
}

/// `DELETE /api/v1/vault/{env}/{key}`: every version.
#[utoipa::path(delete, path = "/api/v1/vault/{env}/{key}", tag = "vault", operation_id = "deleteVaultSecret",
    summary = "Remove a secret and all its versions",
    security(("bearer" = [])),
    responses((status = 204, description = "Removed.")))]
pub async fn delete(
    State(app): State<SharedApp>,
    Path((env, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let account = super::auth::account(&app, &headers).await?;
    let (env, key) = (env_name(&env)?, key_name(&key)?);
    let entry = VaultKey {
        team_id: account.team_id,
        env: env.as_str(),
        key: &key,
    };
    if !app
        .store
        .delete_vault(entry)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(not_found(entry));
    }
    record(&app, &account, entry, None, "delete").await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A write (`existing_only`: a rotation) within the tier's vault.
async fn write(
    app: &App,
    headers: &HeaderMap,
    env: &str,
    key: &str,
    body: &serde_json::Map<String, serde_json::Value>,
    existing_only: bool,
) -> Result<VaultWritten, ApiError> {
    let account = super::auth::account(app, headers).await?;
    let (env, key) = (env_name(env)?, key_name(key)?);
    let value = value_field(body)?;
    let tier = app.plans.tier(&account.tier).ok_or_else(|| {
        ApiError::internal(format!("tier `{}` is not in the plans", account.tier))
    })?;
    if tier.vault_max_entries <= 0 {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "vault_not_available",
            format!("The {} tier has no vault.", tier.display_name),
        )
        .action(
            "Tell the user the vault comes with paid tiers; until then pass secrets in env_vars.",
        ));
    }
    if !tier.vault_env_allowed(env.as_str()) {
        return Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "vault_env_not_allowed",
            format!("The {} tier's vault holds only the envs {}.", tier.display_name, tier.vault_envs.join(", ")),
        )
        .with("allowed_envs", tier.vault_envs.clone())
        .action("Store the secret in an allowed env (e.g. production), or tell the user more envs come with the Pro tier."));
    }
    let entry = VaultKey {
        team_id: account.team_id,
        env: env.as_str(),
        key: &key,
    };
    let sealed = crate::vault::seal(app, entry, value).map_err(ApiError::internal)?;
    let written = app
        .store
        .write_vault(
            entry,
            &sealed,
            tier.vault_max_entries,
            existing_only,
            app.clock.now(),
        )
        .await
        .map_err(ApiError::internal)?;
    let version = match written {
        VaultWrite::Stored(version) => version,
        VaultWrite::Missing => return Err(not_found(entry)),
        VaultWrite::Full(limit) => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "vault_quota_exceeded",
                format!("The vault holds at most {limit} names on the {} tier.", tier.display_name),
            )
            .with("limit", limit)
            .action("Delete a secret you no longer need (DELETE /api/v1/vault/<env>/<key>), or tell the user to upgrade for more."));
        }
    };
    record(app, &account, entry, Some(version), "write").await?;
    Ok(VaultWritten {
        ok: True,
        env: env.as_str().to_string(),
        key,
        version,
    })
}

/// Records a read or write before its answer leaves: no secret is shown unrecorded.
async fn record(
    app: &App,
    account: &Account,
    entry: VaultKey<'_>,
    version: Option<i32>,
    action: &str,
) -> Result<(), ApiError> {
    let request_id = super::request_id::current();
    let event = VaultEvent {
        entry,
        version,
        actor: &account.email,
        action,
        request_id: &request_id,
        at: app.clock.now(),
    };
    app.store
        .record_vault_event(&event)
        .await
        .map_err(ApiError::internal)
}

fn env_name(env: &str) -> Result<EnvName, ApiError> {
    EnvName::parse(env).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_env",
            "An env is 1-32 lowercase letters, digits or '-'.",
        )
        .action("Use an env such as production or staging.")
    })
}

fn key_name(key: &str) -> Result<String, ApiError> {
    if crate::vault::valid_key(key) {
        return Ok(key.to_string());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_vault_key",
        "A vault key is an env var name: letters, digits and '_', not starting with a digit, up to 128.",
    )
    .action("Retry with a name such as STRIPE_SECRET_KEY."))
}

fn value_field(body: &serde_json::Map<String, serde_json::Value>) -> Result<&str, ApiError> {
    body.get("value")
        .and_then(serde_json::Value::as_str)
        .filter(|value| !value.is_empty() && value.len() <= MAX_VALUE)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_value",
                format!(
                    "`value` must be a non-empty string of at most {} KiB.",
                    MAX_VALUE / 1024
                ),
            )
            .action("Retry with a body like {\"value\": \"sk_live_...\"}.")
        })
}

fn not_found(entry: VaultKey<'_>) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "vault_key_not_found",
        format!("The vault holds no `{}` in env `{}`.", entry.key, entry.env),
    )
    .action("List the env's names (GET /api/v1/vault/<env>) or store it first (PUT /api/v1/vault/<env>/<key>).")
}

/// Refuses `vault://` values an app could not resolve, before anything is built: anonymous
/// apps have no vault (403 `vault_requires_auth`), and each entry named must exist (400
/// `vault_ref_failed`). The values stay references; they are read at each rollout.
pub(super) async fn check_references(
    app: &App,
    team_id: Option<uuid::Uuid>,
    app_env: &str,
    env_vars: &std::collections::BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let failed = |detail: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "vault_ref_failed", detail)
            .action("Store the secret first (PUT /api/v1/vault/<env>/<key>) or fix the reference (vault://KEY for the app's env, vault://<env>/KEY for another), then retry.")
    };
    let references = crate::vault::references(env_vars, app_env).map_err(failed)?;
    if references.is_empty() {
        return Ok(());
    }
    let Some(team_id) = team_id else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "vault_requires_auth",
            "vault:// references need a team's vault; anonymous apps have none.",
        )
        .action("Deploy with a team's API key (claim an account first), or pass the value itself in env_vars."));
    };
    for reference in references {
        let entry = VaultKey {
            team_id,
            env: &reference.env,
            key: &reference.key,
        };
        let found = app
            .store
            .read_vault(entry, None)
            .await
            .map_err(ApiError::internal)?;
        if found.is_none() {
            return Err(failed(format!("{reference} is not in the team's vault.")));
        }
    }
    Ok(())
}
