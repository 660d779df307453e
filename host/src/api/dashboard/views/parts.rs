//! Fragments several pages show: a resource's timestamps, its lifetime, its usage.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, html};

use crate::api::schema::Resource;

/// A timestamp as the API writes it.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
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

/// A `used / limit` bar for a resource with a storage or memory limit.
pub fn usage_bar(item: &Resource) -> Markup {
    let used = item.storage_bytes;
    let limit = item.storage_limit_bytes;
    html! {
        @match (used, limit) {
            (Some(used), Some(limit)) if limit > 0 => {
                @let percent = (used.saturating_mul(100) / limit).min(100);
                div.bar.full[item.storage_exceeded] role="meter"
                    aria-valuenow=(percent) aria-valuemin="0" aria-valuemax="100"
                    title={ (percent) "%" } {
                    span style={ "width:" (percent) "%" } {}
                }
                span.muted { (megabytes(used)) " of " (megabytes(limit)) }
            }
            (None, Some(limit)) => span.muted { "not measured yet (limit " (megabytes(limit)) ")" },
            _ => span.muted { "-" },
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
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
        assert!(bar.contains("bar full"), "{bar}");
    }
}
