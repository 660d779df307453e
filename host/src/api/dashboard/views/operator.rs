//! The operator's pages: the sign-in form, and every provider with its version, kinds,
//! health and the version it replaced, with their upload, rollback and unload controls.

use maud::{Markup, html};

use super::super::guard;
use super::{layout, parts, refusal, scripts};
use crate::api::error::ApiError;
use crate::api::schema::{Provider, Providers};

/// `problem`: why the last attempt was refused.
pub fn sign_in(problem: Option<&str>) -> Markup {
    layout::page(
        "Operator sign-in",
        html! {
            h1 { "Operator sign-in" }
            @if let Some(problem) = problem {
                p.refusal { (problem) }
            }
            p {
                "Enter the host's admin token (" code { "admin_token" } " in the config, or "
                code { "INSTANODE_ADMIN_TOKEN" } "). This browser then stays signed in for 8 hours."
            }
            form method="post" action="/dashboard/operator/sign-in" {
                label for="admin-token" { "Admin token" } " "
                input #admin-token type="password" name="token" required size="40" autocomplete="off";
                " "
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `inventory`: as `admin::inventory` gives it; `form_token`: the operator session's;
/// `notice`: how the last action went.
pub fn providers(
    inventory: &Providers,
    form_token: &str,
    notice: Option<&Result<String, ApiError>>,
) -> Markup {
    layout::page(
        "Providers",
        html! {
            h1 { "Providers" }
            div.muted {
                "Signed in as the operator · "
                form.inline method="post" action="/dashboard/operator/sign-out" { button { "Sign out" } }
            }
            @match notice {
                Some(Ok(text)) => p.notice #notice { (text) },
                Some(Err(error)) => (refusal::line(error.code(), error.message(), Some("notice"))),
                None => p #notice role="status" {},
            }
            // `scripts::UPLOAD` sends the form token from `data-form-token`.
            (parts::table_wrap("Providers", html! { table data-form-token=(form_token) {
                thead {
                    tr {
                        th { "name" } th { "version" } th { "kinds" } th { "sha256" }
                        th { "health" } th { "loaded" } th { "actions" }
                    }
                }
                tbody {
                    @for provider in &inventory.providers { (loaded_row(provider, form_token)) }
                    @for name in &inventory.unloaded { (unloaded_row(name, form_token)) }
                }
            } }))
            (scripts::UPLOAD)
        },
    )
}

fn loaded_row(provider: &Provider, form_token: &str) -> Markup {
    let name = provider.name.as_str();
    let health = &provider.health;
    let health_state = match health.breaker.as_str() {
        "closed" => "healthy",
        "half_open" => "recovering (trial calls)",
        "open" => "failing (calls refused)",
        _ => "-",
    };
    let sha = provider.sha256.get(..12).unwrap_or("");
    html! {
        tr data-provider=(name) {
            td { b { (name) } }
            td.version { (provider.version) }
            td { (provider.kinds.join(", ")) }
            td { code { (sha) } }
            td {
                (health_state) br;
                span.muted {
                    (health.calls_total) " calls, "
                    (health.failures_total) " failed"
                }
            }
            td.muted {
                (provider.source) br;
                (parts::when(&provider.loaded_at))
            }
            td {
                (action(name, "unload", form_token, "Unload"))
                @if let Some(previous) = &provider.previous {
                    (action(name, "rollback", form_token, &format!("Roll back to {}", previous.version)))
                }
                (upload_control(name))
            }
        }
    }
}

fn unloaded_row(name: &str, form_token: &str) -> Markup {
    html! {
        tr data-provider=(name) {
            td { b { (name) } }
            td.muted colspan="5" { "out of service" }
            td {
                (action(name, "rollback", form_token, "Bring back"))
                (upload_control(name))
            }
        }
    }
}

/// A form posting to `/dashboard/operator/providers/{name}/{action}`.
fn action(name: &str, action: &str, form_token: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/dashboard/operator/providers/" (name) "/" (action) } {
            input type="hidden" name=(guard::FIELD) value=(form_token);
            button { (label) }
        }
        " "
    }
}

/// A file input `scripts::UPLOAD` sends to the provider named in `data-provider`.
fn upload_control(name: &str) -> Markup {
    html! {
        label.muted {
            "Upload .wasm "
            input.component type="file" accept=".wasm" data-provider=(name);
        }
    }
}
