//! One resource's page: what it is, how full it is, when it ends, its credentials once
//! revealed or rotated, and who has seen them.

use maud::{Markup, html};

use super::super::guard;
use super::chart::{self, Measure};
use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use super::scripts;
use crate::api::schema::{Resource as Described, ResourceCredentials};
use crate::store::{Account, CredentialEvent, ResourceStatus, UsagePoint};

/// What the page shows of one resource.
pub struct Resource<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    /// As `resources::describe` gives it.
    pub item: &'a Described,
    /// Whether its kind can issue new credentials.
    pub rotatable: bool,
    /// The credentials just revealed or rotated, shown once.
    pub credentials: Option<&'a ResourceCredentials>,
    /// The latest reveals and rotations, newest first.
    pub events: &'a [CredentialEvent],
    /// Its usage over the last week.
    pub usage: &'a [UsagePoint],
}

/// `form_token`: the session's token, carried by the reveal and rotate forms.
pub fn page(resource: &Resource, form_token: &str) -> Markup {
    let item = resource.item;
    let token = item.token.to_string();
    let token = token.as_str();
    let rotatable = resource.rotatable && item.status == ResourceStatus::Active;
    layout::signed_in(
        resource.account,
        Section::Resources,
        &item.name,
        html! {
            p { a href="/dashboard/resources" { "← Resources" } }
            h1 { (item.name) " " span.muted { (item.kind) } }
            dl {
                dt { "token" } dd { code { (token) } }
                dt { "status" } dd.status { (parts::pill(item.status.as_str(), item.status.as_str())) }
                dt { "environment" } dd { (item.env) }
                dt { "tier" } dd { (item.tier) }
                dt { "usage" } dd { (parts::usage_bar(item)) }
                dt { "limits" } dd { (limits(item)) }
                dt { "created" } dd { (parts::when(&item.created_at)) }
                dt { "expires in" } dd { (parts::expires(item.expires_at.as_ref())) }
            }
            h2 { "Usage over time" }
            div.charts {
                (chart::card(Measure::Storage, resource.usage))
                (chart::card(Measure::Connections, resource.usage))
            }
            h2 { "Credentials" }
            @match resource.credentials {
                Some(credentials) => (shown_credentials(credentials)),
                None => {
                    (action(token, "reveal", form_token, "Reveal credentials"))
                    p.muted { "Every reveal is recorded below with your name." }
                }
            }
            @if rotatable {
                (action(token, "rotate", form_token, "Rotate credentials"))
                p.muted { "Rotating issues new credentials; the old ones stop working where the backend allows it." }
            }
            h2 { "Credential history" }
            (history(resource.events))
            h2 { "Delete" }
            (delete_form(&format!("/dashboard/resources/{token}/delete"), &item.name, form_token))
            (prompt::cards(resource.public_url, &[
                Prompt::new("Give my agent its credentials", "GET", format!("/api/v1/resources/{token}/credentials")),
                Prompt::new("Use it in a new app", "POST", "/deploy/new").multipart(&format!(
                    "a name, the tarball, and env_vars naming this {}'s internal_url (from GET /api/v1/resources/{token}/credentials)",
                    item.kind
                )),
            ]))
            (scripts::COUNTDOWN)
        },
    )
}

/// A delete that asks the person to type the name first, so one stray click or key
/// press cannot delete anything.
pub fn delete_form(action: &str, name: &str, form_token: &str) -> Markup {
    html! {
        form.row #delete method="post" action=(action) {
            input type="hidden" name=(guard::FIELD) value=(form_token);
            div {
                label for="confirm-name" { "Type " code { (name) } " to delete it and everything in it" }
                input #confirm-name name="confirm" required autocomplete="off";
            }
            button.danger #delete-button type="submit" { "Delete" }
        }
    }
}

/// A form posting to `/dashboard/resources/{token}/{action}`; its button has the id
/// `action` (the browser tests press it).
fn action(token: &str, action: &str, form_token: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/dashboard/resources/" (token) "/" (action) } {
            input type="hidden" name=(guard::FIELD) value=(form_token);
            button id=(action) { (label) }
        }
    }
}

/// `limit value, limit value`, as the described resource lists them.
fn limits(item: &Described) -> String {
    item.limits
        .iter()
        .map(|(name, value)| format!("{name} {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shown_credentials(credentials: &ResourceCredentials) -> Markup {
    let notice = if credentials.rotated == Some(true) {
        "New credentials issued; the old ones no longer work where the backend allows it."
    } else {
        "Shown once on this page; the reveal was recorded."
    };
    html! {
        p.notice #credentials-notice { (notice) }
        dl #credentials {
            @for (label, value) in credential_fields(credentials) {
                dt { (label) } dd { code.secret { (value) } }
            }
        }
    }
}

/// The URLs first, then the kind's own fields.
fn credential_fields(credentials: &ResourceCredentials) -> Vec<(&str, &str)> {
    let urls = [
        ("connection URL", Some(credentials.connection_url.as_str())),
        ("internal URL", credentials.internal_url.as_deref()),
    ];
    let fields = credentials
        .fields
        .iter()
        .map(|(name, value)| (name.as_str(), Some(value.as_str())));
    urls.into_iter()
        .chain(fields)
        .filter_map(|(label, value)| Some((label, value?)))
        .collect()
}

fn history(events: &[CredentialEvent]) -> Markup {
    html! {
        @if events.is_empty() {
            p.muted #history { "Nobody has revealed or rotated these credentials since they were created." }
        } @else {
            (parts::table_wrap("Credential history", html! { table #history {
                thead { tr { th { "when" } th { "what" } th { "who" } th { "through" } } }
                tbody {
                    @for event in events {
                        tr {
                            td { (parts::when(&event.at)) }
                            td { (event.action) }
                            td { (event.actor) }
                            td { (event.via) }
                        }
                    }
                }
            } }))
        }
    }
}
