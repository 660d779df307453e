//! The overview: what the team has, how full it is against its tier, what happened lately,
//! and a warning when something is near or over its limit.

use maud::{Markup, html};

use super::chart::{self, Measure};
use super::layout::{self, Section};
use super::parts;
use super::prompt::{self, Prompt};
use crate::api::schema::Resource;
use crate::store::{Account, Activity, UsagePoint};

/// One kind's line of the summary.
pub struct KindSummary {
    pub kind: String,
    pub count: usize,
    /// What the tier allows of this kind; `None`: no cap.
    pub count_limit: Option<u64>,
    pub storage_bytes: u64,
    pub storage_limit_bytes: u64,
    pub connections: u64,
    pub connection_limit: u64,
}

/// Everything the overview shows.
pub struct Overview<'a> {
    pub account: &'a Account,
    pub public_url: &'a str,
    pub kinds: &'a [KindSummary],
    pub deployments_healthy: usize,
    pub deployments_total: usize,
    pub webhooks: usize,
    pub vault_entries: i64,
    /// Resources at or above `NEAR_LIMIT_PERCENT` of their limit, or suspended.
    pub near_limit: Vec<&'a Resource>,
    /// The resources something happened to lately, most recent first.
    pub recent: Vec<&'a Resource>,
    pub activity: &'a [Activity],
    pub usage: &'a [UsagePoint],
    /// Kinds whose resources are apps (their pages are deployment pages).
    pub app_kinds: &'a [String],
}

pub fn page(overview: &Overview) -> Markup {
    let account = overview.account;
    let nothing = overview.kinds.is_empty() && overview.deployments_total == 0;
    layout::signed_in(
        account,
        Section::Overview,
        "Overview",
        html! {
            h1 { "Overview of " (account.team_name) }
            @if !overview.near_limit.is_empty() {
                div.banner #limit-banner role="status" {
                    strong { "Near or over a limit: " }
                    @for (i, item) in overview.near_limit.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/dashboard/resources/" (item.token) } { (item.name) }
                        " (" (parts::percent_used(item).unwrap_or(100)) "%"
                        @if item.storage_exceeded { ", suspended" } ")"
                    }
                    ". Writes stop at 100% until usage is back under 90%; a higher tier raises the limit."
                }
            }
            div.grid #counts {
                div.card { div.figure { (overview.kinds.iter().map(|k| k.count).sum::<usize>()) } div.muted { "resources" } }
                div.card { div.figure { (overview.deployments_healthy) " / " (overview.deployments_total) } div.muted { "deployments healthy" } }
                div.card { div.figure { (overview.webhooks) } div.muted { "webhook receivers" } }
                div.card { div.figure { (overview.vault_entries) } div.muted { "vault entries" } }
            }
            @if nothing {
                h2 { "Get started" }
                (parts::empty("Nothing here yet.", html! {
                    "Create an API key in " a href="/dashboard/settings" { "Settings" }
                    ", give it to your agent, and ask it for a database. Everything it makes shows up here."
                }))
                (prompt::cards(overview.public_url, &[
                    Prompt::new("Create a Postgres database", "POST", "/db/new").body(serde_json::json!({ "name": "app-db" })),
                ]))
            } @else {
                h2 { "By kind, against your tier (" (account.tier) ")" }
                (parts::table_wrap("Usage by kind", kinds_table(overview.kinds)))
                h2 { "Usage over time" }
                div.charts {
                    (chart::card(Measure::Storage, overview.usage))
                    (chart::card(Measure::Connections, overview.usage))
                }
                h2 { "Recently active" }
                @if overview.recent.is_empty() {
                    p.muted { "Nothing has happened to a resource lately." }
                } @else {
                    ul.activity #recent {
                        @for item in &overview.recent {
                            li { (parts::pill(&item.kind, "")) " " a href=(parts::resource_href(item, overview.app_kinds)) { (item.name) } " " (parts::pill(item.status.as_str(), item.status.as_str())) }
                        }
                    }
                }
                h2 { "Recent activity" }
                (activity(overview.activity))
            }
        },
    )
}

fn kinds_table(kinds: &[KindSummary]) -> Markup {
    html! {
        table #kinds {
            thead { tr { th { "kind" } th { "count" } th { "storage" } th { "connections" } } }
            tbody {
                @for kind in kinds {
                    tr {
                        td { (kind.kind) }
                        td { (kind.count) @if let Some(limit) = kind.count_limit { " of " (limit) } }
                        td {
                            @if kind.storage_limit_bytes > 0 {
                                (parts::storage_meter(&format!("{} storage used", kind.kind), kind.storage_bytes, kind.storage_limit_bytes, false))
                            } @else { span.muted { "-" } }
                        }
                        td {
                            @if kind.connection_limit > 0 { (kind.connections) " of " (kind.connection_limit) } @else { span.muted { "-" } }
                        }
                    }
                }
            }
        }
    }
}

/// The activity list (also used by the resource page).
pub fn activity(events: &[Activity]) -> Markup {
    html! {
        @if events.is_empty() {
            p.muted #activity { "No activity yet." }
        } @else {
            ul.activity #activity {
                @for event in events {
                    li {
                        span.muted { (parts::when(&event.at)) } " · "
                        strong { (event.action) } " "
                        @match event.token {
                            Some(token) => a href={ "/dashboard/resources/" (token) } { (event.subject) },
                            None => (event.subject),
                        }
                        " " (parts::pill(&event.kind, ""))
                        @if let Some(actor) = &event.actor { span.muted { " · " (actor) } }
                    }
                }
            }
        }
    }
}
