//! The team's resources: kind, env and tier, usage, time left; filtered by kind and env.

use maud::{Markup, html};

use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use super::scripts;
use crate::api::schema::Resource;
use crate::store::Account;

/// What the list shows.
pub struct ResourceList<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    /// The resources the filters let through.
    pub items: &'a [&'a Resource],
    /// Every kind and env the team has, for the filters.
    pub kinds: &'a [String],
    pub envs: &'a [String],
    /// The filters chosen.
    pub kind: Option<&'a str>,
    pub env: Option<&'a str>,
}

pub fn page(list: &ResourceList) -> Markup {
    layout::signed_in(
        list.account,
        Section::Resources,
        "Resources",
        html! {
            h1 { "Resources" }
            form.row #filters method="get" action="/dashboard/resources" {
                div {
                    label for="filter-kind" { "Kind" }
                    select #filter-kind name="kind" {
                        option value="" { "every kind" }
                        @for kind in list.kinds {
                            option value=(kind) selected[list.kind == Some(kind.as_str())] { (kind) }
                        }
                    }
                }
                div {
                    label for="filter-env" { "Env" }
                    select #filter-env name="env" {
                        option value="" { "every env" }
                        @for env in list.envs {
                            option value=(env) selected[list.env == Some(env.as_str())] { (env) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if list.items.is_empty() {
                (parts::empty("No resources match.", html! {
                    "Resources your agent makes with your API key appear here. "
                    a href="/dashboard/settings" { "Create an API key" } "."
                }))
            } @else {
                (parts::table_wrap("Resources", table(list)))
            }
            (prompt::cards(list.public_url, &[
                Prompt::new("Create a cache", "POST", "/cache/new").body(serde_json::json!({ "name": "app-cache" })),
                Prompt::new("List resources as JSON", "GET", "/api/v1/resources"),
            ]))
            (scripts::COUNTDOWN)
        },
    )
}

fn table(list: &ResourceList) -> Markup {
    html! {
        table #resources {
            thead {
                tr { th { "name" } th { "kind" } th { "env" } th { "tier" } th { "status" } th { "usage" } th { "expires in" } }
            }
            tbody {
                @for item in list.items {
                    tr data-token=(item.token) {
                        td { a href={ "/dashboard/resources/" (item.token) } { (item.name) } }
                        td { (item.kind) }
                        td { (parts::pill(&item.env, "")) }
                        td { (parts::pill(&item.tier, "")) }
                        td.status { (parts::pill(item.status.as_str(), item.status.as_str())) }
                        td { (parts::usage_bar(item)) }
                        td { (parts::expires(item.expires_at.as_ref())) }
                    }
                }
            }
        }
    }
}
