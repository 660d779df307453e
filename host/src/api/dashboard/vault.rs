//! The team's vault in the dashboard: names by env, and a value on request (recorded like
//! an API read).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::views::vault::Vault;
use super::{Session, html, signed_in_form, signed_in_page, views};
use crate::api::error::ApiError;
use crate::api::json::RawBody;
use crate::api::query::Query;
use crate::api::schema::{CsrfForm, VaultSecret};
use crate::app::{App, SharedApp};

/// The env shown when none is chosen and the vault is empty.
const DEFAULT_ENV: &str = "production";

/// Which env's tab is open.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvTab {
    /// `production`, `staging`, ...; the first env with entries when absent.
    pub env: Option<String>,
}

#[utoipa::path(get, path = "/dashboard/vault", tag = "dashboard",
    operation_id = "dashboardVault",
    summary = "The team's vault: names by env, values on request",
    params(EnvTab),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn show(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Query(tab): Query<EnvTab>,
) -> Response {
    signed_in_page(&app, &headers, async |session| {
        render(&app, session, tab.env.as_deref(), None).await
    })
    .await
}

#[utoipa::path(post, path = "/dashboard/vault/{env}/{key}/reveal", tag = "dashboard",
    operation_id = "dashboardRevealVaultSecret",
    summary = "Show a secret's value (recorded in the vault's trail)",
    request_body(content = CsrfForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = "4XX", description = "A refusal, as an HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn reveal(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Path((env, key)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> Response {
    signed_in_form(&app, &headers, &body, async |session, _| {
        let secret =
            crate::api::vault::read_secret(&app, &session.account, &env, &key, None).await?;
        render(&app, session, Some(&env), Some(&secret))
            .await
            .map(html)
    })
    .await
}

async fn render(
    app: &App,
    session: &Session,
    env: Option<&str>,
    revealed: Option<&VaultSecret>,
) -> Result<maud::Markup, ApiError> {
    let team = session.account.team_id;
    let mut envs = app
        .store
        .vault_envs(team)
        .await
        .map_err(ApiError::internal)?;
    let env = env
        .filter(|e| crate::tenancy::names::EnvName::parse(e).is_some())
        .map(str::to_string)
        .or_else(|| envs.first().map(|(name, _)| name.clone()))
        .unwrap_or_else(|| DEFAULT_ENV.to_string());
    if !envs.iter().any(|(name, _)| *name == env) {
        envs.push((env.clone(), 0));
        envs.sort();
    }
    let keys = app
        .store
        .vault_names(team, &env)
        .await
        .map_err(ApiError::internal)?;
    let max_entries = app
        .plans
        .tier(&session.account.tier)
        .map_or(0, |t| t.vault_max_entries);
    let vault = Vault {
        account: &session.account,
        public_url: &app.public_url,
        envs: &envs,
        env: &env,
        keys: &keys,
        revealed,
        max_entries,
        form_token: &session.form_token,
    };
    Ok(views::vault::page(&vault))
}
