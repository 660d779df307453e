//! The team: its members, the invitations waiting, and its settings.

use maud::{Markup, html};

use super::super::guard;
use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use crate::api::schema::Invitation;
use crate::store::{Account, Member};

pub struct Team<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    pub members: &'a [Member],
    pub invitations: &'a [Invitation],
    pub ttl_policy: &'a str,
    pub notice: Option<&'a str>,
    pub form_token: &'a str,
}

pub fn page(team: &Team) -> Markup {
    let account = team.account;
    layout::signed_in(
        account,
        Section::Team,
        "Team",
        html! {
            h1 { "Team " (account.team_name) }
            @if let Some(notice) = team.notice { p.notice #notice role="status" { (notice) } }
            dl {
                dt { "tier" } dd { (account.tier) }
                dt { "new apps live" } dd #ttl-policy {
                    @if team.ttl_policy == "permanent" { "until deleted" } @else { "24 hours unless kept (" (team.ttl_policy) ")" }
                }
            }
            h2 { "Members" }
            (parts::table_wrap("Members", html! {
                table #members {
                    thead { tr { th { "email" } th { "joined" } th { "live API keys" } } }
                    tbody {
                        @for member in team.members {
                            tr { td { (member.email) } td { (parts::when(&member.joined_at)) } td { (member.api_keys) } }
                        }
                    }
                }
            }))
            h2 { "Invitations" }
            form.row #invite method="post" action="/dashboard/team/invitations" {
                input type="hidden" name=(guard::FIELD) value=(team.form_token);
                div {
                    label for="invite-email" { "Email" }
                    input #invite-email type="email" name="email" required autocomplete="off" placeholder="teammate@example.com";
                }
                button type="submit" { "Send invitation" }
            }
            @if team.invitations.is_empty() {
                p.muted #invitations { "None waiting. An invitation is an emailed link that works once, for 7 days." }
            } @else {
                (parts::table_wrap("Invitations", html! {
                    table #invitations {
                        thead { tr { th { "email" } th { "invited by" } th { "sent" } th { "expires" } th { "revoke" } } }
                        tbody {
                            @for invitation in team.invitations {
                                tr data-invitation=(invitation.id) {
                                    td { (invitation.email) }
                                    td { (invitation.invited_by) }
                                    td { (parts::when(&invitation.created_at)) }
                                    td { (parts::when(&invitation.expires_at)) }
                                    td {
                                        form.inline method="post" action={ "/dashboard/team/invitations/" (invitation.id) "/revoke" } {
                                            input type="hidden" name=(guard::FIELD) value=(team.form_token);
                                            button.danger type="submit" aria-label={ "Revoke the invitation of " (invitation.email) } { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }))
            }
            (prompt::cards(team.public_url, &[
                Prompt::new("Invite a teammate", "POST", "/api/v1/team/invitations")
                    .body(serde_json::json!({ "email": "teammate@example.com" })),
                Prompt::new("Keep new apps until deleted", "PATCH", "/api/v1/team/settings")
                    .body(serde_json::json!({ "default_deployment_ttl_policy": "permanent" })),
                Prompt::new("Give new apps 24 hours again", "PATCH", "/api/v1/team/settings")
                    .body(serde_json::json!({ "default_deployment_ttl_policy": "auto_24h" })),
            ]))
        },
    )
}
