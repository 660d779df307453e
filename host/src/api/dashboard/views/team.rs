//! The team: its members and its settings.

use maud::{Markup, html};

use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use crate::store::{Account, Member};

pub fn page(account: &Account, public_url: &str, members: &[Member], ttl_policy: &str) -> Markup {
    layout::signed_in(
        account,
        Section::Team,
        "Team",
        html! {
            h1 { "Team " (account.team_name) }
            dl {
                dt { "tier" } dd { (account.tier) }
                dt { "new apps live" } dd #ttl-policy {
                    @if ttl_policy == "permanent" { "until deleted" } @else { "24 hours unless kept (" (ttl_policy) ")" }
                }
            }
            h2 { "Members" }
            (parts::table_wrap("Members", html! {
                table #members {
                    thead { tr { th { "email" } th { "joined" } th { "live API keys" } } }
                    tbody {
                        @for member in members {
                            tr { td { (member.email) } td { (parts::when(&member.joined_at)) } td { (member.api_keys) } }
                        }
                    }
                }
            }))
            h2 { "Pending invitations" }
            p.muted #invitations { "None pending. This host does not send team invitations yet." }
            (prompt::cards(public_url, &[
                Prompt::new("Keep new apps until deleted", "PATCH", "/api/v1/team/settings")
                    .body(serde_json::json!({ "default_deployment_ttl_policy": "permanent" })),
                Prompt::new("Give new apps 24 hours again", "PATCH", "/api/v1/team/settings")
                    .body(serde_json::json!({ "default_deployment_ttl_policy": "auto_24h" })),
            ]))
        },
    )
}
