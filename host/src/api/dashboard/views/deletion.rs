//! The delete confirmation page.

use maud::{Markup, html};

use super::{layout, scripts};

/// `label`: what would be deleted (none when the link is not valid any more);
/// `confirm_url`: where the button posts; `token`: the link's token.
pub fn page(label: Option<&str>, confirm_url: Option<&str>, token: &str) -> Markup {
    layout::page(
        "Confirm a delete",
        html! {
            h1 { "Confirm a delete" }
            @match (label, confirm_url) {
                (Some(label), Some(url)) => {
                    p #pending { "Someone asked to delete the " b { (label) } ". It keeps running until you confirm." }
                    // `scripts::CONFIRM_DELETION` posts the token from `data-token` to `data-url`.
                    form #confirm data-url=(url) data-token=(token) {
                        button type="submit" { "Delete it" }
                    }
                    p #result .muted {}
                    (scripts::CONFIRM_DELETION)
                }
                _ => {
                    p #pending .notice {
                        "This link is not valid any more: it expired, was used, or the delete was withdrawn. Nothing was deleted by opening it."
                    }
                }
            }
        },
    )
}
