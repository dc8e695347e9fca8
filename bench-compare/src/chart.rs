//! The ratio chart of one run, as a self-contained SVG (`--svg PATH`): for every workload, tasklets on
//! one worker ÷ each peer, one horizontal bar per peer on a logarithmic axis with 1× marked, so "ahead"
//! and "behind" read at a glance. The book's Performance chapter shows the chart of the run its tables
//! come from.

use std::fmt::Write as _;

/// One group of bars: a workload and tasklets' ratio to each peer (`None`: not measured).
pub struct Group {
    pub label: String,
    pub ratios: Vec<Option<f64>>,
}

/// Bar colours, one per peer (in the order of `peers`); chosen to stay apart for colour-blind readers.
const COLOURS: [&str; 6] = [
    "#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377",
];

const WIDTH: f64 = 760.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 64.0;
const BAR: f64 = 13.0;
const GAP: f64 = 14.0;
/// The axis runs from 0.1× to 10×.
const LOG_MIN: f64 = -1.0;
const LOG_MAX: f64 = 1.0;

fn x_of(ratio: f64) -> f64 {
    let l = ratio.log10().clamp(LOG_MIN, LOG_MAX);
    LEFT + (l - LOG_MIN) / (LOG_MAX - LOG_MIN) * (WIDTH - LEFT - RIGHT)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart. `title` heads it; `peers` names the bars of every group.
pub fn render(title: &str, peers: &[&str], groups: &[Group]) -> String {
    let group_h = peers.len() as f64 * BAR + GAP;
    let height = TOP + groups.len() as f64 * group_h + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    // Legend.
    let mut lx = LEFT;
    for (i, peer) in peers.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="30" width="10" height="10" fill="{}"/><text x="{}" y="39">{}</text>"#,
            COLOURS[i % COLOURS.len()],
            lx + 14.0,
            escape(peer)
        );
        lx += 28.0 + 6.5 * peer.len() as f64;
    }
    // Grid: 0.1×, 0.2×, 0.5×, 1×, 2×, 5×, 10×.
    let bottom = TOP + groups.len() as f64 * group_h;
    for tick in [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0] {
        let x = x_of(tick);
        let (stroke, w) = if tick == 1.0 {
            ("#333333", 1.5)
        } else {
            ("#dddddd", 1.0)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{bottom}" stroke="{stroke}" stroke-width="{w}"/>"#,
            TOP - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{tick}×</text>"#,
            bottom + 14.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">← peer faster · tasklets faster → (log scale)</text>"#,
        x_of(1.0),
        bottom + 30.0
    );
    // Bars.
    for (g, group) in groups.iter().enumerate() {
        let y0 = TOP + g as f64 * group_h;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}</text>"#,
            LEFT - 8.0,
            y0 + peers.len() as f64 * BAR / 2.0,
            escape(&group.label)
        );
        for (i, ratio) in group.ratios.iter().enumerate() {
            let Some(r) = *ratio else { continue };
            let y = y0 + i as f64 * BAR;
            let (a, b) = (x_of(1.0), x_of(r));
            let (x, w) = if b >= a { (a, b - a) } else { (b, a - b) };
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {r:.2}×</title></rect>"#,
                y + 1.0,
                w.max(1.0),
                BAR - 2.0,
                COLOURS[i % COLOURS.len()],
                escape(peers[i])
            );
            let (tx, anchor) = if b >= a {
                (b + 3.0, "start")
            } else {
                (b - 3.0, "end")
            };
            let _ = writeln!(
                s,
                r#"<text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" dominant-baseline="middle" font-size="9">{r:.2}×</text>"#,
                y + BAR / 2.0
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_measured_ratio_on_either_side_of_one() {
        let svg = render(
            "t",
            &["a", "b"],
            &[Group {
                label: "ping-pong".into(),
                ratios: vec![Some(0.5), Some(2.0)],
            }],
        );
        assert_eq!(
            svg.matches("<rect x=").count(),
            2 + 2,
            "two legend boxes, two bars"
        );
        assert!(svg.contains("0.50×") && svg.contains("2.00×"));
        assert!(x_of(0.5) < x_of(1.0) && x_of(1.0) < x_of(2.0));
    }
}
