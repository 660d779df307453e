//! One resource's page: what it is, how full it is, when it ends, its credentials once
//! revealed or rotated, and who has seen them.

use maud::{Markup, html};
use serde_json::Value;

use super::super::guard;
use super::parts::{self, text};
use super::{layout, scripts};
use crate::store::CredentialEvent;

/// What the page shows of one resource.
pub struct Resource<'a> {
    /// As `resources::describe` gives it.
    pub item: &'a Value,
    /// Whether its kind can issue new credentials.
    pub rotatable: bool,
    /// The credentials just revealed or rotated, shown once.
    pub credentials: Option<&'a Value>,
    /// The latest reveals and rotations, newest first.
    pub events: &'a [CredentialEvent],
}

/// `form_token`: the session's token, carried by the reveal and rotate forms.
pub fn page(resource: &Resource, form_token: &str) -> Markup {
    let item = resource.item;
    let token = text(&item["token"]);
    let rotatable = resource.rotatable && item["status"] == "active";
    layout::page(
        "Resource",
        html! {
            p { a href="/dashboard" { "← Resources" } }
            h1 { (text(&item["name"])) " " span.muted { (text(&item["kind"])) } }
            dl {
                dt { "token" } dd { code { (token) } }
                dt { "status" } dd.status { (text(&item["status"])) }
                dt { "environment" } dd { (text(&item["env"])) }
                dt { "tier" } dd { (text(&item["tier"])) }
                dt { "usage" } dd { (parts::usage_bar(item)) }
                dt { "limits" } dd { (limits(item)) }
                dt { "created" } dd { (text(&item["created_at"])) }
                dt { "expires in" } dd { (parts::expires(item)) }
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
            (scripts::COUNTDOWN)
        },
    )
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
fn limits(item: &Value) -> String {
    item["limits"]
        .as_object()
        .map(|limits| {
            limits
                .iter()
                .map(|(name, value)| format!("{name} {value}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn shown_credentials(credentials: &Value) -> Markup {
    let notice = if credentials["rotated"] == true {
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

/// The URLs first, then the kind's own fields; only those that are strings.
fn credential_fields(credentials: &Value) -> Vec<(&str, &str)> {
    let urls = [
        ("connection URL", &credentials["connection_url"]),
        ("internal URL", &credentials["internal_url"]),
    ];
    let fields = credentials["fields"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), value));
    urls.into_iter()
        .chain(fields)
        .filter_map(|(label, value)| Some((label, value.as_str()?)))
        .collect()
}

fn history(events: &[CredentialEvent]) -> Markup {
    html! {
        @if events.is_empty() {
            p.muted #history { "Nobody has revealed or rotated these credentials since they were created." }
        } @else {
            table #history {
                thead { tr { th { "when" } th { "what" } th { "who" } th { "through" } } }
                tbody {
                    @for event in events {
                        tr {
                            td { (event.at.to_rfc3339()) }
                            td { (event.action) }
                            td { (event.actor) }
                            td { (event.via) }
                        }
                    }
                }
            }
        }
    }
}
