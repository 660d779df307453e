//! The page an invitation link opens: which team, who invited whom, and the button.

use maud::{Markup, html};

use super::layout;
use crate::store::OpenInvitation;

/// `token`: the link's, sent back by the form.
pub fn page(invitation: &OpenInvitation, token: &str) -> Markup {
    layout::page(
        "Join a team",
        html! {
            h1 { "Join " (invitation.team_name) }
            p #invitation {
                (invitation.invited_by) " invited " strong { (invitation.email) }
                " to this team on instanode. As a member you see and manage the team's resources, apps and vault."
            }
            form #join method="post" action="/team/join" {
                input type="hidden" name="t" value=(token);
                button type="submit" { "Join the team" }
            }
            p.muted { "Joining moves this address out of the team it is in now. The link works once." }
        },
    )
}
