//! The document every dashboard page shares: head, the one stylesheet, and for a signed-in
//! person the header with navigation, who they are and sign-out. No page loads anything
//! from elsewhere.

use std::sync::LazyLock;

use maud::{Markup, html};
use sha2::{Digest, Sha256};

use super::style::STYLESHEET;
use crate::store::Account;

/// Where the stylesheet is served: its name carries the start of its SHA-256, so a new
/// stylesheet gets a new URL and the old one can be cached for good.
pub static STYLESHEET_PATH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLESHEET.as_bytes());
    format!("/dashboard/assets/app-{}.css", &hex::encode(digest)[..12])
});

/// The sections of the signed-in dashboard, in the order the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Resources,
    Deployments,
    Vault,
    Team,
    Settings,
}

impl Section {
    const ALL: [Section; 6] = [
        Self::Overview,
        Self::Resources,
        Self::Deployments,
        Self::Vault,
        Self::Team,
        Self::Settings,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::Resources => "Resources",
            Self::Deployments => "Deployments",
            Self::Vault => "Vault",
            Self::Team => "Team",
            Self::Settings => "Settings",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Self::Overview => "/dashboard",
            Self::Resources => "/dashboard/resources",
            Self::Deployments => "/dashboard/deployments",
            Self::Vault => "/dashboard/vault",
            Self::Team => "/dashboard/team",
            Self::Settings => "/dashboard/settings",
        }
    }
}

/// A whole page titled `title` around `body`, for pages outside the signed-in dashboard
/// (sign-in, claim, operator, refusals).
pub fn page(title: &str, body: Markup) -> Markup {
    crate::html_document::linked_document(
        &format!("{title} · instanode"),
        &STYLESHEET_PATH,
        html! {
            main #main { (body) }
        },
    )
}

/// A signed-in page: the header (navigation with `current` marked, the person, their tier,
/// sign-out) above `body`.
pub fn signed_in(account: &Account, current: Section, title: &str, body: Markup) -> Markup {
    crate::html_document::linked_document(
        &format!("{title} · instanode"),
        &STYLESHEET_PATH,
        html! {
            a.skip href="#main" { "Skip to content" }
            header.top {
                div.top-inner {
                    a.brand href="/dashboard" { "instanode" }
                    nav.main aria-label="Dashboard" {
                        ul {
                            @for section in Section::ALL {
                                li {
                                    a href=(section.href())
                                        aria-current=[(section == current).then_some("page")] {
                                        (section.label())
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span #who { "Signed in as " (account.email) }
                        span.pill #tier title="Your team's tier" { (account.tier) }
                        form.inline method="post" action="/dashboard/logout" {
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
            }
            main #main { (body) }
        },
    )
}
