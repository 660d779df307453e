//! The team's vault: one tab per env, key names only, a value shown on request (and
//! recorded).

use maud::{Markup, html};

use super::super::guard;
use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use crate::api::schema::VaultSecret;
use crate::store::Account;

pub struct Vault<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    /// Every env that holds a name, with how many; the chosen env is among the tabs even
    /// when empty.
    pub envs: &'a [(String, i64)],
    pub env: &'a str,
    pub keys: &'a [String],
    /// The value just revealed.
    pub revealed: Option<&'a VaultSecret>,
    /// What the tier allows: entries across envs (0: no vault).
    pub max_entries: i64,
    pub form_token: &'a str,
}

pub fn page(vault: &Vault) -> Markup {
    let env = vault.env;
    layout::signed_in(
        vault.account,
        Section::Vault,
        "Vault",
        html! {
            h1 { "Vault" }
            @if vault.max_entries == 0 {
                p.banner { "Your tier (" (vault.account.tier) ") has no vault. Hobby and above keep secrets here for apps to read as " code { "vault://KEY" } "." }
            } @else {
                p.muted { "Up to " (vault.max_entries) " entries across envs. Apps read them as " code { "vault://KEY" } " at each rollout." }
            }
            nav.tabs aria-label="Envs" {
                @for (name, count) in vault.envs {
                    a href={ "/dashboard/vault?env=" (name) } aria-current=[(name == env).then_some("page")] { (name) " (" (count) ")" }
                }
            }
            @if let Some(secret) = vault.revealed {
                div.notice #revealed role="status" {
                    "Version " (secret.version) " of " code { (secret.key) } ": "
                    code.secret #secret-value { (secret.value) }
                    p.muted { "Shown once; the read was recorded." }
                }
            }
            @if vault.keys.is_empty() {
                (parts::empty(&format!("Nothing in {env} yet."), html! { "Ask your agent to store a secret (below)." }))
            } @else {
                (parts::table_wrap("Vault keys", html! {
                    table #vault-keys {
                        thead { tr { th { "key" } th { "value" } } }
                        tbody {
                            @for key in vault.keys {
                                tr data-key=(key) {
                                    td { code { (key) } }
                                    td {
                                        form.inline method="post" action={ "/dashboard/vault/" (env) "/" (key) "/reveal" } {
                                            input type="hidden" name=(guard::FIELD) value=(vault.form_token);
                                            button.quiet type="submit" aria-label={ "Reveal " (key) } { "Reveal" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }))
            }
            (prompt::cards(vault.public_url, &[
                Prompt::new("Store a secret", "PUT", format!("/api/v1/vault/{env}/STRIPE_SECRET_KEY"))
                    .body(serde_json::json!({ "value": "sk_live_..." })),
                Prompt::new("Rotate a secret", "POST", format!("/api/v1/vault/{env}/STRIPE_SECRET_KEY/rotate"))
                    .body(serde_json::json!({ "value": "sk_live_new..." })),
                Prompt::new("Remove a secret", "DELETE", format!("/api/v1/vault/{env}/STRIPE_SECRET_KEY")),
            ]))
        },
    )
}
