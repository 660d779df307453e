//! The sign-in form a browser without a session gets at `/dashboard`.

use maud::{Markup, html};

use super::{layout, scripts};

pub fn page() -> Markup {
    layout::page(
        "Sign in",
        html! {
            h1 { "Sign in to instanode" }
            p { "We email you a link; following it signs this browser in." }
            form #signin {
                label for="signin-email" { "Email" } " "
                input #signin-email type="email" name="email" required placeholder="you@example.com" size="32" autocomplete="email";
                " "
                button type="submit" { "Email me a link" }
            }
            p #sent .muted role="status" {}
            (scripts::SIGN_IN)
        },
    )
}
