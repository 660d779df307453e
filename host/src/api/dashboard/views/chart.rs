//! Small usage charts drawn as inline SVG: no script, no request, readable by a screen
//! reader through its label.

use maud::{Markup, html};

use crate::store::UsagePoint;

/// The drawing's coordinate space; CSS stretches it to the card's width.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 80.0;
/// Room kept above and below the line.
const PAD: f64 = 6.0;

/// What a chart plots.
#[derive(Clone, Copy)]
pub enum Measure {
    Storage,
    Connections,
}

impl Measure {
    fn value(self, point: &UsagePoint) -> i64 {
        match self {
            Self::Storage => point.storage_bytes,
            Self::Connections => point.connections,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Storage => "Storage",
            Self::Connections => "Connections",
        }
    }

    fn format(self, value: i64) -> String {
        match self {
            Self::Storage => super::parts::megabytes(u64::try_from(value).unwrap_or(0)),
            Self::Connections => value.to_string(),
        }
    }
}

/// A card with `measure` over `points` (oldest first), or a line saying there is nothing
/// yet.
pub fn card(measure: Measure, points: &[UsagePoint]) -> Markup {
    let values: Vec<i64> = points.iter().map(|p| measure.value(p)).collect();
    html! {
        div.card.usage-chart data-measure=(measure.title()) data-points=(points.len()) {
            h3 { (measure.title()) " " span.muted { "last 7 days" } }
            @match (values.first(), values.last(), values.iter().max()) {
                (Some(first), Some(last), Some(peak)) => {
                    @let label = format!(
                        "{} from {} to {}, peak {}, over {} samples",
                        measure.title(), measure.format(*first), measure.format(*last),
                        measure.format(*peak), values.len()
                    );
                    (svg(&values, &label))
                    p.muted { "now " (measure.format(*last)) " · peak " (measure.format(*peak)) }
                }
                _ => p.muted { "Nothing measured yet: the meter samples every live resource once a minute." },
            }
        }
    }
}

fn svg(values: &[i64], label: &str) -> Markup {
    let peak = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        0.0
    };
    let at = |i: usize, v: i64| {
        let x = i as f64 * step;
        let y = HEIGHT - PAD - (v as f64 / peak) * (HEIGHT - 2.0 * PAD);
        (x, y)
    };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = at(i, *v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    html! {
        svg.chart role="img" aria-label=(label) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
            preserveAspectRatio="none" {
            title { (label) }
            @if values.len() == 1 {
                @let (_, y) = at(0, values[0]);
                circle cx=(WIDTH / 2.0) cy=(y) r="4" {}
            } @else {
                polyline points=(points.join(" ")) {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn point(storage_bytes: i64) -> UsagePoint {
        UsagePoint {
            at: Utc::now(),
            storage_bytes,
            connections: 0,
        }
    }

    #[test]
    fn a_chart_scales_to_its_peak_and_says_what_it_shows() {
        let chart = card(
            Measure::Storage,
            &[point(0), point(1 << 20), point(2 << 20)],
        )
        .into_string();
        assert!(
            chart.contains("points=\"0.0,74.0 300.0,40.0 600.0,6.0\""),
            "{chart}"
        );
        assert!(chart.contains("peak 2.0 MB"), "{chart}");
        let empty = card(Measure::Connections, &[]).into_string();
        assert!(empty.contains("Nothing measured yet"), "{empty}");
    }
}
