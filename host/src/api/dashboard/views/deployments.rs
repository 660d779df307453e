//! The team's deployments: standalone apps, then stacks with their services.

use maud::{Markup, html};

use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use super::scripts;
use crate::api::schema::Deployment;
use crate::store::{Account, StackRow};

/// A stack and its services.
pub struct StackShown<'a> {
    pub stack: &'a StackRow,
    pub services: Vec<&'a Deployment>,
}

pub fn page(
    account: &Account,
    public_url: &str,
    apps: &[&Deployment],
    stacks: &[StackShown],
) -> Markup {
    layout::signed_in(
        account,
        Section::Deployments,
        "Deployments",
        html! {
            h1 { "Deployments" }
            h2 { "Apps" }
            @if apps.is_empty() {
                (parts::empty("No apps yet.", html! {
                    "A tarball with a Dockerfile becomes a live URL: ask your agent to send it to "
                    code { "POST /deploy/new" } "."
                }))
            } @else {
                (parts::table_wrap("Apps", table("apps", apps)))
            }
            h2 { "Stacks" }
            @if stacks.is_empty() {
                p.muted { "No stacks. A stack runs several services from one instant.yaml on a private network." }
            } @else {
                @for shown in stacks {
                    div.card.stack data-stack=(shown.stack.slug) {
                        h3 {
                            a href={ "/dashboard/stacks/" (shown.stack.slug) } { (shown.stack.name) }
                            " " span.muted { (shown.stack.slug) }
                        }
                        (parts::table_wrap(&format!("Services of {}", shown.stack.name), table("services", &shown.services)))
                    }
                }
            }
            (prompt::cards(public_url, &[
                Prompt::new("Deploy an app from a tarball", "POST", "/deploy/new")
                    .multipart("the fields name and tarball (a .tar.gz with a Dockerfile)"),
                Prompt::new("Start a stack", "POST", "/stacks/new")
                    .multipart("the field manifest (instant.yaml) and one tarball per service"),
            ]))
            (scripts::COUNTDOWN)
        },
    )
}

fn table(id: &str, apps: &[&Deployment]) -> Markup {
    html! {
        table id=(id) {
            thead { tr { th { "name" } th { "status" } th { "URL" } th { "generation" } th { "expires in" } } }
            tbody {
                @for app in apps {
                    tr data-deployment=(app.id) {
                        td { a href={ "/dashboard/deployments/" (app.id) } { (app.service.as_deref().unwrap_or(&app.name)) } }
                        td { (parts::pill(app.status.as_str(), app.status.as_str())) }
                        td {
                            @match &app.url {
                                Some(url) => a href=(url) { (url) },
                                None => span.muted { "internal" },
                            }
                        }
                        td { (app.generation) }
                        td { (parts::expires(app.expires_at.as_ref())) }
                    }
                }
            }
        }
    }
}
