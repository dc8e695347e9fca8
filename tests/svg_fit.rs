//! The book's pictures fit their boxes: every text's estimated width (characters × font size × 0.55,
//! a Helvetica-like average) stays inside the picture, and a centred caption inside the box its
//! anchor point is in.
//! A clipped title or caption fails here instead of in a reader's browser.

use std::fs;
use std::path::Path;

/// The average advance of a character as a share of the font size: Helvetica/Arial lower-case text
/// averages about 0.5; 0.55 leaves a margin for capitals and bold.
const CHAR_WIDTH: f64 = 0.55;

/// The value of attribute `name` in the tag text `tag` (`<rect x="1" …>`).
fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let mut rest = tag;
    while let Some(i) = rest.find(name) {
        let before = rest[..i].chars().last();
        let after = &rest[i + name.len()..];
        if before.is_some_and(char::is_whitespace) && after.starts_with("=\"") {
            let value = &after[2..];
            return value.find('"').map(|end| &value[..end]);
        }
        rest = &rest[i + name.len()..];
    }
    None
}

fn num(tag: &str, name: &str) -> Option<f64> {
    attr(tag, name)?.trim_end_matches("px").parse().ok()
}

/// The visible text of an element's content: tags stripped, entities counted as one character.
fn visible_chars(content: &str) -> usize {
    let mut n = 0;
    let mut in_tag = false;
    let mut in_entity = false;
    for c in content.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                in_entity = true;
                n += 1;
            }
            ';' if in_entity => in_entity = false,
            _ if in_entity => {}
            _ => n += 1,
        }
    }
    n
}

#[derive(Debug)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Every caption of `svg` that overflows, as a message.
fn overflows(svg: &str) -> Vec<String> {
    let root = &svg[..svg.find('>').expect("an <svg> tag")];
    let default_size = num(root, "font-size").unwrap_or(16.0);
    let view: Vec<f64> = attr(root, "viewBox")
        .expect("a viewBox")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let (canvas_x, canvas_w) = (view[0], view[2]);

    let mut rects = Vec::new();
    for part in svg.split("<rect").skip(1) {
        let tag = &part[..part.find('>').unwrap()];
        let (Some(w), Some(h)) = (num(tag, "width"), num(tag, "height")) else {
            continue;
        };
        let r = Rect {
            x: num(tag, "x").unwrap_or(0.0),
            y: num(tag, "y").unwrap_or(0.0),
            w,
            h,
        };
        if r.w < canvas_w {
            rects.push(r); // the background is the canvas, checked below
        }
    }

    let mut out = Vec::new();
    for part in svg.split("<text").skip(1) {
        let open_end = part.find('>').unwrap();
        let tag = &part[..open_end];
        let content = &part[open_end + 1..part.find("</text>").expect("a closed <text>")];
        let (Some(x), Some(y)) = (num(tag, "x"), num(tag, "y")) else {
            continue;
        };
        let size = num(tag, "font-size").unwrap_or(default_size);
        let chars = visible_chars(content);
        let width = chars as f64 * size * CHAR_WIDTH;
        let (left, right) = match attr(tag, "text-anchor") {
            Some("middle") => (x - width / 2.0, x + width / 2.0),
            Some("end") => (x - width, x),
            _ => (x, x + width),
        };
        let text: String = content.chars().take(60).collect();
        if y > view[1] + view[3] || y - size < view[1] {
            out.push(format!(
                "{text:?}: its line at y={y} leaves the picture (height {})",
                view[3]
            ));
            continue;
        }
        if left < canvas_x - 0.5 || right > canvas_x + canvas_w + 0.5 {
            out.push(format!(
                "{text:?}: {left:.0}..{right:.0} leaves the picture (0..{canvas_w})"
            ));
            continue;
        }
        // A centred caption belongs to the smallest box whose area holds its anchor point (the
        // baseline, a little above it); other text (arrow labels, notes) only has to fit the picture.
        if attr(tag, "text-anchor") != Some("middle") {
            continue;
        }
        let inside = rects
            .iter()
            .filter(|r| x >= r.x && x <= r.x + r.w && y - size / 3.0 >= r.y && y <= r.y + r.h)
            .min_by(|a, b| (a.w * a.h).total_cmp(&(b.w * b.h)));
        if let Some(r) = inside {
            if left < r.x - 0.5 || right > r.x + r.w + 0.5 {
                out.push(format!(
                    "{text:?}: {left:.0}..{right:.0} overflows its box {:.0}..{:.0}",
                    r.x,
                    r.x + r.w
                ));
            }
        }
    }
    out
}

#[test]
fn every_caption_fits_its_box_and_its_picture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    let mut failures = Vec::new();
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "svg") {
            checked += 1;
            let svg = fs::read_to_string(&path).unwrap();
            for o in overflows(&svg) {
                failures.push(format!(
                    "{}: {o}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(checked >= 9, "only {checked} pictures found");
    assert!(
        failures.is_empty(),
        "clipped captions:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_check_catches_a_clipped_caption() {
    let svg = r#"<svg viewBox="0 0 200 100" font-size="14"><rect x="10" y="10" width="60" height="30"/><text x="40" y="30" text-anchor="middle">a caption far too long</text></svg>"#;
    assert_eq!(overflows(svg).len(), 1, "{:?}", overflows(svg));
    let svg = r#"<svg viewBox="0 0 200 100" font-size="14"><text x="20" y="30">a title wider than its picture, by far</text></svg>"#;
    assert_eq!(overflows(svg).len(), 1);
    let svg = r#"<svg viewBox="0 0 200 100" font-size="14"><rect x="10" y="10" width="60" height="30"/><text x="40" y="30" text-anchor="middle">fits</text></svg>"#;
    assert!(overflows(svg).is_empty());
}
