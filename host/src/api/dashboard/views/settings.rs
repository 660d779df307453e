//! Settings: the team's API keys. A new key is shown once, with a copy button; listed keys
//! show only their first characters.

use maud::{Markup, html};

use super::super::guard;
use super::layout::{self, Section};
use super::parts;
use super::scripts;
use crate::api::schema::ApiKeyCreated;
use crate::store::{Account, ApiKeyRow};

pub struct Settings<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    pub keys: &'a [ApiKeyRow],
    /// The key just made, shown this once.
    pub created: Option<&'a ApiKeyCreated>,
    pub notice: Option<&'a str>,
    pub form_token: &'a str,
}

pub fn page(settings: &Settings) -> Markup {
    layout::signed_in(
        settings.account,
        Section::Settings,
        "Settings",
        html! {
            h1 { "Settings" }
            @if let Some(notice) = settings.notice { p.notice #notice role="status" { (notice) } }
            h2 { "API keys" }
            p.muted { "An agent sends a key as " code { "Authorization: Bearer <key>" } " to " code { (settings.public_url) } "." }
            @if let Some(created) = settings.created {
                div.notice #new-key role="status" {
                    p { strong { "Key “" (created.name) "” created." } " Copy it now: it is not shown again." }
                    pre #new-key-value tabindex="0" aria-label="The new API key" { (created.key) }
                    button type="button" data-copy="new-key-value" { "Copy key" }
                }
                (scripts::COPY)
            }
            form.row #create-key method="post" action="/dashboard/settings/api-keys" {
                input type="hidden" name=(guard::FIELD) value=(settings.form_token);
                div {
                    label for="key-name" { "Name" }
                    input #key-name name="name" required maxlength="120" placeholder="laptop agent";
                }
                button type="submit" { "Create API key" }
            }
            @if settings.keys.is_empty() {
                (parts::empty("No API keys yet.", html! { "Create one above and give it to your agent." }))
            } @else {
                (parts::table_wrap("API keys", html! {
                    table #api-keys {
                        thead { tr { th { "name" } th { "key" } th { "created" } th { "last used" } th { "revoke" } } }
                        tbody {
                            @for key in settings.keys {
                                tr data-key-id=(key.id) {
                                    td { (key.name) }
                                    td { code { (key.prefix.as_deref().unwrap_or("ink_")) "…" } }
                                    td { (parts::when(&key.created_at)) }
                                    td { @match &key.last_used_at { Some(at) => (parts::when(at)), None => span.muted { "never" } } }
                                    td {
                                        @if key.revoked_at.is_some() {
                                            (parts::pill("revoked", "failed"))
                                        } @else {
                                            form.inline method="post" action={ "/dashboard/settings/api-keys/" (key.id) "/revoke" } {
                                                input type="hidden" name=(guard::FIELD) value=(settings.form_token);
                                                button.danger type="submit" aria-label={ "Revoke " (key.name) } { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }))
            }
        },
    )
}
