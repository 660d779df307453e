//! Refusals, for people: what happened and where to go from here.

use maud::{Markup, html};

use super::layout;

/// A whole page for a refused request.
pub fn page(code: &str, message: &str) -> Markup {
    layout::page(
        "Not possible",
        html! {
            h1 { "That did not work" }
            (line(code, message, None))
            p { a href="/dashboard" { "Back to the dashboard" } }
        },
    )
}

/// One refusal paragraph: the stable code, then the message (`id` lets a script find it).
pub fn line(code: &str, message: &str, id: Option<&str>) -> Markup {
    html! {
        p.refusal id=[id] { code { (code) } ": " (message) }
    }
}
