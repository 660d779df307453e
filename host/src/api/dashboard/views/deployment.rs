//! One deployment's page. Anyone holding its id sees its status and live log
//! (`scripts::DEPLOYMENT` fills them in); a member of its team also sees its settings,
//! env var names, bound resources and domains, and can redeploy or delete it.

use maud::{Markup, html};

use super::super::guard;
use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use super::resource::delete_form;
use super::scripts;
use crate::api::schema::{CustomDomainItem, Deployment};
use crate::store::Account;

/// What a member of the app's team sees beyond the log.
pub struct Owned<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    pub item: &'a Deployment,
    /// Env var names, sorted, each with the kind of resource its value points at, if any.
    pub env: &'a [(String, Option<&'static str>)],
    pub domains: &'a [CustomDomainItem],
    /// The stack it is a service of: slug and name.
    pub stack: Option<(&'a str, &'a str)>,
    pub form_token: &'a str,
    /// What the last action did, to say at the top.
    pub notice: Option<&'a str>,
}

/// The page for someone holding only the id.
pub fn page(id: &str) -> Markup {
    layout::page(
        "Deployment",
        html! {
            h1 { "Deployment " code { (id) } }
            p { "Status: " span #status .status { "loading" } " · " a #url href="#" { "its URL" } }
            (live(id))
        },
    )
}

/// The status line's autopsy box and the live log.
fn live(id: &str) -> Markup {
    html! {
        div #autopsy {}
        h2 { "Log" }
        pre #log data-deployment=(id) tabindex="0" aria-label="Build and app log" {}
        (scripts::DEPLOYMENT)
    }
}

pub fn owned_page(owned: &Owned) -> Markup {
    let item = owned.item;
    let id = item.id.to_string();
    let name = item.service.as_deref().unwrap_or(&item.name);
    layout::signed_in(
        owned.account,
        Section::Deployments,
        name,
        html! {
            p { a href="/dashboard/deployments" { "← Deployments" } }
            h1 { (name) " " span.muted { "app" } }
            @if let Some(notice) = owned.notice { p.notice #notice role="status" { (notice) } }
            dl {
                dt { "status" } dd { span #status .status { (item.status.as_str()) } }
                dt { "URL" } dd {
                    @match &item.url {
                        Some(url) => a #url href=(url) { (url) },
                        None => span.muted #url { "internal to its stack" },
                    }
                }
                dt { "id" } dd { code { (id) } }
                dt { "generation" } dd #generation { (item.generation) }
                @if let Some((slug, stack)) = owned.stack {
                    dt { "stack" } dd { a href={ "/dashboard/stacks/" (slug) } { (stack) } }
                }
                @if let Some(image) = &item.image { dt { "image" } dd { code { (image) } } }
                dt { "tier" } dd { (item.tier) }
                dt { "reachable by" } dd {
                    @if item.private { "only " (item.allowed_ips.join(", ")) } @else { "everyone" }
                }
                dt { "created" } dd { (parts::when(&item.created_at)) }
                dt { "expires in" } dd { (parts::expires(item.expires_at.as_ref())) }
            }
            (live(&id))
            h2 { "Env vars" }
            @if owned.env.is_empty() {
                p.muted { "No env vars." }
            } @else {
                p.muted { "Values are never shown here: they hold credentials." }
                (parts::table_wrap("Env vars", html! {
                    table #env {
                        thead { tr { th { "name" } th { "bound resource" } } }
                        tbody {
                            @for (name, kind) in owned.env {
                                tr { td { code { (name) } } td { @match kind { Some(kind) => (parts::pill(kind, "")), None => span.muted { "-" } } } }
                            }
                        }
                    }
                }))
            }
            h2 { "Custom domains" }
            @if owned.domains.is_empty() {
                p.muted { "None. Paid tiers can serve the app under their own domain, with a certificate." }
            } @else {
                (parts::table_wrap("Custom domains", html! {
                    table #domains {
                        thead { tr { th { "domain" } th { "status" } th { "certificate" } } }
                        tbody {
                            @for domain in owned.domains {
                                tr { td { (domain.domain) } td { (parts::pill(&domain.status, "")) } td { (domain.tls_status) } }
                            }
                        }
                    }
                }))
            }
            h2 { "Redeploy" }
            form.inline method="post" action={ "/dashboard/deployments/" (id) "/redeploy" } {
                input type="hidden" name=(guard::FIELD) value=(owned.form_token);
                button #redeploy type="submit" { "Rebuild the last upload" }
            }
            h2 { "Delete" }
            (delete_form(&format!("/dashboard/deployments/{id}/delete"), name, owned.form_token))
            (prompt::cards(owned.public_url, &prompts(&id, item)))
        },
    )
}

fn prompts(id: &str, item: &Deployment) -> Vec<Prompt> {
    vec![
        Prompt::new("Ship new code", "POST", "/deploy/new").multipart(&format!(
            "name={} and redeploy=true and the new tarball",
            item.name
        )),
        Prompt::new(
            "Set or remove env vars",
            "PATCH",
            format!("/deploy/{id}/env"),
        )
        .body(serde_json::json!({ "env_vars": { "NAME": "value" } })),
        Prompt::new(
            "Keep it for 48 more hours",
            "POST",
            format!("/api/v1/deployments/{id}/ttl"),
        )
        .body(serde_json::json!({ "hours": 48 })),
        Prompt::new(
            "Make it permanent",
            "POST",
            format!("/api/v1/deployments/{id}/make-permanent"),
        ),
        Prompt::new(
            "Serve it on my domain",
            "POST",
            format!("/api/v1/deployments/{id}/domains"),
        )
        .body(serde_json::json!({ "domain": "app.example.com" })),
        Prompt::new("Let only my office reach it", "POST", "/deploy/new").multipart(&format!(
            "name={}, redeploy=true, private=true, allowed_ips=203.0.113.0/24 and the tarball",
            item.name
        )),
    ]
}
