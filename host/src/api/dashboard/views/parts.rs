//! Fragments several pages show: a resource's timestamps, its lifetime, its usage.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

use crate::api::schema::Resource;

/// A timestamp as the API writes it.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A moment as people read it (to the second, in UTC), with the exact time for machines.
pub fn when(at: &DateTime<Utc>) -> Markup {
    html! {
        time datetime=(timestamp(at)) { (at.format("%Y-%m-%d %H:%M:%S UTC")) }
    }
}

/// The lifetime cell: a live countdown (`scripts::COUNTDOWN` fills it in), or "never".
pub fn expires(expires_at: Option<&DateTime<Utc>>) -> Markup {
    html! {
        @match expires_at {
            Some(at) => span.ttl data-expires=(timestamp(at)) {},
            None => "never",
        }
    }
}

/// How full a resource may get before the dashboard warns about it, in percent.
pub const NEAR_LIMIT_PERCENT: u64 = 80;

/// How full `item` is, in percent of its storage or memory limit (capped at 100).
pub fn percent_used(item: &Resource) -> Option<u64> {
    match (item.storage_bytes, item.storage_limit_bytes) {
        (Some(used), Some(limit)) if limit > 0 => Some((used.saturating_mul(100) / limit).min(100)),
        _ => None,
    }
}

/// A `used / limit` bar for a resource with a storage or memory limit.
pub fn usage_bar(item: &Resource) -> Markup {
    html! {
        @match (item.storage_bytes, item.storage_limit_bytes) {
            (Some(used), Some(limit)) if limit > 0 => (storage_meter("Storage used", used, limit, item.storage_exceeded)),
            (None, Some(limit)) => span.muted { "not measured yet (limit " (megabytes(limit)) ")" },
            _ => span.muted { "-" },
        }
    }
}

/// A bar of `used` against `limit` (not zero), marked near the limit and when `full`,
/// with both figures beside it; `label` names it for screen readers.
pub fn storage_meter(label: &str, used: u64, limit: u64, full: bool) -> Markup {
    let percent = (used.saturating_mul(100) / limit).min(100);
    html! {
        span.bar.near[percent >= NEAR_LIMIT_PERCENT].full[full] role="meter"
            aria-label=(label) aria-valuenow=(percent)
            aria-valuemin="0" aria-valuemax="100" title={ (percent) "%" } {
            span style={ "width:" (percent) "%" } {}
        }
        span.muted { (megabytes(used)) " of " (megabytes(limit)) }
    }
}

/// A small label; `class` colours it by state.
pub fn pill(text: &str, class: &str) -> Markup {
    html! { span class={ "pill " (class) } { (text) } }
}

/// A table that scrolls sideways on a narrow screen; `label` names the region.
pub fn table_wrap(label: &str, table: Markup) -> Markup {
    html! {
        div.table-wrap role="region" aria-label=(label) tabindex="0" { (table) }
    }
}

/// A box saying there is nothing here yet and what to do about it.
pub fn empty(headline: &str, next: Markup) -> Markup {
    html! {
        div.empty { p { strong { (headline) } } p { (next) } }
    }
}

/// Where a resource's page is: apps have deployment pages.
pub fn resource_href(item: &Resource, app_kinds: &[String]) -> String {
    let pages = if app_kinds.contains(&item.kind) {
        "deployments"
    } else {
        "resources"
    };
    format!("/dashboard/{pages}/{}", item.token)
}

/// A size in MB, or in GB from 1 GB up.
pub fn megabytes(bytes: u64) -> String {
    let megabytes = bytes as f64 / (1024.0 * 1024.0);
    if megabytes >= 1024.0 {
        format!("{:.1} GB", megabytes / 1024.0)
    } else {
        format!("{megabytes:.1} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_bars_are_capped_and_marked_when_exceeded() {
        let item = Resource {
            storage_bytes: Some(30 << 20),
            storage_limit_bytes: Some(10 << 20),
            storage_exceeded: true,
            ..super::super::hostile::item("x")
        };
        let bar = usage_bar(&item).into_string();
        assert!(bar.contains("aria-valuenow=\"100\""), "{bar}");
        assert!(bar.contains("full"), "{bar}");
    }
}
