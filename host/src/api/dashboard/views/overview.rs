//! The team's resources: kind, name, status, usage and time left, one row each.

use maud::{Markup, html};

use super::parts;
use super::{layout, scripts};
use crate::api::schema::Resource;
use crate::store::Account;

/// `items` as `resources::describe` gives them; `app_kinds`: the kinds whose resources are
/// apps, linked to their deployment page.
pub fn page(account: &Account, items: &[Resource], app_kinds: &[String]) -> Markup {
    layout::page(
        "Resources",
        html! {
            h1 { "Resources of " (account.team_name) }
            div.muted {
                "Signed in as " (account.email) " · tier " (account.tier) " "
                form.inline method="post" action="/dashboard/logout" { button { "Sign out" } }
            }
            @if items.is_empty() {
                p { "No resources yet. Create one with " code { "POST /db/new" } " and your API key." }
            } @else {
                table {
                    thead {
                        tr { th { "kind" } th { "name" } th { "status" } th { "usage" } th { "expires in" } }
                    }
                    tbody {
                        @for item in items { (row(item, app_kinds)) }
                    }
                }
            }
            (scripts::COUNTDOWN)
        },
    )
}

fn row(item: &Resource, app_kinds: &[String]) -> Markup {
    let token = item.token;
    let is_app = app_kinds.contains(&item.kind);
    let pages = if is_app { "deployments" } else { "resources" };
    html! {
        tr data-token=(token) {
            td { (item.kind) }
            td { a href={ "/dashboard/" (pages) "/" (token) } { (item.name) } }
            td.status { (item.status) }
            td { (parts::usage_bar(item)) }
            td { (parts::expires(item.expires_at.as_ref())) }
        }
    }
}
