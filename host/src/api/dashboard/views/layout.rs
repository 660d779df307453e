//! The document every dashboard page shares: head, the one stylesheet, and for a signed-in
//! person the header with navigation, who they are and sign-out. No page loads anything
//! from elsewhere.

use maud::{Markup, html};

use super::super::assets;
use crate::store::Account;

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
    document(
        title,
        html! {
            main #main { (body) }
        },
    )
}

/// A signed-in page: the header (navigation with `current` marked, the person, their tier,
/// sign-out) above `body`.
pub fn signed_in(account: &Account, current: Section, title: &str, body: Markup) -> Markup {
    document(
        title,
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

fn document(title: &str, body: Markup) -> Markup {
    crate::html_document::linked_document(
        &format!("{title} · instanode"),
        assets::stylesheet_path(),
        assets::icon_path(),
        body,
    )
}
