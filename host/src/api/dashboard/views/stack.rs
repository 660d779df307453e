//! One stack: its services and what can be asked of it.

use maud::{Markup, html};

use super::deployments::StackShown;
use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use super::scripts;
use crate::store::Account;

pub fn page(account: &Account, public_url: &str, shown: &StackShown) -> Markup {
    let stack = shown.stack;
    let slug = stack.slug.as_str();
    layout::signed_in(
        account,
        Section::Deployments,
        &stack.name,
        html! {
            p { a href="/dashboard/deployments" { "← Deployments" } }
            h1 { (stack.name) " " span.muted { "stack" } }
            dl {
                dt { "slug" } dd { code { (slug) } }
                dt { "created" } dd { (parts::when(&stack.created_at)) }
                dt { "expires in" } dd { (parts::expires(stack.expires_at.as_ref())) }
            }
            h2 { "Services" }
            (parts::table_wrap("Services", html! {
                table #services {
                    thead { tr { th { "service" } th { "status" } th { "URL" } th { "generation" } } }
                    tbody {
                        @for service in &shown.services {
                            tr data-deployment=(service.id) {
                                td { a href={ "/dashboard/deployments/" (service.id) } { (service.service.as_deref().unwrap_or(&service.name)) } }
                                td { (parts::pill(service.status.as_str(), service.status.as_str())) }
                                td { @match &service.url { Some(url) => a href=(url) { (url) }, None => span.muted { "internal" } } }
                                td { (service.generation) }
                            }
                        }
                    }
                }
            }))
            h2 { "Manifest" }
            pre #manifest tabindex="0" aria-label="instant.yaml" { (stack.manifest) }
            (prompt::cards(public_url, &[
                Prompt::new("Rebuild every service", "POST", format!("/stacks/{slug}/redeploy")),
                Prompt::new("Set env vars on every service", "PATCH", format!("/stacks/{slug}/env"))
                    .body(serde_json::json!({ "env_vars": { "NAME": "value" } })),
                Prompt::new("Keep it for 48 more hours", "POST", format!("/api/v1/stacks/{slug}/ttl"))
                    .body(serde_json::json!({ "hours": 48 })),
                Prompt::new("Make it permanent", "POST", format!("/api/v1/stacks/{slug}/make-permanent")),
                Prompt::new("Delete the stack", "DELETE", format!("/api/v1/stacks/{slug}")),
            ]))
            (scripts::COUNTDOWN)
        },
    )
}
