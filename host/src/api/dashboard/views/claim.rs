//! The claim page an `upgrade` link opens: the resources the link stands for and a form
//! that emails the link that moves them; or why that is not possible.

use maud::{Markup, html};

use super::parts;
use super::{layout, refusal, scripts};
use crate::api::error::ApiError;
use crate::api::schema::ClaimPreview;

/// `token`: the upgrade token from the link; `preview`: what claiming it would move.
pub fn page(token: &str, preview: &Result<ClaimPreview, ApiError>) -> Markup {
    layout::page(
        "Claim your resources",
        html! {
            h1 { "Keep what you built" }
            @match preview {
                Ok(preview) if preview.already_claimed => {
                    p.notice {
                        "These resources were already claimed. Open the link we emailed, or "
                        a href="/dashboard" { "sign in" } "."
                    }
                }
                Ok(preview) => (claim_form(token, preview)),
                Err(error) => {
                    (refusal::line(error.code(), error.message(), None))
                    p {
                        "Ask the agent that created your resources for its latest claim link, or "
                        a href="/dashboard" { "sign in" } "."
                    }
                }
            }
        },
    )
}

fn claim_form(token: &str, preview: &ClaimPreview) -> Markup {
    html! {
        p {
            "This resource ends when its time runs out. Enter your email: we send a link, and "
            "opening it moves it into your own account, where it lasts."
        }
        (parts::table_wrap("Claimable resources", html! {
        table #claimable {
            thead { tr { th { "kind" } th { "name" } th { "status" } th { "expires in" } } }
            tbody {
                @for item in &preview.items {
                    tr {
                        td { (item.kind) }
                        td { (item.name) }
                        td { (item.status) }
                        td { (parts::expires(item.expires_at.as_ref())) }
                    }
                }
            }
        }
        }))
        // `scripts::CLAIM` sends the token from `data-token`.
        form #claim data-token=(token) {
            p {
                label for="email" { "Your email" } " "
                input #email type="email" required placeholder="you@example.com" size="32" autocomplete="email";
                " "
                button type="submit" { "Email me the link" }
            }
        }
        p #result role="status" {}
        (scripts::CLAIM)
        (scripts::COUNTDOWN)
    }
}
