//! The shell every HTML answer of the host shares (dashboard, claim page, CLI approval,
//! the proxy's failure page): language, charset, viewport, title and the styling.
//! Nothing is loaded from elsewhere, so the pages work offline and leak no visits.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// A whole document titled `title` around `body`, styled by `style` (a constant of the
/// caller: CSS has `>`, which escaping would break, so it is never built from input).
pub fn document(title: &str, style: &'static str, body: Markup) -> Markup {
    shell(title, html! { style { (PreEscaped(style)) } }, body)
}

/// A whole document titled `title` around `body`, styled by the stylesheet at `stylesheet`
/// and marked by the icon at `icon` (paths on this host).
pub fn linked_document(title: &str, stylesheet: &str, icon: &str, body: Markup) -> Markup {
    let head = html! {
        link rel="stylesheet" href=(stylesheet);
        link rel="icon" href=(icon) type="image/svg+xml";
    };
    shell(title, head, body)
}

/// The document around `body`, with `styling` at the end of its head.
fn shell(title: &str, styling: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) }
                (styling)
            }
            body { (body) }
        }
    }
}
