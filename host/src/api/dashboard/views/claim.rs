//! The claim page an `upgrade` link opens: the resources the link stands for and a form
//! that emails the link that moves them; or why that is not possible.

use maud::{Markup, html};
use serde_json::Value;

use super::parts::{self, text};
use super::{layout, refusal, scripts};
use crate::api::error::ApiError;

/// `token`: the upgrade token from the link; `preview`: what claiming it would move.
pub fn page(token: &str, preview: &Result<Value, ApiError>) -> Markup {
    layout::page(
        "Claim your resources",
        html! {
            h1 { "Keep what you built" }
            @match preview {
                Ok(preview) if preview["already_claimed"] == true => {
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

fn claim_form(token: &str, preview: &Value) -> Markup {
    let items = preview["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    html! {
        p {
            "This resource ends when its time runs out. Enter your email: we send a link, and "
            "opening it moves it into your own account, where it lasts."
        }
        table #claimable {
            thead { tr { th { "kind" } th { "name" } th { "status" } th { "expires in" } } }
            tbody {
                @for item in items {
                    tr {
                        td { (text(&item["kind"])) }
                        td { (text(&item["name"])) }
                        td { (text(&item["status"])) }
                        td { (parts::expires(item)) }
                    }
                }
            }
        }
        // `scripts::CLAIM` sends the token from `data-token`.
        form #claim data-token=(token) {
            p {
                input #email type="email" required placeholder="you@example.com" size="32";
                " "
                button type="submit" { "Email me the link" }
            }
        }
        p #result role="status" {}
        (scripts::CLAIM)
        (scripts::COUNTDOWN)
    }
}
