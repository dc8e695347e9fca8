//! Every chapter listed in `book/src/SUMMARY.md` exists and is compiled as doc-tests by `src/book.rs`,
//! so a chapter cannot be added to the book without its examples being tested.

use std::fs;
use std::path::Path;

/// The `.md` targets of the links in `SUMMARY.md`, in order.
fn chapters(summary: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = summary;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        let Some(end) = rest.find(')') else { break };
        let target = rest[..end].trim();
        rest = &rest[end + 1..];
        let target = target.split('#').next().unwrap_or("");
        if target.ends_with(".md") {
            out.push(target.to_owned());
        }
    }
    out
}

#[test]
fn every_chapter_exists_and_is_doc_tested() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let summary = fs::read_to_string(root.join("book/src/SUMMARY.md")).expect("read SUMMARY.md");
    let book_rs = fs::read_to_string(root.join("src/book.rs")).expect("read src/book.rs");

    let chapters = chapters(&summary);
    assert!(!chapters.is_empty(), "SUMMARY.md links no chapter");
    for chapter in &chapters {
        assert!(
            root.join("book/src").join(chapter).is_file(),
            "SUMMARY.md links {chapter}, which does not exist in book/src"
        );
        let include = format!("include_str!(\"../book/src/{chapter}\")");
        assert!(
            book_rs.contains(&include),
            "{chapter} is in SUMMARY.md but src/book.rs has no `{include}`: its examples would go untested"
        );
    }
}

#[test]
fn chapter_links_are_parsed() {
    let summary = "# Summary\n\n[Intro](intro.md)\n\n- [A](a.md)\n  - [B](sub/b.md#part)\n- [Web](https://x.org)\n";
    assert_eq!(chapters(summary), ["intro.md", "a.md", "sub/b.md"]);
}

/// The chapters allowed to hold `ignore` and `no_run` blocks, and how many: the README's list. A new
/// untested block fails here until it is run or the list (and the README) says why not.
const NOT_RUN: [(&str, &str, usize); 7] = [
    ("chat.md", "ignore", 6),          // excerpts of examples/chat.rs
    ("observing.md", "ignore", 1),     // an excerpt of examples/chat.rs
    ("pipeline.md", "ignore", 2),      // excerpts of examples/pipeline.rs
    ("scaling-out.md", "ignore", 3),   // tasklets-nats: its test, NodeOptions' and sim's doc-tests
    ("tokio.md", "ignore", 1),         // bench-compare/tests/tokio_bridge.rs
    ("benchmarking.md", "no_run", 1),  // a bench harness
    ("tutorial-chat.md", "no_run", 1), // the finished server: listens until Ctrl-C
];

#[test]
fn the_blocks_not_run_are_exactly_the_listed_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src");
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        let chapter = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(&path).unwrap();
        for kind in ["ignore", "no_run"] {
            let found = text
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    l.starts_with("```rust") && l.split(',').any(|a| a.trim() == kind)
                })
                .count();
            let allowed = NOT_RUN
                .iter()
                .find(|(c, k, _)| *c == chapter && *k == kind)
                .map_or(0, |(_, _, n)| *n);
            assert_eq!(
                found, allowed,
                "{chapter} has {found} `{kind}` block(s); tests/book_summary.rs and the README list {allowed}"
            );
        }
    }
}
