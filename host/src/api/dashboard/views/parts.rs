//! Fragments several pages show: a field of a described resource, its lifetime, its usage.

use maud::{Markup, html};
use serde_json::Value;

/// A string field of a resource as `resources::describe` gives it; `-` when absent.
pub fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// The lifetime cell: a live countdown (`scripts::COUNTDOWN` fills it in), or "never".
pub fn expires(item: &Value) -> Markup {
    html! {
        @match item["expires_at"].as_str() {
            Some(at) => span.ttl data-expires=(at) {},
            None => "never",
        }
    }
}

/// A `used / limit` bar for a resource with a storage or memory limit.
pub fn usage_bar(item: &Value) -> Markup {
    let used = item["storage_bytes"].as_u64();
    let limit = item["storage_limit_bytes"].as_u64();
    html! {
        @match (used, limit) {
            (Some(used), Some(limit)) if limit > 0 => {
                @let percent = (used.saturating_mul(100) / limit).min(100);
                div.bar.full[item["storage_exceeded"] == true] role="meter"
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
        let item = serde_json::json!({"storage_bytes": 30 << 20, "storage_limit_bytes": 10 << 20, "storage_exceeded": true});
        let bar = usage_bar(&item).into_string();
        assert!(bar.contains("aria-valuenow=\"100\""), "{bar}");
        assert!(bar.contains("bar full"), "{bar}");
    }
}
