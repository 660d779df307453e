//! Changing a running app's env: `PATCH /deploy/{id}/env` and `PATCH /stacks/{slug}/env`.
//!
//! The body's variables are merged into each app's env (an empty value removes one), and
//! every app whose env changed is rebuilt with it; the running version serves until the new
//! one is healthy. Apps whose env did not change keep running untouched.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::deploy::{find_row, parse_env_vars, start_redeploy};
use super::error::ApiError;
use super::json::JsonObject;
use super::resources::parse_token;
use super::schema::{EnvUpdate, EnvUpdated, True};
use crate::app::SharedApp;
use crate::deploy::rollout::{open_env, seal_env};
use crate::store::DeploymentRow;

/// The largest env an app may hold after a merge, as JSON.
const MAX_MERGED_ENV: usize = 64 * 1024;

/// `PATCH /deploy/{id}/env`.
#[utoipa::path(patch, path = "/deploy/{id}/env", tag = "deploys", operation_id = "updateDeploymentEnv",
    summary = "Merge env vars into an app and rebuild it",
    description = "`env_vars` (or `env`): names to values; an empty value removes the variable. At most 64 KiB after the merge (413 env_too_large). The app rebuilds with the new env when it changed.",
    request_body = EnvUpdate,
    responses((status = 200, description = "The env after the merge (values hidden).", body = EnvUpdated)))]
pub async fn deployment(
    State(app): State<SharedApp>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<EnvUpdated>, ApiError> {
    let changes = changes(&body)?;
    let row = find_row(&app, parse_token(&id)?).await?;
    let id = row.token.to_string();
    apply(&app, id, vec![("app".into(), row)], &changes).await
}

/// `PATCH /stacks/{slug}/env`.
#[utoipa::path(patch, path = "/stacks/{slug}/env", tag = "stacks", operation_id = "updateStackEnv",
    summary = "Merge env vars into every service of a stack",
    description = "The same body and limits as an app's env update, applied to each service; the services whose env changed rebuild, one after another becoming healthy while the old version serves.",
    security(("bearer" = [])),
    request_body = EnvUpdate,
    responses((status = 200, description = "Each service's env after the merge (values hidden).", body = EnvUpdated)))]
pub async fn stack(
    State(app): State<SharedApp>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Json<EnvUpdated>, ApiError> {
    let changes = changes(&body)?;
    let (stack, services) = super::stacks::find(&app, &slug, &headers).await?;
    let live = services
        .into_iter()
        .filter(|row| row.resource_status.is_live())
        .map(|row| (row.service.clone().unwrap_or_default(), row))
        .collect();
    apply(&app, stack.slug, live, &changes).await
}

/// Merges `changes` into each app's env and rebuilds the apps it changed.
async fn apply(
    app: &SharedApp,
    id: String,
    apps: Vec<(String, DeploymentRow)>,
    changes: &BTreeMap<String, String>,
) -> Result<Json<EnvUpdated>, ApiError> {
    // Every env is merged and checked before any app is rebuilt.
    let mut merged = Vec::new();
    for (name, row) in apps {
        super::vault::check_references(app, row.team_id, &row.env, changes).await?;
        let current =
            open_env(app, row.resource_id, &row.sealed_env).map_err(ApiError::internal)?;
        let next = merge(&current, changes);
        if serde_json::to_vec(&next).map_or(0, |json| json.len()) > MAX_MERGED_ENV {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "env_too_large",
                format!("After the merge, the env of `{name}` would be larger than 64 KiB."),
            )
            .action("Remove variables (set them to \"\") or keep large values elsewhere, e.g. in a storage object, and retry."));
        }
        merged.push((name, row, current, next));
    }
    let mut env = BTreeMap::new();
    let mut redeploying = Vec::new();
    for (name, row, current, next) in merged {
        if next != current {
            let sealed = seal_env(app, row.resource_id, &next).map_err(ApiError::internal)?;
            start_redeploy(app, row, None, Some(sealed.as_slice())).await?;
            redeploying.push(name.clone());
        }
        env.insert(name, super::stacks::redacted(next));
    }
    let message = if redeploying.is_empty() {
        "Nothing changed; nothing was rebuilt.".to_string()
    } else {
        format!(
            "Rebuilding {} with the new env; the running version serves until the new one is healthy.",
            redeploying.join(", ")
        )
    };
    Ok(Json(EnvUpdated {
        ok: True,
        id,
        env,
        redeploying,
        message,
    }))
}

/// `current` with `changes` applied: an empty value removes the variable.
fn merge(
    current: &BTreeMap<String, String>,
    changes: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut next = current.clone();
    for (name, value) in changes {
        if value.is_empty() {
            next.remove(name);
        } else {
            next.insert(name.clone(), value.clone());
        }
    }
    next
}

/// The body's `env_vars` (or `env`), checked like a deploy's `env_vars`.
fn changes(body: &Map<String, Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let object = body
        .get("env_vars")
        .or_else(|| body.get("env"))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_env",
                "The body needs `env_vars`: an object of names to values.",
            )
            .action("Retry with a body like {\"env_vars\": {\"LOG_LEVEL\": \"debug\", \"OLD_FLAG\": \"\"}}; an empty value removes a variable.")
        })?;
    parse_env_vars(Some(&object.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_removes_and_others_set() {
        let current =
            BTreeMap::from([("A".to_string(), "1".to_string()), ("B".into(), "2".into())]);
        let changes = BTreeMap::from([("A".to_string(), String::new()), ("C".into(), "3".into())]);
        let next = merge(&current, &changes);
        assert_eq!(
            next,
            BTreeMap::from([("B".to_string(), "2".to_string()), ("C".into(), "3".into())])
        );
    }
}
