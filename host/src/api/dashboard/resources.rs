//! The team's resources as a list, filtered by kind and env (apps have their own list).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::views::resources::ResourceList;
use super::{signed_in_page, views};
use crate::api::error::ApiError;
use crate::api::query::Query;
use crate::api::resources::describe;
use crate::api::schema::Resource;
use crate::app::SharedApp;

/// The list's filters; empty means any.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filters {
    /// Only this kind (`db`, `cache`, ...).
    pub kind: Option<String>,
    /// Only this env (`development`, `production`, ...).
    pub env: Option<String>,
}

#[utoipa::path(get, path = "/dashboard/resources", tag = "dashboard",
    operation_id = "dashboardResources",
    summary = "The team's resources, filtered by kind and env",
    params(Filters),
    responses(
        (status = 200, description = "An HTML page.", body = String, content_type = "text/html"),
        (status = 303, description = "No session: to the sign-in form."),
    ))]
pub async fn list(
    State(app): State<SharedApp>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Response {
    signed_in_page(&app, &headers, async |session| {
        let account = &session.account;
        let rows = app
            .store
            .team_resources(account.team_id)
            .await
            .map_err(ApiError::internal)?;
        // Apps are listed on the deployments page.
        let app_kinds = super::app_kinds(&app);
        let all: Vec<Resource> = rows
            .iter()
            .filter(|row| !app_kinds.contains(&row.kind))
            .map(describe)
            .collect();
        let (kind, env) = (chosen(&filters.kind), chosen(&filters.env));
        let items: Vec<&Resource> = all
            .iter()
            .filter(|i| kind.is_none_or(|k| i.kind == k) && env.is_none_or(|e| i.env == e))
            .collect();
        let distinct = |pick: fn(&Resource) -> &String| {
            let mut values: Vec<String> = all.iter().map(|i| pick(i).clone()).collect();
            values.sort();
            values.dedup();
            values
        };
        let list = ResourceList {
            account,
            public_url: &app.public_url,
            items: &items,
            kinds: &distinct(|i| &i.kind),
            envs: &distinct(|i| &i.env),
            kind,
            env,
        };
        Ok(views::resources::page(&list))
    })
    .await
}

/// A filter's value, when one was chosen.
fn chosen(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}
